#include "redact/ocr.hpp"

#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace radguard::redact {

namespace {

// Neighbourhood (in scaled pixels) and offset (grey levels) of the local threshold.
constexpr int kThresholdBlock = 51;
constexpr double kThresholdOffset = 12;
// Text candidates found without OCR: local threshold neighbourhood and least contrast (grey
// levels, raised with the noise), the gap joining letters into lines (pixels), and the
// confidence above which a full-frame reading is taken to have covered its area.
constexpr int kCandidateBlock = 31;
constexpr double kCandidateOffset = 24;
constexpr int kJoinGap = 6;
// The least contrast of a mark on a flat ground: over JPEG's noise on a black margin (1-2
// levels), under what a faint line keeps of its 10 levels after compression.
constexpr double kFlatGroundContrast = 4;
// Fainter still: a line whose strokes stand 2-6 levels above a ground flat to a level (JPEG's
// noise; the local median deviation at most kFlatestSpread) is ink where the difference,
// averaged over 3x3 pixels (a third of the noise), exceeds kAveragedContrast.
constexpr double kAveragedContrast = 2;
constexpr std::uint8_t kFlatestSpread = 1;
// A candidate line is at most this tall (marks of 3-40 px and their joins).
constexpr int kMaxLineHeight = 48;
constexpr float kCoveredConfidence = 85;

struct TessEnd {
  void operator()(tesseract::TessBaseAPI* api) const {
    api->End();
    delete api;
  }
};
using Engine = std::unique_ptr<tesseract::TessBaseAPI, TessEnd>;

// One engine per thread: TessBaseAPI is not thread-safe, and starting one costs ~100 ms.
Result<tesseract::TessBaseAPI*> thread_engine() {
  thread_local Engine engine;
  if (engine) return engine.get();
  Engine fresh(new tesseract::TessBaseAPI());
  if (fresh->Init(nullptr, "eng", tesseract::OEM_LSTM_ONLY) != 0)
    return fail(ErrorCode::internal, "Tesseract cannot start (is tesseract-ocr-eng installed?)");
  // Sparse text: annotations are scattered words, not paragraphs.
  fresh->SetPageSegMode(tesseract::PSM_SPARSE_TEXT);
  fresh->SetVariable("debug_file", "/dev/null");
  fresh->SetVariable("user_defined_dpi", "300");
  // Both polarities are read explicitly below; Tesseract's own retry would double the work.
  fresh->SetVariable("tessedit_do_invert", "0");
  engine = std::move(fresh);
  return engine.get();
}

// Immerkaer's fast estimate of Gaussian noise: text edges inflate it a little, which only
// makes the threshold more cautious.
double noise_sigma(const cv::Mat& grey) {
  if (grey.rows < 3 || grey.cols < 3) return 0;
  const cv::Mat kernel = (cv::Mat_<float>(3, 3) << 1, -2, 1, -2, 4, -2, 1, -2, 1);
  cv::Mat response;
  cv::filter2D(grey, response, CV_32F, kernel);
  const double total = cv::sum(cv::abs(response))[0];
  return std::sqrt(CV_PI / 2.0) * total / (6.0 * (grey.cols - 2) * (grey.rows - 2));
}

std::uint8_t luminance(std::uint32_t r, std::uint32_t g, std::uint32_t b) {
  return static_cast<std::uint8_t>(
      std::min<std::uint32_t>(255, (299 * r + 587 * g + 114 * b) / 1000));
}

std::uint32_t to8(std::uint32_t value, unsigned bits) {
  return bits > 8 ? value >> (bits - 8) : value;
}

// Where a prepared (scaled, padded) image lies in the original: image = origin + (v - pad) / scale.
struct Placement {
  double scale = 1;
  int pad = 0;
  int origin_x = 0, origin_y = 0;
  unsigned width = 0, height = 0;  // of the original image, for clamping
};

// Fails when Tesseract cannot recognize the image: that is not "no text" (fail closed).
Status read_pass(tesseract::TessBaseAPI& api, const cv::Mat& prepared, const Placement& at,
                 std::vector<Word>& words) {
  api.SetImage(prepared.data, prepared.cols, prepared.rows, 1, static_cast<int>(prepared.step));
  if (api.Recognize(nullptr) != 0)
    return fail(ErrorCode::internal, "Tesseract could not recognize the image");
  std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
  if (!it) return {};  // recognized, and nothing was found
  do {
    std::unique_ptr<char[]> text(it->GetUTF8Text(tesseract::RIL_WORD));
    if (!text) continue;
    int left = 0, top = 0, right = 0, bottom = 0;
    if (!it->BoundingBox(tesseract::RIL_WORD, &left, &top, &right, &bottom)) continue;
    Word word;
    word.text = text.get();
    word.confidence = it->Confidence(tesseract::RIL_WORD);
    {
      const cv::Rect area = cv::Rect(left, top, right - left, bottom - top) &
                            cv::Rect(0, 0, prepared.cols, prepared.rows);
      word.dark_on_light = !area.empty() && cv::mean(prepared(area))[0] >= 128;
    }
    const auto unscale = [&](int v, int origin, unsigned limit, bool upper) {
      const double original = origin + (v - at.pad) / at.scale;
      const int rounded = static_cast<int>(upper ? std::ceil(original) : std::floor(original));
      return std::clamp(rounded, 0, static_cast<int>(limit));
    };
    const int x0 = unscale(left, at.origin_x, at.width, false);
    const int y0 = unscale(top, at.origin_y, at.height, false);
    const int x1 = unscale(right, at.origin_x, at.width, true);
    const int y1 = unscale(bottom, at.origin_y, at.height, true);
    word.box = Box{x0, y0, x1 - x0, y1 - y0};
    if (!word.box.empty()) words.push_back(std::move(word));
  } while (it->Next(tesseract::RIL_WORD));
  return {};
}

// Sets the engine's page segmentation mode for one reading and, however the reading ends
// (an exception included), puts back sparse text, the mode every reading starts from, and
// clears the image.
class SegmentationMode {
 public:
  SegmentationMode(tesseract::TessBaseAPI& api, tesseract::PageSegMode mode) : api_(api) {
    api_.SetPageSegMode(mode);
  }
  SegmentationMode(const SegmentationMode&) = delete;
  SegmentationMode& operator=(const SegmentationMode&) = delete;
  ~SegmentationMode() {
    try {
      api_.SetPageSegMode(tesseract::PSM_SPARSE_TEXT);
      api_.Clear();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
  }

 private:
  tesseract::TessBaseAPI& api_;
};

cv::Mat as_mat(const Gray8& image) {
  return cv::Mat(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC1,
                 const_cast<std::uint8_t*>(image.pixels.data()));
}

}  // namespace

Gray8 render_gray8(const dicom::PixelImage& image, std::size_t frame) {
  Gray8 out;
  out.width = image.width;
  out.height = image.height;
  const std::size_t pixels = static_cast<std::size_t>(image.width) * image.height;
  out.pixels.resize(pixels);
  const std::vector<std::uint16_t>& in = image.frames.at(frame);
  switch (image.photometric) {
    case dicom::Photometric::monochrome1:
    case dicom::Photometric::monochrome2: {
      std::int32_t lo = INT32_MAX, hi = INT32_MIN;
      for (const auto s : in) {
        const std::int32_t v = image.value_of(s);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      const double range = hi > lo ? static_cast<double>(hi - lo) : 1.0;
      const bool invert = image.photometric == dicom::Photometric::monochrome1;
      for (std::size_t p = 0; p < pixels; ++p) {
        const auto v = static_cast<int>((image.value_of(in[p]) - lo) * 255.0 / range + 0.5);
        out.pixels[p] = static_cast<std::uint8_t>(invert ? 255 - v : v);
      }
      break;
    }
    case dicom::Photometric::rgb:
      for (std::size_t p = 0; p < pixels; ++p)
        out.pixels[p] =
            luminance(to8(in[3 * p], image.bits_stored), to8(in[3 * p + 1], image.bits_stored),
                      to8(in[3 * p + 2], image.bits_stored));
      break;
    case dicom::Photometric::ybr_full:
    case dicom::Photometric::ybr_full_422:
      for (std::size_t p = 0; p < pixels; ++p)
        out.pixels[p] = static_cast<std::uint8_t>(to8(in[3 * p], image.bits_stored));
      break;
    case dicom::Photometric::palette_color: {
      const auto& lut = image.palette;
      const std::int64_t size = static_cast<std::int64_t>(lut.red.size());
      for (std::size_t p = 0; p < pixels; ++p) {
        if (size == 0) break;
        const std::int64_t index = std::clamp<std::int64_t>(
            static_cast<std::int64_t>(in[p]) - lut.first_mapped, 0, size - 1);
        const auto i = static_cast<std::size_t>(index);
        out.pixels[p] = luminance(to8(lut.red[i], lut.bits), to8(lut.green[i], lut.bits),
                                  to8(lut.blue[i], lut.bits));
      }
      break;
    }
  }
  return out;
}

Result<std::vector<Word>> read_words(const Gray8& image) {
  try {
    auto engine = thread_engine();
    if (!engine) return std::unexpected(engine.error());
    if (image.width == 0 || image.height == 0) return std::vector<Word>{};
    const cv::Mat source = as_mat(image);
    // Tesseract reads best with capitals 20-40 px tall: annotation text on a 640x480 screen
    // is often 8-12 px.
    const unsigned longest = std::max(image.width, image.height);
    const double scale = longest <= 1024 ? 3.0 : longest <= 2048 ? 2.0 : 1.0;
    cv::Mat scaled;
    if (scale != 1.0) {
      cv::resize(source, scaled, cv::Size(), scale, scale, cv::INTER_CUBIC);
    } else {
      scaled = source.clone();
    }
    // Noise would pass a fixed threshold as speckle (slow to segment, read as junk): smooth a
    // little and keep the offset well above the noise level.
    cv::GaussianBlur(scaled, scaled, cv::Size(5, 5), 1.2);
    const double offset = std::max(kThresholdOffset, 3.0 * noise_sigma(source));
    // Text touching the border is lost by the segmenter unless there is background around it.
    const int pad = 24;
    const SegmentationMode mode(**engine, tesseract::PSM_SPARSE_TEXT);
    std::vector<Word> words;
    for (const bool inverted : {false, true}) {
      cv::Mat polarity;
      if (inverted) {
        cv::bitwise_not(scaled, polarity);
      } else {
        polarity = scaled;
      }
      // A local threshold: text darker than its surroundings turns black, everything else
      // white. A global threshold (Tesseract's own) loses dim text when bright text shares
      // the image, and the other polarity's text vanishes instead of being read as garbage.
      cv::Mat binary;
      cv::adaptiveThreshold(polarity, binary, 255, cv::ADAPTIVE_THRESH_MEAN_C, cv::THRESH_BINARY,
                            kThresholdBlock, offset);
      cv::Mat padded;
      cv::copyMakeBorder(binary, padded, pad, pad, pad, pad, cv::BORDER_CONSTANT, cv::Scalar(255));
      if (auto read = read_pass(**engine, padded,
                                Placement{scale, pad, 0, 0, image.width, image.height}, words);
          !read)
        return std::unexpected(read.error());
    }
    return words;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

std::vector<Candidate> uncovered_text_candidates(const Gray8& image, const std::vector<Word>& found,
                                                 const std::vector<Box>& redacted,
                                                 MarkContrast contrast) {
  std::vector<Candidate> candidates;
  if (image.width < 8 || image.height < 8) return candidates;
  const cv::Mat source = as_mat(image);
  const double sigma = noise_sigma(source);
  cv::Mat smooth;
  if (sigma > 1.5) {
    cv::GaussianBlur(source, smooth, cv::Size(3, 3), 0.8);
  } else {
    smooth = source;
  }
  // Marks must stand out well above the noise: OCR of a speck costs as much as of a word.
  const double offset = std::max(kCandidateOffset, 4.0 * sigma);
  // What the full-frame pass read with some confidence is not looked at again.
  cv::Mat covered(source.size(), CV_8UC1, cv::Scalar(0));
  for (const Word& w : found) {
    // A confident reading of garbage ("cD" for a blob) covers nothing.
    const auto letters = std::count_if(w.text.begin(), w.text.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0;
    });
    if (w.confidence < kCoveredConfidence || letters < 3) continue;
    const cv::Rect r = cv::Rect(w.box.x, w.box.y, w.box.width, w.box.height) &
                       cv::Rect(0, 0, covered.cols, covered.rows);
    if (!r.empty()) covered(r).setTo(255);
  }
  for (const Box& b : redacted) {
    const cv::Rect r =
        cv::Rect(b.x, b.y, b.width, b.height) & cv::Rect(0, 0, covered.cols, covered.rows);
    if (!r.empty()) covered(r).setTo(255);
  }
  // The background is the local median: unlike the mean, bold text does not pull it towards
  // the ink, so the ground around heavy text does not turn into marks of the other polarity.
  cv::Mat ground;
  cv::medianBlur(smooth, ground, kCandidateBlock);
  // The least contrast per pixel (MarkContrast::faint_on_flat_ground): the median of the
  // deviation from the ground over a wide window is the texture there (speckle, anatomy,
  // paper grain), which text covering less than half of the window does not move.
  cv::Mat least, flatest;
  if (contrast != MarkContrast::standard) {
    cv::Mat deviation, spread;
    cv::absdiff(smooth, ground, deviation);
    cv::medianBlur(deviation, spread, kCandidateBlock);
    // At the edge of a textured area the window is half flat: the texture's level reaches
    // a window further, so the edge of speckle is not taken for faint marks.
    cv::dilate(spread, spread,
               cv::getStructuringElement(cv::MORPH_RECT, cv::Size(kCandidateBlock, kCandidateBlock)));
    if (contrast == MarkContrast::faintest_on_flat_ground) flatest = spread <= kFlatestSpread;
    spread.convertTo(least, CV_8U, 4.0, 0);
    // On a ground flat to a grey level, text 5-7 levels above it is still read by a person
    // who widens the window (seed 2718's 0004.dcm: a 9 px date and name on an ultrasound
    // frame's black margin, drawn 10 levels up and left 5-8 after JPEG, no mark at all under
    // kFaintContrast's bar, released). There the texture sets no bar, so only the JPEG
    // noise's does (kFlatGroundContrast).
    cv::max(least, cv::Scalar(kFlatGroundContrast), least);
    cv::min(least, cv::Scalar(offset), least);  // never stricter than the standard bar
  }
  for (const bool dark : {false, true}) {
    cv::Mat difference, ink;
    if (dark) {
      cv::subtract(ground, smooth, difference);
    } else {
      cv::subtract(smooth, ground, difference);
    }
    if (least.empty()) {
      cv::threshold(difference, ink, offset, 255, cv::THRESH_BINARY);
    } else {
      cv::compare(difference, least, ink, cv::CMP_GT);
    }
    if (!flatest.empty()) {
      // Seed 2718's 0004.dcm (bench/fourth_screens.py, JPEG): a date and a name along the
      // frame's last rows, 2-6 levels above its black margin, left as specks by the bar above
      // (two pieces of 16x4 and 7x6 px), found by no pass and released once the check's
      // other finding was filled (docs/benchmarks.md, sixteenth pass). Averaged, the strokes
      // stand out of the noise whole.
      cv::Mat averaged, faint;
      cv::blur(difference, averaged, cv::Size(3, 3), cv::Point(-1, -1), cv::BORDER_REPLICATE);
      cv::compare(averaged, kAveragedContrast, faint, cv::CMP_GT);
      cv::bitwise_and(faint, flatest, faint);
      cv::bitwise_or(ink, faint, ink);
    }
    cv::Mat labels, stats, centroids;
    const int count = cv::connectedComponentsWithStats(ink, labels, stats, centroids, 8, CV_32S);
    // Glyph-sized marks: 3-40 px tall, not specks.
    std::vector<std::uint8_t> keep(static_cast<std::size_t>(count), 0);
    std::vector<cv::Rect> marks;
    for (int i = 1; i < count; ++i) {
      const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
      const int area = stats.at<int>(i, cv::CC_STAT_AREA);
      if (h < 3 || h > 40 || area < 6 || w > 40 * h) continue;
      keep[static_cast<std::size_t>(i)] = 255;
      marks.emplace_back(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP), w,
                         h);
    }
    cv::Mat glyphs(labels.size(), CV_8UC1);
    for (int y = 0; y < labels.rows; ++y) {
      const int* in = labels.ptr<int>(y);
      std::uint8_t* out = glyphs.ptr<std::uint8_t>(y);
      for (int x = 0; x < labels.cols; ++x) out[x] = keep[static_cast<std::size_t>(in[x])];
    }
    // Letters of a word (and words of a line) are joined across small gaps.
    cv::Mat joined;
    cv::dilate(glyphs, joined,
               cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * kJoinGap + 1, 3)));
    cv::Mat line_labels, line_stats, line_centroids;
    const int lines = cv::connectedComponentsWithStats(joined, line_labels, line_stats,
                                                       line_centroids, 8, CV_32S);
    for (int i = 1; i < lines; ++i) {
      const cv::Rect outer(
          line_stats.at<int>(i, cv::CC_STAT_LEFT), line_stats.at<int>(i, cv::CC_STAT_TOP),
          line_stats.at<int>(i, cv::CC_STAT_WIDTH), line_stats.at<int>(i, cv::CC_STAT_HEIGHT));
      cv::Rect tight;
      int inside = 0;
      for (const cv::Rect& m : marks) {
        if ((m & outer) != m) continue;
        tight = inside == 0 ? m : (tight | m);
        ++inside;
      }
      if (inside == 0) continue;
      // Lines 4 px tall (a date in a 4x6 bitmap face) count where the least contrast follows
      // the texture; the standard bar keeps 5 px (the earlier engine reads what it finds).
      const int shortest = contrast == MarkContrast::standard ? 5 : 4;
      if (tight.height < shortest || tight.height > kMaxLineHeight || tight.width < tight.height)
        continue;
      // One merged blob is text only when word-shaped (small bold text merges its letters).
      if (inside == 1 && tight.width < 2 * tight.height) continue;
      if (cv::countNonZero(covered(tight)) * 2 > tight.area()) continue;
      Candidate c;
      c.box = Box{tight.x, tight.y, tight.width, tight.height};
      c.dark_on_light = dark;
      c.glyphs = inside;
      candidates.push_back(c);
    }
  }
  // Overlapping candidates (one line seen in both polarities, or in pieces) are read once.
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t i = 0; i < candidates.size() && !merged; ++i) {
      for (std::size_t j = i + 1; j < candidates.size() && !merged; ++j) {
        const cv::Rect a(candidates[i].box.x, candidates[i].box.y, candidates[i].box.width,
                         candidates[i].box.height);
        const cv::Rect c(candidates[j].box.x, candidates[j].box.y, candidates[j].box.width,
                         candidates[j].box.height);
        const int overlap = (a & c).area();
        if (overlap * 3 < std::min(a.area(), c.area())) continue;
        const cv::Rect u = a | c;
        // Pieces of one line only: over speckle, overlapping marks merged again and again grew
        // into areas hundreds of pixels tall, each then shown (and filled) as one text line.
        if (u.height > kMaxLineHeight) continue;
        candidates[i].box = Box{u.x, u.y, u.width, u.height};
        candidates[i].glyphs = std::max(candidates[i].glyphs, candidates[j].glyphs);
        candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(j));
        merged = true;
      }
    }
  }
  // Small text first: the full-frame pass misses it most.
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const Candidate& a, const Candidate& b) { return a.box.height < b.box.height; });
  return candidates;
}

