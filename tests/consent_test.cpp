#include "consent/consent.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/iso_time.hpp"
#include "pg_support.hpp"

namespace radguard::consent {
namespace {

// Each registry test runs on SQLite and on PostgreSQL (tests/pg_support.hpp).
class Consent : public radguard::testing::StoreTest {};
class ConsentImport : public radguard::testing::StoreTest {};
INSTANTIATE_TEST_SUITE_P(Backends, Consent,
                         ::testing::Values(store::Backend::sqlite, store::Backend::postgresql),
                         radguard::testing::backend_label);
INSTANTIATE_TEST_SUITE_P(Backends, ConsentImport,
                         ::testing::Values(store::Backend::sqlite, store::Backend::postgresql),
                         radguard::testing::backend_label);

constexpr std::string_view kNow = "2026-06-01T12:00:00Z";

Record make(std::string patient, Purpose purpose, Decision decision, std::string date,
            std::string expires = "") {
  Record r;
  r.patient_id = std::move(patient);
  r.purpose = purpose;
  r.decision = decision;
  r.date = std::move(date);
  r.expires = std::move(expires);
  r.source = "test";
  return r;
}

TEST(IsoTime, NormalisesDatesAndTimesToSortableUtc) {
  EXPECT_EQ(normalize_iso8601("2024-05-01").value(), "2024-05-01");
  EXPECT_EQ(normalize_iso8601("20240501").value(), "2024-05-01");
  EXPECT_EQ(normalize_iso8601("2024-05-01T10:00:00+02:00").value(), "2024-05-01T08:00:00Z");
  EXPECT_EQ(normalize_iso8601("2024-05-01T00:30:00.123-01:00").value(), "2024-05-01T01:30:00Z");
  EXPECT_EQ(normalize_iso8601("2024-05-01T01:00Z").value(), "2024-05-01T01:00:00Z");
  EXPECT_FALSE(normalize_iso8601("2024-02-30"));
  EXPECT_FALSE(normalize_iso8601("yesterday"));
  EXPECT_FALSE(normalize_iso8601("2024-05-01T10:00:00+2"));
  EXPECT_LT(std::string("2024-05-01"), std::string("2024-05-01T00:00:00Z"));
}

TEST_P(Consent, DefaultPolicyDeniesEverythingButClinicalCare) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry) << registry.error().message;
  for (const Purpose p : all_purposes()) {
    auto verdict = registry->decide("P1", p, kNow);
    ASSERT_TRUE(verdict);
    EXPECT_EQ(verdict->basis, Basis::default_policy);
    EXPECT_EQ(verdict->permitted(), p == Purpose::clinical_care) << purpose_name(p);
  }
}

TEST_P(Consent, DefaultPolicyIsConfigurableAndStoredInTheDatabase) {
  const std::string path = target("consent.db");
  {
    auto registry = Registry::open(path);
    ASSERT_TRUE(registry);
    ASSERT_TRUE(registry->set_default(Purpose::research, Decision::permit));
    ASSERT_TRUE(registry->set_default(Purpose::clinical_care, Decision::deny));
  }
  auto reopened = Registry::open(path);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->default_for(Purpose::research).value(), Decision::permit);
  EXPECT_EQ(reopened->default_for(Purpose::clinical_care).value(), Decision::deny);
  EXPECT_EQ(reopened->default_for(Purpose::ai_training).value(), Decision::deny);
  // A recorded deny still beats a permissive default.
  ASSERT_TRUE(reopened->record(make("P1", Purpose::research, Decision::deny, "2025-01-01")));
  EXPECT_FALSE(reopened->decide("P1", Purpose::research, kNow)->permitted());
  EXPECT_TRUE(reopened->decide("P2", Purpose::research, kNow)->permitted());
}

