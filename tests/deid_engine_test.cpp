// The header stage on real files: every action code, every option, nested sequences,
// private blocks, marking, pseudonym consistency across files.
#include <gtest/gtest.h>

#include <regex>

#include "deid/dates.hpp"
#include "pseudonym/pseudonymizer.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

using testing::deidentify;
using testing::exists;
using testing::load;
using testing::make_ct;
using testing::save;
using testing::TempDir;
using testing::value;

bool is_keyed_uid(const std::string& uid) {
  return std::regex_match(uid, std::regex("2\\.25\\.[1-9][0-9]{0,38}"));
}

// Adds the odd things real files carry: private blocks, overlays, curves, unknown public
// tags, group lengths, nested sequences with identifiers inside.
void add_oddities(DcmDataset& d) {
  d.putAndInsertString(DcmTag(0x0019, 0x0010, EVR_LO), "GEMS_ACQU_01");
  d.putAndInsertString(DcmTag(0x0019, 0x1023, EVR_DS), "0.5625");  // safe-listed for this creator
  d.putAndInsertString(DcmTag(0x0019, 0x1010, EVR_LO), "PATIENT DOE");  // not safe
  d.putAndInsertString(DcmTag(0x0031, 0x0010, EVR_LO), "UNKNOWN VENDOR");
  d.putAndInsertString(DcmTag(0x0031, 0x1001, EVR_LO), "DOE^JOHN");
  d.putAndInsertUint16(DcmTag(0x6000, 0x0010, EVR_US), 16);
  d.putAndInsertString(DcmTag(0x6000, 0x4000, EVR_LT), "overlay comment naming DOE");
  d.putAndInsertString(DcmTag(0x5000, 0x0005, EVR_US), "1");
  d.putAndInsertString(DcmTag(0x0018, 0xFFF0, EVR_LO), "unknown public attribute");
  d.putAndInsertUint32(DcmTag(0x0008, 0x0000, EVR_UL), 123);
  DcmItem* ref = nullptr;
  d.findOrCreateSequenceItem(DCM_ReferencedImageSequence, ref, 0);
  ref->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
  ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.2.1125.1.2");
  DcmItem* req = nullptr;
  d.findOrCreateSequenceItem(DCM_RequestAttributesSequence, req, 0);
  req->putAndInsertString(DCM_RequestedProcedureID, "RP777");
  req->putAndInsertString(DCM_ScheduledProcedureStepID, "SPS1");
  DcmItem* nested = nullptr;
  req->findOrCreateSequenceItem(DCM_ReferencedStudySequence, nested, 0);
  nested->putAndInsertString(DCM_ReferencedSOPClassUID,
                             UID_RETIRED_StudyComponentManagementSOPClass);
  nested->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.2.1125.9.9");
  DcmItem* other = nullptr;
  d.findOrCreateSequenceItem(DCM_OtherPatientIDsSequence, other, 0);
  other->putAndInsertString(DCM_PatientID, "OTHER-PID-1");
}

class DeidEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ct = make_ct();
    add_oddities(*ct->getDataset());
    input_ = dir_ / "in" / "DOE_JOHN" / "ct.dcm";
    save(*ct, input_);
  }
  std::unique_ptr<DcmFileFormat> run(const std::string& preset,
                                     std::initializer_list<std::string> options = {},
                                     const std::string& recipe = "") {
    const auto result = deidentify(input_, dir_ / "out", preset, options, recipe);
    EXPECT_TRUE(result.output.has_value()) << result.error;
    if (!result.output) return std::make_unique<DcmFileFormat>();
    return load(*result.output);
  }
  TempDir dir_;
  std::filesystem::path input_;
};

