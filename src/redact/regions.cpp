#include "redact/regions.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <string>
#include <string_view>

namespace radguard::redact {

namespace {

// The median of `values` (the upper one of an even count), which it reorders; not empty.
template <typename T>
T median_in_place(std::vector<T>& values) {
  const auto middle = values.begin() + static_cast<long>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

// A word is kept (phi-text mode) only when Tesseract reads it with at least kKeep confidence
// (kFamiliar for known vocabulary and measurements) and it matches nothing identifying; below
// kCertain it must not even loosely match a header value.
// (65/80 kept 1.5-2.5% more words on the tuning seeds at the same recall, but a name in a
// script face Tesseract misreads at ~70 was then kept: not taken, docs/benchmarks.md.)
constexpr float kKeep = 75;
constexpr float kCertain = 85;
constexpr float kFamiliar = 50;

// A match (PhiMatcher splits glued words itself: "DOB:14/03/1961"); a short value one glyph
// off ("DOE" read as "BOE", however confident Tesseract is about small text); and for any
// reading not certain, a loose match: a misread name must not be kept as a harmless word.
std::optional<Category> identify(const PhiMatcher& matcher, const Word& word) {
  if (auto category = matcher.match(word.text)) return category;
  if (auto category = matcher.match_short_loosely(word.text)) return category;
  if (word.confidence >= kCertain) return std::nullopt;
  return matcher.match_loosely(word.text);
}

std::string letters_of(std::string_view text) {
  std::string out;
  for (const char c : text)
    if (std::isalnum(static_cast<unsigned char>(c)) != 0)
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Words of screens that identify nobody: anatomy, views, scanner settings and labels. A
// reading of one of them is kept at a lower confidence than an unknown word.
bool known_vocabulary(std::string_view letters) {
  static constexpr std::string_view kWords[] = {
      "ABD", "ABDOMEN", "ACC", "ACQ", "AORTA", "AP", "APEX", "AX", "AXIAL", "BLADDER", "BODY",
      "BPM", "BREAST", "CAROTID", "CFM", "CHEST", "CINE", "CM", "COMPOUND", "COR", "CORONAL",
      "CT", "CTDI", "CTDIVOL", "DB", "DEPTH", "DIST", "DLP", "DOB", "DOSE", "DYN", "ECHO", "EXAM",
      "FOCUS", "FPS", "FR", "FREQ", "FRQ", "GAIN", "GALLBLADDER", "GEN", "GY", "HARM", "HEAD",
      "HEART", "HELICAL", "HR", "HZ", "ID", "IMAGE", "IMG", "KHZ", "KIDNEY", "KV", "KVP", "LAT",
      "LEFT", "LIVER", "LONG", "LT", "LUNG", "MA", "MAP", "MAS", "MED", "MGY", "MHZ", "MI", "MM",
      "MR", "MRN", "MS", "NAME", "NECK", "OB", "OVARY", "PANCREAS", "PAT", "PATIENT", "PELVIS",
      "PEN", "PHANTOM", "POST", "PRF", "PROBE", "PROSTATE", "PW", "RANGE", "RENAL", "RES",
      "RIGHT", "RT", "SAG", "SAGITTAL", "SCAN", "SEC", "SER", "SERIES", "SLICE", "SPINE",
      "SPLEEN", "STUDY", "SV", "TEN", "THI", "THYROID", "TI", "TIB", "TIC", "TILT", "TIS",
      "TOPOGRAM", "TOTAL", "TRANS", "TRANSVERSE", "TYPE", "US", "UTERUS", "VEL", "VOL", "WALL",
      "WL", "WW", "ZOOM",
      // Labels of screens and forms (4 letters or more: "No", "Dr", "Age" were tried and let
      // a name in a script face, misread as short words, keep part of its ink).
      "BASELINE", "DATE", "EDGE", "FOCAL", "GATE", "PAGE", "SCALE", "SECTOR", "STORE", "VALUE",
      "WIDTH",
      // Labels in front of identifiers on ultrasound bars and dose screens ("Req#", "Ref.Phys",
      // "Hosp#", German "Geb." for the birth date) and words of those screens. Three letters
      // or more; a label that is a piece of a header value is still kept as a label, as
      // "LIVER" is for OLIVER.
      "COLOR", "COLOUR", "CONTRAST", "FRAME", "GEB", "HOSP", "PHYS", "REF", "REFPHYS", "REQ",
      "ROTATION", "ROUTINE", "SUMMARY", "VMAX"};
  return std::find(std::begin(kWords), std::end(kWords), letters) != std::end(kWords);
}

// A measurement ("16cm", "4.0MHz", "0.4", "521.6"): a few digits and a unit, nothing that can
// hold an identifier or a date.
bool measurement(std::string_view text) {
  int digits = 0;
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0 ||
                             text[i] == '.' || text[i] == ',' || text[i] == '-' || text[i] == '+')) {
    digits += std::isdigit(static_cast<unsigned char>(text[i])) != 0 ? 1 : 0;
    ++i;
  }
  if (digits == 0 || digits > 5) return false;
  for (; i < text.size(); ++i)
    if (std::isalpha(static_cast<unsigned char>(text[i])) == 0 && text[i] != '%') return false;
  return text.size() - static_cast<std::size_t>(digits) <= 6;
}

// Whether a reading can be trusted enough to keep the word: known vocabulary or a measurement
// read with some confidence, anything else read confidently; and as wide as its characters (a
// short reading spanning a long stretch of ink is a misreading that would hide the rest). Text
// under ~10 px is misread with high confidence: unknown words there must be certain.
bool plausible_reading(const Word& word) {
  const std::string letters = letters_of(word.text);
  const bool familiar = known_vocabulary(letters) || measurement(word.text);
  const float needed = familiar ? kFamiliar : word.box.height < 10 ? kCertain : kKeep;
  if (word.confidence < needed) return false;
  const auto glyphs = static_cast<int>(word.text.size());
  return word.box.width <= (glyphs + 1) * std::max(word.box.height, 4);
}

// Whether a measurement ends in a unit of the screens (case aside). A bare letter is no
// unit here: "957S" is as likely a misread "9575".
bool known_unit(std::string_view text) {
  static constexpr std::string_view kUnits[] = {"%",   "BPM", "CM",  "DB",  "FPS", "GY",  "HZ",
                                                "KHZ", "KV",  "KVP", "MA",  "MAS", "MGY", "MHZ",
                                                "MM",  "MS",  "SEC"};
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) != 0 ||
                             text[i] == '.' || text[i] == ',' || text[i] == '-' || text[i] == '+'))
    ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  return std::find(std::begin(kUnits), std::end(kUnits), unit) != std::end(kUnits);
}

}  // namespace

