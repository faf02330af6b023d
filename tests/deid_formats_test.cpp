// Encodings seen in practice pass through with their pixel data bit-identical, and broken
// files fail with a clear reason, no output and no allocation of what they claim to hold.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <fstream>
#include <regex>

#include "dicom/dicom_file.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::deidentify;
using testing::exists;
using testing::load;
using testing::make_ct;
using testing::pixel_bytes;
using testing::save;
using testing::TempDir;
using testing::value;

void expect_passes_through(const std::filesystem::path& input,
                           const std::filesystem::path& out_root) {
  auto original = load(input);
  const E_TransferSyntax xfer = original->getDataset()->getOriginalXfer();
  const std::string pixels = pixel_bytes(*original);
  const auto result = deidentify(input, out_root, "research");
  ASSERT_TRUE(result.output.has_value()) << input << ": " << result.error;
  auto out = load(*result.output);
  EXPECT_EQ(out->getDataset()->getOriginalXfer(), xfer) << input;
  OFString meta_xfer;
  out->getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, meta_xfer);
  EXPECT_EQ(std::string(meta_xfer.c_str()), DcmXfer(xfer).getXferID());
  EXPECT_FALSE(pixels.empty()) << input;
  EXPECT_TRUE(pixel_bytes(*out) == pixels) << input << ": pixel data changed";
  EXPECT_EQ(value(*out, "PatientIdentityRemoved"), "YES");
}

struct Encoding {
  const char* name;
  E_TransferSyntax xfer;
  unsigned frames;
};

class DeidEncodings : public ::testing::TestWithParam<Encoding> {};

TEST_P(DeidEncodings, PixelDataAndTransferSyntaxAreUnchanged) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 32, 32, GetParam().frames);
  const auto input = dir / "in.dcm";
  save(*ct, input, GetParam().xfer);
  expect_passes_through(input, dir / "out");
}

