#pragma once
// A release done the right way: only studies whose patient permitted the purpose are
// de-identified, the release is published as a whole or not at all, and every attempt is
// recorded in the disclosure ledger.
//
// Publication protocol (see docs/consent-and-ledger.md): everything is written into
// OUTDIR/.staging-<release>/, the manifest last; then, inside the ledger's write
// transaction, the staging folder is renamed to OUTDIR/<release>/ and the entry committed.
// On any failure the staging folder is deleted and a `failed` entry is appended, so a
// folder named release-* exists only for a committed `released` entry.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "consent/consent.hpp"
#include "core/result.hpp"
#include "crypto/crypto.hpp"
#include "deid/deid_run.hpp"
#include "deid/header_stage.hpp"
#include "export/release_check.hpp"
#include "ledger/ledger.hpp"
#include "signing/manifest.hpp"

namespace radguard::exporter {

// Why a study was withheld. Reported as counts only: the release never names patients.
enum class Exclusion : std::uint8_t {
  consent_denied,       // the patient's decision in force denies the purpose
  no_consent,           // no decision in force; the default policy denies the purpose
  no_patient_id,        // consent cannot be checked without a Patient ID (fail closed)
  conflicting_patient,  // the study's files name different patients (fail closed)
  no_study_uid,         // the file has no Study Instance UID to group it by (fail closed)
  failed_instance,  // an instance of the study failed de-identification (OnFailure::withhold_study)
};

// What a failed instance does to a release.
enum class OnFailure : std::uint8_t {
  withhold_study,  // its study is withheld whole, the other studies are released
  abort,           // nothing is released (all or nothing)
};
std::string_view exclusion_name(Exclusion reason);

struct ExclusionCount {
  std::uint64_t studies = 0;
  std::uint64_t instances = 0;
};

// Whether an export releases, or only says what it would do.
enum class ExportMode : std::uint8_t {
  release,  // de-identify, publish, record in the ledger
  dry_run,  // scan and check consent only: nothing written, nothing appended to the ledger
  // One shard of a release cut by radguard plan (ExportOptions::shard): consent, then
  // de-identification into the plan's shared staging folder; what it staged is recorded in
  // PLANDIR/staged/shard-NNNN.json. Nothing is published, nothing appended to the ledger:
  // publish_staged does both once, for every shard together.
  stage_shard,
};

// Where a shard of a sharded export stages and records its part.
struct ShardStaging {
  std::filesystem::path plan_folder;  // the plan's folder (radguard plan -o)
  std::size_t index = 0;              // the shard's number (shard-NNNN.txt)
  std::string plan_id;                // plan.json's id: names the shared staging folder
  std::string ledger;                 // the ledger publish appends to (recorded in the part)
  // What publish re-checks consent with (recorded in the part): the registry's target and
  // the key file, whose patient hashes name the staged patients. Consent can be withdrawn
  // between the shards and the publish; the publish must see that.
  std::string registry;
  std::filesystem::path key_file;
  // The audit gate (audit::parse_fail_on's words): run by publish over the whole release,
  // never by a shard (one shard's files are not what leaves).
  std::string audit_gate = "never";
};

// The folder every shard of plan `plan_id` stages into: OUTDIR/.shards-<plan id>. It is not a
// ".staging-release-" folder, so no export's clean-up of killed runs' staging touches it
// between shards; publish_staged renames it to one, under its lock, right before recording.
std::filesystem::path shard_staging_folder(const std::filesystem::path& output,
                                           std::string_view plan_id);
// "staged/shard-0003.json": a shard's part record, relative to the plan folder.
std::filesystem::path shard_part_path(std::size_t shard);

// One study's fate in a dry run, named by the Study Instance UID it would be released under.
struct StudyPlan {
  std::string study_uid;  // as released (pseudonymous unless retain-uids)
  std::uint64_t instances = 0;
  std::string decision;  // "release", or an exclusion_name()
};

// Looks at a staged release (the released DICOM files, before the manifest) and may refuse
// it: a reason (fixed phrases, no patient value) refuses, nullopt lets it go on, an error
// fails the release too.
using ReleaseGate =
    std::function<Result<std::optional<std::string>>(const std::filesystem::path& staging)>;

struct ExportOptions {
  ExportMode mode = ExportMode::release;
  OnFailure on_failure = OnFailure::withhold_study;
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;  // OUTDIR: the release folder is created inside it
  consent::Purpose purpose = consent::Purpose::research;
  std::string recipient;
  unsigned threads = 0;  // 0: one per core
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  // The instant at which consent is evaluated (normalised ISO 8601); empty: now.
  std::string consent_time;
  // Builds the pixel stages (deid::PixelStage) run on each permitted file before its header
  // stage. Called after the consent gate with the permitted files only, so a stage that looks
  // at whole series first (defacing) never reads a withheld patient's images. May be empty.
  std::function<Result<std::vector<deid::PixelStage>>(
      const std::vector<std::filesystem::path>& permitted)>
      pixel_stages;
  // Optional: looks at the staged release (the released DICOM files, before the manifest) and
  // may refuse it: a reason (fixed phrases, no patient value) refuses, nullopt lets it go on,
  // an error fails the export too. A refused release is never published; the ledger records
  // a failed entry. `radguard export --audit-gate` runs `radguard audit` here.
  ReleaseGate release_gate;
  // Optional last step on each released file before the manifest is made (e.g. signing).
  deid::OutputFinisher finish;
  // When given, manifest.json is signed (a detached CMS signature, manifest.json.p7s; see
  // release_check.hpp) so the recipient can check the release with verify-release.
  std::optional<signing::KeyFiles> manifest_signer;
  // Optional: the de-identification's events (see deid::DeidRunOptions::listener).
  batch::RunListener* listener = nullptr;
  // Optional: cancels the de-identification between files; a cancelled export releases
  // nothing (its staging folder is removed; the ledger records a failed entry).
  const batch::CancelToken* cancel = nullptr;
  // Set with ExportMode::stage_shard.
  std::optional<ShardStaging> shard;
};

struct ExportReport {
  ledger::EntryStatus status = ledger::EntryStatus::failed;
  std::string error;              // why it failed (no PHI); empty when released
  std::string release_name;       // "release-<UTC time>-<random>"
  std::filesystem::path release;  // OUTDIR/<release_name>, only when released
  std::string manifest_digest;    // hex SHA-256 of manifest.json (released)
  bool manifest_signed = false;   // manifest.json.p7s written (released)
  bool signing = false;           // files and manifest are (or, in a dry run, would be) signed
  std::int64_t ledger_sequence = 0;
  std::string ledger_entry_hash;
  std::string consent_time;

