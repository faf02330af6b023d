#pragma once
// One de-identification pipeline for every front end (the radguard command's deid and export
// today; a DICOM gateway, a web page and cluster shards later): what a run is, checked once,
// built once, run many times.
//
//   Spec (plain values, as a person gives them: flags, a pipeline file)
//     -> Pipeline::create(spec)  every check (key, profile, options, recipe, redaction mode and
//                                rules, signing key and certificate), nothing read of any input
//     -> Pipeline                immutable; run_deid / run_export over files and folders,
//                                process_instance over one instance in memory
//
// Ownership: a Pipeline owns what it built (header stage, redaction options, signer) behind
// shared pointers to immutable objects; copies are cheap and share them. Runs take their
// inputs by value or reference for the call only and keep nothing after they return.
//
// Thread safety: a Pipeline is immutable once created. Any number of threads may call its
// const functions at once (each run builds its own pixel stages, so concurrent runs never
// share a stage's per-run state).
//
// Results: creation and runs return Result<T>; a failure is an Error whose code maps to an
// exit, DIMSE and HTTP status (core/error_table.hpp) and whose message names a setting or an
// input file, never an attribute value. A run that was carried out returns its report even
// when some inputs failed (the report's exit_code() says so).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "deid/deid_run.hpp"
#include "deid/header_stage.hpp"
#include "audit/audit.hpp"
#include "export/export.hpp"
#include "signing/manifest.hpp"
#include "signing/signing.hpp"

namespace radguard::redact {
struct RedactOptions;
}

namespace radguard::pipeline {

// What is done with images that may show burned-in text when Clean Pixel Data is not chosen.
enum class BurnedIn : std::uint8_t {
  refuse,  // refused (share::burned_in_gate), the default: fail closed
  allow,   // released as they are (--allow-burned-in-annotation)
};

// Signing each output before it is published (and, for export, the manifest). Empty key and
// cert: no signing.
struct SigningSpec {
  std::filesystem::path key, cert;
  // base, creator, authorization or none; empty: base for RSA keys, none for ECDSA keys.
  std::string profile;
};

// The settings of a release (radguard export) that a pipeline file may hold; empty: not set
// (the command line must then give them). Checked when an export runs (Pipeline::run_export).
struct ReleaseSpec {
  std::string purpose;     // consent::purpose_names()
  std::string recipient;   // recorded in the ledger
  std::string registry;    // consent registry: a path or an SQLite file: URI
  std::string ledger;      // disclosure ledger: a path or an SQLite file: URI
  std::string consent_at;  // ISO 8601; from --consent-at only, never from a pipeline file
  std::string on_failure;  // withhold-study or abort
  std::string audit_gate;  // high, medium or never (radguard audit on the staged release)
};

// Everything a de-identification run is, as plain values. Checked only by Pipeline::create.
struct Spec {
  std::filesystem::path key_file;  // radguard keygen's secret key
  std::string profile = "basic";   // preset: basic or research
  std::vector<std::string> options;  // PS3.15 option names (deid::Policy::create)
  std::filesystem::path recipe;      // per-attribute overrides; empty: none
  BurnedIn burned_in = BurnedIn::refuse;
  std::string redact_mode = "phi-text";    // with clean-pixel-data: phi-text or all-text
  std::filesystem::path redaction_rules;   // with clean-pixel-data: a rule file; empty: none
  SigningSpec signing;
  ReleaseSpec release;  // used by export only
};

// A de-identification run over files and folders into an output folder (radguard deid).
struct DeidRun {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;
  unsigned threads = 0;  // 0: one per core
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  deid::ReportPaths report_paths = deid::ReportPaths::masked;
  deid::ExistingOutputs existing = deid::ExistingOutputs::keep;
  deid::WrittenOutcomes written = deid::WrittenOutcomes::count_only;
  deid::VolumeInputs volumes = deid::VolumeInputs::skip;  // NIfTI volumes among the inputs
  batch::RunListener* listener = nullptr;     // optional; must outlive the run
  const batch::CancelToken* cancel = nullptr;  // optional; must outlive the run
  deid::StaleTemporaries stale_temporaries = deid::StaleTemporaries::whole_output;
  std::vector<std::string> report_roots;  // deid::DeidRunOptions::report_roots
};

// A release (radguard export): the consent gate, de-identification into staging, the
// manifest, publication with the ledger entry.
struct ExportRun {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;  // the release folder is created inside it
  std::string purpose;           // consent::purpose_names()
  std::string recipient;
  std::string registry;  // consent registry (a path or an SQLite file: URI); must exist
  std::string ledger;    // disclosure ledger; created if missing (not in a dry run)
  std::string consent_at;  // ISO 8601; from --consent-at only, never from a pipeline file; empty: now
  exporter::OnFailure on_failure = exporter::OnFailure::withhold_study;
  exporter::ExportMode mode = exporter::ExportMode::release;
  // `radguard audit` (full depth) on the staged release: a finding at or above this severity
  // refuses it. FailOn::never: no audit.
  audit::FailOn audit_gate = audit::FailOn::never;
  unsigned threads = 0;
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  batch::RunListener* listener = nullptr;     // optional; must outlive the run
  const batch::CancelToken* cancel = nullptr;  // optional: a cancelled export releases nothing
  // With ExportMode::stage_shard: the plan and shard this run stages (the ledger is then not
  // opened: it is recorded in the shard's part for radguard plan publish).
  std::optional<exporter::ShardStaging> shard;
};

// One de-identified instance, in memory.
struct OutputInstance {
  std::filesystem::path name;       // <study>/<series>/<instance>.dcm, as a run names it
  std::vector<std::uint8_t> bytes;  // the Part 10 file a run would publish under `name`
  deid::PixelWork pixels;           // what the pixel stages did
};

// Parses --on-failure's words (withhold-study, abort). Fails with ErrorCode::usage.
[[nodiscard]] Result<exporter::OnFailure> parse_on_failure(std::string_view text);

// The release gate of --audit-gate: `radguard audit` (full depth) over a staged release; a
// finding at or above `gate` refuses it. Empty for FailOn::never.
exporter::ReleaseGate audit_gate(audit::FailOn gate, unsigned threads);

// Loads a signer; an empty profile means base for RSA keys and none for ECDSA keys. Fails
// with ErrorCode::key or ErrorCode::usage.
[[nodiscard]] Result<signing::Signer> load_signer(const SigningSpec& spec);

class Pipeline {
 public:
  // Checks every setting of `spec` and builds what the runs share: loads the key (a key file
  // other users may read or change gives a warning), the policy (profile, options, recipe),
  // the redaction mode and rule file (with Clean Pixel Data), the signer (key and cert go
  // together). Reads no input. Fails with ErrorCode::key, ErrorCode::usage or ErrorCode::io.
  [[nodiscard]] static Result<Pipeline> create(const Spec& spec);

