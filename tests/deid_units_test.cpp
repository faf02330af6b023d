// Unit tests of the pure parts of de-identification: pseudonyms, date arithmetic, free-text
// scrubbing, policy resolution and the generated standard tables.
#include <gtest/gtest.h>

#include <regex>

#include <fcntl.h>

#include "core/unique_fd.hpp"
#include "deid/dates.hpp"
#include "deid/path_list.hpp"
#include "deid/policy.hpp"
#include "deid/text_scrubber.hpp"
#include "pseudonym/pseudonymizer.hpp"
#include "standard/tables.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

using deid::Action;
using standard::ActionCode;
using standard::ProfileOption;

TEST(Pseudonymizer, UidsAreValidRepeatableAndKeyed) {
  const pseudonym::Pseudonymizer a(testing::test_key());
  const auto other_key = crypto::SecretKey::generate();
  ASSERT_TRUE(other_key);
  const pseudonym::Pseudonymizer b(*other_key);
  const std::string uid = a.uid("1.2.3.4.5");
  EXPECT_EQ(uid, a.uid("1.2.3.4.5"));
  EXPECT_EQ(uid, a.uid("1.2.3.4.5 "));  // trailing padding is not part of a UID
  EXPECT_NE(uid, a.uid("1.2.3.4.6"));
  EXPECT_NE(uid, b.uid("1.2.3.4.5"));
  EXPECT_LE(uid.size(), 64U);
  EXPECT_TRUE(std::regex_match(uid, std::regex("2\\.25\\.[1-9][0-9]*"))) << uid;
}

TEST(Pseudonymizer, PatientPseudonymsAndOffsetsFollowThePatient) {
  const pseudonym::Pseudonymizer p(testing::test_key());
  const auto key = pseudonym::patient_key("PID1", "HOSP", "DOE^JOHN", "19300102");
  EXPECT_EQ(key, pseudonym::patient_key("PID1 ", "HOSP", "OTHER^NAME", ""));
  EXPECT_NE(key, pseudonym::patient_key("PID1", "OTHERHOSP", "DOE^JOHN", ""));
  EXPECT_EQ(p.patient_id(key), p.patient_id(key));
  EXPECT_LE(p.patient_id(key).size(), 64U);
  const auto offset = p.date_offset(key);
  EXPECT_LT(offset.days, 0);
  EXPECT_EQ(offset.days % 7, 0);  // weekdays are kept
  EXPECT_GE(offset.seconds, 0);
  EXPECT_LT(offset.seconds, 86400);
}

TEST(Dates, ShiftKeepsPrecisionZoneAndIntervals) {
  const pseudonym::DateOffset offset{-14, 3600};
  EXPECT_EQ(deid::shift_date("20190315", offset), "20190301");
  EXPECT_EQ(deid::shift_date("20190315\\20190316", offset), "20190301\\20190302");
  EXPECT_EQ(deid::shift_date("20190101-20190131", offset), "20181218-20190117");
  EXPECT_EQ(deid::shift_date("2019.03.15", offset), "20190301");
  EXPECT_EQ(deid::shift_date("20190315", offset, 1), "20190302");
  EXPECT_EQ(deid::shift_date("not a date", offset), std::nullopt);
  EXPECT_EQ(deid::shift_time("231500", offset), "001500");
  EXPECT_EQ(deid::shift_time("2315", offset), "0015");
  EXPECT_EQ(deid::shift_time("101010.123", offset), "111010.123");
  EXPECT_EQ(deid::time_carry_days("231500", offset), 1);
  EXPECT_EQ(deid::time_carry_days("101500", offset), 0);
  EXPECT_EQ(deid::shift_datetime("20190315231502.123456+0100", offset),
            "20190302001502.123456+0100");
  // Coarser precision: the first moment of the period moves, written at the same precision.
  EXPECT_EQ(deid::shift_datetime("201903", offset), "201902");
  EXPECT_EQ(deid::shift_datetime("2019", offset), "2018");
  EXPECT_EQ(deid::shift_datetime("20190315", offset), "20190301");
}

