#include "redact/text_detector.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>

#ifndef RADGUARD_MODEL_DIR
#define RADGUARD_MODEL_DIR "/usr/local/share/radguard/models"
#endif

namespace radguard::redact {

namespace {

constexpr const char* kModelFile = "ppocrv4_det.onnx";

// PP-OCR's DB post-processing, as PaddleOCR ships it: pixels above kPixelThreshold are text;
// a region is kept when its mean probability reaches kRegionThreshold, and grown by
// kUnclipRatio (DB shrinks its targets in training, so its raw regions hug the glyph cores).
constexpr float kPixelThreshold = 0.3F;
constexpr float kRegionThreshold = 0.5F;
constexpr double kUnclipRatio = 1.6;
// The network's input sides are multiples of 32; larger images are scaled down to this
// longest side (scanned pages), smaller text than ~6 px there is not expected.
constexpr int kStride = 32;
constexpr int kMaxSide = 1600;
// Small-text tiles whose grey levels span less than this are stretched to the full range.
constexpr double kStretchBelow = 64;

cv::Mat as_mat(const Gray8& image) {
  return cv::Mat(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC1,
                 const_cast<std::uint8_t*>(image.pixels.data()));
}

// The network of this thread for one input size. cv::dnn::Net is not safe to share between
// threads, and OpenCV 4.6 keeps the shapes of the first input it ran (a later input of
// another size gives an empty map): one network per size, the few most recent kept.
Result<cv::dnn::Net*> thread_network(cv::Size size) {
  struct Loaded {
    cv::Size size;
    cv::dnn::Net net;
  };
  thread_local std::vector<Loaded> networks;
  for (Loaded& loaded : networks)
    if (loaded.size == size) return &loaded.net;
  auto path = text_detector_model();
  if (!path) return std::unexpected(path.error());
  cv::dnn::Net net;
  try {
    net = cv::dnn::readNetFromONNX(path->string());
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, "the text detector model cannot be loaded: " +
                                         std::string(e.what()));
  }
  if (net.empty()) return fail(ErrorCode::internal, "the text detector model is empty");
  constexpr std::size_t kKept = 4;
  if (networks.size() == kKept) networks.erase(networks.begin());
  networks.push_back(Loaded{size, std::move(net)});
  return &networks.back().net;
}

// The maps of this thread's latest forward passes, by their exact input. The same pixels
// reach the detector more than once in a file: a clip's frames without colour are one black
// frame in each colour render (every pass of it), and the check after the fill shows the
// detector a colour render, or a mosaic of marks, that the fill left as it was. The network
// is a function of its input alone, so such a map is taken again, not computed again: the
// outputs do not change, the time does. Bounded by kRememberedBytes (inputs and maps).
constexpr std::size_t kRememberedBytes = std::size_t{48} << 20;

struct RememberedMap {
  cv::Mat input;  // continuous CV_8U copy of what probability() was given
  int max_side = 0;
  cv::Mat map;
  [[nodiscard]] std::size_t bytes() const {
    return input.total() * input.elemSize() + map.total() * map.elemSize();
  }
};

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) return false;
  const std::size_t row = static_cast<std::size_t>(a.cols) * a.elemSize();
  for (int y = 0; y < a.rows; ++y)
    if (std::memcmp(a.ptr(y), b.ptr(y), row) != 0) return false;
  return true;
}

std::deque<RememberedMap>& remembered_maps() {
  thread_local std::deque<RememberedMap> maps;
  return maps;
}

std::optional<cv::Mat> remembered_map(const cv::Mat& grey, int max_side) {
  auto& maps = remembered_maps();
  for (auto it = maps.begin(); it != maps.end(); ++it) {
    if (it->max_side != max_side || !same_pixels(it->input, grey)) continue;
    RememberedMap found = std::move(*it);  // most recent use last
    maps.erase(it);
    maps.push_back(std::move(found));
    return maps.back().map.clone();
  }
  return std::nullopt;
}

