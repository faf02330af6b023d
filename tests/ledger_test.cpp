#include "ledger/ledger.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "pg_support.hpp"

namespace radguard::ledger {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

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

// Each test runs on SQLite and on PostgreSQL (tests/pg_support.hpp).
class LedgerStore : public radguard::testing::StoreTest {
 protected:
  // Three entries; returns the ledger target.
  std::string three_entries(const crypto::SecretKey& key) {
    const std::string path = target("ledger.db");
    auto ledger = Ledger::open(path, LedgerAccess::create_if_missing);
    EXPECT_TRUE(ledger) << ledger.error().message;
    for (int i = 1; i <= 3; ++i)
      EXPECT_TRUE(ledger->append(make_entry(key, "Lab " + std::to_string(i), {"P1"})));
    return path;
  }

  // Tampering as an attacker would: with plain SQL, after dropping the guard triggers.
  void tamper(const std::string& sql) {
    auto db = raw("ledger.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(
        postgresql()
            ? "DROP TRIGGER disclosure_no_update ON disclosure; DROP TRIGGER disclosure_no_delete "
              "ON disclosure; DROP TRIGGER disclosure_patient_no_update ON disclosure_patient; "
              "DROP TRIGGER disclosure_patient_no_delete ON disclosure_patient;"
            : "DROP TRIGGER disclosure_no_update; DROP TRIGGER disclosure_no_delete;"
              "DROP TRIGGER disclosure_patient_no_update; DROP TRIGGER "
              "disclosure_patient_no_delete;"));
    auto s = db->exec(sql);
    ASSERT_TRUE(s) << s.error().message;
  }

  VerifyReport verify(const std::string& path) {
    auto ledger = Ledger::open(path, LedgerAccess::existing_only);
    EXPECT_TRUE(ledger);
    if (!ledger) return {};
    auto report = ledger->verify();
    EXPECT_TRUE(report);
    return report ? *report : VerifyReport{};
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, LedgerStore,
                         ::testing::Values(store::Backend::sqlite, store::Backend::postgresql),
                         radguard::testing::backend_label);

TEST_P(LedgerStore, ChainsEntriesAndVerifies) {
  const auto key = test_key();
  const std::string path = three_entries(key);
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

TEST_P(LedgerStore, ExistingOnlyRefusesAMissingLedger) {
  auto ledger = Ledger::open(target("nope.db"), LedgerAccess::existing_only);
  ASSERT_FALSE(ledger);
  EXPECT_EQ(ledger.error().code, ErrorCode::not_found);
}

TEST_P(LedgerStore, RefusesADatabaseThatIsNotALedger) {
  const std::string path = target("other.db");
  {
    auto db = raw("other.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE registry_meta(key TEXT)"));
  }
  for (const auto access : {LedgerAccess::existing_only, LedgerAccess::create_if_missing}) {
    auto ledger = Ledger::open(path, access);
    ASSERT_FALSE(ledger);
    EXPECT_EQ(ledger.error().code, ErrorCode::integrity);
  }
  if (!postgresql()) {
    {
      std::ofstream(dir_ / "text.db")
          << "not a database at all, just some text that is long enough";
    }
    EXPECT_FALSE(Ledger::open((dir_ / "text.db").string(), LedgerAccess::existing_only));
  }
  auto db = raw("other.db");
  EXPECT_EQ(db->table_names()->size(), 1u) << "nothing was added to the foreign database";
}

TEST_P(LedgerStore, RefusesUpdatesAndDeletesThroughSql) {
  const std::string path = three_entries(test_key());
  auto db = raw("ledger.db");
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->exec("UPDATE disclosure SET recipient = 'x'"));
  EXPECT_FALSE(db->exec("DELETE FROM disclosure WHERE sequence = 2"));
  EXPECT_TRUE(verify(path).intact());
}

TEST_P(LedgerStore, DetectsAnEditedBody) {
  const std::string path = three_entries(test_key());
  tamper("UPDATE disclosure SET body = replace(body, 'Lab 2', 'Lab 9') WHERE sequence = 2");
  const auto report = verify(path);
  EXPECT_FALSE(report.intact());
  EXPECT_EQ(report.first_bad_sequence, 2);
  EXPECT_NE(report.problem.find("entry 2"), std::string::npos) << report.problem;
}

