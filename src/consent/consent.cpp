#include "consent/consent.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/iso_time.hpp"
#include "core/text.hpp"

namespace radguard::consent {

namespace {

constexpr std::array kPurposes = {Purpose::clinical_care,    Purpose::research,
                                  Purpose::ai_training,      Purpose::commercial_ai,
                                  Purpose::cloud_processing, Purpose::cross_border};

constexpr int kSchemaVersion = 1;

// Insert-only history: triggers refuse updates and deletes of decisions, so a mistaken
// decision is corrected by recording a newer one, and the record of what was in force
// when a release happened survives.
constexpr std::string_view kSqliteSchema = R"sql(
CREATE TABLE IF NOT EXISTS registry_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consent_decision(
  sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
  patient_id  TEXT NOT NULL,
  purpose     TEXT NOT NULL CHECK (purpose IN ('clinical-care','research','ai-training','commercial-ai',
                                              'cloud-processing','cross-border')),
  decision    TEXT NOT NULL CHECK (decision IN ('permit','deny')),
  decided_at  TEXT NOT NULL,
  source      TEXT NOT NULL DEFAULT '',
  expires     TEXT,
  recorded_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS consent_by_patient ON consent_decision(patient_id, purpose);
CREATE TRIGGER IF NOT EXISTS consent_decision_no_update BEFORE UPDATE ON consent_decision
  BEGIN SELECT RAISE(ABORT, 'consent history is insert-only'); END;
CREATE TRIGGER IF NOT EXISTS consent_decision_no_delete BEFORE DELETE ON consent_decision
  BEGIN SELECT RAISE(ABORT, 'consent history is insert-only'); END;
CREATE TABLE IF NOT EXISTS default_policy(
  purpose    TEXT PRIMARY KEY,
  decision   TEXT NOT NULL CHECK (decision IN ('permit','deny')),
  changed_at TEXT NOT NULL);
)sql";

// The same on PostgreSQL (TRUNCATE refused as well: it bypasses row triggers). Run once,
// when the schema is created.
constexpr std::string_view kPostgresSchema = R"sql(
CREATE TABLE registry_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE consent_decision(
  sequence    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  patient_id  TEXT NOT NULL,
  purpose     TEXT NOT NULL CHECK (purpose IN ('clinical-care','research','ai-training','commercial-ai',
                                              'cloud-processing','cross-border')),
  decision    TEXT NOT NULL CHECK (decision IN ('permit','deny')),
  decided_at  TEXT NOT NULL,
  source      TEXT NOT NULL DEFAULT '',
  expires     TEXT,
  recorded_at TEXT NOT NULL);
CREATE INDEX consent_by_patient ON consent_decision(patient_id, purpose);
CREATE OR REPLACE FUNCTION radguard_consent_insert_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'consent history is insert-only'; END $$;
CREATE TRIGGER consent_decision_no_update BEFORE UPDATE ON consent_decision
  FOR EACH ROW EXECUTE FUNCTION radguard_consent_insert_only();
CREATE TRIGGER consent_decision_no_delete BEFORE DELETE ON consent_decision
  FOR EACH ROW EXECUTE FUNCTION radguard_consent_insert_only();
CREATE TRIGGER consent_decision_no_truncate BEFORE TRUNCATE ON consent_decision
  FOR EACH STATEMENT EXECUTE FUNCTION radguard_consent_insert_only();
CREATE TABLE default_policy(
  purpose    TEXT PRIMARY KEY,
  decision   TEXT NOT NULL CHECK (decision IN ('permit','deny')),
  changed_at TEXT NOT NULL);
)sql";

// CSV cells and patient IDs alike: the one rule export and the ledger key patients by too.
std::string trim(std::string_view s) { return normalised_patient_id(s); }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Splits CSV text (RFC 4180: quoted fields may hold commas, quotes and newlines) into rows,
// each with the line number it starts on.
struct CsvRow {
  std::size_t line = 0;
  std::vector<std::string> cells;
};

Result<std::vector<CsvRow>> split_csv(std::string_view text) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string cell;
  std::size_t line = 1;
  row.line = 1;
  bool quoted = false, cell_started = false;
  auto end_row = [&] {
    row.cells.push_back(std::move(cell));
    cell.clear();
    const bool blank = row.cells.size() == 1 && trim(row.cells[0]).empty();
    if (!blank) rows.push_back(std::move(row));
    row = CsvRow{};
    cell_started = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"' && !cell_started) {
      quoted = true;
      cell_started = true;
    } else if (c == ',') {
      row.cells.push_back(std::move(cell));
      cell.clear();
      cell_started = false;
    } else if (c == '\n') {
      end_row();
      ++line;
      row.line = line;
    } else if (c != '\r') {
      if (c != ' ' && c != '\t') cell_started = true;
      cell += c;
    }
  }
  if (quoted)
    return fail(ErrorCode::usage,
                "line " + std::to_string(row.line) + ": unterminated quoted field");
  if (!cell.empty() || !row.cells.empty()) end_row();
  return rows;
}

