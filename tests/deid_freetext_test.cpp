// Free text against a determined answer key (issue 20): titles that are modality codes,
// names glued, split, accented, in Greek, Cyrillic and Chinese; identifiers in longer codes
// and with check digits; identifying values stored as UN; SR content (ages, names, codes);
// input paths in reports.
#include <gtest/gtest.h>

#include <fstream>

#include "deid/text_scrubber.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using deid::PhiValues;
using deid::scrub_text;
using deid::TextEncoding;
using testing::deidentify;
using testing::load;
using testing::make_ct;
using testing::save;
using testing::TempDir;
using testing::value;

PhiValues doe_jane() {
  PhiValues phi;
  phi.add_person_name("DOE^JANE^MARIE");
  phi.add_identifier("MRN4471902");
  return phi;
}

// --- Titles are titles -------------------------------------------------------------------

TEST(FreeTextTitles, ModalityCodesAreNotTitlesAndRealTitlesTakeTheNameOnly) {
  const PhiValues none;
  EXPECT_EQ(scrub_text("MR FEMUR CONTRAST Dr. X", none), "MR FEMUR CONTRAST Dr. *");
  EXPECT_EQ(scrub_text("MR FEMUR CONTRAST Dr. Xavier Quint", none), "MR FEMUR CONTRAST Dr. *");
  for (const char* kept : {"MR BRAIN W/O CONTRAST", "MR KNEE LEFT", "MS PROTOCOL T2 FLAIR",
                           "DR CHEST PA AND LAT", "MR ANGIO CIRCLE OF WILLIS", "MR L SPINE",
                           "MRS BRAIN SINGLE VOXEL", "MR ENTEROGRAPHY", "SR CHEST"}) {
    EXPECT_EQ(scrub_text(kept, none), kept);
  }
  EXPECT_EQ(scrub_text("referred by MR SMITHERS", none), "referred by MR *");
  EXPECT_EQ(scrub_text("Mrs Ottoline Quayle reviewed", none), "Mrs * reviewed");
  EXPECT_EQ(scrub_text("read by Prof. Okonkwo, CT HEAD", none), "read by Prof. *, CT HEAD");
  EXPECT_EQ(scrub_text("Dr. Hallstr\xC3\xB6m FEMUR", none, TextEncoding::utf8), "Dr. * FEMUR");
}

// --- Names as people write them -----------------------------------------------------------

TEST(FreeTextNames, GluedSplitInitialsAndAnyCase) {
  const PhiValues phi = doe_jane();
  for (const char* text :
       {"DOEJANE", "JANEDOE", "doejane", "JDOE", "DOEJ", "JMDOE", "Doe-Jane", "doe_jane",
        "J. Doe", "J.M. DOE", "Doe, J.", "jane.doe", "DOE^JANE", "Doe's", "DOEJANEMARIE"}) {
    const std::string out = scrub_text(std::string("T1 SAG ") + text + " FU", phi);
    EXPECT_EQ(out.find_first_of("JjDd"), std::string::npos) << text << " -> " << out;
    EXPECT_TRUE(out.starts_with("T1 SAG ")) << out;
    EXPECT_TRUE(out.ends_with(" FU")) << text << " -> " << out;
  }
  // Words that merely contain a short name part stay.
  EXPECT_EQ(scrub_text("ODOEMA JANET", phi), "ODOEMA JANET");
}

TEST(FreeTextNames, Latin1AccentsInEitherDirection) {
  const auto latin1 = deid::encoding_for("ISO_IR 100");
  PhiValues phi;
  phi.add_person_name("M\xDCLLER^JOS\xC9", latin1);  // MÜLLER^JOSÉ in Latin-1
  for (const std::string& text :
       {std::string("MULLER JOSE"), std::string("m\xFCller jos\xE9"),
        std::string("M\xDCLLER"), std::string("Jos\xE9 M\xFCller")}) {
    const std::string out = scrub_text("CT " + text + " HEAD", phi, latin1);
    EXPECT_EQ(out, "CT * HEAD") << text;
  }
  // The same name in UTF-8 text (an SR item with its own character set).
  PhiValues utf8_phi;
  utf8_phi.add_person_name("M\xC3\x9CLLER^JOS\xC3\x89", TextEncoding::utf8);
  EXPECT_EQ(scrub_text("seen: jose muller", utf8_phi, TextEncoding::utf8), "seen: *");
  EXPECT_EQ(scrub_text("seen: Jos\x65\xCC\x81 M\xC3\xBCller", utf8_phi, TextEncoding::utf8),
            "seen: *");  // decomposed é (e + U+0301)
}

