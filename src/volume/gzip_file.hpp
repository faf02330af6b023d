#pragma once
// Reading a whole file that may be gzip-compressed (volumes arrive as .nii, .nii.gz, .inv3).
#include <filesystem>
#include <string>

#include "core/result.hpp"

namespace radguard::volume {

// The file's bytes, decompressed when it is gzip (gzread passes other files through
// unchanged). Fails with ErrorCode::io naming the file. Thread-safe.
[[nodiscard]] Result<std::string> read_maybe_gzipped(const std::filesystem::path& path);

}  // namespace radguard::volume
