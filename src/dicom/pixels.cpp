#include "dicom/pixels.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmimage/diregist.h>  // colour images for the codecs' cooked encoding
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "dicom/dicom_file_impl.hpp"
#include "dicom/jpeg2000.hpp"
#include "dicom/jpeg_blocks.hpp"

namespace radguard::dicom {

namespace {

// Decoding allocates what the attributes declare, whatever the compressed data's size: a few
// bytes declaring 65535 x 65535 x 3 would make a codec allocate tens of GB per frame. Images
// above this limit are refused before any decoding. A decoded image is held as 16-bit samples
// next to the codec's own uncompressed copy (up to 16 bits a sample) and, when written back,
// a second decode to compare: 128 Mi samples (256 MiB decoded; 512 x 512 x 512, or 4096 x
// 4096 x 8 frames) keeps a run under 1 GB (docs/reliability.md).
constexpr std::uint64_t kMaxSamplesPerImage = std::uint64_t{128} << 20;

Status check_decoded_size(std::uint64_t width, std::uint64_t height, std::uint64_t samples,
                          std::uint64_t frames) {
  const std::uint64_t per_frame = width * height * samples;  // at most 65535^2 x 65535
  if (per_frame > kMaxSamplesPerImage ||
      (per_frame > 0 && frames > kMaxSamplesPerImage / per_frame))
    return fail(ErrorCode::unsupported,
                "image too large to decode: " +
                    std::to_string(static_cast<std::uint64_t>(
                        static_cast<double>(per_frame) * static_cast<double>(frames) / 1e6)) +
                    " million samples in " + std::to_string(frames) +
                    " frame(s); radguard decodes at most " +
                    std::to_string(kMaxSamplesPerImage / 1000000) + " million");
  return {};
}

Result<PixelImage> decode_dataset(DcmDataset& dataset);

void register_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    DcmRLEDecoderRegistration::registerCodecs();
    DcmRLEEncoderRegistration::registerCodecs();
    DJDecoderRegistration::registerCodecs();
    DJEncoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    // Raw, not "cooked": the stored values are compressed as they are. Cooked encoding goes
    // through DicomImage, which hands CharLS signed samples (a CT's negative values) that
    // break its bit-depth assertion and end the process (found by fuzz_pixels_jpeg_ls).
    DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, /*preferCookedEncoding=*/OFFalse);
  });
}

bool is_native(E_TransferSyntax xfer) {
  return xfer == EXS_LittleEndianImplicit || xfer == EXS_LittleEndianExplicit ||
         xfer == EXS_BigEndianExplicit || xfer == EXS_DeflatedLittleEndianExplicit;
}

bool is_j2k(E_TransferSyntax xfer) {
  return xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000;
}

bool is_decodable(E_TransferSyntax xfer) {
  if (is_native(xfer) || is_j2k(xfer)) return true;
  switch (xfer) {
    case EXS_RLELossless:
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
      return true;
    default:
      return false;
  }
}

// Encapsulated syntaxes DCMTK can write losslessly.
bool is_lossless_encodable(E_TransferSyntax xfer) {
  return xfer == EXS_RLELossless || xfer == EXS_JPEGProcess14 || xfer == EXS_JPEGProcess14SV1 ||
         xfer == EXS_JPEGLSLossless;
}

std::optional<Photometric> parse_photometric(std::string text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
  if (text == "MONOCHROME1") return Photometric::monochrome1;
  if (text == "MONOCHROME2") return Photometric::monochrome2;
  if (text == "RGB") return Photometric::rgb;
  if (text == "YBR_FULL") return Photometric::ybr_full;
  if (text == "YBR_FULL_422") return Photometric::ybr_full_422;
  if (text == "PALETTE COLOR") return Photometric::palette_color;
  return std::nullopt;
}

Uint16 uint16_of(DcmItem& item, const DcmTagKey& key, Uint16 fallback) {
  Uint16 value = fallback;
  if (item.findAndGetUint16(key, value).bad()) return fallback;
  return value;
}

struct Geometry {
  unsigned width = 0, height = 0, samples = 1, bits_allocated = 0, bits_stored = 0;
  unsigned planar = 0;
  std::size_t frames = 1;
  PixelSign sign = PixelSign::unsigned_integer;
  Photometric photometric = Photometric::monochrome2;
  // JPEG 2000 YBR_RCT / YBR_ICT: the codestream's colour transform, undone by the decoder
  // (photometric is then rgb).
  enum class Transform : std::uint8_t { none, rct, ict } transform = Transform::none;

  // Bytes of one frame as stored natively.
  std::size_t frame_bytes() const {
    const std::size_t pixels = static_cast<std::size_t>(width) * height;
    if (photometric == Photometric::ybr_full_422) return pixels * 2;
    return pixels * samples * (bits_allocated / 8);
  }
};

