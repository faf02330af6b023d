// Hostile input and faults (issue 14): nesting and deflate bombs, unreadable inputs, full
// disks, leftovers of killed runs, silent overwrites, key files, inconsistent pixel headers.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <span>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/json_number.hpp"
#include "core/warning.hpp"
#include "deid/deid_run.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "dicom/signature.hpp"
#include "dicom/structure_check.hpp"
#include "export/export.hpp"
#include "plan/merge.hpp"
#include "redact/redact.hpp"
#include "signing/keys.hpp"
#include "support/fixtures.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::make_ct;
using testing::save;
using testing::TempDir;

// --- Byte-level DICOM writing, for structures DCMTK would refuse to build ---------------

void put16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>(v >> 8);
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v & 0xFFFF));
  put16(out, static_cast<std::uint16_t>(v >> 16));
}
void tag(std::string& out, std::uint16_t group, std::uint16_t element) {
  put16(out, group);
  put16(out, element);
}

// An explicit VR little endian element with a 2-byte length.
void short_element(std::string& out, std::uint16_t group, std::uint16_t element, const char* vr,
                   std::string value) {
  if (value.size() % 2) value += (std::string_view(vr) == "UI" ? '\0' : ' ');
  tag(out, group, element);
  out += vr;
  put16(out, static_cast<std::uint16_t>(value.size()));
  out += value;
}

// A Part 10 file: preamble, meta header for `syntax`, then the data set bytes as given.
std::string part10(const std::string& syntax, const std::string& dataset) {
  std::string meta;
  tag(meta, 0x0002, 0x0001);
  meta += "OB";
  put16(meta, 0);
  put32(meta, 2);
  meta += std::string("\0\1", 2);
  short_element(meta, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7");
  short_element(meta, 0x0002, 0x0003, "UI", "1.2.3.4.5.6.7.8.9");
  short_element(meta, 0x0002, 0x0010, "UI", syntax);
  std::string out(128, '\0');
  out += "DICM";
  tag(out, 0x0002, 0x0000);
  out += "UL";
  put16(out, 4);
  put32(out, static_cast<std::uint32_t>(meta.size()));
  return out + meta + dataset;
}

constexpr const char* kExplicitLittle = "1.2.840.10008.1.2.1";
constexpr const char* kImplicitLittle = "1.2.840.10008.1.2";
constexpr const char* kDeflated = "1.2.840.10008.1.2.1.99";

// A data set opening with a SOP Instance UID and Patient ID, then `depth` Content Sequences
// each inside the single item of the one before.
std::string nested(std::size_t depth, bool explicit_vr, bool defined_lengths) {
  std::string head;
  if (explicit_vr) {
    short_element(head, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
    short_element(head, 0x0010, 0x0020, "LO", "PID");
  } else {
    tag(head, 0x0008, 0x0018);
    put32(head, 18);
    head += std::string("1.2.3.4.5.6.7.8.9\0", 18);
  }
  auto sequence_header = [&](std::string& out, std::uint32_t length) {
    tag(out, 0x0040, 0xA730);
    if (explicit_vr) {
      out += "SQ";
      put16(out, 0);
    }
    put32(out, length);
  };
  if (!defined_lengths) {
    std::string out = head;
    for (std::size_t i = 0; i < depth; ++i) {
      sequence_header(out, 0xFFFFFFFF);
      tag(out, 0xFFFE, 0xE000);
      put32(out, 0xFFFFFFFF);
    }
    for (std::size_t i = 0; i < depth; ++i) {
      tag(out, 0xFFFE, 0xE00D);
      put32(out, 0);
      tag(out, 0xFFFE, 0xE0DD);
      put32(out, 0);
    }
    return out;
  }
  // Defined lengths, built inside out.
  std::string inner;
  for (std::size_t i = 0; i < depth; ++i) {
    std::string item;
    tag(item, 0xFFFE, 0xE000);
    put32(item, static_cast<std::uint32_t>(inner.size()));
    item += inner;
    std::string sequence;
    sequence_header(sequence, static_cast<std::uint32_t>(item.size()));
    inner = sequence + item;
  }
  return head + inner;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string raw_deflate(const std::string& data) {
  z_stream stream{};
  deflateInit2(&stream, 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

struct NestingCase {
  const char* name;
  bool explicit_vr;
  bool defined_lengths;
};

void PrintTo(const NestingCase& c, std::ostream* os) { *os << c.name; }

class NestingBomb : public ::testing::TestWithParam<NestingCase> {};

// Before the limit, 10,000 levels overflowed the stack inside DCMTK's reader.
TEST_P(NestingBomb, TenThousandLevelsAreRefusedBeforeDcmtkReadsThem) {
  TempDir dir;
  const auto path = dir / "deep.dcm";
  const auto& c = GetParam();
  write_bytes(path, part10(c.explicit_vr ? kExplicitLittle : kImplicitLittle,
                           nested(10'000, c.explicit_vr, c.defined_lengths)));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom);
  EXPECT_NE(file.error().message.find("nested more than 128 levels"), std::string::npos)
      << file.error().message;
}

TEST_P(NestingBomb, ModestNestingStillOpens) {
  TempDir dir;
  const auto path = dir / "nested.dcm";
  const auto& c = GetParam();
  write_bytes(path, part10(c.explicit_vr ? kExplicitLittle : kImplicitLittle,
                           nested(100, c.explicit_vr, c.defined_lengths)));
  auto facts = dicom::check_structure(path, dicom::FileLayout::part10);
  ASSERT_TRUE(facts.has_value()) << facts.error().message;
  EXPECT_EQ(facts->max_sequence_depth, 100U);
  EXPECT_TRUE(facts->conclusive);
  auto file = dicom::DicomFile::open(path);
  EXPECT_TRUE(file.has_value()) << file.error().message;
}

INSTANTIATE_TEST_SUITE_P(Encodings, NestingBomb,
                         ::testing::Values(NestingCase{"ExplicitUndefined", true, false},
                                           NestingCase{"ExplicitDefined", true, true},
                                           NestingCase{"ImplicitUndefined", false, false},
                                           NestingCase{"ImplicitDefined", false, true}),
                         [](const ::testing::TestParamInfo<NestingCase>& p) { return std::string(p.param.name); });

TEST(NestingBomb, DeepNestingInsideUnValuesIsFound) {
  // A private element of VR UN and defined length whose value is a deep sequence (DCMTK may
  // read it as one): the check follows it.
  TempDir dir;
  std::string inner = nested(5'000, false, true).substr(26);  // the sequences only
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  short_element(dataset, 0x0009, 0x0010, "LO", "ACME");
  tag(dataset, 0x0009, 0x1001);
  dataset += "UN";
  put16(dataset, 0);
  std::string item;
  tag(item, 0xFFFE, 0xE000);
  put32(item, static_cast<std::uint32_t>(inner.size()));
  item += inner;
  put32(dataset, static_cast<std::uint32_t>(item.size()));
  dataset += item;
  const auto path = dir / "un.dcm";
  write_bytes(path, part10(kExplicitLittle, dataset));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_NE(file.error().message.find("nested"), std::string::npos) << file.error().message;
}

TEST(DeflateBomb, InflatingFarBeyondTheFileIsRefused) {
  TempDir dir;
  // 80 MiB of zeros in one OB value deflate to about 80 KB: a ratio of 1000.
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  tag(dataset, 0x0009, 0x0010);
  dataset += "OB";
  put16(dataset, 0);
  const std::uint32_t size = 80U << 20;
  put32(dataset, size);
  dataset.append(size, '\0');
  const auto path = dir / "bomb.dcm";
  write_bytes(path, part10(kDeflated, raw_deflate(dataset)));
  dataset.clear();
  dataset.shrink_to_fit();
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom);
  EXPECT_NE(file.error().message.find("inflates to more than 64 MiB"), std::string::npos)
      << file.error().message;
}

TEST(DeflateBomb, FloodsOfTinyElementsAreRefused) {
  TempDir dir;
  // 300,000 empty items in one sequence: 4.8 MB inflated from a few KB.
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  tag(dataset, 0x0040, 0xA730);
  dataset += "SQ";
  put16(dataset, 0);
  put32(dataset, 0xFFFFFFFF);
  for (int i = 0; i < 300'000; ++i) {
    tag(dataset, 0xFFFE, 0xE000);
    put32(dataset, 0);
  }
  tag(dataset, 0xFFFE, 0xE0DD);
  put32(dataset, 0);
  const auto path = dir / "flood.dcm";
  write_bytes(path, part10(kDeflated, raw_deflate(dataset)));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_NE(file.error().message.find("elements for a file of this size"), std::string::npos)
      << file.error().message;
}

// Found by fuzz_dicom: DCMTK allocates a deflated element's declared length (here 3.5 GB)
// before it finds the stream too short.
TEST(DeflateBomb, ALengthBeyondTheInflatedDataIsRefusedBeforeDcmtkAllocatesIt) {
  TempDir dir;
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  tag(dataset, 0x7FE0, 0x0010);
  dataset += "OB";
  put16(dataset, 0);
  put32(dataset, 0xD4D4D4D0U);
  dataset += std::string(64, '\0');
  const auto path = dir / "long.dcm";
  write_bytes(path, part10(kDeflated, raw_deflate(dataset)));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_NE(file.error().message.find("declares more bytes than the inflated data set holds"),
            std::string::npos)
      << file.error().message;
}

TEST(DeflateBomb, OrdinaryDeflatedFilesOpen) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 64, 64, 2);
  const auto path = dir / "deflated.dcm";
  save(*ct, path, EXS_DeflatedLittleEndianExplicit);
  auto facts = dicom::check_structure(path, dicom::FileLayout::part10);
  ASSERT_TRUE(facts.has_value()) << facts.error().message;
  EXPECT_GT(facts->inflated_bytes, 64U * 64U * 2U * 2U);
  EXPECT_TRUE(facts->conclusive);
  EXPECT_TRUE(dicom::DicomFile::open(path).has_value());
}

// Found by fuzz_dicom: a meta header whose group length also covers an element of another
// group. DCMTK ended the meta header by the group length, radguard's check at the other group,
// so the two inflated the deflated data set from different bytes and DCMTK asked for 3.5 GB.
// Both now end the meta header where group 0002 ends, so the stream that is not deflate is
// refused by both.
namespace {
// Preamble, "DICM", a group length `length_error` bytes off the truth, the meta elements.
std::string with_meta_group(const std::string& meta, std::int64_t length_error = 0) {
  std::string bytes(128, '\0');
  bytes += "DICM";
  tag(bytes, 0x0002, 0x0000);
  bytes += "UL";
  put16(bytes, 4);
  put32(bytes, static_cast<std::uint32_t>(static_cast<std::int64_t>(meta.size()) + length_error));
  return bytes + meta;
}

std::string meta_file(std::string_view syntax, std::int64_t length_error, std::string_view extra,
                      std::string_view dataset) {
  std::string meta;
  short_element(meta, 0x0002, 0x0010, "UI", std::string(syntax));
  meta += extra;
  short_element(meta, 0x0002, 0x0016, "AE", "CLUNIE1");
  return with_meta_group(meta, length_error) + std::string(dataset);
}
}  // namespace

TEST(StructureCheck, AMetaGroupLengthCoveringAnotherGroupDoesNotShiftTheDeflatedStream) {
  TempDir dir;
  std::string foreign;
  short_element(foreign, 0x0702, 0x0013, "SH", "DCTOOL100");
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4");
  const auto path = dir / "meta.dcm";
  // The group length covers the foreign element too; the data set is what follows group 0002.
  write_bytes(path, meta_file(kDeflated, 0, foreign, raw_deflate(dataset)));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom);
}

// Where DCMTK and the structure check could still start the data set at different bytes, the
// file is refused: an element of group 0200 (bytes 00 02, which DCMTK reads as meta), a transfer
// syntax given twice (DCMTK keeps the first), a meta element cut short.
TEST(StructureCheck, AMetaHeaderTheTwoReadersCouldReadApartIsRefused) {
  TempDir dir;
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4");
  std::string group0200;
  short_element(group0200, 0x0200, 0x0010, "UI", kDeflated);
  std::string twice;
  short_element(twice, 0x0002, 0x0010, "UI", kDeflated);
  const std::string cut = meta_file("1.2.840.10008.1.2.1", 0, "", "").substr(0, 150);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"group0200", meta_file("1.2.840.10008.1.2.1", 0, "", group0200 + dataset)},
      {"twice", meta_file("1.2.840.10008.1.2.1", 0, twice, raw_deflate(dataset))},
      {"cut", cut}};
  for (const auto& [name, bytes] : cases) {
    const auto path = dir / (name + ".dcm");
    write_bytes(path, bytes);
    auto file = dicom::DicomFile::open(path);
    ASSERT_FALSE(file.has_value()) << name;
    EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom) << name;
  }
}

// A deflated stream that does not inflate cleanly was never checked, so DCMTK never parses it.
TEST(StructureCheck, ACorruptDeflatedStreamIsRefused) {
  TempDir dir;
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4");
  short_element(dataset, 0x0010, 0x0020, "LO", "ID42");
  std::string corrupt = raw_deflate(dataset);
  corrupt[0] = static_cast<char>(0xff);  // block type 3: invalid
  const auto path = dir / "corrupt.dcm";
  write_bytes(path, meta_file(kDeflated, 0, "", corrupt));
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom);
}

// Editing tools leave stale meta group lengths in real files; the data set is still read from
// where group 0002 ends, whether the stale length is short or long.
TEST(StructureCheck, AStaleMetaGroupLengthIsReadByItsElements) {
  TempDir dir;
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4");
  short_element(dataset, 0x0010, 0x0020, "LO", "ID42");
  for (const std::int64_t error : {-6, 10}) {
    const auto path = dir / ("stale" + std::to_string(error) + ".dcm");
    write_bytes(path, meta_file("1.2.840.10008.1.2.1", error, "", dataset));
    auto file = dicom::DicomFile::open(path);
    ASSERT_TRUE(file.has_value()) << error << ": " << file.error().message;
    EXPECT_EQ(file->string_of(Tag{0x0010, 0x0020}), std::optional<std::string>("ID42")) << error;
  }
}

// A DIMSE identifier's encoding is its presentation context's, and the check must read it in
// that encoding: an implicit VR identifier whose first value begins with "OB" and two zero
// bytes looks like one long explicit element to a guess, which would hide the deep nesting
// that DCMTK (reading it as implicit VR, as it was sent) follows after it.
TEST(StructureCheck, AnIdentifierIsCheckedInTheEncodingItWasSentIn) {
  std::string ident;
  tag(ident, 0x0008, 0x0052);  // implicit VR: tag, then a 4-byte length
  const std::size_t value_at = ident.size() + 4;
  constexpr int kLevels = 1000;  // far beyond the check's 128 levels, under 64 KiB
  std::string nest;
  for (int i = 0; i < kLevels; ++i) {
    tag(nest, 0x0008, 0x1115);  // an SQ in the dictionary, undefined length
    put32(nest, 0xFFFFFFFFu);
    tag(nest, 0xFFFE, 0xE000);  // an item of undefined length
    put32(nest, 0xFFFFFFFFu);
  }
  std::string value(0x424F, 'X');  // the length bytes read "OB\0\0"
  put32(ident, 0x424F);
  ident += value;
  // As explicit VR, the guessed OB's own length (the value's first four bytes) runs to the end.
  const std::uint32_t explicit_length =
      static_cast<std::uint32_t>(value.size() - 4 + nest.size());
  for (int b = 0; b < 4; ++b)
    ident[value_at + static_cast<std::size_t>(b)] =
        static_cast<char>((explicit_length >> (8 * b)) & 0xFF);
  ident += nest;
  const auto* data = reinterpret_cast<const std::uint8_t*>(ident.data());
  const std::span<const std::uint8_t> bytes(data, ident.size());

  // The guess reads one explicit element and sees no nesting at all ...
  const auto guessed = dicom::check_structure(bytes, dicom::FileLayout::raw_dataset);
  ASSERT_TRUE(guessed.has_value()) << guessed.error().message;
  EXPECT_EQ(guessed->max_sequence_depth, 0U);
  // ... read as sent, the nesting is refused.
  const auto as_sent = dicom::check_structure(bytes, dicom::FileLayout::raw_implicit_little);
  ASSERT_FALSE(as_sent.has_value());
  EXPECT_EQ(as_sent.error().code, ErrorCode::malformed_dicom);
  // A plain identifier in each encoding it can be sent in passes.
  std::string plain;
  tag(plain, 0x0008, 0x0052);
  put32(plain, 6);
  plain += "STUDY ";
  const std::span<const std::uint8_t> plain_bytes(
      reinterpret_cast<const std::uint8_t*>(plain.data()), plain.size());
  EXPECT_TRUE(dicom::check_structure(plain_bytes, dicom::FileLayout::raw_implicit_little));
  // The same implicit bytes sent on an explicit VR context (the first element shows no VR) are
  // refused rather than read as implicit, since DCMTK reads them as the context says.
  const auto contradicted =
      dicom::check_structure(plain_bytes, dicom::FileLayout::raw_explicit_little);
  ASSERT_FALSE(contradicted.has_value());
  EXPECT_EQ(contradicted.error().code, ErrorCode::malformed_dicom);
  std::string explicit_plain;
  short_element(explicit_plain, 0x0008, 0x0052, "CS", "STUDY ");
  const std::span<const std::uint8_t> explicit_bytes(
      reinterpret_cast<const std::uint8_t*>(explicit_plain.data()), explicit_plain.size());
  EXPECT_TRUE(dicom::check_structure(explicit_bytes, dicom::FileLayout::raw_explicit_little));
}

namespace {
// A data set whose first element, (0008,0005), has "ZZ" where an explicit VR would stand. It is
// no standard VR, so DCMTK reads the data set as implicit VR: a 4-byte length of 0x5A5A ("ZZ"
// and two zero bytes). A reader that took any two capitals for a VR would read one long
// explicit element to the end of the data instead, and never see the `levels` nested
// sequences that DCMTK reaches after its short first value.
std::string disguised_by_zz(int levels) {
  std::string out;
  tag(out, 0x0008, 0x0005);
  out += "ZZ";
  put16(out, 0);
  const std::size_t explicit_length_at = out.size();
  put32(out, 0);
  out.resize(8 + 0x5A5A, ' ');
  for (int i = 0; i < levels; ++i) {
    tag(out, 0x0008, 0x1115);  // an SQ in the dictionary, undefined length
    put32(out, 0xFFFFFFFFu);
    tag(out, 0xFFFE, 0xE000);
    put32(out, 0xFFFFFFFFu);
  }
  for (int i = 0; i < levels; ++i) {
    tag(out, 0xFFFE, 0xE00D);
    put32(out, 0);
    tag(out, 0xFFFE, 0xE0DD);
    put32(out, 0);
  }
  const auto length = static_cast<std::uint32_t>(out.size() - explicit_length_at - 4);
  for (int b = 0; b < 4; ++b)
    out[explicit_length_at + static_cast<std::size_t>(b)] =
        static_cast<char>((length >> (8 * b)) & 0xFF);
  return out;
}

void expect_refused_for_nesting(const fs::path& path) {
  auto file = dicom::DicomFile::open(path);
  ASSERT_FALSE(file.has_value()) << path.filename();
  EXPECT_EQ(file.error().code, ErrorCode::malformed_dicom) << path.filename();
  EXPECT_NE(file.error().message.find("nested more than 128 levels"), std::string::npos)
      << file.error().message;
}
}  // namespace

// Where a file declares no encoding DCMTK knows (no meta header, or a transfer syntax DCMTK
// does not recognise), DCMTK guesses it from the first element; the check walks the data set
// in DCMTK's own guess, so a first element that reads one way to a simpler guess and another
// way to DCMTK hides nothing. Before, these files crashed DCMTK's recursive reader.
TEST(StructureCheck, AnUndeclaredEncodingIsWalkedAsDcmtkWillReadIt) {
  TempDir dir;
  const std::string data = disguised_by_zz(1000);
  write_bytes(dir / "raw.dcm", data);
  expect_refused_for_nesting(dir / "raw.dcm");
  write_bytes(dir / "unknown-syntax.dcm", part10("1.2.3.4.5", data));
  expect_refused_for_nesting(dir / "unknown-syntax.dcm");
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(data.data()),
                                            data.size());
  EXPECT_FALSE(dicom::check_structure(bytes, dicom::FileLayout::raw_dataset).has_value());
  // A few levels behind the same first element open, read as implicit VR as DCMTK reads them.
  write_bytes(dir / "modest.dcm", disguised_by_zz(3));
  auto modest = dicom::DicomFile::open(dir / "modest.dcm");
  EXPECT_TRUE(modest.has_value()) << modest.error().message;
}