void remember_map(const cv::Mat& grey, int max_side, const cv::Mat& map) {
  // Sized before anything is copied: an image too large to remember costs no copy, and the
  // oldest maps go before the new one is made, so the bound holds at every moment.
  const std::size_t bytes = grey.total() * grey.elemSize() + map.total() * map.elemSize();
  if (bytes > kRememberedBytes) return;
  auto& maps = remembered_maps();
  std::size_t total = bytes;
  for (const RememberedMap& m : maps) total += m.bytes();
  while (total > kRememberedBytes && !maps.empty()) {
    total -= maps.front().bytes();
    maps.pop_front();
  }
  maps.push_back(RememberedMap{grey.clone(), max_side, map.clone()});
}

// One forward pass of this thread's network.
Result<cv::Mat> forward_pass(const cv::Mat& grey, int max_side) {
  const double scale =
      std::min(1.0, static_cast<double>(max_side) / std::max(grey.cols, grey.rows));
  cv::Mat input = grey;
  if (scale < 1.0) cv::resize(grey, input, cv::Size(), scale, scale, cv::INTER_AREA);
  const int width = (input.cols + kStride - 1) / kStride * kStride;
  const int height = (input.rows + kStride - 1) / kStride * kStride;
  auto net = thread_network(cv::Size(width, height));
  if (!net) return std::unexpected(net.error());
  cv::Mat padded, colour;
  // Replicated edges: a black border next to light ground would read as an edge of text.
  cv::copyMakeBorder(input, padded, 0, height - input.rows, 0, width - input.cols,
                     cv::BORDER_REPLICATE);
  cv::cvtColor(padded, colour, cv::COLOR_GRAY2BGR);
  // PP-OCR's normalisation: RGB, ImageNet mean, scale ~1/(255 * 0.226).
  const cv::Mat blob = cv::dnn::blobFromImage(colour, 1.0 / 57.63, cv::Size(),
                                              cv::Scalar(123.675, 116.28, 103.53), true, false);
  (*net)->setInput(blob);
  const cv::Mat out = (*net)->forward();
  if (out.dims != 4 || out.size[2] != height || out.size[3] != width)
    return fail(ErrorCode::internal, "the text detector gave a map of the wrong size");
  const cv::Mat map(out.size[2], out.size[3], CV_32F, const_cast<float*>(out.ptr<float>()));
  cv::Mat cropped = map(cv::Rect(0, 0, input.cols, input.rows)).clone();
  if (scale < 1.0) cv::resize(cropped, cropped, grey.size(), 0, 0, cv::INTER_LINEAR);
  return cropped;
}

// The probability map at the image's own size: remembered, or from one forward pass.
Result<cv::Mat> probability(const cv::Mat& grey, int max_side = kMaxSide) {
  if (auto known = remembered_map(grey, max_side)) return std::move(*known);
  auto map = forward_pass(grey, max_side);
  if (map) remember_map(grey, max_side, *map);
  return map;
}

// Dim text on a dark ground (grey 10 on 0) and pale text on a light ground (a stamp, a
// form's light grey print) lie in a few grey levels: a gamma curve spreads the end of the
// range the ground is at (dark grounds brightened, light grounds darkened).
cv::Mat stretched(const cv::Mat& grey) {
  std::vector<std::uint8_t> copy(grey.begin<std::uint8_t>(), grey.end<std::uint8_t>());
  std::nth_element(copy.begin(), copy.begin() + static_cast<long>(copy.size() / 2), copy.end());
  const double gamma = copy[copy.size() / 2] < 128 ? 0.4 : 3.0;
  cv::Mat lut(1, 256, CV_8U);
  for (int v = 0; v < 256; ++v)
    lut.at<std::uint8_t>(v) = cv::saturate_cast<std::uint8_t>(255.0 * std::pow(v / 255.0, gamma));
  cv::Mat out;
  cv::LUT(grey, lut, out);
  return out;
}