Result<Geometry> read_geometry(DcmDataset& dataset, E_TransferSyntax xfer) {
  Geometry g;
  g.height = uint16_of(dataset, DCM_Rows, 0);
  g.width = uint16_of(dataset, DCM_Columns, 0);
  g.samples = uint16_of(dataset, DCM_SamplesPerPixel, 1);
  g.bits_allocated = uint16_of(dataset, DCM_BitsAllocated, 0);
  g.bits_stored = uint16_of(dataset, DCM_BitsStored, static_cast<Uint16>(g.bits_allocated));
  g.planar = uint16_of(dataset, DCM_PlanarConfiguration, 0);
  g.sign = uint16_of(dataset, DCM_PixelRepresentation, 0) == 1 ? PixelSign::twos_complement
                                                               : PixelSign::unsigned_integer;
  Sint32 frames = 1;
  if (dataset.findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
  g.frames = static_cast<std::size_t>(frames);
  OFString photometric;
  dataset.findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  auto parsed = parse_photometric(photometric.c_str());
  if (!parsed && is_j2k(xfer)) {
    std::string text = photometric.c_str();
    while (!text.empty() && text.back() == ' ') text.pop_back();
    if (text == "YBR_RCT" || text == "YBR_ICT") {
      parsed = Photometric::rgb;
      g.transform = text == "YBR_RCT" ? Geometry::Transform::rct : Geometry::Transform::ict;
    }
  }
  if (!parsed) return fail(ErrorCode::unsupported, "unsupported photometric interpretation");
  g.photometric = *parsed;
  if (g.width == 0 || g.height == 0)
    return fail(ErrorCode::malformed_dicom, "image has no rows or columns");
  if (g.bits_allocated != 8 && g.bits_allocated != 16)
    return fail(ErrorCode::unsupported, "unsupported bits allocated (only 8 and 16)");
  if (g.bits_stored == 0 || g.bits_stored > g.bits_allocated)
    return fail(ErrorCode::malformed_dicom, "bits stored exceeds bits allocated");
  const bool colour = g.photometric == Photometric::rgb || g.photometric == Photometric::ybr_full ||
                      g.photometric == Photometric::ybr_full_422;
  if ((colour && g.samples != 3) || (!colour && g.samples != 1))
    return fail(ErrorCode::malformed_dicom,
                "samples per pixel do not fit the photometric interpretation");
  if (g.photometric == Photometric::ybr_full_422 && (g.bits_allocated != 8 || g.width % 2 != 0))
    return fail(ErrorCode::unsupported, "YBR_FULL_422 needs 8 bits and an even width");
  return g;
}

Result<Palette> read_palette(DcmDataset& dataset) {
  Palette palette;
  const DcmTagKey descriptors[3] = {DCM_RedPaletteColorLookupTableDescriptor,
                                    DCM_GreenPaletteColorLookupTableDescriptor,
                                    DCM_BluePaletteColorLookupTableDescriptor};
  const DcmTagKey data[3] = {DCM_RedPaletteColorLookupTableData,
                             DCM_GreenPaletteColorLookupTableData,
                             DCM_BluePaletteColorLookupTableData};
  std::vector<std::uint16_t>* out[3] = {&palette.red, &palette.green, &palette.blue};
  for (int c = 0; c < 3; ++c) {
    Uint16 entries = 0, first = 0, bits = 0;
    if (dataset.findAndGetUint16(descriptors[c], entries, 0).bad() ||
        dataset.findAndGetUint16(descriptors[c], first, 1).bad() ||
        dataset.findAndGetUint16(descriptors[c], bits, 2).bad())
      return fail(ErrorCode::malformed_dicom, "palette descriptor missing");
    const std::size_t count = entries == 0 ? 65536 : entries;
    const Uint16* words = nullptr;
    unsigned long length = 0;
    if (dataset.findAndGetUint16Array(data[c], words, &length).bad() || words == nullptr)
      return fail(ErrorCode::malformed_dicom, "palette data missing");
    if (length >= count) {
      out[c]->assign(words, words + count);
    } else if (bits == 8 && length * 2 >= count) {
      // Some writers pack two 8-bit entries into each word.
      for (std::size_t i = 0; i < count; ++i)
        out[c]->push_back(static_cast<std::uint16_t>((words[i / 2] >> ((i % 2) * 8)) & 0xFF));
    } else {
      return fail(ErrorCode::malformed_dicom, "palette data shorter than its descriptor");
    }
    // PS3.3 C.7.6.3.1.5: the three descriptors are the same. Every reader of the palette
    // indexes the three tables alike, so tables that differ are refused, never read past.
    if (c > 0 && (out[c]->size() != palette.red.size() || first != palette.first_mapped ||
                  (bits == 8 ? 8U : 16U) != palette.bits))
      return fail(ErrorCode::malformed_dicom, "palette descriptors differ between colours");
    palette.first_mapped = first;
    palette.bits = bits == 8 ? 8 : 16;
  }
  return palette;
}

// An image with `g`'s geometry and no frames yet (the palette read for PALETTE COLOR).
Result<PixelImage> image_of(const Geometry& g, DcmDataset& dataset) {
  PixelImage image;
  image.width = g.width;
  image.height = g.height;
  image.samples = g.samples;
  image.bits_allocated = g.bits_allocated;
  image.bits_stored = g.bits_stored;
  image.sign = g.sign;
  image.photometric = g.photometric;
  if (g.photometric == Photometric::palette_color) {
    auto palette = read_palette(dataset);
    if (!palette) return std::unexpected(palette.error());
    image.palette = std::move(*palette);
  }
  return image;
}

DcmPixelData* pixel_element(DcmDataset& dataset) {
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) return nullptr;
  return dynamic_cast<DcmPixelData*>(element);
}

// The native bytes of all frames, each sample in little-endian order.
Result<std::span<const std::uint8_t>> native_bytes(DcmPixelData& pixel,
                                                   std::vector<std::uint8_t>& scratch) {
  if (pixel.getTag().getEVR() == EVR_OW || pixel.ident() == EVR_OW) {
    Uint16* words = nullptr;
    if (pixel.getUint16Array(words).bad() || words == nullptr)
      return fail(ErrorCode::malformed_dicom, "cannot read pixel data");
    const std::size_t count = pixel.getLength() / 2;
    if constexpr (std::endian::native == std::endian::little) {
      return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(words), count * 2);
    } else {
      scratch.resize(count * 2);
      for (std::size_t i = 0; i < count; ++i) {
        scratch[2 * i] = static_cast<std::uint8_t>(words[i] & 0xFF);
        scratch[2 * i + 1] = static_cast<std::uint8_t>(words[i] >> 8);
      }
      return std::span<const std::uint8_t>(scratch);
    }
  }
  Uint8* bytes = nullptr;
  if (pixel.getUint8Array(bytes).bad() || bytes == nullptr)
    return fail(ErrorCode::malformed_dicom, "cannot read pixel data");
  return std::span<const std::uint8_t>(bytes, pixel.getLength());
}

// The encapsulated pixel data of `xfer`, and which items (indices into the sequence; item 0 is
// the Basic Offset Table) hold each frame.
struct Fragments {
  DcmPixelSequence* sequence = nullptr;  // owned by the pixel data element
  bool has_offset_table = false;
  std::vector<std::vector<unsigned long>> items;
};

Result<std::span<const std::uint8_t>> item_bytes(DcmPixelSequence& sequence, unsigned long index) {
  DcmPixelItem* item = nullptr;
  if (sequence.getItem(item, index).bad() || item == nullptr)
    return fail(ErrorCode::malformed_dicom, "missing pixel data fragment");
  const Uint32 length = item->getLength();
  if (length == 0) return std::span<const std::uint8_t>();
  Uint8* data = nullptr;
  if (item->getUint8Array(data).bad() || data == nullptr)
    return fail(ErrorCode::malformed_dicom, "unreadable pixel data fragment");
  return std::span<const std::uint8_t>(data, length);
}

using StartTest = bool (*)(std::span<const std::uint8_t>);

