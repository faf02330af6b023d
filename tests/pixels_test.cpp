// Pixel decoding and lossless write-back across transfer syntaxes and photometric
// interpretations: decoded values match what was encoded, a changed frame comes back changed
// and every other pixel comes back unchanged.
#include "dicom/pixels.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "dicom/jpeg2000.hpp"
#include "dicom/jpeg_blocks.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

using testing::load;
using testing::make_ct;
using testing::pixel_bytes;
using testing::save;
using testing::TempDir;
using testing::value;

struct Syntax {
  const char* name;
  E_TransferSyntax xfer;
  bool keeps_syntax;
};

class PixelSyntaxes : public ::testing::TestWithParam<Syntax> {};

dicom::DicomFile open_or_die(const std::filesystem::path& path) {
  auto file = dicom::DicomFile::open(path);
  if (!file) {
    ADD_FAILURE() << path << ": " << file.error().message;
    throw std::runtime_error("cannot open");
  }
  return std::move(*file);
}

TEST_P(PixelSyntaxes, DecodesEditsAndWritesBackLosslessly) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 24, 20, 3);
  const auto input = dir / "in.dcm";
  save(*ct, input, GetParam().xfer);
  auto file = open_or_die(input);
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  ASSERT_EQ(image->frames.size(), 3u);
  EXPECT_EQ(image->width, 20u);
  EXPECT_EQ(image->height, 24u);
  for (std::size_t f = 0; f < 3; ++f)
    for (std::size_t i = 0; i < image->frames[f].size(); ++i)
      ASSERT_EQ(image->frames[f][i], ((f * 480 + i) * 7) % 4096)
          << "frame " << f << " sample " << i;

  dicom::PixelImage edited = *image;
  for (unsigned y = 2; y < 6; ++y)
    for (unsigned x = 3; x < 9; ++x) edited.frames[1][y * 20 + x] = 0;
  auto outcome = dicom::encode_pixels(file, edited);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->syntax == dicom::WrittenSyntax::original, GetParam().keeps_syntax);
  const auto output = dir / "out.dcm";
  ASSERT_TRUE(file.save(output, {"1.2.3", "TEST"}).has_value());

  auto reread = open_or_die(output);
  if (GetParam().keeps_syntax) {
    EXPECT_EQ(reread.transfer_syntax_uid(), DcmXfer(GetParam().xfer).getXferID());
  } else {
    EXPECT_EQ(reread.transfer_syntax_uid(), DcmXfer(EXS_LittleEndianExplicit).getXferID());
  }
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, edited.frames);
}

INSTANTIATE_TEST_SUITE_P(Generated, PixelSyntaxes,
                         ::testing::Values(Syntax{"ImplicitLittle", EXS_LittleEndianImplicit, true},
                                           Syntax{"ExplicitLittle", EXS_LittleEndianExplicit, true},
                                           Syntax{"ExplicitBig", EXS_BigEndianExplicit, true},
                                           Syntax{"Deflated", EXS_DeflatedLittleEndianExplicit,
                                                  true},
                                           Syntax{"Rle", EXS_RLELossless, true},
                                           Syntax{"JpegLossless", EXS_JPEGProcess14SV1, true},
                                           Syntax{"JpegLs", EXS_JPEGLSLossless, true}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Pixels, UnchangedFramesOfNativeDataStayBitIdentical) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 16, 16, 2);
  save(*ct, dir / "in.dcm", EXS_LittleEndianExplicit);
  const std::string before = pixel_bytes(*load(dir / "in.dcm"));
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value());
  image->frames[1][0] = 1;
  ASSERT_TRUE(dicom::encode_pixels(file, *image).has_value());
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  const std::string after = pixel_bytes(*load(dir / "out.dcm"));
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(after.substr(0, 512), before.substr(0, 512));
  EXPECT_NE(after.substr(512), before.substr(512));
}

// An 8-bit colour or palette image with a known pattern.
std::unique_ptr<DcmFileFormat> make_colour(const char* photometric, unsigned planar) {
  auto file = make_ct("PID1", "1.2.3.4.5.7", 8, 10, 1);
  DcmDataset& d = *file->getDataset();
  const bool palette = std::string(photometric) == "PALETTE COLOR";
  const bool mono = std::string(photometric).starts_with("MONOCHROME");
  const unsigned samples = palette || mono ? 1 : 3;
  d.putAndInsertString(DCM_PhotometricInterpretation, photometric);
  d.putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(samples));
  d.putAndInsertUint16(DCM_BitsAllocated, 8);
  d.putAndInsertUint16(DCM_BitsStored, 8);
  d.putAndInsertUint16(DCM_HighBit, 7);
  d.findAndDeleteElement(DCM_RescaleIntercept);
  d.findAndDeleteElement(DCM_RescaleSlope);
  if (samples == 3) d.putAndInsertUint16(DCM_PlanarConfiguration, static_cast<Uint16>(planar));
  const bool subsampled = std::string(photometric) == "YBR_FULL_422";
  const std::size_t count = subsampled ? 8 * 10 * 2 : 8 * 10 * samples;
  std::vector<Uint8> bytes(count);
  for (std::size_t i = 0; i < count; ++i) bytes[i] = static_cast<Uint8>((i * 13) % 256);
  d.findAndDeleteElement(DCM_PixelData);
  d.putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(bytes.size()));
  if (palette) {
    for (const auto& [descriptor, data] :
         {std::pair{DCM_RedPaletteColorLookupTableDescriptor, DCM_RedPaletteColorLookupTableData},
          std::pair{DCM_GreenPaletteColorLookupTableDescriptor,
                    DCM_GreenPaletteColorLookupTableData},
          std::pair{DCM_BluePaletteColorLookupTableDescriptor,
                    DCM_BluePaletteColorLookupTableData}}) {
      const Uint16 desc[3] = {256, 0, 16};
      d.putAndInsertUint16Array(descriptor, desc, 3);
      std::vector<Uint16> lut(256);
      for (unsigned i = 0; i < 256; ++i) lut[i] = static_cast<Uint16>(i * 257);
      d.putAndInsertUint16Array(data, lut.data(), 256);
    }
  }
  return file;
}

class PixelColours : public ::testing::TestWithParam<std::pair<const char*, unsigned>> {};