TEST(Dates, AgesOver89AreCapped) {
  EXPECT_EQ(deid::cap_age("095Y"), "090Y");
  EXPECT_EQ(deid::cap_age("089Y"), "089Y");
  EXPECT_EQ(deid::cap_age("120Y"), "090Y");
  EXPECT_EQ(deid::cap_age("999M"), "999M");  // 83 years
  EXPECT_EQ(deid::cap_age("030D"), "030D");
}

TEST(TextScrubber, RemovesKnownValuesInAnyCaseOrderAndSeparators) {
  deid::PhiValues phi;
  phi.add_person_name("DOE^JOHN");
  phi.add_identifier("PID-12345");
  phi.add_text("St Elsewhere Hospital");
  const std::string out = deid::scrub_text("Head CT for john Doe (pid 12345) at ST ELSEWHERE", phi);
  EXPECT_EQ(out.find("john"), std::string::npos) << out;
  EXPECT_EQ(out.find("Doe"), std::string::npos) << out;
  EXPECT_EQ(out.find("12345"), std::string::npos) << out;
  EXPECT_EQ(out.find("ELSEWHERE"), std::string::npos) << out;
  EXPECT_NE(out.find("Head CT"), std::string::npos) << out;
}

TEST(TextScrubber, RemovesGenericIdentifiers) {
  const deid::PhiValues none;
  const std::string out = deid::scrub_text(
      "seen by Dr. Gregory House on 15/03/2019 at 14:32, call +1 555 123 4567, "
      "MRN 8812345, mail j.doe@example.org, March 3, 2019, 2019-03-15, DOE^JANE",
      none);
  for (const char* leak : {"Gregory", "House", "15/03/2019", "14:32", "555", "8812345",
                           "example.org", "March 3", "2019-03-15", "JANE"}) {
    EXPECT_EQ(out.find(leak), std::string::npos) << leak << " survived in: " << out;
  }
  EXPECT_NE(out.find("seen by"), std::string::npos) << out;
  EXPECT_EQ(deid::scrub_text("T1 MPRAGE SAG 1mm", none), "T1 MPRAGE SAG 1mm");
}

TEST(TextScrubber, NeverLengthens) {
  deid::PhiValues phi;
  phi.add_person_name("A^B");
  const std::string text = "AB 12:00 1/2/2020 x";
  EXPECT_LE(deid::scrub_text(text, phi).size(), text.size());
}

TEST(TextScrubber, NamesInOtherScriptsAreRemovedFromUtf8Text) {
  // Hong^Gildong=洪^吉洞=홍^길동 and Wang^XiaoDong=王^小東 in UTF-8 (ISO_IR 192): words of
  // non-ASCII characters used to be trimmed away as punctuation and never matched.
  const auto enc = deid::TextEncoding::utf8;
  deid::PhiValues phi;
  phi.add_person_name(
      "Hong^Gildong=\xE6\xB4\xAA^\xE5\x90\x89\xE6\xB4\x9E=\xED\x99\x8D^\xEA\xB8\xB8\xEB\x8F\x99",
      enc);
  phi.add_person_name("Wang^XiaoDong=\xE7\x8E\x8B^\xE5\xB0\x8F\xE6\x9D\xB1", enc);
  // "CT 홍길동 follow-up, 王小東先生" (no spaces between the Chinese words)
  const std::string text =
      "CT \xED\x99\x8D\xEA\xB8\xB8\xEB\x8F\x99 follow-up, \xE7\x8E\x8B\xE5\xB0\x8F\xE6\x9D\xB1"
      "\xE5\x85\x88\xE7\x94\x9F";
  const std::string out = deid::scrub_text(text, phi, enc);
  for (const char* leak :
       {"\xED\x99\x8D", "\xEA\xB8\xB8\xEB\x8F\x99", "\xE7\x8E\x8B", "\xE5\xB0\x8F\xE6\x9D\xB1"})
    EXPECT_EQ(out.find(leak), std::string::npos) << out;
  EXPECT_EQ(out, "CT * follow-up, *\xE5\x85\x88\xE7\x94\x9F");  // 先生 (a title) stays
}

