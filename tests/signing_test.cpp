// Signing, verification and manifests end to end, on DICOM files the tests build themselves
// (DCMTK) and, where installed, on pydicom's sample files.
#include "signing/signing.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "signing/keys.hpp"
#include "signing/manifest.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using dicom::Verdict;

constexpr const char* kNestedMarker = "NESTEDVALUE12345";

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("radguard-signing-test-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// A small CT-like image: 8x8 16-bit pixels and a two-level nested sequence.
void write_fixture(const fs::path& path, const std::string& patient_name, Uint16 seed = 0) {
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  ds->putAndInsertString(DCM_SOPClassUID, UID_CTImageStorage);
  ds->putAndInsertString(DCM_SOPInstanceUID,
                         dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  ds->putAndInsertString(DCM_StudyInstanceUID,
                         dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
  ds->putAndInsertString(DCM_SeriesInstanceUID,
                         dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  ds->putAndInsertString(DCM_Modality, "CT");
  ds->putAndInsertString(DCM_PatientName, patient_name.c_str());
  ds->putAndInsertString(DCM_PatientID, "ID0001");
  ds->putAndInsertString(DCM_StudyDate, "20240102");
  DcmItem* outer = nullptr;
  ds->findOrCreateSequenceItem(DCM_ReferencedStudySequence, outer, -2);
  outer->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
  DcmItem* inner = nullptr;
  outer->findOrCreateSequenceItem(DCM_PurposeOfReferenceCodeSequence, inner, -2);
  inner->putAndInsertString(DCM_CodeValue, kNestedMarker);
  inner->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds->putAndInsertUint16(DCM_Rows, 8);
  ds->putAndInsertUint16(DCM_Columns, 8);
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  Uint16 pixels[64];
  for (Uint16 i = 0; i < 64; ++i) pixels[i] = static_cast<Uint16>(i * 16 + seed);
  ds->putAndInsertUint16Array(DCM_PixelData, pixels, 64);
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
}

// Loads, edits and saves a file with DCMTK, as a tamperer with a DICOM toolkit would.
template <typename Edit>
void edit_file(const fs::path& path, Edit edit) {
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile(path.c_str()).good());
  edit(*file.getDataset());
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_Unknown).good());
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class Signing : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = dir_ / "key.pem";
    cert_ = dir_ / "cert.pem";
    ASSERT_TRUE(signing::write_test_identity(key_, cert_, {}).has_value());
    auto signer = dicom::Signer::load(key_, cert_, dicom::SignatureProfile::base);
    ASSERT_TRUE(signer.has_value()) << signer.error().message;
    signer_.emplace(std::move(*signer));
    auto trust = dicom::TrustStore::load(std::vector<fs::path>{cert_});
    ASSERT_TRUE(trust.has_value());
    trust_.emplace(std::move(*trust));
  }

  // Writes a fixture and signs it into signed/NAME; returns the signed path.
  fs::path signed_fixture(const std::string& name, const std::string& patient = "Doe^Jane",
                          Uint16 seed = 0) {
    const fs::path plain = dir_ / ("plain-" + name);
    write_fixture(plain, patient, seed);
    const fs::path out = dir_ / "signed" / name;
    auto result = signing::sign_file(plain, out, *signer_);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return out;
  }

  dicom::FileVerification verify(const fs::path& path) {
    auto result = dicom::verify_file(path, *trust_);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.value_or(dicom::FileVerification{});
  }

  TempDir dir_;
  fs::path key_, cert_;
  std::optional<dicom::Signer> signer_;
  std::optional<dicom::TrustStore> trust_;
};

TEST_F(Signing, KeysNewWritesAPrivateKeyOnlyTheOwnerCanRead) {
  struct stat info {};
  ASSERT_EQ(::stat(key_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600U);
  EXPECT_NE(read_bytes(cert_).find("BEGIN CERTIFICATE"), std::string::npos);
  auto again = signing::write_test_identity(key_, dir_ / "other.pem", {});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::conflict);
}

TEST_F(Signing, TestCertificatesSayTheyAreForTestingOnly) {
  TempDir other;
  auto identity = signing::write_test_identity(other / "k.pem", other / "c.pem", {});
  ASSERT_TRUE(identity.has_value());
  EXPECT_NE(identity->subject.find("radguard TEST ONLY"), std::string::npos);
}