// A declared explicit VR data set whose first element has no VR letters is still read as
// explicit VR by DCMTK (an illegal VR, a 2-byte length): the check no longer switches to
// implicit VR there, which would have walked bytes DCMTK reads differently.
TEST(StructureCheck, ADeclaredEncodingIsWalkedAsDeclaredWhateverTheFirstElementShows) {
  TempDir dir;
  std::string data;
  tag(data, 0x0008, 0x0005);
  data += std::string("\xFF\xFF\0\0", 4);  // no VR; as explicit VR a value of 0 bytes
  data += nested(1000, true, false);
  write_bytes(dir / "declared.dcm", part10(kExplicitLittle, data));
  expect_refused_for_nesting(dir / "declared.dcm");
}

// A transfer syntax with padding other than NULs may or may not be looked up by DCMTK as the
// UID it pads; the file is read only where the UID's encoding and DCMTK's guess agree.
TEST(StructureCheck, APaddedTransferSyntaxIsReadOnlyWhereBothReadingsAgree) {
  TempDir dir;
  std::string implicit_data;
  tag(implicit_data, 0x0008, 0x0018);
  put32(implicit_data, 8);
  implicit_data += std::string("1.2.3.4\0", 8);
  tag(implicit_data, 0x0010, 0x0020);
  put32(implicit_data, 4);
  implicit_data += "ID42";
  write_bytes(dir / "agree.dcm", part10(std::string(kImplicitLittle) + " ", implicit_data));
  auto agree = dicom::DicomFile::open(dir / "agree.dcm");
  ASSERT_TRUE(agree.has_value()) << agree.error().message;
  EXPECT_EQ(agree->string_of(Tag{0x0010, 0x0020}), std::optional<std::string>("ID42"));
  write_bytes(dir / "apart.dcm", part10(std::string(" ") + kExplicitLittle, implicit_data));
  auto apart = dicom::DicomFile::open(dir / "apart.dcm");
  ASSERT_FALSE(apart.has_value());
  EXPECT_EQ(apart.error().code, ErrorCode::malformed_dicom);
  EXPECT_NE(apart.error().message.find("read two ways"), std::string::npos)
      << apart.error().message;
  // DCMTK removes white space inside the UID too (a tab, a space between its parts): the
  // deflated UID so padded is refused, never walked as the compressed bytes.
  write_bytes(dir / "deflated.dcm",
              part10("1.2.840.10008.1.2.1\t.99", raw_deflate(implicit_data)));
  auto deflated = dicom::DicomFile::open(dir / "deflated.dcm");
  ASSERT_FALSE(deflated.has_value());
  EXPECT_NE(deflated.error().message.find("read two ways"), std::string::npos)
      << deflated.error().message;
}