// A label of the screen's vocabulary (3 letters or more, or 2 read with certainty, as "ID"),
// a measurement in a known unit read with certainty, or a reading of more than 3 letters read
// with certainty. A short or bare reading there is most likely a piece of what could not be
// read: seed 5151's 0003.dcm read a 6 px accession number "RX445957" as "EADS" (10%) and "7"
// (83%, a bare number) and released the 7; any letters after digits ("957S", 50%) kept up to
// 5 digits of an ID (review of the eleventh pass).
bool stands_alone(const Word& word) {
  const std::string letters = letters_of(word.text);
  if (known_vocabulary(letters) && (letters.size() >= 3 || word.confidence >= kCertain)) return true;
  if (word.confidence < kCertain) return false;
  if (measurement(word.text)) return known_unit(word.text);
  return letters.size() > 3;
}

// Readings that will be redacted as unread: neither identifying nor trusted, and the words
// beside one that do not stand alone, as far as the doubt carries ("EADS" "9" "57": the 9
// beside the doubtful reading is doubtful, and so the 57 beside it; review of the eleventh
// pass).
std::vector<bool> doubtful_words(const std::vector<Word>& words, const std::vector<bool>& identified) {
  std::vector<bool> doubtful(words.size(), false);
  for (std::size_t i = 0; i < words.size(); ++i)
    doubtful[i] = !identified[i] && !plausible_reading(words[i]);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t i = 0; i < words.size(); ++i) {
      const bool beside = (i > 0 && doubtful[i - 1]) || (i + 1 < words.size() && doubtful[i + 1]);
      if (doubtful[i] || !beside || stands_alone(words[i])) continue;
      doubtful[i] = true;
      changed = true;
    }
  }
  return doubtful;
}

namespace {

// The category of each word of one reading that identifies the patient (alone, or joined with
// the next words; nullopt: not identifying), and records the first category found.
std::vector<std::optional<Category>> identified_words(const PhiMatcher& matcher,
                                                      const std::vector<Word>& words,
                                                      RegionVerdict& verdict) {
  std::vector<std::optional<Category>> identified(words.size());
  std::vector<std::optional<Category>> alone(words.size());  // identifying on its own
  for (std::size_t i = 0; i < words.size(); ++i) alone[i] = identify(matcher, words[i]);
  // A label of the screen's vocabulary in front of (or after) a value that identifies on its
  // own is not part of the value: "ID" "K-2527771" matches joined ("IDK2527771" is close to
  // the ID), and the label was filled with it. Only where the other word matches alone (a
  // value split in two pieces, neither matching alone, keeps both) and the label is known
  // vocabulary ("PID" of "PID12345" read apart is no label and stays marked).
  const auto label_beside_value = [&](std::size_t label, std::size_t value) {
    return !alone[label] && alone[value] && known_vocabulary(letters_of(words[label].text));
  };
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (alone[i]) {
      identified[i] = alone[i];
      if (!verdict.identified) verdict.identified = alone[i];
    }
    if (i + 1 < words.size()) {
      if (auto across = matcher.match_across(words[i].text, words[i + 1].text)) {
        if (!label_beside_value(i, i + 1) && !identified[i]) identified[i] = across;
        if (!label_beside_value(i + 1, i) && !identified[i + 1]) identified[i + 1] = across;
        if (!verdict.identified) verdict.identified = across;
      }
    }
    // A value of three words ("16 Aug 2024", "Dec 13, 1986"): none of them alone says much.
    if (i + 2 < words.size()) {
      if (auto three = matcher.match_whole(words[i].text + words[i + 1].text + words[i + 2].text)) {
        for (std::size_t k = i; k < i + 3; ++k)
          if (!identified[k]) identified[k] = three;
        if (!verdict.identified) verdict.identified = three;
      }
    }
  }
  return identified;
}

int overlap_area(const Box& a, const Box& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.width, b.x + b.width);
  const int y1 = std::min(a.y + a.height, b.y + b.height);
  return x1 > x0 && y1 > y0 ? (x1 - x0) * (y1 - y0) : 0;
}

bool mostly_inside(const Box& a, const Box& b) {
  return a.width > 0 && a.height > 0 && overlap_area(a, b) * 10 >= a.width * a.height * 7;
}

bool inside(int x, int y, const Box& b) {
  return x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height;
}

// Whether a mark (a connected piece of ink) is a glyph of a word read and kept: most of it
// lies in the word's box and none of it reaches further than the anti-aliased edge a reader's
// box leaves out (a quarter of the word's height, at least 2 px, sideways; a quarter above and
// below). Tesseract's word boxes end a pixel or two inside a glyph's faint edge; those edges
// were redacted as unread ink, with the margin and the padding of the ink's height on top,
// and hid a third to all of a kept label beside them ("Hosp#" beside its number: the sliver
// joined the number's run). A glyph of another word is not mostly inside a kept word's box.
bool glyph_of_kept_word(const Box& mark, const std::vector<Box>& kept) {
  return std::any_of(kept.begin(), kept.end(), [&](const Box& k) {
    if (overlap_area(mark, k) * 2 < mark.width * mark.height) return false;
    const int side = std::max(2, k.height / 4), edge = std::max(1, k.height / 4);
    return mark.x >= k.x - side && mark.x + mark.width <= k.x + k.width + side &&
           mark.y >= k.y - edge && mark.y + mark.height <= k.y + k.height + edge;
  });
}

