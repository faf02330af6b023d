#pragma once
// JPEG 2000 through OpenJPEG, on plain buffers: one frame's codestream (raw J2K or JP2-wrapped)
// decoded into integer samples, and samples encoded as a raw J2K codestream. Internal to
// src/dicom (pixels.cpp) and usable by tests to make fixtures; no DCMTK or OpenJPEG type
// crosses this header.
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.hpp"

namespace radguard::dicom::j2k {

// What the DICOM attributes promise about one frame; decode() refuses a codestream that
// disagrees, before decoding any tile and again after decoding. The decoder then allocates
// about what `expected` declares (width x height x components 32-bit samples, plus OpenJPEG's
// working memory): the CALLER must bound `expected` (pixels.cpp refuses frames and images
// above its kMaxSamplesPerImage before decoding). JP2 palette and
// channel boxes (pclr, cmap, cdef) are ignored: the samples are the codestream's components.
struct Expected {
  unsigned width = 0, height = 0;
  unsigned components = 1;       // 1 or 3
  unsigned bits_allocated = 16;  // 8 or 16: the most bits a component may have
};

// One decoded frame. Any multiple-component transform in the codestream (RCT/ICT, what DICOM
// calls YBR_RCT/YBR_ICT) has been undone, so 3 components are R, G, B.
struct Frame {
  unsigned width = 0, height = 0, components = 1;
  unsigned precision = 8;  // of the codestream's components
  bool is_signed = false;
  std::vector<std::int32_t> samples;  // interleaved: [(y * width + x) * components + c]
};

// Fails with ErrorCode::malformed_dicom (naming the reason, never a value) for anything that
// is not a decodable JPEG 2000 codestream matching `expected`.
[[nodiscard]] Result<Frame> decode(std::span<const std::uint8_t> codestream,
                                   const Expected& expected);

enum class Wavelet : std::uint8_t {
  reversible,    // 5/3, lossless
  irreversible,  // 9/7, lossy (tests make .91 fixtures with it)
};
enum class ColourTransform : std::uint8_t { none, mct };  // mct: RCT when reversible, else ICT

struct EncodeSpec {
  unsigned width = 0, height = 0, components = 1;
  unsigned precision = 8;
  bool is_signed = false;
  Wavelet wavelet = Wavelet::reversible;
  ColourTransform transform = ColourTransform::none;
  float ratio = 0;  // irreversible only: compression ratio (0 = the encoder's best)
};

// A raw J2K codestream (starting FF4F FF51) of `samples` (interleaved, as Frame::samples).
[[nodiscard]] Result<std::vector<std::uint8_t>> encode(const EncodeSpec& spec,
                                                       std::span<const std::int32_t> samples);

// True when `bytes` starts like a J2K codestream (FF4F FF51) or a JP2 file.
bool starts_codestream(std::span<const std::uint8_t> bytes);

}  // namespace radguard::dicom::j2k