INSTANTIATE_TEST_SUITE_P(
    Generated, DeidEncodings,
    ::testing::Values(Encoding{"ImplicitLittle", EXS_LittleEndianImplicit, 1},
                      Encoding{"ExplicitLittle", EXS_LittleEndianExplicit, 1},
                      Encoding{"ExplicitBig", EXS_BigEndianExplicit, 1},
                      Encoding{"Deflated", EXS_DeflatedLittleEndianExplicit, 1},
                      Encoding{"Rle", EXS_RLELossless, 1},
                      Encoding{"RleMultiFrame", EXS_RLELossless, 3},
                      Encoding{"JpegLossless", EXS_JPEGProcess14SV1, 1},
                      Encoding{"JpegLsLossless", EXS_JPEGLSLossless, 2},
                      Encoding{"MultiFrameNative", EXS_LittleEndianExplicit, 4}),
    [](const ::testing::TestParamInfo<Encoding>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(DeidRealFiles, VendorSamplesPassThrough) {
  // Real files from Debian's python3-pydicom (see tests/data/README.md).
  int tested = 0;
  for (const char* name :
       {"JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "image_dfl.dcm",
        "SC_rgb_rle_2frame.dcm", "CT_small.dcm", "JPEG-lossy.dcm",
        "SC_ybr_full_422_uncompressed.dcm", "emri_small_jpeg_2k_lossless.dcm"}) {
    const auto sample = testing::pydicom_sample(name);
    if (sample.empty()) continue;
    TempDir dir;
    expect_passes_through(sample, dir / "out");
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "python3-pydicom samples not installed";
}

// Every escape sequence in a value is one of those PS3.3 C.12.1.1.2 defines, complete.
bool escape_sequences_are_whole(const std::string& text) {
  static const std::regex kKnown("^\x1b(\\(B|\\(J|\\)I|\\$B|\\$\\(D|\\$\\)C|\\$\\)A|-[A-Z])");
  for (std::size_t pos = text.find('\x1b'); pos != std::string::npos;
       pos = text.find('\x1b', pos + 1)) {
    if (!std::regex_search(text.substr(pos, 4), kKnown)) return false;
  }
  return true;
}

TEST(DeidRealFiles, CleanedFreeTextStaysValidInEveryCharacterSet) {
  // pydicom's character set samples, de-identified with Clean Descriptors: Additional
  // Patient History holds the patient's name in Japanese (ISO 2022 IR 87) or Korean
  // (ISO 2022 IR 149). The scrubber used to cut it inside its escape sequence ("ESC $ *"),
  // which no reader can decode.
  const fs::path folder = "/usr/lib/python3/dist-packages/pydicom/data/charset_files";
  if (!fs::exists(folder)) GTEST_SKIP() << "python3-pydicom samples not installed";
  for (const char* name :
       {"chrJapMulti.dcm", "chrJapMultiExplicitIR6.dcm", "chrKoreanMulti.dcm", "chrH31.dcm",
        "chrH32.dcm", "chrX1.dcm", "chrX2.dcm", "chrSQEncoding.dcm", "chrSQEncoding1.dcm",
        "chrFrenMulti.dcm", "chrRuss.dcm", "chrArab.dcm"}) {
    TempDir dir;
    const auto result =
        deidentify(folder / name, dir / "out", "research", {"clean-structured-content"});
    ASSERT_TRUE(result.output.has_value()) << name << ": " << result.error;
    auto out = load(*result.output);
    auto in = load(folder / name);
    EXPECT_EQ(value(*out, "SpecificCharacterSet"), value(*in, "SpecificCharacterSet")) << name;
    if (exists(*in, "AdditionalPatientHistory")) {
      EXPECT_EQ(value(*out, "AdditionalPatientHistory"), "*") << name;
    }
    DcmStack stack;
    while (out->getDataset()->nextObject(stack, OFTrue).good()) {
      auto* element = dynamic_cast<DcmElement*>(stack.top());
      if (element == nullptr || !element->isaString()) continue;
      OFString text;
      element->getOFStringArray(text);
      EXPECT_TRUE(escape_sequences_are_whole(text.c_str()))
          << name << " " << element->getTag().toString() << " holds a broken escape sequence";
    }
  }
}

TEST(DeidRealFiles, MetaHeaderNamesTheSopClassOfAnAttributeStoredAsUn) {
  // pydicom's rtdose_rle.dcm stores SOP Class UID and SOP Instance UID with VR UN. The meta
  // header was filled from DCMTK's printout of the bytes ("31\2e\32...", read as "31").
  const auto sample = testing::pydicom_sample("rtdose_rle.dcm");
  if (sample.empty()) GTEST_SKIP() << "python3-pydicom samples not installed";
  for (const char* option : {"retain-safe-private", "retain-uids"}) {
    TempDir dir;
    const auto result = deidentify(sample, dir / "out", "basic", {option});
    ASSERT_TRUE(result.output.has_value()) << result.error;
    auto file = dicom::DicomFile::open(*result.output);
    ASSERT_TRUE(file.has_value());
    EXPECT_EQ(file->string_of(Tag{0x0002, 0x0002}), "1.2.840.10008.5.1.4.1.1.481.2") << option;
    EXPECT_EQ(file->string_of(Tag{0x0002, 0x0003}), file->string_of(Tag{0x0008, 0x0018})) << option;
  }
}

TEST(DeidSequences, UndefinedAndExplicitLengthSequencesBothWork) {
  for (const E_EncodingType encoding : {EET_UndefinedLength, EET_ExplicitLength}) {
    TempDir dir;
    auto ct = make_ct();
    DcmItem* outer = nullptr;
    ct->getDataset()->findOrCreateSequenceItem(DCM_ReferencedSeriesSequence, outer, 0);
    outer->putAndInsertString(DCM_SeriesInstanceUID, "1.2.3.99");
    DcmItem* inner = nullptr;
    outer->findOrCreateSequenceItem(DCM_ReferencedInstanceSequence, inner, 0);
    inner->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
    inner->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.3.100");
    save(*ct, dir / "in.dcm", EXS_LittleEndianImplicit, encoding);
    const auto result = deidentify(dir / "in.dcm", dir / "out", "basic");
    ASSERT_TRUE(result.output) << result.error;
    auto out = load(*result.output);
    const pseudonym::Pseudonymizer p(testing::test_key());
    EXPECT_EQ(value(*out, "ReferencedSeriesSequence[0].SeriesInstanceUID"), p.uid("1.2.3.99"));
    EXPECT_EQ(
        value(*out,
              "ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID"),
        p.uid("1.2.3.100"));
  }
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// An explicit VR little endian element header with a 4-byte length.
std::string long_element(Uint16 group, Uint16 element, const char* vr, Uint32 length) {
  std::string h;
  h += static_cast<char>(group & 0xFF);
  h += static_cast<char>(group >> 8);
  h += static_cast<char>(element & 0xFF);
  h += static_cast<char>(element >> 8);
  h += vr;
  h += std::string(2, '\0');
  for (int i = 0; i < 4; ++i) h += static_cast<char>((length >> (8 * i)) & 0xFF);
  return h;
}

class DeidMalformed : public ::testing::Test {
 protected:
  void expect_rejected(const std::filesystem::path& input, const std::string& reason_part = "") {
    const auto result = deidentify(input, dir_ / "out", "basic");
    EXPECT_FALSE(result.output.has_value()) << input;
    EXPECT_EQ(result.status, deid::FileStatus::failed);
    EXPECT_FALSE(result.error.empty());
    EXPECT_NE(result.error.find(reason_part), std::string::npos) << result.error;
    std::error_code ec;
    const bool nothing_written =
        !std::filesystem::exists(dir_ / "out", ec) ||
        std::distance(std::filesystem::recursive_directory_iterator(dir_ / "out"),
                      std::filesystem::recursive_directory_iterator()) == 0 ||
        [&] {
          for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ / "out"))
            if (e.is_regular_file()) return false;
          return true;
        }();
    EXPECT_TRUE(nothing_written) << "a rejected input left output behind";
  }
  TempDir dir_;
};

TEST_F(DeidMalformed, TruncatedFileIsRejected) {
  auto ct = make_ct("PID1", "1.2.3", 64, 64);
  save(*ct, dir_ / "full.dcm");
  const std::string bytes = read_all(dir_ / "full.dcm");
  write_all(dir_ / "truncated.dcm", bytes.substr(0, bytes.size() / 2));
  expect_rejected(dir_ / "truncated.dcm");
  write_all(dir_ / "header_only.dcm", bytes.substr(0, 140));
  expect_rejected(dir_ / "header_only.dcm");
}

TEST_F(DeidMalformed, ElementLongerThanTheFileIsRejectedWithoutAllocatingIt) {
  auto ct = make_ct();
  std::unique_ptr<DcmElement> pixels(ct->getDataset()->remove(DCM_PixelData));
  save(*ct, dir_ / "base.dcm");
  // 1.3 GB declared, 64 bytes present.
  const std::string liar = read_all(dir_ / "base.dcm") +
                           long_element(0x7FE0, 0x0010, "OB", 0x50000000U) +
                           std::string(64, '\x01');
  write_all(dir_ / "liar.dcm", liar);
  const long before = peak_rss_kb();
  expect_rejected(dir_ / "liar.dcm",
                  "declares more bytes than the file holds (last element "
                  "read: (7FE0,0010))");
  EXPECT_LT(peak_rss_kb() - before, 256 * 1024) << "memory grew with the declared length";
}

TEST_F(DeidMalformed, WrongShortLengthIsRejected) {
  auto ct = make_ct();
  std::unique_ptr<DcmElement> pixels(ct->getDataset()->remove(DCM_PixelData));
  save(*ct, dir_ / "base.dcm");
  // (0040,A160) UT says 4000 bytes; the file ends after 10.
  write_all(dir_ / "short.dcm",
            read_all(dir_ / "base.dcm") + long_element(0x0040, 0xA160, "UT", 4000) + "0123456789");
  expect_rejected(dir_ / "short.dcm", "invalid stream");
}

TEST_F(DeidMalformed, NotDicomIsSkippedNotFailed) {
  write_all(dir_ / "notes.txt",
            "Patient John Doe, this is not DICOM at all, just some text for sure.");
  const auto result = deidentify(dir_ / "notes.txt", dir_ / "out", "basic");
  EXPECT_EQ(result.status, deid::FileStatus::skipped_not_dicom);
}

TEST(DicomFile, OpenReportsTheReasonWithoutValues) {
  TempDir dir;
  auto ct = make_ct();
  save(*ct, dir / "ok.dcm");
  std::string bytes = read_all(dir / "ok.dcm");
  write_all(dir / "cut.dcm", bytes.substr(0, bytes.size() - 100));
  auto opened = dicom::DicomFile::open(dir / "cut.dcm");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::malformed_dicom);
  EXPECT_EQ(opened.error().message.find("DOE"), std::string::npos);
}

// A device or a FIFO given as an input is refused by its type before it is opened: opening
// a device can have side effects (a tape rewinds), and opening a FIFO blocks until a writer
// comes (this test would hang).
TEST(DicomFile, ADeviceOrAFifoIsRefusedBeforeItIsOpened) {
  TempDir dir;
  const fs::path fifo = dir / "input.dcm";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const fs::path& input : {fs::path("/dev/null"), fifo}) {
    auto opened = dicom::DicomFile::open(input);
    ASSERT_FALSE(opened) << input;
    EXPECT_EQ(opened.error().code, ErrorCode::io) << input;
    EXPECT_EQ(opened.error().message, "not a readable file") << input;
  }
}

}  // namespace
}  // namespace radguard