Status check_record(const Record& r) {
  if (normalised_patient_id(r.patient_id).empty())
    return fail(ErrorCode::usage, "patient ID is empty");
  if (r.date.empty()) return fail(ErrorCode::usage, "date is empty");
  if (!normalize_iso8601(r.date)) return fail(ErrorCode::usage, "date is not ISO 8601");
  if (!r.expires.empty() && !normalize_iso8601(r.expires))
    return fail(ErrorCode::usage, "expiry is not ISO 8601");
  return {};
}

std::optional<Purpose> purpose_from_code(const std::string& system, const std::string& code) {
  if (auto p = parse_purpose(code)) return p;
  if (system.empty() || system.find("v3-ActReason") != std::string::npos ||
      system == "urn:oid:2.16.840.1.113883.5.8") {
    if (code == "TREAT" || code == "ETREAT") return Purpose::clinical_care;
    if (code == "HRESCH" || code == "CLINTRCH" || code == "BIORCH") return Purpose::research;
  }
  return std::nullopt;
}

}  // namespace

std::span<const Purpose> all_purposes() { return kPurposes; }

std::string_view purpose_name(Purpose purpose) {
  switch (purpose) {
    case Purpose::clinical_care:
      return "clinical-care";
    case Purpose::research:
      return "research";
    case Purpose::ai_training:
      return "ai-training";
    case Purpose::commercial_ai:
      return "commercial-ai";
    case Purpose::cloud_processing:
      return "cloud-processing";
    case Purpose::cross_border:
      return "cross-border";
  }
  return "research";
}

std::optional<Purpose> parse_purpose(std::string_view name) {
  const std::string n = lower(trim(name));
  for (const Purpose p : kPurposes) {
    if (purpose_name(p) == n) return p;
  }
  return std::nullopt;
}

std::string purpose_names() {
  std::string out;
  for (const Purpose p : kPurposes) {
    if (!out.empty()) out += ", ";
    out += purpose_name(p);
  }
  return out;
}

std::string_view decision_name(Decision decision) {
  return decision == Decision::permit ? "permit" : "deny";
}

std::optional<Decision> parse_decision(std::string_view name) {
  const std::string n = lower(trim(name));
  if (n == "permit") return Decision::permit;
  if (n == "deny") return Decision::deny;
  return std::nullopt;
}

std::string_view basis_name(Basis basis) {
  return basis == Basis::recorded ? "recorded" : "default-policy";
}

