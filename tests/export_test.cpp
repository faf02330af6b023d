#include "export/export.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/iso_time.hpp"
#include "core/version.hpp"
#include "dicom/dicom_file.hpp"
#include "signing/keys.hpp"
#include "signing/signing.hpp"
#include "test_util.hpp"

namespace radguard::exporter {
namespace {

namespace fs = std::filesystem;
using radguard::testing::ScratchDir;

const fs::path kSample = "/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Writes `count` instances of one study for a patient, made from the CT sample.
void make_study(const fs::path& folder, const std::string& patient_id,
                const std::string& patient_name, int study, int count, bool burned_in = false) {
  fs::create_directories(folder);
  for (int i = 1; i <= count; ++i) {
    auto file = dicom::DicomFile::open(kSample);
    ASSERT_TRUE(file) << file.error().message;
    const std::string base = "1.2.826.0.1.3680043.10.1137." + std::to_string(study);
    ASSERT_TRUE(file->set_string(Tag{0x0010, 0x0020}, patient_id));
    ASSERT_TRUE(file->set_string(Tag{0x0010, 0x0010}, patient_name));
    ASSERT_TRUE(file->set_string(Tag{0x0020, 0x000D}, base));
    ASSERT_TRUE(file->set_string(Tag{0x0020, 0x000E}, base + ".1"));
    ASSERT_TRUE(file->set_string(Tag{0x0008, 0x0018}, base + ".1." + std::to_string(i)));
    if (burned_in) {
      ASSERT_TRUE(file->set_string(Tag{0x0028, 0x0301}, "YES"));
    }
    ASSERT_TRUE(file->save(
        folder / (patient_name + "_" + std::to_string(study) + "_" + std::to_string(i) + ".dcm"),
        {std::string(kImplementationClassUid), std::string(kImplementationVersionName)}));
  }
}

crypto::SecretKey test_key() { return crypto::SecretKey::generate().value(); }

deid::HeaderStage make_stage(const crypto::SecretKey& key) {
  auto policy = deid::Policy::create("basic", {}, std::nullopt);
  EXPECT_TRUE(policy);
  return deid::HeaderStage(std::move(*policy), pseudonym::Pseudonymizer(key),
                           deid::BurnedInPolicy::reject);
}

consent::Record permit(const std::string& patient, consent::Purpose purpose,
                       consent::Decision d = consent::Decision::permit) {
  consent::Record r;
  r.patient_id = patient;
  r.purpose = purpose;
  r.decision = d;
  r.date = "2025-01-01";
  r.source = "test";
  return r;
}

struct Fixture {
  ScratchDir dir;
  crypto::SecretKey key = test_key();
  deid::HeaderStage stage = make_stage(key);
  std::string registry_path = (dir / "consent.db").string();
  std::string ledger_path = (dir / "ledger.db").string();

  consent::Registry registry() { return consent::Registry::open(registry_path).value(); }
  ledger::Ledger ledger() {
    return ledger::Ledger::open(ledger_path, ledger::LedgerAccess::create_if_missing).value();
  }

  ExportOptions options(std::vector<fs::path> inputs, consent::Purpose purpose,
                        std::string recipient) {
    ExportOptions o;
    o.inputs = std::move(inputs);
    o.output = dir / "out";
    o.purpose = purpose;
    o.recipient = std::move(recipient);
    o.threads = 2;
    o.progress = batch::ProgressDisplay::never;
    return o;
  }

  ExportReport run(const ExportOptions& o) {
    auto reg = registry();
    auto led = ledger();
    auto report = run_export(o, stage, reg, led);
    EXPECT_TRUE(report) << report.error().message;
    return report ? *report : ExportReport{};
  }
};

std::vector<fs::path> releases_in(const fs::path& out) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) found.push_back(e.path().filename());
  return found;
}