// The inked columns of a region outside `exclude`, each run of them boxed as tightly as its
// ink (the region's own margin would reach into the next line); gaps narrower than a third of
// the height (letter and word spacing) do not split a run. Marks that are glyphs of `kept`
// words (glyph_of_kept_word) are no ink to redact.
std::vector<Box> ink_spans(const Gray8& image, const Box& region, const std::vector<Box>& exclude,
                           const Box& core = {}, const std::vector<Box>& other_cores = {},
                           const std::vector<Box>& kept = {}) {
  std::vector<std::uint8_t> ink = ink_mask(image, region);
  const bool neighbours = !other_cores.empty() && core.width > 0 && core.height > 0;
  if (neighbours || !kept.empty()) {
    // Marks of a neighbouring line: inside another region's core, not reaching this one's.
    const cv::Mat mask(region.height, region.width, CV_8U, ink.data());
    cv::Mat labels, stats, centroids;
    const int count = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
    std::vector<bool> drop(static_cast<std::size_t>(count), false);
    for (int i = 1; i < count; ++i) {
      const Box mark{region.x + stats.at<int>(i, cv::CC_STAT_LEFT),
                     region.y + stats.at<int>(i, cv::CC_STAT_TOP), stats.at<int>(i, cv::CC_STAT_WIDTH),
                     stats.at<int>(i, cv::CC_STAT_HEIGHT)};
      if (glyph_of_kept_word(mark, kept)) {
        drop[static_cast<std::size_t>(i)] = true;
        continue;
      }
      if (!neighbours || overlap_area(mark, core) > 0) continue;
      drop[static_cast<std::size_t>(i)] = std::any_of(
          other_cores.begin(), other_cores.end(), [&](const Box& b) { return overlap_area(mark, b) > 0; });
    }
    for (int y = 0; y < region.height; ++y)
      for (int x = 0; x < region.width; ++x)
        if (drop[static_cast<std::size_t>(labels.at<int>(y, x))])
          ink[static_cast<std::size_t>(y) * region.width + x] = 0;
  }
  struct Column {
    int count = 0, top = 0, bottom = 0;
  };
  std::vector<Column> column(static_cast<std::size_t>(region.width));
  for (int y = 0; y < region.height; ++y) {
    for (int x = 0; x < region.width; ++x) {
      if (ink[static_cast<std::size_t>(y) * region.width + x] == 0) continue;
      const int ix = region.x + x, iy = region.y + y;
      const bool excluded =
          std::any_of(exclude.begin(), exclude.end(), [&](const Box& b) { return inside(ix, iy, b); });
      if (excluded) continue;
      Column& c = column[static_cast<std::size_t>(x)];
      if (c.count++ == 0) c.top = y;
      c.bottom = y;
    }
  }
  std::vector<Box> spans;
  const int join = std::max(2, region.height / 3);
  int start = -1, last = -1, top = 0, bottom = 0;
  for (int x = 0; x <= region.width; ++x) {
    const Column* c = x < region.width ? &column[static_cast<std::size_t>(x)] : nullptr;
    if (c != nullptr && c->count > 0) {
      if (start < 0) {
        start = x;
        top = c->top;
        bottom = c->bottom;
      }
      top = std::min(top, c->top);
      bottom = std::max(bottom, c->bottom);
      last = x;
    } else if (start >= 0 && (x == region.width || x - last > join)) {
      // Anti-aliased and faint edges of glyphs fall below the ink threshold: a quarter of the
      // ink's height more above and below (the caller's margin comes on top).
      const int pad = std::max(1, (bottom - top + 1) / 4);
      const int y0 = std::max(0, top - pad), y1 = std::min(region.height - 1, bottom + pad);
      spans.push_back(Box{region.x + start, region.y + y0, last - start + 1, y1 - y0 + 1});
      start = -1;
    }
  }
  return spans;
}

// The detector's box can end before its line does: on seed 5151's 0009.dcm the initial "L."
// stood 6 px past the box of a faint 7 px name, no region held it (the mark finder leaves a
// line to the region it mostly lies under) and it was released. Ink that continues a span
// along its middle rows, past the region's end, no further than a word's gap from the last
// ink, is redacted with the span: at most kLineReach span heights beyond the region (an
// initial, a suffix, the last digits; over speckle no more than that is lost), and never into
// a `barrier` (a word kept, a fill, another region's text, each judged on its own).
constexpr int kLineReach = 3;

bool blocked(int x, const Box& span, const std::vector<Box>& barriers) {
  const int top = span.y + span.height / 4, bottom = span.y + span.height - span.height / 4;
  return std::any_of(barriers.begin(), barriers.end(), [&](const Box& b) {
    return x >= b.x && x < b.x + b.width && top < b.y + b.height && b.y < bottom;
  });
}

// The ink joined to `continued`'s own (past `region`, outside `keep_out`) within half its
// height above and below (with an empty `region`, from every column of the span): the
// bounding boxes of what lies above its rows and below them, each
// over its own columns with the glyphs' faint rim (empty boxes where none).
struct GlyphInk {
  Box above, below;
};

GlyphInk glyph_ink_beyond(const Gray8& image, const Box& continued, const Box& region,
                          const std::vector<Box>& keep_out) {
  const int reach = std::max(2, continued.height / 2);
  const int y0 = std::max(0, continued.y - reach);
  const int y1 = std::min(static_cast<int>(image.height), continued.y + continued.height + reach);
  const Box window{continued.x, y0, continued.width, y1 - y0};
  if (window.width < 1 || window.height < 1) return {};
  const std::vector<std::uint8_t> ink = ink_mask(image, window);
  const auto at = [&](int x, int y) {
    return static_cast<std::size_t>(y) * static_cast<std::size_t>(window.width) +
           static_cast<std::size_t>(x);
  };
  const auto past_region = [&](int x) {
    const int column = window.x + x;
    return column < region.x || column >= region.x + region.width;
  };
  // Only the boxes that meet the window are asked, once, not for every pixel.
  std::vector<Box> near;
  for (const Box& b : keep_out)
    if (overlap_area(b, window) > 0) near.push_back(b);
  const auto kept_out = [&](int x, int y) {
    return std::any_of(near.begin(), near.end(),
                       [&](const Box& b) { return inside(window.x + x, window.y + y, b); });
  };
  // Flood from the continued columns' ink inside the span's rows.
  std::vector<std::uint8_t> reached(ink.size(), 0);
  std::vector<std::pair<int, int>> stack;
  for (int y = continued.y - y0; y < continued.y - y0 + continued.height; ++y)
    for (int x = 0; x < window.width; ++x)
      if (past_region(x) && ink[at(x, y)] != 0 && !kept_out(x, y)) {
        reached[at(x, y)] = 1;
        stack.emplace_back(x, y);
      }
  struct Extent {
    int x0 = INT_MAX, y0 = INT_MAX, x1 = INT_MIN, y1 = INT_MIN;
    void add(int x, int y) {
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
    }
  } above, below;
  while (!stack.empty()) {
    const auto [x, y] = stack.back();
    stack.pop_back();
    if (y0 + y < continued.y) above.add(window.x + x, y0 + y);
    if (y0 + y >= continued.y + continued.height) below.add(window.x + x, y0 + y);
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int nx = x + dx, ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= window.width || ny >= window.height || !past_region(nx))
          continue;
        if (ink[at(nx, ny)] == 0 || reached[at(nx, ny)] != 0 || kept_out(nx, ny)) continue;
        reached[at(nx, ny)] = 1;
        stack.emplace_back(nx, ny);
      }
  }
  // Each part with the glyphs' faint rim (as ink_spans pads a span), reaching the span's rows.
  const int width = static_cast<int>(image.width), height = static_cast<int>(image.height);
  const auto box_of = [&](const Extent& e, int top, int bottom) {
    if (e.x1 < e.x0) return Box{};
    const int left = std::max(0, e.x0 - 1), right = std::min(width, e.x1 + 2);
    top = std::max(0, top);
    bottom = std::min(height, bottom);
    return Box{left, top, right - left, bottom - top};
  };
  return GlyphInk{box_of(above, above.y0 - 1, continued.y),
                  box_of(below, continued.y + continued.height, below.y1 + 2)};
}

