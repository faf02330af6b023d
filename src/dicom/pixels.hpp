#pragma once
// Pixel data as plain numbers: every frame of a DICOM image decoded (through DCMTK's codecs)
// into a radguard type, and modified frames written back losslessly. No DCMTK type crosses
// this interface.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "dicom/dicom_file.hpp"

namespace radguard::dicom {

enum class Photometric : std::uint8_t {
  monochrome1,  // 0 is white
  monochrome2,  // 0 is black
  rgb,
  ybr_full,
  ybr_full_422,  // uncompressed only; decoded to one Y, Cb, Cr triple per pixel
  palette_color,
};

std::string_view photometric_name(Photometric photometric);

enum class PixelSign : std::uint8_t { unsigned_integer, twos_complement };

// A colour lookup table of a PALETTE COLOR image (values at `bits` bits, 8 or 16).
struct Palette {
  std::int32_t first_mapped = 0;
  unsigned bits = 16;
  std::vector<std::uint16_t> red, green, blue;
};

// Every frame of one image. Samples are stored values (bits above bits_stored cleared;
// signed values as their two's complement bit pattern within bits_stored), interleaved
// (sample s of pixel (x, y) at [(y * width + x) * samples + s]) whatever the planar
// configuration of the file.
struct PixelImage {
  unsigned width = 0, height = 0;
  unsigned samples = 1;          // 1 or 3
  unsigned bits_allocated = 16;  // 8 or 16
  unsigned bits_stored = 16;
  PixelSign sign = PixelSign::unsigned_integer;
  Photometric photometric = Photometric::monochrome2;
  Palette palette;  // PALETTE COLOR only
  std::vector<std::vector<std::uint16_t>> frames;

  std::size_t samples_per_frame() const {
    return static_cast<std::size_t>(width) * height * samples;
  }
  // A stored sample as a signed number (sign-extended for two's complement images).
  std::int32_t value_of(std::uint16_t stored) const;
};

// Decodes every frame of `file`'s pixel data. Handles native little/big endian and deflated
// data, RLE, JPEG baseline/extended/lossless and JPEG-LS; MONOCHROME1/2, RGB, YBR_FULL,
// YBR_FULL_422 and PALETTE COLOR at 8 or 16 bits allocated. Lossy JPEG colour images come
// back as RGB (the codec converts them). Fails with ErrorCode::unsupported for JPEG 2000
// and other syntaxes without a decoder, other bit depths or photometric interpretations;
// ErrorCode::malformed_dicom when the pixel data is missing or shorter than its attributes
// say. The file itself is not changed (compressed data is decoded in a copy). Thread-safe on
// distinct files (codec registration happens once, under std::call_once).
Result<PixelImage> decode_pixels(DicomFile& file);

enum class WrittenSyntax : std::uint8_t {
  original,                  // the file keeps its transfer syntax
  explicit_little_fallback,  // no lossless encoder for the original: written Explicit VR LE
};

struct PixelWriteOutcome {
  WrittenSyntax syntax = WrittenSyntax::original;
  std::string transfer_syntax_uid;  // the syntax the file will be saved in
};

// Replaces `file`'s pixel data with `image` (as returned by decode_pixels on this file, with
// some frames changed), ready for DicomFile::save. Native syntaxes keep their transfer
// syntax and every unchanged frame is bit-identical; RLE, JPEG lossless and JPEG-LS lossless
// are re-encoded in their own syntax (unchanged frames decode to identical pixels); lossy
// JPEG, JPEG-LS near-lossless and anything else DCMTK cannot encode losslessly are written
// Explicit VR Little Endian (the outcome says so). Fails with ErrorCode::usage when `image`
// does not fit the file's geometry, ErrorCode::internal when DCMTK refuses the change.
Result<PixelWriteOutcome> encode_pixels(DicomFile& file, const PixelImage& image);

// True for transfer syntaxes whose pixel data decode_pixels can read (by UID).
bool can_decode_transfer_syntax(std::string_view uid);

}  // namespace radguard::dicom
