#include "ledger/ledger.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "test_util.hpp"

namespace radguard::ledger {
namespace {

using radguard::testing::ScratchDir;

crypto::SecretKey test_key() {
  return crypto::SecretKey::parse(std::string(64, 'a'))
      .value_or(crypto::SecretKey::generate().value());
}

Entry make_entry(const crypto::SecretKey& key, const std::string& recipient,
                 std::vector<std::string> patient_ids) {
  Entry e;
  e.recipient = recipient;
  e.purpose = "research";
  e.status = EntryStatus::released;
  e.profile = {"basic", {"retain-uids"}, 0, "radguard PS3.15", key.fingerprint()};
  e.release = "release-x";
  e.output_digest = std::string(64, 'f');
  for (const auto& id : patient_ids) {
    PatientDisclosure p;
    p.patient_hash = patient_hash(key, id);
    p.studies.push_back({"2.25.1", 3, {"CT"}});
    e.patients.push_back(p);
    e.instances += 3;
    e.studies += 1;
  }
  return e;
}

// Three entries; returns the ledger path.
std::string three_entries(const ScratchDir& dir, const crypto::SecretKey& key) {
  const std::string path = (dir / "ledger.db").string();
  auto ledger = Ledger::open(path, LedgerAccess::create_if_missing);
  EXPECT_TRUE(ledger) << ledger.error().message;
  for (int i = 1; i <= 3; ++i)
    EXPECT_TRUE(ledger->append(make_entry(key, "Lab " + std::to_string(i), {"P1"})));
  return path;
}

// Tampering as an attacker would: with the sqlite3 API, after dropping the guard triggers.
void tamper(const std::string& path, const std::string& sql) {
  auto db = sqlite::Database::open(path, sqlite::OpenMode::existing);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec(
      "DROP TRIGGER disclosure_no_update; DROP TRIGGER disclosure_no_delete;"
      "DROP TRIGGER disclosure_patient_no_update; DROP TRIGGER disclosure_patient_no_delete;"));
  auto s = db->exec(sql);
  ASSERT_TRUE(s) << s.error().message;
}

VerifyReport verify(const std::string& path) {
  auto ledger = Ledger::open(path, LedgerAccess::existing_only);
  EXPECT_TRUE(ledger);
  auto report = ledger->verify();
  EXPECT_TRUE(report);
  return *report;
}

TEST(Ledger, ChainsEntriesAndVerifies) {
  ScratchDir dir;
  const auto key = test_key();
  const std::string path = three_entries(dir, key);
  auto ledger = Ledger::open(path, LedgerAccess::existing_only);
  ASSERT_TRUE(ledger);
  auto entries = ledger->all();
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].sequence, 1);
  EXPECT_EQ((*entries)[0].prev_hash, std::string(64, '0'));
  EXPECT_EQ((*entries)[1].prev_hash, (*entries)[0].entry_hash);
  EXPECT_EQ((*entries)[2].recipient, "Lab 3");
  auto report = ledger->verify();
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->intact()) << report->problem;
  EXPECT_EQ(report->entries, 3u);
  EXPECT_EQ(report->head_hash, (*entries)[2].entry_hash);
}

TEST(Ledger, ExistingOnlyRefusesAMissingLedger) {
  ScratchDir dir;
  auto ledger = Ledger::open((dir / "nope.db").string(), LedgerAccess::existing_only);
  ASSERT_FALSE(ledger);
  EXPECT_EQ(ledger.error().code, ErrorCode::not_found);
}

TEST(Ledger, RefusesADatabaseThatIsNotALedger) {
  ScratchDir dir;
  const std::string path = (dir / "other.db").string();
  {
    auto db = sqlite::Database::open(path, sqlite::OpenMode::create);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE registry_meta(key TEXT)"));
  }
  for (const auto access : {LedgerAccess::existing_only, LedgerAccess::create_if_missing}) {
    auto ledger = Ledger::open(path, access);
    ASSERT_FALSE(ledger);
    EXPECT_EQ(ledger.error().code, ErrorCode::integrity);
  }
  { std::ofstream(dir / "text.db") << "not a database at all, just some text that is long enough"; }
  EXPECT_FALSE(Ledger::open((dir / "text.db").string(), LedgerAccess::existing_only));
  auto db = sqlite::Database::open(path, sqlite::OpenMode::existing);
  EXPECT_EQ(db->table_names()->size(), 1u) << "nothing was added to the foreign database";
}

TEST(Ledger, RefusesUpdatesAndDeletesThroughSql) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  auto db = sqlite::Database::open(path, sqlite::OpenMode::existing);
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->exec("UPDATE disclosure SET recipient = 'x'"));
  EXPECT_FALSE(db->exec("DELETE FROM disclosure WHERE sequence = 2"));
  EXPECT_TRUE(verify(path).intact());
}

TEST(Ledger, DetectsAnEditedBody) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  tamper(path, "UPDATE disclosure SET body = replace(body, 'Lab 2', 'Lab 9') WHERE sequence = 2");
  const auto report = verify(path);
  EXPECT_FALSE(report.intact());
  EXPECT_EQ(report.first_bad_sequence, 2);
  EXPECT_NE(report.problem.find("entry 2"), std::string::npos) << report.problem;
}

TEST(Ledger, DetectsAnEditedColumnEvenWithTheBodyIntact) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  tamper(path, "UPDATE disclosure SET recipient = 'Someone else' WHERE sequence = 3");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 3);
}

