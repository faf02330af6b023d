#include "ledger/ledger.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/iso_time.hpp"
#include "core/text.hpp"

namespace radguard::ledger {

namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;
const std::string kGenesis(64, '0');

// Append-only by construction: triggers refuse updates and deletes, so only someone
// deliberately dropping them can change history, and verify() then detects it.
constexpr std::string_view kSqliteSchema = R"sql(
CREATE TABLE IF NOT EXISTS ledger_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS disclosure(
  sequence    INTEGER PRIMARY KEY,
  recorded_at TEXT NOT NULL,
  recipient   TEXT NOT NULL,
  purpose     TEXT NOT NULL,
  status      TEXT NOT NULL,
  body        TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  entry_hash  TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS disclosure_patient(
  patient_hash TEXT NOT NULL,
  sequence     INTEGER NOT NULL,
  PRIMARY KEY (patient_hash, sequence)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS disclosure_no_update BEFORE UPDATE ON disclosure
  BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosure_no_delete BEFORE DELETE ON disclosure
  BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosure_patient_no_update BEFORE UPDATE ON disclosure_patient
  BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS disclosure_patient_no_delete BEFORE DELETE ON disclosure_patient
  BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
)sql";

// The same on PostgreSQL, with TRUNCATE refused as well (it bypasses row triggers). Run once,
// when the schema is created, so a reader's role needs no CREATE privilege.
constexpr std::string_view kPostgresSchema = R"sql(
CREATE TABLE ledger_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE disclosure(
  sequence    BIGINT PRIMARY KEY,
  recorded_at TEXT NOT NULL,
  recipient   TEXT NOT NULL,
  purpose     TEXT NOT NULL,
  status      TEXT NOT NULL,
  body        TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  entry_hash  TEXT NOT NULL);
CREATE TABLE disclosure_patient(
  patient_hash TEXT NOT NULL,
  sequence     BIGINT NOT NULL,
  PRIMARY KEY (patient_hash, sequence));
CREATE OR REPLACE FUNCTION radguard_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'the disclosure ledger is append-only'; END $$;
CREATE TRIGGER disclosure_no_update BEFORE UPDATE ON disclosure
  FOR EACH ROW EXECUTE FUNCTION radguard_ledger_append_only();
CREATE TRIGGER disclosure_no_delete BEFORE DELETE ON disclosure
  FOR EACH ROW EXECUTE FUNCTION radguard_ledger_append_only();
CREATE TRIGGER disclosure_no_truncate BEFORE TRUNCATE ON disclosure
  FOR EACH STATEMENT EXECUTE FUNCTION radguard_ledger_append_only();
CREATE TRIGGER disclosure_patient_no_update BEFORE UPDATE ON disclosure_patient
  FOR EACH ROW EXECUTE FUNCTION radguard_ledger_append_only();
CREATE TRIGGER disclosure_patient_no_delete BEFORE DELETE ON disclosure_patient
  FOR EACH ROW EXECUTE FUNCTION radguard_ledger_append_only();
CREATE TRIGGER disclosure_patient_no_truncate BEFORE TRUNCATE ON disclosure_patient
  FOR EACH STATEMENT EXECUTE FUNCTION radguard_ledger_append_only();
)sql";

std::string key_mismatch(std::string_view given, std::string_view recorded) {
  return "the key given (fingerprint " + std::string(given) +
         ") is not the key of this ledger (fingerprint " + std::string(recorded) +
         "): patients cannot be found with it; use the key the exports used";
}

Status remember_key(store::Database& db, std::string_view fingerprint) {
  auto insert = db.prepare(
      "INSERT INTO ledger_meta(key, value) VALUES ('key_fingerprint', ?1) ON CONFLICT DO NOTHING");
  if (!insert) return std::unexpected(insert.error());
  if (auto s = (*insert)->bind_all(fingerprint); !s) return s;
  return (*insert)->run();
}

json to_json(const Entry& e) {
  json patients = json::array();
  for (const auto& p : e.patients) {
    json studies = json::array();
    for (const auto& s : p.studies)
      studies.push_back(
          {{"study_uid", s.study_uid}, {"instances", s.instances}, {"modalities", s.modalities}});
    patients.push_back({{"patient_hash", p.patient_hash}, {"studies", studies}});
  }
  return {
      {"format", kFormatVersion},
      {"sequence", e.sequence},
      {"recorded_at", e.recorded_at},
      {"recipient", e.recipient},
      {"purpose", e.purpose},
      {"status", status_name(e.status)},
      {"profile",
       {{"preset", e.profile.preset},
        {"options", e.profile.options},
        {"recipe_overrides", e.profile.recipe_overrides},
        {"method", e.profile.method},
        {"key_fingerprint", e.profile.key_fingerprint}}},
      {"release", e.release},
      {"output_digest", e.output_digest},
      {"counts",
       {{"instances", e.instances},
        {"studies", e.studies},
        {"excluded_studies", e.excluded_studies}}},
      {"error", e.error},
      {"patients", patients},
  };
}

template <typename T>
T value_or(const json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

std::optional<Entry> from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  Entry e;
  e.sequence = value_or<std::int64_t>(j, "sequence", 0);
  e.recorded_at = value_or<std::string>(j, "recorded_at", "");
  e.recipient = value_or<std::string>(j, "recipient", "");
  e.purpose = value_or<std::string>(j, "purpose", "");
  const std::string status = value_or<std::string>(j, "status", "");
  e.status = status == "released" ? EntryStatus::released : EntryStatus::failed;
  const json profile = value_or<json>(j, "profile", json::object());
  e.profile.preset = value_or<std::string>(profile, "preset", "");
  e.profile.options = value_or<std::vector<std::string>>(profile, "options", {});
  e.profile.recipe_overrides = value_or<std::uint64_t>(profile, "recipe_overrides", 0);
  e.profile.method = value_or<std::string>(profile, "method", "");
  e.profile.key_fingerprint = value_or<std::string>(profile, "key_fingerprint", "");
  e.release = value_or<std::string>(j, "release", "");
  e.output_digest = value_or<std::string>(j, "output_digest", "");
  const json counts = value_or<json>(j, "counts", json::object());
  e.instances = value_or<std::uint64_t>(counts, "instances", 0);
  e.studies = value_or<std::uint64_t>(counts, "studies", 0);
  e.excluded_studies = value_or<std::uint64_t>(counts, "excluded_studies", 0);
  e.error = value_or<std::string>(j, "error", "");
  for (const json& p : value_or<json>(j, "patients", json::array())) {
    PatientDisclosure patient;
    patient.patient_hash = value_or<std::string>(p, "patient_hash", "");
    for (const json& s : value_or<json>(p, "studies", json::array())) {
      patient.studies.push_back({value_or<std::string>(s, "study_uid", ""),
                                 value_or<std::uint64_t>(s, "instances", 0),
                                 value_or<std::vector<std::string>>(s, "modalities", {})});
    }
    e.patients.push_back(std::move(patient));
  }
  return e;
}

struct Row {
  std::int64_t sequence = 0;
  std::string recorded_at, recipient, purpose, status, body, prev_hash, entry_hash;
};

constexpr std::string_view kRowColumns =
    "sequence, recorded_at, recipient, purpose, status, body, prev_hash, entry_hash";

Row read_row(const store::Statement& s) {
  return Row{s.integer(0), s.text(1), s.text(2), s.text(3),
             s.text(4),    s.text(5), s.text(6), s.text(7)};
}

Result<Entry> entry_from_row(const Row& row) {
  const json j = json::parse(row.body, nullptr, /*allow_exceptions=*/false);
  auto entry = j.is_discarded() ? std::nullopt : from_json(j);
  if (!entry)
    return fail(ErrorCode::integrity,
                "ledger entry " + std::to_string(row.sequence) + " has an unreadable body");
  entry->prev_hash = row.prev_hash;
  entry->entry_hash = row.entry_hash;
  return *entry;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

std::string patient_hash(const crypto::SecretKey& key, std::string_view patient_id) {
  return crypto::to_hex(key.derive("radguard-ledger-patient-v1", normalised_patient_id(patient_id)));
}

std::string_view status_name(EntryStatus status) {
  return status == EntryStatus::released ? "released" : "failed";
}

std::uint64_t PatientDisclosure::instances() const {
  std::uint64_t n = 0;
  for (const auto& s : studies) n += s.instances;
  return n;
}

std::string canonical_body(const Entry& entry) {
  // Sorted keys (nlohmann's default object), no whitespace, \u escapes for anything beyond
  // ASCII, invalid UTF-8 replaced: one byte sequence per entry, whatever wrote it.
  return to_json(entry).dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
}

std::string chain_hash(std::string_view prev_hash, std::string_view body) {
  std::string input = "radguard-ledger-v1\n";
  input.append(prev_hash);
  input.push_back('\n');
  input.append(body);
  return crypto::to_hex(crypto::sha256(input));
}

std::string describe(const Entry& entry, const PatientDisclosure& patient) {
  std::set<std::string> modalities;
  for (const auto& s : patient.studies) modalities.insert(s.modalities.begin(), s.modalities.end());
  std::ostringstream out;
  out << plural(patient.instances(), "DICOM instance", "DICOM instances") << " in "
      << plural(patient.studies.size(), "study", "studies");
  if (!modalities.empty()) {
    out << " (";
    bool first = true;
    for (const auto& m : modalities) {
      out << (first ? "" : ", ") << m;
      first = false;
    }
    out << ")";
  }
  out << ", de-identified with the " << entry.profile.preset << " profile";
  if (!entry.profile.options.empty()) {
    out << " (options:";
    for (const auto& o : entry.profile.options) out << " " << o;
    out << ")";
  }
  if (entry.profile.recipe_overrides > 0)
    out << " and " << plural(entry.profile.recipe_overrides, "recipe override", "recipe overrides");
  out << "; part of release " << entry.release << " ("
      << plural(entry.instances, "instance", "instances") << " in all, manifest SHA-256 "
      << entry.output_digest << ")";
  if (entry.status == EntryStatus::failed) out << "; FAILED, nothing was released: " << entry.error;
  return out.str();
}

Result<Ledger> Ledger::open(const std::string& path_or_uri, LedgerAccess access) {
  const bool read_only = access == LedgerAccess::read_only;
  auto db = store::open(path_or_uri, access == LedgerAccess::create_if_missing
                                         ? store::OpenMode::create
                                     : read_only ? store::OpenMode::read_only
                                                 : store::OpenMode::existing);
  if (!db) return std::unexpected(db.error());
  Ledger ledger(std::move(*db));
  const std::string& name = ledger.db_->name();  // printable: no password
  // A reader takes no writers' lock and runs no schema statement: it checks only.
  auto tx = store::Transaction::begin(*ledger.db_, read_only ? store::TransactionKind::deferred
                                                             : store::TransactionKind::immediate);
  if (!tx) return std::unexpected(tx.error());
  // Never add ledger tables to some other database (a consent registry given by mistake),
  // and never let a reader turn an empty file into a ledger.
  auto tables = ledger.db_->table_names();
  if (!tables) return std::unexpected(tables.error());
  const bool is_ledger = std::find(tables->begin(), tables->end(), "ledger_meta") != tables->end();
  const bool postgresql = ledger.db_->backend() == store::Backend::postgresql;
  // A server database has no file to be missing: an empty schema is a ledger not made yet.
  const bool create = access == LedgerAccess::create_if_missing;
  if (postgresql && tables->empty() && !create)
    return fail(ErrorCode::not_found, "the disclosure ledger " + name + " does not exist yet");
  if (!is_ledger && (!tables->empty() || !create))
    return fail(ErrorCode::integrity, name + " is not a radguard disclosure ledger");
  if (!read_only && (!postgresql || !is_ledger)) {
    if (auto s = ledger.db_->exec(postgresql ? kPostgresSchema : kSqliteSchema); !s)
      return fail(ErrorCode::integrity,
                  name + " is not a radguard disclosure ledger: " + s.error().message);
  }
  {
    auto meta = ledger.db_->prepare("SELECT value FROM ledger_meta WHERE key = 'format'");
    if (!meta) return std::unexpected(meta.error());
    auto row = (*meta)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row && read_only) {
      return fail(ErrorCode::integrity, name + " is not a radguard disclosure ledger (no format)");
    } else if (!*row) {
      auto insert =
          ledger.db_->prepare("INSERT INTO ledger_meta(key, value) VALUES ('format', ?1)");
      if (!insert) return std::unexpected(insert.error());
      if (auto s = (*insert)->bind_all(std::to_string(kFormatVersion)); !s)
        return std::unexpected(s.error());
      if (auto s = (*insert)->run(); !s) return std::unexpected(s.error());
    } else if ((*meta)->text(0) != std::to_string(kFormatVersion)) {
      return fail(ErrorCode::unsupported, name + " has ledger format " + (*meta)->text(0) +
                                              "; this radguard reads format " +
                                              std::to_string(kFormatVersion));
    }
  }
  if (auto s = tx->commit(); !s) return std::unexpected(s.error());
  return ledger;
}

Result<Entry> Ledger::append(Entry entry, const std::function<Status()>& before_commit) {
  std::sort(entry.patients.begin(), entry.patients.end(),
            [](const auto& a, const auto& b) { return a.patient_hash < b.patient_hash; });
  for (auto& p : entry.patients) {
    std::sort(p.studies.begin(), p.studies.end(),
              [](const auto& a, const auto& b) { return a.study_uid < b.study_uid; });
    for (auto& s : p.studies) std::sort(s.modalities.begin(), s.modalities.end());
  }
  // The write lock is taken before reading the head, so two appenders cannot both link to
  // the same predecessor.
  auto tx = store::Transaction::begin(*db_, store::TransactionKind::immediate);
  if (!tx) return std::unexpected(with_context(tx.error(), "appending to the ledger"));
  {
    auto head =
        db_->prepare("SELECT sequence, entry_hash FROM disclosure ORDER BY sequence DESC LIMIT 1");
    if (!head) return std::unexpected(head.error());
    auto row = (*head)->step();
    if (!row) return std::unexpected(row.error());
    entry.sequence = *row ? (*head)->integer(0) + 1 : 1;
    entry.prev_hash = *row ? (*head)->text(1) : kGenesis;
  }
  // One ledger, one key: patient hashes under another key could never be found again.
  if (!entry.profile.key_fingerprint.empty()) {
    auto recorded = key_fingerprint();
    if (!recorded) return std::unexpected(recorded.error());
    if (*recorded && *recorded != entry.profile.key_fingerprint)
      return fail(ErrorCode::key, key_mismatch(entry.profile.key_fingerprint, **recorded));
    if (auto s = remember_key(*db_, entry.profile.key_fingerprint); !s)
      return std::unexpected(s.error());
  }
  entry.recorded_at = utc_now_iso8601();
  const std::string body = canonical_body(entry);
  entry.entry_hash = chain_hash(entry.prev_hash, body);
  {
    auto insert = db_->prepare("INSERT INTO disclosure(" + std::string(kRowColumns) +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!insert) return std::unexpected(insert.error());
    if (auto s =
            (*insert)->bind_all(entry.sequence, entry.recorded_at, entry.recipient, entry.purpose,
                                status_name(entry.status), body, entry.prev_hash, entry.entry_hash);
        !s)
      return std::unexpected(s.error());
    if (auto s = (*insert)->run(); !s) return std::unexpected(s.error());
    auto index = db_->prepare(
        "INSERT INTO disclosure_patient(patient_hash, sequence) VALUES (?1, ?2) ON CONFLICT DO "
        "NOTHING");
    if (!index) return std::unexpected(index.error());
    for (const auto& p : entry.patients) {
      if (auto s = (*index)->bind_all(p.patient_hash, entry.sequence); !s)
        return std::unexpected(s.error());
      if (auto s = (*index)->run(); !s) return std::unexpected(s.error());
    }
  }
  if (before_commit) {
    if (auto s = before_commit(); !s) return std::unexpected(s.error());
  }
  if (auto s = tx->commit(); !s)
    return std::unexpected(with_context(s.error(), "committing the ledger entry"));
  return entry;
}

Result<VerifyReport> Ledger::verify() {
  VerifyReport report;
  report.head_hash = kGenesis;
  // One read transaction: a consistent snapshot even while exports append.
  auto tx = store::Transaction::begin(*db_, store::TransactionKind::deferred);
  if (!tx) return std::unexpected(tx.error());
  std::map<std::int64_t, std::set<std::string>> index;
  {
    auto s = db_->prepare("SELECT patient_hash, sequence FROM disclosure_patient");
    if (!s) return std::unexpected(s.error());
    for (;;) {
      auto row = (*s)->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      index[(*s)->integer(1)].insert((*s)->text(0));
    }
  }
  auto s =
      db_->prepare("SELECT " + std::string(kRowColumns) + " FROM disclosure ORDER BY sequence");
  if (!s) return std::unexpected(s.error());
  std::int64_t expected = 1;
  std::string prev = kGenesis;
  auto bad = [&](std::int64_t sequence, std::string why) {
    report.first_bad_sequence = sequence;
    report.problem = std::move(why);
    return report;
  };
  for (;;) {
    auto stepped = (*s)->step();
    if (!stepped) return std::unexpected(stepped.error());
    if (!*stepped) break;
    const Row row = read_row(**s);
    const std::string label = "entry " + std::to_string(row.sequence);
    if (row.sequence != expected) {
      if (row.sequence > expected)
        return bad(expected, "entry " + std::to_string(expected) +
                                 " is missing (deleted): the next entry is " +
                                 std::to_string(row.sequence));
      return bad(row.sequence, label + " is out of place");
    }
    if (row.prev_hash != prev)
      return bad(
          row.sequence,
          label + " does not link to the entry before it (deleted, inserted or reordered entry)");
    if (chain_hash(row.prev_hash, row.body) != row.entry_hash)
      return bad(row.sequence, label + " was altered: its hash does not match its content");
    auto entry = entry_from_row(row);
    if (!entry) return bad(row.sequence, label + " has an unreadable body");
    if (entry->sequence != row.sequence)
      return bad(row.sequence, label + " was moved from position " +
                                   std::to_string(entry->sequence) + " (reordered)");
    if (entry->recorded_at != row.recorded_at || entry->recipient != row.recipient ||
        entry->purpose != row.purpose || status_name(entry->status) != row.status)
      return bad(row.sequence,
                 label + " was altered: its columns disagree with its hashed content");
    std::set<std::string> hashes;
    for (const auto& p : entry->patients) hashes.insert(p.patient_hash);
    if (index[row.sequence] != hashes)
      return bad(row.sequence,
                 label + " was altered: the patient index disagrees with its hashed content");
    index.erase(row.sequence);
    prev = row.entry_hash;
    ++expected;
    ++report.entries;
  }
  report.head_hash = prev;
  if (!index.empty())
    return bad(index.begin()->first, "the patient index names entry " +
                                         std::to_string(index.begin()->first) +
                                         ", which does not exist (deleted)");
  return report;
}

Result<std::vector<Entry>> Ledger::entries_for(std::string_view patient_hash,
                                               std::optional<std::string> since, EntryStatus only) {
  auto s = db_->prepare("SELECT " + std::string(kRowColumns) +
                        " FROM disclosure WHERE sequence IN "
                        "(SELECT sequence FROM disclosure_patient WHERE patient_hash = ?1) "
                        "AND status = ?2 AND recorded_at >= ?3 ORDER BY sequence");
  if (!s) return std::unexpected(s.error());
  if (auto b = (*s)->bind_all(patient_hash, status_name(only), since.value_or("")); !b)
    return std::unexpected(b.error());
  std::vector<Entry> out;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto entry = entry_from_row(read_row(**s));
    if (!entry) return std::unexpected(entry.error());
    std::erase_if(entry->patients, [&](const auto& p) { return p.patient_hash != patient_hash; });
    out.push_back(std::move(*entry));
  }
  return out;
}