  const Spec& spec() const { return *spec_; }
  const deid::HeaderStage& header_stage() const { return *header_stage_; }
  // Things the operator should know before a run, one line each, never a value of an input:
  // the key file's permissions, what the recipe and options keep that the Basic Profile
  // would not.
  const std::vector<std::string>& warnings() const { return warnings_; }
  bool signs() const { return static_cast<bool>(signer_); }
  // Whether a stage needs every instance of a series before any is processed (defacing):
  // instances that arrive one at a time then go through a SeriesAssembler.
  bool needs_whole_series() const;

  // The pixel stages the options ask for, in the order they run (defacing, then Clean Pixel
  // Data or the burned-in gate), new for each run: defacing's stage keeps per-run state.
  std::vector<deid::PixelStage> pixel_stages() const;
  // Signs each output in place before it is published; empty when the spec does not sign.
  deid::OutputFinisher finisher() const;

  // radguard deid. Fails only when nothing could be attempted (ErrorCode::usage: the output
  // lies inside an input; ErrorCode::io: the output folder cannot be made; a stage's
  // preparation failed).
  [[nodiscard]] Result<deid::DeidRunReport> run_deid(const DeidRun& run) const;
  // The options run_deid passes to deid::run_deid, for its reports (deid::report_json, ...).
  deid::DeidRunOptions deid_options(const DeidRun& run) const;

  // One instance held in memory (received over the network, uploaded), through the steps a
  // run gives each file (DICOMDIR refused, pixel attributes checked, pixel stages, header
  // stage), written to memory: the same bytes run_deid publishes for the same input. Touches
  // no file. `id` names the instance to the stages and nowhere else; give a neutral id, never
  // a value read from the instance. Fails as a run fails a file (ErrorCode::not_dicom,
  // malformed_dicom, policy: a pixel stage or the header stage refused it, ...), and with
  // ErrorCode::unsupported when a stage needs the whole series (needs_whole_series(): give
  // the instances to a SeriesAssembler). Signed when the spec signs. Thread-safe.
  [[nodiscard]] Result<OutputInstance> process_instance(std::span<const std::uint8_t> bytes,
                                                        std::string_view id = "instance") const;

  // radguard export. Checks the run's settings first (purpose, consent time, that the
  // registry exists, the ledger's key); see exporter::run_export for the rest.
  [[nodiscard]] Result<exporter::ExportReport> run_export(const ExportRun& run) const;
  // The options run_export passes to exporter::run_export, for its reports. Fails as
  // run_export's checks of the settings do (ErrorCode::usage).
  [[nodiscard]] Result<exporter::ExportOptions> export_options(const ExportRun& run) const;

 private:
  friend class SeriesAssembler;
  Pipeline() = default;
  // The steps after parsing, for an instance opened by the caller, with stages the caller
  // built (and prepared): deid::deidentify_instance, written to memory, signed.
  [[nodiscard]] Result<OutputInstance> process_opened(const std::filesystem::path& id,
                                                      dicom::DicomFile& file,
                                                      std::span<const deid::PixelStage> stages) const;
  std::shared_ptr<const Spec> spec_;
  std::shared_ptr<const deid::HeaderStage> header_stage_;
  std::shared_ptr<const redact::RedactOptions> redact_options_;  // with clean-pixel-data
  std::shared_ptr<const signing::Signer> signer_;
  std::vector<std::string> warnings_;
};

}  // namespace radguard::pipeline