TEST_F(DeidEngine, BasicProfileActions) {
  auto out = run("basic");
  // Z: zero length, present.
  EXPECT_TRUE(exists(*out, "StudyDate"));
  EXPECT_EQ(value(*out, "StudyDate"), "");
  EXPECT_EQ(value(*out, "AccessionNumber"), "");
  EXPECT_EQ(value(*out, "PatientBirthDate"), "");
  EXPECT_EQ(value(*out, "ReferringPhysicianName"), "");
  // X: removed.
  EXPECT_FALSE(exists(*out, "StudyDescription"));
  EXPECT_FALSE(exists(*out, "PatientAddress"));
  EXPECT_FALSE(exists(*out, "PatientAge"));
  EXPECT_FALSE(exists(*out, "InstitutionAddress"));
  EXPECT_FALSE(exists(*out, "OtherPatientIDsSequence"));
  // D (and X/Z/D resolved to D): a dummy, never the original.
  EXPECT_EQ(value(*out, "InstitutionName"), "ANONYMIZED");
  EXPECT_EQ(value(*out, "DeviceSerialNumber"), "ANONYMIZED");
  EXPECT_EQ(value(*out, "StationName"), "ANONYMIZED");
  // U: keyed UIDs.
  EXPECT_TRUE(is_keyed_uid(value(*out, "SOPInstanceUID")));
  EXPECT_TRUE(is_keyed_uid(value(*out, "StudyInstanceUID")));
  EXPECT_TRUE(is_keyed_uid(value(*out, "FrameOfReferenceUID")));
  EXPECT_EQ(value(*out, "SOPClassUID"), UID_CTImageStorage);  // standard UIDs are kept
  // Not listed: kept.
  EXPECT_EQ(value(*out, "Rows"), "16");
  EXPECT_EQ(value(*out, "Manufacturer"), "ACME Medical");
  // Patient identity becomes keyed pseudonyms.
  const pseudonym::Pseudonymizer p(testing::test_key());
  const auto key = pseudonym::patient_key("PID12345", "", "", "");
  EXPECT_EQ(value(*out, "PatientID"), p.patient_id(key));
  EXPECT_EQ(value(*out, "PatientName"), p.patient_name(key));
}

TEST_F(DeidEngine, FailsClosedOnPrivateOverlaysCurvesAndUnknowns) {
  auto out = run("basic");
  for (const char* gone :
       {"(0019,0010)", "(0019,1023)", "(0019,1010)", "(0031,0010)", "(0031,1001)", "(6000,0010)",
        "(6000,4000)", "(5000,0005)", "(0018,fff0)", "(0008,0000)"}) {
    EXPECT_FALSE(exists(*out, gone)) << gone;
  }
}

TEST_F(DeidEngine, RetainSafePrivateKeepsOnlySafeElementsOfTheirCreator) {
  auto out = run("basic", {"retain-safe-private"});
  EXPECT_EQ(value(*out, "(0019,0010)"), "GEMS_ACQU_01");
  EXPECT_EQ(value(*out, "(0019,1023)"), "0.5625");
  EXPECT_FALSE(exists(*out, "(0019,1010)"));
  EXPECT_FALSE(exists(*out, "(0031,0010)"));  // a creator with nothing safe left goes too
  EXPECT_FALSE(exists(*out, "(0031,1001)"));
}

TEST_F(DeidEngine, NestedSequencesAreCleanedAtEveryLevel) {
  auto out = run("basic");
  const pseudonym::Pseudonymizer p(testing::test_key());
  EXPECT_EQ(value(*out, "ReferencedImageSequence[0].ReferencedSOPInstanceUID"),
            p.uid("1.2.826.0.1.3680043.2.1125.1.2"));
  EXPECT_EQ(value(*out, "ReferencedImageSequence[0].ReferencedSOPClassUID"), UID_CTImageStorage);
  // Request Attributes Sequence is X in the Basic Profile.
  EXPECT_FALSE(exists(*out, "RequestAttributesSequence"));
}

TEST_F(DeidEngine, OptionsRetainWhatTheyName) {
  auto out = run("basic", {"retain-uids", "retain-device-identity", "retain-institution-identity",
                           "retain-patient-characteristics", "retain-long-full-dates"});
  EXPECT_EQ(value(*out, "SOPInstanceUID"), "1.2.826.0.1.3680043.2.1125.1.1");
  EXPECT_EQ(value(*out, "DeviceSerialNumber"), "SN-4455");
  EXPECT_EQ(value(*out, "StationName"), "CTSTATION7");
  // Station AE Title is C under Retain Device Identity: a keyed token, the same for the same title.
  EXPECT_TRUE(std::regex_match(value(*out, "StationAETitle"), std::regex("RG[A-Z2-9]{14}")))
      << value(*out, "StationAETitle");
  EXPECT_EQ(value(*out, "InstitutionName"), "St Elsewhere Hospital");
  EXPECT_EQ(value(*out, "PatientSex"), "M");
  EXPECT_EQ(value(*out, "PatientAge"), "090Y");  // capped
  EXPECT_EQ(value(*out, "StudyDate"), "20190315");
  EXPECT_EQ(value(*out, "LongitudinalTemporalInformationModified"), "UNMODIFIED");
}