TEST_P(PixelColours, RoundTripThroughDecodeAndEncode) {
  TempDir dir;
  auto source = make_colour(GetParam().first, GetParam().second);
  save(*source, dir / "in.dcm", EXS_LittleEndianExplicit);
  const std::string before = pixel_bytes(*load(dir / "in.dcm"));
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(dicom::photometric_name(image->photometric), GetParam().first);
  if (image->photometric == dicom::Photometric::palette_color) {
    ASSERT_EQ(image->palette.red.size(), 256u);
    EXPECT_EQ(image->palette.red[255], 65535);
  }
  ASSERT_TRUE(dicom::encode_pixels(file, *image).has_value());
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  EXPECT_EQ(pixel_bytes(*load(dir / "out.dcm")), before);
}

INSTANTIATE_TEST_SUITE_P(Generated, PixelColours,
                         ::testing::Values(std::pair{"RGB", 0u}, std::pair{"RGB", 1u},
                                           std::pair{"YBR_FULL", 0u}, std::pair{"YBR_FULL_422", 0u},
                                           std::pair{"PALETTE COLOR", 0u},
                                           std::pair{"MONOCHROME1", 0u}),
                         [](const auto& param_info) {
                           std::string name = param_info.param.first;
                           std::erase(name, ' ');
                           return name + "_planar" + std::to_string(param_info.param.second);
                         });

// Every reader of a palette indexes the red, green and blue tables alike: tables of different
// sizes (or first values) would be read past their ends, so such a file is malformed.
TEST(Pixels, PaletteTablesThatDifferAreMalformed) {
  TempDir dir;
  auto source = make_colour("PALETTE COLOR", 0);
  const Uint16 shorter[3] = {16, 0, 16};
  std::vector<Uint16> lut(16, 0);
  source->getDataset()->putAndInsertUint16Array(DCM_GreenPaletteColorLookupTableDescriptor, shorter, 3);
  source->getDataset()->putAndInsertUint16Array(DCM_GreenPaletteColorLookupTableData, lut.data(), 16);
  save(*source, dir / "in.dcm", EXS_LittleEndianExplicit);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code, ErrorCode::malformed_dicom);
}

TEST(Pixels, TwelveBitLossyJpegIsWrittenExplicitLittleEndian) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 24, 20, 2);
  DcmDataset& d = *ct->getDataset();
  d.putAndInsertUint16(DCM_BitsStored, 12);
  d.putAndInsertUint16(DCM_HighBit, 11);
  save(*ct, dir / "in.dcm", EXS_JPEGProcess2_4);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  // Nothing changed: the compressed data is left as it came.
  auto same = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(same->method, dicom::WriteMethod::unchanged);
  EXPECT_EQ(same->syntax, dicom::WrittenSyntax::original);
  image->frames[1][5] = 0;
  auto outcome = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::explicit_little_fallback);
  EXPECT_EQ(outcome->method, dicom::WriteMethod::uncompressed);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.1");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->frames, image->frames);
}

TEST(Pixels, DecodingLeavesCompressedPixelDataAsItWas) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 16, 16, 2);
  save(*ct, dir / "in.dcm", EXS_JPEGLSLossless);
  const std::string before = pixel_bytes(*load(dir / "in.dcm"));
  auto file = open_or_die(dir / "in.dcm");
  ASSERT_TRUE(dicom::decode_pixels(file).has_value());
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  EXPECT_EQ(pixel_bytes(*load(dir / "out.dcm")), before);
}

TEST(Pixels, Jpeg2000IsDecodable) {
  EXPECT_TRUE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.4.90"));
  EXPECT_TRUE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.4.91"));
  EXPECT_TRUE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.5"));
  EXPECT_FALSE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.4.100"));
}

// ---------------------------------------------------------------------------------------------
// JPEG 2000 and lossy JPEG: frames are made here (OpenJPEG through radguard's own wrapper,
// libjpeg directly, DCMTK's JPEG encoder, gdcmconv) and wrapped into encapsulated pixel data.

using Frames = std::vector<std::vector<std::uint16_t>>;

struct Layout {
  unsigned width = 40, height = 36, samples = 1;
  unsigned bits_allocated = 8, bits_stored = 8;
  bool is_signed = false;
  std::string photometric = "MONOCHROME2";
};

// Stored values of a smooth pattern with some texture, different in every frame.
Frames pattern(const Layout& l, std::size_t frames) {
  Frames out(frames);
  const std::int32_t range = 1 << l.bits_stored;
  for (std::size_t f = 0; f < frames; ++f) {
    for (unsigned y = 0; y < l.height; ++y)
      for (unsigned x = 0; x < l.width; ++x)
        for (unsigned s = 0; s < l.samples; ++s) {
          std::int32_t v = static_cast<std::int32_t>(
              (x * (3 + s) + y * 2 + (x * y) % 7 * 3 + f * 17 + s * 40) * range / 256);
          v %= range;
          if (l.is_signed) v -= range / 2;
          out[f].push_back(static_cast<std::uint16_t>(static_cast<std::uint32_t>(v) &
                                                      static_cast<std::uint32_t>(range - 1)));
        }
  }
  return out;
}

// A native image object with `frames` as its pixel data.
std::unique_ptr<DcmFileFormat> make_image(const Layout& l, const Frames& frames) {
  auto file =
      make_ct("PID1", "1.2.3.4.5.8", l.height, l.width, static_cast<unsigned>(frames.size()));
  DcmDataset& d = *file->getDataset();
  d.putAndInsertString(DCM_PhotometricInterpretation, l.photometric.c_str());
  d.putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(l.samples));
  d.putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(l.bits_allocated));
  d.putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(l.bits_stored));
  d.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(l.bits_stored - 1));
  d.putAndInsertUint16(DCM_PixelRepresentation, l.is_signed ? 1 : 0);
  d.findAndDeleteElement(DCM_RescaleIntercept);
  d.findAndDeleteElement(DCM_RescaleSlope);
  if (l.samples == 3) d.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  d.findAndDeleteElement(DCM_PixelData);
  std::vector<Uint16> words;
  std::vector<Uint8> bytes;
  for (const auto& frame : frames)
    for (const std::uint16_t v : frame) {
      words.push_back(v);
      bytes.push_back(static_cast<Uint8>(v));
    }
  if (l.bits_allocated == 8) {
    if (bytes.size() % 2 != 0) bytes.push_back(0);
    d.putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(bytes.size()));
  } else {
    d.putAndInsertUint16Array(DCM_PixelData, words.data(),
                              static_cast<unsigned long>(words.size()));
  }
  return file;
}