// The glyphs a continued span took in past the region, whole: their ink above or below the
// span's rows goes with them. A capital initial after a lower-case name reaches above the
// span the name's own ink set (seed 2718's 0003.dcm: "J." after "Clementine", 7 px at the
// top edge; its top two rows and its dot were left beside the fill). Ink joined to the
// continued columns' ink within half a span height above and below counts; a neighbouring
// line's ink not touching it does not.
Box with_the_glyphs_whole(const Gray8& image, const Box& continued, const Box& region) {
  const GlyphInk beyond = glyph_ink_beyond(image, continued, region, {});
  const int top = beyond.above.width > 0 ? beyond.above.y : continued.y;
  const int bottom = beyond.below.width > 0 ? beyond.below.y + beyond.below.height
                                            : continued.y + continued.height;
  return Box{continued.x, top, continued.width, bottom - top};
}

Box continued_along_line(const Gray8& image, const Box& span, const Box& region,
                         const std::vector<Box>& barriers) {
  const int reach = kLineReach * span.height, gap = std::max(3, span.height);
  const int x0 = std::max(0, region.x - reach);
  const int x1 = std::min(static_cast<int>(image.width), region.x + region.width + reach);
  if (x1 - x0 < 2 || span.height < 3) return span;
  const Box window{x0, span.y, x1 - x0, span.height};
  const std::vector<std::uint8_t> ink = ink_mask(image, window);
  // A column continues the line when ink lies in its middle half (not a neighbouring line's
  // descender or ascender reaching into the span's padding).
  const auto inked = [&](int x) {
    for (int y = span.height / 4; y < span.height - span.height / 4; ++y)
      if (ink[static_cast<std::size_t>(y) * window.width + static_cast<std::size_t>(x - x0)] != 0)
        return true;
    return false;
  };
  const auto walk = [&](int from, int step) {
    int last = from;
    for (int x = from + step; x >= x0 && x < x1 && std::abs(x - last) <= gap; x += step) {
      if (blocked(x, span, barriers)) break;
      if (inked(x)) last = x;
    }
    return last;
  };
  const int right = walk(span.x + span.width - 1, 1);
  const int left = walk(span.x, -1);
  const int end = std::max(right + 1, span.x + span.width);
  const int start = std::min(left, span.x);
  // Only what lies past the region's own ends is new: inside it, ink_spans saw everything.
  if (end <= region.x + region.width && start >= region.x) return span;
  return with_the_glyphs_whole(image, Box{start, span.y, end - start, span.height}, region);
}

// A span's glyphs whole, wherever the span came from. The detector's box can cut a line's
// glyphs: on seed 4242's 0001.dcm a 6 px tall region held only the lower half of the initial
// "O." after "THORNTON, Horatio"; its span (and the fill) began 4 rows under the O's top.
// Ink joined to the span's own ink, within half a span height above and below, is redacted
// with it, each part over its own columns (not the whole span's width: a fill that rose over
// every column took kept words and anatomy with it); a kept word's ink and a fill are not
// taken in (a neighbouring line's ink touching the span's is, fail closed). Appends the span
// and those parts to `out`.
void every_glyph_whole(const Gray8& image, const Box& span, const std::vector<Box>& keep_out,
                       std::vector<Box>& out) {
  out.push_back(span);
  const GlyphInk beyond = glyph_ink_beyond(image, span, Box{}, keep_out);
  if (beyond.above.width > 0) out.push_back(beyond.above);
  if (beyond.below.width > 0) out.push_back(beyond.below);
}

std::vector<Box> grown_a_little(std::vector<Box> boxes) {
  for (Box& b : boxes) b = Box{b.x - 2, b.y - 1, b.width + 4, b.height + 2};
  return boxes;
}

}  // namespace

constexpr float kSureText = 0.9F;

// The category of each box to fill: that of the word not kept it covers most, when that word
// was redacted for what it is (identifying, or a piece beside an identifying word: its
// neighbour's category), else unread (a doubtful reading, ink nobody read). A region's first
// identifying category labelled every box of it: a date beside a name was reported as a name.
std::vector<Category> box_categories(const std::vector<Box>& boxes, const std::vector<Word>& words,
                                     const std::vector<std::optional<Category>>& category_of,
                                     const std::vector<bool>& doubtful,
                                     const std::vector<Box>& kept) {
  const auto is_kept = [&](const Box& b) {
    return std::any_of(kept.begin(), kept.end(), [&](const Box& k) {
      return k.x == b.x && k.y == b.y && k.width == b.width && k.height == b.height;
    });
  };
  std::vector<std::optional<Category>> covered(words.size());
  std::vector<bool> counted(words.size(), false);
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (is_kept(words[i].box)) continue;  // not filled: a box reaching it is a margin
    counted[i] = true;
    if (doubtful[i]) continue;
    covered[i] = category_of[i];
    if (!covered[i] && i > 0) covered[i] = category_of[i - 1];
    if (!covered[i] && i + 1 < words.size()) covered[i] = category_of[i + 1];
  }
  std::vector<Category> categories;
  categories.reserve(boxes.size());
  for (const Box& box : boxes) {
    Category category = Category::unread;
    int most = 0;
    for (std::size_t i = 0; i < words.size(); ++i) {
      const int area = counted[i] ? overlap_area(box, words[i].box) : 0;
      if (area <= most) continue;
      most = area;
      category = covered[i].value_or(Category::unread);
    }
    categories.push_back(category);
  }
  return categories;
}