std::vector<TextRegion> regions_of(const cv::Mat& map) {
  cv::Mat binary = map > kPixelThreshold;
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(binary, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  std::vector<TextRegion> regions;
  const cv::Rect bounds(0, 0, map.cols, map.rows);
  for (const auto& contour : contours) {
    const cv::Rect r = cv::boundingRect(contour) & bounds;
    if (r.width < 2 || r.height < 2) continue;
    cv::Mat mask = cv::Mat::zeros(r.size(), CV_8U);
    cv::drawContours(mask, std::vector<std::vector<cv::Point>>{contour}, 0, cv::Scalar(255),
                     cv::FILLED, cv::LINE_8, cv::noArray(), 0, cv::Point(-r.x, -r.y));
    const float score = static_cast<float>(cv::mean(map(r), mask)[0]);
    if (score < kRegionThreshold) continue;
    const double area = cv::contourArea(contour);
    const double length = std::max(1.0, cv::arcLength(contour, true));
    const int grow = static_cast<int>(std::ceil(std::max(area, 1.0) * kUnclipRatio / length)) + 1;
    const cv::Rect grown =
        cv::Rect(r.x - grow, r.y - grow, r.width + 2 * grow, r.height + 2 * grow) & bounds;
    TextRegion region;
    region.box = Box{grown.x, grown.y, grown.width, grown.height};
    region.core = Box{r.x, r.y, r.width, r.height};
    region.score = score;
    region.vertical = grown.height > 2 * grown.width;
    regions.push_back(region);
  }
  return regions;
}

bool mostly_inside(const Box& a, const Box& b) {  // most of a lies in b
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width);
  const int y1 = std::min(a.y + a.height, b.y + b.height);
  if (x1 <= x0 || y1 <= y0) return false;
  const double overlap = static_cast<double>(x1 - x0) * (y1 - y0);
  return overlap >= 0.7 * static_cast<double>(a.width) * a.height;
}

// A label written top-down (a rotated stamp) comes out of the detector, trained on lines, as
// a stack of short pieces, one or two letters each: pieces no wider than twice their height,
// sharing most of their columns, less than a piece apart, are joined into one vertical region
// so it is read turned as a whole. `regions` is sorted top to bottom.
std::vector<TextRegion> stacked_into_columns(std::vector<TextRegion> regions) {
  const auto piece = [](const Box& b) { return b.width <= 2 * b.height; };
  std::vector<bool> used(regions.size(), false);
  std::vector<TextRegion> out;
  for (std::size_t i = 0; i < regions.size(); ++i) {
    if (used[i]) continue;
    TextRegion column = regions[i];
    std::vector<std::size_t> joined;
    if (piece(column.box)) {
      for (std::size_t j = i + 1; j < regions.size(); ++j) {
        const Box& b = regions[j].box;
        if (used[j] || !piece(b)) continue;
        const int x0 = std::max(column.box.x, b.x);
        const int x1 = std::min(column.box.x + column.box.width, b.x + b.width);
        const int gap = b.y - (column.box.y + column.box.height);
        if (x1 - x0 < std::min(column.box.width, b.width) * 7 / 10 || gap > b.height) continue;
        const int y1 = std::max(column.box.y + column.box.height, b.y + b.height);
        const int left = std::min(column.box.x, b.x);
        const int right = std::max(column.box.x + column.box.width, b.x + b.width);
        column.box = Box{left, column.box.y, right - left, y1 - column.box.y};
        joined.push_back(j);
      }
    }
    // Two short labels one above the other are not a column: three pieces or more, and tall.
    if (joined.size() >= 2 && column.box.height * 2 > column.box.width * 5) {
      for (const std::size_t j : joined) used[j] = true;
      column.vertical = true;
      column.core = column.box;
      out.push_back(column);
    } else {
      out.push_back(regions[i]);
    }
  }
  return out;
}