TEST(FreeTextNames, GreekWithOrWithoutTonosAnyCaseAndTransliterated) {
  // ΠΑΠΑΔΟΠΟΥΛΟΣ^ΓΙΏΡΓΟΣ in UTF-8
  PhiValues phi;
  phi.add_person_name(
      "\xCE\xA0\xCE\x91\xCE\xA0\xCE\x91\xCE\x94\xCE\x9F\xCE\xA0\xCE\x9F\xCE\xA5\xCE\x9B\xCE\x9F"
      "\xCE\xA3^\xCE\x93\xCE\x99\xCE\x8F\xCE\xA1\xCE\x93\xCE\x9F\xCE\xA3",
      TextEncoding::utf8);
  const std::string lower_tonos =  // παπαδόπουλος γιώργος
      "\xCF\x80\xCE\xB1\xCF\x80\xCE\xB1\xCE\xB4\xCF\x8C\xCF\x80\xCE\xBF\xCF\x85\xCE\xBB\xCE\xBF"
      "\xCF\x82 \xCE\xB3\xCE\xB9\xCF\x8E\xCF\x81\xCE\xB3\xCE\xBF\xCF\x82";
  const std::string upper_plain =  // ΓΙΩΡΓΟΣ
      "\xCE\x93\xCE\x99\xCE\xA9\xCE\xA1\xCE\x93\xCE\x9F\xCE\xA3";
  EXPECT_EQ(scrub_text("CT " + lower_tonos + " OK", phi, TextEncoding::utf8), "CT * OK");
  EXPECT_EQ(scrub_text("CT " + upper_plain, phi, TextEncoding::utf8), "CT *");
  EXPECT_EQ(scrub_text("CT Papadopoulos Giorgos", phi, TextEncoding::utf8), "CT *");
  // The same in ISO 8859-7 (ISO_IR 126): παπαδόπουλος in lower case with tonos.
  const auto greek = deid::encoding_for("ISO_IR 126");
  PhiValues greek_phi;
  greek_phi.add_person_name("\xD0\xC1\xD0\xC1\xC4\xCF\xD0\xCF\xD5\xCB\xCF\xD3", greek);
  EXPECT_EQ(scrub_text("MR \xF0\xE1\xF0\xE1\xE4\xFC\xF0\xEF\xF5\xEB\xEF\xF2 T2", greek_phi, greek),
            "MR * T2");
}

TEST(FreeTextNames, CyrillicAnyCaseAndTransliterated) {
  const auto cyrillic = deid::encoding_for("ISO_IR 144");
  PhiValues phi;
  phi.add_person_name("\xB8\xB2\xB0\xBD\xBE\xB2^\xBF\xA1\xC2\xC0", cyrillic);  // ИВАНОВ^ПЁТР
  // иванов петр (lower case, е for ё)
  EXPECT_EQ(scrub_text("CT \xD8\xD2\xD0\xDD\xDE\xD2 \xDF\xD5\xE2\xE0 OK", phi, cyrillic),
            "CT * OK");
  EXPECT_EQ(scrub_text("CT Ivanov Petr OK", phi, cyrillic), "CT * OK");
}

TEST(FreeTextNames, ChineseWithSpacesBetweenCharacters) {
  PhiValues phi;
  phi.add_person_name("Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE6\x9D\xB1", TextEncoding::utf8);
  // "王 小 東 复查" and with ideographic spaces
  EXPECT_EQ(scrub_text("\xE7\x8E\x8B \xE5\xB0\x8F \xE6\x9D\xB1 \xE5\xA4\x8D\xE6\x9F\xA5", phi,
                       TextEncoding::utf8),
            "* \xE5\xA4\x8D\xE6\x9F\xA5");
  EXPECT_EQ(scrub_text("CT \xE5\xB0\x8F\xE3\x80\x80\xE6\x9D\xB1", phi, TextEncoding::utf8),
            "CT *");
  EXPECT_EQ(scrub_text("CT XIAODONG WANG", phi, TextEncoding::utf8), "CT *");
  EXPECT_EQ(scrub_text("CT WANGXIAODONG", phi, TextEncoding::utf8), "CT *");
}

