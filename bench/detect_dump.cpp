// Prints what the redaction engine sees in one frame of a DICOM file, for looking into a
// benchmark miss: each detector region (plain, with the stretched pass, and the small text
// confirmed among line-shaped marks) with its score and what judging it decided, then where
// the frame's time went (the detector's passes, timed after a first run that loads the
// networks, the reading and judging of regions, the mark finder and the small-text mosaic).
//
//   detect_dump FILE.dcm [FRAME=0]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "redact/ocr.hpp"
#include "redact/regions.hpp"
#include "redact/text_detector.hpp"

using namespace radguard;

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

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
  if (auto warm = redact::detect_text(grey, redact::DetectPasses::with_stretched); !warm)
    return std::fprintf(stderr, "%s\n", warm.error().message.c_str()), 1;
  double detect_s[2] = {0, 0}, judge_s = 0;
  for (const auto passes : {redact::DetectPasses::plain, redact::DetectPasses::with_stretched}) {
    redact::forget_detector_maps();  // time the forward passes, not the maps they left
    auto started = std::chrono::steady_clock::now();
    auto regions = redact::detect_text(grey, passes);
    detect_s[passes == redact::DetectPasses::plain ? 0 : 1] = seconds_since(started);
    if (!regions) return std::fprintf(stderr, "%s\n", regions.error().message.c_str()), 1;
    std::printf("%s: %zu regions\n", passes == redact::DetectPasses::plain ? "plain" : "stretched",
                regions->size());
    for (const auto& r : *regions) {
      started = std::chrono::steady_clock::now();
      auto v = redact::judge_region(grey, r, matcher, redact::Mode::phi_text, {}, *regions);
      if (passes == redact::DetectPasses::with_stretched) judge_s += seconds_since(started);
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
  auto started = std::chrono::steady_clock::now();
  const auto marks = redact::uncovered_text_candidates(grey, {}, {}, redact::MarkContrast::faintest_on_flat_ground);
  const double marks_s = seconds_since(started);
  std::vector<redact::Box> boxes;
  for (const auto& c : marks) boxes.push_back(c.box);
  started = std::chrono::steady_clock::now();
  auto small = redact::confirm_small_text(grey, boxes);
  const double mosaic_s = seconds_since(started);
  if (!small) return std::fprintf(stderr, "%s\n", small.error().message.c_str()), 1;
  std::printf("marks: %zu, confirmed small text: %zu\n", marks.size(), small->size());
  for (const auto& c : marks) {
    bool confirmed = false;
    for (const auto& r : *small) confirmed = confirmed || (r.core.x == c.box.x && r.core.y == c.box.y);
    std::printf("  %4d,%4d %4dx%-4d mark %s\n", c.box.x, c.box.y, c.box.width, c.box.height,
                confirmed ? "confirmed" : "");
  }
  // The engine runs the full detector (every pass), judges its regions, finds the marks and
  // confirms them before the fill; after it, the plain pass and the marks again.
  std::printf("time %ux%u: detector plain pass %.2f s, all passes %.2f s (stretched, twice-size, "
              "turned: %.2f s), reading and judging regions %.2f s, mark finder %.2f s, "
              "small-text mosaic %.2f s\n",
              grey.width, grey.height, detect_s[0], detect_s[1], detect_s[1] - detect_s[0], judge_s,
              marks_s, mosaic_s);
  return 0;
}
