#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/iso_time.hpp"
#include "crypto/crypto.hpp"
#include "export/export.hpp"
#include "pixel_stages.hpp"
#include "signer_options.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace {

struct ExportArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string purpose;
  std::string recipient;
  StageArgs stage;
  std::string registry;
  std::string ledger;
  std::string report;
  std::string consent_at;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
  bool dry_run = false;
  std::string on_failure = "withhold-study";
  SignerArgs signer;
};

int run_export_command(const ExportArgs& args) {
  const auto purpose = consent::parse_purpose(args.purpose);
  if (!purpose)
    return report_error(
        Error{ErrorCode::usage, "--purpose must be one of " + consent::purpose_names()});
  std::string consent_time;
  if (!args.consent_at.empty()) {
    auto normalized = normalize_iso8601(args.consent_at);
    if (!normalized)
      return report_error(Error{ErrorCode::usage, "--consent-at: " + normalized.error().message});
    consent_time = *normalized;
  }
  auto made = make_stage(args.stage);
  if (!made) return report_error(made.error());
  const deid::HeaderStage& stage = *made;
  // A mistyped registry path must not become a fresh, empty registry that withholds
  // everything without saying why.
  std::error_code ec;
  if (!args.registry.starts_with("file:") && !std::filesystem::exists(args.registry, ec))
    return report_error(
        Error{ErrorCode::not_found,
              "the consent registry " + args.registry +
                  " does not exist (create it with radguard consent import or set)"});
  auto registry = consent::Registry::open(args.registry, consent::RegistryAccess::existing_only);
  if (!registry) return report_error(registry.error());
  // A dry run appends nothing: a ledger that does not exist yet is not created (an empty one
  // in memory stands in for it).
  std::error_code missing_ec;
  const bool no_ledger_yet =
      !args.ledger.starts_with("file:") && !std::filesystem::exists(args.ledger, missing_ec);
  auto ledger = args.dry_run && no_ledger_yet
                    ? ledger::Ledger::open("file:radguard-dry-run?mode=memory",
                                           ledger::LedgerAccess::create_if_missing)
                    : ledger::Ledger::open(args.ledger,
                                           args.dry_run ? ledger::LedgerAccess::existing_only
                                                        : ledger::LedgerAccess::create_if_missing);
  if (!ledger) return report_error(ledger.error());
  // Checked before any work: the ledger would refuse the entry at the end.
  if (auto same = ledger->check_key(stage.pseudonymizer().key().fingerprint()); !same)
    return report_error(same.error());

  exporter::ExportOptions options;
  options.inputs.assign(args.inputs.begin(), args.inputs.end());
  // Options are checked now (no inputs: nothing is read); the stages are built for the
  // permitted files only, after the consent gate.
  if (auto checked = make_pixel_stages(args.stage, stage); !checked)
    return report_error(checked.error());
  // Built after the consent gate; the stages' preparation (defacing) sees the permitted
  // files only, as run_deid's inputs.
  options.pixel_stages = [&args, &stage](const std::vector<std::filesystem::path>&) {
    return make_pixel_stages(args.stage, stage);
  };
  options.output = args.output;
  options.mode = args.dry_run ? exporter::ExportMode::dry_run : exporter::ExportMode::release;
  if (args.on_failure != "withhold-study" && args.on_failure != "abort")
    return report_error(Error{ErrorCode::usage, "--on-failure must be withhold-study or abort"});
  options.on_failure =
      args.on_failure == "abort" ? exporter::OnFailure::abort : exporter::OnFailure::withhold_study;
  options.purpose = *purpose;
  options.recipient = args.recipient;
  options.threads = args.threads;
  options.progress =
      args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  options.consent_time = consent_time;
  auto finish = signing_finisher(args.signer);
  if (!finish) return report_error(finish.error());
  options.finish = std::move(*finish);
  if (!args.signer.key.empty())
    options.manifest_signer = signing::KeyFiles{args.signer.key, args.signer.cert};
  auto report = exporter::run_export(options, stage, *registry, *ledger);
  if (!report) return report_error(report.error());
  return emit_report(exporter::report_json(*report, stage, options), exporter::report_text(*report),
                     args.report, args.json ? ReportFormat::json : ReportFormat::text,
                     report->exit_code());
}

}  // namespace

void add_export(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("export",
                                 "release a dataset: only consented studies, de-identified, with a "
                                 "manifest and a ledger entry");
  auto args = std::make_shared<ExportArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)")
      ->required();
  cmd->add_option("-o,--output", args->output,
                  "folder in which the release folder (release-<time>-<id>) is created")
      ->required();
  cmd->add_option("--purpose", args->purpose, "purpose of use: " + consent::purpose_names())
      ->required();
  cmd->add_option("--recipient", args->recipient,
                  "who receives the release (recorded in the ledger)")
      ->required();
  cmd->add_option("--registry", args->registry, "consent registry (radguard consent ...)")
      ->required();
  cmd->add_option("--ledger", args->ledger, "disclosure ledger (created if missing)")->required();
  cmd->add_option("--report", args->report,
                  "write the JSON report to this file (names no patient)");
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_option("--consent-at", args->consent_at,
                  "evaluate consent at this time instead of now (ISO 8601)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_option("--on-failure", args->on_failure,
                  "an instance that fails de-identification: withhold-study (its study is "
                  "withheld whole, the rest released) or abort (nothing released)")
      ->capture_default_str();
  cmd->add_flag("--dry-run", args->dry_run,
                "say per study what would be released or withheld (and why); write nothing, "
                "append nothing to the ledger");
  cmd->add_flag("--json", args->json,
                "print the JSON report on stdout instead of the text summary");
  add_stage_options(*cmd, args->stage);
  add_signer_options(*cmd, args->signer);
  cmd->callback([&action, args] { action = [args] { return run_export_command(*args); }; });
}

}  // namespace radguard::cli