TEST(Export, ReleasesPermittedStudiesAndWithholdsTheRest) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in / "alice", "ALICE-ID-1001", "Liddell^Alice", 1, 2);
  make_study(in / "bob", "BOB-ID-2002", "Builder^Bob", 2, 3);
  make_study(in / "carol", "CAROL-ID-3003", "Singer^Carol", 3, 1);
  { std::ofstream(in / "notes.txt") << "not DICOM"; }
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("ALICE-ID-1001", consent::Purpose::ai_training)));
    ASSERT_TRUE(
        reg.record(permit("BOB-ID-2002", consent::Purpose::ai_training, consent::Decision::deny)));
    ASSERT_TRUE(
        reg.record(permit("CAROL-ID-3003", consent::Purpose::research)));  // another purpose
  }
  const auto options = f.options({in}, consent::Purpose::ai_training, "Acme AI Lab");
  const ExportReport report = f.run(options);
  ASSERT_EQ(report.status, ledger::EntryStatus::released) << report.error;
  EXPECT_EQ(report.exit_code(), 0);
  EXPECT_EQ(report.instances_included, 2u);
  EXPECT_EQ(report.studies_included, 1u);
  EXPECT_EQ(report.patients_included, 1u);
  EXPECT_EQ(report.not_dicom, 1u);
  EXPECT_EQ(report.excluded.at(Exclusion::consent_denied).studies, 1u);
  EXPECT_EQ(report.excluded.at(Exclusion::consent_denied).instances, 3u);
  EXPECT_EQ(report.excluded.at(Exclusion::no_consent).studies, 1u);

  // Exactly one published folder, no staging left behind, holding the 2 files and a manifest.
  ASSERT_EQ(releases_in(options.output), std::vector<fs::path>{report.release_name});
  const std::string manifest_text = slurp(report.release / "manifest.json");
  const auto manifest = nlohmann::json::parse(manifest_text);
  EXPECT_TRUE(manifest["complete"].get<bool>());
  ASSERT_EQ(manifest["files"].size(), 2u);
  for (const auto& file : manifest["files"]) {
    const fs::path path = report.release / file["path"].get<std::string>();
    ASSERT_TRUE(fs::exists(path));
    EXPECT_EQ(crypto::to_hex(crypto::sha256_file(path).value()), file["sha256"].get<std::string>());
  }
  EXPECT_EQ(manifest["counts"]["excluded_studies"], 2);
  EXPECT_EQ(crypto::to_hex(crypto::sha256(manifest_text)), report.manifest_digest);

  // The ledger has one intact entry naming only Alice, by keyed hash.
  auto led = f.ledger();
  auto verify = led.verify();
  ASSERT_TRUE(verify);
  EXPECT_TRUE(verify->intact());
  EXPECT_EQ(verify->entries, 1u);
  auto alice = led.entries_for(ledger::patient_hash(f.key, "ALICE-ID-1001"), std::nullopt);
  ASSERT_EQ(alice->size(), 1u);
  EXPECT_EQ((*alice)[0].recipient, "Acme AI Lab");
  EXPECT_EQ((*alice)[0].output_digest, report.manifest_digest);
  ASSERT_EQ((*alice)[0].patients.size(), 1u);
  ASSERT_EQ((*alice)[0].patients[0].studies.size(), 1u);
  EXPECT_EQ((*alice)[0].patients[0].studies[0].instances, 2u);
  EXPECT_TRUE((*alice)[0].patients[0].studies[0].study_uid.starts_with("2.25."));
  EXPECT_EQ((*alice)[0].patients[0].studies[0].modalities, std::vector<std::string>{"CT"});
  EXPECT_TRUE(led.entries_for(ledger::patient_hash(f.key, "BOB-ID-2002"), std::nullopt)->empty());

  // Nothing written anywhere names a patient: not the ledger file, manifest or report.
  const std::string report_text_json = report_json(report, f.stage, options);
  for (const std::string secret :
       {"ALICE-ID-1001", "Liddell", "BOB-ID-2002", "Builder", "CAROL-ID-3003", "Singer"}) {
    EXPECT_EQ(slurp(f.ledger_path).find(secret), std::string::npos) << secret;
    EXPECT_EQ(manifest_text.find(secret), std::string::npos) << secret;
    EXPECT_EQ(report_text_json.find(secret), std::string::npos) << secret;
    for (const auto& e : fs::recursive_directory_iterator(report.release))
      EXPECT_EQ(slurp(e.path()).find(secret), std::string::npos) << secret << " in " << e.path();
  }
}

TEST(Export, AFailedReleasePublishesNothingAndIsRecordedAsFailed) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-OK", "Ok^Patient", 1, 2);
  make_study(in, "P-BURNED", "Burned^Patient", 2, 1, /*burned_in=*/true);
  // A second instance of that study that de-identifies well: written into staging, then
  // withdrawn with its study.
  make_study(in / "more", "P-BURNED", "Burned^Patient", 2, 2);
  fs::remove(in / "more" / "Burned^Patient_2_1.dcm");
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("P-OK", consent::Purpose::research)));
    ASSERT_TRUE(reg.record(permit("P-BURNED", consent::Purpose::research)));
  }
  auto options = f.options({in}, consent::Purpose::research, "University");
  options.on_failure = OnFailure::abort;
  const ExportReport report = f.run(options);
  EXPECT_EQ(report.status, ledger::EntryStatus::failed);
  EXPECT_EQ(report.exit_code(), 1);
  EXPECT_EQ(report.failures.size(), 1u);
  EXPECT_TRUE(releases_in(options.output).empty()) << "no release and no staging folder is left";
  auto led = f.ledger();
  auto all = led.all();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].status, ledger::EntryStatus::failed);
  EXPECT_FALSE((*all)[0].error.empty());
  EXPECT_TRUE((*all)[0].patients.empty());
  EXPECT_TRUE(led.entries_for(ledger::patient_hash(f.key, "P-OK"), std::nullopt)->empty());
  EXPECT_TRUE(led.verify()->intact());
}