// The second pass adds what the first missed; a region both found is kept once, the larger
// (with every piece of it the first pass had).
std::vector<TextRegion> merged(std::vector<TextRegion> first, const std::vector<TextRegion>& more) {
  for (const TextRegion& candidate : more) {
    if (std::any_of(first.begin(), first.end(), [&](const TextRegion& existing) {
          return mostly_inside(candidate.box, existing.box);
        }))
      continue;
    // Every piece the larger region holds gives way to it.
    std::erase_if(first, [&](const TextRegion& existing) {
      return mostly_inside(existing.box, candidate.box);
    });
    first.push_back(candidate);
  }
  std::sort(first.begin(), first.end(), [](const TextRegion& a, const TextRegion& b) {
    return a.box.y != b.box.y ? a.box.y < b.box.y : a.box.x < b.box.x;
  });
  return stacked_into_columns(std::move(first));
}

// Labels written top-down or bottom-up (a pale stamp turned on a scanned page, a probe label
// along the edge) reach the detector, trained on lines, as short upright pieces: where two or
// more such pieces stand one above the other, the area around them is turned a quarter and
// shown to the detector again, and the lines it finds there come back as vertical regions.
bool upright_piece(const Box& b) { return b.height >= 12 && b.height * 5 >= b.width * 4; }

Result<std::vector<TextRegion>> turned_labels(const cv::Mat& grey,
                                              const std::vector<TextRegion>& regions) {
  std::vector<TextRegion> found;
  std::vector<cv::Rect> areas;
  const cv::Rect bounds(0, 0, grey.cols, grey.rows);
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const Box& a = regions[i].box;
    if (!upright_piece(a)) continue;
    for (std::size_t j = 0; j < regions.size(); ++j) {
      const Box& b = regions[j].box;
      if (i == j || !upright_piece(b)) continue;
      const int shared = std::min(a.x + a.width, b.x + b.width) - std::max(a.x, b.x);
      const int gap = std::max(a.y, b.y) - std::min(a.y + a.height, b.y + b.height);
      if (shared * 2 < std::min(a.width, b.width) || gap > 2 * std::max(a.height, b.height)) continue;
      const cv::Rect both = cv::Rect(a.x, a.y, a.width, a.height) | cv::Rect(b.x, b.y, b.width, b.height);
      const int reach = std::max(both.height, 80);
      const cv::Rect area =
          cv::Rect(both.x - both.width / 2, both.y - reach, both.width * 2, both.height + 2 * reach) & bounds;
      bool known = false;
      for (cv::Rect& other : areas)
        if ((other & area).area() > 0) {
          other |= area;
          known = true;
        }
      if (!known) areas.push_back(area);
    }
  }
  constexpr int kCanvasWidth = 960, kCanvasHeight = 480;
  for (const cv::Rect& area : areas) {
    cv::Mat turned;
    cv::rotate(grey(area), turned, cv::ROTATE_90_CLOCKWISE);  // bottom-up text reads left to right
    const double scale = std::min({1.0, static_cast<double>(kCanvasWidth) / turned.cols,
                                   static_cast<double>(kCanvasHeight) / turned.rows});
    if (scale < 1.0) cv::resize(turned, turned, cv::Size(), scale, scale, cv::INTER_AREA);
    std::vector<std::uint8_t> values(turned.begin<std::uint8_t>(), turned.end<std::uint8_t>());
    std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2), values.end());
    cv::Mat canvas(kCanvasHeight, kCanvasWidth, CV_8U, cv::Scalar(values[values.size() / 2]));
    turned.copyTo(canvas(cv::Rect(0, 0, turned.cols, turned.rows)));
    for (const cv::Mat& shown : {canvas, stretched(canvas)}) {
      auto map = probability(shown);
      if (!map) return std::unexpected(map.error());
      for (const TextRegion& r : regions_of(*map)) {
        // Back from the turned canvas: x there is height here, counted from the area's bottom.
        const int x0 = static_cast<int>(r.box.x / scale), y0 = static_cast<int>(r.box.y / scale);
        const int w = static_cast<int>(std::ceil(r.box.width / scale));
        const int h = static_cast<int>(std::ceil(r.box.height / scale));
        if (x0 >= area.height || y0 >= area.width) continue;
        const cv::Rect back =
            cv::Rect(area.x + y0, area.y + area.height - x0 - w, h, w) & bounds;
        if (back.height <= back.width) continue;  // a line across the turned view only
        const Box turned_box{back.x, back.y, back.width, back.height};
        found.push_back(TextRegion{turned_box, r.score, true, turned_box});
      }
    }
  }
  return found;
}