Result<std::vector<Record>> parse_csv(std::string_view text, std::string_view source_name) {
  if (text.starts_with("\xEF\xBB\xBF"))
    text.remove_prefix(3);  // a byte-order mark from spreadsheets
  auto rows = split_csv(text);
  if (!rows) return std::unexpected(rows.error());
  if (rows->empty())
    return fail(ErrorCode::usage,
                "the CSV file is empty (expected the header "
                "patient_id,purpose,decision,date)");
  std::map<std::string, std::size_t> column;
  const auto& header = rows->front();
  for (std::size_t i = 0; i < header.cells.size(); ++i) {
    const std::string name = lower(trim(header.cells[i]));
    if (name != "patient_id" && name != "purpose" && name != "decision" && name != "date" &&
        name != "source" && name != "expires")
      return fail(ErrorCode::usage,
                  "line " + std::to_string(header.line) + ": unknown column '" + name +
                      "' (expected patient_id,purpose,decision,date[,source,expires])");
    if (!column.emplace(name, i).second)
      return fail(ErrorCode::usage,
                  "line " + std::to_string(header.line) + ": column '" + name + "' appears twice");
  }
  for (const char* required : {"patient_id", "purpose", "decision", "date"}) {
    if (!column.contains(required))
      return fail(ErrorCode::usage,
                  "line " + std::to_string(header.line) + ": the header lacks the column '" +
                      required + "' (expected patient_id,purpose,decision,date[,source,expires])");
  }
  std::vector<Record> records;
  for (std::size_t r = 1; r < rows->size(); ++r) {
    const CsvRow& row = (*rows)[r];
    const std::string where =
        "line " + std::to_string(row.line) + " (row " + std::to_string(r) + ")";
    if (row.cells.size() != header.cells.size())
      return fail(ErrorCode::usage, where + ": " + std::to_string(row.cells.size()) +
                                        " fields, the header has " +
                                        std::to_string(header.cells.size()));
    auto cell = [&](const char* name) -> std::string {
      const auto it = column.find(name);
      return it == column.end() ? std::string() : trim(row.cells[it->second]);
    };
    Record record;
    record.patient_id = cell("patient_id");
    if (record.patient_id.empty()) return fail(ErrorCode::usage, where + ": patient_id is empty");
    const auto purpose = parse_purpose(cell("purpose"));
    if (!purpose)
      return fail(ErrorCode::usage, where + ": purpose is not one of " + purpose_names());
    record.purpose = *purpose;
    const auto decision = parse_decision(cell("decision"));
    if (!decision) return fail(ErrorCode::usage, where + ": decision is neither permit nor deny");
    record.decision = *decision;
    auto date = normalize_iso8601(cell("date"));
    if (!date) return fail(ErrorCode::usage, where + ": date: " + date.error().message);
    record.date = *date;
    if (const std::string expires = cell("expires"); !expires.empty()) {
      auto normalized = normalize_iso8601(expires);
      if (!normalized)
        return fail(ErrorCode::usage, where + ": expires: " + normalized.error().message);
      record.expires = *normalized;
    }
    record.source = cell("source");
    if (record.source.empty())
      record.source = "csv:" + std::string(source_name) + " line " + std::to_string(row.line);
    records.push_back(std::move(record));
  }
  return records;
}