TEST(Ledger, DetectsARecomputedHashThroughTheNextLink) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  // The attacker edits entry 1 and recomputes its own hash, but cannot fix entry 2's link
  // without rewriting every later entry.
  auto ledger = Ledger::open(path, LedgerAccess::existing_only);
  auto entries = ledger->all().value();
  Entry edited = entries[0];
  edited.recipient = "Nobody";
  const std::string body = canonical_body(edited);
  const std::string hash = chain_hash(edited.prev_hash, body);
  tamper(path, "UPDATE disclosure SET recipient = 'Nobody', body = '" + body + "', entry_hash = '" +
                   hash + "' WHERE sequence = 1");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
}

TEST(Ledger, DetectsADeletedEntry) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  tamper(path, "DELETE FROM disclosure WHERE sequence = 2");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
  EXPECT_NE(report.problem.find("missing"), std::string::npos) << report.problem;
}

TEST(Ledger, DetectsADeletedEntryRenumbered) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  tamper(path,
         "DELETE FROM disclosure WHERE sequence = 2; UPDATE disclosure SET sequence = 2 WHERE "
         "sequence = 3;"
         "DELETE FROM disclosure_patient WHERE sequence = 3");
  EXPECT_EQ(verify(path).first_bad_sequence, 2);
}

TEST(Ledger, DetectsReorderedEntries) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  tamper(path,
         "UPDATE disclosure SET sequence = 100 WHERE sequence = 2;"
         "UPDATE disclosure SET sequence = 2 WHERE sequence = 3;"
         "UPDATE disclosure SET sequence = 3 WHERE sequence = 100;");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
}

TEST(Ledger, DetectsATruncatedTailOnlyAgainstAKnownHead) {
  ScratchDir dir;
  const std::string path = three_entries(dir, test_key());
  const auto before = verify(path);
  tamper(path,
         "DELETE FROM disclosure WHERE sequence = 3; DELETE FROM disclosure_patient WHERE sequence "
         "= 3");
  const auto after = verify(path);
  // The remaining chain is self-consistent; the head hash kept elsewhere tells the difference.
  EXPECT_TRUE(after.intact());
  EXPECT_NE(after.head_hash, before.head_hash);
  EXPECT_EQ(after.entries, 2u);
}

TEST(Ledger, DetectsATamperedPatientIndex) {
  ScratchDir dir;
  const auto key = test_key();
  const std::string path = three_entries(dir, key);
  tamper(path, "DELETE FROM disclosure_patient WHERE sequence = 2");
  EXPECT_EQ(verify(path).first_bad_sequence, 2);
}

TEST(Ledger, FindsAPatientsEntriesByKeyedHashOnly) {
  ScratchDir dir;
  const auto key = test_key();
  const std::string path = (dir / "ledger.db").string();
  auto ledger = Ledger::open(path, LedgerAccess::create_if_missing);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->append(make_entry(key, "A", {"PATIENT-ONE", "PATIENT-TWO"})));
  ASSERT_TRUE(ledger->append(make_entry(key, "B", {"PATIENT-TWO"})));
  auto failed = make_entry(key, "C", {"PATIENT-ONE"});
  failed.status = EntryStatus::failed;
  failed.error = "disk full";
  ASSERT_TRUE(ledger->append(failed));

  auto one = ledger->entries_for(patient_hash(key, "PATIENT-ONE"), std::nullopt);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].recipient, "A");
  ASSERT_EQ((*one)[0].patients.size(), 1u) << "only the asked-for patient is returned";
  auto two = ledger->entries_for(patient_hash(key, " PATIENT-TWO "), std::nullopt);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ(ledger->entries_for(patient_hash(key, "PATIENT-ONE"), std::nullopt, EntryStatus::failed)
                ->size(),
            1u);
  EXPECT_TRUE(
      ledger->entries_for(patient_hash(key, "PATIENT-TWO"), std::string("2999-01-01"))->empty());
  const auto other_key = crypto::SecretKey::generate().value();
  EXPECT_TRUE(ledger->entries_for(patient_hash(other_key, "PATIENT-ONE"), std::nullopt)->empty());

  std::ifstream raw(path, std::ios::binary);
  std::stringstream bytes;
  bytes << raw.rdbuf();
  EXPECT_EQ(bytes.str().find("PATIENT-ONE"), std::string::npos);
  EXPECT_EQ(bytes.str().find("PATIENT-TWO"), std::string::npos);
}

TEST(Ledger, AFailingPublishStepRollsTheEntryBack) {
  ScratchDir dir;
  const auto key = test_key();
  auto ledger = Ledger::open((dir / "ledger.db").string(), LedgerAccess::create_if_missing);
  ASSERT_TRUE(ledger);
  auto result = ledger->append(make_entry(key, "A", {"P"}),
                               [] { return Status(fail(ErrorCode::io, "rename failed")); });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message, "rename failed");
  EXPECT_TRUE(ledger->all()->empty());
  EXPECT_TRUE(ledger->append(make_entry(key, "A", {"P"})));
  EXPECT_EQ(ledger->verify()->entries, 1u);
}

TEST(Ledger, ConcurrentAppendersLoseNothing) {
  ScratchDir dir;
  const auto key = test_key();
  const std::string path = (dir / "ledger.db").string();
  ASSERT_TRUE(Ledger::open(path, LedgerAccess::create_if_missing));
  constexpr int kThreads = 4, kEach = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto ledger = Ledger::open(path, LedgerAccess::existing_only);
      if (!ledger) {
        ++failures;
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        if (!ledger->append(make_entry(key, "T" + std::to_string(t), {"P"}))) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const auto report = verify(path);
  EXPECT_TRUE(report.intact()) << report.problem;
  EXPECT_EQ(report.entries, static_cast<std::uint64_t>(kThreads * kEach));
}

}  // namespace
}  // namespace radguard::ledger