// The default: the study with the failed instance is withheld whole, the rest released, and
// the ledger records exactly what was released.
TEST(Export, AFailedInstanceWithholdsItsStudyAndReleasesTheRest) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-OK", "Ok^Patient", 1, 2);
  make_study(in, "P-BURNED", "Burned^Patient", 2, 1, /*burned_in=*/true);
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("P-OK", consent::Purpose::research)));
    ASSERT_TRUE(reg.record(permit("P-BURNED", consent::Purpose::research)));
  }
  const auto options = f.options({in}, consent::Purpose::research, "University");
  const ExportReport report = f.run(options);
  EXPECT_EQ(report.status, ledger::EntryStatus::released);
  EXPECT_EQ(report.exit_code(), 1);  // released, but not everything
  EXPECT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.instances_included, 2u);
  EXPECT_EQ(report.studies_included, 1u);
  EXPECT_EQ(report.patients_included, 1u);
  EXPECT_EQ(report.excluded.at(Exclusion::failed_instance).studies, 1u);
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(report.release))
    files += e.path().extension() == ".dcm";
  EXPECT_EQ(files, 2u);
  // Nothing of the withheld study, not even an empty folder named by its pseudonymous UID.
  std::size_t studies = 0;
  for (const auto& e : fs::directory_iterator(report.release)) studies += e.is_directory();
  EXPECT_EQ(studies, 1u);
  auto led = f.ledger();
  auto all = led.all();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].status, ledger::EntryStatus::released);
  EXPECT_EQ((*all)[0].instances, 2u);
  EXPECT_EQ((*all)[0].excluded_studies, 1u);
  EXPECT_FALSE(led.entries_for(ledger::patient_hash(f.key, "P-OK"), std::nullopt)->empty());
  EXPECT_TRUE(led.entries_for(ledger::patient_hash(f.key, "P-BURNED"), std::nullopt)->empty());
}

TEST(Export, NothingPermittedIsAFailedExportWithNoFolder) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-1", "One^Patient", 1, 1);
  const auto options = f.options({in}, consent::Purpose::commercial_ai, "Vendor");
  const ExportReport report = f.run(options);
  EXPECT_EQ(report.status, ledger::EntryStatus::failed);
  EXPECT_EQ(report.excluded.at(Exclusion::no_consent).studies, 1u);
  EXPECT_FALSE(fs::exists(options.output / report.release_name));
  EXPECT_EQ(f.ledger().all()->size(), 1u);
}

TEST(Export, RefusesAnOutputFolderInsideAnInput) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-1", "One^Patient", 1, 1);
  auto options = f.options({in}, consent::Purpose::research, "X");
  options.output = in / "out";
  auto reg = f.registry();
  auto led = f.ledger();
  auto report = run_export(options, f.stage, reg, led);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::usage);
}

TEST(Export, AccountingAcrossSeveralExports) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in / "a", "PAT-A", "Alpha^Ann", 1, 2);
  make_study(in / "a2", "PAT-A", "Alpha^Ann", 4, 1);
  make_study(in / "b", "PAT-B", "Beta^Ben", 2, 1);
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("PAT-A", consent::Purpose::research)));
    ASSERT_TRUE(reg.record(permit("PAT-A", consent::Purpose::ai_training)));
    ASSERT_TRUE(reg.record(permit("PAT-B", consent::Purpose::research)));
  }
  ASSERT_EQ(f.run(f.options({in}, consent::Purpose::research, "University A")).status,
            ledger::EntryStatus::released);
  ASSERT_EQ(f.run(f.options({in / "a"}, consent::Purpose::ai_training, "AI Lab")).status,
            ledger::EntryStatus::released);
  ASSERT_EQ(f.run(f.options({in / "b"}, consent::Purpose::research, "University B")).status,
            ledger::EntryStatus::released);
  // Patient A withdraws from research: the next research export leaves A out.
  {
    auto reg = f.registry();
    auto withdrawal = permit("PAT-A", consent::Purpose::research, consent::Decision::deny);
    withdrawal.date = utc_now_iso8601();
    ASSERT_TRUE(reg.record(withdrawal));
  }
  const auto last = f.run(f.options({in}, consent::Purpose::research, "University C"));
  ASSERT_EQ(last.status, ledger::EntryStatus::released);
  EXPECT_EQ(last.instances_included, 1u);

  auto led = f.ledger();
  auto a = led.entries_for(ledger::patient_hash(f.key, "PAT-A"), std::nullopt).value();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].recipient, "University A");
  EXPECT_EQ(a[0].purpose, "research");
  EXPECT_EQ(a[0].patients[0].instances(), 3u);
  EXPECT_EQ(a[0].patients[0].studies.size(), 2u);
  EXPECT_EQ(a[1].recipient, "AI Lab");
  EXPECT_EQ(a[1].purpose, "ai-training");
  const std::string description = ledger::describe(a[0], a[0].patients[0]);
  EXPECT_NE(description.find("3 DICOM instances in 2 studies (CT)"), std::string::npos)
      << description;
  auto b = led.entries_for(ledger::patient_hash(f.key, "PAT-B"), std::nullopt).value();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[2].recipient, "University C");
  EXPECT_TRUE(
      led.entries_for(ledger::patient_hash(f.key, "PAT-B"), std::string("2999-01-01"))->empty());
  EXPECT_TRUE(led.verify()->intact());
}