// DCMTK guesses the data set's encoding where the meta header has no transfer syntax, or one
// of no length (review: the empty UID was looked up as DCMTK's "virtual big endian implicit"
// entry, and the data set walked in it). And it would read a sequence in the meta group,
// which the check only skips: refused.
TEST(StructureCheck, AMetaHeaderWithoutATransferSyntaxIsWalkedInDcmtksGuess) {
  TempDir dir;
  const std::string data = disguised_by_zz(1000);
  write_bytes(dir / "empty.dcm", meta_file("", 0, "", data));
  expect_refused_for_nesting(dir / "empty.dcm");
  std::string meta;
  short_element(meta, 0x0002, 0x0016, "AE", "CLUNIE1");
  const std::string absent = with_meta_group(meta);  // no (0002,0010) at all
  write_bytes(dir / "absent.dcm", absent + data);
  expect_refused_for_nesting(dir / "absent.dcm");
  write_bytes(dir / "modest.dcm", absent + disguised_by_zz(3));
  auto modest = dicom::DicomFile::open(dir / "modest.dcm");
  EXPECT_TRUE(modest.has_value()) << modest.error().message;

  std::string sequence;
  tag(sequence, 0x0002, 0x0017);
  sequence += "SQ";
  put16(sequence, 0);
  put32(sequence, 0);
  std::string plain;
  short_element(plain, 0x0008, 0x0018, "UI", "1.2.3.4");
  write_bytes(dir / "sequence.dcm", meta_file(kExplicitLittle, 0, sequence, plain));
  auto in_meta = dicom::DicomFile::open(dir / "sequence.dcm");
  ASSERT_FALSE(in_meta.has_value());
  EXPECT_EQ(in_meta.error().code, ErrorCode::malformed_dicom);
}

TEST(StructureCheck, EveryPydicomSampleThatOpenedStillOpens) {
  // The check must not refuse what DCMTK reads: every sample shipped with python3-pydicom.
  const auto any = testing::pydicom_sample("CT_small.dcm");
  if (any.empty()) GTEST_SKIP() << "python3-pydicom samples not installed";
  std::size_t checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(any.parent_path())) {
    if (!entry.is_regular_file()) continue;
    auto file = dicom::DicomFile::open(entry.path());
    ++checked;
    if (!file) {
      EXPECT_EQ(file.error().message.find("refused"), std::string::npos)
          << entry.path() << ": " << file.error().message;
    }
  }
  EXPECT_GT(checked, 50U);
}

// --- Reading only the leading attributes (what a planner reads of millions of files) -------

constexpr std::array<Tag, 3> kPlanTags{Tag{0x0008, 0x0018}, Tag{0x0020, 0x000D},
                                       Tag{0x0020, 0x000E}};

// The simple reference: the whole file opened, the same attributes read.
TEST(LeadingStrings, AgreeWithTheWholeFileOnEveryPydicomSample) {
  const auto any = testing::pydicom_sample("CT_small.dcm");
  if (any.empty()) GTEST_SKIP() << "python3-pydicom samples not installed";
  std::size_t compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(any.parent_path())) {
    if (!entry.is_regular_file()) continue;
    auto whole = dicom::DicomFile::open(entry.path());
    auto leading = dicom::DicomFile::read_leading_strings(entry.path(), kPlanTags);
    if (!whole) continue;  // damaged anywhere: the leading part may still read
    ASSERT_TRUE(leading.has_value()) << entry.path() << ": " << leading.error().message;
    for (std::size_t i = 0; i < kPlanTags.size(); ++i)
      EXPECT_EQ(leading->values[i], whole->string_of(kPlanTags[i])) << entry.path() << " #" << i;
    ++compared;
  }
  EXPECT_GT(compared, 50U);
}

TEST(LeadingStrings, ADeflatedFileIsInflatedOnlyUpToTheLastTagWanted) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 512, 512, 2);
  const auto path = dir / "deflated.dcm";
  save(*ct, path, EXS_DeflatedLittleEndianExplicit);
  dicom::StructureLimits limits;
  limits.stop_at = Tag{0x0020, 0x000F}.key();
  auto head = dicom::check_structure(path, dicom::FileLayout::part10, limits);
  auto whole = dicom::check_structure(path, dicom::FileLayout::part10);
  ASSERT_TRUE(head.has_value() && whole.has_value());
  EXPECT_TRUE(head->stopped_at_limit);
  EXPECT_FALSE(whole->stopped_at_limit);
  // Inflation runs ahead by a step (4 KiB), never through 1 MiB of pixel data.
  EXPECT_GT(whole->inflated_bytes, 1U << 20);
  EXPECT_LT(head->inflated_bytes, whole->inflated_bytes / 4) << "the pixel data was inflated";
  auto leading = dicom::DicomFile::read_leading_strings(path, kPlanTags);
  ASSERT_TRUE(leading.has_value()) << leading.error().message;
  EXPECT_EQ(leading->values[1], dicom::DicomFile::open(path)->string_of(kPlanTags[1]));
}

