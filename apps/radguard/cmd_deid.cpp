#include "cli.hpp"
#include "deid/deid_run.hpp"
#include "pipeline/pipeline.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace {

struct DeidArgs {
  std::vector<std::string> inputs;
  std::string output;
  StageArgs stage;
  std::string report;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
  bool full_paths = false;
  bool overwrite = false;
};

int run_deid_command(const DeidArgs& args) {
  auto spec = stage_spec(args.stage);
  if (!spec) return report_error(spec.error());
  auto made = make_pipeline(*spec);
  if (!made) return report_error(made.error());
  const pipeline::Pipeline& pipeline = *made;
  pipeline::DeidRun run;
  run.inputs.assign(args.inputs.begin(), args.inputs.end());
  run.output = args.output;
  run.threads = args.threads;
  run.cancel = &interrupt_token();
  run.report_paths = args.full_paths ? deid::ReportPaths::full : deid::ReportPaths::masked;
  run.existing = args.overwrite ? deid::ExistingOutputs::replace : deid::ExistingOutputs::keep;
  run.volumes = deid::VolumeInputs::deidentify;
  run.progress = args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = pipeline.run_deid(run);
  if (!report) return report_error(report.error());
  const deid::DeidRunOptions options = pipeline.deid_options(run);
  return emit_report(deid::report_json(*report, pipeline.header_stage(), options),
                     deid::report_text(*report, options), args.report,
                     args.json ? ReportFormat::json : ReportFormat::text, report->exit_code());
}

}  // namespace

void add_deid(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("deid", "de-identify DICOM files and folders (PS3.15 Annex E)");
  auto args = std::make_shared<DeidArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files, NIfTI volumes (.nii, .nii.gz) or folders (searched recursively)")
      ->required();
  cmd->add_option("-o,--output", args->output, "output folder")->required();
  cmd->add_option("--report", args->report, "write the JSON report to this file");
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json,
                "print the JSON report on stdout instead of the text summary");
  cmd->add_flag("--report-full-paths", args->full_paths,
                "name inputs by their full paths in reports (default: relative to the input "
                "given, with folder and file names that hold the patient's name, ID, birth "
                "date or accession number masked as <patient>)");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace output files an earlier run left with different content (default: "
                "such an input fails and the file stays)");
  add_stage_options(*cmd, args->stage);
  cmd->callback([&action, args] { action = [args] { return run_deid_command(*args); }; });
}

}  // namespace radguard::cli