TEST(FreeTextNames, TextWordsOfAddressesInstitutionsAndIssuers) {
  PhiValues phi;
  phi.add_text("14 Larkspur Crescent, Eastbury");
  phi.add_text("NORTHWIND CLINIC");
  const std::string out =
      scrub_text("pt lives on Larkspur crescent near eastbury; prior study at Northwind", phi);
  for (const char* leak : {"Larkspur", "crescent", "eastbury", "Northwind"})
    EXPECT_EQ(out.find(leak), std::string::npos) << leak << " in " << out;
  EXPECT_NE(out.find("pt lives on"), std::string::npos) << out;
}

TEST(FreeTextNames, TranscriptionsAndNamesWrittenInPieces) {
  const auto latin1 = deid::encoding_for("ISO_IR 100");
  PhiValues phi;
  phi.add_person_name("M\xDCLLER^S\xD8REN", latin1);  // MÜLLER^SØREN
  phi.add_person_name("Wang^XiaoDong");
  EXPECT_EQ(scrub_text("CT Mueller Soeren OK", phi, latin1), "CT * OK");
  EXPECT_EQ(scrub_text("CT MULLER SOREN OK", phi, latin1), "CT * OK");
  EXPECT_EQ(scrub_text("CT Xiao Dong Wang OK", phi), "CT * OK");
  EXPECT_EQ(scrub_text("CT Xiao-Dong OK", phi), "CT * OK");
  EXPECT_EQ(scrub_text("CT XIAO OK", phi), "CT XIAO OK");  // one piece alone is not the name
}

TEST(FreeTextGeneric, AgesOverEightyNineInTextGo) {
  const PhiValues none;
  for (const char* text : {"93 year old female", "91-year-old", "aged 97,", "102 yrs", "095Y",
                           "97 y/o"}) {
    const std::string out = scrub_text(std::string("CT ") + text, none);
    EXPECT_EQ(out.find_first_of("0123456789"), std::string::npos) << text << " -> " << out;
  }
  EXPECT_EQ(scrub_text("CT 45 year old female", none), "CT 45 year old female");
}

TEST(FreeTextNames, ClinicalWordsSurviveShortNamePartsAndInstitutionWords) {
  PhiValues phi;
  phi.add_person_name("RT");        // an operator written as initials
  phi.add_person_name("AL^IX^XU");  // short parts whose letters spell clinical words
  phi.add_person_name("LI^NA");
  phi.add_text("BRAIN RESEARCH INSTITUTE OF EASTBURY");
  EXPECT_EQ(scrub_text("RT SHOULDER AXIAL T1 BRAIN", phi), "RT SHOULDER AXIAL T1 BRAIN");
  EXPECT_EQ(scrub_text("CT LINA NALI", phi), "CT *");   // two short parts glued
  EXPECT_EQ(scrub_text("seen at eastbury", phi), "seen at *");
}

TEST(FreeTextNames, ThePatientsInitialsAloneGoUnlessTheySpellClinicalWords) {
  PhiValues phi;
  phi.add_patient_name("DOE^JANE^MARIE");
  for (const char* text : {"pt JD stable", "pt J.D. stable", "pt J. M. D. stable", "pt DJM stable",
                           "pt jd stable"}) {
    EXPECT_EQ(scrub_text(text, phi), "pt * stable") << text;
  }
  PhiValues martin;
  martin.add_patient_name("MARTIN^RICHARD");  // R.M. / M.R.: "MR" is a modality
  EXPECT_EQ(scrub_text("MR BRAIN", martin), "MR BRAIN");
  EXPECT_EQ(scrub_text("pt RM", martin), "pt *");
  PhiValues ma;
  ma.add_patient_name("MA^LI");  // the patient's own parts count even if they are clinical
  EXPECT_EQ(scrub_text("CT MA LI", ma), "CT *");
  const PhiValues none;
  EXPECT_EQ(scrub_text("SSN 123-45-6789", none), "SSN *");
}

// --- Identifiers --------------------------------------------------------------------------

TEST(FreeTextIdentifiers, InsideCodesWithCheckDigitsSeparatorsAndLeadingZeros) {
  PhiValues phi;
  phi.add_identifier("0044719");
  phi.add_identifier("AB-7731");
  for (const char* text : {"MRN0044719", "44719", "0044719-3", "00 447 19", "mrn:0044719/K",
                           "ab7731", "AB 7731", "ref AB-7731."}) {
    const std::string out = scrub_text(std::string("CT ") + text + " HEAD", phi);
    EXPECT_EQ(out.find_first_of("0123456789"), std::string::npos) << text << " -> " << out;
    EXPECT_TRUE(out.starts_with("CT ") && out.ends_with("HEAD")) << out;
  }
}