enum class OffsetTable { empty, filled };
enum class Split { no, in_two };

// Replaces the pixel data with one item per frame (or two, split in the middle).
void encapsulate(DcmFileFormat& file, E_TransferSyntax xfer,
                 const std::vector<std::vector<std::uint8_t>>& streams, OffsetTable table,
                 Split split) {
  auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
  std::vector<Uint8> offsets;
  std::vector<std::vector<std::uint8_t>> items;
  std::uint32_t offset = 0;
  for (auto stream : streams) {
    if (stream.size() % 2 != 0) stream.push_back(0);
    for (int shift = 0; shift < 32; shift += 8)
      offsets.push_back(static_cast<Uint8>((offset >> shift) & 0xFF));
    std::vector<std::vector<std::uint8_t>> parts;
    if (split == Split::in_two) {
      const std::size_t half = stream.size() / 4 * 2;
      parts.emplace_back(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(half));
      parts.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(half), stream.end());
    } else {
      parts.push_back(stream);
    }
    for (auto& part : parts) {
      offset += static_cast<std::uint32_t>(8 + part.size());
      items.push_back(std::move(part));
    }
  }
  auto* bot = new DcmPixelItem(DCM_PixelItemTag);
  if (table == OffsetTable::filled)
    bot->putUint8Array(offsets.data(), static_cast<unsigned long>(offsets.size()));
  sequence->insert(bot);
  for (const auto& bytes : items) {
    auto* item = new DcmPixelItem(DCM_PixelItemTag);
    item->putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size()));
    sequence->insert(item);
  }
  auto* pixel = new DcmPixelData(DCM_PixelData);
  pixel->putOriginalRepresentation(xfer, nullptr, sequence);
  DcmDataset& d = *file.getDataset();
  d.findAndDeleteElement(DCM_PixelData);
  d.insert(pixel);
}

void save_as_is(DcmFileFormat& file, const std::filesystem::path& path, E_TransferSyntax xfer) {
  std::filesystem::create_directories(path.parent_path());
  const OFCondition status = file.saveFile(OFFilename(path.c_str()), xfer);
  ASSERT_TRUE(status.good()) << status.text();
}

// The encapsulated fragments (without the offset table).
std::vector<std::string> fragments_of(const std::filesystem::path& path) {
  auto file = load(path);
  DcmElement* element = nullptr;
  file->getDataset()->findAndGetElement(DCM_PixelData, element);
  auto* pixel = dynamic_cast<DcmPixelData*>(element);
  DcmPixelSequence* sequence = nullptr;
  std::vector<std::string> out;
  if (pixel == nullptr ||
      pixel->getEncapsulatedRepresentation(file->getDataset()->getOriginalXfer(), nullptr, sequence)
          .bad() ||
      sequence == nullptr)
    return out;
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* item = nullptr;
    sequence->getItem(item, i);
    Uint8* data = nullptr;
    item->getUint8Array(data);
    out.emplace_back(
        data == nullptr ? "" : std::string(reinterpret_cast<const char*>(data), item->getLength()));
  }
  return out;
}

std::vector<std::int32_t> signed_samples(const Layout& l, const std::vector<std::uint16_t>& frame) {
  std::vector<std::int32_t> out;
  for (const std::uint16_t v : frame) {
    std::int32_t value = v;
    if (l.is_signed && (v & (1u << (l.bits_stored - 1))) != 0) value -= 1 << l.bits_stored;
    out.push_back(value);
  }
  return out;
}

std::vector<std::uint8_t> j2k_frame(const Layout& l, const std::vector<std::uint16_t>& frame,
                                    dicom::j2k::Wavelet wavelet,
                                    dicom::j2k::ColourTransform transform, float ratio = 0) {
  dicom::j2k::EncodeSpec spec;
  spec.width = l.width;
  spec.height = l.height;
  spec.components = l.samples;
  spec.precision = l.bits_stored;
  spec.is_signed = l.is_signed;
  spec.wavelet = wavelet;
  spec.transform = transform;
  spec.ratio = ratio;
  auto stream = dicom::j2k::encode(spec, signed_samples(l, frame));
  if (!stream) throw std::runtime_error(stream.error().message);
  return *stream;
}

struct Box {
  unsigned x0, y0, x1, y1;  // half-open
  bool contains(unsigned x, unsigned y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};

void fill_box(dicom::PixelImage& image, std::size_t frame, const Box& box, std::uint16_t value) {
  for (unsigned y = box.y0; y < box.y1; ++y)
    for (unsigned x = box.x0; x < box.x1; ++x)
      for (unsigned s = 0; s < image.samples; ++s)
        image.frames[frame][(static_cast<std::size_t>(y) * image.width + x) * image.samples + s] =
            value;
}

struct J2kCase {
  const char* name;
  Layout layout;
  dicom::j2k::ColourTransform transform;
  OffsetTable table;
  Split split;
};

class Jpeg2000Lossless : public ::testing::TestWithParam<J2kCase> {};

// A signed 12-bit JPEG-LS image with negative values (a CT's air): DCMTK's default "cooked"
// JPEG-LS encoder handed CharLS values beyond 12 bits, and CharLS's assertion ended the
// process (fuzz_pixels_jpeg_ls). Written back now as the stored values, losslessly.
TEST(CodecAssertions, SignedTwelveBitJpegLsIsWrittenBackLosslessly) {
  TempDir dir;
  Layout l;
  l.bits_allocated = 16;
  l.bits_stored = 12;
  l.is_signed = true;
  const Frames frames = pattern(l, 2);
  auto native = make_image(l, frames);
  save(*native, dir / "in.dcm", EXS_JPEGLSLossless);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  ASSERT_EQ(image->frames, frames);
  image->frames[1][5] = 0x800;  // -2048, the most negative 12-bit value
  auto outcome = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->method, dicom::WriteMethod::codec_reencoded);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.4.80");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, image->frames);
}