// Frames to fragments: the Basic Offset Table when it is present and consistent; otherwise
// one frame per fragment when the counts agree; otherwise a new frame at each fragment that
// starts with the codec's start marker (`starts`).
Result<Fragments> map_fragments(DcmPixelData& pixel, E_TransferSyntax xfer, std::size_t frames,
                                StartTest starts) {
  Fragments result;
  if (pixel.getEncapsulatedRepresentation(xfer, nullptr, result.sequence).bad() ||
      result.sequence == nullptr)
    return fail(ErrorCode::malformed_dicom, "pixel data is not encapsulated");
  DcmPixelSequence& sequence = *result.sequence;
  const unsigned long items = sequence.card();
  if (items < 2) return fail(ErrorCode::malformed_dicom, "encapsulated pixel data has no fragment");
  const unsigned long fragments = items - 1;
  // Every frame has at least one fragment: a hostile Number of Frames allocates nothing.
  if (frames > fragments)
    return fail(ErrorCode::malformed_dicom, "fewer fragments than Number of Frames");
  result.items.resize(frames);

  auto table = item_bytes(sequence, 0);
  if (!table) return std::unexpected(table.error());
  result.has_offset_table = !table->empty();
  if (table->size() >= 4 * frames && table->size() % 4 == 0 && !table->empty()) {
    // Offsets of each fragment's item header, counted from the first fragment.
    std::vector<std::uint64_t> starts_at(fragments);
    std::uint64_t offset = 0;
    for (unsigned long i = 0; i < fragments; ++i) {
      starts_at[i] = offset;
      DcmPixelItem* item = nullptr;
      if (sequence.getItem(item, i + 1).bad() || item == nullptr)
        return fail(ErrorCode::malformed_dicom, "missing pixel data fragment");
      offset += 8 + static_cast<std::uint64_t>(item->getLength());
    }
    bool consistent = true;
    std::vector<unsigned long> first(frames);
    for (std::size_t f = 0; f < frames && consistent; ++f) {
      const std::uint8_t* b = table->data() + 4 * f;
      const std::uint64_t value = static_cast<std::uint64_t>(b[0]) | (b[1] << 8) | (b[2] << 16) |
                                  (static_cast<std::uint64_t>(b[3]) << 24);
      const auto at = std::lower_bound(starts_at.begin(), starts_at.end(), value);
      consistent = at != starts_at.end() && *at == value &&
                   (f == 0 ? at == starts_at.begin()
                           : static_cast<unsigned long>(at - starts_at.begin()) > first[f - 1]);
      if (consistent) first[f] = static_cast<unsigned long>(at - starts_at.begin());
    }
    if (consistent) {
      for (std::size_t f = 0; f < frames; ++f) {
        const unsigned long end = f + 1 < frames ? first[f + 1] : fragments;
        for (unsigned long i = first[f]; i < end; ++i) result.items[f].push_back(i + 1);
      }
      return result;
    }
  }
  if (fragments == frames) {
    for (std::size_t f = 0; f < frames; ++f) result.items[f].push_back(f + 1);
    return result;
  }
  if (frames == 1) {
    for (unsigned long i = 1; i <= fragments; ++i) result.items[0].push_back(i);
    return result;
  }
  std::size_t frame = 0;
  for (unsigned long i = 1; i <= fragments; ++i) {
    auto bytes = item_bytes(sequence, i);
    if (!bytes) return std::unexpected(bytes.error());
    const bool start = starts(*bytes);
    if (i == 1 && !start)
      return fail(ErrorCode::malformed_dicom, "first fragment does not start a frame");
    if (start && i > 1) ++frame;
    if (frame >= frames)
      return fail(ErrorCode::malformed_dicom, "more frames in the fragments than Number of Frames");
    result.items[frame].push_back(i);
  }
  if (frame + 1 != frames)
    return fail(ErrorCode::malformed_dicom, "fewer frames in the fragments than Number of Frames");
  return result;
}

// One frame's compressed bytes (its fragments joined).
Result<std::vector<std::uint8_t>> frame_stream(const Fragments& fragments, std::size_t frame) {
  std::vector<std::uint8_t> out;
  for (const unsigned long index : fragments.items[frame]) {
    auto bytes = item_bytes(*fragments.sequence, index);
    if (!bytes) return std::unexpected(bytes.error());
    out.insert(out.end(), bytes->begin(), bytes->end());
  }
  return out;
}

// Replaces the encapsulated pixel data: frames with a new stream get it as one fragment,
// every other frame keeps its fragments byte for byte. The offset table is rebuilt when the
// original had one; an Extended Offset Table would be stale and is removed.
Status replace_frames(DcmDataset& dataset, DcmPixelData& pixel, E_TransferSyntax xfer,
                      const Fragments& fragments,
                      const std::vector<std::optional<std::vector<std::uint8_t>>>& streams) {
  auto sequence = std::make_unique<DcmPixelSequence>(DCM_PixelSequenceTag);
  std::vector<std::vector<std::uint8_t>> items;  // in order, without the offset table
  std::vector<std::uint64_t> frame_offsets;
  std::uint64_t offset = 0;
  for (std::size_t f = 0; f < streams.size(); ++f) {
    frame_offsets.push_back(offset);
    if (streams[f]) {
      std::vector<std::uint8_t> bytes = *streams[f];
      if (bytes.size() % 2 != 0) bytes.push_back(0);
      offset += 8 + bytes.size();
      items.push_back(std::move(bytes));
      continue;
    }
    for (const unsigned long index : fragments.items[f]) {
      auto bytes = item_bytes(*fragments.sequence, index);
      if (!bytes) return std::unexpected(bytes.error());
      offset += 8 + bytes->size();
      items.emplace_back(bytes->begin(), bytes->end());
    }
  }
  auto table = std::make_unique<DcmPixelItem>(DCM_PixelItemTag);
  if (fragments.has_offset_table && offset <= 0xFFFFFFFFu) {
    std::vector<Uint8> bytes;
    for (const std::uint64_t value : frame_offsets)
      for (int shift = 0; shift < 32; shift += 8)
        bytes.push_back(static_cast<Uint8>((value >> shift) & 0xFF));
    table->putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size()));
  }
  // The sequence owns an item only once insert() succeeded.
  if (sequence->insert(table.get()).bad())
    return fail(ErrorCode::internal, "cannot build pixel data fragments");
  static_cast<void>(table.release());  // now owned by the sequence
  for (const auto& bytes : items) {
    auto item = std::make_unique<DcmPixelItem>(DCM_PixelItemTag);
    if (item->putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size())).bad() ||
        sequence->insert(item.get()).bad())
      return fail(ErrorCode::internal, "cannot build pixel data fragments");
    static_cast<void>(item.release());  // now owned by the sequence
  }
  pixel.putOriginalRepresentation(xfer, nullptr, sequence.release());
  dataset.findAndDeleteElement(DCM_ExtendedOffsetTable);
  dataset.findAndDeleteElement(DCM_ExtendedOffsetTableLengths);
  return {};
}

bool is_dcmjpeg(E_TransferSyntax xfer) {
  return xfer == EXS_JPEGProcess1 || xfer == EXS_JPEGProcess2_4 || xfer == EXS_JPEGProcess14 ||
         xfer == EXS_JPEGProcess14SV1;
}

bool is_start_of_frame(unsigned marker) {
  return marker >= 0xffc0 && marker <= 0xffcf && marker != 0xffc4 && marker != 0xffc8 &&
         marker != 0xffcc;
}