namespace {

using nlohmann::json;

std::string string_at(const json& object, std::string_view key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// One Consent resource into records. `where` names it for errors.
Status consent_records(const json& resource, const std::string& where, std::vector<Record>& out,
                       std::size_t& skipped) {
  const std::string status = string_at(resource, "status");
  if (status.empty()) return fail(ErrorCode::usage, where + ": Consent.status is missing");
  if (status != "active") {
    ++skipped;  // draft, proposed, rejected, inactive, entered-in-error: not a decision in force
    return {};
  }
  std::string patient;
  if (const auto it = resource.find("patient"); it != resource.end() && it->is_object()) {
    if (const auto id = it->find("identifier"); id != it->end()) patient = string_at(*id, "value");
    if (patient.empty()) {
      const std::string reference = string_at(*it, "reference");
      if (const auto slash = reference.rfind('/');
          reference.starts_with("Patient/") && slash != std::string::npos)
        patient = reference.substr(slash + 1);
    }
  }
  if (patient.empty())
    return fail(
        ErrorCode::usage,
        where + ": Consent.patient has neither identifier.value nor a Patient/<id> reference");
  const std::string date_text = string_at(resource, "dateTime");
  if (date_text.empty()) return fail(ErrorCode::usage, where + ": Consent.dateTime is missing");
  auto date = normalize_iso8601(date_text);
  if (!date) return fail(ErrorCode::usage, where + ": Consent.dateTime: " + date.error().message);
  const std::string id = string_at(resource, "id");
  const std::string source = "fhir:Consent/" + (id.empty() ? std::string("(no id)") : id);

  const auto provision = resource.find("provision");
  if (provision == resource.end() || !provision->is_object())
    return fail(ErrorCode::usage,
                where + ": Consent.provision is missing (it carries the decision and purpose)");

  std::size_t produced = 0;
  // Walks a provision and its nested provisions; an inner type overrides the outer one.
  auto walk = [&](auto&& self, const json& p, std::optional<Decision> inherited,
                  std::string expires, const std::string& path) -> Status {
    std::optional<Decision> type = inherited;
    if (const std::string t = string_at(p, "type"); !t.empty()) {
      type = parse_decision(t);
      if (!type)
        return fail(ErrorCode::usage, where + ": " + path + ".type is neither permit nor deny");
    }
    if (const auto period = p.find("period"); period != p.end()) {
      if (const std::string end = string_at(*period, "end"); !end.empty()) {
        auto normalized = normalize_iso8601(end);
        if (!normalized)
          return fail(ErrorCode::usage,
                      where + ": " + path + ".period.end: " + normalized.error().message);
        expires = *normalized;
      }
    }
    if (const auto purposes = p.find("purpose"); purposes != p.end() && purposes->is_array()) {
      for (std::size_t i = 0; i < purposes->size(); ++i) {
        const json& coding = (*purposes)[i];
        const auto purpose =
            purpose_from_code(string_at(coding, "system"), string_at(coding, "code"));
        const std::string at = path + ".purpose[" + std::to_string(i) + "]";
        if (!purpose)
          return fail(ErrorCode::usage, where + ": " + at + " is not a purpose radguard knows (" +
                                            purpose_names() +
                                            ", or v3-ActReason TREAT, HRESCH, CLINTRCH)");
        if (!type)
          return fail(ErrorCode::usage,
                      where + ": " + path + " has a purpose but no type (permit or deny)");
        Record record;
        record.patient_id = patient;
        record.purpose = *purpose;
        record.decision = *type;
        record.date = *date;
        record.expires = expires;
        record.source = source;
        out.push_back(std::move(record));
        ++produced;
      }
    }
    if (const auto nested = p.find("provision"); nested != p.end() && nested->is_array()) {
      for (std::size_t i = 0; i < nested->size(); ++i) {
        if (auto s = self(self, (*nested)[i], type, expires,
                          path + ".provision[" + std::to_string(i) + "]");
            !s)
          return s;
      }
    }
    return {};
  };
  if (auto s = walk(walk, *provision, std::nullopt, std::string(), "provision"); !s) return s;
  if (produced == 0)
    return fail(ErrorCode::usage,
                where + ": no provision names a purpose, so the consent decides nothing");
  return {};
}

}  // namespace

Result<std::vector<Record>> parse_fhir(std::string_view text, std::size_t& skipped) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail(ErrorCode::usage, "not valid JSON");
  const std::string type = string_at(doc, "resourceType");
  std::vector<Record> records;
  if (type == "Consent") {
    if (auto s = consent_records(doc, "Consent", records, skipped); !s)
      return std::unexpected(s.error());
    return records;
  }
  if (type != "Bundle")
    return fail(ErrorCode::usage,
                "the JSON is neither a FHIR Consent resource nor a Bundle (resourceType)");
  const auto entries = doc.find("entry");
  if (entries == doc.end() || !entries->is_array()) return records;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const json& entry = (*entries)[i];
    const auto resource = entry.is_object() ? entry.find("resource") : entry.end();
    std::string where = "Bundle entry " + std::to_string(i);
    if (resource == entry.end() || !resource->is_object())
      return fail(ErrorCode::usage, where + ": has no resource");
    if (string_at(*resource, "resourceType") != "Consent") {
      ++skipped;  // Patients, Provenance and the like travel in the same bundles
      continue;
    }
    if (const std::string id = string_at(*resource, "id"); !id.empty())
      where += " (Consent/" + id + ")";
    if (auto s = consent_records(*resource, where, records, skipped); !s)
      return std::unexpected(s.error());
  }
  return records;
}