// A deflate stream's last symbols can still owe output once all of its input is taken in
// (zlib keeps their bits): a stream read a step at a time must still be inflated to its end.
// Runs of zeros end in long matches; 128 lengths put the end at every offset within a step.
TEST(StructureCheck, EveryDeflatedFileIsInflatedToItsEndWhateverItsLength) {
  TempDir dir;
  auto ct = make_ct("PID1", "1.2.3.4.5.6", 64, 64, 1);
  const auto path = dir / "deflated.dcm";
  std::size_t refused = 0;
  for (std::size_t i = 0; i < 128; ++i) {
    const std::vector<Uint8> zeros(20'000 + 98 * i, 0);
    ASSERT_TRUE(ct->getDataset()
                    ->putAndInsertUint8Array(DCM_PixelData, zeros.data(),
                                             static_cast<unsigned long>(zeros.size()))
                    .good());
    save(*ct, path, EXS_DeflatedLittleEndianExplicit);
    auto whole = dicom::check_structure(path, dicom::FileLayout::part10);
    if (!whole) ++refused;
    EXPECT_TRUE(whole.has_value()) << zeros.size() << ": " << whole.error().message;
  }
  EXPECT_EQ(refused, 0U);
}

TEST(LeadingStrings, HostileStructureBeforeTheLastTagWantedIsStillRefused) {
  TempDir dir;
  const auto path = dir / "deep.dcm";
  write_bytes(path, part10(kExplicitLittle, nested(10'000, true, false)));
  // The bomb sits in (0040,A730): asking for a later tag reads through it.
  auto through = dicom::DicomFile::read_leading_strings(path, std::array{Tag{0x0040, 0xA731}});
  ASSERT_FALSE(through.has_value());
  EXPECT_NE(through.error().message.find("nested more than 128 levels"), std::string::npos)
      << through.error().message;
  // Asking only for the UIDs before it stops short of it (the whole-file run refuses it).
  auto before = dicom::DicomFile::read_leading_strings(path, std::array{Tag{0x0008, 0x0018}});
  ASSERT_TRUE(before.has_value()) << before.error().message;
  EXPECT_EQ(before->values[0], std::optional<std::string>("1.2.3.4.5.6.7.8.9"));
}

// A large value before the UIDs (a vendor's private blob): past the first read of the file,
// so the file itself is read up to the stop.
TEST(LeadingStrings, ALargeValueBeforeTheUidsIsReadPast) {
  TempDir dir;
  std::string dataset;
  short_element(dataset, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  short_element(dataset, 0x0009, 0x0010, "LO", "VENDOR BLOB");
  tag(dataset, 0x0009, 0x1001);
  dataset += "OB";
  put16(dataset, 0);
  const std::string blob(600'000, 'x');
  put32(dataset, static_cast<std::uint32_t>(blob.size()));
  dataset += blob;
  short_element(dataset, 0x0020, 0x000D, "UI", "1.2.3.4.5.6.7.8.10");
  short_element(dataset, 0x0020, 0x000E, "UI", "1.2.3.4.5.6.7.8.11");
  short_element(dataset, 0x7FE0, 0x0010, "OB", std::string(1000, '\1'));
  const auto path = dir / "blob.dcm";
  write_bytes(path, part10(kExplicitLittle, dataset));
  auto leading = dicom::DicomFile::read_leading_strings(path, kPlanTags);
  ASSERT_TRUE(leading.has_value()) << leading.error().message;
  EXPECT_EQ(leading->values[0], std::optional<std::string>("1.2.3.4.5.6.7.8.9"));
  EXPECT_EQ(leading->values[1], std::optional<std::string>("1.2.3.4.5.6.7.8.10"));
  EXPECT_EQ(leading->values[2], std::optional<std::string>("1.2.3.4.5.6.7.8.11"));
  // Cut inside the blob: truncated where the UIDs should be, as the whole-file read says.
  write_bytes(path, part10(kExplicitLittle, dataset).substr(0, 400'000));
  auto cut = dicom::DicomFile::read_leading_strings(path, kPlanTags);
  ASSERT_FALSE(cut.has_value());
  EXPECT_EQ(cut.error().code, dicom::DicomFile::open(path).error().code);
}

// The structure walk reads plain UIDs itself (no DCMTK parse): where it does, the values are
// DCMTK's, on every pydicom sample; and it does on most of them.
TEST(LeadingStrings, TheWalkTakesPlainUidsItselfAndAgreesWithDcmtkOnEveryPydicomSample) {
  const auto any = testing::pydicom_sample("CT_small.dcm");
  if (any.empty()) GTEST_SKIP() << "python3-pydicom samples not installed";
  dicom::StructureLimits limits;
  limits.stop_at = Tag{0x0020, 0x000F}.key();
  std::size_t taken = 0, left = 0, absent = 0;
  for (const auto& entry : fs::recursive_directory_iterator(any.parent_path())) {
    if (!entry.is_regular_file()) continue;
    auto whole = dicom::DicomFile::open(entry.path());
    if (!whole) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<std::uint8_t> head(16 * 1024);
    in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    const bool part10 = head.size() >= 132 && std::memcmp(head.data() + 128, "DICM", 4) == 0;
    dicom::ValueCapture capture;
    for (const Tag t : kPlanTags) capture.keys.push_back(t.key());
    auto checked = dicom::check_structure(
        head, part10 ? dicom::FileLayout::part10 : dicom::FileLayout::raw_dataset, limits,
        &capture);
    ASSERT_EQ(capture.values.size(), kPlanTags.size());
    if (!checked || !checked->conclusive || capture.ambiguous) {
      ++left;
      continue;
    }
    // A tag the walk never met, where the walk saw everything up to the stop, is absent for
    // DCMTK too: read_leading_strings answers nullopt for it without asking DCMTK.
    const bool saw_all = checked->stopped_at_limit || head.size() == entry.file_size();
    for (std::size_t i = 0; i < kPlanTags.size(); ++i) {
      if (!capture.values[i] && !saw_all) continue;
      EXPECT_EQ(capture.values[i], whole->string_of(kPlanTags[i])) << entry.path() << " #" << i;
      absent += !capture.values[i];
    }
    taken += std::all_of(capture.values.begin(), capture.values.end(),
                         [](const auto& v) { return v.has_value(); });
  }
  EXPECT_GT(taken, 40U) << left << " left to DCMTK";
  EXPECT_GT(absent, 0U) << "no sample lacks a UID: the absent case went untested";
}

// UIDs that are not plain digits and dots, a wanted tag twice, with another VR, or only inside
// an item: the walk leaves them to DCMTK, and the answer is DCMTK's.
TEST(LeadingStrings, UnusualUidsAreLeftToDcmtk) {
  TempDir dir;
  const auto seq_with_series = [](std::string& out, const char* uid) {
    tag(out, 0x0008, 0x1115);  // Referenced Series Sequence, undefined lengths
    out += "SQ";
    put16(out, 0);
    put32(out, 0xFFFFFFFF);
    tag(out, 0xFFFE, 0xE000);
    put32(out, 0xFFFFFFFF);
    short_element(out, 0x0020, 0x000E, "UI", uid);
    tag(out, 0xFFFE, 0xE00D);
    put32(out, 0);
    tag(out, 0xFFFE, 0xE0DD);
    put32(out, 0);
  };
  struct Case {
    const char* name;
    std::string dataset;
    bool taken;  // the walk's own answer, without DCMTK
  };
  std::vector<Case> cases;
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4");
    seq_with_series(d, "9.9.9");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.5");
    short_element(d, 0x0020, 0x000E, "UI", "1.2.3.6");
    cases.push_back({"plain, with a nested series UID", d, true});
  }
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4");
    seq_with_series(d, "9.9.9");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.5");
    cases.push_back({"series UID only inside an item", d, false});
  }
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3 .5 ");
    short_element(d, 0x0020, 0x000E, "UI", "1.2.3.6");
    cases.push_back({"spaces in a UID", d, false});
  }
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4\\1.2.3.7");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.5");
    short_element(d, 0x0020, 0x000E, "UI", "1.2.3.6");
    cases.push_back({"two values", d, false});
  }
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "LO", "1.2.3.4");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.5");
    short_element(d, 0x0020, 0x000E, "UI", "1.2.3.6");
    cases.push_back({"another VR", d, false});
  }
  {
    std::string d;
    short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.5");
    short_element(d, 0x0020, 0x000D, "UI", "1.2.3.8");
    short_element(d, 0x0020, 0x000E, "UI", "1.2.3.6");
    cases.push_back({"a UID twice", d, false});
  }
  {
    std::string d;  // implicit VR little endian
    for (const auto& [t, uid] : std::vector<std::pair<Tag, std::string>>{
             {Tag{0x0008, 0x0018}, "1.2.3.44"}, {Tag{0x0020, 0x000D}, "1.2.3.55"},
             {Tag{0x0020, 0x000E}, std::string("1.2.3.6\0", 8)}}) {
      tag(d, t.group, t.element);
      put32(d, static_cast<std::uint32_t>(uid.size()));
      d += uid;
    }
    cases.push_back({"implicit VR", d, true});
  }
  dicom::StructureLimits limits;
  limits.stop_at = Tag{0x0020, 0x000F}.key();
  for (const auto& c : cases) {
    const std::string bytes = part10(std::string(c.name) == "implicit VR" ? kImplicitLittle
                                                                          : kExplicitLittle,
                                     c.dataset);
    dicom::ValueCapture capture;
    for (const Tag t : kPlanTags) capture.keys.push_back(t.key());
    auto checked = dicom::check_structure(
        std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
        dicom::FileLayout::part10, limits, &capture);
    ASSERT_TRUE(checked.has_value()) << c.name << ": " << checked.error().message;
    const bool taken = !capture.ambiguous &&
                       std::all_of(capture.values.begin(), capture.values.end(),
                                   [](const auto& v) { return v.has_value(); });
    EXPECT_EQ(taken, c.taken) << c.name;
    const auto path = dir / "case.dcm";
    write_bytes(path, bytes);
    auto leading = dicom::DicomFile::read_leading_strings(path, kPlanTags);
    ASSERT_TRUE(leading.has_value()) << c.name << ": " << leading.error().message;
    auto whole = dicom::DicomFile::open(path);
    if (!whole) continue;  // refused further on; the leading part still reads
    for (std::size_t i = 0; i < kPlanTags.size(); ++i)
      EXPECT_EQ(leading->values[i], whole->string_of(kPlanTags[i])) << c.name << " #" << i;
  }
}

TEST(LeadingStrings, NotDicomAndMissingFilesFailAsOpenDoes) {
  TempDir dir;
  write_bytes(dir / "notes.txt", "not an image at all, just some text of a fair length....");
  auto text = dicom::DicomFile::read_leading_strings(dir / "notes.txt", kPlanTags);
  ASSERT_FALSE(text.has_value());
  EXPECT_EQ(text.error().code, ErrorCode::not_dicom);
  auto missing = dicom::DicomFile::read_leading_strings(dir / "gone.dcm", kPlanTags);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::io);
}


// --- The command line, as an operator runs it ------------------------------------------------

struct CommandRun {
  int exit_code;
  std::string output;
};

// Runs radguard with `args` (stdout and stderr together), within `timeout_s` seconds (exit 124
// when it runs longer). As root, `as_nobody` runs it as user nobody so that file permissions
// apply.
CommandRun radguard(const std::string& args, bool as_nobody = false, int timeout_s = 60) {
  std::string prefix = "timeout " + std::to_string(timeout_s) + " ";
  if (as_nobody && ::geteuid() == 0)
    prefix += "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  const std::string command = prefix + RADGUARD_BINARY + " " + args + " 2>&1";
  CommandRun run{-1, {}};
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) run.output += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string q(const fs::path& path) { return "'" + path.string() + "'"; }

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_all(e.path());
  return files;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = dir_ / "site.key";
    ASSERT_EQ(radguard("keygen " + q(key_)).exit_code, 0);
  }
  // Hands the scratch folder to user nobody (for runs as nobody when testing as root).
  void give_to_nobody() {
    if (::geteuid() != 0) return;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path()))
      ASSERT_EQ(::lchown(e.path().c_str(), 65534, 65534), 0);
    ASSERT_EQ(::chown(dir_.path().c_str(), 65534, 65534), 0);
    fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::group_exec |
                                     fs::perms::others_exec);
  }
  void parent_traversable() {
    // The scratch folder's parent is the system temp folder: world-traversable already.
  }
  TempDir dir_;
  fs::path key_;
};

TEST_F(Cli, UnreadableFilesAndFoldersAreFailuresNotSkippedInputs) {
  save(*make_ct("PID1", "1.2.3.1"), dir_ / "in" / "readable.dcm");
  save(*make_ct("PID1", "1.2.3.2"), dir_ / "in" / "locked.dcm");
  save(*make_ct("PID1", "1.2.3.3"), dir_ / "in" / "closed" / "inside.dcm");
  give_to_nobody();
  fs::permissions(dir_ / "in" / "locked.dcm", fs::perms::none);
  fs::permissions(dir_ / "in" / "closed", fs::perms::none);
  const auto run = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out") + " -k " +
                                q(key_) + " --no-progress",
                            /*as_nobody=*/true);
  fs::permissions(dir_ / "in" / "closed", fs::perms::owner_all);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("locked.dcm: cannot be read"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("closed: cannot be listed"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("de-identified 1 of 2 files"), std::string::npos) << run.output;
}

TEST_F(Cli, KeyFilesMustBeRegularFilesOfAKeysSize) {
  save(*make_ct(), dir_ / "in" / "a.dcm");
  const auto start = std::chrono::steady_clock::now();
  const auto run = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out") +
                                " -k /dev/zero --no-progress",
                            false, 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.exit_code, 124) << "still reading /dev/zero";
  EXPECT_NE(run.output.find("not a regular file"), std::string::npos) << run.output;

  std::ofstream(dir_ / "big.key") << std::string(100'000, '#');
  fs::permissions(dir_ / "big.key", fs::perms::owner_read);
  const auto big = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out") + " -k " +
                            q(dir_ / "big.key") + " --no-progress");
  EXPECT_NE(big.exit_code, 0);
  EXPECT_NE(big.output.find("larger than a key file can be"), std::string::npos) << big.output;
}

TEST_F(Cli, WorldReadableKeysAreUsedWithAWarning) {
  save(*make_ct(), dir_ / "in" / "a.dcm");
  const auto quiet = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out1") + " -k " +
                              q(key_) + " --no-progress");
  EXPECT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("UNPROTECTED"), std::string::npos) << quiet.output;
  fs::permissions(key_, fs::perms::others_read | fs::perms::group_read, fs::perm_options::add);
  const auto loud = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out2") + " -k " +
                             q(key_) + " --no-progress");
  EXPECT_EQ(loud.exit_code, 0) << loud.output;
  EXPECT_NE(loud.output.find("UNPROTECTED KEY FILE: permissions 0644"), std::string::npos)
      << loud.output;

  // Signing keys too.
  const auto made = radguard("keys new --key " + q(dir_ / "sign.pem") + " --cert " +
                             q(dir_ / "sign.crt") + " --algorithm ec");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  fs::permissions(dir_ / "sign.pem", fs::perms::others_read, fs::perm_options::add);
  const auto signing = radguard("sign " + q(dir_ / "out1") + " --key " + q(dir_ / "sign.pem") +
                                " --cert " + q(dir_ / "sign.crt") + " --profile none --in-place");
  EXPECT_EQ(signing.exit_code, 0) << signing.output;
  EXPECT_NE(signing.output.find("UNPROTECTED KEY FILE"), std::string::npos) << signing.output;
  const auto zero = radguard("sign " + q(dir_ / "out1") + " --key /dev/zero --cert " +
                                 q(dir_ / "sign.crt") + " --in-place",
                             false, 20);
  EXPECT_NE(zero.exit_code, 0);
  EXPECT_NE(zero.exit_code, 124) << "still reading /dev/zero";
}