// A patient ID with a NUL in it (read whole from a file) must never be taken for the ID
// before the NUL: PostgreSQL, which cannot store it, refuses it; SQLite keeps it whole.
TEST_P(Consent, AnIdWithANulIsNeverTheIdBeforeIt) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  ASSERT_TRUE(registry->record(make("123", Purpose::ai_training, Decision::permit, "20250301")));
  const std::string odd("123\0X", 5);
  auto verdict = registry->decide(odd, Purpose::ai_training, kNow);
  if (postgresql()) {
    ASSERT_FALSE(verdict.has_value());
    EXPECT_EQ(verdict.error().code, ErrorCode::integrity);
  } else {
    ASSERT_TRUE(verdict.has_value()) << verdict.error().message;
    EXPECT_FALSE(verdict->permitted());
  }
}

// A PatientID read with a trailing tab is the registry's ID (export and the ledger's patient
// hash normalise it the same way: core/text.hpp).
TEST_P(Consent, AnIdWithATrailingTabIsTheRegistrysId) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  ASSERT_TRUE(registry->record(make("MRN", Purpose::ai_training, Decision::permit, "20250301")));
  auto verdict = registry->decide("MRN\t", Purpose::ai_training, kNow);
  ASSERT_TRUE(verdict.has_value()) << verdict.error().message;
  EXPECT_TRUE(verdict->permitted());
  EXPECT_EQ(verdict->basis, Basis::recorded);
}

TEST_P(Consent, LatestDecisionByDateWinsAndHistoryIsKept) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  auto first = registry->record(make("P1", Purpose::ai_training, Decision::permit, "20250301"));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->sequence, 1);
  EXPECT_EQ(first->date, "2025-03-01");
  EXPECT_FALSE(first->recorded_at.empty());
  // Recorded later but dated earlier: an old paper form entered late does not override.
  ASSERT_TRUE(registry->record(make("P1", Purpose::ai_training, Decision::deny, "2025-01-01")));
  auto verdict = registry->decide("P1", Purpose::ai_training, kNow);
  ASSERT_TRUE(verdict);
  EXPECT_TRUE(verdict->permitted());
  EXPECT_EQ(verdict->basis, Basis::recorded);
  EXPECT_EQ(verdict->record->date, "2025-03-01");

  // Same date: insertion order decides.
  ASSERT_TRUE(registry->record(make("P1", Purpose::ai_training, Decision::deny, "2025-03-01")));
  EXPECT_FALSE(registry->decide("P1", Purpose::ai_training, kNow)->permitted());

  auto history = registry->history("P1");
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].decision, Decision::permit);
  EXPECT_LT((*history)[0].sequence, (*history)[2].sequence);
  // Purposes are independent.
  EXPECT_FALSE(registry->decide("P1", Purpose::research, kNow)->permitted());
  EXPECT_EQ(registry->decide("P1", Purpose::research, kNow)->basis, Basis::default_policy);
}

TEST_P(Consent, ExpiredAndFutureDecisionsAreIgnored) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  ASSERT_TRUE(registry->record(
      make("P1", Purpose::research, Decision::permit, "2024-01-01", "2025-12-31")));
  EXPECT_FALSE(registry->decide("P1", Purpose::research, kNow)->permitted());
  EXPECT_EQ(registry->decide("P1", Purpose::research, kNow)->basis, Basis::default_policy);
  // The expiry day itself is still covered.
  EXPECT_TRUE(registry->decide("P1", Purpose::research, "2025-12-31T23:00:00Z")->permitted());
  // An older permit without expiry is in force again once the newer one expired.
  ASSERT_TRUE(registry->record(make("P2", Purpose::research, Decision::permit, "2020-01-01")));
  ASSERT_TRUE(
      registry->record(make("P2", Purpose::research, Decision::deny, "2024-01-01", "2025-01-01")));
  EXPECT_TRUE(registry->decide("P2", Purpose::research, kNow)->permitted());
  // A decision dated in the future is not yet in force.
  ASSERT_TRUE(registry->record(make("P3", Purpose::research, Decision::permit, "2030-01-01")));
  EXPECT_FALSE(registry->decide("P3", Purpose::research, kNow)->permitted());
}