TEST_F(Signing, SignThenVerifyPasses) {
  const auto path = signed_fixture("a.dcm");
  const auto result = verify(path);
  EXPECT_EQ(result.verdict, Verdict::valid);
  ASSERT_EQ(result.signatures.size(), 2U);  // full + pixel data
  EXPECT_TRUE(result.signatures[0].covers_pixel_data);
  EXPECT_FALSE(result.signatures[0].pixel_data_only);
  EXPECT_TRUE(result.signatures[1].pixel_data_only);
  EXPECT_EQ(result.signatures[0].mac_algorithm, "SHA256");
  EXPECT_TRUE(result.changes.empty());
}

TEST_F(Signing, EcdsaKeysSignUnderTheNullProfileAndAreRefusedByRsaProfiles) {
  signing::TestIdentityRequest request;
  request.algorithm = signing::KeyAlgorithm::ecdsa_p256;
  ASSERT_TRUE(signing::write_test_identity(dir_ / "ec.pem", dir_ / "ec-cert.pem", request));
  auto rsa_only =
      dicom::Signer::load(dir_ / "ec.pem", dir_ / "ec-cert.pem", dicom::SignatureProfile::creator);
  ASSERT_FALSE(rsa_only.has_value());
  EXPECT_EQ(rsa_only.error().code, ErrorCode::usage);
  auto signer =
      dicom::Signer::load(dir_ / "ec.pem", dir_ / "ec-cert.pem", dicom::SignatureProfile::none);
  ASSERT_TRUE(signer.has_value());
  write_fixture(dir_ / "p.dcm", "Doe^John");
  ASSERT_TRUE(signing::sign_file(dir_ / "p.dcm", dir_ / "s.dcm", *signer));
  auto trust = dicom::TrustStore::load(std::vector<fs::path>{dir_ / "ec-cert.pem"});
  auto result = dicom::verify_file(dir_ / "s.dcm", *trust);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->verdict, Verdict::valid);
}

TEST_F(Signing, CreatorAndAuthorizationProfilesSign) {
  for (auto profile : {dicom::SignatureProfile::creator, dicom::SignatureProfile::authorization}) {
    auto signer = dicom::Signer::load(key_, cert_, profile);
    ASSERT_TRUE(signer.has_value());
    write_fixture(dir_ / "p.dcm", "Doe^John");
    auto signed_file = signing::sign_file(dir_ / "p.dcm", dir_ / "s.dcm", *signer);
    ASSERT_TRUE(signed_file.has_value()) << signed_file.error().message;
    EXPECT_EQ(verify(dir_ / "s.dcm").verdict, Verdict::valid);
  }
}

TEST_F(Signing, OneChangedPixelIsReportedAsPixelData) {
  const auto path = signed_fixture("a.dcm");
  edit_file(path, [](DcmDataset& ds) {
    const Uint16* pixels = nullptr;
    unsigned long count = 0;
    ASSERT_TRUE(ds.findAndGetUint16Array(DCM_PixelData, pixels, &count).good());
    std::vector<Uint16> copy(pixels, pixels + count);
    copy[27] ^= 1;
    ds.putAndInsertUint16Array(DCM_PixelData, copy.data(), count);
  });
  const auto result = verify(path);
  EXPECT_EQ(result.verdict, Verdict::invalid);
  EXPECT_TRUE(contains(result.changes, "pixel data"));
  EXPECT_FALSE(contains(result.changes, "attributes"));
}

TEST_F(Signing, OneChangedHeaderAttributeIsReportedAsAttributes) {
  const auto path = signed_fixture("a.dcm");
  edit_file(path, [](DcmDataset& ds) { ds.putAndInsertString(DCM_StudyDate, "20240103"); });
  const auto result = verify(path);
  EXPECT_EQ(result.verdict, Verdict::invalid);
  EXPECT_TRUE(contains(result.changes, "attributes"));
  EXPECT_FALSE(contains(result.changes, "pixel data"));
}

TEST_F(Signing, OneByteInsideANestedSequenceIsCaught) {
  const auto path = signed_fixture("a.dcm");
  std::string bytes = read_bytes(path);
  const auto at = bytes.find(kNestedMarker);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] = 'X';  // same length: only the MAC can notice
  write_bytes(path, bytes);
  const auto result = verify(path);
  EXPECT_EQ(result.verdict, Verdict::invalid);
  EXPECT_TRUE(contains(result.changes, "attributes"));
}