TEST_F(Cli, AnExistingDifferentOutputIsNeverReplacedSilently) {
  // Two inputs of different patients that share a SOP Instance UID, de-identified into one
  // folder by two runs.
  save(*make_ct("PID1", "1.2.3.9"), dir_ / "a" / "x.dcm");
  save(*make_ct("PID2", "1.2.3.9"), dir_ / "b" / "x.dcm");
  const std::string common = " -o " + q(dir_ / "out") + " -k " + q(key_) + " --no-progress";
  ASSERT_EQ(radguard("deid " + q(dir_ / "a") + common).exit_code, 0);
  const auto first = tree(dir_ / "out");
  ASSERT_EQ(first.size(), 1U);

  // The same input again: identical output, nothing to report.
  const auto again = radguard("deid " + q(dir_ / "a") + common);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(tree(dir_ / "out"), first);

  // A different input with the same output name: refused, the earlier output stays.
  const auto clash = radguard("deid " + q(dir_ / "b") + common);
  EXPECT_EQ(clash.exit_code, 1) << clash.output;
  EXPECT_NE(clash.output.find("already exists with different content"), std::string::npos)
      << clash.output;
  EXPECT_EQ(tree(dir_ / "out"), first);

  // --overwrite replaces it.
  const auto forced = radguard("deid " + q(dir_ / "b") + common + " --overwrite");
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  const auto replaced = tree(dir_ / "out");
  ASSERT_EQ(replaced.size(), 1U);
  EXPECT_NE(replaced, first);
}

TEST_F(Cli, TemporaryFilesOfAKilledRunAreCleanedByTheNext) {
  save(*make_ct("PID1", "1.2.3.1"), dir_ / "in" / "a.dcm");
  fs::create_directories(dir_ / "out" / "1.2" / "3.4");
  // A run killed with its temporary file written but not published: _exit skips every
  // destructor, as kill -9 does.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto pending = PendingFile::create(dir_ / "out" / "1.2" / "3.4" / "5.dcm");
    if (!pending) ::_exit(2);
    std::ofstream(pending->temp_path()) << "half a file";
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::size_t left = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    left += e.path().filename().string().starts_with(".radguard-tmp-") ? 1 : 0;
  ASSERT_EQ(left, 1U);
  // This process is alive: its temporary file is not touched. Neither are other names.
  auto live = PendingFile::create(dir_ / "out" / "live.dcm");
  ASSERT_TRUE(live.has_value());
  std::ofstream(live->temp_path()) << "being written";
  std::ofstream(dir_ / "out" / ".radguard-tmp-notes") << "not ours";

  const auto run = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out") + " -k " +
                            q(key_) + " --no-progress");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  std::vector<std::string> temporaries;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out"))
    if (e.path().filename().string().starts_with(".radguard-tmp-"))
      temporaries.push_back(e.path().filename().string());
  EXPECT_EQ(temporaries.size(), 2U);
  EXPECT_TRUE(fs::exists(live->temp_path()));
  EXPECT_TRUE(fs::exists(dir_ / "out" / ".radguard-tmp-notes"));
}

