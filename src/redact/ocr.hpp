#pragma once
// Internal to src/redact/: rendering frames to 8-bit grey and reading words with Tesseract.
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "dicom/pixels.hpp"
#include "redact/redact.hpp"

namespace radguard::redact {

struct Gray8 {
  unsigned width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // row-major
};

// A frame windowed to its full value range (MONOCHROME1 inverted, colour as luminance,
// palette through its lookup table). Never fails.
Gray8 render_gray8(const dicom::PixelImage& image, std::size_t frame);

struct Word {
  Box box;  // in image pixels
  std::string text;
  float confidence = 0;
  // Read from the polarity Tesseract is trained on (dark text, light ground): readings of
  // the other polarity are mostly garbage and not worth a second look.
  bool dark_on_light = true;
  // Read from a text candidate the full-frame pass had no word for (read_candidate).
  bool from_candidate = false;
};

// Reads every word of an image, in both polarities (light-on-dark and dark-on-light), with
// small text scaled up and the edges padded so text touching the border is read. Uses this
// thread's Tesseract engine (created on first use). Fails with ErrorCode::internal when
// Tesseract cannot start (no eng.traineddata), cannot recognize the image, or throws.
Result<std::vector<Word>> read_words(const Gray8& image);

// A line of glyph-sized marks that may be text, found from the pixels alone (no OCR): where
// the full-frame pass found no word, it is read again on its own (read_candidate).
struct Candidate {
  Box box;                     // the ink's bounding box, image pixels
  bool dark_on_light = false;  // ink darker than its surroundings
  int glyphs = 0;              // separate marks in it (bold small text merges them)
};

// How faint a mark may be. `standard`: 24 grey levels above its ground, more on a noisy
// image. `faint_on_flat_ground`: the least contrast follows the texture around the mark (four
// times the local median deviation from the ground, at least 4 levels), so faint text on
// a flat margin, bar or page passes while speckle and anatomy still do not.
// `faintest_on_flat_ground`: that, and where the ground is flat to a grey level (a JPEG frame's
// black margin), strokes 2-6 levels above it, averaged over 3x3 pixels (luminance only: in a
// colour render, whose ground is no colour at all, any colour fringe would pass).
enum class MarkContrast : std::uint8_t { standard, faint_on_flat_ground, faintest_on_flat_ground };
inline constexpr double kFaintContrast = 8;

// Text-like lines of the image that neither a confident reading in `found` nor a box in
// `redacted` covers: marks 3-40 px tall, joined across small gaps into lines wider than tall.
// All of them, the smallest text first: a caller that reads only some must not treat the
// rest as checked.
std::vector<Candidate> uncovered_text_candidates(const Gray8& image, const std::vector<Word>& found,
                                                 const std::vector<Box>& redacted,
                                                 MarkContrast contrast = MarkContrast::standard);

struct CandidateReading {
  Box ink;                  // bounding box of the candidate's ink (its polarity from the pixels)
  std::vector<Word> words;  // image coordinates; empty when nothing reads
};

// Reads one candidate alone as a single line, scaled so its capitals are ~30 px tall, plain
// and with bold strokes thinned. Fails like read_words.
Result<CandidateReading> read_candidate(const Gray8& image, const Candidate& candidate);

// Reads one detected text region (text_detector.hpp) as a single line: polarity from the
// region's border (its ground), scaled so the line is ~40 px tall; a vertical region is read
// turned both ways, keeping the more confident reading, each word's box turned back.
// Fails like read_words.
Result<std::vector<Word>> read_region(const Gray8& image, const Box& region, bool vertical);

// The ink of a region (pixels of the polarity opposite to its border, beyond its Otsu level;
// horizontal rules removed), as a mask of the region's size: 255 where ink is. Never
// fails.
std::vector<std::uint8_t> ink_mask(const Gray8& image, const Box& region);

// Second opinions on one uncertain word: the region read again as a single line, at other
// scales and binarised. Fails like read_words.
Result<std::vector<std::string>> reread(const Gray8& image, const Box& box);

}  // namespace radguard::redact