// A reader's open (RegistryAccess::read_only): it answers while a writer holds the lock and
// with the file at mode 0444, and refuses every write; a missing registry stays not_found.
TEST_P(Consent, AReadOnlyOpenAnswersAndRefusesWrites) {
  const std::string path = target("consent.db");
  EXPECT_EQ(Registry::open(path, RegistryAccess::read_only).error().code, ErrorCode::not_found);
  {
    auto registry = Registry::open(path);
    ASSERT_TRUE(registry);
    ASSERT_TRUE(registry->record(make("P1", Purpose::research, Decision::permit, "2025-01-01")));
  }
  if (!postgresql())
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::group_read |
                                           std::filesystem::perms::others_read);
  auto writer = raw("consent.db");
  ASSERT_TRUE(writer);
  auto held = store::Transaction::begin(*writer, store::TransactionKind::immediate);
  ASSERT_TRUE(held) << held.error().message;
  const auto start = std::chrono::steady_clock::now();
  auto registry = Registry::open(path, RegistryAccess::read_only);
  ASSERT_TRUE(registry) << registry.error().message;
  auto history = registry->history("P1");
  ASSERT_TRUE(history) << history.error().message;
  EXPECT_EQ(history->size(), 1u);
  EXPECT_TRUE(registry->decide("P1", Purpose::research, kNow)->permitted());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(registry->record(make("P1", Purpose::research, Decision::deny, "2025-02-01")));
  EXPECT_FALSE(registry->set_default(Purpose::research, Decision::permit));
  ASSERT_TRUE(held->commit());
  EXPECT_FALSE(registry->record(make("P1", Purpose::research, Decision::deny, "2025-02-01")));
  EXPECT_EQ(registry->history("P1")->size(), 1u);
}

TEST_P(Consent, HistoryCannotBeRewritten) {
  const std::string path = target("consent.db");
  auto registry = Registry::open(path);
  ASSERT_TRUE(registry);
  ASSERT_TRUE(registry->record(make("P1", Purpose::research, Decision::permit, "2025-01-01")));
  auto db = raw("consent.db");
  ASSERT_TRUE(db);
  EXPECT_FALSE(db->exec("UPDATE consent_decision SET decision = 'deny'"));
  EXPECT_FALSE(db->exec("DELETE FROM consent_decision"));
  if (postgresql()) {
    EXPECT_FALSE(db->exec("TRUNCATE consent_decision"));
  }
  EXPECT_TRUE(registry->decide("P1", Purpose::research, kNow)->permitted());
}

TEST_P(Consent, RefusesADatabaseThatIsNotARegistry) {
  const std::string path = target("ledger.db");
  {
    auto db = raw("ledger.db");
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE ledger_meta(key TEXT)"));
  }
  auto registry = Registry::open(path);
  ASSERT_FALSE(registry);
  EXPECT_EQ(registry.error().code, ErrorCode::integrity);
}

TEST_P(Consent, ReadersRefuseARegistryNotMadeYet) {
  auto missing = Registry::open(target("consent.db"), RegistryAccess::existing_only);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::not_found) << missing.error().message;
  // Nothing was created by the attempt: a writer still makes a fresh registry.
  auto made = Registry::open(target("consent.db"));
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_TRUE(Registry::open(target("consent.db"), RegistryAccess::existing_only));
}

