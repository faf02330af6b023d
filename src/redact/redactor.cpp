// One file through the pixel stage: triage, decode, OCR, fill, verify, re-encode, record.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <tuple>

#include "pixels/pixels.hpp"
#include "redact/ocr.hpp"
#include "redact/redact.hpp"
#include "redact/regions.hpp"
#include "redact/text_detector.hpp"

namespace radguard::redact {

namespace {

constexpr Tag kBurnedInAnnotation{0x0028, 0x0301};
constexpr Tag kDeidentificationMethodCodes{0x0012, 0x0064};
constexpr Tag kCodeValue{0x0008, 0x0100};
constexpr Tag kCodingSchemeDesignator{0x0008, 0x0102};
constexpr Tag kCodeMeaning{0x0008, 0x0104};

// Tesseract word confidences: above kCertain a reading is taken as is; below kUnreliable
// a looser comparison is allowed.
constexpr float kCertain = 85;
constexpr float kUnreliable = 60;

bool has_alnum(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

// A re-read box may hold several words: each, and each pair of neighbours, is tried.
std::optional<Category> match_any_piece(const PhiMatcher& matcher, const std::string& reading) {
  std::vector<std::string> pieces;
  std::string current;
  for (const char c : reading) {
    if (c == ' ' || c == '\n' || c == '\t') {
      if (!current.empty()) pieces.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) pieces.push_back(std::move(current));
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (auto category = matcher.match(pieces[i])) return category;
    if (i + 1 < pieces.size())
      if (auto category = matcher.match_across(pieces[i], pieces[i + 1])) return category;
  }
  return std::nullopt;
}

// A fragment of a longer value ("PID1" of "PID12345") was matched: widen its box to where
// the rest of the value must be, on both sides, since OCR did not say which part it saw.
Box widened(Box box, double ratio) {
  if (ratio <= 1.05) return box;
  const int extra = static_cast<int>(std::ceil(box.width * (ratio - 1.0)));
  return Box{box.x - extra, box.y, box.width + 2 * extra, box.height};
}

// A word box, widened by the margin, and sideways by a third of the text height: OCR boxes
// often cut off a thin first or last glyph ('1', '-', '.').
Box around_word(Box box, int margin) {
  const int side = std::max(0, box.height / 3 - margin);
  return Box{box.x - side, box.y, box.width + 2 * side, box.height};
}

Box clipped(Box box, int margin, const dicom::PixelImage& image) {
  int x0 = box.x - margin, y0 = box.y - margin;
  int x1 = box.x + box.width + margin, y1 = box.y + box.height + margin;
  x0 = std::clamp(x0, 0, static_cast<int>(image.width));
  y0 = std::clamp(y0, 0, static_cast<int>(image.height));
  x1 = std::clamp(x1, 0, static_cast<int>(image.width));
  y1 = std::clamp(y1, 0, static_cast<int>(image.height));
  if (image.photometric == dicom::Photometric::ybr_full_422) {
    // Chroma is shared by pixel pairs: fill whole pairs.
    x0 -= x0 % 2;
    x1 = std::min(static_cast<int>(image.width), x1 + x1 % 2);
  }
  return Box{x0, y0, x1 - x0, y1 - y0};
}

// The stored samples of black for this frame: the darkest value present for monochrome
// (so the fill matches the image's own background), zero for RGB, the darkest palette entry.
std::vector<std::uint16_t> black_of(const dicom::PixelImage& image, std::size_t frame) {
  const auto& in = image.frames[frame];
  switch (image.photometric) {
    case dicom::Photometric::monochrome1:
    case dicom::Photometric::monochrome2: {
      const bool max_is_black = image.photometric == dicom::Photometric::monochrome1;
      std::uint16_t best = in.empty() ? 0 : in[0];
      for (const auto s : in) {
        const bool darker = max_is_black ? image.value_of(s) > image.value_of(best)
                                         : image.value_of(s) < image.value_of(best);
        if (darker) best = s;
      }
      return {best};
    }
    case dicom::Photometric::rgb:
      return {0, 0, 0};
    case dicom::Photometric::ybr_full:
    case dicom::Photometric::ybr_full_422: {
      const auto mid = static_cast<std::uint16_t>(1u << (image.bits_stored - 1));
      return {0, mid, mid};
    }
    case dicom::Photometric::palette_color: {
      const auto& lut = image.palette;
      std::size_t darkest = 0;
      std::uint32_t darkest_sum = UINT32_MAX;
      for (std::size_t i = 0; i < lut.red.size(); ++i) {
        const std::uint32_t sum = std::uint32_t{lut.red[i]} + lut.green[i] + lut.blue[i];
        if (sum < darkest_sum) {
          darkest_sum = sum;
          darkest = i;
        }
      }
      return {static_cast<std::uint16_t>(static_cast<std::int64_t>(darkest) + lut.first_mapped)};
    }
  }
  return {0};
}

void fill(dicom::PixelImage& image, std::size_t frame, const Box& box,
          const std::vector<std::uint16_t>& black) {
  auto& samples = image.frames[frame];
  for (int y = box.y; y < box.y + box.height; ++y) {
    for (int x = box.x; x < box.x + box.width; ++x) {
      const std::size_t pixel =
          static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x);
      for (unsigned s = 0; s < image.samples; ++s)
        samples[pixel * image.samples + s] = black[s % black.size()];
    }
  }
}

// The De-identification Method Code Sequence as it stands, so 113101 is added, not swapped in.
std::vector<dicom::CodeItem> existing_codes(const dicom::DicomFile& file) {
  std::vector<dicom::CodeItem> codes;
  file.visit([&](const dicom::ElementView& element) {
    if (element.path.size() != 1 || element.path[0] != kDeidentificationMethodCodes) return;
    if (element.tag == kCodeValue) codes.push_back({std::string(element.value), "", ""});
    if (codes.empty()) return;
    if (element.tag == kCodingSchemeDesignator) codes.back().scheme = std::string(element.value);
    if (element.tag == kCodeMeaning) codes.back().meaning = std::string(element.value);
  });
  return codes;
}

Status record_clean(dicom::DicomFile& file) {
  auto codes = existing_codes(file);
  const bool present = std::any_of(codes.begin(), codes.end(), [](const dicom::CodeItem& c) {
    return c.value == "113101" && c.scheme == "DCM";
  });
  if (!present) codes.push_back({"113101", "DCM", "Clean Pixel Data Option"});
  if (auto s = file.set_code_sequence(kDeidentificationMethodCodes, codes); !s) return s;
  return file.set_string(kBurnedInAnnotation, "NO");
}

// The words read from one text candidate, matched like full-frame words; a match covers the
// candidate's whole height (its box comes from the ink, OCR's from a scaled crop).
void redact_candidate(const CandidateReading& candidate, const PhiMatcher& matcher,
                      const RedactOptions& options, const dicom::PixelImage& image,
                      std::size_t frame, FileRedaction& result) {
  const std::vector<Word>& words = candidate.words;
  const Box& line = candidate.ink;
  const auto in_line = [&](Box box) {
    const int x0 = std::max(box.x, line.x);
    const int x1 = std::min(box.x + box.width, line.x + line.width);
    return Box{x0, line.y, std::max(0, x1 - x0), line.height};
  };
  // A fragment's box is widened to where the rest of its value must be, but not beyond the
  // line's own ink (and a glyph's width of slack): neighbours are other lines or candidates.
  const auto within_line = [&](Box box) {
    const int x0 = std::max(box.x, line.x - line.height);
    const int x1 = std::min(box.x + box.width, line.x + line.width + line.height);
    return Box{x0, box.y, std::max(0, x1 - x0), box.height};
  };
  const auto add = [&](Box box, Category category, double ratio) {
    const Box b = clipped(within_line(around_word(widened(in_line(box), ratio), options.margin)),
                          options.margin, image);
    if (!b.empty()) result.redactions.push_back({frame, b, category});
  };
  // All-text mode fails closed: a text-like line nobody can read is not known to be safe.
  if (options.mode == Mode::all_text &&
      std::none_of(words.begin(), words.end(), [](const Word& w) { return has_alnum(w.text); })) {
    add(line, Category::text, 1.0);
    return;
  }
  std::vector<std::optional<Category>> categories(words.size());
  for (std::size_t i = 0; i < words.size(); ++i) {
    const Word& word = words[i];
    std::optional<Category> category = matcher.match(word.text);
    if (!category && options.mode == Mode::all_text && has_alnum(word.text))
      category = Category::text;
    if (!category && word.confidence < kUnreliable) category = matcher.match_loosely(word.text);
    if (category) {
      add(word.box, *category, matcher.fragment_ratio(word.text));
      categories[i] = category;
    }
    if (i + 1 < words.size()) {
      const Word& next = words[i + 1];
      if (next.box.x < word.box.x) continue;  // the next reading of the line starts over
      if (auto across = matcher.match_across(word.text, next.text)) {
        add(word.box, *across, 1.0);
        add(next.box, *across, 1.0);
      }
    }
  }
  // Fail closed next to a match: a word OCR could barely read, in the same small line as an
  // identifying one ("DOE J0OBN"), is most likely the rest of it.
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (categories[i] || words[i].confidence >= kUnreliable) continue;
    for (const std::size_t j : {i - 1, i + 1}) {
      if (j >= words.size() || !categories[j]) continue;
      const bool neighbours =
          j < i ? words[j].box.x < words[i].box.x : words[i].box.x < words[j].box.x;
      if (neighbours) {
        add(words[i].box, *categories[j], 1.0);
        break;
      }
    }
  }
}

// An OCR failure is not "no text": the file fails, naming the frame.
std::unexpected<Error> ocr_failed(const Error& error, std::size_t frame) {
  return std::unexpected(
      Error{ErrorCode::internal,
            "OCR failed on frame " + std::to_string(frame + 1) + ": " + error.message});
}

std::vector<Box> boxes_of_frame(const FileRedaction& result, std::size_t f) {
  std::vector<Box> boxes;
  for (const Redaction& r : result.redactions)
    if (r.frame == f) boxes.push_back(r.box);
  return boxes;
}

// The earlier engine, for comparison (TextFinder::ocr): Tesseract reads the whole frame, and
// text-like lines it found no word in are read again one by one.
Status find_by_ocr(const Gray8& gray, const PhiMatcher& matcher, const RedactOptions& options,
                   const dicom::PixelImage& image, std::size_t f, FileRedaction& result) {
  auto words = read_words(gray);
  if (!words) return ocr_failed(words.error(), f);
  // OCR splits some identifiers in two ("PID1 2345", "15/03/ 2019"): try neighbours joined.
  for (const Word& a : *words) {
    for (const Word& b : *words) {
      if (&a == &b) continue;
      const int height = std::max(a.box.height, b.box.height);
      const int gap = b.box.x - (a.box.x + a.box.width);
      const int centre_offset =
          std::abs((a.box.y * 2 + a.box.height) - (b.box.y * 2 + b.box.height)) / 2;
      if (gap < -2 || gap > height || centre_offset * 2 > height) continue;
      const auto category = matcher.match_across(a.text, b.text);
      if (!category) continue;
      for (const Word* w : {&a, &b}) {
        const Box box = clipped(around_word(w->box, options.margin), options.margin, image);
        if (!box.empty()) result.redactions.push_back({f, box, *category});
      }
    }
  }
  for (const Word& word : *words) {
    std::optional<Category> category = matcher.match(word.text);
    if (!category && options.mode == Mode::all_text && has_alnum(word.text))
      category = Category::text;
    if (!category && word.confidence < kCertain && word.dark_on_light) {
      // An uncertain reading may be a misread identifier: read it again, differently.
      auto readings = reread(gray, word.box);
      if (!readings) return ocr_failed(readings.error(), f);
      for (const auto& reading : *readings) {
        category = match_any_piece(matcher, reading);
        if (category) break;
      }
      if (!category && word.confidence < kUnreliable) category = matcher.match_loosely(word.text);
    }
    if (!category) continue;
    const Box box =
        clipped(around_word(widened(word.box, matcher.fragment_ratio(word.text)), options.margin),
                options.margin, image);
    if (!box.empty()) result.redactions.push_back({f, box, *category});
  }
  // Text the full-frame pass found no word in (small bold glyphs merged into blobs): each
  // text-like line of marks is read again on its own, at a scale fitted to its height.
  const auto candidates = uncovered_text_candidates(gray, *words, boxes_of_frame(result, f));
  const std::size_t to_read = std::min(candidates.size(), options.max_text_candidates);
  for (std::size_t c = 0; c < to_read; ++c) {
    auto read = read_candidate(gray, candidates[c]);
    if (!read) return ocr_failed(read.error(), f);
    redact_candidate(*read, matcher, options, image, f, result);
  }
  // Lines beyond the limit are not read, so not known to be safe: all-text mode covers each
  // whole; phi-text mode cannot tell which to cover and fails the file closed below.
  for (std::size_t c = to_read; c < candidates.size(); ++c) {
    if (options.mode == Mode::all_text) {
      const Box box = clipped(candidates[c].box, options.margin, image);
      if (!box.empty()) result.redactions.push_back({f, box, Category::text});
    } else {
      ++result.unread_text_regions;
    }
  }
  return {};
}

// The earlier engine's check (TextFinder::ocr): the filled frame read again, full frame and
// text-like lines outside the boxes one by one; an identifying word left counts by the first
// pass's rules (a match, or a loose match of an uncertain reading).
Status verify_by_ocr(const Gray8& after, const PhiMatcher& matcher, const RedactOptions& options,
                     std::size_t f, FileRedaction& result) {
  const auto left_behind = [&](const Word& word) {
    return matcher.match(word.text).has_value() ||
           (word.confidence < kUnreliable && matcher.match_loosely(word.text).has_value());
  };
  auto words = read_words(after);
  if (!words) return ocr_failed(words.error(), f);
  for (const Word& word : *words)
    if (left_behind(word)) ++result.residual_phi_words;
  const auto candidates = uncovered_text_candidates(after, *words, boxes_of_frame(result, f));
  const std::size_t to_read = std::min(candidates.size(), options.max_text_candidates);
  for (std::size_t c = 0; c < to_read; ++c) {
    auto read = read_candidate(after, candidates[c]);
    if (!read) return ocr_failed(read.error(), f);
    const std::vector<Word>& line = read->words;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if (left_behind(line[i])) {
        ++result.residual_phi_words;
      } else if (i + 1 < line.size() && line[i + 1].box.x > line[i].box.x &&
                 matcher.match_across(line[i].text, line[i + 1].text)) {
        ++result.residual_phi_words;
      }
    }
  }
  result.unread_text_regions += candidates.size() - to_read;
  return {};
}