TEST(TextScrubber, Gb18030CharactersAreRemovedWholeNeverSplit) {
  // GB18030 trail bytes may be ASCII letters: 0x81 0x41 is one character, but the ID pattern
  // sees "A12345". Removing only the trail byte left a lone lead byte that swallowed the
  // '*' (invalid text).
  const deid::PhiValues none;
  const auto enc = deid::TextEncoding::gb18030;
  EXPECT_EQ(deid::scrub_text("x \x81\x41"
                             "12345 y",
                             none, enc),
            "x * y");
  // A four-byte character (0x81 0x30 0x81 0x30) beside digits goes whole as well.
  EXPECT_EQ(deid::scrub_text("\x81\x30\x81\x30"
                             "99999",
                             none, enc),
            "*");
  // '^' (0x5E) as a trail byte does not split a name: 0xB0 0x5E is one character.
  deid::PhiValues phi;
  phi.add_person_name("Wang^\xCD\xF5\xB0\x5E", enc);
  EXPECT_EQ(deid::scrub_text("CT \xCD\xF5\xB0\x5E ok", phi, enc), "CT * ok");
}

TEST(TextScrubber, Iso2022TextIsRemovedWholeNotCutInsideEscapeSequences) {
  // Japanese (ISO 2022 IR 87) and Korean (ISO 2022 IR 149) free text from pydicom's
  // chrJapMulti.dcm / chrKoreanMulti.dcm: the scrubber used to leave "ESC $ *" (a broken
  // escape sequence) behind. It now decodes them: a name goes whole, never an escape cut;
  // bytes it cannot read (G1 bytes with no set designated) make the value "*".
  deid::PhiValues phi;
  phi.add_person_name("\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B", deid::TextEncoding::iso2022);
  phi.add_person_name("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B",
                      deid::TextEncoding::iso2022);
  const auto enc = deid::TextEncoding::iso2022;
  EXPECT_EQ(deid::scrub_text("\x1b$B$?$m$&\x1b(B", phi, enc), "*");
  // Korean text (ISO 2022 IR 149) is now decoded: without a name in it, it stays as it was.
  EXPECT_EQ(deid::scrub_text("\x1b$)C\xB1\xE8\xC8\xF1\xC1\xDF\x1b(B", phi, enc),
            "\x1b$)C\xB1\xE8\xC8\xF1\xC1\xDF\x1b(B");
  EXPECT_EQ(deid::scrub_text("\xB1\xE8 chest", phi, enc), "*");  // G1 bytes without escape
  // ASCII text in such a file is scrubbed as usual; the readable name part is matched.
  EXPECT_EQ(deid::scrub_text("Chest PA for Tarou Yamada", phi, enc), "Chest PA for *");
  EXPECT_EQ(deid::encoding_for("\\ISO 2022 IR 87"), enc);
  EXPECT_EQ(deid::encoding_for("\\ISO 2022 IR 149"), enc);
  EXPECT_EQ(deid::encoding_for("ISO_IR 192"), deid::TextEncoding::utf8);
  EXPECT_EQ(deid::encoding_for("GB18030"), deid::TextEncoding::gb18030);
  EXPECT_EQ(deid::encoding_for("ISO_IR 100"), deid::TextEncoding::single_byte);
}

TEST(Policy, CombinedCodesResolveToValidOutputs) {
  EXPECT_EQ(deid::resolve(ActionCode::X), Action::remove);
  EXPECT_EQ(deid::resolve(ActionCode::Z), Action::empty);
  EXPECT_EQ(deid::resolve(ActionCode::D), Action::dummy);
  EXPECT_EQ(deid::resolve(ActionCode::K), Action::keep);
  EXPECT_EQ(deid::resolve(ActionCode::C), Action::clean);
  EXPECT_EQ(deid::resolve(ActionCode::U), Action::uid);
  EXPECT_EQ(deid::resolve(ActionCode::Z_D), Action::dummy);
  EXPECT_EQ(deid::resolve(ActionCode::X_Z), Action::empty);
  EXPECT_EQ(deid::resolve(ActionCode::X_D), Action::dummy);
  EXPECT_EQ(deid::resolve(ActionCode::X_Z_D), Action::dummy);
  EXPECT_EQ(deid::resolve(ActionCode::X_Z_U), Action::uid);
}

