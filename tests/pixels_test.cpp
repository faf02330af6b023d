// Pixel decoding and lossless write-back across transfer syntaxes and photometric
// interpretations: decoded values match what was encoded, a changed frame comes back changed
// and every other pixel comes back unchanged.
#include "dicom/pixels.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "support/fixtures.hpp"

namespace radguard {
namespace {

using testing::load;
using testing::make_ct;
using testing::pixel_bytes;
using testing::save;
using testing::TempDir;

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

TEST(Pixels, LossyJpegIsWrittenExplicitLittleEndian) {
  TempDir dir;
  auto source = make_colour("MONOCHROME2", 0);
  save(*source, dir / "in.dcm", EXS_JPEGProcess1);
  auto file = open_or_die(dir / "in.dcm");
  auto image = dicom::decode_pixels(file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  auto outcome = dicom::encode_pixels(file, *image);
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->syntax, dicom::WrittenSyntax::explicit_little_fallback);
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

TEST(Pixels, Jpeg2000IsReportedUnsupported) {
  EXPECT_FALSE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.4.90"));
  EXPECT_FALSE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.4.91"));
  EXPECT_TRUE(dicom::can_decode_transfer_syntax("1.2.840.10008.1.2.5"));
}

}  // namespace
}  // namespace radguard
