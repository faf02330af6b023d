#pragma once
// Redaction inside lossy JPEG without recompression: the DCT blocks of one frame's JPEG that
// cover changed pixels are made uniform in the compressed data (libjpeg's coefficient API),
// every other block keeps its quantised coefficients, so it decodes exactly as before.
// Internal to src/dicom (pixels.cpp); no DCMTK or libjpeg type crosses this header.
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.hpp"

namespace radguard::dicom::jpeg {

enum class FillSpace : std::uint8_t {
  as_decoded,      // the frame's samples are in the JPEG's component space (grey, RGB JPEG)
  ycbcr_from_rgb,  // samples are RGB, the JPEG's components YCbCr (JFIF conversion)
};

struct BlankRequest {
  unsigned width = 0, height = 0, samples = 1;  // 8-bit samples, 1 or 3
  std::span<const std::uint16_t> before;        // the frame as decoded from `jpeg`, interleaved
  std::span<const std::uint16_t> after;         // the wanted frame
  FillSpace space = FillSpace::as_decoded;
};

struct Blanked {
  std::vector<std::uint8_t> jpeg;  // the new JPEG (even length, padded with a trailing 00)
  std::size_t mcus = 0;            // MCUs made uniform
  unsigned mcu_width = 8, mcu_height = 8;
  // How far (in levels) a blanked pixel may decode from the filled value: DC quantisation,
  // colour conversion and rounding. (pixels.cpp decodes the written data again and checks.)
  unsigned tolerance = 4;
};

// Every MCU (the smallest group of blocks of all components, 8x8 pixels for grey and 4:4:4,
// 16x8 for 4:2:2, 16x16 for 4:2:0) containing a pixel where `before` and `after` differ gets,
// in every component, DC = the mean of the changed pixels' `after` values there (converted
// to the component space), AC = 0. Markers (APPn, COM) are copied; entropy coding is redone
// with optimal Huffman tables. Fails with ErrorCode::unsupported for JPEG that libjpeg
// (8-bit) cannot transcode or that does not match the request's geometry, and
// ErrorCode::malformed_dicom for corrupt data, including data libjpeg only warns about (a
// truncated frame, which it would pad with a fake EOI); never exits or prints.
[[nodiscard]] Result<Blanked> blank_blocks(std::span<const std::uint8_t> jpeg,
                                           const BlankRequest& request);

// True when `bytes` starts with a JPEG SOI marker.
bool starts_jpeg(std::span<const std::uint8_t> bytes);

}  // namespace radguard::dicom::jpeg