bool overlap(const Box& a, const Box& b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// The margin gives way to words kept as read (phi-text mode): a fill reaching into the next
// word or line would hide a word judged harmless. Only the margin does, and above and below
// the padding of the ink's height (a sixth of `box` at each end, ink_spans): the result
// still covers all of the ink.
Box clear_of_kept(const Box& margined, const Box& box, const std::vector<Box>& kept) {
  int x0 = margined.x, y0 = margined.y;
  int x1 = margined.x + margined.width, y1 = margined.y + margined.height;
  const int pad = box.height / 6;
  for (const Box& k : kept) {
    if (!overlap(Box{x0, y0, x1 - x0, y1 - y0}, k)) continue;
    if (k.x >= box.x + box.width) {
      x1 = std::min(x1, k.x);
    } else if (k.x + k.width <= box.x) {
      x0 = std::max(x0, k.x + k.width);
    } else if (k.y >= box.y + box.height - pad) {
      y1 = std::min(y1, k.y);
    } else if (k.y + k.height <= box.y + pad) {
      y0 = std::max(y0, k.y + k.height);
    }
  }
  if (x1 <= x0 || y1 <= y0) return margined;
  return Box{x0, y0, x1 - x0, y1 - y0};
}

// A box decided on one frame (or on a clip's consensus), margin added clear of the frame's
// kept words, for frame f.
void add_box(FileRedaction& result, std::size_t f, const Box& box, Category category,
             const RedactOptions& options, const dicom::PixelImage& image,
             const std::vector<Box>& kept) {
  Box b = clear_of_kept(clipped(box, options.margin, image), box, kept);
  if (image.photometric == dicom::Photometric::ybr_full_422) b = clipped(b, 0, image);
  if (!b.empty()) result.redactions.push_back({f, b, category});
}

// The default engine (TextFinder::detector). A clip's static text (overlays) is found once,
// on the consensus of its frames, and redacted in every frame; then every frame is searched
// for the rest (text that changes), regions seen before with the same pixels not read again.
// Whether a frame shows, inside `box`, what the clip's consensus shows there (static text),
// within a few grey levels on average.
bool shows_consensus(const Gray8& frame, const Gray8& common, const Box& box) {
  double difference = 0;
  for (int y = box.y; y < box.y + box.height; ++y)
    for (int x = box.x; x < box.x + box.width; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * frame.width + static_cast<std::size_t>(x);
      difference += std::abs(static_cast<int>(frame.pixels[i]) - static_cast<int>(common.pixels[i]));
    }
  const double area = static_cast<double>(box.width) * box.height;
  return area > 0 && difference / area <= 6.0;
}

Status find_by_detection(const std::vector<Gray8>& frames, Render render, const PhiMatcher& matcher,
                         const RedactOptions& options, const dicom::PixelImage& image,
                         std::vector<std::vector<Box>>& kept, FileRedaction& result) {
  RegionMemo memo;
  // A clip's static text (3 frames or more, so that a median means something) is found once
  // on the consensus and redacted in every frame that shows it; each frame is then searched
  // for the rest.
  Gray8 common;
  FrameFindings found_in_common;
  if (frames.size() >= 3) {
    common = consensus(frames);
    auto found = find_text(common, matcher, options.mode, {}, memo, render);
    if (!found) return ocr_failed(found.error(), 0);
    found_in_common = std::move(*found);
  }
  kept.assign(frames.size(), {});
  for (std::size_t f = 0; f < frames.size(); ++f) {
    std::vector<std::pair<Box, Category>> static_found;
    std::vector<Box> static_boxes;
    for (const auto& [box, category] : found_in_common.redact) {
      const Box b = clipped(box, 0, image);
      if (b.empty() || !shows_consensus(frames[f], common, b)) continue;
      static_found.emplace_back(box, category);
      static_boxes.push_back(box);
    }
    auto found = find_text(frames[f], matcher, options.mode, static_boxes, memo, render);
    if (!found) return ocr_failed(found.error(), f);
    // Words the consensus kept count for a frame that still shows them.
    for (const Box& k : found_in_common.kept) {
      const Box b = clipped(k, 0, image);
      if (!b.empty() && shows_consensus(frames[f], common, b)) found->kept.push_back(k);
    }
    for (const auto& [box, category] : static_found)
      add_box(result, f, box, category, options, image, found->kept);
    for (const auto& [box, category] : found->redact)
      add_box(result, f, box, category, options, image, found->kept);
    kept[f] = std::move(found->kept);
    ++result.frames_ocred;
  }
  return {};
}

// Text found in one frame of a clip protects every frame (fail closed). The detector can miss
// a word in one frame that it finds in another (a name over moving speckle, bench/
// fourth_screens.py's clips: proposed in frame 0, never in frames 2 and 4, not even by the
// check after the fill), so every box decided on any frame (not the rule regions, which are
// in every frame already) is filled in every other frame too, unless that frame's stored
// samples are one constant value inside the box: a flat area shows no text, and a frame left
// whole keeps its bytes (and its compressed stream). The price is a little anatomy under a
// caption box in the frames where the text was not.
bool flat_in(const dicom::PixelImage& image, std::size_t f, const Box& box) {
  const auto& samples = image.frames[f];
  const std::size_t n = image.samples;
  const std::size_t first = (static_cast<std::size_t>(box.y) * image.width + static_cast<std::size_t>(box.x)) * n;
  for (int y = box.y; y < box.y + box.height; ++y)
    for (int x = box.x; x < box.x + box.width; ++x) {
      const std::size_t i = (static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)) * n;
      for (std::size_t s = 0; s < n; ++s)
        if (samples[i + s] != samples[first + s]) return false;
    }
  return true;
}

