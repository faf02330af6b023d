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

void read_pass(tesseract::TessBaseAPI& api, const cv::Mat& prepared, double scale, int pad,
               unsigned width, unsigned height, std::vector<Word>& words) {
  api.SetImage(prepared.data, prepared.cols, prepared.rows, 1, static_cast<int>(prepared.step));
  if (api.Recognize(nullptr) != 0) return;
  std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
  if (!it) return;
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
    const auto unscale = [&](int v, unsigned limit, bool upper) {
      const double original = (v - pad) / scale;
      const int rounded = static_cast<int>(upper ? std::ceil(original) : std::floor(original));
      return std::clamp(rounded, 0, static_cast<int>(limit));
    };
    const int x0 = unscale(left, width, false), y0 = unscale(top, height, false);
    const int x1 = unscale(right, width, true), y1 = unscale(bottom, height, true);
    word.box = Box{x0, y0, x1 - x0, y1 - y0};
    if (!word.box.empty()) words.push_back(std::move(word));
  } while (it->Next(tesseract::RIL_WORD));
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
    const cv::Mat source(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC1,
                         const_cast<std::uint8_t*>(image.pixels.data()));
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
      read_pass(**engine, padded, scale, pad, image.width, image.height, words);
    }
    (*engine)->Clear();
    return words;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

Result<std::vector<std::string>> reread(const Gray8& image, const Box& box) {
  try {
    auto engine = thread_engine();
    if (!engine) return std::unexpected(engine.error());
    const cv::Mat source(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC1,
                         const_cast<std::uint8_t*>(image.pixels.data()));
    const cv::Rect area = cv::Rect(box.x - 2, box.y - 2, box.width + 4, box.height + 4) &
                          cv::Rect(0, 0, source.cols, source.rows);
    if (area.empty()) return std::vector<std::string>{};
    cv::Mat crop = source(area).clone();
    // Dark text on light ground, as Tesseract's models were trained.
    if (cv::mean(crop)[0] < 128) cv::bitwise_not(crop, crop);
    std::vector<std::string> readings;
    (*engine)->SetPageSegMode(tesseract::PSM_SINGLE_LINE);
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
        if (text) readings.emplace_back(text.get());
      }
    }
    (*engine)->SetPageSegMode(tesseract::PSM_SPARSE_TEXT);
    (*engine)->Clear();
    return readings;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("OCR failed: ") + e.what());
  }
}

}  // namespace radguard::redact