Result<RegionVerdict> judge_region(const Gray8& image, const TextRegion& region,
                                   const PhiMatcher& matcher, Mode mode,
                                   const std::vector<Box>& filled,
                                   const std::vector<TextRegion>& neighbours) {
  RegionVerdict verdict;
  const Box core = region.core.width > 0 ? region.core : region.box;
  std::vector<Box> other_cores;
  for (const TextRegion& n : neighbours) {
    const Box c = n.core.width > 0 ? n.core : n.box;
    if (overlap_area(c, region.box) > 0 && overlap_area(c, core) == 0) other_cores.push_back(c);
  }
  // What stops a span continued past the region: fills, and other regions' text.
  std::vector<Box> barriers = filled;
  for (const TextRegion& n : neighbours) {
    const Box c = n.core.width > 0 ? n.core : n.box;
    if (overlap_area(c, core) == 0) barriers.push_back(c);
  }
  const auto along_lines = [&](std::vector<Box> spans) {
    if (region.vertical) return spans;
    std::vector<Box> whole;
    for (const Box& span : spans) {
      // The continued span (its new columns' glyphs already whole), and the glyphs of the
      // span's own rows over its whole length: grown once, from the span's own height.
      const Box continued = continued_along_line(image, span, region.box, barriers);
      if (continued.y != span.y || continued.height != span.height) whole.push_back(continued);
      every_glyph_whole(image, Box{continued.x, span.y, continued.width, span.height}, barriers,
                        whole);
    }
    return whole;
  };
  if (mode == Mode::all_text) {
    verdict.redact = along_lines(ink_spans(image, region.box, filled, core, other_cores));
    return verdict;
  }
  auto words = read_region(image, region.box, region.vertical);
  if (!words) return std::unexpected(words.error());
  const auto category_of = identified_words(matcher, *words, verdict);
  std::vector<bool> identified(category_of.size());
  for (std::size_t i = 0; i < category_of.size(); ++i) identified[i] = category_of[i].has_value();
  const std::vector<bool> doubtful = doubtful_words(*words, identified);
  for (std::size_t i = 0; i < words->size(); ++i) {
    const Word& word = (*words)[i];
    if (doubtful[i]) continue;
    // Beside an identifying word, a reading that is not certain is most likely the rest of
    // it ("DM" "|" "TRI" for DMITRI).
    const bool beside = (i > 0 && identified[i - 1]) || (i + 1 < words->size() && identified[i + 1]);
    if (identified[i]) continue;
    if (beside) {
      const std::string letters = letters_of(word.text);
      // A piece of a header value ("LIN" of LINDQVIST read apart) or a lone letter (an
      // initial: "KAPOOR, FIONA J.") is part of the identifying text, however confident.
      const bool label = letters.size() >= 3 && known_vocabulary(letters);
      if (!label && matcher.piece_of_value(word.text)) continue;
      if (letters.size() == 1 && std::isalpha(static_cast<unsigned char>(letters[0])) != 0)
        continue;
      // A short unknown reading beside it is a misread piece or suffix ("Uc" for the LLC of
      // "Pine Ridge Imaging LLC"), however confident: only labels and measurements stay.
      if (letters.size() <= 3 && !known_vocabulary(letters) && !measurement(word.text)) continue;
      // Otherwise a reading that is not certain is most likely the rest of it ("DM" "|"
      // "TRI" for DMITRI), unless it is a label of 3+ letters of the screen's vocabulary
      // ("DOB", "MRN"; two letters could be a piece of a name).
      if (word.confidence < kCertain && !label) continue;
    }
    if (plausible_reading(word)) verdict.kept.push_back(word.box);
  }
  std::vector<Box> exclude = grown_a_little(verdict.kept);
  exclude.insert(exclude.end(), filled.begin(), filled.end());
  barriers.insert(barriers.end(), exclude.begin(), exclude.end());
  verdict.redact = along_lines(ink_spans(image, region.box, exclude, core, other_cores, verdict.kept));
  // Text the detector is sure of, where no word was read with confidence and no ink stands
  // out from the ground (print a few grey levels above it, next to a bright line that sets
  // the ink level): unread text, covered where the detector saw it (fail closed).
  if (filled.empty() && verdict.redact.empty() && verdict.kept.empty() &&
      region.score >= kSureText)
    verdict.redact.push_back(core);
  verdict.categories = box_categories(verdict.redact, *words, category_of, doubtful, verdict.kept);
  return verdict;
}

namespace {

// The mosaic of line-shaped marks is there for small text (and faint text on a flat ground),
// which the detector misses at the image's scale. A taller mark whose surroundings vary as
// much as speckle does is a band of speckle: shown scaled up, the detector found text-like
// spots in it, and the band was filled whole (blocks of 70 x 200-400 px over an ultrasound
// sector of bench/third_screens.py). Text that tall over texture is the detector's own job.
constexpr int kSmallTextHeight = 24;
constexpr double kTexturedRing = 12;  // grey levels: standard deviation around a mark

bool small_or_on_flat_ground(const Gray8& image, const Box& mark) {
  if (mark.height <= kSmallTextHeight) return true;
  // The ring just outside the mark's box: the ground it stands on.
  const int ring = std::max(3, mark.height / 4);
  double sum = 0, squares = 0;
  std::size_t n = 0;
  const int x0 = std::max(0, mark.x - ring), y0 = std::max(0, mark.y - ring);
  const int x1 = std::min(static_cast<int>(image.width), mark.x + mark.width + ring);
  const int y1 = std::min(static_cast<int>(image.height), mark.y + mark.height + ring);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      if (inside(x, y, mark)) continue;
      const double v = image.pixels[static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)];
      sum += v;
      squares += v * v;
      ++n;
    }
  if (n == 0) return true;
  const double mean = sum / static_cast<double>(n);
  const double variance = squares / static_cast<double>(n) - mean * mean;
  return variance <= kTexturedRing * kTexturedRing;
}

// Whether a line-shaped mark is a line the detector found already: its middle row lies in a
// region's text (its core), most of its width under the region, and what reaches past the
// region at most two of the mark's heights: within what continued_along_line redacts past a
// horizontal region (kLineReach span heights, a span padded taller than its ink). A vertical
// region is not continued along its line; what a turned label leaves past its region is left
// to the check after the fill. A mark in a region's margin only is another line: a faint
// 4-6 px date between two bright lines lay in their margins, was never shown to the
// detector, and was filled only where their ink reached. A line reaching further past the
// region than that is shown to the mosaic and judged whole.
bool line_of_a_region(const Box& mark, const std::vector<TextRegion>& regions) {
  const int middle = mark.y + mark.height / 2;
  return std::any_of(regions.begin(), regions.end(), [&](const TextRegion& r) {
    const Box& core = r.core.width > 0 ? r.core : r.box;
    if (middle < core.y - 1 || middle > core.y + core.height) return false;
    const int shared = std::min(mark.x + mark.width, r.box.x + r.box.width) - std::max(mark.x, r.box.x);
    return shared * 2 >= mark.width && mark.width - shared <= 2 * mark.height;
  });
}

// A colour-Doppler box in a frame's chroma: flow drawn as blobs of colour packed like speckle
// on a ground without colour. The check after the fill found its specks (2-65 px, most by
// the detector at the image's scale, some in the small-text mosaic) as text, read garbage
// ("Ae") and, since the search before the fill had not proposed them, refused the file
// (bench/fourth_screens.py seed 1313: 2 of 12 files). The
// luminance has its own test for speckle (small_or_on_flat_ground) but lets small marks
// through whatever their ground, as small text over speckle must be found; in the chroma a
// small mark is left to the detector's own scale when ink stands on every side of it, within
// its height: the ends of a line of text are ground (the mark finder joins a line's words
// into one mark), a speck in a field of flow has flow left and right, above and below.
constexpr double kPackedShare = 0.15;  // of each side strip's pixels, off the ground
constexpr int kPackedContrast = 24;    // grey levels (chroma) off the window's median

// A speck is short and about as wide as tall; a line of text, even of two letters, is wider
// (review of the tenth pass: a one-line coloured name over flow must not pass as flow).
bool speck_shaped(const Box& mark) {
  constexpr int kMaxSpeckHeight = 24;
  return mark.height > 0 && mark.height <= kMaxSpeckHeight && mark.width <= 2 * mark.height;
}