TEST(Staging, FoldersOfKilledExportsAreRemovedLiveOnesKept) {
  TempDir dir;
  fs::create_directories(dir / ".staging-release-20260101T000000Z-dead" / "1.2");
  std::ofstream(dir / ".staging-release-20260101T000000Z-dead" / "1.2" / "x.dcm") << "partial";
  fs::create_directories(dir / ".staging-release-20260101T000000Z-live");
  fs::create_directories(dir / "release-20260101T000000Z-done");
  const int fd = ::open((dir / ".staging-release-20260101T000000Z-live").c_str(),
                        O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a running export holds it
  // flock is per open file description: another open in this process does not share it, so
  // the check sees it locked just as another process would.
  EXPECT_EQ(exporter::remove_stale_staging(dir.path()).removed, 1U);
  ::close(fd);
  EXPECT_FALSE(fs::exists(dir / ".staging-release-20260101T000000Z-dead"));
  EXPECT_TRUE(fs::exists(dir / ".staging-release-20260101T000000Z-live"));
  EXPECT_TRUE(fs::exists(dir / "release-20260101T000000Z-done"));
}

// An export killed after its ledger entry committed and before the rename left a staging
// folder its entry records: the next run publishes it (as recorded), and removes one whose
// manifest differs from the recorded one or that no released entry names.
TEST(Staging, ARecordedReleaseOfAKilledExportIsPublishedOthersRemoved) {
  TempDir dir;
  auto ledger = ledger::Ledger::open((dir / "ledger.db").string(),
                                     ledger::LedgerAccess::create_if_missing);
  ASSERT_TRUE(ledger) << ledger.error().message;
  // A staging folder with one file and a manifest listing it; returns the manifest's text.
  auto stage = [&](const std::string& release) {
    const fs::path staging = dir / "out" / (".staging-" + release);
    fs::create_directories(staging / "1.2");
    std::ofstream(staging / "1.2" / "x.dcm") << "whole";
    const std::string manifest =
        "{\"format\": \"radguard-release-manifest/1\", \"release\": \"" + release +
        "\", \"files\": [{\"path\": \"1.2/x.dcm\", \"sha256\": \"" +
        crypto::to_hex(crypto::sha256("whole")) + "\", \"bytes\": 5}]}\n";
    std::ofstream(staging / "manifest.json") << manifest;
    return manifest;
  };
  auto record = [&](const std::string& release, const std::string& manifest) {
    ledger::Entry entry;
    entry.status = ledger::EntryStatus::released;
    entry.recipient = "Lab";
    entry.purpose = "research";
    entry.release = release;
    entry.output_digest = crypto::to_hex(crypto::sha256(manifest));
    ASSERT_TRUE(ledger->append(entry));
  };
  record("release-20260101T000000Z-recorded", stage("release-20260101T000000Z-recorded"));
  // Recorded, but a file that its manifest does not list came back: not published, kept.
  record("release-20260101T000000Z-extra", stage("release-20260101T000000Z-extra"));
  std::ofstream(dir / "out" / ".staging-release-20260101T000000Z-extra" / "1.2" / "y.dcm")
      << "withheld";
  // Recorded with another manifest: not published, kept.
  stage("release-20260101T000000Z-altered");
  record("release-20260101T000000Z-altered", "{}");
  stage("release-20260101T000000Z-unrecorded");
  const auto done = exporter::remove_stale_staging(dir / "out", &*ledger);
  EXPECT_EQ(done.published, 1U);
  EXPECT_EQ(done.kept, 2U);
  EXPECT_EQ(done.removed, 1U);
  EXPECT_TRUE(fs::exists(dir / "out" / "release-20260101T000000Z-recorded" / "1.2" / "x.dcm"));
  EXPECT_FALSE(fs::exists(dir / "out" / "release-20260101T000000Z-extra"));
  EXPECT_FALSE(fs::exists(dir / "out" / "release-20260101T000000Z-altered"));
  EXPECT_FALSE(fs::exists(dir / "out" / ".staging-release-20260101T000000Z-unrecorded"));
  EXPECT_TRUE(fs::exists(dir / "out" / ".staging-release-20260101T000000Z-altered"));
}

// Starts radguard with `args` (no shell), its output discarded; returns its process id.
pid_t spawn_radguard(const std::vector<std::string>& args) {
  const pid_t child = ::fork();
  if (child == 0) {
    std::vector<char*> argv;
    std::string binary = RADGUARD_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copies(args);
    for (auto& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return child;
}

TEST_F(Cli, KillNineLeavesNoPartialOutputAndARerunCompletesIdentically) {
  for (int i = 0; i < 300; ++i)
    save(*make_ct("PID" + std::to_string(i % 7), "1.2.3." + std::to_string(i + 1), 64, 64),
         dir_ / "in" / ("f" + std::to_string(i) + ".dcm"));
  const std::vector<std::string> common = {"deid", (dir_ / "in").string(), "-k", key_.string(),
                                           "--no-progress", "-j", "2", "-o"};
  auto args_for = [&](const fs::path& out) {
    auto args = common;
    args.push_back(out.string());
    return args;
  };
  ASSERT_EQ(radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "reference") + " -k " +
                     q(key_) + " --no-progress -j 2")
                .exit_code,
            0);
  const auto reference = tree(dir_ / "reference");
  ASSERT_EQ(reference.size(), 300U);
  for (const int delay_ms : {20, 80, 200, 400}) {
    const fs::path out = dir_ / ("out-" + std::to_string(delay_ms));
    const pid_t child = spawn_radguard(args_for(out));
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    // Whatever was published at the kill is complete: byte-identical to the reference.
    if (fs::exists(out)) {
      for (const auto& [name, bytes] : tree(out)) {
        if (fs::path(name).filename().string().starts_with(".radguard-tmp-")) continue;
        const auto expected = reference.find(name);
        ASSERT_NE(expected, reference.end()) << delay_ms << " ms: unexpected " << name;
        EXPECT_EQ(bytes, expected->second) << delay_ms << " ms: partial " << name;
      }
    }
    // A rerun completes, identically, and leaves nothing of the killed run behind.
    const auto rerun = radguard("deid " + q(dir_ / "in") + " -o " + q(out) + " -k " + q(key_) +
                                " --no-progress -j 2");
    EXPECT_EQ(rerun.exit_code, 0) << delay_ms << " ms: " << rerun.output;
    EXPECT_EQ(tree(out), reference) << delay_ms << " ms";
  }
}

// The files of the single release-* folder under `out` (manifest.json aside: it names the
// release and its time), keyed by path inside the release; empty when there is none.
std::map<std::string, std::string> release_files(const fs::path& out, std::size_t& releases) {
  std::map<std::string, std::string> files;
  releases = 0;
  if (!fs::exists(out)) return files;
  for (const auto& e : fs::directory_iterator(out)) {
    if (!e.path().filename().string().starts_with("release-")) continue;
    ++releases;
    for (auto [name, bytes] : tree(e.path()))
      if (name != "manifest.json") files[name] = std::move(bytes);
  }
  return files;
}

TEST_F(Cli, KillNineDuringExportLeavesNoPartialReleaseAndARerunCompletes) {
  // One study of 240 images (make_ct gives every file the same study).
  for (int i = 0; i < 240; ++i)
    save(*make_ct("PID7", "1.2.3." + std::to_string(i + 1), 64, 64),
         dir_ / "in" / ("f" + std::to_string(i) + ".dcm"));
  std::ofstream(dir_ / "consents.csv") << "patient_id,purpose,decision,date\n"
                                       << "PID7,ai-training,permit,2025-01-10\n";
  ASSERT_EQ(radguard("consent import " + q(dir_ / "consents.csv") + " --registry " +
                     q(dir_ / "reg.db"))
                .exit_code,
            0);
  auto args_for = [&](const fs::path& out, const fs::path& ledger) {
    return std::vector<std::string>{"export", (dir_ / "in").string(), "--output", out.string(),
                                    "--purpose", "ai-training", "--recipient", "Lab",
                                    "--key", key_.string(), "--registry",
                                    (dir_ / "reg.db").string(), "--ledger", ledger.string(),
                                    "--no-progress"};
  };
  auto command = [&](const fs::path& out, const fs::path& ledger) {
    std::string line;
    for (const auto& a : args_for(out, ledger)) line += q(a) + " ";
    return line;
  };
  const auto first = radguard(command(dir_ / "reference", dir_ / "reference.db"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::size_t releases = 0;
  const auto reference = release_files(dir_ / "reference", releases);
  ASSERT_EQ(releases, 1U);
  ASSERT_EQ(reference.size(), 240U);
  for (const int delay_ms : {20, 50, 80, 110, 140, 170, 200, 240, 400}) {
    const fs::path out = dir_ / ("out-" + std::to_string(delay_ms));
    const fs::path ledger = dir_ / ("ledger-" + std::to_string(delay_ms) + ".db");
    const pid_t child = spawn_radguard(args_for(out, ledger));
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    // Visible at the kill: nothing, or the whole release (recorded in the ledger).
    const auto killed = release_files(out, releases);
    std::size_t hidden_at_kill = 0;
    if (fs::exists(out))
      for (const auto& e : fs::directory_iterator(out))
        hidden_at_kill += e.path().filename().string().starts_with(".");
    std::cout << "killed after " << delay_ms << " ms: " << releases << " release(s), "
              << hidden_at_kill << " staging folder(s) left\n";
    EXPECT_LE(releases, 1U) << delay_ms << " ms";
    if (releases == 1) {
      EXPECT_EQ(killed, reference) << delay_ms << " ms: a partial release";
      EXPECT_EQ(radguard("ledger verify --ledger " + q(ledger) + " --releases " + q(out)).exit_code,
                0)
          << delay_ms << " ms: a release the ledger does not record";
    }
    // A rerun completes, releases the same files, leaves no staging folder, and every
    // release folder is recorded.
    const std::size_t before = releases;
    std::string hidden_names;
    const auto rerun = radguard(command(out, ledger));
    EXPECT_EQ(rerun.exit_code, 0) << delay_ms << " ms: " << rerun.output;
    std::size_t hidden = 0;
    for (const auto& e : fs::directory_iterator(out)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with(".")) {
        ++hidden;
        hidden_names += " " + name;
      }
      if (!name.starts_with("release-")) continue;
      std::map<std::string, std::string> files;
      for (auto [file, bytes] : tree(e.path()))
        if (file != "manifest.json") files[file] = std::move(bytes);
      EXPECT_EQ(files, reference) << delay_ms << " ms: " << name;
    }
    release_files(out, releases);
    // The rerun's own release, and the killed run's when its entry had committed before the
    // rename (the rerun publishes it, as the ledger records it).
    EXPECT_GE(releases, before + 1) << delay_ms << " ms";
    EXPECT_LE(releases, before + 1 + hidden_at_kill) << delay_ms << " ms";
    EXPECT_EQ(hidden, 0U) << delay_ms << " ms: a staging folder or temporary file stayed:"
                          << hidden_names << "\n" << rerun.output;
    const auto verified = radguard("ledger verify --ledger " + q(ledger) + " --releases " + q(out));
    EXPECT_EQ(verified.exit_code, 0) << delay_ms << " ms: " << verified.output;
  }
}

// A tmpfs of a few pages, mounted for the test (root only).
class SmallFileSystem {
 public:
  explicit SmallFileSystem(const fs::path& where, const std::string& size) : where_(where) {
    fs::create_directories(where);
    mounted_ = ::mount("tmpfs", where.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallFileSystem() {
    if (mounted_) ::umount2(where_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  fs::path where_;
  bool mounted_ = false;
};

TEST_F(Cli, AFullDiskPublishesNoShortFileAndFails) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs (full-disk test)";
  for (int i = 0; i < 60; ++i)
    save(*make_ct("PID1", "1.2.3." + std::to_string(i + 1)),
         dir_ / "in" / ("f" + std::to_string(i) + ".dcm"));
  SmallFileSystem disk(dir_ / "out", "96k");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (full-disk test)";
  const auto run = radguard("deid " + q(dir_ / "in") + " -o " + q(dir_ / "out") + " -k " +
                            q(key_) + " --no-progress -j 2");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("No space left on device"), std::string::npos) << run.output;
  std::size_t published = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "out")) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    EXPECT_FALSE(name.starts_with(".radguard-tmp-")) << "left behind: " << e.path();
    if (!name.ends_with(".dcm")) continue;
    ++published;
    EXPECT_GT(e.file_size(), 1000U) << e.path();
    auto opened = dicom::DicomFile::open(e.path());
    EXPECT_TRUE(opened.has_value()) << e.path() << ": " << opened.error().message;
  }
  EXPECT_GT(published, 0U);
  EXPECT_LT(published, 60U);
}

// --- Pixel headers that disagree with their pixel data ------------------------------------

struct PixelCase {
  const char* name;
  const char* syntax;
  bool encapsulated;       // pixel data as fragments
  std::string first_data;  // the first fragment, or the native value
  std::uint16_t rows = 16;
  const char* frames = nullptr;
  const char* reason;
  std::uint16_t columns = 16;
};

void PrintTo(const PixelCase& c, std::ostream* os) { *os << c.name; }

std::string image_file(const PixelCase& c) {
  std::string d;
  short_element(d, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7");
  short_element(d, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8.9");
  short_element(d, 0x0008, 0x0060, "CS", "OT");
  short_element(d, 0x0010, 0x0020, "LO", "PID");
  short_element(d, 0x0020, 0x000D, "UI", "1.2.3.4.5.1");
  short_element(d, 0x0020, 0x000E, "UI", "1.2.3.4.5.2");
  short_element(d, 0x0028, 0x0002, "US", std::string("\1\0", 2));
  short_element(d, 0x0028, 0x0004, "CS", "MONOCHROME2");
  if (c.frames != nullptr) short_element(d, 0x0028, 0x0008, "IS", c.frames);
  short_element(d, 0x0028, 0x0010, "US", std::string(reinterpret_cast<const char*>(&c.rows), 2));
  short_element(d, 0x0028, 0x0011, "US",
                std::string(reinterpret_cast<const char*>(&c.columns), 2));
  short_element(d, 0x0028, 0x0100, "US", std::string("\x08\0", 2));
  short_element(d, 0x0028, 0x0101, "US", std::string("\x08\0", 2));
  short_element(d, 0x0028, 0x0102, "US", std::string("\x07\0", 2));
  short_element(d, 0x0028, 0x0103, "US", std::string("\0\0", 2));
  tag(d, 0x7FE0, 0x0010);
  d += "OB";
  put16(d, 0);
  if (!c.encapsulated) {
    put32(d, static_cast<std::uint32_t>(c.first_data.size() + c.first_data.size() % 2));
    d += c.first_data;
    if (c.first_data.size() % 2) d += '\0';
  } else {
    put32(d, 0xFFFFFFFF);
    tag(d, 0xFFFE, 0xE000);
    put32(d, 0);
    std::string fragment = c.first_data;
    if (fragment.size() % 2) fragment += '\0';
    tag(d, 0xFFFE, 0xE000);
    put32(d, static_cast<std::uint32_t>(fragment.size()));
    d += fragment;
    tag(d, 0xFFFE, 0xE0DD);
    put32(d, 0);
  }
  return part10(c.syntax, d);
}

const std::string kJpegStart = std::string("\xFF\xD8\xFF\xDB", 4) + std::string(60, '\x11');
const std::string kRleStart = std::string("\x01\0\0\0\x40\0\0\0", 8) + std::string(56, '\0') +
                              std::string("\xFF\0", 2) + std::string(14, '\0');

class PixelHeaders : public ::testing::TestWithParam<PixelCase> {};

TEST_P(PixelHeaders, InconsistentOnesAreMalformedAndNotReleased) {
  TempDir dir;
  const auto input = dir / "in" / "img.dcm";
  fs::create_directories(input.parent_path());
  write_bytes(input, image_file(GetParam()));
  const auto result = testing::deidentify(input, dir / "out", "basic");
  EXPECT_FALSE(result.output.has_value());
  EXPECT_NE(result.error.find(GetParam().reason), std::string::npos) << "[" << result.error << "]";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PixelHeaders,
    ::testing::Values(
        PixelCase{"RowsFarBeyondTheData", kExplicitLittle, false, std::string(256, '\1'), 4096,
                  nullptr, "inconsistent pixel header"},
        PixelCase{"FramesFarBeyondTheData", kExplicitLittle, false, std::string(256, '\1'), 16,
                  "500", "inconsistent pixel header"},
        PixelCase{"DataBeyondTheImage", kExplicitLittle, false, std::string(4096, '\1'), 16,
                  nullptr, "more than the 256"},
        PixelCase{"NativeSyntaxEncapsulatedData", kExplicitLittle, true, kJpegStart, 16, nullptr,
                  "the syntax is native but the pixel data is encapsulated"},
        PixelCase{"JpegSyntaxNativeData", "1.2.840.10008.1.2.4.50", false,
                  std::string(256, '\1'), 16, nullptr,
                  "compressed Transfer Syntax uses explicit length"},  // DCMTK refuses it
        PixelCase{"JpegSyntaxRleData", "1.2.840.10008.1.2.4.50", true, kRleStart, 16, nullptr,
                  "the first fragment is not"},
        PixelCase{"Jpeg2000SyntaxJpegData", "1.2.840.10008.1.2.4.90", true, kJpegStart, 16,
                  nullptr, "the first fragment is not"},
        PixelCase{"RleSyntaxJpegData", "1.2.840.10008.1.2.5", true, kJpegStart, 16, nullptr,
                  "the first fragment is not"},
        PixelCase{"MoreFramesThanFragments", "1.2.840.10008.1.2.5", true, kRleStart, 16, "40",
                  "larger than the number of pixel data fragments"}),
    [](const ::testing::TestParamInfo<PixelCase>& p) { return std::string(p.param.name); });

TEST(PixelHeaders, ConsistentOnesPass) {
  TempDir dir;
  const auto input = dir / "in" / "img.dcm";
  fs::create_directories(input.parent_path());
  write_bytes(input, image_file(PixelCase{"ok", kExplicitLittle, false, std::string(256, '\1'),
                                          16, nullptr, ""}));
  const auto native = testing::deidentify(input, dir / "out", "basic");
  EXPECT_TRUE(native.output.has_value()) << native.error;
  write_bytes(input, image_file(PixelCase{"rle", "1.2.840.10008.1.2.5", true, kRleStart, 16,
                                          nullptr, ""}));
  const auto rle = testing::deidentify(input, dir / "out2", "basic");
  EXPECT_TRUE(rle.output.has_value()) << rle.error;
}

// --- Decoded sizes: pixel data and volumes ---------------------------------------------------

// A JPEG baseline file declaring 65535 x 4096 samples (268 M: under the 256 Mi per frame and
// 2 Gi per image allowed before, so DCMTK allocated it before finding the data corrupt).
TEST(DecodeBudget, ImagesAbove128MiSamplesAreRefusedBeforeAnyDecoding) {
  TempDir dir;
  PixelCase c{"huge", "1.2.840.10008.1.2.4.50", true, kJpegStart, 65535, nullptr, ""};
  c.columns = 4096;
  const auto input = dir / "huge.dcm";
  write_bytes(input, image_file(c));
  auto file = dicom::DicomFile::open(input);
  ASSERT_TRUE(file) << file.error().message;
  auto decoded = dicom::decode_pixels(*file);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ErrorCode::unsupported);
  EXPECT_NE(decoded.error().message.find("image too large to decode: 268 million samples"),
            std::string::npos)
      << decoded.error().message;
  // Native data is held to the same limit (8 bits: 4096 x 4096 x 9 frames is 151 M samples).
  PixelCase native{"native", kExplicitLittle, false, "", 4096, "9", ""};
  native.columns = 4096;
  native.first_data = std::string(std::size_t{4096} * 4096 * 9, '\1');
  write_bytes(input, image_file(native));
  auto big = dicom::DicomFile::open(input);
  ASSERT_TRUE(big) << big.error().message;
  auto refused = dicom::decode_pixels(*big);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("too large to decode"), std::string::npos)
      << refused.error().message;
}

// Fuzzing found JPEG fragments on which DCMTK 3.6.7's decoder never returns: its walk for the
// bit depth stops moving at a TEM marker (FF 01). fuzz/findings holds the two originals; these
// are the same shape, made by hand: fill bytes, then FF 01, before any frame header. Each runs
// in a child with an alarm, so a stall fails the test instead of hanging the suite.
TEST(HostileJpeg, TemMarkerBeforeTheFrameHeaderIsRefusedNotDecodedForever) {
  const std::string fragment = std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"
                                           "\x00\x01\x00\x00\xFF\xFF\xFF\xFF\xFF\x01\x20\x00",
                                           28) +
                               std::string(40, '\x11');
  for (const char* syntax : {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70"}) {
    TempDir dir;
    const auto input = dir / "tem.dcm";
    write_bytes(input, image_file(PixelCase{"tem", syntax, true, fragment, 16, nullptr, ""}));
    EXPECT_EXIT(
        {
          ::alarm(10);
          auto file = dicom::DicomFile::open(input);
          if (!file) std::_Exit(2);
          auto decoded = dicom::decode_pixels(*file);
          const bool refused = !decoded && decoded.error().code == ErrorCode::malformed_dicom &&
                               decoded.error().message.find("TEM marker") != std::string::npos;
          std::_Exit(refused ? 0 : 3);
        },
        ::testing::ExitedWithCode(0), "")
        << syntax;
  }
}

long peak_rss_mb() {
  struct rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// Writes `head` then `zeros` zero bytes through gzip (level 1: fast, still ~1000:1).
void write_gz(const fs::path& path, const std::string& head, std::uint64_t zeros) {
  gzFile out = gzopen(path.c_str(), "wb1");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, head.data(), static_cast<unsigned>(head.size())),
            static_cast<int>(head.size()));
  const std::string block(1 << 20, '\0');
  for (std::uint64_t left = zeros; left > 0;) {
    const auto n = static_cast<unsigned>(std::min<std::uint64_t>(left, block.size()));
    ASSERT_EQ(gzwrite(out, block.data(), n), static_cast<int>(n));
    left -= n;
  }
  ASSERT_EQ(gzclose(out), Z_OK);
}

