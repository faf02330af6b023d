// Benchmark of the pixel stage on a generated set: recall and precision on PHI words burned
// into ultrasound screens (random fonts, sizes, contrasts, polarities, noise and positions,
// edges included), images per second on N threads, and the cost of a header-triaged CT
// series against OCR'd ultrasound frames.
//
//   redact_bench [US_IMAGES=40] [CT_SLICES=200] [THREADS=2]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <random>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "redact/redact.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"

using namespace radguard;
using testing::BurnedFrame;
using testing::BurnedText;

namespace {

const std::vector<std::string> kPhi = {"DOE",        "JOHN",       "PID12345",  "15/03/2019",
                                       "02/01/1930", "ACC998877",  "ELSEWHERE", "2019-03-15",
                                       "DOE,JOHN",   "15-MAR-2019"};
const std::vector<std::string> kSafe = {"LIVER", "KIDNEY",     "DEPTH",   "GAIN",  "12.5MHz",
                                        "16cm",  "TRANSVERSE", "SAG",     "FR",    "32Hz",
                                        "RT",    "LONG",       "ABDOMEN", "TIS0.4"};
const int kFonts[] = {cv::FONT_HERSHEY_SIMPLEX, cv::FONT_HERSHEY_DUPLEX,
                      cv::FONT_HERSHEY_COMPLEX, cv::FONT_HERSHEY_TRIPLEX,
                      cv::FONT_HERSHEY_PLAIN,   cv::FONT_HERSHEY_COMPLEX_SMALL};

BurnedFrame random_frame(std::mt19937& random) {
  BurnedFrame f;
  f.width = 640;
  f.height = 480;
  f.seed = static_cast<unsigned>(random());
  const bool dark = std::uniform_int_distribution<int>(0, 3)(random) != 0;  // most screens are dark
  f.background = dark ? std::uniform_int_distribution<int>(0, 50)(random)
                      : std::uniform_int_distribution<int>(190, 250)(random);
  f.noise = std::uniform_int_distribution<int>(0, 6)(random);
  // Text on rows: top band, bottom band and a few in between, left to right with gaps.
  for (int y = 16; y < f.height; y += std::uniform_int_distribution<int>(34, 90)(random)) {
    int x = std::uniform_int_distribution<int>(0, 3)(random) == 0
                ? 0
                : std::uniform_int_distribution<int>(2, 60)(random);
    while (x < f.width - 40) {
      BurnedText t;
      t.phi = std::uniform_int_distribution<int>(0, 1)(random) == 0;
      const auto& pool = t.phi ? kPhi : kSafe;
      t.text = pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(random)];
      t.font = kFonts[std::uniform_int_distribution<int>(0, 5)(random)];
      const double base = t.font == cv::FONT_HERSHEY_PLAIN           ? 1.1
                          : t.font == cv::FONT_HERSHEY_COMPLEX_SMALL ? 0.8
                                                                     : 0.5;
      t.scale = base * std::uniform_real_distribution<double>(0.85, 1.5)(random);
      t.thickness = std::uniform_int_distribution<int>(0, 4)(random) == 0 ? 2 : 1;
      const int contrast = std::uniform_int_distribution<int>(90, 220)(random);
      t.value = std::clamp(dark ? f.background + contrast : f.background - contrast, 0, 255);
      int baseline = 0;
      const cv::Size size = cv::getTextSize(t.text, t.font, t.scale, t.thickness, &baseline);
      if (x + size.width > f.width) break;
      t.origin = {x, std::min(y, f.height - baseline - 1)};
      f.texts.push_back(t);
      x += size.width + std::uniform_int_distribution<int>(18, 120)(random);
    }
  }
  return f;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t us_count = argc > 1 ? std::stoul(argv[1]) : 40;
  const std::size_t ct_count = argc > 2 ? std::stoul(argv[2]) : 200;
  const unsigned threads = argc > 3 ? static_cast<unsigned>(std::stoul(argv[3])) : 2;
  testing::TempDir dir;
  std::mt19937 random(20261123);

