#include <cstdio>
#include <iostream>

#include "cli.hpp"
#include "share/share.hpp"

namespace radguard::cli {

namespace {

struct ShareArgs {
  std::vector<std::string> inputs;
  std::string output;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
};

int run_share_command(const ShareArgs& args) {
  share::ShareOptions options;
  options.inputs.assign(args.inputs.begin(), args.inputs.end());
  options.output = args.output;
  options.threads = args.threads;
  options.progress =
      args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = share::run_share(options);
  if (!report) return report_error(report.error());
  if (args.json)
    std::cout << share::report_json(*report);
  else
    std::cerr << share::report_text(*report);
  return report->exit_code();
}

}  // namespace

void add_share(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "share",
      "make a copy of scans that is safe to share (a CD as it comes, folders, zip files): "
      "every protection on, no key file, a report.html that says what was removed");
  auto args = std::make_shared<ShareArgs>();
  cmd->add_option("INPUT", args->inputs, "a CD or folder, DICOM files, or zip files")->required();
  cmd->add_option("-o,--output", args->output,
                  "where the copy goes: a name ending in .zip for a zip file, else a new folder")
      ->required();
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json,
                "print a JSON report on stdout (per file of the copy what was done to its "
                "pixels; what was left out and why) instead of the text summary");
  cmd->callback([&action, args] { action = [args] { return run_share_command(*args); }; });
}

}  // namespace radguard::cli
