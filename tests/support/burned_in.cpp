#include "support/burned_in.hpp"

#include <opencv2/imgproc.hpp>
#include <random>

#include "support/fixtures.hpp"

namespace radguard::testing {

cv::Mat draw_frame(const BurnedFrame& frame) {
  cv::Mat image(frame.height, frame.width, CV_8UC1, cv::Scalar(frame.background));
  if (frame.noise > 0) {
    std::mt19937 random(frame.seed);
    std::normal_distribution<double> gauss(0.0, frame.noise);
    for (int y = 0; y < image.rows; ++y)
      for (int x = 0; x < image.cols; ++x)
        image.at<std::uint8_t>(y, x) =
            cv::saturate_cast<std::uint8_t>(frame.background + gauss(random));
  }
  if (!frame.anatomy.empty()) {
    cv::Mat speckle(frame.anatomy.size(), CV_8UC1);
    cv::randu(speckle, cv::Scalar(0), cv::Scalar(255));
    cv::GaussianBlur(speckle, speckle, cv::Size(7, 7), 1.5);
    speckle.copyTo(image(frame.anatomy & cv::Rect(0, 0, image.cols, image.rows)));
  }
  for (const auto& t : frame.texts)
    cv::putText(image, t.text, t.origin, t.font, t.scale, cv::Scalar(t.value), t.thickness,
                cv::LINE_8);
  return image;
}

cv::Mat ink_of(const BurnedFrame& frame, const BurnedText& text) {
  cv::Mat mask(frame.height, frame.width, CV_8UC1, cv::Scalar(0));
  cv::putText(mask, text.text, text.origin, text.font, text.scale, cv::Scalar(255), text.thickness,
              cv::LINE_8);
  return mask;
}

double covered_fraction(const BurnedFrame& frame, const BurnedText& text,
                        const std::vector<redact::Redaction>& boxes, std::size_t index) {
  const cv::Mat ink = ink_of(frame, text);
  cv::Mat covered(frame.height, frame.width, CV_8UC1, cv::Scalar(0));
  for (const auto& r : boxes)
    if (r.frame == index) covered(cv::Rect(r.box.x, r.box.y, r.box.width, r.box.height)).setTo(255);
  const int total = cv::countNonZero(ink);
  if (total == 0) return 1.0;
  cv::Mat both;
  cv::bitwise_and(ink, covered, both);
  return static_cast<double>(cv::countNonZero(both)) / total;
}

std::unique_ptr<DcmFileFormat> make_burned_in(const std::vector<BurnedFrame>& frames, Colour colour,
                                              const std::string& sop_uid) {
  const int width = frames.at(0).width, height = frames.at(0).height;
  auto file =
      make_ct("PID12345", sop_uid, static_cast<unsigned>(height), static_cast<unsigned>(width), 1);
  DcmDataset& d = *file->getDataset();
  d.putAndInsertString(DCM_Modality, "US");
  d.putAndInsertString(DCM_SOPClassUID, frames.size() > 1 ? UID_UltrasoundMultiframeImageStorage
                                                          : UID_UltrasoundImageStorage);
  d.putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\ABDOMINAL");
  d.findAndDeleteElement(DCM_RescaleIntercept);
  d.findAndDeleteElement(DCM_RescaleSlope);
  d.findAndDeleteElement(DCM_PixelData);
  if (frames.size() > 1)
    d.putAndInsertString(DCM_NumberOfFrames, std::to_string(frames.size()).c_str());
  const bool three = colour == Colour::rgb || colour == Colour::ybr_full;
  const bool sixteen = colour == Colour::monochrome2_16bit;
  d.putAndInsertUint16(DCM_SamplesPerPixel, three ? 3 : 1);
  d.putAndInsertUint16(DCM_BitsAllocated, sixteen ? 16 : 8);
  d.putAndInsertUint16(DCM_BitsStored, sixteen ? 12 : 8);
  d.putAndInsertUint16(DCM_HighBit, sixteen ? 11 : 7);
  if (three) d.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  const char* photometric = colour == Colour::monochrome1 ? "MONOCHROME1"
                            : colour == Colour::rgb       ? "RGB"
                            : colour == Colour::ybr_full  ? "YBR_FULL"
                            : colour == Colour::palette   ? "PALETTE COLOR"
                                                          : "MONOCHROME2";
  d.putAndInsertString(DCM_PhotometricInterpretation, photometric);
  std::vector<Uint8> bytes;
  std::vector<Uint16> words;
  for (const auto& frame : frames) {
    const cv::Mat grey = draw_frame(frame);
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const std::uint8_t v = grey.at<std::uint8_t>(y, x);
        switch (colour) {
          case Colour::monochrome1:
            bytes.push_back(static_cast<Uint8>(255 - v));
            break;
          case Colour::rgb:
            // Tinted text, as on ultrasound screens: luminance carries it.
            bytes.push_back(v);
            bytes.push_back(v);
            bytes.push_back(static_cast<Uint8>(v / 2));
            break;
          case Colour::ybr_full:
            bytes.push_back(v);
            bytes.push_back(128);
            bytes.push_back(128);
            break;
          case Colour::palette:
            bytes.push_back(static_cast<Uint8>(255 - v));
            break;  // reversed LUT
          case Colour::monochrome2_16bit:
            words.push_back(static_cast<Uint16>(v * 16 + 8));
            break;
          case Colour::monochrome2:
            bytes.push_back(v);
            break;
        }
      }
    }
  }
  if (sixteen) {
    d.putAndInsertUint16Array(DCM_PixelData, words.data(),
                              static_cast<unsigned long>(words.size()));
  } else {
    if (bytes.size() % 2 != 0) bytes.push_back(0);
    d.putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(bytes.size()));
  }
  if (colour == Colour::palette) {
    for (const auto& [descriptor, data] :
         {std::pair{DCM_RedPaletteColorLookupTableDescriptor, DCM_RedPaletteColorLookupTableData},
          std::pair{DCM_GreenPaletteColorLookupTableDescriptor,
                    DCM_GreenPaletteColorLookupTableData},
          std::pair{DCM_BluePaletteColorLookupTableDescriptor,
                    DCM_BluePaletteColorLookupTableData}}) {
      const Uint16 desc[3] = {256, 0, 16};
      d.putAndInsertUint16Array(descriptor, desc, 3);
      std::vector<Uint16> lut(256);
      for (unsigned i = 0; i < 256; ++i) lut[i] = static_cast<Uint16>((255 - i) * 257);
      d.putAndInsertUint16Array(data, lut.data(), 256);
    }
  }
  return file;
}

}  // namespace radguard::testing