// --- ISO 2022 decoded, not dropped whole ---------------------------------------------------

TEST(FreeTextIso2022, JapaneseNameRemovedOtherWordsKeptInTheSameEncoding) {
  const auto enc = deid::encoding_for("\\ISO 2022 IR 87");
  PhiValues phi;
  phi.add_person_name("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B", enc);  // 山田^太郎
  // "山田 CT 頭部": the name goes, CT and 頭部 (head) stay, escapes still balanced.
  EXPECT_EQ(scrub_text("\x1b$B;3ED\x1b(B CT \x1b$BF,It\x1b(B", phi, enc),
            "* CT \x1b$BF,It\x1b(B");
  // A name in the middle of Japanese text: ASCII "*" needs G0 back to ASCII, then JIS again.
  EXPECT_EQ(scrub_text("\x1b$BF,It;3EDF,It\x1b(B", phi, enc),
            "\x1b$BF,It\x1b(B*\x1b$BF,It\x1b(B");
  // Korean (ISO 2022 IR 149) text with no name in it is kept as it was.
  const std::string korean = "\x1b$)C\xB1\xE8\xC8\xF1\xC1\xDF\x1b(B";
  EXPECT_EQ(scrub_text(korean, phi, deid::encoding_for("\\ISO 2022 IR 149")), korean);
  // A Korean name in Korean text goes.
  PhiValues kim;
  kim.add_person_name("Kim^Hee=\x1b$)C\xB1\xE8^\xC8\xF1", deid::encoding_for("\\ISO 2022 IR 149"));
  EXPECT_EQ(scrub_text(korean, kim, deid::encoding_for("\\ISO 2022 IR 149")),
            "*\x1b$)C\xC1\xDF");
}

// --- Whole objects -------------------------------------------------------------------------

// The bytes of one item of implicit VR little endian holding string elements.
std::string implicit_item(const std::vector<std::pair<DcmTagKey, std::string>>& elements) {
  std::string body;
  auto u16 = [&](std::string& s, unsigned v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>((v >> 8) & 0xFF);
  };
  auto u32 = [&](std::string& s, std::uint32_t v) {
    u16(s, v & 0xFFFF);
    u16(s, v >> 16);
  };
  for (const auto& [key, text] : elements) {
    std::string v = text;
    if (v.size() % 2) v += ' ';
    u16(body, key.getGroup());
    u16(body, key.getElement());
    u32(body, static_cast<std::uint32_t>(v.size()));
    body += v;
  }
  std::string item;
  u16(item, 0xFFFE);
  u16(item, 0xE000);
  u32(item, static_cast<std::uint32_t>(body.size()));
  return item + body;
}

TEST(FreeTextObjects, OtherPatientIdsStoredAsUnAreKnownToTheScrubber) {
  TempDir dir;
  auto ct = make_ct();
  DcmDataset& d = *ct->getDataset();
  const std::string bytes = implicit_item(
      {{DCM_PatientID, "ZX-5518230"}, {DCM_IssuerOfPatientID, "KESTREL VALLEY HEALTH"}});
  auto* un = new DcmOtherByteOtherWord(DcmTag(DCM_OtherPatientIDsSequence, EVR_UN));
  un->putUint8Array(reinterpret_cast<const Uint8*>(bytes.data()),
                    static_cast<unsigned long>(bytes.size()));
  ASSERT_TRUE(d.insert(un, OFTrue).good());
  d.putAndInsertString(DCM_IssuerOfPatientID, "Harbourside Infirmary");
  d.putAndInsertString(DCM_AdditionalPatientHistory,
                       "old MRN ZX5518230 from Kestrel Valley; seen at harbourside clinic");
  d.putAndInsertString(DCM_ImageComments, "transfer from KESTREL, id 5518230, Brannagh");
  // A name some vendor keeps in a private element of VR PN is a name too.
  d.putAndInsertString(DcmTag(0x0029, 0x0010, EVR_LO), "ACME PRIVATE");
  d.putAndInsertString(DcmTag(0x0029, 0x1001, EVR_PN), "BRANNAGH^EILIS");
  save(*ct, dir / "in.dcm");
  const auto result = deidentify(dir / "in.dcm", dir / "out", "research");
  ASSERT_TRUE(result.output) << result.error;
  auto out = load(*result.output);
  const std::string history = value(*out, "AdditionalPatientHistory");
  const std::string comments = value(*out, "ImageComments");
  for (const char* leak : {"5518230", "Kestrel", "KESTREL", "harbourside", "Brannagh"}) {
    EXPECT_EQ(history.find(leak), std::string::npos) << history;
    EXPECT_EQ(comments.find(leak), std::string::npos) << comments;
  }
  EXPECT_NE(history.find("old MRN"), std::string::npos) << history;
  EXPECT_FALSE(testing::exists(*out, "OtherPatientIDsSequence"));
}

