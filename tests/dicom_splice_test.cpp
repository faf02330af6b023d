// Splicing an untouched Pixel Data value (DicomFile::save copies it from the input with
// copy_file_range after DCMTK writes the rest) gives exactly the bytes DCMTK writes itself,
// on third-party files of every transfer syntax they come in; a splice that cannot copy the
// whole value fails the save. The check is independent of the splice: DCMTK's own writer,
// forced with PixelCopy::through_dcmtk, gives the expected bytes. Synthetic files built here
// cover each kind the splice takes and each reason it refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <functional>
#include <set>

#include <dcmtk/dcmdata/dcdeftag.h>

#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::make_ct;
using testing::save;
using testing::TempDir;

const dicom::MetaIdentity kMeta{"1.2.826.0.1.3680043.10.1234", "RADGUARD_TEST"};

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Saves `input` as opened, with the pixel copy given; empty when it cannot be opened or saved.
std::optional<std::string> saved_bytes(const fs::path& input, const fs::path& output,
                                       dicom::PixelCopy mode) {
  dicom::set_pixel_copy_for_testing(mode);
  auto file = dicom::DicomFile::open(input);
  std::optional<std::string> bytes;
  if (file && file->save(output, kMeta)) bytes = read_all(output);
  dicom::set_pixel_copy_for_testing(dicom::PixelCopy::splice_when_safe);
  return bytes;
}