TEST_P(Jpeg2000Lossless, DecodesExactlyAndRewritesOnlyTheChangedFrame) {
  const J2kCase& c = GetParam();
  const Layout& l = c.layout;
  TempDir dir;
  const Frames source = pattern(l, 3);
  auto object = make_image(l, source);
  std::vector<std::vector<std::uint8_t>> streams;
  for (const auto& frame : source)
    streams.push_back(j2k_frame(l, frame, dicom::j2k::Wavelet::reversible, c.transform));
  encapsulate(*object, EXS_JPEG2000LosslessOnly, streams, c.table, c.split);
  save_as_is(*object, dir / "in.dcm", EXS_JPEG2000LosslessOnly);

  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->photometric,
            l.samples == 3 ? dicom::Photometric::rgb : dicom::Photometric::monochrome2);
  EXPECT_EQ(image->bits_stored, l.bits_stored);
  ASSERT_EQ(image->frames, source);

  dicom::PixelImage edited = *image;
  const Box box{5, 4, 17, 13};
  fill_box(edited, 1, box, 0);
  auto outcome = dicom::encode_pixels(file, edited);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::original);
  EXPECT_EQ(outcome->method, dicom::WriteMethod::frames_reencoded);
  EXPECT_EQ(outcome->frames_rewritten, 1u);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());

  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.4.90");
  EXPECT_EQ(value(*load(dir / "out.dcm"), "PhotometricInterpretation"), l.photometric);
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, edited.frames);  // lossless: the box is 0, everything else as before

  // Frames 0 and 2 keep their fragments byte for byte.
  const auto before = fragments_of(dir / "in.dcm");
  const auto after = fragments_of(dir / "out.dcm");
  const std::size_t per = c.split == Split::in_two ? 2 : 1;
  ASSERT_EQ(before.size(), 3 * per);
  ASSERT_EQ(after.size(), 2 * per + 1);
  for (std::size_t i = 0; i < per; ++i) {
    EXPECT_EQ(after[i], before[i]);
    EXPECT_EQ(after[per + 1 + i], before[2 * per + i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Generated, Jpeg2000Lossless,
                         ::testing::Values(J2kCase{"Grey8",
                                                   {40, 36, 1, 8, 8, false, "MONOCHROME2"},
                                                   dicom::j2k::ColourTransform::none,
                                                   OffsetTable::filled,
                                                   Split::no},
                                           J2kCase{"Grey12SplitNoOffsets",
                                                   {40, 36, 1, 16, 12, false, "MONOCHROME2"},
                                                   dicom::j2k::ColourTransform::none,
                                                   OffsetTable::empty,
                                                   Split::in_two},
                                           J2kCase{"Signed16SplitWithOffsets",
                                                   {33, 20, 1, 16, 16, true, "MONOCHROME2"},
                                                   dicom::j2k::ColourTransform::none,
                                                   OffsetTable::filled,
                                                   Split::in_two},
                                           J2kCase{"RgbNoTransform",
                                                   {40, 36, 3, 8, 8, false, "RGB"},
                                                   dicom::j2k::ColourTransform::none,
                                                   OffsetTable::empty,
                                                   Split::no},
                                           J2kCase{"YbrRct",
                                                   {40, 36, 3, 8, 8, false, "YBR_RCT"},
                                                   dicom::j2k::ColourTransform::mct,
                                                   OffsetTable::filled,
                                                   Split::no}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Jpeg2000, LossyGreyStaysJpeg2000AndKeepsEverythingOutsideTheBox) {
  TempDir dir;
  const Layout l{48, 40, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 2);
  auto object = make_image(l, source);
  std::vector<std::vector<std::uint8_t>> streams;
  for (const auto& frame : source)
    streams.push_back(j2k_frame(l, frame, dicom::j2k::Wavelet::irreversible,
                                dicom::j2k::ColourTransform::none, 6));
  encapsulate(*object, EXS_JPEG2000, streams, OffsetTable::empty, Split::no);
  object->getDataset()->putAndInsertString(DCM_LossyImageCompression, "01");
  save_as_is(*object, dir / "in.dcm", EXS_JPEG2000);

  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  double error = 0;
  for (std::size_t f = 0; f < 2; ++f)
    for (std::size_t i = 0; i < source[f].size(); ++i)
      error += std::abs(int(image->frames[f][i]) - int(source[f][i]));
  EXPECT_LT(error / (2.0 * static_cast<double>(source[0].size())), 8.0)
      << "lossy, but close to the source";
  EXPECT_NE(image->frames, source) << "the fixture should really be lossy";

  dicom::PixelImage edited = *image;
  const Box box{10, 12, 30, 20};
  fill_box(edited, 0, box, 0);
  auto outcome = dicom::encode_pixels(file, edited);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::original);
  EXPECT_EQ(outcome->method, dicom::WriteMethod::frames_reencoded);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.4.91");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, edited.frames);  // the changed frame was re-encoded losslessly
  EXPECT_EQ(fragments_of(dir / "out.dcm")[1], fragments_of(dir / "in.dcm")[1]);
}

TEST(Jpeg2000, LossyIctColourFallsBackToExplicitLittleEndianRgb) {
  TempDir dir;
  const Layout l{40, 32, 3, 8, 8, false, "YBR_ICT"};
  const Frames source = pattern(l, 2);
  auto object = make_image(l, source);
  std::vector<std::vector<std::uint8_t>> streams;
  for (const auto& frame : source)
    streams.push_back(j2k_frame(l, frame, dicom::j2k::Wavelet::irreversible,
                                dicom::j2k::ColourTransform::mct, 5));
  encapsulate(*object, EXS_JPEG2000, streams, OffsetTable::filled, Split::no);
  save_as_is(*object, dir / "in.dcm", EXS_JPEG2000);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->photometric, dicom::Photometric::rgb);
  double error = 0;
  for (std::size_t i = 0; i < source[1].size(); ++i)
    error += std::abs(int(image->frames[1][i]) - int(source[1][i]));
  EXPECT_LT(error / static_cast<double>(source[1].size()), 10.0);
  fill_box(*image, 1, Box{0, 0, 8, 8}, 0);
  auto outcome = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::explicit_little_fallback);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.1");
  EXPECT_EQ(value(*load(dir / "out.dcm"), "PhotometricInterpretation"), "RGB");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, image->frames);
}