Result<std::optional<std::string>> Ledger::key_fingerprint() {
  {
    auto meta = db_->prepare("SELECT value FROM ledger_meta WHERE key = 'key_fingerprint'");
    if (!meta) return std::unexpected(meta.error());
    auto row = (*meta)->step();
    if (!row) return std::unexpected(row.error());
    if (*row && !(*meta)->text(0).empty()) return std::optional<std::string>((*meta)->text(0));
  }
  auto s =
      db_->prepare("SELECT " + std::string(kRowColumns) + " FROM disclosure ORDER BY sequence");
  if (!s) return std::unexpected(s.error());
  for (;;) {
    auto row = (*s)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto entry = entry_from_row(read_row(**s));
    if (!entry) return std::unexpected(entry.error());
    if (!entry->profile.key_fingerprint.empty())
      return std::optional<std::string>(entry->profile.key_fingerprint);
  }
  return std::optional<std::string>();
}

Status Ledger::check_key(std::string_view fingerprint) {
  auto recorded = key_fingerprint();
  if (!recorded) return std::unexpected(recorded.error());
  if (*recorded && **recorded != fingerprint)
    return fail(ErrorCode::key, key_mismatch(fingerprint, **recorded));
  return {};
}

Result<std::vector<Entry>> Ledger::all() {
  auto s =
      db_->prepare("SELECT " + std::string(kRowColumns) + " FROM disclosure ORDER BY sequence");
  if (!s) return std::unexpected(s.error());
  std::vector<Entry> out;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    auto entry = entry_from_row(read_row(**s));
    if (!entry) return std::unexpected(entry.error());
    out.push_back(std::move(*entry));
  }
  return out;
}

}  // namespace radguard::ledger
