#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "crypto/crypto.hpp"
#include "deid/deid_run.hpp"
#include "pixel_stages.hpp"
#include "signer_options.hpp"
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
  SignerArgs signer;
};

int run_deid_command(const DeidArgs& args) {
  auto made = make_stage(args.stage);
  if (!made) return report_error(made.error());
  const deid::HeaderStage& stage = *made;
  auto finish = signing_finisher(args.signer);
  if (!finish) return report_error(finish.error());
  deid::DeidRunOptions options;
  options.finish = std::move(*finish);
  options.inputs.assign(args.inputs.begin(), args.inputs.end());
  auto pixel_stages = make_pixel_stages(args.stage, stage);
  if (!pixel_stages) return report_error(pixel_stages.error());
  options.pixel_stages = std::move(*pixel_stages);
  options.volumes = deid::VolumeInputs::deidentify;
  options.output = args.output;
  options.threads = args.threads;
  options.report_paths = args.full_paths ? deid::ReportPaths::full : deid::ReportPaths::masked;
  options.existing = args.overwrite ? deid::ExistingOutputs::replace : deid::ExistingOutputs::keep;
  options.progress =
      args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = deid::run_deid(options, stage);
  if (!report) return report_error(report.error());
  return emit_report(deid::report_json(*report, stage, options), deid::report_text(*report, options),
                     args.report, args.json ? ReportFormat::json : ReportFormat::text,
                     report->exit_code());
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
  add_signer_options(*cmd, args->signer);
  cmd->callback([&action, args] { action = [args] { return run_deid_command(*args); }; });
}

}  // namespace radguard::cli