// Before it decodes a frame, DCMTK's JPEG decoder (dcmjpeg 3.6.7,
// DJCodecDecoder::scanJpegDataForBitDepth) walks the fragment's markers to find the bit depth,
// and a TEM marker (FF 01) met on that walk never moves it on: one hostile fragment holds the
// process at full CPU for ever. The same walk is made here first, by DCMTK's rules rather than
// the standard's (only its path matters), and a fragment on which it would stall is refused.
bool dcmjpeg_scan_stalls(std::span<const std::uint8_t> data) {
  const auto u16 = [&](std::size_t at) { return unsigned{data[at]} << 8 | data[at + 1]; };
  std::size_t offset = 0;
  while (offset + 4 < data.size()) {
    const unsigned marker = u16(offset);
    if (marker == 0xff01) return true;
    if (is_start_of_frame(marker)) return false;
    if (marker == 0xffff) {
      offset += 1;  // a fill byte
    } else if (marker >= 0xffd0 && marker <= 0xffd9) {
      offset += 2;  // RSTn, SOI, EOI: no length
    } else if (marker == 0xffc4 || marker == 0xffc8 || marker == 0xffcc || marker >= 0xffda) {
      offset += u16(offset + 2) + 2;
    } else if (data[offset] == 0xff && data[offset + 1] > 2 && data[offset + 1] <= 0xbf) {
      offset += 2;  // reserved markers
    } else {
      return false;  // DCMTK gives up at an invalid marker
    }
  }
  return false;
}

Status check_dcmjpeg_fragments(DcmDataset& dataset, E_TransferSyntax xfer) {
  DcmPixelData* pixel = pixel_element(dataset);
  DcmPixelSequence* sequence = nullptr;
  if (pixel == nullptr || pixel->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr)
    return {};  // nothing DCMTK's decoder would walk; decoding reports what is missing
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    auto bytes = item_bytes(*sequence, i);
    if (!bytes) return std::unexpected(bytes.error());
    if (dcmjpeg_scan_stalls(*bytes))
      return fail(ErrorCode::malformed_dicom,
                  "malformed JPEG pixel data: a TEM marker (FF 01) before the frame header, "
                  "on which DCMTK's JPEG decoder would never finish");
  }
  return {};
}

Result<PixelImage> decode_j2k(DcmDataset& dataset, E_TransferSyntax xfer) {
  auto geometry = read_geometry(dataset, xfer);
  if (!geometry) return std::unexpected(geometry.error());
  const Geometry& g = *geometry;
  if (auto size = check_decoded_size(g.width, g.height, g.samples, g.frames); !size)
    return std::unexpected(size.error());
  DcmPixelData* pixel = pixel_element(dataset);
  if (pixel == nullptr) return fail(ErrorCode::malformed_dicom, "no pixel data");
  auto fragments = map_fragments(*pixel, xfer, g.frames, j2k::starts_codestream);
  if (!fragments) return std::unexpected(fragments.error());
  auto shell = image_of(g, dataset);
  if (!shell) return std::unexpected(shell.error());
  PixelImage& image = *shell;
  if (g.photometric == Photometric::ybr_full_422)
    return fail(ErrorCode::unsupported, "JPEG 2000 with YBR_FULL_422 is not supported");
  const j2k::Expected expected{g.width, g.height, g.samples, g.bits_allocated};
  const std::uint32_t mask = (1u << g.bits_stored) - 1u;
  image.frames.resize(g.frames);
  for (std::size_t f = 0; f < g.frames; ++f) {
    auto stream = frame_stream(*fragments, f);
    if (!stream) return std::unexpected(stream.error());
    auto decoded = j2k::decode(*stream, expected);
    if (!decoded)
      return fail(decoded.error().code,
                  decoded.error().message + " (frame " + std::to_string(f + 1) + ")");
    // Later code (rendering, redaction) indexes the frame by the attributes' geometry.
    if (decoded->samples.size() != image.samples_per_frame())
      return fail(ErrorCode::malformed_dicom, "JPEG 2000: decoded frame " + std::to_string(f + 1) +
                                                  " differs from Rows x Columns x Samples");
    std::vector<std::uint16_t>& out = image.frames[f];
    out.resize(decoded->samples.size());
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<std::uint16_t>(static_cast<std::uint32_t>(decoded->samples[i]) & mask);
  }
  return std::move(image);
}

bool same_geometry(const PixelImage& a, const PixelImage& b) {
  return a.width == b.width && a.height == b.height && a.samples == b.samples &&
         a.bits_allocated == b.bits_allocated && a.bits_stored == b.bits_stored &&
         a.sign == b.sign && a.photometric == b.photometric && a.frames.size() == b.frames.size();
}

// JPEG 2000: changed frames re-encoded reversibly, the others kept. nullopt when the image
// cannot be re-encoded losslessly in its photometric interpretation (YBR_ICT).
Result<std::optional<PixelWriteOutcome>> write_j2k(DcmDataset& dataset, E_TransferSyntax xfer,
                                                   const PixelImage& image,
                                                   const std::vector<bool>& changed) {
  auto geometry = read_geometry(dataset, xfer);
  if (!geometry) return std::unexpected(geometry.error());
  const Geometry& g = *geometry;
  if (g.transform == Geometry::Transform::ict) return std::nullopt;
  DcmPixelData* pixel = pixel_element(dataset);
  if (pixel == nullptr) return fail(ErrorCode::malformed_dicom, "no pixel data");
  auto fragments = map_fragments(*pixel, xfer, g.frames, j2k::starts_codestream);
  if (!fragments) return std::unexpected(fragments.error());
  std::vector<std::optional<std::vector<std::uint8_t>>> streams(g.frames);
  j2k::EncodeSpec spec;
  spec.width = g.width;
  spec.height = g.height;
  spec.components = g.samples;
  spec.precision = g.bits_stored;
  spec.is_signed = g.sign == PixelSign::twos_complement;
  spec.wavelet = j2k::Wavelet::reversible;
  spec.transform = g.transform == Geometry::Transform::rct ? j2k::ColourTransform::mct
                                                           : j2k::ColourTransform::none;
  PixelWriteOutcome outcome;
  std::vector<std::int32_t> samples;
  for (std::size_t f = 0; f < g.frames; ++f) {
    if (!changed[f]) continue;
    const std::vector<std::uint16_t>& in = image.frames[f];
    samples.resize(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) samples[i] = image.value_of(in[i]);
    auto stream = j2k::encode(spec, samples);
    if (!stream) return std::unexpected(stream.error());
    streams[f] = std::move(*stream);
    ++outcome.frames_rewritten;
  }
  if (auto replaced = replace_frames(dataset, *pixel, xfer, *fragments, streams); !replaced)
    return std::unexpected(replaced.error());
  outcome.method = WriteMethod::frames_reencoded;
  outcome.transfer_syntax_uid = DcmXfer(xfer).getXferID();
  return outcome;
}