// Text 5-10 px tall lies under the scale the network was trained at: at the image's own size
// its map stays under the thresholds (a 7 px name, a 4-6 px date in a clip). Frames up to
// kTwiceUpTo px are shown again at twice their size, inside a replicated border of one
// stride at the top and left (kept on the network's grid; text from column 0 or row 0 scores
// low at the map's edge otherwise). Only what the image's own scale did not see is taken:
// lines up to kSmallLine px tall, and regions within kNearEdge px of the image's edge.
constexpr int kTwiceUpTo = 1024;
constexpr int kSmallLine = 14;
constexpr int kNearEdge = 3;

// Faint print on a flat ground (6-10 grey levels above it, the date line of an ultrasound
// bar) is spread kFlatGain times around mid-grey, measured from the ground's local median;
// where the ground varies (speckle, anatomy, bright text) the image keeps its own contrast,
// so texture is not made into text.
constexpr double kFlatGain = 6;
constexpr double kFlatBelow = 6;  // standard deviation over 15 x 15 px, grey levels
constexpr int kGroundWindow = 21;

cv::Mat flat_ground_gain(const cv::Mat& grey) {
  cv::Mat ground, values, mean, squares;
  cv::medianBlur(grey, ground, kGroundWindow);
  grey.convertTo(values, CV_32F);
  cv::boxFilter(values, mean, CV_32F, cv::Size(15, 15));
  cv::boxFilter(values.mul(values), squares, CV_32F, cv::Size(15, 15));
  cv::Mat spread = squares - mean.mul(mean);
  cv::Mat flat = spread < kFlatBelow * kFlatBelow;
  cv::Mat difference;
  ground.convertTo(ground, CV_32F);
  cv::subtract(values, ground, difference);
  // Noise on the flat ground (a frame with grain, JPEG) would be spread as much as print: the
  // gain falls with the square of the median step between neighbouring flat pixels.
  cv::Mat step;
  cv::absdiff(grey(cv::Rect(1, 0, grey.cols - 1, grey.rows)), grey(cv::Rect(0, 0, grey.cols - 1, grey.rows)), step);
  std::vector<std::size_t> histogram(256, 0);
  std::size_t counted = 0;
  for (int y = 0; y < step.rows; ++y)
    for (int x = 0; x < step.cols; ++x)
      if (flat.at<std::uint8_t>(y, x) != 0) {
        ++histogram[step.at<std::uint8_t>(y, x)];
        ++counted;
      }
  int median_step = 0;
  for (std::size_t seen = 0; median_step < 255 && seen + histogram[static_cast<std::size_t>(median_step)] <= counted / 2;
       ++median_step)
    seen += histogram[static_cast<std::size_t>(median_step)];
  const double noise = std::max(1, median_step);
  const double flat_gain = std::max(1.0, kFlatGain / (noise * noise));
  cv::Mat gain(grey.size(), CV_32F, cv::Scalar(1.0));
  gain.setTo(flat_gain, flat);
  cv::Mat out;
  cv::Mat(difference.mul(gain) + 128.0).convertTo(out, CV_8U);
  return out;
}