bool packed_in_colour(const Gray8& chroma, const Box& mark) {
  if (!speck_shaped(mark)) return false;
  const int g = std::max(4, mark.height);
  const int width = static_cast<int>(chroma.width), height = static_cast<int>(chroma.height);
  const auto at = [&](int x, int y) {
    return chroma.pixels[static_cast<std::size_t>(y) * chroma.width + static_cast<std::size_t>(x)];
  };
  // The ground: the median of the window around the mark.
  std::vector<std::uint8_t> window;
  for (int y = std::max(0, mark.y - g); y < std::min(height, mark.y + mark.height + g); ++y)
    for (int x = std::max(0, mark.x - g); x < std::min(width, mark.x + mark.width + g); ++x)
      window.push_back(at(x, y));
  if (window.empty()) return false;
  const int ground = median_in_place(window);
  const auto packed = [&](const Box& strip) {
    const int x0 = std::max(0, strip.x), y0 = std::max(0, strip.y);
    const int x1 = std::min(width, strip.x + strip.width), y1 = std::min(height, strip.y + strip.height);
    if (x1 <= x0 || y1 <= y0) return false;  // the image's edge: no ink there
    int off = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) off += std::abs(at(x, y) - ground) > kPackedContrast ? 1 : 0;
    return off >= kPackedShare * (x1 - x0) * (y1 - y0);
  };
  return packed(Box{mark.x - g, mark.y, g, mark.height}) &&
         packed(Box{mark.x + mark.width, mark.y, g, mark.height}) &&
         packed(Box{mark.x, mark.y - g, mark.width, g}) &&
         packed(Box{mark.x, mark.y + mark.height, mark.width, g});
}

// Every region of a frame: the detector's at the image's scale, then small text it confirms
// among the line-shaped marks outside those regions and `skip`.
Result<std::vector<TextRegion>> all_regions(const Gray8& image, const std::vector<Box>& skip,
                                            DetectPasses passes, Render render) {
  auto regions = detect_text(image, passes);
  if (!regions) return std::unexpected(regions.error());
  std::vector<Box> marks;
  for (const Candidate& c :
       uncovered_text_candidates(image, {}, skip,
                                 render == Render::luminance
                                     ? MarkContrast::faintest_on_flat_ground
                                     : MarkContrast::faint_on_flat_ground))
    if (small_or_on_flat_ground(image, c.box) && !line_of_a_region(c.box, *regions) &&
        !(render != Render::luminance && packed_in_colour(image, c.box)))
      marks.push_back(c.box);
  auto small = confirm_small_text(image, marks);
  if (!small) return std::unexpected(small.error());
  regions->insert(regions->end(), small->begin(), small->end());
  return regions;
}

// Whether a region's text runs top-down (a label turned a quarter): its spans are read across.
enum class Upright : std::uint8_t { no, yes };

// A box seen turned a quarter (x for y): an upright region's spans measured as a line's.
Box turned(const Box& b) { return Box{b.y, b.x, b.height, b.width}; }

// A span of ink at most 4 px tall (1-2 px of ink with ink_spans' padding), under a quarter of
// its region's height, sharing columns with a filled box or a kept word and lying against its
// top or bottom edge, is what the box left of the line: the rim of descenders, the last row
// of a table rule under it (bench/fourth_screens.py seed 1313: spans 3 px tall, 1 px of ink,
// under "Event", "mAs" and a dose value, quarantined three files; some reach 5 px past the
// box's end). No glyph is that flat; a taller span, or one away from every box's edge, still
// counts (review of the tenth pass: a height relative to the region alone grew loose in tall
// merged regions). In an upright region (a label turned a quarter) the same holds across: a
// span at most 2 px wide (its width has no padding: the same 2 px of ink) lying against a
// fill's left or right edge, sharing its rows.
bool sliver_of_a_fill(const Box& span, const Box& region, const std::vector<Box>& filled,
                      Upright upright) {
  constexpr int kMaxSliverHeight = 4, kMaxSliverInk = 2, kSlack = 2;
  const auto across = [&](const Box& b) { return upright == Upright::yes ? turned(b) : b; };
  const Box s = across(span), r = across(region);
  const int limit = upright == Upright::yes ? kMaxSliverInk : kMaxSliverHeight;
  if (s.height > limit || s.height * 4 >= r.height) return false;
  return std::any_of(filled.begin(), filled.end(), [&](const Box& box) {
    const Box f = across(box);
    const bool columns = s.x < f.x + f.width && f.x < s.x + s.width;
    const int top = s.y, bottom = s.y + s.height;
    const bool below = top >= f.y + f.height - kSlack && top <= f.y + f.height + kSlack;
    const bool above = bottom >= f.y - kSlack && bottom <= f.y + kSlack;
    return columns && (below || above);
  });
}

// Whether a span left after the fill is glyph-sized for its region: along the text at least a
// third of the line's thickness (a horizontal line's height, an upright one's width), and
// across it at least 3 px. The upright case was never counted before this pass: a span of a
// turned label is narrow and tall, and `width * 3 >= region height` passed a whole turned name
// left beside a fill.
bool glyph_sized(const Box& span, const Box& region, Upright upright) {
  const Box s = upright == Upright::yes ? turned(span) : span;
  const Box r = upright == Upright::yes ? turned(region) : region;
  return s.width * 3 >= r.height && (upright == Upright::no || s.height >= 3);
}

// Whether `region` may be a speck of colour-Doppler flow left out of the check after the fill:
// speck-shaped with flow on every side, away from every fill and kept word, and nothing in it
// read as identifying (flow reads as garbage, "Ae").
bool flow_speck(const Gray8& chroma, const TextRegion& region, const std::vector<Box>& known,
                const RegionVerdict& verdict) {
  const Box& mark = region.core.width > 0 ? region.core : region.box;
  if (verdict.identified.has_value() || !packed_in_colour(chroma, mark)) return false;
  return std::none_of(known.begin(), known.end(), [&](const Box& k) {
    return mark.x < k.x + k.width && k.x < mark.x + mark.width && mark.y < k.y + k.height &&
           k.y < mark.y + mark.height;
  });
}

// A line of text set on a slant (a stamp on a scanned form, 15-75 degrees off the rows) is
// seen by the detector only in pieces: held-out seed 737's 0010.dcm (bench/heldout_screens.py)
// had "PINE RIDGE IMAGING LLC" stamped pale at about 30 degrees, letters 20 px tall, and the
// passes proposed 7-25 px pieces of it along the slant, each read as garbage and filled; most
// of each letter was released. Pieces that line up on a slant are taken for one line, and the
// band along them is filled, as far as ink goes on past the last piece.
struct SlantedPiece {
  double x = 0, y = 0;  // centre
  double size = 0;      // the box's larger side
};