Result<CandidateReading> read_candidate(const Gray8& image, const Candidate& candidate) {
  try {
    auto engine = thread_engine();
    if (!engine) return std::unexpected(engine.error());
    CandidateReading reading;
    reading.ink = candidate.box;
    const cv::Mat source = as_mat(image);
    const cv::Rect bounds(0, 0, source.cols, source.rows);
    const auto around = [&](const cv::Rect& r, int pad_x, int pad_y) {
      return cv::Rect(r.x - pad_x, r.y - pad_y, r.width + 2 * pad_x, r.height + 2 * pad_y) & bounds;
    };
    const Box& b = candidate.box;
    const cv::Rect first = around(cv::Rect(b.x, b.y, b.width, b.height), std::max(4, b.height / 2),
                                  std::max(3, b.height / 2));
    if (first.empty()) return reading;
    // Polarity from the pixels: ink is the minority class.
    cv::Mat smooth, binary;
    cv::GaussianBlur(source(first), smooth, cv::Size(3, 3), 0.8);
    const double level = cv::threshold(smooth, binary, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
    const bool light_ink = cv::countNonZero(binary) * 2 < binary.rows * binary.cols;
    // The ink's own bounding box sets the scale and, for redaction, the line's height.
    cv::Mat ink_mask;
    cv::threshold(smooth, ink_mask, level, 255,
                  light_ink ? cv::THRESH_BINARY : cv::THRESH_BINARY_INV);
    cv::Mat labels, stats, centroids;
    const int marks =
        cv::connectedComponentsWithStats(ink_mask, labels, stats, centroids, 8, CV_32S);
    cv::Rect tight;
    for (int i = 1; i < marks; ++i) {
      if (stats.at<int>(i, cv::CC_STAT_AREA) < 4) continue;  // noise
      const cv::Rect m(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                       stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
      tight = tight.empty() ? m : (tight | m);
    }
    tight.x += first.x;
    tight.y += first.y;
    if (tight.height < 4) return reading;
    reading.ink = Box{tight.x, tight.y, tight.width, tight.height};
    const cv::Rect area =
        around(tight, std::max(4, tight.height / 2), std::max(3, tight.height / 3));
    cv::Mat crop = source(area).clone();
    if (light_ink) cv::bitwise_not(crop, crop);
    // The box holds capitals and descenders: ~40 px for it puts capitals near 30 px.
    const double scale = std::clamp(40.0 / tight.height, 1.0, 6.0);
    cv::Mat scaled;
    cv::resize(crop, scaled, cv::Size(), scale, scale, cv::INTER_CUBIC);
    cv::GaussianBlur(scaled, scaled, cv::Size(3, 3), 0.8);
    cv::threshold(scaled, binary, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
    const int pad = 16;
    const Placement at{scale, pad, area.x, area.y, image.width, image.height};
    const SegmentationMode mode(**engine, tesseract::PSM_SINGLE_LINE);
    // Plain, then with the strokes thinned by a quarter of the scale: bold glyphs drawn a few
    // pixels tall fill their own counters and gaps.
    const int thin = static_cast<int>(std::lround(scale / 2.0));
    for (const int k : {0, thin}) {
      cv::Mat prepared = binary;
      if (k > 0)
        cv::dilate(binary, prepared,
                   cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(k + 1, k + 1)));
      cv::Mat padded;
      cv::copyMakeBorder(prepared, padded, pad, pad, pad, pad, cv::BORDER_CONSTANT,
                         cv::Scalar(255));
      if (auto read = read_pass(**engine, padded, at, reading.words); !read)
        return std::unexpected(read.error());
      if (thin == 0) break;
    }
    for (Word& w : reading.words) w.from_candidate = true;
    return reading;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

Result<std::vector<std::string>> reread(const Gray8& image, const Box& box) {
  try {
    auto engine = thread_engine();
    if (!engine) return std::unexpected(engine.error());
    const cv::Mat source = as_mat(image);
    const cv::Rect area = cv::Rect(box.x - 2, box.y - 2, box.width + 4, box.height + 4) &
                          cv::Rect(0, 0, source.cols, source.rows);
    if (area.empty()) return std::vector<std::string>{};
    cv::Mat crop = source(area).clone();
    // Dark text on light ground, as Tesseract's models were trained.
    if (cv::mean(crop)[0] < 128) cv::bitwise_not(crop, crop);
    std::vector<std::string> readings;
    const SegmentationMode mode(**engine, tesseract::PSM_SINGLE_LINE);
    for (const double scale : {2.0, 4.0}) {
      cv::Mat scaled, padded, binary;
      cv::resize(crop, scaled, cv::Size(), scale, scale, cv::INTER_CUBIC);
      for (const bool threshold : {false, true}) {
        if (threshold) {
          cv::threshold(scaled, binary, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
        } else {
          binary = scaled;
        }
        cv::copyMakeBorder(binary, padded, 16, 16, 16, 16, cv::BORDER_CONSTANT, cv::Scalar(255));
        (*engine)->SetImage(padded.data, padded.cols, padded.rows, 1,
                            static_cast<int>(padded.step));
        std::unique_ptr<char[]> text((*engine)->GetUTF8Text());
        if (!text) return fail(ErrorCode::internal, "Tesseract could not recognize the image");
        readings.emplace_back(text.get());
      }
    }
    return readings;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

}  // namespace radguard::redact

namespace radguard::redact {

namespace {

// The region's ground: the median of its outer ring (the detector's margin around the
// text); a grid line along one side does not move it.
double border_level(const cv::Mat& crop) {
  std::vector<std::uint8_t> ring;
  for (int x = 0; x < crop.cols; ++x) {
    ring.push_back(crop.at<std::uint8_t>(0, x));
    ring.push_back(crop.at<std::uint8_t>(crop.rows - 1, x));
  }
  for (int y = 1; y + 1 < crop.rows; ++y) {
    ring.push_back(crop.at<std::uint8_t>(y, 0));
    ring.push_back(crop.at<std::uint8_t>(y, crop.cols - 1));
  }
  if (ring.empty()) return 0;
  std::nth_element(ring.begin(), ring.begin() + static_cast<long>(ring.size() / 2), ring.end());
  return ring[ring.size() / 2];
}

// How much the region's outer ring strays from its level: the median absolute deviation
// (paper grain, speckle under a label).
double border_spread(const cv::Mat& crop, double level) {
  std::vector<double> ring;
  const auto add = [&](int y, int x) { ring.push_back(std::abs(crop.at<std::uint8_t>(y, x) - level)); };
  for (int x = 0; x < crop.cols; ++x) {
    add(0, x);
    add(crop.rows - 1, x);
  }
  for (int y = 1; y + 1 < crop.rows; ++y) {
    add(y, 0);
    add(y, crop.cols - 1);
  }
  if (ring.empty()) return 0;
  std::nth_element(ring.begin(), ring.begin() + static_cast<long>(ring.size() / 2), ring.end());
  return ring[ring.size() / 2];
}

// Dark text on a light ground, as Tesseract reads best: inverted when the ground is dark.
cv::Mat dark_on_light(const cv::Mat& crop) {
  cv::Mat out = crop.clone();
  if (border_level(crop) < cv::mean(crop)[0]) cv::bitwise_not(out, out);
  return out;
}

float mean_confidence(const std::vector<Word>& words) {
  if (words.empty()) return 0;
  float sum = 0;
  for (const Word& w : words) sum += w.confidence;
  return sum / static_cast<float>(words.size());
}

}  // namespace

std::vector<std::uint8_t> ink_mask(const Gray8& image, const Box& region) {
  const cv::Rect area = cv::Rect(region.x, region.y, region.width, region.height) &
                        cv::Rect(0, 0, static_cast<int>(image.width), static_cast<int>(image.height));
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(region.width) * region.height, 0);
  if (area.empty()) return mask;
  const cv::Mat crop = dark_on_light(as_mat(image)(area));
  double lo = 0, hi = 0;
  cv::minMaxLoc(crop, &lo, &hi);
  if (hi - lo < 4) return mask;  // a region of one flat grey has no ink whatever Otsu says
  cv::Mat ink;
  cv::threshold(crop, ink, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  // Otsu's level parts the strongest ink from the rest: a dim line sharing the region with a
  // bright one (an institution under an accession number) would count as ground. Marks
  // clearly darker than the ground (by kFaintContrast, and by 4x the ring's own spread), away
  // from the strong ink (its halo and JPEG ringing are not text) and glyph-sized, are ink too.
  const double ground = border_level(crop);
  const double least = std::max(kFaintContrast, 4.0 * border_spread(crop, ground));
  if (ground - least > lo) {
    cv::Mat faint, near;
    cv::threshold(crop, faint, ground - least, 255, cv::THRESH_BINARY_INV);
    cv::dilate(ink, near, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(5, 5)));
    faint.setTo(0, near);
    cv::Mat labels, stats, centroids;
    const int count = cv::connectedComponentsWithStats(faint, labels, stats, centroids, 8, CV_32S);
    for (int y = 0; y < faint.rows; ++y)
      for (int x = 0; x < faint.cols; ++x) {
        const int label = labels.at<int>(y, x);
        if (label <= 0 || label >= count) continue;
        if (stats.at<int>(label, cv::CC_STAT_HEIGHT) >= 3 && stats.at<int>(label, cv::CC_STAT_AREA) >= 6)
          ink.at<std::uint8_t>(y, x) = 255;
      }
  }
  // Rules are not text: horizontal strokes twice as long as the region is tall are removed.
  // Vertical ones are kept: inside a tight region they cannot be told from an I or an l.
  cv::Mat rules;
  cv::morphologyEx(ink, rules, cv::MORPH_OPEN,
                   cv::getStructuringElement(cv::MORPH_RECT, cv::Size(std::max(8, 2 * area.height), 1)));
  ink -= rules;
  for (int y = 0; y < area.height; ++y)
    for (int x = 0; x < area.width; ++x)
      mask[static_cast<std::size_t>(y + area.y - region.y) * region.width +
           static_cast<std::size_t>(x + area.x - region.x)] = ink.at<std::uint8_t>(y, x);
  return mask;
}

namespace {

// A box in a crop turned a quarter (cv::rotate) back to image pixels, in `area`.
Box turned_back(const Box& b, cv::RotateFlags turn, const cv::Rect& area) {
  if (turn == cv::ROTATE_90_CLOCKWISE) {
    // Turned clockwise, the crop's row r, column c lands at column H-1-r, row c.
    return Box{area.x + b.y, area.y + area.height - (b.x + b.width), b.height, b.width};
  }
  // Counter-clockwise: row r, column c lands at column r, row W-1-c.
  return Box{area.x + area.width - (b.y + b.height), area.y + b.x, b.height, b.width};
}

}  // namespace

Result<std::vector<Word>> read_region(const Gray8& image, const Box& region, bool vertical) {
  try {
    auto engine = thread_engine();
    if (!engine) return std::unexpected(engine.error());
    const cv::Mat source = as_mat(image);
    const cv::Rect area = cv::Rect(region.x, region.y, region.width, region.height) &
                          cv::Rect(0, 0, source.cols, source.rows);
    if (area.width < 2 || area.height < 2) return std::vector<Word>{};
    const cv::Mat upright = dark_on_light(source(area));
    const SegmentationMode mode(**engine, tesseract::PSM_SINGLE_LINE);
    // `placed`: boxes in image pixels; otherwise in the crop's own pixels (a turned crop).
    const auto read = [&](const cv::Mat& crop, std::vector<Word>& words, bool placed) -> Status {
      const double scale = std::clamp(40.0 / crop.rows, 1.0, 8.0);
      cv::Mat scaled;
      cv::resize(crop, scaled, cv::Size(), scale, scale, cv::INTER_CUBIC);
      const int pad = 12;
      cv::Mat padded;
      cv::copyMakeBorder(scaled, padded, pad, pad, pad, pad, cv::BORDER_REPLICATE);
      const Placement at = placed ? Placement{scale, pad, area.x, area.y, image.width, image.height}
                                  : Placement{scale, pad, 0, 0, static_cast<unsigned>(crop.cols),
                                              static_cast<unsigned>(crop.rows)};
      return read_pass(**engine, padded, at, words);
    };
    std::vector<Word> words;
    if (!vertical) {
      if (auto s = read(upright, words, true); !s) return std::unexpected(s.error());
      return words;
    }
    // A vertical label, read turned both ways; each word's box is turned back into the
    // region (a box standing for the whole region let a kept "Dr" beside a name keep the
    // name's ink too).
    std::vector<Word> best;
    cv::RotateFlags best_turn = cv::ROTATE_90_CLOCKWISE;
    for (const auto turn : {cv::ROTATE_90_CLOCKWISE, cv::ROTATE_90_COUNTERCLOCKWISE}) {
      cv::Mat turned;
      cv::rotate(upright, turned, turn);
      std::vector<Word> reading;
      if (auto s = read(turned, reading, false); !s) return std::unexpected(s.error());
      if (mean_confidence(reading) > mean_confidence(best)) {
        best = std::move(reading);
        best_turn = turn;
      }
    }
    for (Word& w : best) w.box = turned_back(w.box, best_turn, area);
    return best;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

}  // namespace radguard::redact
