// Prints what the redaction engine sees in one frame of a DICOM file, for looking into a
// benchmark miss: each detector region (plain, with the stretched pass, and the small text
// confirmed among line-shaped marks) with its score and what judging it decided.
//
//   detect_dump FILE.dcm [FRAME=0]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "redact/ocr.hpp"
#include "redact/regions.hpp"
#include "redact/text_detector.hpp"

using namespace radguard;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: detect_dump FILE.dcm [FRAME]\n");
    return 2;
  }
  auto file = dicom::DicomFile::open(argv[1]);
  if (!file) return std::fprintf(stderr, "%s\n", file.error().message.c_str()), 1;
  auto image = dicom::decode_pixels(*file);
  if (!image) return std::fprintf(stderr, "%s\n", image.error().message.c_str()), 1;
  const std::size_t frame = argc > 2 ? static_cast<std::size_t>(std::atoi(argv[2])) : 0;
  const redact::Gray8 grey = redact::render_gray8(*image, frame);
  const auto matcher = redact::PhiMatcher::from_header(*file);
  for (const auto passes : {redact::DetectPasses::plain, redact::DetectPasses::with_stretched}) {
    auto regions = redact::detect_text(grey, passes);
    if (!regions) return std::fprintf(stderr, "%s\n", regions.error().message.c_str()), 1;
    std::printf("%s: %zu regions\n", passes == redact::DetectPasses::plain ? "plain" : "stretched",
                regions->size());
    for (const auto& r : *regions) {
      auto v = redact::judge_region(grey, r, matcher, redact::Mode::phi_text, {}, *regions);
      auto words = redact::read_region(grey, r.box, r.vertical);
      std::string read;
      if (words)
        for (const auto& w : *words) read += w.text + "(" + std::to_string(static_cast<int>(w.confidence)) + ") ";
      std::printf("  %4d,%4d %4dx%-4d score %.2f %s redact %zu kept %zu  %s\n", r.box.x, r.box.y,
                  r.box.width, r.box.height, static_cast<double>(r.score), r.vertical ? "V" : " ",
                  v ? v->redact.size() : 0, v ? v->kept.size() : 0, read.c_str());
    }
  }
  // The line-shaped marks outside `plain`'s regions and which of them the small-text mosaic
  // confirms (the engine also drops marks that are a region's own line).
  const auto marks = redact::uncovered_text_candidates(grey, {}, {}, redact::MarkContrast::faint_on_flat_ground);
  std::vector<redact::Box> boxes;
  for (const auto& c : marks) boxes.push_back(c.box);
  auto small = redact::confirm_small_text(grey, boxes);
  if (!small) return std::fprintf(stderr, "%s\n", small.error().message.c_str()), 1;
  std::printf("marks: %zu, confirmed small text: %zu\n", marks.size(), small->size());
  for (const auto& c : marks) {
    bool confirmed = false;
    for (const auto& r : *small) confirmed = confirmed || (r.core.x == c.box.x && r.core.y == c.box.y);
    std::printf("  %4d,%4d %4dx%-4d mark %s\n", c.box.x, c.box.y, c.box.width, c.box.height,
                confirmed ? "confirmed" : "");
  }
  return 0;
}