// One whole JPEG: SOI first and EOI last (after any 00 padding). A frame whose fragments, as
// the offset table maps them, are not is not blanked (a frame split across items by a wrong
// table would otherwise keep part of its data byte for byte).
bool whole_jpeg(std::span<const std::uint8_t> bytes) {
  std::size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0x00) --end;
  return end >= 4 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[end - 2] == 0xFF &&
         bytes[end - 1] == 0xD9;
}

struct BlankedFrame {
  unsigned mcu_width = 8, mcu_height = 8;
  unsigned tolerance = 0;
};

// The written pixel data, decoded again (in a copy, the way every reader will): each pixel the
// request changed must decode within `tolerance` of the range of the values requested in its
// MCU (a blanked MCU is uniform at their mean). Where chroma is subsampled, the pixels next to
// an MCU border are not checked: upsampling blends in the neighbouring MCU's chroma.
Status verify_blanked(DcmDataset& dataset, const PixelImage& before, const PixelImage& image,
                      const std::vector<std::optional<BlankedFrame>>& blanked) {
  auto written = decode_dataset(dataset);
  if (!written)
    return fail(ErrorCode::internal,
                "block blanking: the rewritten JPEG does not decode: " + written.error().message);
  if (!same_geometry(*written, image))
    return fail(ErrorCode::internal, "block blanking: the rewritten JPEG changed the geometry");
  const unsigned s = image.samples;
  for (std::size_t f = 0; f < blanked.size(); ++f) {
    if (!blanked[f]) continue;
    const BlankedFrame& b = *blanked[f];
    const std::vector<std::uint16_t>& was = before.frames[f];
    const std::vector<std::uint16_t>& want = image.frames[f];
    const std::vector<std::uint16_t>& got = written->frames[f];
    const unsigned across = (image.width + b.mcu_width - 1) / b.mcu_width;
    const unsigned down = (image.height + b.mcu_height - 1) / b.mcu_height;
    // Per MCU and sample: the lowest and highest requested value of the changed pixels.
    std::vector<int> lo(static_cast<std::size_t>(across) * down * s, 65536);
    std::vector<int> hi(lo.size(), -1);
    auto changed_at = [&](std::size_t p) {
      for (unsigned c = 0; c < s; ++c)
        if (was[p * s + c] != want[p * s + c]) return true;
      return false;
    };
    for (unsigned y = 0; y < image.height; ++y)
      for (unsigned x = 0; x < image.width; ++x) {
        const std::size_t p = static_cast<std::size_t>(y) * image.width + x;
        if (!changed_at(p)) continue;
        const std::size_t m = static_cast<std::size_t>(y / b.mcu_height) * across + x / b.mcu_width;
        for (unsigned c = 0; c < s; ++c) {
          lo[m * s + c] = std::min<int>(lo[m * s + c], want[p * s + c]);
          hi[m * s + c] = std::max<int>(hi[m * s + c], want[p * s + c]);
        }
      }
    const bool blend_x = s == 3 && b.mcu_width > 8;
    const bool blend_y = s == 3 && b.mcu_height > 8;
    const int tolerance = static_cast<int>(b.tolerance);
    for (unsigned y = 0; y < image.height; ++y) {
      if (blend_y && (y % b.mcu_height == 0 || y % b.mcu_height == b.mcu_height - 1)) continue;
      for (unsigned x = 0; x < image.width; ++x) {
        if (blend_x && (x % b.mcu_width == 0 || x % b.mcu_width == b.mcu_width - 1)) continue;
        const std::size_t p = static_cast<std::size_t>(y) * image.width + x;
        if (!changed_at(p)) continue;
        const std::size_t m = static_cast<std::size_t>(y / b.mcu_height) * across + x / b.mcu_width;
        for (unsigned c = 0; c < s; ++c) {
          const int value = got[p * s + c];
          if (value < lo[m * s + c] - tolerance || value > hi[m * s + c] + tolerance)
            return fail(ErrorCode::internal, "block blanking: frame " + std::to_string(f + 1) +
                                                 " does not decode to the redacted values");
        }
      }
    }
  }
  return {};
}

// Lossy 8-bit JPEG: blocks blanked in the compressed data of changed frames. nullopt when
// libjpeg cannot transcode a frame cleanly (a warning counts) or a frame's fragments are not
// one whole JPEG: the caller falls back to uncompressed. The result is decoded again and
// checked; a mismatch fails with ErrorCode::internal.
Result<std::optional<PixelWriteOutcome>> write_jpeg_blocks(DcmDataset& dataset,
                                                           E_TransferSyntax xfer,
                                                           const PixelImage& before,
                                                           const PixelImage& image,
                                                           const std::vector<bool>& changed) {
  auto geometry = read_geometry(dataset, xfer);  // the file's own photometric interpretation
  if (!geometry) return std::nullopt;
  const Geometry& g = *geometry;
  if (g.bits_allocated != 8 || g.bits_stored != 8) return std::nullopt;
  DcmPixelData* pixel = pixel_element(dataset);
  if (pixel == nullptr) return fail(ErrorCode::malformed_dicom, "no pixel data");
  auto fragments = map_fragments(*pixel, xfer, g.frames, jpeg::starts_jpeg);
  if (!fragments) return std::nullopt;
  // DCMTK's decoder converts YBR JPEG to RGB and leaves RGB JPEG as it is.
  const bool ybr =
      g.photometric == Photometric::ybr_full || g.photometric == Photometric::ybr_full_422;
  const jpeg::FillSpace space = ybr && image.photometric == Photometric::rgb
                                    ? jpeg::FillSpace::ycbcr_from_rgb
                                    : jpeg::FillSpace::as_decoded;
  std::vector<std::optional<std::vector<std::uint8_t>>> streams(g.frames);
  std::vector<std::optional<BlankedFrame>> blanked_frames(g.frames);
  PixelWriteOutcome outcome;
  for (std::size_t f = 0; f < g.frames; ++f) {
    auto stream = frame_stream(*fragments, f);
    if (!stream) return std::unexpected(stream.error());
    // Every frame, kept ones included: a kept frame's items are copied byte for byte.
    if (!whole_jpeg(*stream)) return std::nullopt;
    if (!changed[f]) continue;
    jpeg::BlankRequest request;
    request.width = image.width;
    request.height = image.height;
    request.samples = image.samples;
    request.before = before.frames[f];
    request.after = image.frames[f];
    request.space = space;
    auto blanked = jpeg::blank_blocks(*stream, request);
    if (!blanked) return std::nullopt;
    outcome.blocks_blanked += blanked->mcus;
    outcome.block_width = blanked->mcu_width;
    outcome.block_height = blanked->mcu_height;
    blanked_frames[f] = BlankedFrame{blanked->mcu_width, blanked->mcu_height, blanked->tolerance};
    streams[f] = std::move(blanked->jpeg);
    ++outcome.frames_rewritten;
  }
  if (auto replaced = replace_frames(dataset, *pixel, xfer, *fragments, streams); !replaced)
    return std::unexpected(replaced.error());
  if (auto verified = verify_blanked(dataset, before, image, blanked_frames); !verified)
    return std::unexpected(verified.error());
  outcome.method = WriteMethod::blocks_blanked;
  outcome.transfer_syntax_uid = DcmXfer(xfer).getXferID();
  return outcome;
}

}  // namespace