Result<Registry> Registry::open(const std::string& path_or_uri, RegistryAccess access) {
  const bool read_only = access == RegistryAccess::read_only;
  auto db = store::open(path_or_uri, access == RegistryAccess::create_if_missing
                                         ? store::OpenMode::create
                                     : read_only ? store::OpenMode::read_only
                                                 : store::OpenMode::existing);
  const auto missing = [&] {
    return fail(ErrorCode::not_found,
                "the consent registry " + store::display_name(path_or_uri) +
                    " does not exist (radguard consent import or consent set creates it)");
  };
  if (!db) return db.error().code == ErrorCode::not_found ? missing() : std::unexpected(db.error());
  Registry registry(std::move(*db));
  const std::string& name = registry.db_->name();  // printable: no password
  // A reader takes no writers' lock and runs no schema statement: it checks only.
  auto tx = store::Transaction::begin(*registry.db_, read_only ? store::TransactionKind::deferred
                                                               : store::TransactionKind::immediate);
  if (!tx) return std::unexpected(tx.error());
  // Never add registry tables to some other database (a ledger given by mistake).
  auto tables = registry.db_->table_names();
  if (!tables) return std::unexpected(tables.error());
  const bool is_registry =
      std::find(tables->begin(), tables->end(), "registry_meta") != tables->end();
  if (!tables->empty() && !is_registry)
    return fail(ErrorCode::integrity, name + " is a database but not a radguard consent registry");
  const bool postgresql = registry.db_->backend() == store::Backend::postgresql;
  // A server database has no file to be missing: an empty schema is a registry not made yet.
  if (postgresql && !is_registry && access != RegistryAccess::create_if_missing) return missing();
  if (read_only && !is_registry)
    return fail(ErrorCode::integrity, name + " is not a radguard consent registry");
  if (!read_only && (!postgresql || !is_registry)) {
    if (auto s = registry.db_->exec(postgresql ? kPostgresSchema : kSqliteSchema); !s)
      return fail(ErrorCode::integrity,
                  name + " is not a radguard consent registry: " + s.error().message);
  }
  {
    auto version =
        registry.db_->prepare("SELECT value FROM registry_meta WHERE key = 'schema_version'");
    if (!version) return std::unexpected(version.error());
    auto row = (*version)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row && read_only) {
      return fail(ErrorCode::integrity,
                  name + " is not a radguard consent registry (no schema version)");
    } else if (!*row) {
      const std::string now = utc_now_iso8601();
      auto insert = registry.db_->prepare(
          "INSERT INTO registry_meta(key, value) VALUES ('schema_version', ?1)");
      if (!insert) return std::unexpected(insert.error());
      if (auto s = (*insert)->bind_all(std::to_string(kSchemaVersion)); !s)
        return std::unexpected(s.error());
      if (auto s = (*insert)->run(); !s) return std::unexpected(s.error());
      // Fail closed: only clinical care is assumed; every other use needs a recorded permit.
      auto policy = registry.db_->prepare(
          "INSERT INTO default_policy(purpose, decision, changed_at) VALUES (?1, ?2, ?3) "
          "ON CONFLICT DO NOTHING");
      if (!policy) return std::unexpected(policy.error());
      for (const Purpose p : kPurposes) {
        const auto decision = p == Purpose::clinical_care ? Decision::permit : Decision::deny;
        if (auto s = (*policy)->bind_all(purpose_name(p), decision_name(decision), now); !s)
          return std::unexpected(s.error());
        if (auto s = (*policy)->run(); !s) return std::unexpected(s.error());
      }
    } else if ((*version)->text(0) != std::to_string(kSchemaVersion)) {
      return fail(ErrorCode::unsupported,
                  name + " has consent registry schema version " + (*version)->text(0) +
                      "; this radguard reads version " + std::to_string(kSchemaVersion));
    }
  }
  if (auto s = tx->commit(); !s) return std::unexpected(s.error());
  return registry;
}