TEST_P(LedgerStore, DetectsAnEditedColumnEvenWithTheBodyIntact) {
  const std::string path = three_entries(test_key());
  tamper("UPDATE disclosure SET recipient = 'Someone else' WHERE sequence = 3");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 3);
}

TEST_P(LedgerStore, DetectsARecomputedHashThroughTheNextLink) {
  const std::string path = three_entries(test_key());
  // The attacker edits entry 1 and recomputes its own hash, but cannot fix entry 2's link
  // without rewriting every later entry.
  auto ledger = Ledger::open(path, LedgerAccess::existing_only);
  auto entries = ledger->all().value();
  Entry edited = entries[0];
  edited.recipient = "Nobody";
  const std::string body = canonical_body(edited);
  const std::string hash = chain_hash(edited.prev_hash, body);
  tamper("UPDATE disclosure SET recipient = 'Nobody', body = '" + body + "', entry_hash = '" +
         hash + "' WHERE sequence = 1");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
}

TEST_P(LedgerStore, DetectsADeletedEntry) {
  const std::string path = three_entries(test_key());
  tamper("DELETE FROM disclosure WHERE sequence = 2");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
  EXPECT_NE(report.problem.find("missing"), std::string::npos) << report.problem;
}

TEST_P(LedgerStore, DetectsADeletedEntryRenumbered) {
  const std::string path = three_entries(test_key());
  tamper(
      "DELETE FROM disclosure WHERE sequence = 2; UPDATE disclosure SET sequence = 2 WHERE "
      "sequence = 3;"
      "DELETE FROM disclosure_patient WHERE sequence = 3");
  EXPECT_EQ(verify(path).first_bad_sequence, 2);
}

TEST_P(LedgerStore, DetectsReorderedEntries) {
  const std::string path = three_entries(test_key());
  tamper(
      "UPDATE disclosure SET sequence = 100 WHERE sequence = 2;"
      "UPDATE disclosure SET sequence = 2 WHERE sequence = 3;"
      "UPDATE disclosure SET sequence = 3 WHERE sequence = 100;");
  const auto report = verify(path);
  EXPECT_EQ(report.first_bad_sequence, 2) << report.problem;
}

TEST_P(LedgerStore, DetectsATruncatedTailOnlyAgainstAKnownHead) {
  const std::string path = three_entries(test_key());
  const auto before = verify(path);
  tamper(
      "DELETE FROM disclosure WHERE sequence = 3; DELETE FROM disclosure_patient WHERE sequence "
      "= 3");
  const auto after = verify(path);
  // The remaining chain is self-consistent; the head hash kept elsewhere tells the difference.
  EXPECT_TRUE(after.intact());
  EXPECT_NE(after.head_hash, before.head_hash);
  EXPECT_EQ(after.entries, 2u);
}

TEST_P(LedgerStore, DetectsATamperedPatientIndex) {
  const auto key = test_key();
  const std::string path = three_entries(key);
  tamper("DELETE FROM disclosure_patient WHERE sequence = 2");
  EXPECT_EQ(verify(path).first_bad_sequence, 2);
}

TEST_P(LedgerStore, FindsAPatientsEntriesByKeyedHashOnly) {
  const auto key = test_key();
  const std::string path = target("ledger.db");
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

  if (postgresql()) {
    auto db = raw("ledger.db");
    auto named = db->prepare(
        "SELECT count(*) FROM disclosure WHERE body LIKE '%PATIENT-%' OR recipient LIKE "
        "'%PATIENT-%' OR sequence IN (SELECT sequence FROM disclosure_patient WHERE patient_hash "
        "LIKE '%PATIENT-%')");
    ASSERT_TRUE(named);
    ASSERT_TRUE((*named)->step().value_or(false));
    EXPECT_EQ((*named)->integer(0), 0);
  } else {
    std::ifstream file(path, std::ios::binary);
    std::stringstream bytes;
    bytes << file.rdbuf();
    EXPECT_EQ(bytes.str().find("PATIENT-ONE"), std::string::npos);
    EXPECT_EQ(bytes.str().find("PATIENT-TWO"), std::string::npos);
  }
}