std::vector<fs::path> third_party_files() {
  std::vector<fs::path> files;
  for (const char* folder : {"/usr/lib/python3/dist-packages/pydicom/data/test_files",
                             "/usr/lib/python3/dist-packages/pydicom/data/charset_files"}) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(DicomSplice, SplicedOutputsAreTheBytesDcmtkWritesOnThirdPartyFiles) {
  const auto files = third_party_files();
  if (files.empty()) GTEST_SKIP() << "pydicom's test files are not installed";
  TempDir dir;
  std::map<std::string, int> spliced_by_syntax;
  int compared = 0;
  for (const auto& input : files) {
    const auto through_dcmtk =
        saved_bytes(input, dir.path() / "dcmtk.dcm", dicom::PixelCopy::through_dcmtk);
    const std::uint64_t before = dicom::spliced_pixel_values();
    const auto spliced =
        saved_bytes(input, dir.path() / "splice.dcm", dicom::PixelCopy::splice_when_safe);
    ASSERT_EQ(spliced.has_value(), through_dcmtk.has_value()) << input;
    if (!spliced) continue;
    ++compared;
    EXPECT_TRUE(*spliced == *through_dcmtk) << input << ": the spliced output differs";
    if (dicom::spliced_pixel_values() != before) {
      auto file = dicom::DicomFile::open(input);
      ASSERT_TRUE(file.has_value());
      ++spliced_by_syntax[file->transfer_syntax_uid()];
    }
  }
  EXPECT_GT(compared, 40);
  // Both syntaxes the splice takes are seen (implicit and explicit VR little endian; with
  // pydicom 2.3's files: 3 implicit and 3 explicit, the rest in other syntaxes or with pixel
  // data under 4 KB).
  for (const auto& [syntax, count] : spliced_by_syntax)
    std::cout << "spliced in " << syntax << ": " << count << " of " << compared << " files\n";
  EXPECT_GE(spliced_by_syntax["1.2.840.10008.1.2"], 3);
  EXPECT_GE(spliced_by_syntax["1.2.840.10008.1.2.1"], 3);
}

TEST(DicomSplice, AFileSavedTwiceGivesTheSameBytesAndIsStillWhole) {
  TempDir dir;
  const fs::path input = dir.path() / "ct.dcm";
  save(*make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.1", 64, 64), input);  // 8 KB of pixels: left on the input
  const std::uint64_t before = dicom::spliced_pixel_values();
  auto file = dicom::DicomFile::open(input);
  ASSERT_TRUE(file.has_value());
  ASSERT_TRUE(file->save(dir.path() / "a.dcm", kMeta));
  ASSERT_TRUE(file->save(dir.path() / "b.dcm", kMeta));
  EXPECT_EQ(dicom::spliced_pixel_values(), before + 2);
  EXPECT_EQ(read_all(dir.path() / "a.dcm"), read_all(dir.path() / "b.dcm"));
  const auto reference =
      saved_bytes(input, dir.path() / "c.dcm", dicom::PixelCopy::through_dcmtk);
  ASSERT_TRUE(reference.has_value());
  EXPECT_EQ(read_all(dir.path() / "a.dcm"), *reference);
}

TEST(DicomSplice, AnInputReplacedAfterTheLoadFailsTheSaveAndWritesNothing) {
  TempDir dir;
  const fs::path input = dir.path() / "ct.dcm";
  save(*make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.1", 64, 64), input);
  // The same bytes under another inode: only the identity differs.
  fs::copy_file(input, dir.path() / "other.dcm");
  auto file = dicom::DicomFile::open(input);
  ASSERT_TRUE(file.has_value());
  fs::rename(dir.path() / "other.dcm", input);
  const fs::path output = dir.path() / "out.dcm";
  const auto saved = file->save(output, kMeta);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::io);
  EXPECT_NE(saved.error().message.find("the input changed after it was read"), std::string::npos)
      << saved.error().message;
  EXPECT_FALSE(fs::exists(output));
}

// Synthetic inputs, built with DCMTK here, one per case the splice takes and one per reason
// it refuses; each is saved both ways and compared byte for byte.
enum class Depth { bits8, bits16 };

std::unique_ptr<DcmFileFormat> synthetic(Depth depth, unsigned frames) {
  // 64x96 pixels: 6 KB at 8 bits, 12 KB at 16, over the size the load leaves on the file.
  auto ct = make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.7", 64, 96, frames);
  if (depth == Depth::bits8) {
    DcmDataset& d = *ct->getDataset();
    d.putAndInsertUint16(DCM_BitsAllocated, 8);
    d.putAndInsertUint16(DCM_BitsStored, 8);
    d.putAndInsertUint16(DCM_HighBit, 7);
    d.putAndInsertUint16(DCM_PixelRepresentation, 0);
    std::vector<Uint8> pixels(static_cast<std::size_t>(64) * 96 * frames);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<Uint8>(i * 7);
    d.putAndInsertUint8Array(DCM_PixelData, pixels.data(),
                             static_cast<unsigned long>(pixels.size()));
  }
  return ct;
}

struct Saved {
  std::string bytes;
  bool spliced = false;
};

// Opens `input`, applies `change`, saves with the pixel copy given.
std::optional<Saved> save_changed(const fs::path& input, const fs::path& output,
                                  dicom::PixelCopy mode,
                                  const std::function<void(dicom::DicomFile&)>& change) {
  dicom::set_pixel_copy_for_testing(mode);
  auto file = dicom::DicomFile::open(input);
  std::optional<Saved> saved;
  if (file) {
    change(*file);
    const std::uint64_t before = dicom::spliced_pixel_values();
    if (file->save(output, kMeta))
      saved = Saved{read_all(output), dicom::spliced_pixel_values() != before};
  }
  dicom::set_pixel_copy_for_testing(dicom::PixelCopy::splice_when_safe);
  return saved;
}

enum class Expect { spliced, refused };

void compare_both_ways(const fs::path& input, Expect expect,
                       const std::function<void(dicom::DicomFile&)>& change =
                           [](dicom::DicomFile&) {}) {
  const fs::path dir = input.parent_path();
  const auto reference =
      save_changed(input, dir / "dcmtk.dcm", dicom::PixelCopy::through_dcmtk, change);
  const auto tried =
      save_changed(input, dir / "splice.dcm", dicom::PixelCopy::splice_when_safe, change);
  ASSERT_TRUE(reference.has_value()) << input;
  ASSERT_TRUE(tried.has_value()) << input;
  EXPECT_FALSE(reference->spliced);
  EXPECT_EQ(tried->spliced, expect == Expect::spliced) << input;
  EXPECT_TRUE(tried->bytes == reference->bytes) << input << ": the outputs differ";
}

TEST(DicomSplice, SyntheticFilesOfEverySpliceableKindGiveDcmtksBytes) {
  TempDir dir;
  struct Case {
    const char* name;
    E_TransferSyntax xfer;
    Depth depth;
    unsigned frames;
  };
  const Case cases[] = {
      {"explicit-ob-8.dcm", EXS_LittleEndianExplicit, Depth::bits8, 1},
      {"explicit-ow-16.dcm", EXS_LittleEndianExplicit, Depth::bits16, 1},
      {"implicit-8.dcm", EXS_LittleEndianImplicit, Depth::bits8, 1},
      {"implicit-16.dcm", EXS_LittleEndianImplicit, Depth::bits16, 1},
      {"explicit-16-frames.dcm", EXS_LittleEndianExplicit, Depth::bits16, 3},
      {"implicit-8-frames.dcm", EXS_LittleEndianImplicit, Depth::bits8, 3},
  };
  for (const Case& c : cases) {
    const fs::path input = dir.path() / c.name;
    save(*synthetic(c.depth, c.frames), input, c.xfer);
    compare_both_ways(input, Expect::spliced);
  }
}

TEST(DicomSplice, APixelDataGroupLengthIsLeftToDcmtk) {
  TempDir dir;
  auto ct = synthetic(Depth::bits16, 1);
  ct->getDataset()->putAndInsertUint32(DcmTagKey(0x7FE0, 0x0000), 0);
  const fs::path input = dir.path() / "group-length.dcm";
  save(*ct, input);
  compare_both_ways(input, Expect::refused);
}

TEST(DicomSplice, AnElementAfterPixelDataIsLeftToDcmtk) {
  TempDir dir;
  auto ct = synthetic(Depth::bits16, 1);
  const Uint8 padding[4] = {0, 0, 0, 0};
  ct->getDataset()->putAndInsertUint8Array(DCM_DataSetTrailingPadding, padding, 4);
  const fs::path input = dir.path() / "trailing.dcm";
  save(*ct, input);
  compare_both_ways(input, Expect::refused);
}

TEST(DicomSplice, ALoadedOrChangedPixelValueIsLeftToDcmtk) {
  TempDir dir;
  const fs::path input = dir.path() / "ct.dcm";
  save(*synthetic(Depth::bits16, 1), input);
  compare_both_ways(input, Expect::refused, [](dicom::DicomFile& file) {
    ASSERT_TRUE(dicom::decode_pixels(file).has_value());
  });
  compare_both_ways(input, Expect::refused, [](dicom::DicomFile& file) {
    auto image = dicom::decode_pixels(file);
    ASSERT_TRUE(image.has_value());
    image->frames[0][0] = 4000;
    ASSERT_TRUE(dicom::encode_pixels(file, *image).has_value());
  });
}

TEST(DicomSplice, AnInputThatShrankFailsTheSaveInsteadOfAShortOutput) {
  TempDir dir;
  const fs::path input = dir.path() / "ct.dcm";
  save(*make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.1", 64, 64), input);  // 8 KB of pixels: left on the input
  // The same file, uncut, is spliced: the cut below is what fails the save.
  const auto whole = save_changed(input, dir.path() / "whole.dcm",
                                  dicom::PixelCopy::splice_when_safe, [](dicom::DicomFile&) {});
  ASSERT_TRUE(whole.has_value());
  ASSERT_TRUE(whole->spliced);
  auto file = dicom::DicomFile::open(input);
  ASSERT_TRUE(file.has_value());
  // The pixel value stays on the input; cut it short after the load.
  fs::resize_file(input, fs::file_size(input) - 100);
  const std::uint64_t before = dicom::spliced_pixel_values();
  const fs::path output = dir.path() / "out.dcm";
  const auto saved = file->save(output, kMeta);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::io);
  EXPECT_NE(saved.error().message.find("the input"), std::string::npos) << saved.error().message;
  EXPECT_FALSE(fs::exists(output));
  EXPECT_EQ(dicom::spliced_pixel_values(), before);
}

}  // namespace
}  // namespace radguard