bool contains(const Box& outer, const Box& inner) {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width &&
         inner.y + inner.height <= outer.y + outer.height;
}

// A clip whose text moves (or was made to) defeats the de-duplication: every box of every
// frame is carried into every other frame. Past this many carried boxes the file is refused
// (fail closed) rather than take unbounded time and memory.
constexpr std::size_t kMaxCarriedBoxes = 4'000'000;

Status protect_every_frame(const dicom::PixelImage& image, FileRedaction& result) {
  if (image.frames.size() < 2) return {};
  std::vector<std::pair<Box, Category>> found;
  std::set<std::tuple<int, int, int, int>> seen;
  for (const Redaction& r : result.redactions) {
    if (r.category == Category::rule) continue;
    if (seen.emplace(r.box.x, r.box.y, r.box.width, r.box.height).second)
      found.emplace_back(r.box, r.category);
  }
  if (found.size() * (image.frames.size() - 1) > kMaxCarriedBoxes)
    return fail(ErrorCode::unsupported,
                "refused: " + std::to_string(found.size()) + " distinct text boxes in a clip of " +
                    std::to_string(image.frames.size()) +
                    " frames are too many to cover in every frame (radguard's limit)");
  std::vector<std::vector<Box>> per_frame(image.frames.size());
  for (const Redaction& r : result.redactions) per_frame[r.frame].push_back(r.box);
  for (std::size_t f = 0; f < image.frames.size(); ++f) {
    for (const auto& [box, category] : found) {
      const auto& own = per_frame[f];
      if (std::any_of(own.begin(), own.end(), [&](const Box& b) { return contains(b, box); }))
        continue;
      if (flat_in(image, f, box)) continue;
      result.redactions.push_back({f, box, category});
    }
  }
  return {};
}