std::string_view photometric_name(Photometric photometric) {
  switch (photometric) {
    case Photometric::monochrome1:
      return "MONOCHROME1";
    case Photometric::monochrome2:
      return "MONOCHROME2";
    case Photometric::rgb:
      return "RGB";
    case Photometric::ybr_full:
      return "YBR_FULL";
    case Photometric::ybr_full_422:
      return "YBR_FULL_422";
    case Photometric::palette_color:
      return "PALETTE COLOR";
  }
  return "";
}

std::int32_t PixelImage::value_of(std::uint16_t stored) const {
  if (sign == PixelSign::unsigned_integer || bits_stored >= 32) return stored;
  const std::uint32_t sign_bit = 1u << (bits_stored - 1);
  const std::int32_t v = static_cast<std::int32_t>(stored);
  return (stored & sign_bit) != 0 ? v - static_cast<std::int32_t>(1u << bits_stored) : v;
}

bool can_decode_transfer_syntax(std::string_view uid) {
  const DcmXfer xfer(std::string(uid).c_str());
  return is_decodable(xfer.getXfer());
}

Result<PixelImage> decode_pixels(DicomFile& file) {
  initialise();
  register_codecs();
  return decode_dataset(*PixelAccess::impl(file).file.getDataset());
}

namespace {

Result<PixelImage> decode_dataset(DcmDataset& dataset) {
  const E_TransferSyntax original = dataset.getOriginalXfer();
  if (!is_decodable(original))
    return fail(ErrorCode::unsupported,
                std::string("no decoder for transfer syntax ") + DcmXfer(original).getXferName());
  if (is_j2k(original)) return decode_j2k(dataset, original);
  // Compressed data is decoded in a copy: the file keeps its original encapsulated pixel
  // data, so an image that needs no change is saved exactly as it came.
  // Native data is decoded too (into 16-bit samples): the same limit applies.
  std::unique_ptr<DcmDataset> decoded;
  DcmDataset* source = &dataset;
  Sint32 frames = 1;
  if (dataset.findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
  if (auto size = check_decoded_size(
          uint16_of(dataset, DCM_Columns, 0), uint16_of(dataset, DCM_Rows, 0),
          uint16_of(dataset, DCM_SamplesPerPixel, 1), static_cast<std::uint64_t>(frames));
      !size)
    return std::unexpected(size.error());
  if (!is_native(original)) {
    if (is_dcmjpeg(original)) {
      if (auto walk = check_dcmjpeg_fragments(dataset, original); !walk)
        return std::unexpected(walk.error());
    }
    decoded = std::make_unique<DcmDataset>(dataset);
    const OFCondition status = decoded->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad())
      return fail(ErrorCode::malformed_dicom,
                  std::string("cannot decode pixel data: ") + status.text());
    source = decoded.get();
  }
  DcmPixelData* pixel = pixel_element(*source);
  if (pixel == nullptr) return fail(ErrorCode::malformed_dicom, "no pixel data");
  auto geometry =
      read_geometry(*source, original);  // after decoding: codecs may change the colour model
  if (!geometry) return std::unexpected(geometry.error());
  const Geometry& g = *geometry;

  auto shell = image_of(g, *source);
  if (!shell) return std::unexpected(shell.error());
  PixelImage& image = *shell;

  std::vector<std::uint8_t> scratch;
  auto bytes = native_bytes(*pixel, scratch);
  if (!bytes) return std::unexpected(bytes.error());
  const std::size_t frame_bytes = g.frame_bytes();
  if (bytes->size() < frame_bytes * g.frames)
    return fail(ErrorCode::malformed_dicom, "pixel data shorter than rows x columns x frames");

  const std::uint16_t mask = static_cast<std::uint16_t>((1u << g.bits_stored) - 1u);
  const std::size_t pixels = static_cast<std::size_t>(g.width) * g.height;
  image.frames.resize(g.frames);
  for (std::size_t f = 0; f < g.frames; ++f) {
    const std::uint8_t* in = bytes->data() + f * frame_bytes;
    std::vector<std::uint16_t>& out = image.frames[f];
    out.resize(pixels * g.samples);
    auto sample_at = [&](std::size_t index) -> std::uint16_t {
      if (g.bits_allocated == 8) return in[index];
      return static_cast<std::uint16_t>(in[2 * index] | (in[2 * index + 1] << 8));
    };
    if (g.photometric == Photometric::ybr_full_422) {
      for (std::size_t p = 0; p < pixels; p += 2) {
        const std::uint8_t* q = in + p * 2;  // Y1 Y2 Cb Cr
        out[3 * p] = q[0];
        out[3 * p + 1] = q[2];
        out[3 * p + 2] = q[3];
        out[3 * p + 3] = q[1];
        out[3 * p + 4] = q[2];
        out[3 * p + 5] = q[3];
      }
    } else if (g.samples == 3 && g.planar == 1) {
      for (std::size_t p = 0; p < pixels; ++p)
        for (unsigned s = 0; s < 3; ++s)
          out[3 * p + s] = static_cast<std::uint16_t>(sample_at(s * pixels + p) & mask);
    } else {
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::uint16_t>(sample_at(i) & mask);
    }
  }
  return std::move(image);
}

}  // namespace