constexpr int kMaxPieceSize = 48;         // px: larger regions are the detector's own lines
constexpr std::size_t kMinPieces = 5;     // fewer do not make a line
constexpr std::size_t kMaxPieces = 2000;  // pairs of pieces are compared: a bound on the time
constexpr double kPieceLink = 3.0;        // pieces of one line lie within this many sizes
constexpr double kLeastSlant = 15, kMostSlant = 75;  // degrees off the rows
constexpr double kBandMargin = 4;                    // px beyond the ink's reach across the line
constexpr double kInkContrast = 8;  // grey levels off the band's ground: ink past the end
constexpr double kInkShare = 0.02;  // of a step's pixels: the line goes on
constexpr int kMostSteps = 8;       // steps past the last piece, at most

// Groups of pieces within kPieceLink sizes of each other (union-find).
std::vector<std::vector<SlantedPiece>> piece_groups(const std::vector<SlantedPiece>& pieces) {
  std::vector<std::size_t> parent(pieces.size());
  for (std::size_t i = 0; i < parent.size(); ++i) parent[i] = i;
  const auto root = [&](std::size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (std::size_t i = 0; i < pieces.size(); ++i)
    for (std::size_t j = i + 1; j < pieces.size(); ++j) {
      const double reach = kPieceLink * std::max(pieces[i].size, pieces[j].size);
      if (std::hypot(pieces[i].x - pieces[j].x, pieces[i].y - pieces[j].y) <= reach)
        parent[root(i)] = root(j);
    }
  std::vector<std::vector<SlantedPiece>> groups(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) groups[root(i)].push_back(pieces[i]);
  std::erase_if(groups, [](const auto& g) { return g.size() < kMinPieces; });
  return groups;
}

// Share of the pixels of `window` (clipped to the image) further than kInkContrast from its
// median: ink on a ground.
double ink_share(const Gray8& image, const Box& window) {
  const int x0 = std::max(0, window.x), y0 = std::max(0, window.y);
  const int x1 = std::min(static_cast<int>(image.width), window.x + window.width);
  const int y1 = std::min(static_cast<int>(image.height), window.y + window.height);
  if (x1 <= x0 || y1 <= y0) return 0;
  std::vector<int> values;
  values.reserve(static_cast<std::size_t>((x1 - x0) * (y1 - y0)));
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      values.push_back(
          image.pixels[static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)]);
  const int ground = median_in_place(values);  // the count below does not need the order
  const auto off = std::count_if(values.begin(), values.end(),
                                 [&](int v) { return std::abs(v - ground) > kInkContrast; });
  return static_cast<double>(off) / static_cast<double>(values.size());
}

// A line's axis: through (x, y) along (ux, uy), from `lo` to `hi` (signed distances from
// (x, y)).
struct Axis {
  double x, y, ux, uy, lo, hi;
};

// How far across `axis` its ink reaches, in whole pixels, up to `most`: rows parallel to the
// axis, one pixel apart, outward on each side while at least kRowInk of a row's pixels are
// ink (further than kInkContrast from the median of the rows searched).
int ink_reach(const Gray8& image, const Axis& axis, int most) {
  constexpr double kRowInk = 0.04;
  const auto at = [&](double along, double across, int& value) {
    const double px = axis.x + along * axis.ux - across * axis.uy;
    const double py = axis.y + along * axis.uy + across * axis.ux;
    const long x = std::lround(px), y = std::lround(py);
    if (x < 0 || y < 0 || x >= static_cast<long>(image.width) ||
        y >= static_cast<long>(image.height))
      return false;
    value = image.pixels[static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)];
    return true;
  };
  std::vector<int> all;
  for (int across = -most; across <= most; ++across)
    for (double along = axis.lo; along <= axis.hi; along += 1) {
      int v = 0;
      if (at(along, across, v)) all.push_back(v);
    }
  if (all.empty()) return 0;
  const int ground = median_in_place(all);
  const auto row_is_ink = [&](int across) {
    int ink = 0, seen = 0;
    for (double along = axis.lo; along <= axis.hi; along += 1) {
      int v = 0;
      if (!at(along, across, v)) continue;
      ++seen;
      ink += std::abs(v - ground) > kInkContrast ? 1 : 0;
    }
    return seen > 0 && ink >= kRowInk * seen;
  };
  int reach = 0;
  for (const int side : {-1, 1}) {
    int d = 0;
    while (d < most && row_is_ink(side * (d + 1))) ++d;
    reach = std::max(reach, d);
  }
  return reach;
}

// The squares that tile one group's band, or none when the group is no slanted line: its
// pieces' centres along one axis 15-75 degrees off the rows, close to it, the line at least
// four pieces long.
std::vector<Box> band_of(const Gray8& image, const std::vector<SlantedPiece>& group) {
  double mx = 0, my = 0;
  for (const auto& p : group) {
    mx += p.x;
    my += p.y;
  }
  const auto n = static_cast<double>(group.size());
  mx /= n;
  my /= n;
  double sxx = 0, syy = 0, sxy = 0;
  for (const auto& p : group) {
    sxx += (p.x - mx) * (p.x - mx);
    syy += (p.y - my) * (p.y - my);
    sxy += (p.x - mx) * (p.y - my);
  }
  const double angle = 0.5 * std::atan2(2 * sxy, sxx - syy);  // the major axis
  const double degrees = std::abs(angle) * 180.0 / CV_PI;
  if (degrees < kLeastSlant || degrees > kMostSlant) return {};
  const double ux = std::cos(angle), uy = std::sin(angle);
  double lo = 1e9, hi = -1e9, off_axis = 0;
  std::vector<double> sizes;
  for (const auto& p : group) {
    const double along = (p.x - mx) * ux + (p.y - my) * uy;
    lo = std::min(lo, along);
    hi = std::max(hi, along);
    off_axis = std::max(off_axis, std::abs(-(p.x - mx) * uy + (p.y - my) * ux));
    sizes.push_back(p.size);
  }
  const double typical = median_in_place(sizes);
  const double length = hi - lo;
  // A block of text, or pieces strewn about, spread across the axis as much as along it.
  if (length < 4 * typical || off_axis > std::max(typical, 0.15 * length)) return {};
  // Across the line: as far as its ink reaches (pieces are parts of letters, as tall as a
  // letter or a third of one), at least as far as the pieces' centres stray and a typical
  // piece's half beyond, at most three pieces' sizes.
  const double least = off_axis + typical / 2;
  const int most = static_cast<int>(std::ceil(std::max(least, 3 * typical)));
  const double reach =
      std::max(least, static_cast<double>(ink_reach(image, {mx, my, ux, uy, lo, hi}, most)));
  const double half = reach + kBandMargin;
  const auto square = [&](double along) {
    const double cx = mx + along * ux, cy = my + along * uy;
    return Box{static_cast<int>(std::floor(cx - half)), static_cast<int>(std::floor(cy - half)),
               static_cast<int>(std::ceil(2 * half)), static_cast<int>(std::ceil(2 * half))};
  };
  // Past each end, a step at a time while the line's ink goes on.
  for (int step = 0; step < kMostSteps && ink_share(image, square(hi + half)) >= kInkShare; ++step)
    hi += half;
  for (int step = 0; step < kMostSteps && ink_share(image, square(lo - half)) >= kInkShare; ++step)
    lo -= half;
  std::vector<Box> band;
  for (double along = lo; along < hi + half; along += half) band.push_back(square(along));
  return band;
}

}  // namespace