// Writers on several connections at once (exports' shards recording and reading consent):
// every decision is kept, numbered in the order stored.
TEST_P(Consent, ConcurrentWritersLoseNothing) {
  const std::string path = target("consent.db");
  ASSERT_TRUE(Registry::open(path));
  constexpr int kThreads = 4, kEach = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto registry = Registry::open(path, RegistryAccess::existing_only);
      if (!registry) {
        ++failures;
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        if (!registry->record(make("P" + std::to_string(t), Purpose::research,
                                   i % 2 == 0 ? Decision::permit : Decision::deny, "2025-01-01")))
          ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto registry = Registry::open(path, RegistryAccess::existing_only);
  ASSERT_TRUE(registry);
  for (int t = 0; t < kThreads; ++t) {
    auto history = registry->history("P" + std::to_string(t));
    ASSERT_TRUE(history);
    EXPECT_EQ(history->size(), static_cast<std::size_t>(kEach));
    // Same date: the last stored (a deny) decides.
    EXPECT_FALSE(registry->decide("P" + std::to_string(t), Purpose::research, kNow)->permitted());
  }
}

TEST_P(Consent, RejectsMalformedRecords) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  EXPECT_FALSE(registry->record(make("", Purpose::research, Decision::permit, "2025-01-01")));
  auto bad = registry->record(make("P1", Purpose::research, Decision::permit, "01/02/2025"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::usage);
  EXPECT_TRUE(registry->history("P1")->empty());
}

TEST_P(Consent, CurrentListsTheDecisionInForcePerPatientAndPurpose) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  ASSERT_TRUE(registry->record(make("A", Purpose::research, Decision::permit, "2025-01-01")));
  ASSERT_TRUE(registry->record(make("A", Purpose::research, Decision::deny, "2025-02-01")));
  ASSERT_TRUE(registry->record(make("A", Purpose::ai_training, Decision::permit, "2025-02-01")));
  ASSERT_TRUE(registry->record(make("B", Purpose::research, Decision::permit, "2025-01-01")));
  auto all = registry->current(std::nullopt, kNow);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  auto research = registry->current(Purpose::research, kNow);
  ASSERT_EQ(research->size(), 2u);
  EXPECT_EQ((*research)[0].patient_id, "A");
  EXPECT_EQ((*research)[0].decision, Decision::deny);
  EXPECT_EQ((*research)[1].decision, Decision::permit);
}

TEST_P(ConsentImport, CsvWithOptionalColumnsInAnyOrder) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  const std::string csv =
      "purpose,patient_id,decision,date,expires,source\r\n"
      "ai-training,P1,permit,2025-01-01,,portal\r\n"
      "research,\"P,2\",deny,2025-01-02T10:00:00+01:00,2030-01-01,\r\n"
      "\r\n";
  auto summary = registry->import_text(csv, "consents.csv");
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->format, "csv");
  EXPECT_EQ(summary->imported, 2u);
  auto p1 = registry->history("P1");
  ASSERT_EQ(p1->size(), 1u);
  EXPECT_EQ((*p1)[0].source, "portal");
  auto p2 = registry->history("P,2");
  ASSERT_EQ(p2->size(), 1u);
  EXPECT_EQ((*p2)[0].date, "2025-01-02T09:00:00Z");
  EXPECT_EQ((*p2)[0].expires, "2030-01-01");
  EXPECT_EQ((*p2)[0].source, "csv:consents.csv line 3");
  EXPECT_TRUE(registry->decide("P1", Purpose::ai_training, kNow)->permitted());
}

TEST_P(ConsentImport, BadCsvRowIsNamedAndNothingIsImported) {
  const std::string path = target("consent.db");
  auto registry = Registry::open(path);
  ASSERT_TRUE(registry);
  const std::string csv =
      "patient_id,purpose,decision,date\n"
      "SECRET-ID-1,research,permit,2025-01-01\n"
      "SECRET-ID-2,research,maybe,2025-01-01\n"
      "SECRET-ID-3,research,permit,2025-01-01\n";
  auto result = registry->import_text(csv, "consents.csv");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::usage);
  EXPECT_NE(result.error().message.find("line 3"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("decision"), std::string::npos);
  EXPECT_EQ(result.error().message.find("SECRET-ID"), std::string::npos)
      << "errors must not echo patient IDs";
  EXPECT_TRUE(registry->history("SECRET-ID-1")->empty());

  for (const std::string& bad :
       {std::string("patient_id,purpose,decision\nP1,research,permit\n"),
        std::string("patient_id,purpose,decision,date\nP1,tourism,permit,2025-01-01\n"),
        std::string("patient_id,purpose,decision,date\nP1,research,permit,2025-13-01\n"),
        std::string("patient_id,purpose,decision,date\nP1,research,permit\n"),
        std::string("patient_id,purpose,decision,date,colour\n")}) {
    EXPECT_FALSE(registry->import_text(bad, "bad.csv")) << bad;
  }
  EXPECT_TRUE(registry->history("P1")->empty());
}

