#pragma once
// Images with text burned into their pixels, drawn with OpenCV, and the ink of each word, so
// tests and the benchmark can say whether a word is covered by the redaction boxes.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "redact/redact.hpp"

namespace radguard::testing {

struct BurnedText {
  std::string text;
  cv::Point origin;  // bottom-left of the text, as for cv::putText
  int font = 0;      // cv::HersheyFonts
  double scale = 0.6;
  int thickness = 1;
  int value = 255;  // grey level of the ink
  bool phi = true;
};

struct BurnedFrame {
  int width = 320, height = 240;
  int background = 0;
  int noise = 0;  // standard deviation of Gaussian noise added to the background
  unsigned seed = 1;
  // An area of blurred speckle standing in for anatomy (empty: none); drawn under the text.
  cv::Rect anatomy;
  std::vector<BurnedText> texts;
};

// The 8-bit grey frame.
cv::Mat draw_frame(const BurnedFrame& frame);
// The ink pixels of one text (255 where drawn).
cv::Mat ink_of(const BurnedFrame& frame, const BurnedText& text);

enum class Colour { monochrome2, monochrome1, rgb, ybr_full, palette, monochrome2_16bit };

// An ultrasound object (patient DOE^JOHN, ID PID12345, born 1930-01-02, study 2019-03-15,
// accession ACC998877) whose frames are the drawn frames, in the given colour model.
std::unique_ptr<DcmFileFormat> make_burned_in(
    const std::vector<BurnedFrame>& frames, Colour colour,
    const std::string& sop_uid = "1.2.826.0.1.3680043.2.1125.9.1");

// The fraction of a text's ink pixels inside the union of `boxes` of frame `index`.
double covered_fraction(const BurnedFrame& frame, const BurnedText& text,
                        const std::vector<redact::Redaction>& boxes, std::size_t index);

}  // namespace radguard::testing