std::vector<Box> slanted_line_bands(const Gray8& image,
                                    const std::vector<std::pair<Box, Category>>& found) {
  std::vector<SlantedPiece> pieces;
  for (const auto& [box, category] : found) {
    if (category != Category::unread && category != Category::text) continue;
    if (std::max(box.width, box.height) > kMaxPieceSize || box.empty()) continue;
    pieces.push_back({box.x + box.width / 2.0, box.y + box.height / 2.0,
                      static_cast<double>(std::max(box.width, box.height))});
  }
  if (pieces.size() < kMinPieces || pieces.size() > kMaxPieces) return {};
  std::vector<Box> bands;
  for (const auto& group : piece_groups(pieces)) {
    auto band = band_of(image, group);
    bands.insert(bands.end(), band.begin(), band.end());
  }
  return bands;
}

Result<FrameFindings> find_text(const Gray8& image, const PhiMatcher& matcher, Mode mode,
                                const std::vector<Box>& skip, RegionMemo& memo, Render render) {
  auto regions = all_regions(image, skip, DetectPasses::with_stretched, render);
  if (!regions) return std::unexpected(regions.error());
  FrameFindings findings;
  for (const TextRegion& region : *regions) {
    if (std::any_of(skip.begin(), skip.end(),
                    [&](const Box& s) { return mostly_inside(region.box, s); }))
      continue;
    const RegionVerdict* verdict = memo.find(image, region.box);
    if (verdict == nullptr) {
      auto judged = judge_region(image, region, matcher, mode, {}, *regions);
      if (!judged) return std::unexpected(judged.error());
      memo.add(image, region.box, std::move(*judged));
      verdict = memo.find(image, region.box);
    }
    for (std::size_t k = 0; k < verdict->redact.size(); ++k) {
      // All-text mode covers any text; a verdict always has a category per box otherwise.
      Category category = Category::text;
      if (mode != Mode::all_text)
        category = k < verdict->categories.size() ? verdict->categories[k] : Category::unread;
      findings.redact.emplace_back(verdict->redact[k], category);
    }
    findings.kept.insert(findings.kept.end(), verdict->kept.begin(), verdict->kept.end());
  }
  const Category band_category = mode == Mode::all_text ? Category::text : Category::unread;
  for (const Box& band : slanted_line_bands(image, findings.redact))
    findings.redact.emplace_back(band, band_category);
  return findings;
}

Result<std::size_t> text_left_behind(const Gray8& after, const PhiMatcher& matcher, Mode mode,
                                     const std::vector<Box>& filled, const std::vector<Box>& kept,
                                     Render render) {
  // The plain pass only: everything dim was judged before the fill, and its pixels are
  // unchanged unless a box covers them.
  auto regions = all_regions(after, filled, DetectPasses::plain, render);
  if (!regions) return std::unexpected(regions.error());
  std::vector<Box> known = filled;
  known.insert(known.end(), kept.begin(), kept.end());
  known = grown_a_little(std::move(known));
  std::size_t left = 0;
  for (const TextRegion& region : *regions) {
    // Slivers beside a kept word or a fill are the boxes' imprecision, not text.
    const auto spans = ink_spans(after, region.box, known, {}, {}, kept);
    const Upright upright = region.vertical || region.box.height > 2 * region.box.width
                                ? Upright::yes
                                : Upright::no;
    // A span counts if it is glyph-sized either way: a narrow stack of short lines merged by
    // the detector is tall for its width yet not turned text, and one line left after the fill
    // there is a line's span (review of the eleventh pass).
    const auto counts = [&](const Box& b, Upright u) {
      return glyph_sized(b, region.box, u) && !sliver_of_a_fill(b, region.box, known, u);
    };
    if (std::none_of(spans.begin(), spans.end(), [&](const Box& b) {
          return counts(b, Upright::no) || (upright == Upright::yes && counts(b, Upright::yes));
        }))
      continue;
    auto judged = judge_region(after, region, matcher, mode, known);
    if (!judged) return std::unexpected(judged.error());
    // A speck of a colour-Doppler box's flow: the search before the fill did not propose it,
    // and no text is left there (seed 1313's 0006.dcm: 43 such regions).
    if (render != Render::luminance && flow_speck(after, region, known, *judged)) continue;
    if (!judged->redact.empty()) ++left;
  }
  return left;
}

Gray8 consensus(const std::vector<Gray8>& frames) {
  Gray8 out;
  if (frames.empty()) return out;
  out.width = frames.front().width;
  out.height = frames.front().height;
  const std::size_t n = frames.size();
  const std::size_t samples = std::min<std::size_t>(n, 15);
  std::vector<const Gray8*> chosen;
  for (std::size_t k = 0; k < samples; ++k) chosen.push_back(&frames[k * n / samples]);
  const std::size_t pixels = frames.front().pixels.size();
  out.pixels.resize(pixels);
  std::vector<std::uint8_t> values(samples);
  for (std::size_t p = 0; p < pixels; ++p) {
    for (std::size_t k = 0; k < samples; ++k) values[k] = chosen[k]->pixels[p];
    out.pixels[p] = median_in_place(values);
  }
  return out;
}

const RegionVerdict* RegionMemo::find(const Gray8& image, const Box& box) const {
  for (const Entry& e : entries_) {
    if (e.box.x != box.x || e.box.y != box.y || e.box.width != box.width ||
        e.box.height != box.height)
      continue;
    bool same = true;
    std::size_t i = 0;
    for (int y = box.y; y < box.y + box.height && same; ++y)
      for (int x = box.x; x < box.x + box.width && same; ++x)
        same = e.pixels[i++] == image.pixels[static_cast<std::size_t>(y) * image.width +
                                             static_cast<std::size_t>(x)];
    if (same) return &e.verdict;
  }
  return nullptr;
}

void RegionMemo::add(const Gray8& image, const Box& box, RegionVerdict verdict) {
  Entry e;
  e.box = box;
  e.pixels.reserve(static_cast<std::size_t>(box.width) * box.height);
  for (int y = box.y; y < box.y + box.height; ++y)
    for (int x = box.x; x < box.x + box.width; ++x)
      e.pixels.push_back(
          image.pixels[static_cast<std::size_t>(y) * image.width + static_cast<std::size_t>(x)]);
  e.verdict = std::move(verdict);
  entries_.push_back(std::move(e));
}

}  // namespace radguard::redact