TEST_F(DeidEngine, ModifiedDatesShiftEveryDateByThePatientsOffset) {
  auto out = run("basic", {"retain-long-modified-dates"});
  const pseudonym::Pseudonymizer p(testing::test_key());
  const auto offset = p.date_offset(pseudonym::patient_key("PID12345", "", "", ""));
  const int carry = deid::time_carry_days("231500", offset);
  EXPECT_EQ(value(*out, "StudyDate"), *deid::shift_date("20190315", offset, carry));
  EXPECT_EQ(value(*out, "StudyTime"), *deid::shift_time("231500", offset));
  EXPECT_EQ(value(*out, "SeriesDate"), *deid::shift_date("20190315", offset));
  EXPECT_EQ(value(*out, "AcquisitionDateTime"),
            *deid::shift_datetime("20190315231502.123456+0100", offset));
  EXPECT_NE(value(*out, "StudyDate"), "20190315");
  EXPECT_EQ(value(*out, "TimezoneOffsetFromUTC"), "-0500");
  EXPECT_EQ(value(*out, "LongitudinalTemporalInformationModified"), "MODIFIED");
}

TEST_F(DeidEngine, CleanDescriptorsRemovesIdentifiersFromKeptText) {
  auto out = run("basic", {"clean-descriptors"});
  const std::string description = value(*out, "StudyDescription");
  EXPECT_NE(description.find("CT HEAD"), std::string::npos) << description;
  for (const char* leak : {"John", "Doe", "PID12345", "15/03/2019"})
    EXPECT_EQ(description.find(leak), std::string::npos) << leak << " in " << description;
  EXPECT_EQ(value(*out, "SeriesDescription"), "Axial 5mm");
}

TEST(DeidUnEncoded, ADateShiftsWithItsTimeWhenBothAreStoredAsUn) {
  // Some writers store standard attributes as UN (pydicom's rtdose_rle.dcm: Study Date and
  // Study Time). The date's paired time was read as DCMTK's hex printout ("32\33\35...")
  // so a time shifted past midnight no longer moved its date.
  const pseudonym::Pseudonymizer p(testing::test_key());
  const auto offset = p.date_offset(pseudonym::patient_key("PID12345", "", "", ""));
  for (const char* time : {"000001", "235959"}) {
    TempDir dir;
    auto ct = make_ct();
    DcmDataset& d = *ct->getDataset();
    auto put_un = [&](const DcmTagKey& key, const std::string& text) {
      delete d.remove(key);
      auto* element = new DcmOtherByteOtherWord(DcmTag(key, EVR_UN));
      element->putUint8Array(reinterpret_cast<const Uint8*>(text.data()),
                             static_cast<unsigned long>(text.size()));
      ASSERT_TRUE(d.insert(element, OFTrue).good());
    };
    put_un(DCM_StudyDate, "20190315");
    put_un(DCM_StudyTime, time);
    save(*ct, dir / "in.dcm");
    const auto result = deidentify(dir / "in.dcm", dir / "out", "research");
    ASSERT_TRUE(result.output.has_value()) << result.error;
    auto out = load(*result.output);
    const int carry = deid::time_carry_days(time, offset);
    EXPECT_EQ(value(*out, "StudyDate"), *deid::shift_date("20190315", offset, carry)) << time;
    EXPECT_EQ(value(*out, "StudyTime"), *deid::shift_time(time, offset)) << time;
  }
}