Result<std::int64_t> Registry::insert(const Record& r, const std::string& recorded_at) {
  if (auto s = check_record(r); !s) return std::unexpected(s.error());
  auto date = normalize_iso8601(r.date);
  std::optional<std::string> expires;
  if (!r.expires.empty()) expires = *normalize_iso8601(r.expires);
  // RETURNING rather than a last-insert id: the same on SQLite and PostgreSQL.
  auto statement = db_->prepare(
      "INSERT INTO consent_decision(patient_id, purpose, decision, decided_at, source, expires, "
      "recorded_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING sequence");
  if (!statement) return std::unexpected(statement.error());
  if (auto s = (*statement)
                   ->bind_all(normalised_patient_id(r.patient_id), purpose_name(r.purpose),
                              decision_name(r.decision),
                              *date, r.source, expires, recorded_at);
      !s)
    return std::unexpected(s.error());
  auto row = (*statement)->step();
  if (!row) return std::unexpected(row.error());
  if (!*row) return fail(ErrorCode::internal, "the registry returned no sequence number");
  const std::int64_t sequence = (*statement)->integer(0);
  if (auto s = (*statement)->reset(); !s) return std::unexpected(s.error());
  return sequence;
}

Result<Record> Registry::record(const Record& record) {
  auto tx = store::Transaction::begin(*db_, store::TransactionKind::immediate);
  if (!tx) return std::unexpected(tx.error());
  const std::string now = utc_now_iso8601();
  auto sequence = insert(record, now);
  if (!sequence) return std::unexpected(sequence.error());
  if (auto s = tx->commit(); !s) return std::unexpected(s.error());
  Record stored = record;
  stored.sequence = *sequence;
  stored.recorded_at = now;
  stored.date = *normalize_iso8601(record.date);
  if (!record.expires.empty()) stored.expires = *normalize_iso8601(record.expires);
  return stored;
}

Status Registry::record_all(std::span<const Record> records) {
  auto tx = store::Transaction::begin(*db_, store::TransactionKind::immediate);
  if (!tx) return std::unexpected(tx.error());
  const std::string now = utc_now_iso8601();
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (auto s = insert(records[i], now); !s) {
      if (records.size() == 1) return std::unexpected(s.error());
      return fail(s.error().code, "record " + std::to_string(i + 1) + " (" + records[i].source +
                                      "): " + s.error().message + "; nothing was stored");
    }
  }
  return tx->commit();
}

Result<ImportSummary> Registry::import_text(std::string_view text, std::string_view source_name) {
  ImportSummary summary;
  std::size_t first = 0;
  while (first < text.size() && std::isspace(static_cast<unsigned char>(text[first]))) ++first;
  if (text.substr(first).starts_with("\xEF\xBB\xBF")) first += 3;
  Result<std::vector<Record>> records;
  if (first < text.size() && text[first] == '{') {
    summary.format = "fhir";
    records = parse_fhir(text, summary.skipped);
  } else {
    summary.format = "csv";
    records = parse_csv(text, source_name);
  }
  if (!records)
    return fail(records.error().code, std::string(source_name) + ": " + records.error().message +
                                          "; nothing was imported");
  if (auto s = record_all(*records); !s) return std::unexpected(s.error());
  summary.imported = records->size();
  return summary;
}

Result<ImportSummary> Registry::import_file(const std::filesystem::path& file) {
  auto text = read_small_file(file);
  if (!text) return std::unexpected(text.error());
  return import_text(*text, file.filename().string());
}

namespace {

Record read_record(const store::Statement& s) {
  Record r;
  r.sequence = s.integer(0);
  r.patient_id = s.text(1);
  r.purpose = parse_purpose(s.text(2)).value_or(Purpose::research);
  r.decision = parse_decision(s.text(3)).value_or(Decision::deny);
  r.date = s.text(4);
  r.source = s.text(5);
  r.expires = s.text(6);
  r.recorded_at = s.text(7);
  return r;
}

constexpr std::string_view kColumns =
    "sequence, patient_id, purpose, decision, decided_at, source, expires, recorded_at";

// Whether a record is in force at `now`: already dated, not yet expired (an expiry date
// covers its whole day).
bool in_force(const Record& r, std::string_view now) {
  if (r.date > now) return false;
  return r.expires.empty() || end_of(r.expires) >= now;
}

// The deciding record among one patient's records for one purpose, in insertion order.
const Record* latest_in_force(const std::vector<const Record*>& records, std::string_view now) {
  const Record* best = nullptr;
  for (const Record* r : records) {
    if (!in_force(*r, now)) continue;
    if (best == nullptr || r->date > best->date ||
        (r->date == best->date && r->sequence > best->sequence))
      best = r;
  }
  return best;
}

}  // namespace