TEST(Jpeg2000, DecodesWhatGdcmWrites) {
  if (std::system("command -v gdcmconv >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "gdcmconv (libgdcm-tools) is not installed";
  TempDir dir;
  for (const Layout& l :
       {Layout{40, 36, 1, 16, 12, false, "MONOCHROME2"}, Layout{40, 36, 3, 8, 8, false, "RGB"}}) {
    const Frames source = pattern(l, 2);
    auto object = make_image(l, source);
    save(*object, dir / "native.dcm", EXS_LittleEndianExplicit);
    const std::string command = "gdcmconv --j2k " + (dir / "native.dcm").string() + " " +
                                (dir / "j2k.dcm").string() + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0);
    auto file = open_or_die(dir / "j2k.dcm");
    EXPECT_EQ(file.transfer_syntax_uid(), "1.2.840.10008.1.2.4.90");
    auto image = dicom::decode_pixels(file);
    ASSERT_TRUE(image.has_value()) << image.error().message;
    EXPECT_EQ(image->frames, source) << l.photometric;
    fill_box(*image, 0, Box{1, 1, 9, 9}, 0);
    ASSERT_TRUE(dicom::encode_pixels(file, *image).has_value());
    ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
    auto reread = open_or_die(dir / "out.dcm");
    auto back = dicom::decode_pixels(reread);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->frames, image->frames);
  }
}

// A J2K codestream wrapped in a minimal JP2 file (signature, ftyp, jp2h with ihdr and colr,
// jp2c), as some writers store it.
std::vector<std::uint8_t> jp2_wrapped(const Layout& l,
                                      const std::vector<std::uint8_t>& codestream) {
  std::vector<std::uint8_t> out;
  auto u32 = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  auto tag = [&](const char* t) { out.insert(out.end(), t, t + 4); };
  u32(12);
  tag("jP  ");
  u32(0x0D0A870A);
  u32(20);
  tag("ftyp");
  tag("jp2 ");
  u32(0);
  tag("jp2 ");
  u32(8 + 22 + 15);
  tag("jp2h");
  u32(22);
  tag("ihdr");
  u32(l.height);
  u32(l.width);
  out.push_back(0);
  out.push_back(static_cast<std::uint8_t>(l.samples));
  out.push_back(static_cast<std::uint8_t>((l.bits_stored - 1) | (l.is_signed ? 0x80 : 0)));
  out.push_back(7);  // compression: JPEG 2000
  out.push_back(0);
  out.push_back(0);
  u32(15);
  tag("colr");
  out.push_back(1);  // enumerated colour space
  out.push_back(0);
  out.push_back(0);
  u32(l.samples == 3 ? 16 : 17);  // sRGB or greyscale
  u32(static_cast<std::uint32_t>(8 + codestream.size()));
  tag("jp2c");
  out.insert(out.end(), codestream.begin(), codestream.end());
  return out;
}

TEST(Jpeg2000, DecodesJp2WrappedFramesAndRewritesThemAsCodestreams) {
  TempDir dir;
  const Layout l{40, 36, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 2);
  auto object = make_image(l, source);
  std::vector<std::vector<std::uint8_t>> streams;
  for (const auto& frame : source)
    streams.push_back(jp2_wrapped(l, j2k_frame(l, frame, dicom::j2k::Wavelet::reversible,
                                               dicom::j2k::ColourTransform::none)));
  encapsulate(*object, EXS_JPEG2000LosslessOnly, streams, OffsetTable::filled, Split::no);
  save_as_is(*object, dir / "in.dcm", EXS_JPEG2000LosslessOnly);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  EXPECT_EQ(image->frames, source);
  fill_box(*image, 1, Box{0, 0, 5, 5}, 0);
  ASSERT_TRUE(dicom::encode_pixels(file, *image).has_value());
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->frames, image->frames);
  const auto after = fragments_of(dir / "out.dcm");
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0], fragments_of(dir / "in.dcm")[0]);
  EXPECT_EQ(after[1].substr(0, 4), std::string("\xFF\x4F\xFF\x51", 4));  // a raw codestream
}

TEST(Jpeg2000, MalformedCodestreamsFailAsMalformedDicom) {
  const Layout l{40, 36, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 2);
  const auto good =
      j2k_frame(l, source[0], dicom::j2k::Wavelet::reversible, dicom::j2k::ColourTransform::none);
  std::vector<std::uint8_t> garbage = {0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0xFF, 0xFF};
  garbage.resize(64, 0xAB);
  const std::vector<std::uint8_t> truncated(good.begin(), good.begin() + good.size() / 2);
  std::vector<std::uint8_t> not_j2k = {0x12, 0x34, 0x56, 0x78};
  TempDir dir;
  int index = 0;
  for (const auto& bad : {garbage, truncated, not_j2k}) {
    auto object = make_image(l, source);
    encapsulate(*object, EXS_JPEG2000LosslessOnly, {good, bad}, OffsetTable::empty, Split::no);
    const auto path = dir / ("bad" + std::to_string(index++) + ".dcm");
    save_as_is(*object, path, EXS_JPEG2000LosslessOnly);
    auto file = open_or_die(path);
    auto image = dicom::decode_pixels(file);
    ASSERT_FALSE(image.has_value()) << index;
    EXPECT_EQ(image.error().code, ErrorCode::malformed_dicom) << image.error().message;
  }
  // A valid codestream that disagrees with Rows/Columns.
  auto object = make_image(l, source);
  encapsulate(*object, EXS_JPEG2000LosslessOnly, {good, good}, OffsetTable::empty, Split::no);
  object->getDataset()->putAndInsertUint16(DCM_Columns, 41);
  save_as_is(*object, dir / "size.dcm", EXS_JPEG2000LosslessOnly);
  auto file = open_or_die(dir / "size.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code, ErrorCode::malformed_dicom);
  // Fragments that cannot be told apart into frames.
  auto split = make_image(l, source);
  encapsulate(*split, EXS_JPEG2000LosslessOnly, {good}, OffsetTable::empty, Split::in_two);
  split->getDataset()->putAndInsertString(DCM_NumberOfFrames, "3");
  save_as_is(*split, dir / "frames.dcm", EXS_JPEG2000LosslessOnly);
  auto frames = open_or_die(dir / "frames.dcm");
  auto decoded = dicom::decode_pixels(frames);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::malformed_dicom);
}

