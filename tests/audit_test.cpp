// radguard audit (src/audit): header, private, free-text, UID, file-name findings on planted
// fixtures; nothing of high severity on radguard deid's own outputs; k-anonymity figures on
// a dataset with known classes; each integrity flag on a crafted case and silent without.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "audit/audit.hpp"
#include "deface/dicom_series.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/signature.hpp"
#include "signing/keys.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"

namespace radguard {
namespace {

using audit::Category;
using audit::Finding;
using audit::Severity;
using testing::TempDir;
namespace fs = std::filesystem;

audit::Report run(const fs::path& dir, audit::Options options = {}) {
  const fs::path inputs[] = {dir};
  options.threads = 2;
  auto report = audit::audit(inputs, options);
  EXPECT_TRUE(report.has_value()) << (report ? "" : report.error().message);
  return report ? *report : audit::Report{};
}

const Finding* find(const audit::Report& r, std::string_view file, std::string_view path,
                    std::optional<Category> category = std::nullopt) {
  for (const auto& f : r.findings)
    if (f.file == file && f.path == path && (!category || f.category == *category)) return &f;
  return nullptr;
}

std::size_t count(const audit::Report& r, Category c, std::string_view file = {}) {
  return static_cast<std::size_t>(std::count_if(r.findings.begin(), r.findings.end(), [&](const Finding& f) {
    return f.category == c && (file.empty() || f.file == file);
  }));
}

TEST(AuditUnits, DummyValues) {
  for (const char* v : {"", "ANONYMIZED", "Anonymous^RGABCDEFGHIJKLMNOP", "RGABCDEFGHIJKLMNOP",
                        "****", "0", "^", "REMOVED"})
    EXPECT_TRUE(audit::looks_like_dummy("LO", v)) << v;
  EXPECT_TRUE(audit::looks_like_dummy("DA", "19000101"));
  EXPECT_TRUE(audit::looks_like_dummy("UI", "2.25.1234"));
  for (const char* v : {"DOE^JOHN", "PID12345", "St Elsewhere Hospital", "20190315"})
    EXPECT_FALSE(audit::looks_like_dummy("LO", v)) << v;
}

TEST(AuditUnits, DatesInsideUids) {
  EXPECT_EQ(audit::uid_embedded_dates("1.3.12.2.1107.5.2.32.35162.2010030812345678901234"),
            std::vector<std::string>{"20100308"});
  // GE: seconds since 1970 (2010-03-08).
  EXPECT_EQ(audit::uid_embedded_dates("1.2.840.113619.2.55.3.604688119.969.1268071029.320"),
            std::vector<std::string>{"20100308"});
  EXPECT_TRUE(audit::uid_embedded_dates("2.25.201003081234567890123456789012345678").empty());
  EXPECT_TRUE(audit::uid_embedded_dates("1.2.826.0.1.3680043.2.1125.2.1").empty());
}

// A CT with identifying values planted everywhere the audit looks.
void plant(DcmFileFormat& file) {
  DcmDataset& d = *file.getDataset();
  d.putAndInsertString(DcmTag(0x0019, 0x0010, EVR_LO), "ACME HOSPITAL PRIVATE");
  d.putAndInsertString(DcmTag(0x0019, 0x1001, EVR_PN), "DOE^JOHN");
  DcmItem* item = nullptr;
  ASSERT_TRUE(d.findOrCreateSequenceItem(DCM_ContentSequence, item, 0).good());
  item->putAndInsertString(DCM_ValueType, "TEXT");
  item->putAndInsertString(DCM_TextValue, "discussed with Mr Doe on the phone");
  DcmItem* second = nullptr;
  ASSERT_TRUE(d.findOrCreateSequenceItem(DCM_ContentSequence, second, 1).good());
  second->putAndInsertString(DCM_ValueType, "PNAME");
  second->putAndInsertString(DCM_PersonName, "WILSON^JAMES");
  d.putAndInsertString(DCM_ImageComments, "call 0161 496 0000");
}

TEST(AuditHeaders, PlantedValuesAreFlaggedWhereTheyAre) {
  TempDir dir;
  fs::create_directories(dir / "DOE_JOHN");
  auto ct = testing::make_ct();
  plant(*ct);
  testing::save(*ct, dir / "DOE_JOHN/ct.dcm");
  const auto r = run(dir.path());
  const std::string file = "<masked-1>/ct.dcm";
  ASSERT_NE(find(r, file, "(0010,0010)"), nullptr);
  EXPECT_EQ(find(r, file, "(0010,0010)")->severity, Severity::high);
  EXPECT_EQ(find(r, file, "(0010,0010)")->category, Category::header);
  EXPECT_NE(find(r, file, "(0010,0020)", Category::header), nullptr);
  EXPECT_NE(find(r, file, "(0010,0030)", Category::date), nullptr);
  EXPECT_NE(find(r, file, "(0008,0090)", Category::header), nullptr);
  // Study Description names the patient: judged as free text, by the dataset's own values.
  ASSERT_NE(find(r, file, "(0008,1030)", Category::free_text), nullptr);
  EXPECT_EQ(find(r, file, "(0008,1030)")->severity, Severity::high);
  EXPECT_NE(find(r, file, "(0019,1001)", Category::private_attribute), nullptr);
  EXPECT_EQ(find(r, file, "(0019,1001)")->severity, Severity::high);
  EXPECT_NE(find(r, file, "(0040,A730)[0]/(0040,A160)", Category::free_text), nullptr);
  EXPECT_NE(find(r, file, "(0040,A730)[1]/(0040,A123)", Category::header), nullptr);
  EXPECT_NE(find(r, file, "(0020,4000)", Category::free_text), nullptr);  // a phone number
  EXPECT_NE(find(r, file, "(0020,000D)", Category::uid), nullptr);
  EXPECT_NE(find(r, file, "(0010,1010)", Category::date), nullptr);  // 095Y
  EXPECT_EQ(count(r, Category::filename), 1U);
  // Without --show-values no value is in the report, not even the folder's name.
  const std::string json = audit::report_json(r) + audit::report_text(r) + audit::report_html(r);
  for (const char* v : {"DOE", "PID12345", "WILSON", "0161", "Elsewhere", "20190315"})
    EXPECT_EQ(json.find(v), std::string::npos) << v;
  audit::Options show;
  show.show_values = audit::ShowValues::yes;
  const auto shown = run(dir.path(), show);
  ASSERT_NE(find(shown, "DOE_JOHN/ct.dcm", "(0010,0020)"), nullptr);
  EXPECT_EQ(find(shown, "DOE_JOHN/ct.dcm", "(0010,0020)")->value, "PID12345");
  EXPECT_EQ(audit::exit_status(r, audit::FailOn::high), 1);
  EXPECT_EQ(audit::exit_status(r, audit::FailOn::never), 0);
}

TEST(AuditHeaders, AgainstOriginalsFindsWhatSurvived) {
  TempDir original, released;
  auto ct = testing::make_ct();
  testing::save(*ct, original / "ct.dcm");
  // A weak release: names gone, the UIDs, the study date and the accession number left.
  ct->getDataset()->putAndInsertString(DCM_PatientName, "ANONYMIZED");
  ct->getDataset()->putAndInsertString(DCM_PatientID, "X");
  ct->getDataset()->putAndInsertString(DCM_StudyDescription, "CT HEAD");
  ct->getDataset()->putAndInsertString(DCM_ImageComments, "ref ACC998877");
  testing::save(*ct, released / "ct.dcm");
  audit::Options options;
  options.against = {original.path()};
  const auto r = run(released.path(), options);
  ASSERT_NE(find(r, "ct.dcm", "(0008,0018)", Category::uid), nullptr);
  EXPECT_EQ(find(r, "ct.dcm", "(0008,0018)", Category::uid)->severity, Severity::high);
  ASSERT_NE(find(r, "ct.dcm", "(0008,0020)", Category::date), nullptr);
  EXPECT_EQ(find(r, "ct.dcm", "(0008,0020)", Category::date)->severity, Severity::high);
  EXPECT_NE(find(r, "ct.dcm", "(0020,4000)", Category::free_text), nullptr);
  EXPECT_EQ(find(r, "ct.dcm", "(0010,0010)"), nullptr);
  EXPECT_EQ(find(r, "ct.dcm", "(0008,1030)", Category::free_text), nullptr);  // says nothing
}

TEST(AuditHeaders, RadguardDeidOutputHasNoHighFinding) {
  TempDir in, out;
  for (int i = 0; i < 3; ++i) {
    auto ct = testing::make_ct("PID" + std::to_string(1000 + i),
                               "1.2.826.0.1.3680043.2.1125.1." + std::to_string(i + 1));
    plant(*ct);
    testing::save(*ct, in / ("ct" + std::to_string(i) + ".dcm"));
  }
  for (const char* preset : {"basic", "research"}) {
    const fs::path o = out / preset;
    for (int i = 0; i < 3; ++i) {
      const auto result = testing::deidentify(in / ("ct" + std::to_string(i) + ".dcm"), o, preset);
      ASSERT_TRUE(result.output) << result.error;
    }
    audit::Options options;
    options.against = {in.path()};
    const auto r = run(o, options);
    for (const auto& f : r.findings)
      EXPECT_NE(f.severity, Severity::high) << preset << " " << f.file << " " << f.path << " " << f.reason;
    EXPECT_EQ(count(r, Category::header) + count(r, Category::private_attribute) +
                  count(r, Category::uid) + count(r, Category::filename),
              0U)
        << preset << "\n"
        << audit::report_text(r);
  }
}

// Structured reports name their concepts in standard vocabularies ("Recording Observer's
// Name", "Text Code"): such a Code Meaning is not free text, even when the originals' names
// are placeholders made of the same words (pydicom's reportsi.dcm: "Last Name^First Name").
TEST(AuditHeaders, StandardConceptNamesAreNotIdentifyingValues) {
  const fs::path sample = testing::pydicom_sample("reportsi.dcm");
  if (sample.empty()) GTEST_SKIP() << "python3-pydicom is not installed";
  TempDir in, out;
  fs::copy_file(sample, in / "sr.dcm");
  const auto result = testing::deidentify(in / "sr.dcm", out.path(), "basic");
  ASSERT_TRUE(result.output) << result.error;
  audit::Options options;
  options.against = {in.path()};
  const auto r = run(out.path(), options);
  for (const auto& f : r.findings) {
    EXPECT_NE(f.severity, Severity::high) << f.path << " " << f.reason;
    EXPECT_EQ(f.path.find("(0008,0104)"), std::string::npos) << f.path << " " << f.reason;
  }
}

// ---- k-anonymity -------------------------------------------------------------------------------

TEST(AuditQuasi, KnownEquivalenceClasses) {
  TempDir dir;
  // Classes of 5, 4, 2 and 1 patients over sex, age and modality.
  struct Cls {
    int n;
    const char *sex, *age, *modality;
  };
  const Cls classes[] = {{5, "F", "040Y", "CT"}, {4, "M", "052Y", "MR"}, {2, "M", "061Y", "CT"},
                         {1, "F", "077Y", "CT"}};
  int p = 0;
  for (const auto& c : classes)
    for (int i = 0; i < c.n; ++i, ++p) {
      auto ct = testing::make_ct("P" + std::to_string(p), "1.2.826.0.1.3680043.2.1125.1." + std::to_string(p + 1),
                                 8 + static_cast<unsigned>(p), 8);
      DcmDataset& d = *ct->getDataset();
      d.putAndInsertString(DCM_PatientSex, c.sex);
      d.putAndInsertString(DCM_PatientAge, c.age);
      d.putAndInsertString(DCM_Modality, c.modality);
      d.putAndInsertString(DCM_StudyInstanceUID, ("2.25.77" + std::to_string(p)).c_str());
      testing::save(*ct, dir / ("f" + std::to_string(p) + ".dcm"));
    }
  const auto r = run(dir.path());
  const auto& k = r.k_anonymity;
  EXPECT_EQ(k.patients, 12U);
  EXPECT_EQ(k.smallest_k, 1U);
  EXPECT_EQ(k.unique, 1U);
  EXPECT_EQ(k.below_k, 7U);  // 4 + 2 + 1 below k=5
  EXPECT_EQ(k.class_sizes, (std::map<std::size_t, std::size_t>{{1, 1}, {2, 1}, {4, 1}, {5, 1}}));
  EXPECT_EQ(count(r, Category::quasi_identifier), 7U);
  // Without the age, F 77 CT joins the five F 40 CT (a class of 6); M 52 MR and M 61 CT stay
  // below 5 until the modality goes too, so a generalisation of several steps is suggested.
  EXPECT_EQ(k.lifted_without.at("age"), 1U);
  ASSERT_FALSE(k.suggestion.empty());
  EXPECT_LT(k.suggestion.back().second, 7U);
  audit::Options two;
  two.k = 2;
  const auto r2 = run(dir.path(), two);
  EXPECT_EQ(r2.k_anonymity.below_k, 1U);
  EXPECT_EQ(r2.k_anonymity.lifted_without.at("age"), 1U);  // F 77 joins F 40 CT
}

// ---- Integrity ---------------------------------------------------------------------------------

TEST(AuditIntegrity, EditingToolOnAScannersImage) {
  TempDir dir;
  auto edited = testing::make_ct("P1", "1.2.826.0.1.3680043.2.1125.1.1", 16, 16);
  edited->getDataset()->putAndInsertString(DCM_Manufacturer, "SIEMENS");
  testing::save(*edited, dir / "edited.dcm");  // DCMTK writes its own Implementation Class UID
  auto vendor = testing::make_ct("P2", "1.2.826.0.1.3680043.2.1125.1.2", 12, 12);
  vendor->getDataset()->putAndInsertString(DCM_Manufacturer, "SIEMENS");
  testing::save(*vendor, dir / "vendor.dcm");
  // As the scanner wrote it: its own Implementation Class UID, kept on saving.
  vendor = testing::load(dir / "vendor.dcm");
  vendor->getMetaInfo()->putAndInsertString(DCM_ImplementationClassUID, "1.3.12.2.1107.5.2");
  vendor->getMetaInfo()->putAndInsertString(DCM_ImplementationVersionName, "MR_VE11C");
  ASSERT_TRUE(vendor->saveFile((dir / "vendor.dcm").c_str(), EXS_LittleEndianExplicit,
                               EET_UndefinedLength, EGL_recalcGL, EPD_noChange, 0, 0,
                               EWM_dontUpdateMeta).good());
  const auto r = run(dir.path());
  ASSERT_NE(find(r, "edited.dcm", "(0002,0012)", Category::integrity), nullptr);
  EXPECT_NE(find(r, "edited.dcm", "(0002,0012)")->reason.find("suspect"), std::string::npos);
  EXPECT_EQ(count(r, Category::integrity, "vendor.dcm"), 0U) << audit::report_text(r);
}

TEST(AuditIntegrity, UidTimestampAgainstContentDates) {
  TempDir dir;
  auto off = testing::make_ct("P1", "1.3.12.2.1107.5.1.4.20150101120000.1", 16, 16);
  testing::save(*off, dir / "off.dcm");  // study on 2019-03-15, instance UID says 2015-01-01
  auto on = testing::make_ct("P2", "1.3.12.2.1107.5.1.4.20190315231500.1", 12, 12);
  testing::save(*on, dir / "on.dcm");
  const auto r = run(dir.path());
  EXPECT_NE(find(r, "off.dcm", "(0008,0018)", Category::integrity), nullptr);
  EXPECT_EQ(count(r, Category::integrity, "on.dcm"), 0U) << audit::report_text(r);
  // Both UIDs are also original-looking and embed a date.
  EXPECT_NE(find(r, "on.dcm", "(0008,0018)", Category::uid), nullptr);
}

TEST(AuditIntegrity, IdenticalPixelsUnderDifferentPatients) {
  TempDir dir;
  testing::save(*testing::make_ct("P1", "1.2.826.0.1.3680043.2.1125.1.1"), dir / "a.dcm");
  testing::save(*testing::make_ct("P2", "1.2.826.0.1.3680043.2.1125.1.2"), dir / "b.dcm");
  testing::save(*testing::make_ct("P3", "1.2.826.0.1.3680043.2.1125.1.3", 20, 20), dir / "c.dcm");
  const auto r = run(dir.path());
  EXPECT_NE(find(r, "a.dcm", "(7FE0,0010)", Category::integrity), nullptr);
  EXPECT_NE(find(r, "b.dcm", "(7FE0,0010)", Category::integrity), nullptr);
  EXPECT_EQ(count(r, Category::integrity, "c.dcm"), 0U);
}

TEST(AuditIntegrity, SignaturePresentButInvalid) {
  TempDir dir, keys;
  ASSERT_TRUE(signing::write_test_identity(keys / "k.pem", keys / "c.pem", {}).has_value());
  auto signer = dicom::Signer::load(keys / "k.pem", keys / "c.pem", dicom::SignatureProfile::none);
  ASSERT_TRUE(signer.has_value()) << signer.error().message;
  testing::save(*testing::make_ct("P1", "1.2.826.0.1.3680043.2.1125.1.1"), dir / "good.dcm");
  testing::save(*testing::make_ct("P2", "1.2.826.0.1.3680043.2.1125.1.2", 20, 20), dir / "bad.dcm");
  ASSERT_TRUE(dicom::sign_file(dir / "good.dcm", dir / "good.dcm", *signer).has_value());
  ASSERT_TRUE(dicom::sign_file(dir / "bad.dcm", dir / "bad.dcm", *signer).has_value());
  auto bad = testing::load(dir / "bad.dcm");
  bad->getDataset()->putAndInsertString(DCM_SeriesDescription, "changed after signing");
  ASSERT_TRUE(bad->saveFile((dir / "bad.dcm").c_str(), EXS_LittleEndianExplicit).good());
  const auto r = run(dir.path());
  ASSERT_NE(find(r, "bad.dcm", "(FFFA,FFFA)", Category::integrity), nullptr);
  EXPECT_EQ(find(r, "bad.dcm", "(FFFA,FFFA)")->severity, Severity::high);
  EXPECT_EQ(find(r, "good.dcm", "(FFFA,FFFA)"), nullptr);
}

// ---- Pixels: faces and burned-in text (Depth::full) --------------------------------------------

std::vector<const Finding*> of(const audit::Report& r, Category c) {
  std::vector<const Finding*> out;
  for (const auto& f : r.findings)
    if (f.category == c) out.push_back(&f);
  return out;
}

testing::HeadPhantom ct_head() {
  return testing::make_head_phantom(testing::PhantomContrast::ct, {66, 80, 84}, {3.0, 3.0, 3.0},
                                    {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, 1}});
}

// A face is looked for on the head itself, not in what the header declares: an intact head is
// a high finding whether or not it claims defacing (a weak defacer's code 113102 is checked,
// not trusted), and a head radguard defaced shows none.
TEST(AuditFaces, AFaceIsSeenOnTheHeadWhateverTheHeaderDeclares) {
  TempDir dir;
  const auto head = ct_head();
  testing::write_series(head.volume, dir / "plain", {});
  testing::SeriesSpec lying;
  lying.existing_method_code = true;
  lying.method_code = "113102";
  testing::write_series(head.volume, dir / "lying", lying);

  for (const char* folder : {"plain", "lying"}) {
    const auto r = run(dir / folder);
    const auto faces = of(r, Category::face);
    ASSERT_EQ(faces.size(), 1U) << folder << "\n" << audit::report_text(r);
    EXPECT_EQ(faces[0]->severity, Severity::high) << faces[0]->reason;
    EXPECT_NE(faces[0]->reason.find(std::string(folder) == "lying" ? "declared but did not remove"
                                                                   : "no defacing declared"),
              std::string::npos)
        << faces[0]->reason;
  }

  // Defaced by radguard: no face finding at all.
  const auto input = std::vector<fs::path>{dir / "plain"};
  const auto defaced = deface::deface_dicom_series(input, {});
  ASSERT_TRUE(defaced) << defaced.error().message;
  fs::create_directories(dir / "defaced");
  for (const auto& entry : fs::directory_iterator(dir / "plain")) {
    auto file = dicom::DicomFile::open(entry.path());
    ASSERT_TRUE(file);
    ASSERT_TRUE(defaced->apply(entry.path(), *file));
    ASSERT_TRUE(file->save(dir / "defaced" / entry.path().filename(), {"1.2.3", "TEST"}));
  }
  const auto after = run(dir / "defaced");
  EXPECT_TRUE(of(after, Category::face).empty()) << audit::report_text(after);

  // Headers only: what the header says, as before (a medium "may be recognisable").
  audit::Options headers;
  headers.depth = audit::Depth::headers;
  const auto quick = run(dir / "plain", headers);
  const auto faces = of(quick, Category::face);
  ASSERT_EQ(faces.size(), 1U);
  EXPECT_EQ(faces[0]->severity, Severity::medium);
}

// Real heads (../shared/heads, niivue-demo-images, BSD-2): the two with faces are high, the
// skull-stripped brain shows none, and the MR series TCIA defaced before publication (eye-like
// notches, no nose) is not called a visible face.
TEST(AuditFaces, RealHeadsAreJudgedOnTheirSurface) {
  const fs::path heads = RADGUARD_SHARED_HEADS;
  const fs::path archive = heads / "mr_t1_tcia_predefaced_dicom.tar.xz";
  if (!fs::exists(archive)) GTEST_SKIP() << heads << " is not here";
  TempDir dir;
  fs::create_directories(dir / "nifti");
  for (const std::string name : {"ct_pitch_face", "mr_t2w_face", "mr_gd_skullstripped"})
    fs::copy_file(heads / (name + ".nii.gz"), dir / "nifti" / (name + ".nii.gz"));
  const auto volumes = run(dir / "nifti");
  std::map<std::string, Severity> face_of;
  for (const auto* f : of(volumes, Category::face)) face_of[f->file] = f->severity;
  EXPECT_EQ(face_of["ct_pitch_face.nii.gz"], Severity::high) << audit::report_text(volumes);
  EXPECT_EQ(face_of["mr_t2w_face.nii.gz"], Severity::high) << audit::report_text(volumes);
  EXPECT_FALSE(face_of.contains("mr_gd_skullstripped.nii.gz")) << audit::report_text(volumes);

  fs::create_directories(dir / "tcia");
  const std::string untar = "tar -xJf '" + archive.string() + "' -C '" + (dir / "tcia").string() + "'";
  ASSERT_EQ(std::system(untar.c_str()), 0);
  const auto tcia = run(dir / "tcia");
  for (const auto* f : of(tcia, Category::face)) EXPECT_NE(f->severity, Severity::high) << f->reason;
}

// Burned-in text is read, not guessed from the header: a name and a date in the pixels are a
// high finding; after radguard's redaction the same image has none.
TEST(AuditPixels, BurnedInNameIsReadAndRedactedImageIsClean) {
  TempDir dir;
  testing::BurnedFrame frame;
  frame.width = 480;
  frame.height = 360;
  frame.anatomy = {120, 120, 240, 200};
  frame.texts = {{"DOE", {10, 26}, cv::FONT_HERSHEY_SIMPLEX, 0.7, 2, 230, true},
                 {"JOHN", {70, 26}, cv::FONT_HERSHEY_SIMPLEX, 0.7, 2, 230, true},
                 {"15/03/2019", {300, 26}, cv::FONT_HERSHEY_SIMPLEX, 0.7, 2, 230, true}};
  auto us = testing::make_burned_in({frame}, testing::Colour::monochrome2);
  fs::create_directories(dir / "raw");
  testing::save(*us, dir / "raw" / "us.dcm");
  const auto raw = run(dir / "raw");
  const auto found = of(raw, Category::pixels);
  ASSERT_FALSE(found.empty()) << audit::report_text(raw);
  EXPECT_TRUE(std::any_of(found.begin(), found.end(), [](const Finding* f) {
    return f->severity == Severity::high && f->reason.find("read as a name") != std::string::npos;
  })) << audit::report_text(raw);
  for (const auto* f : found) EXPECT_EQ(f->value, "");

  auto file = dicom::DicomFile::open(dir / "raw" / "us.dcm");
  ASSERT_TRUE(file);
  redact::RedactOptions phi;
  const auto cleaned = redact::clean_for_release(*file, phi);
  ASSERT_TRUE(cleaned) << cleaned.error().message;
  fs::create_directories(dir / "clean");
  ASSERT_TRUE(file->save(dir / "clean" / "us.dcm", {"1.2.3", "TEST"}));
  const auto clean = run(dir / "clean");
  for (const auto* f : of(clean, Category::pixels))
    EXPECT_NE(f->severity, Severity::high) << f->reason;
}

// One slice of another acquisition spliced into a series (another pixel spacing) is flagged;
// the untouched series is not.
TEST(AuditIntegrity, GeometryInconsistentWithinASeries) {
  TempDir dir;
  const auto head = ct_head();
  const auto files = testing::write_series(head.volume, dir / "s", {});
  const auto clean = run(dir / "s");
  EXPECT_EQ(count(clean, Category::integrity), 0U) << audit::report_text(clean);

  DcmFileFormat spliced;
  ASSERT_TRUE(spliced.loadFile(files[40].c_str()).good());
  ASSERT_TRUE(spliced.getDataset()->putAndInsertString(DCM_PixelSpacing, "0.5\\0.5").good());
  ASSERT_TRUE(spliced.saveFile(files[40].c_str(), EXS_LittleEndianExplicit).good());
  audit::Options headers;
  headers.depth = audit::Depth::headers;
  const auto r = run(dir / "s", headers);
  ASSERT_EQ(count(r, Category::integrity), 1U) << audit::report_text(r);
  EXPECT_NE(find(r, files[40].filename().string(), "", Category::integrity), nullptr)
      << audit::report_text(r);
}

TEST(AuditReport, FormatsAndOddInputs) {
  TempDir dir;
  testing::save(*testing::make_ct(), dir / "ct.dcm");
  std::ofstream(dir / "notes.txt") << "not dicom";
  std::ofstream(dir / "empty.dcm");
  const auto r = run(dir.path());
  EXPECT_EQ(r.dicom_files, 1U);
  EXPECT_EQ(r.other_files, 2U);
  const auto j = nlohmann::json::parse(audit::report_json(r));
  EXPECT_EQ(j["summary"]["files"], 3);
  EXPECT_EQ(j["summary"]["high"], r.count(Severity::high));
  const std::string html = audit::report_html(r);
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
  // A file that claims to be DICOM but cannot be parsed is a high finding, never a pass.
  {
    TempDir cut;
    testing::save(*testing::make_ct(), cut / "ct.dcm");
    fs::resize_file(cut / "ct.dcm", fs::file_size(cut / "ct.dcm") - 200);
    const auto truncated = run(cut.path());
    const Finding* unreadable = find(truncated, "ct.dcm", "", Category::integrity);
    ASSERT_NE(unreadable, nullptr);
    EXPECT_EQ(unreadable->severity, Severity::high);
    EXPECT_EQ(audit::exit_status(truncated, audit::FailOn::high), 1);
  }
  const fs::path none[] = {dir / "missing"};
  EXPECT_FALSE(audit::audit(none, {}).has_value());
  EXPECT_FALSE(audit::audit({}, {}).has_value());
}

}  // namespace
}  // namespace radguard