// Coloured text can have the luminance of what lies under it (magenta captions over grey
// speckle on an ultrasound frame: bench/fourth_screens.py seed 1313 released a readable name
// so), and every reader here sees luminance only. The chroma of a pixel (its distance from the
// grey axis) shows such text bright on a dark ground, since anatomy and grey text have none.
// A frame of a colour model with fewer than kColourPixels coloured pixels gets no chroma
// render (an empty Gray8): grey screens stored as RGB cost nothing more.
constexpr int kColourfulChroma = 40;
constexpr std::size_t kColourPixels = 16;

std::uint8_t eight_bits(std::uint16_t v, unsigned bits) {
  return static_cast<std::uint8_t>(bits > 8 ? v >> (bits - 8) : v);
}

std::uint8_t chroma_of(int r, int g, int b) {
  return static_cast<std::uint8_t>(std::max({r, g, b}) - std::min({r, g, b}));
}

using Rgb8 = std::array<std::uint8_t, 3>;

// A frame's pixels as 8-bit R, G, B, or nothing for a photometric without colour.
std::vector<Rgb8> colours_of(const dicom::PixelImage& image, std::size_t frame) {
  const std::size_t pixels = static_cast<std::size_t>(image.width) * image.height;
  const std::vector<std::uint16_t>& in = image.frames.at(frame);
  const unsigned bits = image.bits_stored;
  std::vector<Rgb8> out(pixels);
  switch (image.photometric) {
    case dicom::Photometric::rgb:
      for (std::size_t p = 0; p < pixels; ++p)
        out[p] = {eight_bits(in[3 * p], bits), eight_bits(in[3 * p + 1], bits),
                  eight_bits(in[3 * p + 2], bits)};
      return out;
    case dicom::Photometric::ybr_full:
    case dicom::Photometric::ybr_full_422:
      for (std::size_t p = 0; p < pixels; ++p) {
        const double y = eight_bits(in[3 * p], bits);
        const double cb = eight_bits(in[3 * p + 1], bits) - 128.0;
        const double cr = eight_bits(in[3 * p + 2], bits) - 128.0;
        const auto level = [](double v) {
          return static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        };
        out[p] = {level(y + 1.402 * cr), level(y - 0.344136 * cb - 0.714136 * cr),
                  level(y + 1.772 * cb)};
      }
      return out;
    case dicom::Photometric::palette_color: {
      const auto& lut = image.palette;
      const auto size = static_cast<std::int64_t>(lut.red.size());
      if (size == 0) return {};
      for (std::size_t p = 0; p < pixels; ++p) {
        const auto i = static_cast<std::size_t>(std::clamp<std::int64_t>(
            static_cast<std::int64_t>(in[p]) - lut.first_mapped, 0, size - 1));
        out[p] = {eight_bits(lut.red[i], lut.bits), eight_bits(lut.green[i], lut.bits),
                  eight_bits(lut.blue[i], lut.bits)};
      }
      return out;
    }
    default:
      return {};
  }
}