TEST(Export, TwoConcurrentExportsOnOneLedgerAndRegistryLoseNothing) {
  Fixture f;
  const fs::path in = f.dir / "in";
  {
    auto reg = f.registry();
    for (int p = 0; p < 4; ++p) {
      const std::string id = "PAT-" + std::to_string(p);
      make_study(in / id, id, "Name^" + std::to_string(p), p + 1, 2);
      ASSERT_TRUE(reg.record(permit(id, consent::Purpose::research)));
    }
  }
  constexpr int kRounds = 3;
  std::vector<ExportReport> reports(2 * kRounds);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        // Each thread has its own connections, as two processes would.
        auto reg = consent::Registry::open(f.registry_path);
        auto led = ledger::Ledger::open(f.ledger_path, ledger::LedgerAccess::create_if_missing);
        if (!reg || !led) return;
        auto options = f.options(
            {in / ("PAT-" + std::to_string(2 * t)), in / ("PAT-" + std::to_string(2 * t + 1))},
            consent::Purpose::research, "Recipient " + std::to_string(t));
        options.threads = 1;
        auto report = run_export(options, f.stage, *reg, *led);
        if (report) reports[static_cast<std::size_t>(t * kRounds + r)] = *report;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : reports) EXPECT_EQ(r.status, ledger::EntryStatus::released) << r.error;
  auto led = f.ledger();
  auto verify = led.verify();
  ASSERT_TRUE(verify);
  EXPECT_TRUE(verify->intact()) << verify->problem;
  EXPECT_EQ(verify->entries, static_cast<std::uint64_t>(2 * kRounds));
  EXPECT_EQ(releases_in(f.dir / "out").size(), static_cast<std::size_t>(2 * kRounds));
  for (int p = 0; p < 4; ++p)
    EXPECT_EQ(led.entries_for(ledger::patient_hash(f.key, "PAT-" + std::to_string(p)), std::nullopt)
                  ->size(),
              static_cast<std::size_t>(kRounds));
}

// A file swapped for another patient's between the consent check and de-identification must
// not be released under the first file's consent.
TEST(Export, AFileWhoseIdentityChangedAfterTheConsentCheckIsRefused) {
  const ScratchDir dir;
  make_study(dir.path() / "in", "P-ALLOWED", "ALLOWED", 1, 1);
  make_study(dir.path() / "other", "P-DENIED", "DENIED", 2, 1);
  const fs::path input = dir.path() / "in" / "ALLOWED_1_1.dcm";
  const std::vector<fs::path> inputs{input};
  const auto found = batch::find_files(inputs);
  ASSERT_EQ(found.files.size(), 1u);

  auto consented = std::make_shared<std::map<std::string, ConsentedIdentity>>();
  (*consented)[found.files.front()] = {"P-ALLOWED", "1.2.826.0.1.3680043.10.1137.1"};
  const deid::PixelStage check = consented_identity_check(consented);

  auto same = dicom::DicomFile::open(found.files.front());
  ASSERT_TRUE(same);
  deid::PixelWork work;
  EXPECT_TRUE(check.run(found.files.front(), *same, work).has_value());

  fs::copy_file(dir.path() / "other" / "DENIED_2_1.dcm", input,
                fs::copy_options::overwrite_existing);
  auto swapped = dicom::DicomFile::open(found.files.front());
  ASSERT_TRUE(swapped);
  const Status refused = check.run(found.files.front(), *swapped, work);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_EQ(refused.error().message.find("DENIED"), std::string::npos);

  auto unknown = dicom::DicomFile::open(dir.path() / "other" / "DENIED_2_1.dcm");
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(check.run(dir.path() / "other" / "DENIED_2_1.dcm", *unknown, work).has_value());
}