// A 3-component codestream in a JP2 file whose palette (pclr, one column) and component map
// (cmap) would turn it into ONE channel while decoding: the header says 3 components, the
// decoded image would have 1.
std::vector<std::uint8_t> jp2_with_palette(const Layout& l,
                                           const std::vector<std::uint8_t>& codestream) {
  std::vector<std::uint8_t> out;
  auto u16 = [&](std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  };
  auto u32 = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  auto tag = [&](const char* t) { out.insert(out.end(), t, t + 4); };
  const std::uint32_t pclr = 8 + 2 + 1 + 1 + 256, cmap = 8 + 4;
  u32(12);
  tag("jP  ");
  u32(0x0D0A870A);
  u32(20);
  tag("ftyp");
  tag("jp2 ");
  u32(0);
  tag("jp2 ");
  u32(8 + 22 + 15 + pclr + cmap);
  tag("jp2h");
  u32(22);
  tag("ihdr");
  u32(l.height);
  u32(l.width);
  u16(static_cast<std::uint16_t>(l.samples));
  out.push_back(static_cast<std::uint8_t>(l.bits_stored - 1));
  out.push_back(7);
  out.push_back(0);
  out.push_back(0);
  u32(15);
  tag("colr");
  out.push_back(1);
  out.push_back(0);
  out.push_back(0);
  u32(17);  // greyscale: what the palette would make of it
  u32(pclr);
  tag("pclr");
  u16(256);          // entries
  out.push_back(1);  // one column
  out.push_back(7);  // 8-bit
  for (int i = 0; i < 256; ++i) out.push_back(static_cast<std::uint8_t>(i));
  u32(cmap);
  tag("cmap");
  u16(0);            // component 0
  out.push_back(1);  // through the palette
  out.push_back(0);  // column 0
  u32(static_cast<std::uint32_t>(8 + codestream.size()));
  tag("jp2c");
  out.insert(out.end(), codestream.begin(), codestream.end());
  return out;
}

TEST(Jpeg2000, Jp2PaletteBoxesCannotChangeTheComponentCount) {
  const Layout l{24, 20, 3, 8, 8, false, "RGB"};
  const Frames source = pattern(l, 1);
  const auto stream = jp2_with_palette(l, j2k_frame(l, source[0], dicom::j2k::Wavelet::reversible,
                                                    dicom::j2k::ColourTransform::none));
  auto frame = dicom::j2k::decode(stream, dicom::j2k::Expected{l.width, l.height, 3, 8});
  if (frame.has_value()) {
    EXPECT_EQ(frame->components, 3u);
    ASSERT_EQ(frame->samples.size(), std::size_t{l.width} * l.height * 3);
  } else {
    EXPECT_EQ(frame.error().code, ErrorCode::malformed_dicom);
  }
  TempDir dir;
  auto object = make_image(l, source);
  encapsulate(*object, EXS_JPEG2000LosslessOnly, {stream}, OffsetTable::empty, Split::no);
  save_as_is(*object, dir / "palette.dcm", EXS_JPEG2000LosslessOnly);
  auto file = open_or_die(dir / "palette.dcm");
  auto image = dicom::decode_pixels(file);
  if (image.has_value()) {
    ASSERT_EQ(image->frames.size(), 1u);
    EXPECT_EQ(image->frames[0].size(), image->samples_per_frame());
    EXPECT_EQ(image->frames, source);  // the palette was ignored
  } else {
    EXPECT_EQ(image.error().code, ErrorCode::malformed_dicom);
  }
}

TEST(Pixels, HugeDeclaredImagesAreRefusedBeforeDecoding) {
  TempDir dir;
  const Layout l{40, 36, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 1);
  // A few bytes of JPEG 2000 declaring 65535 x 65535 x 3 per frame.
  auto j2k = make_image(l, source);
  encapsulate(
      *j2k, EXS_JPEG2000LosslessOnly,
      {j2k_frame(l, source[0], dicom::j2k::Wavelet::reversible, dicom::j2k::ColourTransform::none)},
      OffsetTable::empty, Split::no);
  DcmDataset& d = *j2k->getDataset();
  d.putAndInsertUint16(DCM_Rows, 65535);
  d.putAndInsertUint16(DCM_Columns, 65535);
  d.putAndInsertUint16(DCM_SamplesPerPixel, 3);
  d.putAndInsertString(DCM_PhotometricInterpretation, "RGB");
  d.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  save_as_is(*j2k, dir / "j2k.dcm", EXS_JPEG2000LosslessOnly);
  auto file = open_or_die(dir / "j2k.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_FALSE(image.has_value());
  EXPECT_EQ(image.error().code, ErrorCode::unsupported);
  EXPECT_NE(image.error().message.find("too large"), std::string::npos) << image.error().message;
  // Lossy JPEG (DCMTK's decoder): each frame fits, all frames together do not.
  auto jpeg = make_image(l, source);
  save(*jpeg, dir / "small.dcm", EXS_JPEGProcess1);
  auto many = load(dir / "small.dcm");
  many->getDataset()->putAndInsertUint16(DCM_Rows, 16384);
  many->getDataset()->putAndInsertUint16(DCM_Columns, 16384);
  many->getDataset()->putAndInsertString(DCM_NumberOfFrames, "9");
  save_as_is(*many, dir / "many.dcm", EXS_JPEGProcess1);
  auto frames = open_or_die(dir / "many.dcm");
  auto decoded = dicom::decode_pixels(frames);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code, ErrorCode::unsupported);
}

// ---- lossy JPEG: block blanking

