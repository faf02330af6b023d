#pragma once
// The pixel capabilities that need OpenCV and Tesseract (OCR, the text detector, the face
// cascades, PNG previews) are a plugin, radguard-pixels.so, that the radguard executable loads
// on first use: the commands that never touch pixels (deid without pixel options, sign,
// verify, plan, ...) start without loading OpenCV, Tesseract or their ~140 libraries.
// Tests and tools link the same code directly (radguard_pixels_direct); only an executable
// with the target property RADGUARD_PIXELS_PLUGIN gets the loader (docs/ARCHITECTURE.md).
//
// Fail closed: when the plugin is missing, does not load or comes from another build, every
// pixel function fails (Result functions with ErrorCode::unsupported, the few others by
// throwing std::runtime_error, which the batch turns into a failed file); nothing is released
// unchecked.
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace radguard::pixels {

// Where the plugin is looked for, first found wins: $RADGUARD_PIXELS (a file), then next to
// the executable, then <executable>/../lib/radguard/. Never the current directory.
std::vector<std::filesystem::path> plugin_candidates();

// Loads the plugin once per process (thread-safe); later calls return the same answer.
// Fails with ErrorCode::unsupported, naming the file tried and why (no patient data).
[[nodiscard]] Status load();

// Whether this executable loads pixel code as a plugin (false: linked in directly).
bool is_plugin_build();

}  // namespace radguard::pixels