// A release made with signing keys carries manifest.json.p7s; check_release says file by file
// what is wrong: altered, added, missing, unsigned, bad signature, a tampered manifest, and a
// signer the recipient does not trust.
TEST(Export, ASignedReleaseIsCheckedFileByFile) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-1", "One^Patient", 1, 3);
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("P-1", consent::Purpose::research)));
  }
  const fs::path key = f.dir / "signer.key", cert = f.dir / "signer.pem";
  const fs::path other_key = f.dir / "other.key", other_cert = f.dir / "other.pem";
  ASSERT_TRUE(signing::write_test_identity(key, cert, {}));
  ASSERT_TRUE(signing::write_test_identity(other_key, other_cert, {"someone else"}));
  auto signer = signing::Signer::load(key, cert, signing::SignatureProfile::base);
  ASSERT_TRUE(signer) << signer.error().message;
  auto options = f.options({in}, consent::Purpose::research, "University");
  options.finish = [shared = *signer](const fs::path& temporary) -> Status {
    auto signed_file = signing::sign_file(temporary, temporary, shared);
    if (!signed_file) return std::unexpected(signed_file.error());
    return {};
  };
  options.manifest_signer = signing::KeyFiles{key, cert};
  const ExportReport report = f.run(options);
  ASSERT_EQ(report.status, ledger::EntryStatus::released) << report.error;
  EXPECT_TRUE(report.manifest_signed);
  const fs::path release = report.release;
  ASSERT_TRUE(fs::is_regular_file(release / kReleaseManifestSignature));
  // ledger verify --releases does not take the signature for an added file.
  EXPECT_TRUE(check_release_files(release)->empty());

  const std::vector<fs::path> trusted{cert};
  auto check = [&](std::span<const fs::path> trust = {}) {
    auto c = check_release(release, release / kReleaseManifest,
                           trust.empty() ? std::span<const fs::path>(trusted) : trust,
                           DicomSignatures::check, 2);
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : ReleaseCheck{};
  };
  auto state_of = [](const ReleaseCheck& c, const std::string& path) {
    for (const auto& file : c.files)
      if (file.path == path) return std::optional<ReleaseFile>(file);
    return std::optional<ReleaseFile>();
  };
  {
    const ReleaseCheck good = check();
    EXPECT_TRUE(good.passed(ManifestSignature::required))
        << release_check_text(good, ManifestSignature::required);
    EXPECT_EQ(good.files.size(), 3u);
    EXPECT_EQ(good.release, report.release_name);
    ASSERT_TRUE(good.manifest_signature);
    EXPECT_EQ(good.manifest_signature->check, signing::SignatureCheck::valid);
  }
  // The wrong CA: the manifest's signer and every file's are untrusted.
  {
    const std::vector<fs::path> wrong{other_cert};
    const ReleaseCheck c = check(wrong);
    EXPECT_FALSE(c.passed(ManifestSignature::required));
    EXPECT_EQ(c.manifest_signature->check, signing::SignatureCheck::untrusted_signer);
    EXPECT_EQ(c.problems(), 3u);
    for (const auto& file : c.files) EXPECT_EQ(file.signature, dicom::Verdict::untrusted_signer);
  }
  std::vector<fs::path> dicoms;
  for (const auto& e : fs::recursive_directory_iterator(release))
    if (e.path().extension() == ".dcm") dicoms.push_back(e.path());
  std::sort(dicoms.begin(), dicoms.end());
  ASSERT_EQ(dicoms.size(), 3u);
  const auto name = [&](const fs::path& p) { return fs::relative(p, release).generic_string(); };
  const std::string saved = slurp(dicoms[0]);
  // Altered (one byte in the pixel data), added, missing.
  {
    std::string changed = saved;
    changed[changed.size() / 2] = static_cast<char>(changed[changed.size() / 2] ^ 0x55);
    std::ofstream(dicoms[0], std::ios::binary | std::ios::trunc) << changed;
  }
  fs::copy_file(dicoms[1], release / "extra.dcm");
  fs::rename(dicoms[2], f.dir / "moved-away.dcm");
  {
    const ReleaseCheck c = check();
    EXPECT_FALSE(c.passed(ManifestSignature::required));
    EXPECT_EQ(c.manifest_signature->check, signing::SignatureCheck::valid);
    EXPECT_EQ(state_of(c, name(dicoms[0]))->state, ReleaseFileState::altered);
    EXPECT_EQ(state_of(c, name(dicoms[0]))->signature, dicom::Verdict::invalid);
    EXPECT_EQ(state_of(c, "extra.dcm")->state, ReleaseFileState::added);
    EXPECT_EQ(state_of(c, name(dicoms[2]))->state, ReleaseFileState::missing);
    EXPECT_EQ(state_of(c, name(dicoms[1]))->state, ReleaseFileState::intact);
    EXPECT_EQ(c.problems(), 3u);
    const std::string text = release_check_text(c, ManifestSignature::required);
    EXPECT_NE(text.find(name(dicoms[0]) + ": altered"), std::string::npos) << text;
    EXPECT_NE(text.find("extra.dcm: added"), std::string::npos) << text;
    EXPECT_NE(text.find(name(dicoms[2]) + ": missing"), std::string::npos) << text;
    EXPECT_NE(text.find("FAILED"), std::string::npos);
    const auto json = nlohmann::json::parse(release_check_json(c, ManifestSignature::required));
    EXPECT_FALSE(json["passed"].get<bool>());
    EXPECT_EQ(json["counts"]["altered"], 1);
    EXPECT_EQ(json["counts"]["added"], 1);
    EXPECT_EQ(json["counts"]["missing"], 1);
  }
  std::ofstream(dicoms[0], std::ios::binary | std::ios::trunc) << saved;
  fs::remove(release / "extra.dcm");
  fs::rename(f.dir / "moved-away.dcm", dicoms[2]);
  ASSERT_TRUE(check().passed(ManifestSignature::required));

  // An unsigned file put in place of a listed one, with the manifest's hash edited to match:
  // the manifest's signature no longer holds, and the file is reported as unsigned.
  const std::string manifest_text = slurp(release / kReleaseManifest);
  {
    fs::copy_file(kSample, dicoms[1], fs::copy_options::overwrite_existing);
    auto manifest = nlohmann::json::parse(manifest_text);
    for (auto& entry : manifest["files"])
      if (entry["path"] == name(dicoms[1]))
        entry["sha256"] = crypto::to_hex(crypto::sha256_file(dicoms[1]).value());
    std::ofstream(release / kReleaseManifest, std::ios::trunc) << manifest.dump(2) << "\n";
    const ReleaseCheck c = check();
    EXPECT_FALSE(c.passed(ManifestSignature::required));
    EXPECT_EQ(c.manifest_signature->check, signing::SignatureCheck::invalid);
    EXPECT_EQ(state_of(c, name(dicoms[1]))->state, ReleaseFileState::intact);
    EXPECT_EQ(state_of(c, name(dicoms[1]))->signature, dicom::Verdict::unsigned_file);
    const std::string text = release_check_text(c, ManifestSignature::required);
    EXPECT_NE(text.find(name(dicoms[1]) + ": intact; unsigned"), std::string::npos) << text;
  }
  // No signature file: an unsigned manifest does not pass unless allowed.
  std::ofstream(release / kReleaseManifest, std::ios::trunc) << manifest_text;
  fs::remove(release / kReleaseManifestSignature);
  {
    const ReleaseCheck c = check();
    EXPECT_FALSE(c.manifest_signature);
    EXPECT_FALSE(c.passed(ManifestSignature::required));
  }
}