Result<std::vector<TextRegion>> small_text_at_twice(const cv::Mat& grey) {
  std::vector<TextRegion> found;
  if (std::max(grey.cols, grey.rows) > kTwiceUpTo) return found;
  cv::Mat twice, bordered;
  cv::resize(flat_ground_gain(grey), twice, cv::Size(), 2, 2, cv::INTER_CUBIC);
  cv::copyMakeBorder(twice, bordered, kStride, 0, kStride, 0, cv::BORDER_REPLICATE);
  auto map = probability(bordered, 2 * kTwiceUpTo + kStride);
  if (!map) return std::unexpected(map.error());
  const cv::Rect bounds(0, 0, grey.cols, grey.rows);
  const auto back = [&](const Box& b) {
    const int x0 = (b.x - kStride) / 2, y0 = (b.y - kStride) / 2;  // may be negative: clipped
    const int x1 = (b.x + b.width - kStride + 1) / 2, y1 = (b.y + b.height - kStride + 1) / 2;
    const cv::Rect r = cv::Rect(x0, y0, x1 - x0, y1 - y0) & bounds;
    return Box{r.x, r.y, r.width, r.height};
  };
  for (const TextRegion& r : regions_of(*map)) {
    TextRegion region = r;
    region.box = back(r.box);
    region.core = back(r.core.width > 0 ? r.core : r.box);
    if (region.box.width < 2 || region.box.height < 2 || region.core.width < 1) continue;
    // The replicated border drawn streaks of the first row and column: a region lying mostly
    // in it is the streaks, not text.
    const Box& raw = r.core.width > 0 ? r.core : r.box;
    const long inside = static_cast<long>(std::max(0, std::min(raw.x + raw.width, bordered.cols) - std::max(raw.x, kStride))) *
                        std::max(0, std::min(raw.y + raw.height, bordered.rows) - std::max(raw.y, kStride));
    if (inside * 2 < static_cast<long>(raw.width) * raw.height) continue;
    // Grain scaled up makes glyph-sized blobs: only lines (wider than 1.5 their height, 10 px
    // or more) are taken from this pass; lone glyphs are the image's own scale's to find.
    if (region.core.width < std::max(10, region.core.height * 3 / 2)) continue;
    const bool small = region.core.height <= kSmallLine;
    const bool at_edge = region.box.x <= kNearEdge || region.box.y <= kNearEdge ||
                         region.box.x + region.box.width >= grey.cols - kNearEdge ||
                         region.box.y + region.box.height >= grey.rows - kNearEdge;
    if (!small && !at_edge) continue;
    region.vertical = region.box.height > 2 * region.box.width;
    found.push_back(region);
  }
  return found;
}

}  // namespace

Result<std::filesystem::path> text_detector_model() {
  std::vector<std::filesystem::path> folders;
  if (const char* env = std::getenv("RADGUARD_MODELS"); env != nullptr && *env != '\0')
    folders.emplace_back(env);
  folders.emplace_back(RADGUARD_MODEL_DIR);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    folders.push_back(std::filesystem::path(home) / ".local/share/radguard/models");
  std::string searched;
  for (const auto& folder : folders) {
    std::error_code ec;
    const auto candidate = folder / kModelFile;
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    searched += (searched.empty() ? "" : ", ") + folder.string();
  }
  return fail(ErrorCode::unsupported,
              std::string("the text detector model (") + kModelFile + ") is not installed (looked in " +
                  searched + "); run scripts/install-models.sh");
}

void forget_detector_maps() { remembered_maps().clear(); }

Result<std::vector<TextRegion>> detect_text(const Gray8& image, DetectPasses passes) {
  if (image.width < 8 || image.height < 8) return std::vector<TextRegion>{};
  try {
    const cv::Mat grey = as_mat(image);
    auto plain = probability(grey);
    if (!plain) return std::unexpected(plain.error());
    if (passes == DetectPasses::plain) return merged(regions_of(*plain), {});
    // (A third pass on a CLAHE-equalised copy was measured: +0.1% recall on one seed, none
    // on another, 12-15% slower; not kept.)
    auto dim = probability(stretched(grey));
    if (!dim) return std::unexpected(dim.error());
    std::vector<TextRegion> found = merged(regions_of(*plain), regions_of(*dim));
    auto small = small_text_at_twice(grey);
    if (!small) return std::unexpected(small.error());
    found = merged(std::move(found), *small);
    auto turned = turned_labels(grey, found);
    if (!turned) return std::unexpected(turned.error());
    return merged(std::move(found), *turned);
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("text detection failed: ") + e.what());
  }
}

