#pragma once
// The table of functions the pixel plugin (radguard-pixels.so) hands to radguard: every
// function of the translation units that need OpenCV or Tesseract (src/redact: ocr.cpp,
// text_detector.cpp, regions.cpp, run.cpp; src/deface: detect.cpp) that code outside them
// calls. Only src/pixels sees this table; everyone else calls the functions the headers
// declare (redact/ocr.hpp, ...), which src/pixels/stub.cpp forwards here. See pixels.hpp.
//
// Changing the table: add members at the end and keep the stamp (pixels_stamp.hpp, a digest
// of the headers under src/) the check that an executable and a plugin come from one build.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "deface/deface.hpp"
#include "redact/ocr.hpp"
#include "redact/redact.hpp"
#include "redact/regions.hpp"
#include "redact/text_detector.hpp"

namespace radguard::pixels {

// The plugin's one exported symbol: extern "C" const Api* radguard_pixels_v1(const char* stamp),
// which returns nullptr when `stamp` is not its own.
inline constexpr const char* kEntryPoint = "radguard_pixels_v1";

struct Api {
  std::uint32_t version = 1;
  std::size_t size = sizeof(Api);

  // redact/ocr.hpp
  redact::Gray8 (*render_gray8)(const dicom::PixelImage&, std::size_t) = nullptr;
  Result<std::vector<redact::Word>> (*read_words)(const redact::Gray8&) = nullptr;
  std::vector<redact::Candidate> (*uncovered_text_candidates)(const redact::Gray8&,
                                                              const std::vector<redact::Word>&,
                                                              const std::vector<redact::Box>&,
                                                              redact::MarkContrast) = nullptr;
  Result<redact::CandidateReading> (*read_candidate)(const redact::Gray8&,
                                                     const redact::Candidate&) = nullptr;
  Result<std::vector<redact::Word>> (*read_region)(const redact::Gray8&, const redact::Box&,
                                                   bool) = nullptr;
  std::vector<std::uint8_t> (*ink_mask)(const redact::Gray8&, const redact::Box&) = nullptr;
  Result<std::vector<std::string>> (*reread)(const redact::Gray8&, const redact::Box&) = nullptr;

  // redact/text_detector.hpp
  Result<std::filesystem::path> (*text_detector_model)() = nullptr;
  Result<std::vector<redact::TextRegion>> (*detect_text)(const redact::Gray8&,
                                                         redact::DetectPasses) = nullptr;
  Result<std::vector<redact::TextRegion>> (*confirm_small_text)(
      const redact::Gray8&, const std::vector<redact::Box>&) = nullptr;

  // redact/regions.hpp
  Result<redact::RegionVerdict> (*judge_region)(const redact::Gray8&, const redact::TextRegion&,
                                                const redact::PhiMatcher&, redact::Mode,
                                                const std::vector<redact::Box>&,
                                                const std::vector<redact::TextRegion>&) = nullptr;
  Result<redact::FrameFindings> (*find_text)(const redact::Gray8&, const redact::PhiMatcher&,
                                             redact::Mode, const std::vector<redact::Box>&,
                                             redact::RegionMemo&, redact::Render) = nullptr;
  Result<std::size_t> (*text_left_behind)(const redact::Gray8&, const redact::PhiMatcher&,
                                          redact::Mode, const std::vector<redact::Box>&,
                                          const std::vector<redact::Box>&,
                                          redact::Render) = nullptr;
  redact::Gray8 (*consensus)(const std::vector<redact::Gray8>&) = nullptr;
  const redact::RegionVerdict* (*memo_find)(const redact::RegionMemo&, const redact::Gray8&,
                                            const redact::Box&) = nullptr;
  void (*memo_add)(redact::RegionMemo&, const redact::Gray8&, const redact::Box&,
                   redact::RegionVerdict) = nullptr;

  // redact/redact.hpp: the batch behind `radguard redact` (run.cpp)
  std::string_view (*outcome_status_name)(redact::OutcomeStatus) = nullptr;
  std::size_t (*report_count)(const redact::RedactRunReport&, redact::OutcomeStatus) = nullptr;
  int (*report_exit_code)(const redact::RedactRunReport&) = nullptr;
  Result<redact::RedactRunReport> (*run_redact)(const redact::RedactRunOptions&) = nullptr;
  std::string (*report_json)(const redact::RedactRunReport&,
                             const redact::RedactRunOptions&) = nullptr;
  std::string (*report_text)(const redact::RedactRunReport&) = nullptr;

  // deface/deface.hpp (detect.cpp)
  Result<deface::FaceCheck> (*detect_faces)(const std::vector<deface::Rendering>&,
                                            const std::filesystem::path&) = nullptr;
  Status (*write_png)(const std::filesystem::path&, const deface::Image&) = nullptr;

  // redact/text_detector.hpp, added later
  void (*forget_detector_maps)() = nullptr;
};

}  // namespace radguard::pixels