// A NIfTI-1 header (and empty extension flag) for uint8 voxels of `dims`.
std::string nifti_header(std::int16_t x, std::int16_t y, std::int16_t z) {
  std::string h(352, '\0');
  auto put = [&h](std::size_t offset, auto value) {
    std::memcpy(h.data() + offset, &value, sizeof value);
  };
  put(0, std::int32_t{348});
  const std::int16_t dim[8] = {3, x, y, z, 1, 1, 1, 1};
  for (std::size_t n = 0; n < 8; ++n) put(40 + 2 * n, dim[n]);
  put(70, std::int16_t{2});  // uint8
  put(72, std::int16_t{8});
  for (std::size_t n = 0; n < 4; ++n) put(76 + 4 * n, 1.0f);
  put(108, 352.0f);
  std::memcpy(h.data() + 344, "n+1\0", 4);
  return h;
}

TEST(DecodeBudget, ANiftiGzipBombStopsAtTheLimit) {
  TempDir dir;
  const auto input = dir / "bomb.nii.gz";
  // 8 x 8 x 8 voxels, then 400 MiB of zeros the reader used to inflate and hold whole.
  write_gz(input, nifti_header(8, 8, 8), std::uint64_t{400} << 20);
  const auto started = std::chrono::steady_clock::now();
  auto image = volume::read_nifti(input);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().code, ErrorCode::unsupported);
  EXPECT_NE(image.error().message.find("decompresses to) more than 272 MiB"), std::string::npos)
      << image.error().message;
  EXPECT_LT(seconds, 10.0);
  EXPECT_LT(peak_rss_mb(), 1000);
}

TEST(DecodeBudget, VolumesOfMoreThan64MiVoxelsAreRefused) {
  TempDir dir;
  const auto input = dir / "large.nii.gz";
  write_gz(input, nifti_header(1024, 512, 129), std::uint64_t{1024} * 512 * 129);
  auto image = volume::read_nifti(input);
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().code, ErrorCode::unsupported);
  EXPECT_NE(image.error().message.find("67633152 voxels, more than the 67108864"),
            std::string::npos)
      << image.error().message;
  // Just under the limit still reads.
  write_gz(input, nifti_header(1024, 512, 128), std::uint64_t{1024} * 512 * 128);
  EXPECT_TRUE(volume::read_nifti(input));
}

// An InVesalius project (gzip-compressed ustar) of the given members.
void write_inv3(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& members,
                std::uint64_t zero_member_bytes = 0) {
  std::string tar;
  auto header = [&tar](const std::string& name, std::uint64_t size) {
    std::string h(512, '\0');
    std::memcpy(h.data(), name.data(), std::min<std::size_t>(name.size(), 99));
    std::snprintf(h.data() + 100, 8, "%07o", 0644);
    std::snprintf(h.data() + 124, 12, "%011llo", static_cast<unsigned long long>(size));
    h[156] = '0';
    std::memcpy(h.data() + 257, "ustar\0" "00", 8);
    tar += h;
  };
  for (const auto& [name, data] : members) {
    header("project/" + name, data.size());
    tar += data;
    tar.append((512 - data.size() % 512) % 512, '\0');
  }
  if (zero_member_bytes > 0) header("project/surface_0.vtp", zero_member_bytes);
  // The zeros of that member, then the archive's end (zero blocks), come from write_gz.
  write_gz(path, tar, zero_member_bytes + (zero_member_bytes % 512 ? 512 - zero_member_bytes % 512 : 0) + 1024);
}

std::string inv3_plist(int slices, int rows, int columns) {
  return "<plist><dict><key>matrix</key><dict><key>dtype</key><string>int16</string>"
         "<key>filename</key><string>matrix.dat</string><key>shape</key><array><integer>" +
         std::to_string(slices) + "</integer><integer>" + std::to_string(rows) +
         "</integer><integer>" + std::to_string(columns) +
         "</integer></array></dict><key>spacing</key><array><real>1.0</real><real>1.0</real>"
         "<real>1.0</real></array></dict></plist>";
}

TEST(DecodeBudget, InvesaliusShapesANiftiHeaderCannotHoldAreRefused) {
  TempDir dir;
  const auto input = dir / "long.inv3";
  // 40000 slices of 10 x 10: read whole before, then written as a NIfTI header saying -25536.
  write_inv3(input, {{"main.plist", inv3_plist(40000, 10, 10)},
                     {"matrix.dat", std::string(std::size_t{40000} * 10 * 10 * 2, '\0')}});
  auto v = volume::read_inv3(input);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("bad matrix geometry"), std::string::npos) << v.error().message;
  write_inv3(input, {{"main.plist", inv3_plist(4, 10, 10)},
                     {"matrix.dat", std::string(std::size_t{4} * 10 * 10 * 2, '\0')}});
  EXPECT_TRUE(volume::read_inv3(input));
}

TEST(DecodeBudget, InvesaliusMembersItDoesNotNeedAreNotHeld) {
  TempDir dir;
  const auto input = dir / "surfaces.inv3";
  // A small matrix next to 600 MiB of surface data: the project used to be held whole.
  write_inv3(input, {{"main.plist", inv3_plist(4, 10, 10)},
                     {"matrix.dat", std::string(std::size_t{4} * 10 * 10 * 2, '\1')}},
             std::uint64_t{600} << 20);
  auto v = volume::read_inv3(input);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->voxels.size(), 400U);
  EXPECT_LT(peak_rss_mb(), 300);
}

// --- Signatures -----------------------------------------------------------------------------