Result<std::vector<TextRegion>> confirm_small_text(const Gray8& image,
                                                   const std::vector<Box>& candidates) {
  std::vector<TextRegion> confirmed;
  if (candidates.empty()) return confirmed;
  // One canvas size, so one network serves every mosaic (see thread_network).
  constexpr int kCanvasWidth = 960, kCanvasHeight = 480, kBorder = 8;
  struct Tile {
    std::size_t candidate;
    cv::Rect at;  // in the canvas
  };
  try {
    const cv::Mat grey = as_mat(image);
    const cv::Rect bounds(0, 0, grey.cols, grey.rows);
    cv::Mat canvas(kCanvasHeight, kCanvasWidth, CV_8U, cv::Scalar(0));
    std::vector<Tile> tiles;
    std::vector<bool> done(candidates.size(), false);
    int x = 0, y = 0, row_height = 0;
    const auto run = [&]() -> Status {
      if (tiles.empty()) return {};
      auto map = probability(canvas);
      if (!map) return std::unexpected(map.error());
      for (const TextRegion& region : regions_of(*map)) {
        const cv::Point centre(region.box.x + region.box.width / 2,
                               region.box.y + region.box.height / 2);
        for (const Tile& tile : tiles) {
          if (!tile.at.contains(centre) || done[tile.candidate]) continue;
          done[tile.candidate] = true;
          const Box& c = candidates[tile.candidate];
          const int grow = std::max(2, c.height / 4);
          const cv::Rect r =
              cv::Rect(c.x - grow, c.y - grow, c.width + 2 * grow, c.height + 2 * grow) & bounds;
          confirmed.push_back(TextRegion{Box{r.x, r.y, r.width, r.height}, region.score,
                                         r.height > 2 * r.width, c});
        }
      }
      canvas.setTo(0);
      tiles.clear();
      x = y = row_height = 0;
      return {};
    };
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      const Box& c = candidates[i];
      const int pad = std::max(3, c.height / 2);
      const cv::Rect area = cv::Rect(c.x - pad, c.y - pad, c.width + 2 * pad, c.height + 2 * pad) & bounds;
      if (area.width < 2 || area.height < 2) continue;
      double scale = std::clamp(30.0 / std::max(1, c.height), 2.0, 4.0);
      scale = std::min(scale, static_cast<double>(kCanvasWidth - 2 * kBorder) / area.width);
      scale = std::min(scale, static_cast<double>(kCanvasHeight - 2 * kBorder) / area.height);
      cv::Mat tile;
      cv::resize(grey(area), tile, cv::Size(), scale, scale, cv::INTER_CUBIC);
      // Faint marks (10-30 grey levels) are stretched to the full range: the detector was
      // trained on text that stands out, and the candidate is line-shaped already.
      double lo = 0, hi = 0;
      cv::minMaxLoc(tile, &lo, &hi);
      if (hi - lo >= 4 && hi - lo < kStretchBelow)
        tile.convertTo(tile, CV_8U, 255.0 / (hi - lo), -lo * 255.0 / (hi - lo));
      cv::copyMakeBorder(tile, tile, kBorder, kBorder, kBorder, kBorder, cv::BORDER_REPLICATE);
      if (x + tile.cols > kCanvasWidth) {
        x = 0;
        y += row_height;
        row_height = 0;
      }
      if (y + tile.rows > kCanvasHeight) {
        if (auto s = run(); !s) return std::unexpected(s.error());
      }
      const cv::Rect at(x, y, tile.cols, tile.rows);
      tile.copyTo(canvas(at));
      tiles.push_back(Tile{i, at});
      x += tile.cols;
      row_height = std::max(row_height, tile.rows);
    }
    if (auto s = run(); !s) return std::unexpected(s.error());
    return confirmed;
  } catch (const std::exception& e) {
    return fail(ErrorCode::internal, std::string("text detection failed: ") + e.what());
  }
}

}  // namespace radguard::redact
