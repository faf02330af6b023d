#include <tuple>

#include "cli.hpp"
#include "audit/audit.hpp"
#include "export/export.hpp"
#include "plan/plan.hpp"
#include "store/database.hpp"
#include "pipeline/pipeline.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace fs = std::filesystem;

namespace {

struct ExportArgs {
  std::vector<std::string> inputs;
  std::string files_from;
  std::string shard;
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
  std::string audit_gate = "never";
};

// The release settings: the pipeline file's [release], with the flags given over it; each
// required one must come from one of them.
Result<pipeline::ReleaseSpec> release_settings(const ExportArgs& args,
                                               const pipeline::ReleaseSpec& from_file) {
  pipeline::ReleaseSpec release = from_file;
  const auto given = [&](const char* flag) {
    return args.stage.command == nullptr || args.stage.command->count(flag) > 0;
  };
  const std::tuple<const char*, const std::string*, std::string*, bool> settings[] = {
      {"--purpose", &args.purpose, &release.purpose, true},
      {"--recipient", &args.recipient, &release.recipient, true},
      {"--registry", &args.registry, &release.registry, true},
      {"--ledger", &args.ledger, &release.ledger, true},
      {"--consent-at", &args.consent_at, &release.consent_at, false},
      {"--on-failure", &args.on_failure, &release.on_failure, false},
      {"--audit-gate", &args.audit_gate, &release.audit_gate, false}};
  for (const auto& [flag, value, setting, required] : settings) {
    if (given(flag)) *setting = *value;
    if (required && setting->empty())
      return fail(ErrorCode::usage, std::string("no ") + (flag + 2) + ": give " + flag +
                                        " or " + (flag + 2) +
                                        " in the pipeline file's [release] (--config)");
  }
  if (release.on_failure.empty()) release.on_failure = "withhold-study";
  if (release.audit_gate.empty()) release.audit_gate = "never";
  return release;
}

int run_export_command(const ExportArgs& args) {
  auto spec = stage_spec(args.stage);
  if (!spec) return report_error(spec.error());
  auto release = release_settings(args, spec->release);
  if (!release) return report_error(release.error());
  auto on_failure = pipeline::parse_on_failure(release->on_failure);
  if (!on_failure) return report_error(on_failure.error());
  auto audit_gate = audit::parse_fail_on(release->audit_gate);
  if (!audit_gate)
    return report_error(Error{ErrorCode::usage, "--audit-gate must be high, medium or never"});
  auto made = make_pipeline(*spec);
  if (!made) return report_error(made.error());
  const pipeline::Pipeline& pipeline = *made;
  pipeline::ExportRun run;
  if (!args.shard.empty()) {
    // One shard of a plan: its list is the input, the plan folder is the list's.
    if (!args.inputs.empty() || !args.files_from.empty() || args.dry_run)
      return report_error(Error{ErrorCode::usage,
                                "--shard takes its inputs from the shard list: no INPUT, "
                                "--files-from or --dry-run with it"});
    const fs::path list = fs::absolute(args.shard).lexically_normal();
    const auto index = plan::shard_index_of(list.filename().string());
    if (!index)
      return report_error(Error{ErrorCode::usage, "--shard names a list of radguard plan "
                                                  "(PLANDIR/shard-NNNN.txt)"});
    auto summary = plan::read_plan_summary(list.parent_path());
    if (!summary) return report_error(summary.error());
    if (*index >= summary->shard_files.size())
      return report_error(Error{ErrorCode::usage, "--shard: the plan has no shard " +
                                                      std::to_string(*index)});
    std::error_code ec;
    // Paths as the publishing step, run elsewhere, finds them.
    const auto where = [&ec](const std::string& target) {
      return store::names_a_file(target) ? fs::absolute(target, ec).string() : target;
    };
    run.shard = exporter::ShardStaging{list.parent_path(), *index, summary->id,
                                       where(release->ledger), where(release->registry),
                                       fs::absolute(spec->key_file, ec), release->audit_gate};
    run.mode = exporter::ExportMode::stage_shard;
  }
  auto inputs = command_inputs(args.inputs, args.shard.empty() ? args.files_from : args.shard);
  if (!inputs) return report_error(inputs.error());
  run.inputs = std::move(*inputs);
  run.output = args.output;
  run.purpose = release->purpose;
  run.recipient = release->recipient;
  run.registry = release->registry;
  run.ledger = release->ledger;
  run.consent_at = release->consent_at;
  run.on_failure = *on_failure;
  run.audit_gate = *audit_gate;
  if (!run.shard)
    run.mode = args.dry_run ? exporter::ExportMode::dry_run : exporter::ExportMode::release;
  run.threads = args.threads;
  run.cancel = &interrupt_token();
  run.progress = args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = pipeline.run_export(run);
  if (!report) return report_error(report.error());
  auto options = pipeline.export_options(run);
  if (!options) return report_error(options.error());
  return emit_report(exporter::report_json(*report, pipeline.header_stage(), *options),
                     exporter::report_text(*report), args.report,
                     args.json ? ReportFormat::json : ReportFormat::text, report->exit_code());
}

}  // namespace

void add_export(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("export",
                                 "release a dataset: only consented studies, de-identified, with a "
                                 "manifest and a ledger entry");
  auto args = std::make_shared<ExportArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)");
  add_files_from(*cmd, args->files_from);
  cmd->add_option("--shard", args->shard,
                  "run one shard of a release cut by radguard plan (PLANDIR/shard-NNNN.txt): "
                  "stage its part, publish nothing, record nothing; radguard plan publish "
                  "PLANDIR then publishes the release once, with one ledger entry");
  cmd->add_option("-o,--output", args->output,
                  "folder in which the release folder (release-<time>-<id>) is created")
      ->required();
  // Required, from here or from the pipeline file's [release] (checked when the run starts).
  cmd->add_option("--purpose", args->purpose,
                  "purpose of use (required): " + consent::purpose_names());
  cmd->add_option("--recipient", args->recipient,
                  "who receives the release, recorded in the ledger (required)");
  cmd->add_option("--registry", args->registry,
                  "consent registry, from radguard consent ... (required)");
  cmd->add_option("--ledger", args->ledger, "disclosure ledger, created if missing (required)");
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
  cmd->add_option("--audit-gate", args->audit_gate,
                  "audit the staged release as a recipient would (radguard audit, headers and "
                  "pixels) and refuse to publish it when a finding of this severity or above is "
                  "found: high, medium or never")
      ->capture_default_str();
  cmd->add_flag("--dry-run", args->dry_run,
                "say per study what would be released or withheld (and why); write nothing, "
                "append nothing to the ledger");
  cmd->add_flag("--json", args->json,
                "print the JSON report on stdout instead of the text summary");
  add_stage_options(*cmd, args->stage);
  cmd->callback([&action, args] { action = [args] { return run_export_command(*args); }; });
}

}  // namespace radguard::cli
