#pragma once
// Internal to src/redact/: what to do with each text region the detector finds.
//
// A region is read as a line; a word is kept only when it is read with confidence and is
// not identifying. Every other inked part of the region is redacted: an identifying word,
// a word read with doubt, and ink nobody read at all. Redaction thus follows the text, not
// a guess of where text might be, and never depends on OCR having read it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/result.hpp"
#include "redact/ocr.hpp"
#include "redact/redact.hpp"
#include "redact/text_detector.hpp"

namespace radguard::redact {

struct RegionVerdict {
  std::vector<Box> redact;            // parts of the region to fill (no margin yet)
  std::vector<Box> kept;              // words read with confidence and not identifying
  std::optional<Category> identified;  // the first identifying category read in it
  // Per box of `redact` (all-text mode: none): what it covers, as box_categories decides.
  std::vector<Category> categories;
};

// Judges one region of `image`. Pixels inside `filled` (already redacted) count as no ink,
// and so do marks inside the core of one of `neighbours` (other regions of the frame, judged
// on their own) that do not reach this region's core: the line above or below inside this
// region's margin. all-text mode redacts every inked part. Fails like read_region.
Result<RegionVerdict> judge_region(const Gray8& image, const TextRegion& region,
                                   const PhiMatcher& matcher, Mode mode,
                                   const std::vector<Box>& filled,
                                   const std::vector<TextRegion>& neighbours = {});

// Whether a word beside a reading nobody could trust (ink redacted as unread) is kept on
// its own rather than taken for a piece of that reading (regions.cpp says what qualifies).
[[nodiscard]] bool stands_alone(const Word& word);

// Which of a region's words will be redacted as unread: neither `identified` nor trusted, or
// beside such a word without standing alone, as far as the doubt carries.
[[nodiscard]] std::vector<bool> doubtful_words(const std::vector<Word>& words,
                                               const std::vector<bool>& identified);

// Regions of one frame and what was decided for them: the boxes to fill (margin added and
// clipped to the image by the caller) with their categories.
struct FrameFindings {
  std::vector<std::pair<Box, Category>> redact;
  std::vector<Box> kept;  // words read with confidence and not identifying
};

// A line of text set on a slant (a stamp on a scanned form), found by the detector only in
// pieces: among `found`'s unread (or all-text) boxes up to 48 px, groups of five or more
// whose centres line up 15-75 degrees off the rows, at least four pieces long and close to
// their axis. Returns square boxes tiling each such line's band, across it as far as the
// pieces stray and along it past the last piece while ink goes on (at most eight steps);
// nothing when no group qualifies. Pure: reads `image`, keeps nothing.
[[nodiscard]] std::vector<Box> slanted_line_bands(
    const Gray8& image, const std::vector<std::pair<Box, Category>>& found);

// Which render of a frame `image` is: its luminance, its chroma (colour frames searched
// again for coloured text as bright as the anatomy under it, redactor.cpp), or its hue's
// distance from the frame's commonest colour (coloured text as bright and as colourful as
// the flow under it). In the two colour renders, marks packed on every side by other
// coloured marks (a colour-Doppler box's flow) are not shown to the small-text mosaic, nor
// counted as text left by the check after the fill.
enum class Render : std::uint8_t { luminance, chroma, hue };

// Detects and judges every region of `image` not mostly inside `skip`. Results of regions
// whose pixels were judged before (same box, same pixels: static text in a clip) come from
// `memo` without reading again. Fails like detect_text or read_region.
class RegionMemo;
Result<FrameFindings> find_text(const Gray8& image, const PhiMatcher& matcher, Mode mode,
                                const std::vector<Box>& skip, RegionMemo& memo,
                                Render render = Render::luminance);

// After filling: every region still detected that shows ink outside the filled boxes and
// the words kept before, and reads as identifying or unread. Each counts as text left
// behind: the file fails closed.
Result<std::size_t> text_left_behind(const Gray8& after, const PhiMatcher& matcher, Mode mode,
                                     const std::vector<Box>& filled, const std::vector<Box>& kept,
                                     Render render = Render::luminance);

// Per-pixel median of up to 15 frames spread over a clip: static overlays stay sharp, moving
// anatomy and text that changes fade out. The frames must share one size.
Gray8 consensus(const std::vector<Gray8>& frames);

class RegionMemo {
 public:
  const RegionVerdict* find(const Gray8& image, const Box& box) const;
  void add(const Gray8& image, const Box& box, RegionVerdict verdict);

 private:
  struct Entry {
    Box box;
    std::vector<std::uint8_t> pixels;
    RegionVerdict verdict;
  };
  std::vector<Entry> entries_;
};

}  // namespace radguard::redact