// The export's reports say per released file what the pixel stages did, name the stage that
// refused an instance, and give the stages' times; a refused study's files are not listed.
TEST(Export, ReportsSayPerFileWhatThePixelStagesDid) {
  Fixture f;
  const fs::path in = f.dir / "in";
  make_study(in, "P-1", "One^Patient", 1, 2);
  make_study(in, "P-2", "Two^Patient", 2, 3);
  {
    auto reg = f.registry();
    ASSERT_TRUE(reg.record(permit("P-1", consent::Purpose::research)));
    ASSERT_TRUE(reg.record(permit("P-2", consent::Purpose::research)));
  }
  auto options = f.options({in}, consent::Purpose::research, "University");
  options.pixel_stages = [](const std::vector<fs::path>&) -> Result<std::vector<deid::PixelStage>> {
    deid::PixelStage stage{
        "test-stage",
        [](const fs::path& input, dicom::DicomFile&, deid::PixelWork& work) -> Status {
          if (input.filename().string().starts_with("Two^Patient_2_2"))
            return fail(ErrorCode::policy, "the test stage refuses this one");
          work.read_for_text = true;
          work.frames = 1;
          work.frames_redacted = 1;
          work.text_boxes = 3;
          return {};
        },
        {},
        {}};
    return std::vector<deid::PixelStage>{stage};
  };
  const ExportReport report = f.run(options);
  ASSERT_EQ(report.status, ledger::EntryStatus::released) << report.error;
  ASSERT_EQ(report.pixel_work.size(), 2u) << "only the released study's files";
  for (const auto& o : report.pixel_work) {
    EXPECT_EQ(o.pixels.text_boxes, 3u);
    EXPECT_TRUE(fs::is_regular_file(report.release / o.output));
  }
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_EQ(report.failures.front().pixels.refused_by, "test-stage");
  ASSERT_EQ(report.stage_timings.size(), 2u);  // the consent check, then the test stage
  EXPECT_EQ(report.stage_timings[1].name, "test-stage");
  const auto json = nlohmann::json::parse(report_json(report, f.stage, options));
  EXPECT_EQ(json["pixel_work"].size(), 2u);
  EXPECT_EQ(json["pixel_work"][0]["frames_redacted"], 1);
  EXPECT_EQ(json["failures"][0]["refused_by"], "test-stage");
  EXPECT_EQ(json["pixels"]["text_boxes"], 6);
  EXPECT_EQ(json["timings"]["pixel_stages"][1]["stage"], "test-stage");
  const std::string text = report_text(report);
  EXPECT_NE(text.find("pixels: text blacked out in 2 images (2 frames, 6 areas)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("redacted: " + (in / "One^Patient_1_1.dcm").string() + " -> "),
            std::string::npos)
      << text;
}

// Hostile manifests: a listed path that leaves the release folder is a problem, never read.
TEST(Export, AReleaseManifestCannotPointOutsideTheRelease) {
  ScratchDir dir;
  const fs::path release = dir / "release";
  fs::create_directories(release);
  { std::ofstream(dir / "secret.txt") << "outside"; }
  const std::string digest = crypto::to_hex(crypto::sha256("outside"));
  nlohmann::json manifest = {
      {"format", std::string(kReleaseManifestFormat)},
      {"files",
       {{{"path", "../secret.txt"}, {"sha256", digest}},
        {{"path", "/etc/passwd"}, {"sha256", digest}},
        {{"path", "a//b"}, {"sha256", digest}},
        {{"path", 7}, {"sha256", digest}}}}};
  std::ofstream(release / kReleaseManifest) << manifest.dump();
  auto c = check_release(release, release / kReleaseManifest, {}, DicomSignatures::skip, 1);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->manifest_problems.size(), 4u);
  EXPECT_TRUE(c->files.empty());
  EXPECT_FALSE(c->passed(ManifestSignature::optional));
  // Not a release manifest at all.
  std::ofstream(release / kReleaseManifest, std::ios::trunc) << R"({"format": "other"})";
  EXPECT_EQ(check_release(release, release / kReleaseManifest, {}, DicomSignatures::skip, 1)
                .error()
                .code,
            ErrorCode::integrity);
}