TEST(DeidCharacterSets, CleanDescriptorsFindsANameInAnotherScript) {
  // A UTF-8 object whose patient is Wang^XiaoDong=王^小東 (as pydicom's chrX1.dcm) with the
  // Chinese name in its study description: the header stage must scrub by the data set's
  // Specific Character Set, or the name's words are taken for punctuation and kept.
  TempDir dir;
  auto ct = make_ct();
  DcmDataset& d = *ct->getDataset();
  d.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
  d.putAndInsertString(DCM_PatientName, "Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE6\x9D\xB1");
  d.putAndInsertString(DCM_StudyDescription,
                       "CT \xE7\x8E\x8B\xE5\xB0\x8F\xE6\x9D\xB1 \xE8\x83\xB8\xE9\x83\xA8");
  save(*ct, dir / "in.dcm");
  const auto result = deidentify(dir / "in.dcm", dir / "out", "research");
  ASSERT_TRUE(result.output.has_value()) << result.error;
  auto out = load(*result.output);
  EXPECT_EQ(value(*out, "StudyDescription"), "CT * \xE8\x83\xB8\xE9\x83\xA8");  // 胸部 stays
  EXPECT_EQ(value(*out, "SpecificCharacterSet"), "ISO_IR 192");
}

TEST_F(DeidEngine, RecipeOverridesWin) {
  auto out = run("basic", {}, "StudyDescription K\n(0008,0070) X\n");
  EXPECT_EQ(value(*out, "StudyDescription"), "CT HEAD for John Doe PID12345 on 15/03/2019");
  EXPECT_FALSE(exists(*out, "Manufacturer"));
}

TEST_F(DeidEngine, MarksTheObjectAsDeidentified) {
  auto out = run("research");
  EXPECT_EQ(value(*out, "PatientIdentityRemoved"), "YES");
  EXPECT_NE(value(*out, "DeidentificationMethod").find("Basic Profile"), std::string::npos);
  std::vector<std::string> codes;
  for (int i = 0;
       exists(*out, "DeidentificationMethodCodeSequence[" + std::to_string(i) + "].CodeValue");
       ++i) {
    const std::string item = "DeidentificationMethodCodeSequence[" + std::to_string(i) + "].";
    codes.push_back(value(*out, item + "CodeValue"));
    EXPECT_EQ(value(*out, item + "CodingSchemeDesignator"), "DCM");
    EXPECT_FALSE(value(*out, item + "CodeMeaning").empty());
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"113100", "113111", "113108", "113107", "113105"}));
  // The file meta header is rewritten: version, radguard's identity, same SOP instance.
  DcmMetaInfo& meta = *out->getMetaInfo();
  OFString implementation, instance, version_name;
  meta.findAndGetOFString(DCM_ImplementationClassUID, implementation);
  meta.findAndGetOFString(DCM_MediaStorageSOPInstanceUID, instance);
  meta.findAndGetOFString(DCM_ImplementationVersionName, version_name);
  EXPECT_EQ(std::string(implementation.c_str()), "2.25.219952426024474442509714448267538890953");
  EXPECT_EQ(std::string(version_name.c_str()), "RADGUARD_0.1.0");
  EXPECT_EQ(std::string(instance.c_str()), value(*out, "SOPInstanceUID"));
  const Uint8* version = nullptr;
  meta.findAndGetUint8Array(DCM_FileMetaInformationVersion, version);
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(version[0], 0);
  EXPECT_EQ(version[1], 1);
}