// A colour render of a frame, or an empty Gray8 when the frame has too little colour.
Gray8 coloured_render(const dicom::PixelImage& image, std::vector<std::uint8_t> pixels,
                      std::size_t colourful) {
  if (colourful < kColourPixels) return {};
  return Gray8{image.width, image.height, std::move(pixels)};
}

Gray8 render_chroma8(const dicom::PixelImage& image, std::size_t frame) {
  if (image.photometric == dicom::Photometric::ybr_full ||
      image.photometric == dicom::Photometric::ybr_full_422) {
    // Twice the larger colour difference, as kColourfulChroma and kPackedContrast were tuned
    // on (most ultrasound is YBR); max - min of the RGB it converts to would read lower on
    // dark and bright colour.
    const std::size_t pixels = static_cast<std::size_t>(image.width) * image.height;
    const std::vector<std::uint16_t>& in = image.frames.at(frame);
    std::vector<std::uint8_t> chroma(pixels);
    std::size_t colourful = 0;
    for (std::size_t p = 0; p < pixels; ++p) {
      const int cb = eight_bits(in[3 * p + 1], image.bits_stored) - 128;
      const int cr = eight_bits(in[3 * p + 2], image.bits_stored) - 128;
      chroma[p] = static_cast<std::uint8_t>(std::min(255, 2 * std::max(std::abs(cb), std::abs(cr))));
      colourful += chroma[p] >= kColourfulChroma ? 1U : 0U;
    }
    return coloured_render(image, std::move(chroma), colourful);
  }
  const std::vector<Rgb8> colours = colours_of(image, frame);
  std::vector<std::uint8_t> chroma(colours.size());
  std::size_t colourful = 0;
  for (std::size_t p = 0; p < colours.size(); ++p) {
    chroma[p] = chroma_of(colours[p][0], colours[p][1], colours[p][2]);
    colourful += chroma[p] >= kColourfulChroma ? 1U : 0U;
  }
  return coloured_render(image, std::move(chroma), colourful);
}