namespace {

// Compressed pixel data written back without decoding the frames that did not change: JPEG
// 2000 frame by frame, baseline JPEG block by block. nullopt when the syntax has no such
// writer (the caller re-encodes the whole image).
Result<std::optional<PixelWriteOutcome>> write_changed_frames_only(DicomFile& file,
                                                                   const PixelImage& image) {
  auto& impl = PixelAccess::impl(file);
  DcmDataset& dataset = *impl.file.getDataset();
  const E_TransferSyntax original = dataset.getOriginalXfer();
  // Which frames changed: decode the file's own (still untouched) pixel data again.
  auto before = decode_pixels(file);
  if (!before) return std::unexpected(before.error());
  if (!same_geometry(*before, image))
    return fail(ErrorCode::usage, "the image does not fit the file's pixel attributes");
  std::vector<bool> changed(image.frames.size(), false);
  for (std::size_t f = 0; f < image.frames.size(); ++f) {
    if (image.frames[f].size() != image.samples_per_frame())
      return fail(ErrorCode::usage, "frame size mismatch");
    changed[f] = image.frames[f] != before->frames[f];
  }
  if (std::none_of(changed.begin(), changed.end(), [](bool c) { return c; })) {
    impl.output_xfer.reset();
    PixelWriteOutcome outcome;
    outcome.method = WriteMethod::unchanged;
    outcome.transfer_syntax_uid = DcmXfer(original).getXferID();
    return outcome;
  }
  std::optional<PixelWriteOutcome> written;
  if (is_j2k(original)) {
    auto result = write_j2k(dataset, original, image, changed);
    if (!result) return std::unexpected(result.error());
    written = std::move(*result);
  } else if (original == EXS_JPEGProcess1 || original == EXS_JPEGProcess2_4) {
    auto result = write_jpeg_blocks(dataset, original, *before, image, changed);
    if (!result) return std::unexpected(result.error());
    written = std::move(*result);
  }
  if (written) impl.output_xfer.reset();
  return written;
}

// The frames as the stored layout holds them: 8 or 16 bits little endian, colour by pixel or
// by plane, YBR_FULL_422 as pairs sharing chroma; padded to an even length.
Result<std::vector<std::uint8_t>> pack_frames(const Geometry& g, const PixelImage& image) {
  const std::size_t pixels = static_cast<std::size_t>(g.width) * g.height;
  const std::size_t frame_bytes = g.frame_bytes();
  std::vector<std::uint8_t> bytes(frame_bytes * g.frames + (frame_bytes * g.frames) % 2);
  for (std::size_t f = 0; f < g.frames; ++f) {
    const std::vector<std::uint16_t>& in = image.frames[f];
    if (in.size() != image.samples_per_frame())
      return fail(ErrorCode::usage, "frame size mismatch");
    std::uint8_t* out = bytes.data() + f * frame_bytes;
    auto put = [&](std::size_t index, std::uint16_t value) {
      if (g.bits_allocated == 8) {
        out[index] = static_cast<std::uint8_t>(value);
      } else {
        out[2 * index] = static_cast<std::uint8_t>(value & 0xFF);
        out[2 * index + 1] = static_cast<std::uint8_t>(value >> 8);
      }
    };
    if (g.photometric == Photometric::ybr_full_422) {
      // Chroma is shared by each horizontal pair; the first pixel's is kept (redaction fills
      // whole pairs, so both agree).
      for (std::size_t p = 0; p < pixels; p += 2) {
        std::uint8_t* q = out + p * 2;
        q[0] = static_cast<std::uint8_t>(in[3 * p]);
        q[1] = static_cast<std::uint8_t>(in[3 * p + 3]);
        q[2] = static_cast<std::uint8_t>(in[3 * p + 1]);
        q[3] = static_cast<std::uint8_t>(in[3 * p + 2]);
      }
    } else if (g.samples == 3 && g.planar == 1) {
      for (std::size_t p = 0; p < pixels; ++p)
        for (unsigned s = 0; s < 3; ++s) put(s * pixels + p, in[3 * p + s]);
    } else {
      for (std::size_t i = 0; i < in.size(); ++i) put(i, in[i]);
    }
  }
  return bytes;
}

// Replaces the Pixel Data element's value with `bytes` (as words where the element is OW).
Status put_pixel_bytes(DcmPixelData& pixel, const Geometry& g,
                       const std::vector<std::uint8_t>& bytes) {
  OFCondition status;
  if (g.bits_allocated == 16 || pixel.getTag().getEVR() == EVR_OW) {
    // 16-bit samples, or 8-bit samples in an OW element (implicit VR): words hold two
    // samples, low byte first.
    std::vector<Uint16> words(bytes.size() / 2);
    for (std::size_t i = 0; i < words.size(); ++i)
      words[i] = static_cast<Uint16>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    status = pixel.putUint16Array(words.data(), static_cast<unsigned long>(words.size()));
  } else {
    status = pixel.putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size()));
  }
  if (status.bad())
    return fail(ErrorCode::internal, std::string("cannot replace pixel data: ") + status.text());
  return {};
}

// Whether every sample keeps to Bits Stored, as PixelImage's contract says. A codestream can
// hold wider samples than the header declares; handed back to CharLS at the declared depth,
// such a sample fails an assertion inside it, which ends the process (fuzz_pixels_jpeg_ls).
bool samples_fit_bits_stored(const PixelImage& image) {
  if (image.bits_stored >= 16) return true;
  const std::uint16_t above = static_cast<std::uint16_t>(0xFFFFu << image.bits_stored);
  return std::ranges::all_of(image.frames, [above](const std::vector<std::uint16_t>& frame) {
    return std::ranges::none_of(frame, [above](std::uint16_t v) { return (v & above) != 0; });
  });
}

// The syntax the new pixel data is written in: the original when native or when its lossless
// encoder takes the image; explicit little endian otherwise.
Result<PixelWriteOutcome> choose_output_syntax(DicomFile& file, E_TransferSyntax original,
                                               const PixelImage& image) {
  const std::size_t frames = image.frames.size();
  auto& impl = PixelAccess::impl(file);
  DcmDataset& dataset = *impl.file.getDataset();
  PixelWriteOutcome outcome;
  outcome.frames_rewritten = frames;
  if (is_native(original)) {
    impl.output_xfer.reset();
    outcome.method = WriteMethod::native;
    outcome.transfer_syntax_uid = DcmXfer(original).getXferID();
    return outcome;
  }
  if (is_lossless_encodable(original) && samples_fit_bits_stored(image)) {
    DJ_RPLossless jpeg_lossless;
    DJLSRepresentationParameter jpeg_ls(0, OFTrue);
    const DcmRepresentationParameter* params = nullptr;
    if (original == EXS_JPEGProcess14 || original == EXS_JPEGProcess14SV1) params = &jpeg_lossless;
    if (original == EXS_JPEGLSLossless) params = &jpeg_ls;
    if (dataset.chooseRepresentation(original, params).good() && dataset.canWriteXfer(original)) {
      impl.output_xfer.reset();
      outcome.method = WriteMethod::codec_reencoded;
      outcome.transfer_syntax_uid = DcmXfer(original).getXferID();
      return outcome;
    }
    // The encoder refused (e.g. a bit depth it does not take): fall through to native.
    if (dataset.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad())
      return fail(ErrorCode::internal, "cannot return to uncompressed pixel data");
  }
  impl.output_xfer = EXS_LittleEndianExplicit;
  outcome.syntax = WrittenSyntax::explicit_little_fallback;
  outcome.method = WriteMethod::uncompressed;
  outcome.transfer_syntax_uid = DcmXfer(EXS_LittleEndianExplicit).getXferID();
  return outcome;
}

}  // namespace