TEST(Policy, OptionsOverrideTheBasicProfile) {
  const Tag study_date{0x0008, 0x0020}, serial{0x0018, 0x1000}, study_uid{0x0020, 0x000D},
      institution{0x0008, 0x0080}, sex{0x0010, 0x0040}, description{0x0008, 0x1030};
  auto basic = deid::Policy::create("basic", {}, std::nullopt);
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->listed_action(study_date), Action::empty);
  EXPECT_EQ(basic->listed_action(serial), Action::dummy);
  EXPECT_EQ(basic->listed_action(study_uid), Action::uid);
  EXPECT_EQ(basic->listed_action(institution), Action::dummy);
  EXPECT_EQ(basic->listed_action(sex), Action::empty);
  EXPECT_EQ(basic->listed_action(description), Action::remove);
  EXPECT_EQ(basic->listed_action(Tag{0x0028, 0x0010}), std::nullopt);  // Rows: not listed

  const std::vector<std::string> all = {
      "retain-long-full-dates",      "retain-device-identity",         "retain-uids",
      "retain-institution-identity", "retain-patient-characteristics", "clean-descriptors"};
  auto rich = deid::Policy::create("basic", all, std::nullopt);
  ASSERT_TRUE(rich);
  EXPECT_EQ(rich->listed_action(study_date), Action::keep);
  EXPECT_EQ(rich->listed_action(serial), Action::keep);
  EXPECT_EQ(rich->listed_action(study_uid), Action::keep);
  EXPECT_EQ(rich->listed_action(institution), Action::keep);
  EXPECT_EQ(rich->listed_action(sex), Action::keep);
  EXPECT_EQ(rich->listed_action(description), Action::clean);

  auto modified = deid::Policy::create(
      "basic", std::vector<std::string>{"retain-long-modified-dates"}, std::nullopt);
  ASSERT_TRUE(modified);
  EXPECT_EQ(modified->listed_action(study_date), Action::clean);
}

TEST(Policy, PresetsAndMethodCodes) {
  auto research = deid::Policy::create("research", {}, std::nullopt);
  ASSERT_TRUE(research);
  EXPECT_TRUE(research->has(ProfileOption::retain_safe_private));
  EXPECT_TRUE(research->has(ProfileOption::retain_patient_characteristics));
  EXPECT_TRUE(research->has(ProfileOption::retain_long_modified_dates));
  EXPECT_TRUE(research->has(ProfileOption::clean_descriptors));
  std::vector<std::string> codes;
  for (const auto* c : research->method_codes()) codes.push_back(c->value);
  EXPECT_EQ(codes, (std::vector<std::string>{"113100", "113111", "113108", "113107", "113105"}));
}

TEST(Policy, BadInputIsAUsageError) {
  EXPECT_EQ(deid::Policy::create("nope", {}, std::nullopt).error().code, ErrorCode::usage);
  EXPECT_EQ(deid::Policy::create("basic", std::vector<std::string>{"retain-nothing"}, std::nullopt)
                .error()
                .code,
            ErrorCode::usage);
  EXPECT_FALSE(deid::Policy::create(
      "basic", std::vector<std::string>{"retain-long-full-dates", "retain-long-modified-dates"},
      std::nullopt));
  auto policy = deid::Policy::create("basic", {}, std::nullopt);
  ASSERT_TRUE(policy);
  const auto bad = policy->add_recipe("(0008,1030) K\nNoSuchKeyword X\n", "r.txt");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("r.txt line 2"), std::string::npos);
  ASSERT_TRUE(policy->add_recipe("StudyDescription K # keep it\n(0008,103E) C\n", "r.txt"));
  EXPECT_EQ(policy->listed_action(Tag{0x0008, 0x1030}), Action::keep);
  EXPECT_EQ(policy->listed_action(Tag{0x0008, 0x103E}), Action::clean);
}