TEST_P(LedgerStore, AFailingPublishStepRollsTheEntryBack) {
  const auto key = test_key();
  auto ledger = Ledger::open(target("ledger.db"), LedgerAccess::create_if_missing);
  ASSERT_TRUE(ledger);
  auto result = ledger->append(make_entry(key, "A", {"P"}),
                               [] { return Status(fail(ErrorCode::io, "rename failed")); });
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message, "rename failed");
  EXPECT_TRUE(ledger->all()->empty());
  EXPECT_TRUE(ledger->append(make_entry(key, "A", {"P"})));
  EXPECT_EQ(ledger->verify()->entries, 1u);
}

TEST_P(LedgerStore, ConcurrentAppendersLoseNothing) {
  const auto key = test_key();
  const std::string path = target("ledger.db");
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

// The chain under two writers: the second append waits for the first writer's commit
// (SQLite's write lock; PostgreSQL's advisory lock on the store) and links to its entry,
// even while the first holds its transaction open in a slow publish step.
TEST_P(LedgerStore, AnAppendWaitsForTheWriterBeforeItAndLinksToIt) {
  const auto key = test_key();
  const std::string path = target("ledger.db");
  ASSERT_TRUE(Ledger::open(path, LedgerAccess::create_if_missing));
  std::atomic<bool> publishing{false};
  Result<Entry> first = fail(ErrorCode::internal, "not run");
  std::thread writer([&] {
    auto ledger = Ledger::open(path, LedgerAccess::existing_only);
    if (!ledger) return;
    first = ledger->append(make_entry(key, "first", {"P"}), [&] {
      publishing = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      return Status{};
    });
  });
  while (!publishing) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto ledger = Ledger::open(path, LedgerAccess::existing_only);
  ASSERT_TRUE(ledger) << ledger.error().message;
  auto second = ledger->append(make_entry(key, "second", {"P"}));
  writer.join();
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->sequence, 1);
  EXPECT_EQ(second->sequence, 2);
  EXPECT_EQ(second->prev_hash, first->entry_hash);
  EXPECT_TRUE(verify(path).intact());
}

// A reader's open (LedgerAccess::read_only): it reads and verifies a ledger whose file is
// mode 0444, changes nothing (the file's bytes stay the same, no journal is left), refuses
// every write (an append, SQL through a read-only store connection, a writers' transaction)
// and does not queue behind a writer that holds the lock: SQLite's reserved lock, or
// PostgreSQL's advisory lock (the existing_only open took that lock and waited up to 30 s).
TEST_P(LedgerStore, AReadOnlyOpenReadsAndRefusesEveryWrite) {
  const auto key = test_key();
  const std::string path = three_entries(key);
  std::string before;
  if (!postgresql()) {
    before = read_file(path);
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::group_read |
                                           std::filesystem::perms::others_read);
  }
  {
    auto ledger = Ledger::open(path, LedgerAccess::read_only);
    ASSERT_TRUE(ledger) << ledger.error().message;
    auto report = ledger->verify();
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_TRUE(report->intact()) << report->problem;
    EXPECT_EQ(report->entries, 3u);
    auto mine = ledger->entries_for(patient_hash(key, "P1"), std::nullopt);
    ASSERT_TRUE(mine) << mine.error().message;
    EXPECT_EQ(mine->size(), 3u);
    EXPECT_TRUE(ledger->check_key(key.fingerprint()));
    EXPECT_FALSE(ledger->append(make_entry(key, "Lab 4", {"P1"})));
  }
  {
    auto db = store::open(path, store::OpenMode::read_only);
    ASSERT_TRUE(db) << db.error().message;
    EXPECT_EQ((*db)->mode(), store::OpenMode::read_only);
    auto immediate = store::Transaction::begin(**db, store::TransactionKind::immediate);
    ASSERT_FALSE(immediate);
    EXPECT_EQ(immediate.error().code, ErrorCode::usage);
    EXPECT_NE(immediate.error().message.find("read-only"), std::string::npos);
    auto insert = (*db)->exec("INSERT INTO ledger_meta(key, value) VALUES ('x', 'y')");
    ASSERT_FALSE(insert);
    EXPECT_EQ(insert.error().code, ErrorCode::io) << insert.error().message;
    EXPECT_FALSE((*db)->exec("CREATE TABLE intruder(x TEXT)"));
  }
  if (!postgresql()) {
    EXPECT_EQ(read_file(path), before);
    EXPECT_FALSE(std::filesystem::exists(path + "-journal"));
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
  }
  // A writer holds the lock; a reader opens, verifies and looks up meanwhile, at once.
  auto writer = raw("ledger.db");
  ASSERT_TRUE(writer);
  auto held = store::Transaction::begin(*writer, store::TransactionKind::immediate);
  ASSERT_TRUE(held) << held.error().message;
  const auto start = std::chrono::steady_clock::now();
  auto ledger = Ledger::open(path, LedgerAccess::read_only);
  ASSERT_TRUE(ledger) << ledger.error().message;
  auto report = ledger->verify();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->entries, 3u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_P(LedgerStore, AReadOnlyOpenRefusesWhatIsNotALedger) {
  auto missing = Ledger::open(target("nope.db"), LedgerAccess::read_only);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  auto other = raw("other.db");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->exec("CREATE TABLE something(x TEXT)"));
  auto refused = Ledger::open(target("other.db"), LedgerAccess::read_only);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::integrity);
  // Nothing was added to it.
  auto tables = other->table_names();
  ASSERT_TRUE(tables);
  EXPECT_EQ(*tables, std::vector<std::string>{"something"});
}