Result<std::vector<Record>> Registry::history(std::string_view patient_id) {
  auto s = db_->prepare(std::string("SELECT ") + std::string(kColumns) +
                        " FROM consent_decision WHERE patient_id = ?1 ORDER BY sequence");
  if (!s) return std::unexpected(s.error());
  if (auto b = (*s)->bind_all(trim(patient_id)); !b) return std::unexpected(b.error());
  std::vector<Record> out;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    out.push_back(read_record(**s));
  }
  return out;
}

Result<Verdict> Registry::decide(std::string_view patient_id, Purpose purpose,
                                 std::string_view now) {
  auto records = history(patient_id);
  if (!records) return std::unexpected(records.error());
  std::vector<const Record*> candidates;
  for (const auto& r : *records) {
    if (r.purpose == purpose) candidates.push_back(&r);
  }
  if (const Record* best = latest_in_force(candidates, now)) {
    return Verdict{best->decision, Basis::recorded, *best};
  }
  auto fallback = default_for(purpose);
  if (!fallback) return std::unexpected(fallback.error());
  return Verdict{*fallback, Basis::default_policy, std::nullopt};
}

Result<std::vector<Record>> Registry::current(std::optional<Purpose> purpose,
                                              std::string_view now) {
  // One purpose's rows only when one is asked for (publish re-checks a whole release's
  // patients against one purpose: the other purposes' history need not be read).
  auto s = db_->prepare(std::string("SELECT ") + std::string(kColumns) + " FROM consent_decision" +
                        (purpose ? " WHERE purpose = ?1" : "") +
                        " ORDER BY patient_id, purpose, sequence");
  if (!s) return std::unexpected(s.error());
  if (purpose)
    if (auto b = (*s)->bind_all(purpose_name(*purpose)); !b) return std::unexpected(b.error());
  std::vector<Record> all;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    all.push_back(read_record(**s));
  }
  std::vector<Record> out;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    std::vector<const Record*> group;
    while (j < all.size() && all[j].patient_id == all[i].patient_id &&
           all[j].purpose == all[i].purpose)
      group.push_back(&all[j++]);
    if (!purpose || all[i].purpose == *purpose) {
      if (const Record* best = latest_in_force(group, now)) out.push_back(*best);
    }
    i = j;
  }
  return out;
}

Result<Decision> Registry::default_for(Purpose purpose) {
  auto s = db_->prepare("SELECT decision FROM default_policy WHERE purpose = ?1");
  if (!s) return std::unexpected(s.error());
  if (auto b = (*s)->bind_all(purpose_name(purpose)); !b) return std::unexpected(b.error());
  auto row = (*s)->step();
  if (!row) return std::unexpected(row.error());
  // A purpose without a row (a registry from before the purpose existed) fails closed.
  if (!*row) return Decision::deny;
  return parse_decision((*s)->text(0)).value_or(Decision::deny);
}

Status Registry::set_default(Purpose purpose, Decision decision) {
  auto s = db_->prepare(
      "INSERT INTO default_policy(purpose, decision, changed_at) VALUES (?1, ?2, ?3) "
      "ON CONFLICT(purpose) DO UPDATE SET decision = excluded.decision, changed_at = "
      "excluded.changed_at");
  if (!s) return std::unexpected(s.error());
  if (auto b = (*s)->bind_all(purpose_name(purpose), decision_name(decision), utc_now_iso8601());
      !b)
    return b;
  return (*s)->run();
}

}  // namespace radguard::consent