// Baseline JPEG of one 8-bit frame with libjpeg; colour is stored YCbCr with the luma
// sampling factors given (2x2 = 4:2:0).
std::vector<std::uint8_t> libjpeg_frame(const Layout& l, const std::vector<std::uint16_t>& frame,
                                        int h_samp, int v_samp, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = l.width;
  cinfo.image_height = l.height;
  cinfo.input_components = static_cast<int>(l.samples);
  cinfo.in_color_space = l.samples == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  cinfo.comp_info[0].h_samp_factor = h_samp;
  cinfo.comp_info[0].v_samp_factor = v_samp;
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<JSAMPLE> row(static_cast<std::size_t>(l.width) * l.samples);
  while (cinfo.next_scanline < cinfo.image_height) {
    const std::size_t start = static_cast<std::size_t>(cinfo.next_scanline) * row.size();
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<JSAMPLE>(frame[start + i]);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

enum class JpegSource { dcmtk, libjpeg };

struct JpegCase {
  const char* name;
  Layout layout;
  JpegSource source;
  int h_samp, v_samp;  // libjpeg only
  std::size_t frames;
  unsigned block_width, block_height;  // the MCU
};

class JpegBlockBlanking : public ::testing::TestWithParam<JpegCase> {};

TEST_P(JpegBlockBlanking, BlanksWholeBlocksAndLeavesTheRestAsItWas) {
  const JpegCase& c = GetParam();
  const Layout& l = c.layout;
  TempDir dir;
  const Frames source = pattern(l, c.frames);
  auto object = make_image(l, source);
  if (c.source == JpegSource::dcmtk) {
    save(*object, dir / "in.dcm", EXS_JPEGProcess1);
  } else {
    std::vector<std::vector<std::uint8_t>> streams;
    for (const auto& frame : source)
      streams.push_back(libjpeg_frame(l, frame, c.h_samp, c.v_samp, 85));
    if (l.samples == 3)
      object->getDataset()->putAndInsertString(DCM_PhotometricInterpretation, "YBR_FULL_422");
    encapsulate(*object, EXS_JPEGProcess1, streams, OffsetTable::filled, Split::no);
    save_as_is(*object, dir / "in.dcm", EXS_JPEGProcess1);
  }

  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  ASSERT_EQ(image->frames.size(), c.frames);
  EXPECT_EQ(image->samples, l.samples);
  double error = 0;
  for (std::size_t f = 0; f < c.frames; ++f)
    for (std::size_t i = 0; i < source[f].size(); ++i)
      error += std::abs(int(image->frames[f][i]) - int(source[f][i]));
  EXPECT_LT(error / (static_cast<double>(c.frames * source[0].size())), 16.0);

  const std::size_t changed = c.frames > 1 ? 1 : 0;
  dicom::PixelImage edited = *image;
  const Box box{13, 9, 30, 21};
  fill_box(edited, changed, box, 0);
  auto outcome = dicom::encode_pixels(file, edited);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::original);
  ASSERT_EQ(outcome->method, dicom::WriteMethod::blocks_blanked);
  EXPECT_EQ(outcome->frames_rewritten, 1u);
  EXPECT_EQ(outcome->block_width, c.block_width);
  EXPECT_EQ(outcome->block_height, c.block_height);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());

  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.4.50");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  // The blanked area: the box rounded out to whole MCUs.
  const unsigned bw = c.block_width, bh = c.block_height;
  const Box blanked{box.x0 / bw * bw, box.y0 / bh * bh,
                    std::min(l.width, (box.x1 + bw - 1) / bw * bw),
                    std::min(l.height, (box.y1 + bh - 1) / bh * bh)};
  // Chroma upsampling blends neighbouring chroma samples: one pixel on either side of the
  // border of subsampled MCUs.
  const unsigned bleed = c.block_width > 8 || c.block_height > 8 ? 1 : 0;
  const Box reach{blanked.x0 - std::min(blanked.x0, bleed),
                  blanked.y0 - std::min(blanked.y0, bleed), blanked.x1 + bleed, blanked.y1 + bleed};
  const Box inner{blanked.x0 + bleed, blanked.y0 + bleed, blanked.x1 - bleed, blanked.y1 - bleed};
  EXPECT_EQ(outcome->blocks_blanked, std::size_t{(blanked.x1 - blanked.x0 + bw - 1) / bw} *
                                         ((blanked.y1 - blanked.y0 + bh - 1) / bh));
  std::size_t outside_changed = 0, inside_not_black = 0;
  for (std::size_t f = 0; f < c.frames; ++f)
    for (unsigned y = 0; y < l.height; ++y)
      for (unsigned x = 0; x < l.width; ++x)
        for (unsigned s = 0; s < l.samples; ++s) {
          const std::size_t i = (static_cast<std::size_t>(y) * l.width + x) * l.samples + s;
          const bool in_frame = f == changed;
          if (in_frame && blanked.contains(x, y)) {
            if (inner.contains(x, y) && back->frames[f][i] > 2) ++inside_not_black;
          } else if (!in_frame || !reach.contains(x, y)) {
            if (back->frames[f][i] != image->frames[f][i]) ++outside_changed;
          }
        }
  EXPECT_EQ(inside_not_black, 0u);
  EXPECT_EQ(outside_changed, 0u);

  const auto before = fragments_of(dir / "in.dcm");
  const auto after = fragments_of(dir / "out.dcm");
  ASSERT_EQ(before.size(), c.frames);
  ASSERT_EQ(after.size(), c.frames);
  for (std::size_t f = 0; f < c.frames; ++f) {
    if (f == changed) {
      EXPECT_NE(after[f], before[f]);
    } else {
      EXPECT_EQ(after[f], before[f]) << "frame " << f;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Generated, JpegBlockBlanking,
    ::testing::Values(
        JpegCase{
            "GreyDcmtk", {50, 37, 1, 8, 8, false, "MONOCHROME2"}, JpegSource::dcmtk, 1, 1, 3, 8, 8},
        // DCMTK writes lossy colour as YBR_FULL_422 (4:2:2).
        JpegCase{"ColourDcmtk", {50, 37, 3, 8, 8, false, "RGB"}, JpegSource::dcmtk, 1, 1, 2, 16, 8},
        JpegCase{"GreyLibjpegSingleFrame",
                 {50, 37, 1, 8, 8, false, "MONOCHROME2"},
                 JpegSource::libjpeg,
                 1,
                 1,
                 1,
                 8,
                 8},
        JpegCase{"Colour420Libjpeg",
                 {50, 37, 3, 8, 8, false, "RGB"},
                 JpegSource::libjpeg,
                 2,
                 2,
                 2,
                 16,
                 16},
        JpegCase{"Colour422Libjpeg",
                 {50, 37, 3, 8, 8, false, "RGB"},
                 JpegSource::libjpeg,
                 2,
                 1,
                 3,
                 16,
                 8}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(JpegBlockBlanking, EightBitExtendedJpegKeepsItsSyntaxToo) {
  TempDir dir;
  const Layout l{48, 32, 1, 8, 8, false, "MONOCHROME2"};
  auto object = make_image(l, pattern(l, 2));
  save(*object, dir / "in.dcm", EXS_JPEGProcess2_4);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  const auto before = *image;
  fill_box(*image, 0, Box{8, 8, 16, 16}, 0);  // exactly one block
  auto outcome = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(outcome.has_value()) << outcome.error().message;
  EXPECT_EQ(outcome->method, dicom::WriteMethod::blocks_blanked);
  EXPECT_EQ(outcome->blocks_blanked, 1u);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  EXPECT_EQ(reread.transfer_syntax_uid(), "1.2.840.10008.1.2.4.51");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  for (unsigned y = 0; y < l.height; ++y)
    for (unsigned x = 0; x < l.width; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * l.width + x;
      if (Box{8, 8, 16, 16}.contains(x, y)) {
        EXPECT_LE(back->frames[0][i], 2) << x << "," << y;
      } else {
        ASSERT_EQ(back->frames[0][i], before.frames[0][i]) << x << "," << y;
      }
    }
  EXPECT_EQ(back->frames[1], before.frames[1]);
}

TEST(JpegBlockBlanking, CorruptJpegFallsBackInsteadOfExiting) {
  TempDir dir;
  const Layout l{32, 16, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 1);
  auto object = make_image(l, source);
  save(*object, dir / "in.dcm", EXS_JPEGProcess1);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value());
  // A stream that is not a JPEG of this geometry: libjpeg must report, not exit().
  std::vector<std::uint8_t> junk = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x02, 0x12, 0x34};
  dicom::jpeg::BlankRequest request;
  request.width = l.width;
  request.height = l.height;
  request.before = image->frames[0];
  request.after = image->frames[0];
  auto blanked = dicom::jpeg::blank_blocks(junk, request);
  ASSERT_FALSE(blanked.has_value());
  EXPECT_EQ(blanked.error().code, ErrorCode::malformed_dicom);
}

TEST(JpegBlockBlanking, TruncatedFrameIsAFailureNotAWarning) {
  const Layout l{48, 32, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 1);
  const auto whole = libjpeg_frame(l, source[0], 1, 1, 85);
  const std::vector<std::uint8_t> truncated(
      whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() * 2 / 3));
  std::vector<std::uint16_t> after = source[0];
  for (std::size_t i = 0; i < 8; ++i) after[i] = 0;
  dicom::jpeg::BlankRequest request;
  request.width = l.width;
  request.height = l.height;
  request.before = source[0];
  request.after = after;
  EXPECT_TRUE(dicom::jpeg::blank_blocks(whole, request).has_value());
  auto blanked = dicom::jpeg::blank_blocks(truncated, request);
  ASSERT_FALSE(blanked.has_value());
  EXPECT_EQ(blanked.error().code, ErrorCode::malformed_dicom);
}

// Two frames in three items; the offset table puts the second item (the rest of frame 1)
// into frame 2. Blanking must not rewrite half a frame and copy the other half (the part with
// the redacted pixels) unchanged.
TEST(JpegBlockBlanking, OffsetTableSplittingAFrameFallsBackToUncompressed) {
  TempDir dir;
  const Layout l{48, 32, 1, 8, 8, false, "MONOCHROME2"};
  const Frames source = pattern(l, 2);
  auto object = make_image(l, source);
  auto first = libjpeg_frame(l, source[0], 1, 1, 85);
  auto second = libjpeg_frame(l, source[1], 1, 1, 85);
  if (first.size() % 2 != 0) first.push_back(0);
  if (second.size() % 2 != 0) second.push_back(0);
  const std::size_t half = first.size() / 4 * 2;
  const std::vector<std::vector<std::uint8_t>> items = {
      {first.begin(), first.begin() + static_cast<std::ptrdiff_t>(half)},
      {first.begin() + static_cast<std::ptrdiff_t>(half), first.end()},
      second};
  auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
  const std::uint32_t offsets[2] = {0, static_cast<std::uint32_t>(8 + half)};
  std::vector<Uint8> table;
  for (const std::uint32_t offset : offsets)
    for (int shift = 0; shift < 32; shift += 8)
      table.push_back(static_cast<Uint8>((offset >> shift) & 0xFF));
  auto* bot = new DcmPixelItem(DCM_PixelItemTag);
  bot->putUint8Array(table.data(), static_cast<unsigned long>(table.size()));
  sequence->insert(bot);
  for (const auto& bytes : items) {
    auto* item = new DcmPixelItem(DCM_PixelItemTag);
    item->putUint8Array(bytes.data(), static_cast<unsigned long>(bytes.size()));
    sequence->insert(item);
  }
  auto* pixel = new DcmPixelData(DCM_PixelData);
  pixel->putOriginalRepresentation(EXS_JPEGProcess1, nullptr, sequence);
  object->getDataset()->findAndDeleteElement(DCM_PixelData);
  object->getDataset()->insert(pixel);
  save_as_is(*object, dir / "in.dcm", EXS_JPEGProcess1);

  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  if (!image.has_value()) GTEST_SKIP() << "DCMTK does not decode it: " << image.error().message;
  const Box box{0, 16, 48, 32};  // in the second half of frame 1's data
  fill_box(*image, 0, box, 0);
  auto outcome = dicom::encode_pixels(file, *image);
  if (!outcome.has_value()) return;  // refusing is safe too
  EXPECT_NE(outcome->method, dicom::WriteMethod::blocks_blanked);
  ASSERT_TRUE(file.save(dir / "out.dcm", {"1.2.3", "TEST"}).has_value());
  auto reread = open_or_die(dir / "out.dcm");
  auto back = dicom::decode_pixels(reread);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  for (unsigned y = box.y0; y < box.y1; ++y)
    for (unsigned x = box.x0; x < box.x1; ++x)
      ASSERT_EQ(back->frames[0][static_cast<std::size_t>(y) * l.width + x], 0) << x << "," << y;
}

}  // namespace
}  // namespace radguard