class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", zone, 1);
    ::tzset();
  }
  ~ScopedTimeZone() {
    if (old_) {
      ::setenv("TZ", old_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST(Signatures, ASignatureDatedInAZoneWestOfUtcIsNotBeforeItsCertificate) {
  TempDir dir;
  signing::TestIdentityRequest request;
  request.algorithm = signing::KeyAlgorithm::ecdsa_p256;
  ASSERT_TRUE(signing::write_test_identity(dir / "k.pem", dir / "c.pem", request).has_value());
  save(*make_ct(), dir / "in.dcm");
  auto signer = dicom::Signer::load(dir / "k.pem", dir / "c.pem", dicom::SignatureProfile::none);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  {
    // DCMTK dates the signature in local time with its offset; five hours behind UTC the
    // local time lies before the certificate's notBefore read as UTC.
    const ScopedTimeZone zone("EST5");
    ASSERT_TRUE(dicom::sign_file(dir / "in.dcm", dir / "signed.dcm", *signer).has_value());
  }
  auto trust = dicom::TrustStore::load(std::vector<fs::path>{dir / "c.pem"});
  ASSERT_TRUE(trust.has_value());
  auto verdict = dicom::verify_file(dir / "signed.dcm", *trust);
  ASSERT_TRUE(verdict.has_value()) << verdict.error().message;
  EXPECT_EQ(verdict->verdict, dicom::Verdict::valid)
      << (verdict->signatures.empty() ? "" : verdict->signatures.front().reason);
}


// A self-signed EC certificate whose validity starts `not_before_seconds` from now.
void write_certificate(const fs::path& key_path, const fs::path& cert_path,
                       long not_before_seconds) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before_seconds);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400L);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("same second"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  FILE* k = std::fopen(key_path.c_str(), "w");
  FILE* c = std::fopen(cert_path.c_str(), "w");
  PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_X509(c, cert);
  std::fclose(k);
  std::fclose(c);
  fs::permissions(key_path, fs::perms::owner_read | fs::perms::owner_write);
  X509_free(cert);
  EVP_PKEY_free(key);
}

TEST(Signatures, ACertificateMadeInTheSameSecondAsTheSignatureIsValid) {
  TempDir dir;
  save(*make_ct(), dir / "in.dcm");
  // Clocks read by different routines straddle a second boundary: the certificate's
  // notBefore lies up to a second after the signature's own time.
  write_certificate(dir / "k.pem", dir / "c.pem", 1);
  const ScopedTimeZone zone("UTC0");
  auto signer = dicom::Signer::load(dir / "k.pem", dir / "c.pem", dicom::SignatureProfile::none);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  ASSERT_TRUE(dicom::sign_file(dir / "in.dcm", dir / "signed.dcm", *signer).has_value());
  // Verified later, once the certificate is valid now as well.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto trust = dicom::TrustStore::load(std::vector<fs::path>{dir / "c.pem"});
  ASSERT_TRUE(trust.has_value());
  auto verdict = dicom::verify_file(dir / "signed.dcm", *trust);
  ASSERT_TRUE(verdict.has_value()) << verdict.error().message;
  EXPECT_EQ(verdict->verdict, dicom::Verdict::valid)
      << (verdict->signatures.empty() ? "" : verdict->signatures.front().reason);

  // A certificate that only starts well after the signature still makes it "expired".
  write_certificate(dir / "k2.pem", dir / "c2.pem", 120);
  auto late = dicom::Signer::load(dir / "k2.pem", dir / "c2.pem", dicom::SignatureProfile::none);
  ASSERT_TRUE(late.has_value());
  ASSERT_TRUE(dicom::sign_file(dir / "in.dcm", dir / "late.dcm", *late).has_value());
  auto late_trust = dicom::TrustStore::load(std::vector<fs::path>{dir / "c2.pem"});
  auto late_verdict = dicom::verify_file(dir / "late.dcm", *late_trust);
  ASSERT_TRUE(late_verdict.has_value());
  EXPECT_EQ(late_verdict->verdict, dicom::Verdict::expired_certificate);
}

// Signs `input` and verifies the result with the signer's own certificate as trust anchor.
dicom::FileVerification sign_and_verify(const fs::path& input, const TempDir& dir) {
  const auto key = dir / "k.pem", cert = dir / "c.pem";
  if (!fs::exists(key)) {
    signing::TestIdentityRequest request;
    request.algorithm = signing::KeyAlgorithm::ecdsa_p256;
    EXPECT_TRUE(signing::write_test_identity(key, cert, request).has_value());
  }
  auto signer = dicom::Signer::load(key, cert, dicom::SignatureProfile::none);
  EXPECT_TRUE(signer.has_value());
  const auto output = dir / ("signed-" + input.filename().string());
  auto signed_file = dicom::sign_file(input, output, *signer);
  EXPECT_TRUE(signed_file.has_value()) << signed_file.error().message;
  auto trust = dicom::TrustStore::load(std::vector<fs::path>{cert});
  auto verdict = dicom::verify_file(output, *trust);
  EXPECT_TRUE(verdict.has_value());
  return verdict.value_or(dicom::FileVerification{});
}

std::string changes_of(const dicom::FileVerification& v) {
  std::string out;
  for (const auto& c : v.changes) out += c + "; ";
  return out;
}

TEST(Signatures, ImplicitVrFilesWithPrivateElementsVerifyAfterSigning) {
  TempDir dir;
  auto ct = make_ct();
  DcmDataset& dataset = *ct->getDataset();
  ASSERT_TRUE(dataset.putAndInsertString(DcmTag(0x0009, 0x0010, EVR_LO), "ACME 1.0").good());
  ASSERT_TRUE(dataset.putAndInsertString(DcmTag(0x0009, 0x1001, EVR_LO), "private").good());
  DcmItem* item = nullptr;
  ASSERT_TRUE(
      dataset.findOrCreateSequenceItem(DcmTag(0x0009, 0x1002, EVR_SQ), item, 0).good());
  ASSERT_TRUE(item->putAndInsertString(DcmTag(0x0009, 0x0010, EVR_LO), "ACME 1.0").good());
  save(*ct, dir / "implicit.dcm", EXS_LittleEndianImplicit);
  const auto verdict = sign_and_verify(dir / "implicit.dcm", dir);
  EXPECT_EQ(verdict.verdict, dicom::Verdict::valid) << changes_of(verdict);
  EXPECT_TRUE(verdict.changes.empty()) << changes_of(verdict);
}

TEST(Signatures, PydicomSamplesWithPrivateElementsVerifyAfterSigning) {
  TempDir dir;
  std::size_t checked = 0;
  for (const char* name : {"priv_SQ.dcm", "nested_priv_SQ.dcm", "J2K_pixelrep_mismatch.dcm",
                           "rtdose_rle.dcm", "MR_small_implicit.dcm"}) {
    const auto sample = testing::pydicom_sample(name);
    if (sample.empty()) continue;
    ++checked;
    const auto verdict = sign_and_verify(sample, dir);
    // A test identity is its own anchor but not a trusted CA here: untrusted_signer at best.
    EXPECT_EQ(verdict.verdict, dicom::Verdict::valid) << name << ": "
                                                                 << changes_of(verdict);
    EXPECT_TRUE(verdict.changes.empty()) << name << ": " << changes_of(verdict);
  }
  if (checked == 0) GTEST_SKIP() << "python3-pydicom samples not installed";
}


// --- Mutation smoke test: a fixed-seed stand-in for fuzzing in the normal suite ------------

// Bit flips, hostile lengths, truncation and duplicated ranges applied to well-formed files
// in every native syntax, deflated and RLE: each mutant is opened, checked and de-identified.
// Nothing may crash (under RADGUARD_SANITIZE, nothing may touch memory it should not), and a
// refusal always carries a reason.
TEST(MutationSmoke, MutatedFilesNeverCrashTheReaderOrTheHeaderStage) {
  TempDir dir;
  std::vector<std::string> seeds;
  for (const E_TransferSyntax xfer : {EXS_LittleEndianExplicit, EXS_LittleEndianImplicit,
                                      EXS_BigEndianExplicit, EXS_DeflatedLittleEndianExplicit,
                                      EXS_RLELossless}) {
    auto ct = make_ct("PID1", "1.2.3.4.5.6", 8, 8, 2);
    DcmItem* item = nullptr;
    ct->getDataset()->findOrCreateSequenceItem(DCM_ReferencedImageSequence, item, 0);
    item->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.3.4.5.7");
    save(*ct, dir / "seed.dcm", xfer);
    seeds.push_back(read_all(dir / "seed.dcm"));
  }
  seeds.push_back(part10(kImplicitLittle, nested(20, false, false)));
  seeds.push_back(part10(kExplicitLittle, nested(20, true, true)));

  auto policy = deid::Policy::create("basic", {}, std::nullopt);
  ASSERT_TRUE(policy.has_value());
  const deid::HeaderStage stage(std::move(*policy), pseudonym::Pseudonymizer(testing::test_key()),
                                deid::BurnedInPolicy::reject);
  std::mt19937 random(14);
  auto pick = [&](std::size_t n) {
    return static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(random));
  };
  std::size_t opened = 0, written = 0;
  constexpr int kMutants = 1500;
  for (int i = 0; i < kMutants; ++i) {
    std::string bytes = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const std::size_t start = std::min<std::size_t>(132, bytes.size() - 1);
    const int edits = 1 + static_cast<int>(pick(4));
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = start + pick(bytes.size() - start);
      switch (pick(5)) {
        case 0:  // flip bits
          bytes[at] = static_cast<char>(bytes[at] ^ static_cast<char>(1 << pick(8)));
          break;
        case 1:  // a hostile length or tag
          for (std::size_t k = 0; k < 4 && at + k < bytes.size(); ++k)
            bytes[at + k] = static_cast<char>(pick(2) ? 0xFF : pick(256));
          break;
        case 2:  // truncate
          bytes.resize(std::max(at, start + 1));
          break;
        case 3: {  // duplicate a range
          const std::size_t length = std::min<std::size_t>(1 + pick(64), bytes.size() - at);
          bytes.insert(at, bytes.substr(at, length));
          break;
        }
        default:  // undefined lengths where there were none
          if (at + 4 <= bytes.size()) bytes.replace(at, 4, "\xFF\xFF\xFF\xFF");
          break;
      }
    }
    const auto input = dir / "mutant.dcm";
    write_bytes(input, bytes);
    auto file = dicom::DicomFile::open(input);
    if (!file) {
      EXPECT_FALSE(file.error().message.empty());
      continue;
    }
    ++opened;
    (void)dicom::check_pixel_consistency(*file);
    const auto outcome = deid::deidentify_file(input, dir / "out", stage);
    if (outcome.status == deid::FileStatus::written) {
      ++written;
      fs::remove_all(dir / "out");
    } else {
      EXPECT_FALSE(outcome.reason.empty());
    }
  }
  // The mutants exercise both paths.
  EXPECT_GT(opened, 100U);
  EXPECT_GT(written, 50U);
  RecordProperty("opened", static_cast<int>(opened));
  RecordProperty("written", static_cast<int>(written));
}


// Numbers in JSON that others write (rule files, plan folders, manifests): a float beyond an
// integer's range made nlohmann's get<int>() undefined behaviour, which fuzz_redaction_rules
// found once undefined behaviour stopped its runs. Each is now a clear refusal.
TEST(WholeNumbers, OnlyIntegersThatFitAreRead) {
  using nlohmann::json;
  EXPECT_EQ(json_integer<int>(json(7)), 7);
  EXPECT_EQ(json_integer<int>(json(-7)), -7);
  EXPECT_EQ(json_integer<std::uint64_t>(json(std::uint64_t{1} << 63)), std::uint64_t{1} << 63);
  for (const char* text : {"1e300", "-1e300", "2.5", "7.0", "\"7\"", "true", "null", "[]",
                           "4294967296", "-2147483649"})
    EXPECT_FALSE(json_integer<int>(json::parse(text)).has_value()) << text;
  EXPECT_FALSE(json_integer<unsigned>(json(-1)).has_value());
  EXPECT_EQ(json_integer_field(json::parse(R"({"a": 1})"), "b", 5u), 5u);
  EXPECT_FALSE(json_integer_field(json::parse(R"({"b": 1e300})"), "b", 5u).has_value());
}

TEST(WholeNumbers, RuleFileNumbersThatAreNotWholeNumbersAreRefused) {
  const auto rule = [](const std::string& match, const std::string& region) {
    return redact::RuleSet::parse(R"({"radguard_redaction_rules": 1, "rules": [{"match": )" +
                                  match + R"(, "regions": [)" + region + "]}]}");
  };
  const std::string good_region = R"({"x": 0, "y": 0, "width": 10, "height": 10})";
  EXPECT_TRUE(rule("{}", good_region).has_value());
  for (const char* region :
       {R"({"x": 1e300, "y": 0, "width": 10, "height": 10})",
        R"({"x": 0, "y": -1e300, "width": 10, "height": 10})",
        R"({"x": 0, "y": 0, "width": 10.5, "height": 10})",
        R"({"x": 0, "y": 0, "width": 10, "height": 4294967296})",
        R"({"x": 2000000000, "y": 0, "width": 2000000000, "height": 10})", R"([1, 2, 3, 4])"}) {
    const auto parsed = rule("{}", region);
    EXPECT_FALSE(parsed.has_value()) << region;
  }
  for (const char* match : {R"({"rows": 1e300})", R"({"columns": -1})", R"({"rows": 2.5})"}) {
    const auto parsed = rule(match, good_region);
    ASSERT_FALSE(parsed.has_value()) << match;
    EXPECT_NE(parsed.error().message.find("whole numbers"), std::string::npos);
  }
}

TEST(WholeNumbers, APlanWhoseCountsAreNotWholeNumbersIsNotMerged) {
  TempDir dir;
  write_bytes(dir / "plan.json",
             R"({"command": "plan", "id": "p", "shards": [{"files": 1e300}]})");
  const auto merged = plan::merge_reports(dir.path());
  ASSERT_FALSE(merged.has_value());
  EXPECT_NE(merged.error().message.find("not a whole number"), std::string::npos);
}

}  // namespace
}  // namespace radguard
