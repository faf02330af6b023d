// Splicing an untouched Pixel Data value (DicomFile::save copies it from the input with
// copy_file_range after DCMTK writes the rest) gives exactly the bytes DCMTK writes itself,
// on third-party files of every transfer syntax they come in; a splice that cannot copy the
// whole value fails the save. The check is independent of the splice: DCMTK's own writer,
// forced with PixelCopy::through_dcmtk, gives the expected bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>

#include "dicom/dicom_file.hpp"
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
  // pydicom 2.3's files: 3 explicit, the rest in other syntaxes or with small pixel data).
  for (const auto& [syntax, count] : spliced_by_syntax)
    std::cout << "spliced in " << syntax << ": " << count << " of " << compared << " files\n";
  EXPECT_GE(spliced_by_syntax["1.2.840.10008.1.2"], 1);
  EXPECT_GE(spliced_by_syntax["1.2.840.10008.1.2.1"], 2);
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

TEST(DicomSplice, AnInputThatShrankFailsTheSaveInsteadOfAShortOutput) {
  TempDir dir;
  const fs::path input = dir.path() / "ct.dcm";
  save(*make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.1", 64, 64), input);  // 8 KB of pixels: left on the input
  auto file = dicom::DicomFile::open(input);
  ASSERT_TRUE(file.has_value());
  // The pixel value stays on the input; cut it short after the load.
  fs::resize_file(input, fs::file_size(input) - 100);
  const auto saved = file->save(dir.path() / "out.dcm", kMeta);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::io);
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

}  // namespace
}  // namespace radguard