// Hue in degrees, 0-359 (red 0, green 120, blue 240).
int hue_of(const Rgb8& c) {
  const int r = c[0], g = c[1], b = c[2];
  const int high = std::max({r, g, b}), span = high - std::min({r, g, b});
  if (span == 0) return 0;
  double h = 0;
  if (high == r) h = 60.0 * (g - b) / span;
  else if (high == g) h = 60.0 * (b - r) / span + 120.0;
  else h = 60.0 * (r - g) / span + 240.0;
  return static_cast<int>(std::lround(h + 360.0)) % 360;
}

// Coloured text can match both the luminance and the chroma of the flow under it and of the
// grey between the flow's blobs: green (30,118,30), blue (60,60,255) or magenta (181,11,181)
// over red flow (200,30,30) on grey speckle, each of luminance 81, were released whole.
// What still sets such text apart is its hue. The frame's commonest hue among its colourful
// pixels (the flow's) renders dim (kFlowHue), every other hue brighter with its distance
// round the colour circle (the full range at kHueApart), grey black: text of any other hue
// is brighter than both the flow and the grey under it. Weak colour (compression noise on
// grey anatomy) fades to black. Known blind spots (review; test
// Redact.DISABLED_ANameNearTheFlowsHueIsCoveredOrTheFileRefused): text of the flow's own hue
// with a chroma between the flow's and grey's, and a hue close to the flow's (orange over
// red). A frame with flows of two hues could hide text of the commonest hue over the other
// flow (review's reasoning); the test's case of it is found.
constexpr int kFlowHue = 40;
constexpr int kFullColour = 64;
constexpr int kHueBins = 36;
// Hues this far apart (degrees) render the full range apart: orange beside red flow shows.
constexpr int kHueApart = 90;

Gray8 render_hue8(const dicom::PixelImage& image, std::size_t frame) {
  const std::vector<Rgb8> colours = colours_of(image, frame);
  // Each pixel's chroma and hue, once: the second loop needs both again (hue only where the
  // chroma reaches kFullColour / 4, below kColourfulChroma, so every pixel the first loop
  // bins has its hue here).
  static_assert(kFullColour / 4 <= kColourfulChroma);
  std::vector<std::uint8_t> chromas(colours.size());
  std::vector<std::int16_t> hues(colours.size(), 0);
  std::array<std::size_t, kHueBins> bins{};
  std::size_t colourful = 0;
  for (std::size_t p = 0; p < colours.size(); ++p) {
    const Rgb8& c = colours[p];
    chromas[p] = chroma_of(c[0], c[1], c[2]);
    if (chromas[p] < kFullColour / 4) continue;
    hues[p] = static_cast<std::int16_t>(hue_of(c));
    if (chromas[p] < kColourfulChroma) continue;
    ++bins[static_cast<std::size_t>(hues[p] * kHueBins / 360)];
    ++colourful;
  }
  const int flow = static_cast<int>(std::max_element(bins.begin(), bins.end()) - bins.begin()) *
                       (360 / kHueBins) + 180 / kHueBins;
  std::vector<std::uint8_t> hue(colours.size(), 0);
  for (std::size_t p = 0; p < colours.size(); ++p) {
    const int chroma = chromas[p];
    if (chroma < kFullColour / 4) continue;
    const int turn = std::abs(hues[p] - flow);
    const int distance = std::min({turn, 360 - turn, kHueApart});
    const int level = kFlowHue + (255 - kFlowHue) * distance / kHueApart;
    hue[p] = static_cast<std::uint8_t>(level * std::min(chroma, kFullColour) / kFullColour);
  }
  return coloured_render(image, std::move(hue), colourful);
}

using FrameRender = Gray8 (*)(const dicom::PixelImage&, std::size_t);

// The colour renders searched after the luminance, and checked after the fill, in order.
struct ColourRender {
  Render render;
  FrameRender draw;
};
constexpr std::array<ColourRender, 2> kColourRenders{
    {{Render::chroma, render_chroma8}, {Render::hue, render_hue8}}};

// One colour render of every frame, or none when no frame has colour in it.
std::vector<Gray8> colour_frames(const dicom::PixelImage& image, FrameRender render) {
  std::vector<Gray8> frames(image.frames.size());
  bool any = false;
  for (std::size_t f = 0; f < frames.size(); ++f) {
    frames[f] = render(image, f);
    any = any || frames[f].width != 0;
  }
  if (!any) return {};
  // A frame without colour is searched as the black frame it is in a colour render.
  for (Gray8& frame : frames)
    if (frame.width == 0) frame = Gray8{image.width, image.height,
                                        std::vector<std::uint8_t>(static_cast<std::size_t>(image.width) * image.height, 0)};
  return frames;
}