TEST_F(DeidEngine, BurnedInAnnotationFailsClosed) {
  auto ct = make_ct();
  ct->getDataset()->putAndInsertString(DCM_BurnedInAnnotation, "YES");
  const auto path = dir_ / "burned.dcm";
  save(*ct, path);
  const auto result = deidentify(path, dir_ / "out2", "basic");
  EXPECT_FALSE(result.output.has_value());
  EXPECT_NE(result.error.find("Burned In Annotation"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out2") && !std::filesystem::is_empty(dir_ / "out2"));
}

TEST(DeidStructuredContent, ContentSequenceTextIsDummiedUnderBasicAndCleanedUnderTheOption) {
  TempDir dir;
  auto sr = make_ct();
  DcmDataset& d = *sr->getDataset();
  d.putAndInsertString(DCM_SOPClassUID, UID_BasicTextSRStorage);
  DcmItem* item = nullptr;
  d.findOrCreateSequenceItem(DCM_ContentSequence, item, 0);
  item->putAndInsertString(DCM_RelationshipType, "CONTAINS");
  item->putAndInsertString(DCM_ValueType, "TEXT");
  DcmItem* concept_name = nullptr;
  item->findOrCreateSequenceItem(DCM_ConceptNameCodeSequence, concept_name, 0);
  concept_name->putAndInsertString(DCM_CodeValue, "121071");
  concept_name->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
  concept_name->putAndInsertString(DCM_CodeMeaning, "Finding");
  item->putAndInsertString(DCM_TextValue, "Small nodule, reviewed with John Doe on 2019-03-15");
  const auto input = dir / "sr.dcm";
  save(*sr, input);

  auto basic = deidentify(input, dir / "basic", "basic");
  ASSERT_TRUE(basic.output) << basic.error;
  auto out = load(*basic.output);
  EXPECT_EQ(value(*out, "ContentSequence[0].TextValue"), "ANONYMIZED");
  EXPECT_EQ(value(*out, "ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning"), "Finding");

  // Finding (DCM 121071) is X/D in Table E.3.4-1, C under Clean Descriptors.
  auto dummied = deidentify(input, dir / "structured", "basic", {"clean-structured-content"});
  ASSERT_TRUE(dummied.output) << dummied.error;
  EXPECT_EQ(value(*load(*dummied.output), "ContentSequence[0].TextValue"), "ANONYMIZED");
  auto cleaned =
      deidentify(input, dir / "clean", "basic", {"clean-structured-content", "clean-descriptors"});
  ASSERT_TRUE(cleaned.output) << cleaned.error;
  auto out2 = load(*cleaned.output);
  const std::string text = value(*out2, "ContentSequence[0].TextValue");
  EXPECT_NE(text.find("Small nodule"), std::string::npos) << text;
  EXPECT_EQ(text.find("Doe"), std::string::npos) << text;
  EXPECT_EQ(text.find("2019"), std::string::npos) << text;
}

TEST(DeidGraphics, AnnotationTextIsCleaned) {
  TempDir dir;
  auto ct = make_ct();
  DcmItem* annotation = nullptr;
  ct->getDataset()->findOrCreateSequenceItem(DCM_GraphicAnnotationSequence, annotation, 0);
  annotation->putAndInsertString(DCM_GraphicLayer, "LAYER1");
  DcmItem* text = nullptr;
  annotation->findOrCreateSequenceItem(DCM_TextObjectSequence, text, 0);
  text->putAndInsertString(DCM_UnformattedTextValue, "Lesion - John Doe 15/03/2019");
  text->putAndInsertString(DCM_BoundingBoxAnnotationUnits, "PIXEL");
  const auto input = dir / "gsps.dcm";
  save(*ct, input);
  auto result = deidentify(input, dir / "out", "basic", {"clean-graphics"});
  ASSERT_TRUE(result.output) << result.error;
  auto out = load(*result.output);
  const std::string cleaned =
      value(*out, "GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue");
  EXPECT_NE(cleaned.find("Lesion"), std::string::npos) << cleaned;
  EXPECT_EQ(cleaned.find("Doe"), std::string::npos) << cleaned;
  EXPECT_EQ(
      value(*out, "GraphicAnnotationSequence[0].TextObjectSequence[0].BoundingBoxAnnotationUnits"),
      "PIXEL");
}

TEST(DeidConsistency, ReferencesBetweenFilesStayConsistent) {
  TempDir dir;
  auto a = make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.1");
  auto b = make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.2");
  DcmItem* ref = nullptr;
  b->getDataset()->findOrCreateSequenceItem(DCM_SourceImageSequence, ref, 0);
  ref->putAndInsertString(DCM_ReferencedSOPClassUID, UID_CTImageStorage);
  ref->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.826.0.1.3680043.2.1125.1.1");
  save(*a, dir / "a.dcm");
  save(*b, dir / "b.dcm");
  auto ra = deidentify(dir / "a.dcm", dir / "out", "research");
  auto rb = deidentify(dir / "b.dcm", dir / "out", "research");
  ASSERT_TRUE(ra.output && rb.output);
  auto oa = load(*ra.output);
  auto ob = load(*rb.output);
  EXPECT_EQ(value(*ob, "SourceImageSequence[0].ReferencedSOPInstanceUID"),
            value(*oa, "SOPInstanceUID"));
  EXPECT_EQ(value(*oa, "FrameOfReferenceUID"), value(*ob, "FrameOfReferenceUID"));
  EXPECT_EQ(value(*oa, "StudyInstanceUID"), value(*ob, "StudyInstanceUID"));
  EXPECT_EQ(value(*oa, "PatientID"), value(*ob, "PatientID"));
  EXPECT_EQ(value(*oa, "StudyDate"), value(*ob, "StudyDate"));
  // Same study, same series: both land in one folder named by pseudonymous UIDs.
  EXPECT_EQ(ra.output->parent_path(), rb.output->parent_path());
  EXPECT_EQ(ra.output->filename().string(), value(*oa, "SOPInstanceUID") + ".dcm");
}

}  // namespace
}  // namespace radguard