// A PostgreSQL target that cannot be reached fails closed, and no message names its password.
TEST(LedgerPostgres, AnUnreachableServerFailsClosedWithoutThePassword) {
  for (const std::string& given :
       {std::string("postgresql://radguard:S3cret-Pass@127.0.0.1:1/ledger"),
        std::string("postgres:host=127.0.0.1 port=1 user=radguard password=S3cret-Pass "
                    "dbname=ledger connect_timeout=5")}) {
    for (const auto access : {LedgerAccess::existing_only, LedgerAccess::create_if_missing}) {
      auto ledger = Ledger::open(given, access);
      ASSERT_FALSE(ledger) << given;
      EXPECT_EQ(ledger.error().code, ErrorCode::io);
      EXPECT_EQ(ledger.error().message.find("S3cret"), std::string::npos) << ledger.error().message;
      EXPECT_NE(ledger.error().message.find("postgresql://radguard@127.0.0.1:1/ledger"),
                std::string::npos)
          << ledger.error().message;
    }
    EXPECT_EQ(store::display_name(given), "postgresql://radguard@127.0.0.1:1/ledger");
  }
  auto unreadable =
      Ledger::open("postgres:host='127.0.0.1 password=S3cret", LedgerAccess::create_if_missing);
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().message.find("S3cret"), std::string::npos)
      << unreadable.error().message;
  EXPECT_FALSE(store::names_a_file("postgresql://h/db"));
  EXPECT_FALSE(store::names_a_file("file:x?mode=memory"));
  EXPECT_TRUE(store::names_a_file("ledger.db"));
}

// A PostgreSQL target that names no sslmode gets sslmode=require, not libpq's `prefer` (which
// falls back to plain text without a word): the test server has no TLS, so such a target is
// refused, with a message that says why and how to accept a plain connection; the same server
// with sslmode=disable named in the target is reached.
TEST_P(LedgerStore, APostgresTargetWithoutSslmodeRequiresTls) {
  if (!postgresql()) GTEST_SKIP() << "PostgreSQL only";
  const std::string explicit_target = target("ledger");
  std::string plain = explicit_target;
  const std::string disable = "sslmode=disable";
  const auto at = plain.find(disable);
  ASSERT_NE(at, std::string::npos) << "the test server's connection string names sslmode=disable";
  plain.erase(at, disable.size());
  auto refused = Ledger::open(plain, LedgerAccess::create_if_missing);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::io);
  EXPECT_NE(refused.error().message.find("sslmode=require"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("offers no TLS"), std::string::npos)
      << refused.error().message;
  auto reached = Ledger::open(explicit_target, LedgerAccess::create_if_missing);
  EXPECT_TRUE(reached) << reached.error().message;
}

}  // namespace
}  // namespace radguard::ledger