constexpr std::string_view kConsent = R"({
  "resourceType": "Consent", "id": "c1", "status": "active",
  "patient": {"identifier": {"system": "urn:hospital:mrn", "value": "MRN-7"}},
  "dateTime": "2025-04-01T09:30:00Z",
  "provision": {
    "type": "deny",
    "period": {"end": "2031-01-01"},
    "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}],
    "provision": [{"type": "permit",
                   "purpose": [{"system": "urn:radguard:purpose", "code": "ai-training"}]}]
  }
})";

TEST_P(ConsentImport, FhirConsentResource) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  auto summary = registry->import_text(kConsent, "consent.json");
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->format, "fhir");
  EXPECT_EQ(summary->imported, 2u);
  EXPECT_FALSE(registry->decide("MRN-7", Purpose::research, kNow)->permitted());
  auto ai = registry->decide("MRN-7", Purpose::ai_training, kNow);
  EXPECT_TRUE(ai->permitted());
  EXPECT_EQ(ai->record->source, "fhir:Consent/c1");
  EXPECT_EQ(ai->record->expires, "2031-01-01");
  EXPECT_EQ(ai->record->date, "2025-04-01T09:30:00Z");
}

TEST_P(ConsentImport, FhirBundleIsAllOrNothingAndNamesTheBadEntry) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  const std::string good = R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource": {"resourceType":"Patient","id":"x"}},
    {"resource": {"resourceType":"Consent","id":"a","status":"active","patient":{"reference":"Patient/P-A"},
      "dateTime":"2025-01-01","provision":{"type":"permit","purpose":[{"code":"research"}]}}},
    {"resource": {"resourceType":"Consent","id":"b","status":"inactive","patient":{"reference":"Patient/P-B"},
      "dateTime":"2025-01-01","provision":{"type":"permit","purpose":[{"code":"research"}]}}}]})";
  auto summary = registry->import_text(good, "bundle.json");
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->imported, 1u);
  EXPECT_EQ(summary->skipped, 2u);
  EXPECT_TRUE(registry->decide("P-A", Purpose::research, kNow)->permitted());
  EXPECT_TRUE(registry->history("P-B")->empty());

  const std::string bad = R"({"resourceType":"Bundle","entry":[
    {"resource": {"resourceType":"Consent","id":"ok","status":"active","patient":{"reference":"Patient/P-C"},
      "dateTime":"2025-01-01","provision":{"type":"permit","purpose":[{"code":"research"}]}}},
    {"resource": {"resourceType":"Consent","id":"broken","status":"active","patient":{"reference":"Patient/P-D"},
      "provision":{"type":"permit","purpose":[{"code":"research"}]}}}]})";
  auto result = registry->import_text(bad, "bundle.json");
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("Bundle entry 1 (Consent/broken)"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().message.find("dateTime"), std::string::npos);
  EXPECT_TRUE(registry->history("P-C")->empty()) << "nothing partial is imported";

  EXPECT_FALSE(registry->import_text(R"({"resourceType":"Patient"})", "p.json"));
  EXPECT_FALSE(registry->import_text("{not json", "p.json"));
  EXPECT_FALSE(registry->import_text(
      R"({"resourceType":"Consent","status":"active","patient":{"reference":"Patient/Q"},"dateTime":"2025-01-01",
          "provision":{"type":"permit","purpose":[{"code":"SOMETHING"}]}})",
      "p.json"));
}

TEST_P(ConsentImport, ImportFileReadsFromDisk) {
  auto registry = Registry::open(target("consent.db"));
  ASSERT_TRUE(registry);
  {
    std::ofstream out(dir_ / "c.json");
    out << "\n  " << kConsent;
  }
  auto summary = registry->import_file(dir_ / "c.json");
  ASSERT_TRUE(summary) << summary.error().message;
  EXPECT_EQ(summary->format, "fhir");
  EXPECT_FALSE(registry->import_file(dir_ / "missing.csv"));
}

}  // namespace
}  // namespace radguard::consent
