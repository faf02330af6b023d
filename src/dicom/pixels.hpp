#pragma once
// Pixel data as plain numbers: every frame of a DICOM image decoded (through DCMTK's codecs,
// and OpenJPEG for JPEG 2000) into a radguard type, and modified frames written back without
// loss beyond the edit (lossless re-encoding; block blanking inside lossy JPEG). No DCMTK
// type crosses this interface. docs/ARCHITECTURE.md, "Pixel codecs", has the table.
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
// data, RLE, JPEG baseline/extended/lossless and JPEG-LS (DCMTK's codecs), and JPEG 2000
// lossless and lossy (OpenJPEG; J2K codestreams or JP2-wrapped, one frame per item split over
// any number of fragments); MONOCHROME1/2, RGB, YBR_FULL, YBR_FULL_422 and PALETTE COLOR at 8
// or 16 bits allocated. Lossy JPEG colour images come back as RGB (the codec converts them),
// and so do JPEG 2000 YBR_RCT / YBR_ICT images (OpenJPEG undoes the colour transform). Fails
// with ErrorCode::unsupported for syntaxes without a decoder, other bit depths or photometric
// interpretations; ErrorCode::malformed_dicom when the pixel data is missing, shorter than
// its attributes say, or a codestream is corrupt or disagrees with Rows, Columns, Samples per
// Pixel or Bits Allocated. The file itself is not changed (compressed data is decoded in a
// copy). Thread-safe on distinct files (codec registration happens once, under
// std::call_once).
[[nodiscard]] Result<PixelImage> decode_pixels(DicomFile& file);

enum class WrittenSyntax : std::uint8_t {
  original,                  // the file keeps its transfer syntax
  explicit_little_fallback,  // no lossless encoder for the original: written Explicit VR LE
};

// How the pixel data was written.
enum class WriteMethod : std::uint8_t {
  unchanged,         // compressed data whose frames all equal the decode: left as it came
  native,            // uncompressed data rewritten; unchanged frames bit-identical
  codec_reencoded,   // RLE, JPEG lossless, JPEG-LS lossless: all frames re-encoded by DCMTK
  frames_reencoded,  // JPEG 2000: changed frames re-encoded reversibly (5/3, lossless) as J2K
                     // codestreams; every other frame's fragments kept byte for byte
  blocks_blanked,    // lossy JPEG 8-bit: in changed frames the MCUs touching a change were
                     // made uniform in the compressed data; other blocks and frames untouched
  uncompressed,      // the Explicit VR Little Endian fallback
};

struct PixelWriteOutcome {
  WrittenSyntax syntax = WrittenSyntax::original;
  std::string transfer_syntax_uid;  // the syntax the file will be saved in
  WriteMethod method = WriteMethod::native;
  std::size_t frames_rewritten = 0;  // frames whose stored bytes changed
  std::size_t blocks_blanked = 0;    // blocks_blanked: MCUs made uniform, all frames together
  unsigned block_width = 0, block_height = 0;  // blocks_blanked: the MCU size in pixels
};

// Replaces `file`'s pixel data with `image` (as returned by decode_pixels on this file, with
// some frames changed), ready for DicomFile::save. Which frames changed is found by decoding
// the file again and comparing. Compressed data with no changed frame is left as it came.
// Otherwise:
// - native syntaxes keep their transfer syntax and every unchanged frame is bit-identical;
// - RLE, JPEG lossless and JPEG-LS lossless are re-encoded in their own syntax (unchanged
//   frames decode to identical pixels);
// - JPEG 2000 (.90 and .91) keeps its syntax: changed frames are re-encoded losslessly (.91
//   allows lossless codestreams, so a lossy file stays .91 and loses nothing more), unchanged
//   frames keep their fragments; a YBR_ICT image (whose changed frames could only be
//   re-encoded with the lossy ICT) is written Explicit VR LE as RGB instead;
// - lossy 8-bit JPEG (baseline .50, and .51 with 8-bit data) keeps its syntax: the changed
//   area, rounded out to whole MCUs, is set to the changed pixels' value in the compressed
//   data (blank_blocks in jpeg_blocks.hpp); nothing else is recompressed, so every pixel
//   outside those MCUs decodes as before (for chroma-subsampled colour, the decoder's
//   upsampling blends chroma one pixel either side of their border), and unchanged frames
//   keep their bytes. The caller's image is not updated to the blanked blocks.
// - 12-bit lossy JPEG, JPEG-LS near-lossless and anything else DCMTK cannot encode
//   losslessly are written Explicit VR Little Endian (the outcome says so).
// Fails with ErrorCode::usage when `image` does not fit the file's geometry,
// ErrorCode::internal when DCMTK refuses the change.
[[nodiscard]] Result<PixelWriteOutcome> encode_pixels(DicomFile& file, const PixelImage& image);

// Checks, without decoding, that the top-level Pixel Data agrees with its attributes and the
// transfer syntax: native data must be as long as Rows x Columns x Samples per Pixel x Number
// of Frames x Bits Allocated says (one pad byte allowed), never shorter (a header promising
// more than the data holds) nor longer (bytes no viewer shows); encapsulated syntaxes need
// encapsulated data with at least one fragment per frame whose first fragment starts as the
// syntax's codec says (JPEG, JPEG-LS, JPEG 2000, RLE); native syntaxes need native data.
// Files without Pixel Data pass. Fails with ErrorCode::malformed_dicom and the reason (names
// attributes, never values).
[[nodiscard]] Status check_pixel_consistency(DicomFile& file);

// True for transfer syntaxes whose pixel data decode_pixels can read (by UID).
bool can_decode_transfer_syntax(std::string_view uid);

}  // namespace radguard::dicom