TEST_F(Signing, AddedAndRemovedAttributesAreNamedByTag) {
  const auto added = signed_fixture("added.dcm");
  edit_file(added, [](DcmDataset& ds) { ds.putAndInsertString(DCM_PatientAge, "042Y"); });
  auto result = verify(added);
  EXPECT_EQ(result.verdict, Verdict::invalid);
  EXPECT_TRUE(contains(result.changes, "added (0010,1010)"));

  const auto removed = signed_fixture("removed.dcm");
  edit_file(removed, [](DcmDataset& ds) { ds.findAndDeleteElement(DCM_PatientID); });
  result = verify(removed);
  EXPECT_EQ(result.verdict, Verdict::invalid);
  EXPECT_TRUE(contains(result.changes, "removed (0010,0020)"));
}

TEST_F(Signing, RemovedSignatureMeansUnsigned) {
  const auto path = signed_fixture("a.dcm");
  edit_file(path, [](DcmDataset& ds) {
    ds.findAndDeleteElement(DCM_DigitalSignaturesSequence);
    ds.findAndDeleteElement(DCM_MACParametersSequence);
  });
  EXPECT_EQ(verify(path).verdict, Verdict::unsigned_file);
}

TEST_F(Signing, DamagedSignatureValueIsInvalid) {
  const auto path = signed_fixture("a.dcm");
  edit_file(path, [](DcmDataset& ds) {
    DcmItem* item = nullptr;
    ASSERT_TRUE(ds.findAndGetSequenceItem(DCM_DigitalSignaturesSequence, item, 0).good());
    const Uint8* value = nullptr;
    unsigned long size = 0;
    ASSERT_TRUE(item->findAndGetUint8Array(DCM_Signature, value, &size).good());
    std::vector<Uint8> copy(value, value + size);
    copy[size / 2] ^= 0x01;
    item->putAndInsertUint8Array(DCM_Signature, copy.data(), size);
  });
  EXPECT_EQ(verify(path).verdict, Verdict::invalid);
}

TEST_F(Signing, SignatureTransplantedOntoAnotherFileIsInvalid) {
  const auto a = signed_fixture("a.dcm", "Doe^Jane", 0);
  const fs::path b = dir_ / "b.dcm";
  write_fixture(b, "Roe^Richard", 7);
  DcmFileFormat source;
  ASSERT_TRUE(source.loadFile(a.c_str()).good());
  edit_file(b, [&](DcmDataset& ds) {
    for (const DcmTagKey& key : {DCM_DigitalSignaturesSequence, DCM_MACParametersSequence}) {
      DcmElement* element = nullptr;
      ASSERT_TRUE(source.getDataset()->findAndGetElement(key, element).good());
      ds.insert(static_cast<DcmElement*>(element->clone()), OFTrue);
    }
  });
  EXPECT_EQ(verify(b).verdict, Verdict::invalid);
}

TEST_F(Signing, SignerOutsideTheTrustStoreIsUntrusted) {
  const auto path = signed_fixture("a.dcm");
  TempDir other;
  ASSERT_TRUE(signing::write_test_identity(other / "k.pem", other / "c.pem", {}));
  auto stranger = dicom::TrustStore::load(std::vector<fs::path>{other / "c.pem"});
  auto result = dicom::verify_file(path, *stranger);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->verdict, Verdict::untrusted_signer);
  auto nobody = dicom::TrustStore::load({});
  result = dicom::verify_file(path, *nobody);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->verdict, Verdict::untrusted_signer);
}

TEST_F(Signing, ExpiredCertificateIsReported) {
  signing::TestIdentityRequest request;
  request.days = 1;
  request.not_before_offset = std::chrono::days(-10);
  ASSERT_TRUE(signing::write_test_identity(dir_ / "old.pem", dir_ / "old-cert.pem", request));
  auto signer =
      dicom::Signer::load(dir_ / "old.pem", dir_ / "old-cert.pem", dicom::SignatureProfile::base);
  ASSERT_TRUE(signer.has_value());
  write_fixture(dir_ / "p.dcm", "Doe^John");
  ASSERT_TRUE(signing::sign_file(dir_ / "p.dcm", dir_ / "s.dcm", *signer));
  auto trust = dicom::TrustStore::load(std::vector<fs::path>{dir_ / "old-cert.pem"});
  auto result = dicom::verify_file(dir_ / "s.dcm", *trust);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->verdict, Verdict::expired_certificate);
}

