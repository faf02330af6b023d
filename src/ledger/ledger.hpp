#pragma once
// The disclosure ledger: an append-only, hash-chained record of every release, in a SQLite
// file or a PostgreSQL database (store/database.hpp).
//
// Each entry is stored as one canonical JSON text (sorted keys, no whitespace, ASCII only);
// entry_hash = SHA-256("radguard-ledger-v1\n" + prev_hash + "\n" + body), and prev_hash is
// the entry_hash of the entry before (64 zeros for the first). The body names its own
// sequence number, so an edited, deleted or reordered entry breaks the chain.
//
// Patients appear only as keyed hashes (patient_hash): a holder of the key can find a
// patient's disclosures from the patient ID, while the file itself reveals nobody.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "crypto/crypto.hpp"
#include "store/database.hpp"

namespace radguard::ledger {

// The keyed hash under which a patient appears in the ledger: hex HMAC-SHA256 of the trimmed
// patient ID in its own key domain (so it matches no pseudonym written into images).
// Thread-safe.
std::string patient_hash(const crypto::SecretKey& key, std::string_view patient_id);

enum class EntryStatus : std::uint8_t {
  released,  // the release was published; its manifest digest is recorded
  failed,    // nothing was published; `error` says why
};
std::string_view status_name(EntryStatus status);

struct StudyDisclosure {
  std::string study_uid;  // pseudonymous Study Instance UID, as released
  std::uint64_t instances = 0;
  std::vector<std::string> modalities;  // e.g. "CT", sorted
};

struct PatientDisclosure {
  std::string patient_hash;
  std::vector<StudyDisclosure> studies;  // sorted by study_uid
  std::uint64_t instances() const;
};

// How the data were de-identified.
struct ProfileSummary {
  std::string preset;
  std::vector<std::string> options;
  std::uint64_t recipe_overrides = 0;
  std::string method;           // the De-identification Method text written into the images
  std::string key_fingerprint;  // names the key without revealing it
};

struct Entry {
  std::int64_t sequence = 0;  // 1, 2, 3, ... assigned by append()
  std::string recorded_at;    // UTC ISO 8601, assigned by append()
  std::string recipient;
  std::string purpose;
  EntryStatus status = EntryStatus::failed;
  ProfileSummary profile;
  std::string release;        // the release folder's name (empty when nothing was published)
  std::string output_digest;  // hex SHA-256 of the release manifest (released entries)
  std::uint64_t instances = 0;
  std::uint64_t studies = 0;
  std::uint64_t excluded_studies = 0;       // studies withheld for lack of consent
  std::string error;                        // why a failed release failed (no PHI)
  std::vector<PatientDisclosure> patients;  // sorted by patient_hash
  std::string prev_hash;                    // assigned by append()
  std::string entry_hash;                   // assigned by append()
};

// The canonical serialisation hashed into the chain (the stored body).
std::string canonical_body(const Entry& entry);
// The chain hash of an entry body given the previous entry's hash.
std::string chain_hash(std::string_view prev_hash, std::string_view body);

// A plain description of what one patient's part of an entry disclosed, for accountings:
// "3 DICOM instances in 1 study (CT), de-identified with the basic profile (...)".
std::string describe(const Entry& entry, const PatientDisclosure& patient);

struct VerifyReport {
  std::uint64_t entries = 0;
  std::string head_hash;  // entry_hash of the last entry (64 zeros when empty)
  // The first entry found altered, missing or out of place, and why; nullopt when intact.
  std::optional<std::int64_t> first_bad_sequence;
  std::string problem;
  bool intact() const { return !first_bad_sequence.has_value(); }
};

enum class LedgerAccess : std::uint8_t {
  create_if_missing,  // exporters: the first release creates the ledger (mode 0600)
  existing_only,      // readers: a mistyped path fails instead of reading an empty ledger
  read_only,          // readers that must change nothing (ledger verify, disclosures, the
                      // officer's page): as existing_only, but the store is opened read-only
                      // (store::OpenMode::read_only: a 0444 file opens, no writers' lock,
                      // no schema statement); append() fails
};

// An open ledger. Not thread-safe: open one per thread or process. Appends from any number
// of connections are serialised (SQLite's BEGIN IMMEDIATE; PostgreSQL's advisory lock on the
// ledger's schema, taken before the chain head is read; either waits up to 30 s), so
// concurrent exports lose no entry and each entry links to the one committed before it.
class Ledger {
 public:
  // Opens a path, a "file:" URI or a PostgreSQL target (store/database.hpp). Fails with
  // ErrorCode::not_found (existing_only and missing: no file, or an empty PostgreSQL
  // schema), ErrorCode::io (including a server that cannot be reached: fail closed), or
  // ErrorCode::integrity when the database is not a radguard ledger. Messages never carry
  // a password.
  [[nodiscard]] static Result<Ledger> open(const std::string& path_or_uri, LedgerAccess access);

  // Appends `entry` (sequence, recorded_at and hashes are assigned) and returns it as
  // stored. `before_commit`, when given, runs while the ledger's write lock is held and
  // the entry is written but not committed: if it fails the entry is rolled back and its
  // error returned, so an action (publishing a release) and its record stand or fall
  // together. The first append records entry.profile.key_fingerprint as the ledger's key;
  // an entry made with another key fails with ErrorCode::key (one ledger, one key). Fails
  // with ErrorCode::io (busy beyond the timeout, storage errors).
  [[nodiscard]] Result<Entry> append(Entry entry,
                                     const std::function<Status()>& before_commit = {});

  // Checks every entry's hash, its link to the previous entry, its position and that its
  // indexed columns and patient index agree with the hashed body. Fails only when the
  // ledger cannot be read; tampering is reported in the VerifyReport.
  [[nodiscard]] Result<VerifyReport> verify();

  // The entries naming `patient_hash`, oldest first, optionally only those recorded at or
  // after `since` (normalised ISO 8601). Each entry's `patients` holds only that patient.
  [[nodiscard]] Result<std::vector<Entry>> entries_for(std::string_view patient_hash,
                                                       std::optional<std::string> since,
                                                       EntryStatus only = EntryStatus::released);

  // Every entry, oldest first.
  [[nodiscard]] Result<std::vector<Entry>> all();

  // The fingerprint of the secret key this ledger's patient hashes are made with: recorded
  // by the first append (ledger_meta), or, in a ledger written before it was recorded, the
  // first entry's. nullopt for a ledger with no entry yet.
  [[nodiscard]] Result<std::optional<std::string>> key_fingerprint();

  // Fails with ErrorCode::key when `fingerprint` is not the ledger's key's (a patient's
  // disclosures cannot be found with another key: an accounting would wrongly say none).
  // An empty ledger accepts any key.
  [[nodiscard]] Status check_key(std::string_view fingerprint);

 private:
  explicit Ledger(std::unique_ptr<store::Database> db) : db_(std::move(db)) {}
  std::unique_ptr<store::Database> db_;
};

}  // namespace radguard::ledger