  const E_TransferSyntax syntaxes[] = {EXS_LittleEndianExplicit, EXS_RLELossless,
                                       EXS_JPEGLSLossless, EXS_LittleEndianImplicit};
  const testing::Colour colours[] = {testing::Colour::monochrome2, testing::Colour::rgb,
                                     testing::Colour::ybr_full, testing::Colour::monochrome1};
  std::vector<BurnedFrame> frames;
  std::vector<std::filesystem::path> us_files;
  for (std::size_t i = 0; i < us_count; ++i) {
    frames.push_back(random_frame(random));
    auto file = testing::make_burned_in({frames.back()}, colours[i % 4],
                                        "1.2.826.0.1.3680043.2.1125.77." + std::to_string(i + 1));
    us_files.push_back(dir / ("us" + std::to_string(i) + ".dcm"));
    testing::save(*file, us_files.back(), syntaxes[(i / 4) % 4]);
  }
  std::vector<std::filesystem::path> ct_files;
  for (std::size_t i = 0; i < ct_count; ++i) {
    auto file = testing::make_ct(
        "PID12345", "1.2.826.0.1.3680043.2.1125.78." + std::to_string(i + 1), 512, 512, 1);
    ct_files.push_back(dir / ("ct" + std::to_string(i) + ".dcm"));
    testing::save(*file, ct_files.back(), EXS_LittleEndianExplicit);
  }

  redact::RedactOptions options;
  // REDACT_BENCH_CANDIDATES=N reads at most N text candidates per frame (the rest fail the
  // file closed in phi-text mode; 0: the full-frame passes' recall, every file failed closed).
  if (const char* limit = std::getenv("REDACT_BENCH_CANDIDATES"); limit != nullptr)
    options.max_text_candidates = std::stoul(limit);
  // REDACT_BENCH_ONLY=3,17 processes and scores only those US images (while iterating).
  std::vector<bool> selected(us_count, true);
  if (const char* only = std::getenv("REDACT_BENCH_ONLY"); only != nullptr) {
    selected.assign(us_count, false);
    for (const char* p = only; *p != '\0';) {
      char* end = nullptr;
      const unsigned long index = std::strtoul(p, &end, 10);
      if (end == p) break;
      if (index < us_count) selected[index] = true;
      p = *end == ',' ? end + 1 : end;
    }
  }
  std::vector<std::optional<redact::FileRedaction>> results(us_count);
  std::atomic<std::size_t> failures{0};
  auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  batch::run_parallel(
      us_count, threads,
      [&](std::size_t i) {
        if (!selected[i]) return;
        auto file = dicom::DicomFile::open(us_files[i]);
        if (!file) {
          ++failures;
          return;
        }
        auto r = redact::redact_file(*file, options);
        if (!r) {
          ++failures;
          return;
        }
        // Include writing the result, as a run does.
        if (!file->save(dir / ("out_us" + std::to_string(i) + ".dcm"), {"1.2.3", "BENCH"}))
          ++failures;
        results[i] = std::move(*r);
      },
      [&](std::size_t, const std::string&) { ++failures; });
  const double us_seconds = seconds_since(start);
  // Process CPU time (all threads): the per-frame cost on a machine shared with other work.
  const double us_cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;

  start = std::chrono::steady_clock::now();
  batch::run_parallel(
      ct_count, threads,
      [&](std::size_t i) {
        auto file = dicom::DicomFile::open(ct_files[i]);
        if (!file) {
          ++failures;
          return;
        }
        auto r = redact::redact_file(*file, options);
        if (!r || r->verdict != redact::FileVerdict::not_needed) {
          ++failures;
          return;
        }
        if (!file->save(dir / ("out_ct" + std::to_string(i) + ".dcm"), {"1.2.3", "BENCH"}))
          ++failures;
      },
      [&](std::size_t, const std::string&) { ++failures; });
  const double ct_seconds = seconds_since(start);