TEST_F(Signing, BatchGoesOnPastABadFileAndSignsInPlace) {
  fs::create_directories(dir_ / "in");
  write_fixture(dir_ / "in" / "a.dcm", "Doe^Jane");
  write_bytes(dir_ / "in" / "junk.dcm", "not a DICOM file at all");
  write_fixture(dir_ / "in" / "z.dcm", "Doe^John");
  signing::SignBatchOptions options;
  options.inputs = {dir_ / "in"};
  options.mode = signing::OutputMode::in_place;
  auto report = signing::sign_files(options, *signer_);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->failed(), 1U);
  EXPECT_EQ(report->exit_code(), kExitSomeFailed);
  const auto json = nlohmann::json::parse(signing::sign_report_json(*report, *signer_));
  EXPECT_EQ(json.at("failed"), 1);
  auto verified = signing::verify_files(std::vector<fs::path>{dir_ / "in"}, *trust_, 1);
  ASSERT_EQ(verified.files.size(), 3U);
  EXPECT_EQ(verified.not_valid(), 1U);  // the junk file
  for (const auto& f : verified.files) {
    if (f.path.filename() == "junk.dcm") {
      ASSERT_TRUE(f.error.has_value());
      EXPECT_EQ(f.error->code, ErrorCode::not_dicom);
    } else {
      EXPECT_EQ(f.result.verdict, Verdict::valid) << f.path;
    }
  }
  // No temporary files are left beside the outputs.
  for (const auto& entry : fs::directory_iterator(dir_ / "in"))
    EXPECT_FALSE(entry.path().filename().string().starts_with(".radguard-tmp-"));
}

int run_quietly(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(Signing, DcmtkDcmsignVerifiesRadguardSignatures) {
  if (run_quietly("dcmsign --version") != 0)
    GTEST_SKIP() << "dcmsign (package dcmtk) is not installed";
  const auto path = signed_fixture("a.dcm");
  EXPECT_EQ(
      run_quietly("dcmsign --verify +rg +cf '" + cert_.string() + "' '" + path.string() + "'"), 0);
  edit_file(path, [](DcmDataset& ds) { ds.putAndInsertString(DCM_StudyDate, "20240103"); });
  EXPECT_NE(
      run_quietly("dcmsign --verify +rg +cf '" + cert_.string() + "' '" + path.string() + "'"), 0);
}

TEST_F(Signing, RealSampleFilesSignAndVerifyInEveryEncoding) {
  const fs::path samples = "/usr/lib/python3/dist-packages/pydicom/data/test_files";
  if (!fs::exists(samples)) GTEST_SKIP() << "python3-pydicom samples are not installed";
  const bool dcmsign = run_quietly("dcmsign --version") == 0;
  for (const char* name : {"CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                           "JPEG2000.dcm", "MR_small_RLE.dcm"}) {
    if (!fs::exists(samples / name)) continue;
    const fs::path out = dir_ / "samples" / name;
    auto signed_file = signing::sign_file(samples / name, out, *signer_);
    ASSERT_TRUE(signed_file.has_value()) << name << ": " << signed_file.error().message;
    EXPECT_EQ(verify(out).verdict, Verdict::valid) << name;
    if (dcmsign) {
      EXPECT_EQ(
          run_quietly("dcmsign --verify +rg +cf '" + cert_.string() + "' '" + out.string() + "'"),
          0)
          << name;
    }
  }
}

class Manifest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = dir_ / "release";
    fs::create_directories(folder_ / "sub");
    write_bytes(folder_ / "a.dcm", "alpha");
    write_bytes(folder_ / "b.dcm", "bravo");
    write_bytes(folder_ / "sub" / "c.dcm", "charlie");
    write_bytes(folder_ / "sub" / "d.dcm", "delta");
    ASSERT_TRUE(signing::write_test_identity(dir_ / "k.pem", dir_ / "c.pem", {}));
    trust_ = {dir_ / "c.pem"};
    auto text =
        signing::create_manifest(folder_, signing::KeyFiles{dir_ / "k.pem", dir_ / "c.pem"}, {}, 1);
    ASSERT_TRUE(text.has_value()) << text.error().message;
    manifest_ = *text;
  }

  signing::ManifestVerification check() {
    auto result = signing::verify_manifest(folder_, manifest_, trust_, {}, 1);
    EXPECT_TRUE(result.has_value()) << result.error().message;
    return result.value_or(signing::ManifestVerification{});
  }

  TempDir dir_;
  fs::path folder_;
  std::vector<fs::path> trust_;
  std::string manifest_;
};

TEST_F(Manifest, UntouchedFolderPasses) {
  const auto result = check();
  EXPECT_TRUE(signing::passed(result, signing::UnsignedManifest::reject));
  EXPECT_EQ(result.unchanged, 4U);
  EXPECT_TRUE(result.root_matches);
}