Result<PixelWriteOutcome> encode_pixels(DicomFile& file, const PixelImage& image) {
  initialise();
  register_codecs();
  auto& impl = PixelAccess::impl(file);
  DcmDataset& dataset = *impl.file.getDataset();
  const E_TransferSyntax original = dataset.getOriginalXfer();
  if (!is_native(original)) {
    auto in_place = write_changed_frames_only(file, image);
    if (!in_place) return std::unexpected(in_place.error());
    if (*in_place) return **in_place;
    // The codec may have changed the colour model while decoding (YBR to RGB, interleaved).
    const std::string name(photometric_name(image.photometric));
    dataset.putAndInsertString(DCM_PhotometricInterpretation, name.c_str());
    if (image.samples == 3) dataset.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  }
  auto geometry = read_geometry(dataset, original);
  if (!geometry) return std::unexpected(geometry.error());
  const Geometry& g = *geometry;
  if (g.width != image.width || g.height != image.height || g.samples != image.samples ||
      g.bits_allocated != image.bits_allocated || g.frames != image.frames.size() ||
      g.photometric != image.photometric)
    return fail(ErrorCode::usage, "the image does not fit the file's pixel attributes");
  DcmPixelData* pixel = pixel_element(dataset);
  if (pixel == nullptr) return fail(ErrorCode::malformed_dicom, "no pixel data");
  auto bytes = pack_frames(g, image);
  if (!bytes) return std::unexpected(bytes.error());
  if (auto put = put_pixel_bytes(*pixel, g, *bytes); !put) return std::unexpected(put.error());
  return choose_output_syntax(file, original, image);
}

Status check_pixel_consistency(DicomFile& file) {
  DcmDataset& dataset = *PixelAccess::impl(file).file.getDataset();
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element, OFFalse).bad() || element == nullptr)
    return {};
  auto* pixel = dynamic_cast<DcmPixelData*>(element);
  if (pixel == nullptr) return {};
  const E_TransferSyntax xfer = dataset.getOriginalXfer();
  const DcmXfer syntax(xfer);
  DcmPixelSequence* sequence = nullptr;
  const bool encapsulated =
      pixel->getEncapsulatedRepresentation(xfer, nullptr, sequence).good() && sequence != nullptr;
  const auto rows = uint16_of(dataset, DCM_Rows, 0);
  const auto columns = uint16_of(dataset, DCM_Columns, 0);
  const auto samples = uint16_of(dataset, DCM_SamplesPerPixel, 1);
  const auto bits = uint16_of(dataset, DCM_BitsAllocated, 0);
  Sint32 frames_value = 1;
  if (dataset.tagExists(DCM_NumberOfFrames) &&
      (dataset.findAndGetSint32(DCM_NumberOfFrames, frames_value).bad() || frames_value < 1))
    return fail(ErrorCode::malformed_dicom, "inconsistent pixel header: Number of Frames is not "
                                            "a positive number");
  const auto frames = static_cast<std::uint64_t>(frames_value);
  if (rows == 0 || columns == 0 || bits == 0)
    return fail(ErrorCode::malformed_dicom,
                "inconsistent pixel header: Pixel Data without Rows, Columns or Bits Allocated");

  if (!syntax.isEncapsulated()) {
    if (encapsulated || element->getLengthField() == DCM_UndefinedLength)
      return fail(ErrorCode::malformed_dicom,
                  "transfer syntax does not match the pixel data: the syntax is native but the "
                  "pixel data is encapsulated (compressed)");
    OFString photometric;
    dataset.findAndGetOFString(DCM_PhotometricInterpretation, photometric);
    std::string text = photometric.c_str();
    while (!text.empty() && text.back() == ' ') text.pop_back();
    // YBR_FULL_422 stores two luminance and two chrominance values per two pixels.
    const std::uint64_t per_pixel = text == "YBR_FULL_422" && samples == 3 ? 2 : samples;
    const std::uint64_t bits_total =
        std::uint64_t{rows} * columns * per_pixel * frames * bits;
    const std::uint64_t expected = (bits_total + 7) / 8;
    const std::uint64_t length = element->getLengthField();
    if (length < expected)
      return fail(ErrorCode::malformed_dicom,
                  "inconsistent pixel header: Rows x Columns x Samples per Pixel x Number of "
                  "Frames x Bits Allocated needs " +
                      std::to_string(expected) + " bytes, Pixel Data holds " +
                      std::to_string(length));
    if (length > expected + 1 + (expected % 2))
      return fail(ErrorCode::malformed_dicom,
                  "inconsistent pixel header: Pixel Data holds " + std::to_string(length) +
                      " bytes, more than the " + std::to_string(expected) +
                      " its Rows, Columns, Samples per Pixel, Number of Frames and Bits "
                      "Allocated describe (bytes no viewer shows)");
    return {};
  }

  if (!encapsulated)
    return fail(ErrorCode::malformed_dicom,
                std::string("transfer syntax does not match the pixel data: ") +
                    syntax.getXferName() + " needs encapsulated pixel data, the file's is native");
  const unsigned long items = sequence->card();
  if (items < 2)
    return fail(ErrorCode::malformed_dicom, "encapsulated pixel data has no fragment");
  if (frames > items - 1)
    return fail(ErrorCode::malformed_dicom,
                "inconsistent pixel header: Number of Frames is larger than the number of "
                "pixel data fragments");
  DcmPixelItem* first = nullptr;
  if (sequence->getItem(first, 1).bad() || first == nullptr)
    return fail(ErrorCode::malformed_dicom, "missing pixel data fragment");
  std::uint8_t head[12] = {};
  const Uint32 available = std::min<Uint32>(first->getLength(), sizeof head);
  if (available > 0 && first->getPartialValue(head, 0, available).bad())
    return fail(ErrorCode::malformed_dicom, "unreadable pixel data fragment");
  const bool jpeg = available >= 2 && head[0] == 0xFF && head[1] == 0xD8;
  const bool j2k = (available >= 4 && head[0] == 0xFF && head[1] == 0x4F && head[2] == 0xFF &&
                    head[3] == 0x51) ||
                   (available >= 12 && head[0] == 0 && head[1] == 0 && head[2] == 0 &&
                    head[3] == 0x0C && head[4] == 'j' && head[5] == 'P');
  const std::uint32_t segments =
      head[0] | (head[1] << 8) | (head[2] << 16) | (static_cast<std::uint32_t>(head[3]) << 24);
  const bool rle = available >= 4 && segments >= 1 && segments <= 15;
  std::optional<bool> matches;
  switch (xfer) {
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
      matches = jpeg;
      break;
    case EXS_JPEG2000LosslessOnly:
    case EXS_JPEG2000:
      matches = j2k;
      break;
    case EXS_RLELossless:
      matches = rle;
      break;
    default:
      break;  // other codecs: not checked here
  }
  if (matches && !*matches)
    return fail(ErrorCode::malformed_dicom,
                std::string("transfer syntax does not match the pixel data: the first fragment "
                            "is not ") +
                    syntax.getXferName() + " data");
  return {};
}

}  // namespace radguard::dicom