// Coloured words the luminance search read and kept, taken out of a frame's chroma render
// before the chroma search (`chroma`, the same size as `grey`): the chroma pixels at and next
// to their ink in `grey` (ink_mask of each kept box, with its anti-aliased edge) become
// ground. The chroma search read such a word a second time, on a render where it shows
// thinner and dimmer, and redacted it as unread (a clip's coloured labels, every frame:
// bench/fourth_screens.py seed 1313). Only pixels that are the kept word's own ink in
// luminance go: coloured text of the ground's luminance (what the chroma search is for) is no
// ink there and stays, even where it crosses a kept word's box. The chroma check after the
// fill still sees the whole render, kept words too: it is the last look at coloured ink (with
// it taken out there as well, seed 2718's file with an 8 px name and date no search covered
// was released instead of quarantined). Returns whether any chroma pixel was taken out: such a
// frame gets the chroma check after the fill even when nothing in it was filled, since ink
// taken out here could belong to a coloured word next to the kept one that no search read.
[[nodiscard]] bool without_kept_words(Gray8& chroma, const Gray8& grey,
                                      const std::vector<Box>& kept) {
  if (chroma.width != grey.width || chroma.height != grey.height) return false;
  bool erased = false;
  const int width = static_cast<int>(grey.width), height = static_cast<int>(grey.height);
  for (const Box& k : kept) {
    // The reader's box ends inside a glyph's faint edge (glyph_of_kept_word, regions.cpp): a
    // quarter of the height more, so that the ground around the word sets the ink level.
    const int edge = std::max(2, k.height / 4);
    const int x0 = std::max(k.x - edge, 0), y0 = std::max(k.y - edge, 0);
    const int x1 = std::min(k.x + k.width + edge, width);
    const int y1 = std::min(k.y + k.height + edge, height);
    if (x1 <= x0 || y1 <= y0) continue;
    const Box area{x0, y0, x1 - x0, y1 - y0};
    const std::vector<std::uint8_t> ink = ink_mask(grey, area);
    const auto inked = [&](int x, int y) {
      return x >= 0 && y >= 0 && x < area.width && y < area.height &&
             ink[static_cast<std::size_t>(y) * static_cast<std::size_t>(area.width) +
                 static_cast<std::size_t>(x)] != 0;
    };
    // The ink and one pixel around it: the glyph's anti-aliased rim, coloured too but under
    // the ink level.
    for (int y = 0; y < area.height; ++y)
      for (int x = 0; x < area.width; ++x) {
        bool near = false;
        for (int dy = -1; dy <= 1 && !near; ++dy)
          for (int dx = -1; dx <= 1 && !near; ++dx) near = inked(x + dx, y + dy);
        if (!near) continue;
        auto& pixel = chroma.pixels[static_cast<std::size_t>(area.y + y) * chroma.width +
                                    static_cast<std::size_t>(area.x + x)];
        erased = erased || pixel != 0;
        pixel = 0;
      }
  }
  return erased;
}

}  // namespace

Result<Mode> parse_mode(std::string_view text) {
  if (text == "all-text") return Mode::all_text;
  if (text == "phi-text") return Mode::phi_text;
  if (text == "report") return Mode::report;
  return fail(ErrorCode::usage, "unknown mode (all-text, phi-text or report)");
}

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::all_text:
      return "all-text";
    case Mode::phi_text:
      return "phi-text";
    case Mode::report:
      return "report";
  }
  return "";
}

std::string_view category_name(Category category) {
  switch (category) {
    case Category::rule:
      return "rule";
    case Category::name:
      return "name";
    case Category::id:
      return "id";
    case Category::date:
      return "date";
    case Category::institution:
      return "institution";
    case Category::date_pattern:
      return "date_pattern";
    case Category::id_pattern:
      return "id_pattern";
    case Category::text:
      return "text";
    case Category::unread:
      return "unread";
  }
  return "";
}

std::string_view verdict_name(FileVerdict verdict) {
  switch (verdict) {
    case FileVerdict::cleaned:
      return "cleaned";
    case FileVerdict::no_text_found:
      return "no_text_found";
    case FileVerdict::not_needed:
      return "not_needed";
    case FileVerdict::residual_phi:
      return "residual_phi";
    case FileVerdict::reported:
      return "reported";
  }
  return "";
}

Result<TextFinder> parse_text_finder(std::string_view text) {
  if (text == "detector") return TextFinder::detector;
  if (text == "ocr") return TextFinder::ocr;
  return fail(ErrorCode::usage, "unknown text finder (detector or ocr)");
}

