#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/warning.hpp"
#include "redact/redact.hpp"

namespace radguard::cli {

namespace {

struct RedactArgs {
  std::vector<std::string> inputs;
  std::string files_from;
  std::string output;
  std::string quarantine;
  std::string mode = "phi-text";
  std::string finder = "detector";
  std::string rules;
  std::string preview;
  std::string report;
  unsigned threads = 0;
  int margin = 3;
  bool no_progress = false;
  bool json = false;
  bool overwrite = false;
};

int run_redact_command(const RedactArgs& args) {
  auto mode = redact::parse_mode(args.mode);
  if (!mode) return report_error(mode.error());
  auto finder = redact::parse_text_finder(args.finder);
  if (!finder) return report_error(finder.error());
  redact::RedactRunOptions options;
  auto inputs = command_inputs(args.inputs, args.files_from);
  if (!inputs) return report_error(inputs.error());
  options.inputs = std::move(*inputs);
  options.output = args.output;
  options.quarantine = args.quarantine;
  if (!args.preview.empty()) options.preview = args.preview;
  options.redact.mode = *mode;
  options.redact.finder = *finder;
  options.redact.margin = args.margin;
  if (!args.rules.empty()) {
    auto rules = redact::RuleSet::load(args.rules);
    if (!rules) return report_error(rules.error());
    options.redact.rules = std::move(*rules);
  }
  options.threads = args.threads;
  options.existing = args.overwrite ? PendingFile::Existing::replace
                                    : PendingFile::Existing::keep_if_different;
  options.progress =
      args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = redact::run_redact(options);
  if (!report) return report_error(report.error());
  // A user who ran redact alone may take its outputs for released files (a new user's trial).
  if (report->count(redact::OutcomeStatus::written) > 0)
    warn(
        "redact changed pixel data only: the headers of the files written still identify the "
        "patient; radguard deid --option clean-pixel-data does both");
  return emit_report(redact::report_json(*report, options), redact::report_text(*report),
                     args.report, args.json ? ReportFormat::json : ReportFormat::text,
                     report->exit_code());
}

}  // namespace

void add_redact(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "redact",
      "find and black out text burned into pixel data (PS3.15 Clean Pixel Data); headers "
      "are left as they are: deid --option clean-pixel-data does both");
  auto args = std::make_shared<RedactArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)");
  add_files_from(*cmd, args->files_from);
  cmd->add_option("-o,--output", args->output, "release folder for cleaned files")->required();
  cmd->add_option("--quarantine", args->quarantine,
                  "folder for files that fail closed (default: <output>-quarantine)");
  cmd->add_option("-m,--mode", args->mode, "all-text, phi-text or report")
      ->check(CLI::IsMember({"all-text", "phi-text", "report"}))
      ->capture_default_str();
  cmd->add_option("--text-finder", args->finder,
                  "detector (CNN text detector, then OCR per region) or ocr (the earlier "
                  "whole-frame OCR engine, for comparison)")
      ->check(CLI::IsMember({"detector", "ocr"}))
      ->capture_default_str();
  cmd->add_option("--rules", args->rules, "rule file (JSON) with regions of known screen layouts");
  cmd->add_option("--preview", args->preview,
                  "write before/after PNGs with the boxes drawn to this folder");
  cmd->add_option("--report", args->report, "write the JSON report to this file");
  cmd->add_option("--margin", args->margin, "pixels added around every word box")
      ->capture_default_str();
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace output files that exist with different content (by default such an "
                "input fails and the existing file stays)");
  cmd->add_flag("--json", args->json,
                "print the JSON report on stdout instead of the text summary");
  cmd->callback([&action, args] { action = [args] { return run_redact_command(*args); }; });
}

}  // namespace radguard::cli