// An SR content item: concept (code, scheme, meaning) and value type.
DcmItem* content_item(DcmItem& parent, long index, const char* type, const char* code,
                      const char* scheme, const char* meaning) {
  DcmItem* item = nullptr;
  parent.findOrCreateSequenceItem(DCM_ContentSequence, item, index);
  item->putAndInsertString(DCM_RelationshipType, "CONTAINS");
  item->putAndInsertString(DCM_ValueType, type);
  DcmItem* concept_name = nullptr;
  item->findOrCreateSequenceItem(DCM_ConceptNameCodeSequence, concept_name, 0);
  concept_name->putAndInsertString(DCM_CodeValue, code);
  concept_name->putAndInsertString(DCM_CodingSchemeDesignator, scheme);
  concept_name->putAndInsertString(DCM_CodeMeaning, meaning);
  return item;
}

TEST(FreeTextObjects, StructuredReportAgesNamesCodesAndTextAtDepth) {
  TempDir dir;
  auto sr = make_ct();
  DcmDataset& d = *sr->getDataset();
  d.putAndInsertString(DCM_PatientName, "OKAFOR^ADAEZE");
  d.putAndInsertString(DCM_ValueType, "CONTAINER");
  DcmItem* container = content_item(d, 0, "CONTAINER", "121070", "DCM", "Findings");
  DcmItem* age = content_item(*container, 0, "NUM", "121033", "DCM", "Subject Age");
  DcmItem* measured = nullptr;
  age->findOrCreateSequenceItem(DCM_MeasuredValueSequence, measured, 0);
  measured->putAndInsertString(DCM_NumericValue, "97");
  DcmItem* unit = nullptr;
  measured->findOrCreateSequenceItem(DCM_MeasurementUnitsCodeSequence, unit, 0);
  unit->putAndInsertString(DCM_CodeValue, "a");
  unit->putAndInsertString(DCM_CodingSchemeDesignator, "UCUM");
  unit->putAndInsertString(DCM_CodeMeaning, "year");
  DcmItem* young = content_item(*container, 1, "NUM", "121033", "DCM", "Subject Age");
  young->findOrCreateSequenceItem(DCM_MeasuredValueSequence, measured, 0);
  measured->putAndInsertString(DCM_NumericValue, "45");
  DcmItem* deep = content_item(*container, 2, "CONTAINER", "121071", "DCM", "Finding");
  DcmItem* text = content_item(*deep, 0, "TEXT", "121071", "DCM", "Finding");
  text->putAndInsertString(DCM_TextValue, "Nodule stable; OKAFORADAEZE informed by Dr. Quist");
  DcmItem* code = content_item(*deep, 1, "CODE", "121071", "DCM", "Finding");
  DcmItem* concept_code = nullptr;
  code->findOrCreateSequenceItem(DCM_ConceptCodeSequence, concept_code, 0);
  concept_code->putAndInsertString(DCM_CodeValue, "99LOCAL");
  concept_code->putAndInsertString(DCM_CodingSchemeDesignator, "99RG");
  concept_code->putAndInsertString(DCM_CodeMeaning, "Lesion per Adaeze Okafor");
  DcmItem* person = content_item(*deep, 2, "PNAME", "121008", "DCM", "Person Observer Name");
  person->putAndInsertString(DCM_PersonName, "QUIST^HELGA");
  save(*sr, dir / "in.dcm");
  const auto result =
      deidentify(dir / "in.dcm", dir / "out", "research", {"clean-structured-content"});
  ASSERT_TRUE(result.output) << result.error;
  auto out = load(*result.output);
  const std::string base = "ContentSequence[0].ContentSequence";
  EXPECT_EQ(value(*out, base + "[0].MeasuredValueSequence[0].NumericValue"), "90");
  EXPECT_EQ(value(*out, base + "[1].MeasuredValueSequence[0].NumericValue"), "45");
  const std::string finding = value(*out, base + "[2].ContentSequence[0].TextValue");
  EXPECT_EQ(finding.find("OKAFOR"), std::string::npos) << finding;
  EXPECT_EQ(finding.find("Quist"), std::string::npos) << finding;
  EXPECT_NE(finding.find("Nodule stable"), std::string::npos) << finding;
  const std::string meaning =
      value(*out, base + "[2].ContentSequence[1].ConceptCodeSequence[0].CodeMeaning");
  EXPECT_EQ(meaning.find("Okafor"), std::string::npos) << meaning;
  EXPECT_EQ(meaning.find("Adaeze"), std::string::npos) << meaning;
  EXPECT_NE(meaning.find("Lesion"), std::string::npos) << meaning;
  const std::string observer = value(*out, base + "[2].ContentSequence[2].PersonName");
  EXPECT_EQ(observer.find("QUIST"), std::string::npos) << observer;
}