namespace radguard {
namespace {

TEST(DeidUnknownVr, TextEncodedAsUnIsCleanedLikeItsDictionaryVr) {
  TempDir dir;
  auto ct = make_ct();
  DcmDataset& d = *ct->getDataset();
  std::unique_ptr<DcmElement> old(d.remove(DCM_SeriesDate));
  auto un_date = std::make_unique<DcmOtherByteOtherWord>(DcmTag(DCM_SeriesDate, EVR_UN));
  un_date->putUint8Array(reinterpret_cast<const Uint8*>("20190315"), 8);
  d.insert(un_date.release());
  auto un_name = std::make_unique<DcmOtherByteOtherWord>(DcmTag(DCM_OperatorsName, EVR_UN));
  un_name->putUint8Array(reinterpret_cast<const Uint8*>("NURSE^JANE"), 10);
  d.insert(un_name.release());
  save(*ct, dir / "in.dcm");
  const auto result =
      deidentify(dir / "in.dcm", dir / "out", "basic", {"retain-long-modified-dates"});
  ASSERT_TRUE(result.output) << result.error;
  auto out = load(*result.output);
  const pseudonym::Pseudonymizer p(testing::test_key());
  const auto offset = p.date_offset(pseudonym::patient_key("PID12345", "", "", ""));
  EXPECT_EQ(value(*out, "SeriesDate"), *deid::shift_date("20190315", offset));
  const std::string operators = value(*out, "OperatorsName");
  EXPECT_EQ(operators.find("JANE"), std::string::npos) << operators;
}

}  // namespace
}  // namespace radguard

namespace radguard {
namespace {

TEST(DeidUnknownVr, BurnedInAnnotationStoredAsUnStillFailsClosed) {
  TempDir dir;
  auto ct = make_ct();
  auto burned = std::make_unique<DcmOtherByteOtherWord>(DcmTag(DCM_BurnedInAnnotation, EVR_UN));
  burned->putUint8Array(reinterpret_cast<const Uint8*>("YES "), 4);
  ct->getDataset()->insert(burned.release());
  save(*ct, dir / "in.dcm");
  const auto result = deidentify(dir / "in.dcm", dir / "out", "basic");
  EXPECT_FALSE(result.output.has_value());
  EXPECT_NE(result.error.find("Burned In Annotation"), std::string::npos) << result.error;
}

TEST(DeidUnknownVr, SequenceStoredAsOpaqueUnIsRemoved) {
  TempDir dir;
  auto ct = make_ct();
  // A defined-length UN blob where the dictionary says SQ: its items cannot be walked.
  auto opaque =
      std::make_unique<DcmOtherByteOtherWord>(DcmTag(DCM_ReferencedStudySequence, EVR_UN));
  const Uint8 bytes[8] = {0xFE, 0xFF, 0x00, 0xE0, 0x00, 0x00, 0x00, 0x00};
  opaque->putUint8Array(bytes, 8);
  ct->getDataset()->insert(opaque.release());
  save(*ct, dir / "in.dcm");
  const auto result =
      deidentify(dir / "in.dcm", dir / "out", "basic", {}, "ReferencedStudySequence K\n");
  ASSERT_TRUE(result.output) << result.error;
  EXPECT_FALSE(exists(*load(*result.output), "(0008,1110)"));
}

TEST(DeidOutputNames, UidsThatAreNotUidsNeverBecomePaths) {
  deid::InstanceIdentity identity{"1.2.3", "../../etc", "1.2.3.4", "RGX"};
  EXPECT_FALSE(deid::output_name(identity).has_value());
  identity.series_uid = "1.2.3.5";
  EXPECT_TRUE(deid::output_name(identity).has_value());
}

}  // namespace
}  // namespace radguard