// A staged part is a file others can edit: a count that is not a whole number (1e300 made
// nlohmann's value() undefined behaviour) refuses the release instead of adding up wrongly.
TEST(Export, AStagedPartWhoseCountIsNotAWholeNumberIsRefused) {
  ScratchDir dir;
  const fs::path in = dir / "in";
  make_study(in / "a", "P-ONE", "One^Anna", 1, 1);
  const fs::path key_file = dir / "site.key";
  const std::string registry_path = (dir / "consent.db").string();
  {
    auto key = crypto::SecretKey::generate();
    ASSERT_TRUE(key && key->save_new(key_file));
    auto reg = consent::Registry::open(registry_path).value();
    ASSERT_TRUE(reg.record(permit("P-ONE", consent::Purpose::research)));
  }
  const fs::path plan = dir / "plan";
  const std::string radguard = RADGUARD_BINARY;
  const std::string plan_command =
      "'" + radguard + "' plan '" + in.string() + "' --shards 1 -o '" + plan.string() +
      "' --no-progress --sbatch -- export -o '" + (dir / "out").string() +
      "' --purpose research --recipient Lab -k '" + key_file.string() + "' --registry '" +
      registry_path + "' --ledger '" + (dir / "ledger.db").string() + "' >'" +
      (dir / "plan.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(plan_command.c_str()), 0) << slurp(dir / "plan.log");
  const std::string shard = "SLURM_ARRAY_TASK_ID=0 SLURM_CPUS_PER_TASK=1 bash '" +
                            (plan / "run.sbatch").string() + "' >'" +
                            (dir / "shard.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(shard.c_str()), 0) << slurp(dir / "shard.log");
  ASSERT_TRUE(read_staged(plan)) << "the untouched part must read";
  const fs::path part_file = plan / shard_part_path(0);
  const std::string original = slurp(part_file);
  const auto edited = [&](const char* pointer) {
    auto part = nlohmann::json::parse(original);
    part[nlohmann::json::json_pointer(pointer)] = 1e300;
    std::ofstream(part_file, std::ios::trunc) << part.dump();
    return read_staged(plan);
  };
  for (const char* pointer : {"/counts/files_seen", "/counts/studies", "/missing_inputs"}) {
    const auto refused = edited(pointer);
    ASSERT_FALSE(refused) << pointer;
    EXPECT_NE(refused.error().message.find("not a whole number"), std::string::npos)
        << pointer << ": " << refused.error().message;
  }
  EXPECT_FALSE(edited("/shard")) << "a shard number that is not a whole number";
  EXPECT_FALSE(edited("/files/0/bytes"));
}

// Issue 19: a consent withdrawal recorded while a sharded export's publish is running its
// release gate (the shards ran with her permission; publish decided consent again and still
// found it; the gate then looks at a release that holds her files). The publish must not
// release her: it fails closed naming why, publishes nothing, records nothing and keeps the
// staging; published again, she is left out and the one ledger entry does not name her.
TEST(Export, AWithdrawalWhileAShardedPublishIsGatedReleasesNothingOfHers) {
  ScratchDir dir;
  const fs::path in = dir / "in";
  make_study(in / "a", "P-STAYS", "Stays^Anna", 1, 2);
  make_study(in / "b", "P-LEAVES", "Leaves^Bert", 2, 2);
  make_study(in / "c", "P-STAYS", "Stays^Anna", 3, 1);
  const fs::path key_file = dir / "site.key";
  const std::string registry_path = (dir / "consent.db").string();
  const std::string ledger_path = (dir / "ledger.db").string();
  {
    auto key = crypto::SecretKey::generate();
    ASSERT_TRUE(key && key->save_new(key_file));
    auto reg = consent::Registry::open(registry_path).value();
    ASSERT_TRUE(reg.record(permit("P-STAYS", consent::Purpose::research)));
    ASSERT_TRUE(reg.record(permit("P-LEAVES", consent::Purpose::research)));
  }
  // Plan and stage as the Slurm scripts do (each array task run here, one after another).
  const fs::path plan = dir / "plan";
  const fs::path output = dir / "out";
  const std::string radguard = RADGUARD_BINARY;
  const std::string plan_command =
      "'" + radguard + "' plan '" + in.string() + "' --shards 2 -o '" + plan.string() +
      "' --no-progress --sbatch -- export -o '" + output.string() +
      "' --purpose research --recipient Lab -k '" + key_file.string() + "' --registry '" +
      registry_path + "' --ledger '" + ledger_path + "' >'" + (dir / "plan.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(plan_command.c_str()), 0) << slurp(dir / "plan.log");
  for (int task = 0; task < 2; ++task) {
    const std::string shard = "SLURM_ARRAY_TASK_ID=" + std::to_string(task) +
                              " SLURM_CPUS_PER_TASK=1 bash '" + (plan / "run.sbatch").string() +
                              "' >'" + (dir / "shard.log").string() + "' 2>&1";
    ASSERT_EQ(std::system(shard.c_str()), 0) << slurp(dir / "shard.log");
  }

  auto staged = read_staged(plan);
  ASSERT_TRUE(staged) << staged.error().message;
  auto key = crypto::SecretKey::load(key_file).value();
  auto registry = consent::Registry::open(registry_path, consent::RegistryAccess::read_only).value();
  auto led = ledger::Ledger::open(ledger_path, ledger::LedgerAccess::create_if_missing).value();
  // The gate records the withdrawal through its own connection (as `radguard consent set` in
  // another process would) while it looks at the staged release, which still holds her files.
  int gate_runs = 0;
  bool saw_her_files = false;
  const ReleaseGate withdrawing_gate =
      [&](const fs::path& staging) -> Result<std::optional<std::string>> {
    ++gate_runs;
    std::size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(staging))
      if (e.is_regular_file()) ++files;
    saw_her_files = files == 5;
    auto writer = consent::Registry::open(registry_path);
    if (!writer) return std::unexpected(writer.error());
    auto withdrawal = permit("P-LEAVES", consent::Purpose::research, consent::Decision::deny);
    withdrawal.date = utc_now_iso8601();
    if (auto stored = writer->record(withdrawal); !stored) return std::unexpected(stored.error());
    return std::nullopt;  // the gate itself finds nothing wrong
  };
  auto refused = publish_staged(*staged, registry, key, led, 1, withdrawing_gate);
  ASSERT_FALSE(refused) << "a release checked with her in it was published";
  EXPECT_EQ(gate_runs, 1);
  EXPECT_TRUE(saw_her_files) << "the gate ran before her withdrawal was known";
  EXPECT_NE(refused.error().message.find("withdrawn while the release was checked"),
            std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("P-LEAVES"), std::string::npos) << "no patient named";
  for (const auto& name : releases_in(output))
    EXPECT_FALSE(name.string().starts_with("release-")) << "published: " << name;
  EXPECT_TRUE(led.all()->empty()) << "a refused publish recorded an entry";
  EXPECT_TRUE(fs::is_directory(staged->staging)) << "the staging is kept for another try";

  // Published again (the gate now passes without changing anything): she is left out.
  auto published = publish_staged(*staged, registry, key, led, 1,
                                  [](const fs::path&) -> Result<std::optional<std::string>> {
                                    return std::nullopt;
                                  });
  ASSERT_TRUE(published) << published.error().message;
  EXPECT_EQ(published->exit_code, 1) << "a patient left out at publish is not a clean release";
  EXPECT_EQ(published->withdrawn_patients, 1u);
  EXPECT_EQ(published->withdrawn.studies, 1u);
  EXPECT_EQ(published->withdrawn.instances, 2u);
  auto all = led.all();
  ASSERT_EQ(all->size(), 1u) << "one ledger entry for the release";
  EXPECT_EQ((*all)[0].status, ledger::EntryStatus::released);
  EXPECT_EQ((*all)[0].instances, 3u);
  ASSERT_EQ((*all)[0].patients.size(), 1u);
  EXPECT_EQ((*all)[0].patients[0].patient_hash, ledger::patient_hash(key, "P-STAYS"));
  EXPECT_TRUE(led.entries_for(ledger::patient_hash(key, "P-LEAVES"), std::nullopt)->empty());
  const auto manifest = nlohmann::json::parse(slurp(published->release / kReleaseManifest));
  EXPECT_EQ(manifest.at("files").size(), 3u);
  std::size_t released = 0;
  for (const auto& e : fs::recursive_directory_iterator(published->release))
    if (e.is_regular_file() && e.path().filename() != kReleaseManifest) ++released;
  EXPECT_EQ(released, 3u) << "her files are not in the release folder";
  auto check = check_release_files(published->release);
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_TRUE(check->empty());
  EXPECT_TRUE(led.verify()->intact());
}

}  // namespace
}  // namespace radguard::exporter