TEST_F(Manifest, ReportsAddedDeletedAlteredAndRenamedFilesOneByOne) {
  write_bytes(folder_ / "new.dcm", "echo");
  fs::remove(folder_ / "b.dcm");
  write_bytes(folder_ / "a.dcm", "alphA");
  fs::rename(folder_ / "sub" / "c.dcm", folder_ / "sub" / "renamed.dcm");
  const auto result = check();
  EXPECT_FALSE(signing::passed(result, signing::UnsignedManifest::reject));
  ASSERT_EQ(result.differences.size(), 4U);
  using signing::FileChange;
  std::map<std::string, FileChange> seen;
  for (const auto& d : result.differences) seen[d.path] = d.change;
  EXPECT_EQ(seen["a.dcm"], FileChange::altered);
  EXPECT_EQ(seen["b.dcm"], FileChange::deleted);
  EXPECT_EQ(seen["new.dcm"], FileChange::added);
  EXPECT_EQ(seen["sub/renamed.dcm"], FileChange::renamed);
  const auto renamed = std::find_if(result.differences.begin(), result.differences.end(),
                                    [](const auto& d) { return d.change == FileChange::renamed; });
  EXPECT_EQ(renamed->renamed_from, "sub/c.dcm");
  EXPECT_EQ(result.unchanged, 1U);
}

TEST_F(Manifest, SwappedFileIsAltered) {
  // Two files trade places: each path now holds content the manifest lists elsewhere.
  fs::rename(folder_ / "a.dcm", folder_ / "tmp");
  fs::rename(folder_ / "b.dcm", folder_ / "a.dcm");
  fs::rename(folder_ / "tmp", folder_ / "b.dcm");
  const auto result = check();
  EXPECT_FALSE(signing::passed(result, signing::UnsignedManifest::reject));
  EXPECT_EQ(result.differences.size(), 2U);
}

TEST_F(Manifest, EditedManifestFailsItsSignature) {
  const auto at = manifest_.find("\"size\": 5");
  ASSERT_NE(at, std::string::npos);
  manifest_.replace(at, 9, "\"size\": 6");
  const auto result = check();
  ASSERT_TRUE(result.signature.has_value());
  EXPECT_EQ(result.signature->check, signing::SignatureCheck::invalid);
  EXPECT_FALSE(signing::passed(result, signing::UnsignedManifest::reject));
}

TEST_F(Manifest, SizeThatIsNotAWholeNumberIsRefused) {
  // A float beyond uint64's range made get<std::uint64_t>() undefined behaviour.
  for (const char* size : {"1e300", "-1", "5.5", "\"5\""}) {
    std::string edited = manifest_;
    const auto at = edited.find("\"size\": 5");
    ASSERT_NE(at, std::string::npos);
    edited.replace(at, 9, std::string("\"size\": ") + size);
    const auto result = signing::verify_manifest(folder_, edited, trust_, {}, 1);
    ASSERT_FALSE(result.has_value()) << size;
    EXPECT_EQ(result.error().code, ErrorCode::integrity) << size;
  }
}

TEST_F(Manifest, UnknownSignerIsUntrustedAndUnsignedNeedsConsent) {
  trust_.clear();
  auto result = check();
  ASSERT_TRUE(result.signature.has_value());
  EXPECT_EQ(result.signature->check, signing::SignatureCheck::untrusted_signer);
  auto unsigned_text = signing::create_manifest(folder_, std::nullopt, {}, 1);
  ASSERT_TRUE(unsigned_text.has_value());
  manifest_ = *unsigned_text;
  result = check();
  EXPECT_FALSE(result.signature.has_value());
  EXPECT_FALSE(signing::passed(result, signing::UnsignedManifest::reject));
  EXPECT_TRUE(signing::passed(result, signing::UnsignedManifest::accept));
}

TEST(MerkleRoot, DependsOnEveryPathAndDigest) {
  std::vector<signing::ManifestEntry> entries(3);
  entries[0].path = "a";
  entries[1].path = "b";
  entries[2].path = "c";
  const auto root = signing::merkle_root(entries);
  auto renamed = entries;
  renamed[2].path = "d";
  EXPECT_NE(signing::merkle_root(renamed), root);
  auto altered = entries;
  altered[1].sha256[0] = 1;
  EXPECT_NE(signing::merkle_root(altered), root);
  EXPECT_EQ(signing::merkle_root({}), crypto::sha256(""));
}

}  // namespace
}  // namespace radguard