  std::size_t phi_words = 0, phi_covered = 0, safe_words = 0, safe_redacted = 0, boxes = 0,
              boxes_on_phi = 0;
  std::size_t residual = 0, cleaned = 0, released_phi = 0, leaked_phi = 0;
  for (std::size_t i = 0; i < us_count; ++i) {
    if (!results[i]) continue;
    const auto& r = *results[i];
    if (r.verdict == redact::FileVerdict::residual_phi) ++residual;
    if (r.verdict == redact::FileVerdict::cleaned) ++cleaned;
    for (const auto& t : frames[i].texts) {
      const double covered = testing::covered_fraction(frames[i], t, r.redactions, 0);
      if (t.phi) {
        ++phi_words;
        if (r.verdict != redact::FileVerdict::residual_phi) {
          ++released_phi;
          if (covered < 0.99) ++leaked_phi;
        }
        if (covered >= 0.99) {
          ++phi_covered;
        } else if (std::getenv("REDACT_BENCH_VERBOSE") != nullptr) {
          std::printf(
              "missed image %zu '%s' font %d scale %.2f thick %d ink %d bg %d noise %d at %d,%d "
              "covered %.2f\n",
              i, t.text.c_str(), t.font, t.scale, t.thickness, t.value, frames[i].background,
              frames[i].noise, t.origin.x, t.origin.y, covered);
        }
      } else {
        ++safe_words;
        if (covered > 0.2) {
          ++safe_redacted;
          if (std::getenv("REDACT_BENCH_VERBOSE") != nullptr) {
            std::string why;
            for (const auto& box : r.redactions) {
              const redact::Redaction only[] = {box};
              if (testing::covered_fraction(frames[i], t, {only[0]}, 0) > 0.05)
                why += std::string(redact::category_name(box.category)) + " ";
            }
            std::printf("over-redacted image %zu '%s' by %s\n", i, t.text.c_str(), why.c_str());
          }
        }
      }
    }
    for (const auto& box : r.redactions) {
      ++boxes;
      for (const auto& t : frames[i].texts) {
        if (!t.phi) continue;
        const redact::Redaction only[] = {box};
        if (testing::covered_fraction(frames[i], t, {only[0]}, 0) > 0.05) {
          ++boxes_on_phi;
          break;
        }
      }
    }
  }
  const auto d = [](std::size_t n) { return static_cast<double>(n); };
  const double recall = phi_words ? 100.0 * d(phi_covered) / d(phi_words) : 0;
  const double precision = boxes ? 100.0 * d(boxes_on_phi) / d(boxes) : 0;
  const auto us_done = static_cast<std::size_t>(std::count(selected.begin(), selected.end(), true));
  const double us_rate = d(us_done) / us_seconds, ct_rate = d(ct_count) / ct_seconds;
  std::printf("threads                         %u\n", threads);
  std::printf("US frames (640x480, OCR)        %zu in %.2f s: %.2f images/s\n", us_done, us_seconds,
              us_rate);
  std::printf("US CPU time                      %.2f s per frame\n", us_cpu / d(us_done));
  std::printf("CT slices (512x512, triaged)    %zu in %.2f s: %.1f images/s\n", ct_count,
              ct_seconds, ct_rate);
  std::printf("triage speed ratio (CT/US)      %.0fx per image\n", ct_rate / us_rate);
  std::printf("PHI words                       %zu, covered %zu: recall %.2f%%\n", phi_words,
              phi_covered, recall);
  std::printf("non-PHI words                   %zu, redacted %zu (%.2f%%)\n", safe_words,
              safe_redacted, safe_words ? 100.0 * d(safe_redacted) / d(safe_words) : 0);
  std::printf("boxes                           %zu, on a PHI word %zu: box precision %.2f%%\n",
              boxes, boxes_on_phi, precision);
  std::printf(
      "released files: PHI words %zu, left uncovered %zu: recall after fail-closed %.2f%%\n",
      released_phi, leaked_phi,
      released_phi ? 100.0 * d(released_phi - leaked_phi) / d(released_phi) : 0);
  std::printf("files cleaned %zu, fail-closed (residual PHI) %zu, errors %zu\n", cleaned, residual,
              failures.load());
  return failures.load() == 0 ? 0 : 1;
}