// --- Paths in reports ---------------------------------------------------------------------

TEST(FreeTextReports, InputPathsAreRelativeAndMaskedUnlessFullPathsAreAsked) {
  TempDir dir;
  const fs::path root = dir / "export";
  const fs::path folder = root / "DOE^JANE_19510304_MRN4471902" / "IMAGES";
  auto ct = make_ct("MRN4471902");
  ct->getDataset()->putAndInsertString(DCM_PatientName, "DOE^JANE");
  ct->getDataset()->putAndInsertString(DCM_PatientBirthDate, "19510304");
  ct->getDataset()->putAndInsertString(DCM_AccessionNumber, "ACC99120");
  save(*ct, folder / "IM0001");
  save(*ct, folder / "ACC99120_copy");  // same SOP Instance UID: a duplicate
  {
    std::ofstream truncated(folder / "IM0002", std::ios::binary);
    std::ifstream whole(folder / "IM0001", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(whole)), {});
    truncated << bytes.substr(0, bytes.size() / 2);
  }
  deid::DeidRunOptions options;
  options.inputs = {root};
  options.output = dir / "out";
  options.progress = batch::ProgressDisplay::never;
  auto policy = deid::Policy::create("research", {}, std::nullopt);
  ASSERT_TRUE(policy);
  const deid::HeaderStage stage(*policy, pseudonym::Pseudonymizer(testing::test_key()),
                                deid::BurnedInPolicy::reject);
  auto report = deid::run_deid(options, stage);
  ASSERT_TRUE(report);
  ASSERT_EQ(report->count(deid::FileStatus::failed), 1u);
  ASSERT_EQ(report->count(deid::FileStatus::duplicate), 1u);
  const std::string json = deid::report_json(*report, stage, options).value();
  const std::string text = deid::report_text(*report, options).value();
  for (const std::string& shown : {json, text}) {
    for (const char* leak : {"DOE", "JANE", "19510304", "4471902", "ACC99120"})
      EXPECT_EQ(shown.find(leak), std::string::npos) << leak << " in " << shown;
    EXPECT_NE(shown.find("<patient>/IMAGES/IM0002"), std::string::npos) << shown;
    EXPECT_NE(shown.find("<patient>/IMAGES/<patient>"), std::string::npos) << shown;
  }
  // A reason quoting another input's path (a series refused for one unreadable file).
  deid::FileOutcome quoting;
  quoting.input = folder / "IM0003";
  quoting.status = deid::FileStatus::failed;
  quoting.reason = "series refused: " + (folder / "IM0002").string() + " cannot be read";
  ASSERT_TRUE(report->problems.add(quoting));
  const std::string quoted = deid::report_text(*report, options).value();
  EXPECT_NE(quoted.find("series refused: <patient>/IMAGES/IM0002 cannot be read"),
            std::string::npos)
      << quoted;
  EXPECT_EQ(quoted.find("DOE"), std::string::npos) << quoted;
  // A path quoted before a colon, or after a label in the same word.
  deid::FileOutcome colon = quoting;
  colon.input = folder / "IM0004";
  colon.reason = (folder / "IM0002").string() + ": holds more than one volume; copy=" +
                 (folder / "IM0001").string();
  ASSERT_TRUE(report->problems.add(colon));
  const std::string labelled = deid::report_text(*report, options).value();
  EXPECT_NE(labelled.find("<patient>/IMAGES/IM0002: holds more than one volume; "
                          "copy=<patient>/IMAGES/IM0001"),
            std::string::npos)
      << labelled;
  EXPECT_EQ(labelled.find(dir.path().string()), std::string::npos) << labelled;
  options.report_paths = deid::ReportPaths::full;
  const std::string full = deid::report_json(*report, stage, options).value();
  EXPECT_NE(full.find((folder / "IM0002").string()), std::string::npos) << full;
}

}  // namespace
}  // namespace radguard