TEST(StandardTables, GeneratedFromTheStandard) {
  EXPECT_EQ(standard::profile_rows().size(), 657U);
  EXPECT_EQ(standard::safe_private_rows().size(), 479U);
  EXPECT_EQ(standard::cid7050().size(), 13U);
  ASSERT_NE(standard::find_profile_row(Tag{0x6002, 0x3000}), nullptr);  // overlay data, any plane
  ASSERT_NE(standard::find_profile_row(Tag{0x0009, 0x1001}), nullptr);  // private row
  EXPECT_TRUE(standard::find_profile_row(Tag{0x0009, 0x1001})->private_attributes);
  ASSERT_NE(standard::find_dictionary_entry(Tag{0x0010, 0x0010}), nullptr);
  EXPECT_STREQ(standard::find_dictionary_entry(Tag{0x0010, 0x0010})->vr, "PN");
  EXPECT_NE(standard::find_dictionary_entry(Tag{0x6004, 0x3000}), nullptr);
  EXPECT_EQ(standard::find_dictionary_entry(Tag{0x0018, 0xFFF0}), nullptr);
  EXPECT_TRUE(standard::is_safe_private(Tag{0x7053, 0x1000}, "Philips PET Private Group"));
  EXPECT_TRUE(standard::is_safe_private(Tag{0x7053, 0x1200}, "Philips PET Private Group"));
  EXPECT_FALSE(standard::is_safe_private(Tag{0x7053, 0x1000}, "Someone Else"));
  EXPECT_EQ(standard::time_partner_of(Tag{0x0008, 0x0020}), (Tag{0x0008, 0x0030}));
}

}  // namespace
}  // namespace radguard

namespace radguard {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

// The report writer's descriptor is closed on every way out of its scope, an exception
// included (cmd_deid's write_report_file leaked it before).
TEST(UniqueFd, ClosesOnEveryWayOut) {
  int seen = -1;
  try {
    const UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    seen = fd.get();
    ASSERT_TRUE(is_open(seen));
    throw std::runtime_error("a producer that throws");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(is_open(seen));
  UniqueFd moved(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int raw = moved.get();
  UniqueFd owner = std::move(moved);
  EXPECT_FALSE(moved.valid());
  EXPECT_EQ(owner.close(), 0);
  EXPECT_FALSE(is_open(raw));
  EXPECT_EQ(owner.close(), 0) << "closing twice is harmless";
}

// The front-coded input list gives back every path as given, whatever the shared prefixes
// (none, whole paths, a path that is a prefix of the next, empty paths, blocks' edges), and
// holds a sorted folder's list in a fraction of its text.
TEST(PathList, GivesBackEveryPathAsGiven) {
  std::vector<std::string> paths = {"", "/", "/a", "/a", "/a/b", "/a/b/c.dcm", "/a/bc", "/b"};
  for (int k = 0; k < 40; ++k)
    paths.push_back("/tmp/corpus/r" + std::to_string(k / 10) + "/series/IM" + std::to_string(k));
  paths.push_back(std::string(70000, 'x'));
  paths.push_back(std::string(70000, 'x') + "y");
  paths.push_back("z");
  const std::vector<std::string> expected = paths;
  const deid::PathList list(std::move(paths));
  ASSERT_EQ(list.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(list[i], expected[i]) << i;

  std::vector<std::string> folder;
  std::size_t plain = 0;
  for (int k = 0; k < 1000; ++k) {
    folder.push_back("/data/release/patient-folder/study/series-" + std::to_string(k / 100) +
                     "/IM" + std::to_string(1000 + k) + ".dcm");
    plain += folder.back().size();
  }
  const deid::PathList held(std::move(folder));
  EXPECT_LT(held.bytes_held(), plain / 2) << "front coding saves nothing on a sorted folder";
  EXPECT_EQ(held[999], "/data/release/patient-folder/study/series-9/IM1999.dcm");
}

}  // namespace
}  // namespace radguard