Result<FileRedaction> redact_file(dicom::DicomFile& file, const RedactOptions& options,
                                  PreviewImages previews) {
  FileRedaction result;
  const HeaderFacts facts = header_facts(file);
  result.triage = triage(facts);
  const std::vector<Box> rule_regions = options.rules.regions_for(facts);
  if (result.triage.verdict == TriageVerdict::skip && rule_regions.empty()) {
    result.verdict = FileVerdict::not_needed;
    return result;
  }
  // Every path below renders pixels: without the pixel plugin the file fails here, with the
  // plugin's reason, rather than by an exception from deep inside (a gateway worker has no
  // batch around it to catch one).
  if (auto ready = pixels::load(); !ready) return std::unexpected(ready.error());
  const bool ocr = result.triage.verdict == TriageVerdict::ocr;
  if (ocr && options.finder == TextFinder::detector) {
    // Fail closed before decoding anything: without the detector nothing can be checked.
    if (auto model = text_detector_model(); !model) return std::unexpected(model.error());
  }
  // What the detector remembers of this file's pixels goes with the file, however it ends.
  struct ForgetDetectorMaps {
    ForgetDetectorMaps() = default;
    ForgetDetectorMaps(const ForgetDetectorMaps&) = delete;
    ForgetDetectorMaps& operator=(const ForgetDetectorMaps&) = delete;
    ~ForgetDetectorMaps() { forget_detector_maps(); }
  } const forget_maps;
  auto decoded = dicom::decode_pixels(file);
  if (!decoded) return std::unexpected(decoded.error());
  dicom::PixelImage& image = *decoded;
  result.frames = image.frames.size();
  const PhiMatcher matcher = PhiMatcher::from_header(file);
  std::vector<std::vector<Box>> kept;  // per frame: words read and kept (detector)
  // The same, read on each colour render (kColourRenders' order).
  std::array<std::vector<std::vector<Box>>, kColourRenders.size()> kept_in_colour;

  std::vector<bool> changed(image.frames.size(), false);
  // Frames whose chroma search ran with kept words' ink taken out: checked after the fill
  // whether or not anything in them was filled.
  std::vector<bool> kept_ink_hidden(image.frames.size(), false);
  std::vector<Gray8> before(image.frames.size());
  for (std::size_t f = 0; f < image.frames.size(); ++f) {
    before[f] = render_gray8(image, f);
    for (const Box& region : rule_regions) {
      const Box box = clipped(region, 0, image);
      if (!box.empty()) result.redactions.push_back({f, box, Category::rule});
    }
  }
  if (ocr && options.finder == TextFinder::detector) {
    if (auto s = find_by_detection(before, Render::luminance, matcher, options, image, kept, result); !s)
      return std::unexpected(s.error());
    // The same search on each colour render of the frames: what it decides is filled like
    // the rest. What it reads and keeps counts only for that render's own check after the
    // fill: a word kept there must not hide grey ink from the luminance check, nor the reverse.
    for (std::size_t c = 0; c < kColourRenders.size(); ++c) {
      auto colour = colour_frames(image, kColourRenders[c].draw);
      if (colour.empty()) continue;
      for (std::size_t f = 0; f < colour.size(); ++f)
        if (without_kept_words(colour[f], before[f], kept[f])) kept_ink_hidden[f] = true;
      const std::size_t searched = result.frames_ocred;
      if (auto s = find_by_detection(colour, kColourRenders[c].render, matcher, options, image,
                                     kept_in_colour[c], result);
          !s)
        return std::unexpected(s.error());
      result.frames_ocred = searched;
    }
  } else if (ocr) {
    for (std::size_t f = 0; f < image.frames.size(); ++f) {
      if (auto s = find_by_ocr(before[f], matcher, options, image, f, result); !s)
        return std::unexpected(s.error());
      ++result.frames_ocred;
    }
  }
  if (ocr) {
    if (auto s = protect_every_frame(image, result); !s) return std::unexpected(s.error());
  }

  if (options.mode != Mode::report) {
    // By frame, once: a clip's redactions are many (every box in every frame).
    std::vector<std::vector<Box>> to_fill(image.frames.size());
    for (const Redaction& r : result.redactions) to_fill[r.frame].push_back(r.box);
    for (std::size_t f = 0; f < image.frames.size(); ++f) {
      if (to_fill[f].empty()) continue;
      const auto black = black_of(image, f);
      for (const Box& box : to_fill[f]) fill(image, f, box, black);
      changed[f] = true;
    }
    // Verify: look at every changed frame again; any identifying word left, or (phi-text
    // mode) text left unread, fails the file closed.
    for (std::size_t f = 0; f < image.frames.size(); ++f) {
      if (!(changed[f] || kept_ink_hidden[f]) || !ocr) continue;
      const Gray8 after = render_gray8(image, f);
      if (options.finder == TextFinder::detector) {
        auto left = text_left_behind(after, matcher, options.mode, boxes_of_frame(result, f), kept[f]);
        if (!left) return ocr_failed(left.error(), f);
        result.residual_phi_words += *left;
        for (std::size_t c = 0; c < kColourRenders.size(); ++c) {
          const Gray8 colour = kColourRenders[c].draw(image, f);
          if (colour.width == 0) continue;
          const std::vector<Box> none;
          const auto& kept_there = f < kept_in_colour[c].size() ? kept_in_colour[c][f] : none;
          auto left_in_colour = text_left_behind(colour, matcher, options.mode,
                                                 boxes_of_frame(result, f), kept_there,
                                                 kColourRenders[c].render);
          if (!left_in_colour) return ocr_failed(left_in_colour.error(), f);
          result.residual_phi_words += *left_in_colour;
        }
      } else if (auto s = verify_by_ocr(after, matcher, options, f, result); !s) {
        return std::unexpected(s.error());
      }
    }
  }

  if (previews == PreviewImages::keep) {
    for (std::size_t f = 0; f < image.frames.size(); ++f) {
      FileRedaction::Preview preview;
      preview.frame = f;
      preview.width = image.width;
      preview.height = image.height;
      preview.before = std::move(before[f].pixels);
      preview.after = render_gray8(image, f).pixels;
      result.previews.push_back(std::move(preview));
    }
  }

  if (options.mode == Mode::report) {
    result.verdict = FileVerdict::reported;
    return result;
  }
  const bool any_changed = std::any_of(changed.begin(), changed.end(), [](bool c) { return c; });
  // The check after the fill also runs on frames where nothing was filled (kept words' ink
  // hidden from the colour searches): what it counts holds the file back even then.
  if (!any_changed && result.unread_text_regions == 0 && result.residual_phi_words == 0) {
    result.verdict = FileVerdict::no_text_found;
    return result;
  }
  if (any_changed) {
    auto written = dicom::encode_pixels(file, image);
    if (!written) return std::unexpected(written.error());
    result.written = *written;
  }
  if (result.residual_phi_words > 0 || result.unread_text_regions > 0) {
    result.verdict = FileVerdict::residual_phi;
    return result;
  }
  if (auto recorded = record_clean(file); !recorded) return std::unexpected(recorded.error());
  result.verdict = FileVerdict::cleaned;
  return result;
}

}  // namespace radguard::redact
