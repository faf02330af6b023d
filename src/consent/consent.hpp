#pragma once
// The consent registry: each patient's decisions, per purpose of use, kept as an insert-only
// history in one SQLite database or PostgreSQL schema (store/database.hpp; the hospital's
// internal system of record).
//
// Patient IDs are stored as given (not hashed): the registry must answer "what did patient
// X decide?" for staff without the de-identification key, and importing from the hospital's
// consent systems must not need that key either. It is created with mode 0600 and never
// leaves the hospital; what leaves (the ledger, manifests) carries keyed hashes only.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "store/database.hpp"

namespace radguard::consent {

enum class Purpose : std::uint8_t {
  clinical_care,
  research,
  ai_training,
  commercial_ai,
  cloud_processing,
  cross_border,
};

// Every purpose, in declaration order.
std::span<const Purpose> all_purposes();
// "clinical-care", "research", "ai-training", "commercial-ai", "cloud-processing", "cross-border".
std::string_view purpose_name(Purpose purpose);
std::optional<Purpose> parse_purpose(std::string_view name);
// The names joined with ", " (for usage messages).
std::string purpose_names();

enum class Decision : std::uint8_t { permit, deny };
std::string_view decision_name(Decision decision);
std::optional<Decision> parse_decision(std::string_view name);

// One recorded decision.
struct Record {
  std::string patient_id;
  Purpose purpose = Purpose::research;
  Decision decision = Decision::deny;
  std::string date;     // normalised ISO 8601 (core/iso_time.hpp): when the patient decided
  std::string source;   // where it came from ("csv:consents.csv line 4", "fhir:Consent/17", "cli")
  std::string expires;  // normalised ISO 8601, or empty: never
  std::int64_t sequence = 0;  // insertion order, assigned by the registry
  std::string recorded_at;    // when the registry stored it, assigned by the registry
};

// Why a patient is, or is not, permitted a purpose.
enum class Basis : std::uint8_t {
  recorded,        // the patient's latest decision in force
  default_policy,  // no decision in force (none recorded, all expired or not yet dated)
};
std::string_view basis_name(Basis basis);

struct Verdict {
  Decision decision = Decision::deny;
  Basis basis = Basis::default_policy;
  std::optional<Record> record;  // the deciding record when basis is recorded
  bool permitted() const { return decision == Decision::permit; }
};

struct ImportSummary {
  std::size_t imported = 0;  // decisions stored
  std::size_t skipped = 0;  // FHIR resources not in force (status other than active) or not Consent
  std::string format;       // "csv" or "fhir"
};

// Parses a CSV export (header patient_id,purpose,decision,date with optional source,expires,
// in any order). Fails with ErrorCode::usage naming the line; messages never echo cell
// values. `source_name` prefixes each record's source.
[[nodiscard]] Result<std::vector<Record>> parse_csv(std::string_view text,
                                                    std::string_view source_name);

// Parses a FHIR R4 Consent resource or a Bundle of them (JSON). Each provision purpose
// (v3-ActReason TREAT, HRESCH, CLINTRCH, or a radguard purpose name as code in any system)
// becomes one record; nested provisions override the outer type. Fails with
// ErrorCode::usage naming the Bundle entry. `skipped` counts resources not in force.
[[nodiscard]] Result<std::vector<Record>> parse_fhir(std::string_view text, std::size_t& skipped);

enum class RegistryAccess : std::uint8_t {
  create_if_missing,  // consent import, consent set: the first decision creates it (0600)
  existing_only,      // everything that only reads it, and export
  read_only,          // readers that must change nothing (the officer's page): as
                      // existing_only, but the store is opened read-only
                      // (store::OpenMode::read_only: a 0444 file opens, no writers' lock, no
                      // schema statement); record(), import and set_default fail
};

// An open registry. Not thread-safe: open one per thread (writers are serialised across
// threads, processes and machines: SQLite's write lock, PostgreSQL's advisory lock; readers
// and writers wait up to 30 s).
class Registry {
 public:
  // Opens (creating when missing) the registry at a path, "file:" URI or PostgreSQL target
  // (an empty PostgreSQL schema counts as missing), creating the schema
  // and the out-of-the-box default policy (every purpose denied but clinical care). Fails
  // with ErrorCode::io, or ErrorCode::integrity when the file is not a radguard registry.
  // With RegistryAccess::existing_only a missing registry fails with ErrorCode::not_found
  // (readers: a mistyped path must not become a fresh registry that denies everything).
  [[nodiscard]] static Result<Registry> open(
      const std::string& path_or_uri, RegistryAccess access = RegistryAccess::create_if_missing);

  // Appends one decision (history is never overwritten) and returns it as stored, with its
  // sequence and recorded_at assigned and its dates normalised. The record's patient_id,
  // date and decision must be set. Fails with ErrorCode::usage for a malformed record,
  // ErrorCode::io on storage errors.
  [[nodiscard]] Result<Record> record(const Record& record);

  // Parses FILE (CSV or FHIR JSON, told apart by content) and stores every decision in one
  // transaction: on any error nothing is stored. Fails with ErrorCode::usage naming the
  // bad row or entry, ErrorCode::io when the file cannot be read.
  [[nodiscard]] Result<ImportSummary> import_file(const std::filesystem::path& file);
  // The same for text already in memory.
  [[nodiscard]] Result<ImportSummary> import_text(std::string_view text,
                                                  std::string_view source_name);
  // Stores records all-or-nothing.
  [[nodiscard]] Status record_all(std::span<const Record> records);

  // Every decision recorded for a patient, oldest insertion first.
  [[nodiscard]] Result<std::vector<Record>> history(std::string_view patient_id);

  // The decision in force for a patient and purpose at `now` (normalised ISO 8601): the
  // latest by date, then by insertion, among records dated no later than now and not
  // expired; the default policy otherwise.
  [[nodiscard]] Result<Verdict> decide(std::string_view patient_id, Purpose purpose,
                                       std::string_view now);

  // The decisions in force at `now` for every patient with a record (for `consent list`),
  // optionally for one purpose, ordered by patient then purpose.
  [[nodiscard]] Result<std::vector<Record>> current(std::optional<Purpose> purpose,
                                                    std::string_view now);

  [[nodiscard]] Result<Decision> default_for(Purpose purpose);
  [[nodiscard]] Status set_default(Purpose purpose, Decision decision);

 private:
  explicit Registry(std::unique_ptr<store::Database> db) : db_(std::move(db)) {}
  [[nodiscard]] Result<std::int64_t> insert(const Record& record, const std::string& recorded_at);
  std::unique_ptr<store::Database> db_;
};

}  // namespace radguard::consent