  std::uint64_t files_seen = 0;
  std::uint64_t not_dicom = 0;
  std::uint64_t dicomdir_dropped = 0;
  std::uint64_t studies_seen = 0;
  std::uint64_t studies_included = 0;
  std::uint64_t instances_included = 0;  // released (or meant to be, on failure)
  std::uint64_t patients_included = 0;
  std::map<Exclusion, ExclusionCount> excluded;
  // Inputs that could not be used: missing paths, unreadable or malformed files, and the
  // de-identification failures. Names input paths (the operator's own), never attribute
  // values; kept out of the manifest and the ledger.
  std::vector<deid::FileOutcome> failures;
  std::vector<batch::MissingInput> missing_inputs;
  // Released files a pixel stage read or changed (output relative to the release), and the
  // stages' times.
  std::vector<deid::FileOutcome> pixel_work;
  std::vector<deid::StageTiming> stage_timings;
  double seconds = 0;
  ExportMode mode = ExportMode::release;
  std::vector<StudyPlan> plan;  // dry run: every study, in Study UID order
  std::size_t stale_staging_removed = 0;    // staging folders of killed runs, cleaned up
  std::size_t stale_staging_published = 0;  // releases of killed runs, recorded, now published

  std::uint64_t excluded_studies() const;
  std::uint64_t excluded_instances() const;
  // kExitSuccess when released with no failure (dry run: when every input could be read and
  // some study would be released), kExitSomeFailed otherwise (also a release with studies
  // withheld for a failed instance).
  int exit_code() const;
};

// What consent was decided on for one input file: its Patient ID and Study Instance UID.
struct ConsentedIdentity {
  std::string patient_id;
  std::string study_uid;
};

// A pixel stage (run first, before any other) that fails every file whose Patient ID or Study
// Instance UID is not what consent was decided on when the inputs were scanned (a file
// replaced between the consent check and de-identification), or that was not scanned at all
// (ErrorCode::conflict). Keyed by input path as batch::find_files gives it. Thread-safe.
deid::PixelStage consented_identity_check(
    std::shared_ptr<const std::map<std::string, ConsentedIdentity>> consented);

// What remove_stale_staging did with the staging folders killed runs left.
struct StaleStaging {
  std::size_t removed = 0;    // never recorded as released: removed, never published
  std::size_t published = 0;  // recorded as released with this manifest: published now
  std::size_t kept = 0;       // recorded as released, but its files differ: left for the operator
};

// The staging folders (".staging-release-*") in `output` that no live export holds locked:
// those a killed run left behind. One whose release `ledger` records as released, with the
// same manifest digest and every file as that manifest lists it, is published (renamed into
// place: its run committed the entry and died before the rename); one recorded but not as
// it stands is kept (counted), and every other is removed. When `ledger` cannot be read no
// staging folder is removed. Without a ledger every one is removed.
StaleStaging remove_stale_staging(const std::filesystem::path& output,
                                  ledger::Ledger* ledger = nullptr);

// Runs an export. `registry` and `ledger` are used from this thread only. Returns a report
// whether the release succeeded or failed (the ledger has an entry either way); fails
// (Error) only when nothing could be attempted or recorded: a bad option (ErrorCode::usage),
// or a ledger that cannot be written (the error then says whether a release folder was
// left behind). Never throws.
[[nodiscard]] Result<ExportReport> run_export(const ExportOptions& options,
                                              const deid::HeaderStage& stage,
                                              consent::Registry& registry, ledger::Ledger& ledger);

// A release its shards staged (ExportMode::stage_shard), read and checked by read_staged.
struct StagedRelease {
  std::filesystem::path plan_folder;
  std::filesystem::path output;   // OUTDIR
  std::filesystem::path staging;  // OUTDIR/.shards-<plan id>
  std::string ledger;             // the ledger target the shards name
  std::string registry;           // the consent registry the shards decided with
  std::filesystem::path key_file; // the shards' key file (its fingerprint is checked)
  std::string audit_gate;         // the shards' --audit-gate, run at publish
  std::optional<signing::KeyFiles> manifest_signer;
  nlohmann::json parts = nlohmann::json::array();  // every shard's part record, by shard
  std::size_t shards = 0;                          // in the plan
};

// Reads the plan and every part record of a sharded export and checks that they are one
// release: a part for every shard with files, each `staged` (a `failed` one refuses the
// whole release, naming its shard and why), of this plan, accounting for exactly its list,
// and all agreeing on output, purpose, recipient, profile, key, signing, ledger and on-failure;
// no output file or study claimed by two shards. Fails with ErrorCode::integrity (a part
// missing, failed or inconsistent), or ErrorCode::io. Touches nothing.
[[nodiscard]] Result<StagedRelease> read_staged(const std::filesystem::path& plan_folder);

// What publish_staged did.
struct PublishReport {
  std::string release_name;
  std::filesystem::path release;  // OUTDIR/<release_name>
  std::string manifest_digest;
  bool manifest_signed = false;
  std::int64_t ledger_sequence = 0;
  std::string ledger_entry_hash;
  std::size_t unlisted_removed = 0;  // files in staging no part lists (a killed run's), removed
  // Left out at publish: patients whose consent no longer permits the purpose (withdrawn,
  // expired, or the default policy changed since their shard ran), with their studies and
  // files (removed from the staging folder, not in the manifest, not in the ledger entry).
  ExclusionCount withdrawn;
  std::size_t withdrawn_patients = 0;
  nlohmann::json report;             // the operator's JSON report (names no patient)
  int exit_code = 0;  // 0, or 1 when a shard had failures or a patient was left out at publish
};

// Publishes a staged release once, for all its shards: under an exclusive lock on the staging
// folder, consent is decided again, now, for every staged patient (from `registry`, the
// patients named by their keyed hash under `key`, which must be the shards' key): a patient
// whose consent no longer permits the purpose is left out, the files of her studies removed
// from the staging folder and counted as excluded (consent_denied or no_consent), and the
// exit code says so; then files no part lists are removed, every listed file is checked against the SHA-256
// and size its shard recorded, the manifest is written (and signed), then, as run_export
// does, one ledger entry for the whole release is committed and the folder renamed into
// place as OUTDIR/release-<time>-<id>. Fails closed, with nothing published and nothing
// appended to the ledger, when the staging folder is missing (never staged, or published
// already), locked by another publish, a file is missing or altered, nothing may be released,
// or the ledger refuses the entry (the staging folder is then kept for another try). Uses
// `threads` for hashing (0: one per core).
// A registry that cannot be read refuses the release (nothing published, nothing recorded).
// `gate`, when given, then looks at the release as it will leave (the consenting patients'
// files, before the manifest), as run_export's release_gate does; a refusal or an error
// refuses the release, with nothing recorded.
[[nodiscard]] Result<PublishReport> publish_staged(const StagedRelease& staged,
                                                   consent::Registry& registry,
                                                   const crypto::SecretKey& key,
                                                   ledger::Ledger& ledger, unsigned threads,
                                                   const ReleaseGate& gate = {});
std::string publish_text(const PublishReport& report);

// Checks a published release folder against its manifest.json: every listed file present with
// the SHA-256 the manifest records, no file that is not listed (manifest.json and its
// signature aside). Returns one problem per altered, missing or added file (names relative to
// the release); fails only when the manifest cannot be read (ErrorCode::io or
// ErrorCode::integrity). The signatures are not judged: see check_release.
[[nodiscard]] Result<std::vector<std::string>> check_release_files(
    const std::filesystem::path& release);

// The operator's JSON report (counts, exclusions by reason, failures with input paths,
// the ledger entry). Names no patient.
std::string report_json(const ExportReport& report, const deid::HeaderStage& stage,
                        const ExportOptions& options);
// A short summary for people.
std::string report_text(const ExportReport& report);

}  // namespace radguard::exporter
