#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "plan/plan.hpp"

namespace radguard::cli {

namespace {

struct PlanArgs {
  std::vector<std::string> inputs;
  std::string files_from;
  std::string output;
  unsigned shards = 0;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
};

int run_plan_command(const PlanArgs& args) {
  auto inputs = command_inputs(args.inputs, args.files_from);
  if (!inputs) return report_error(inputs.error());
  plan::PlanOptions options;
  options.inputs = std::move(*inputs);
  options.shards = args.shards;
  options.threads = args.threads;
  options.progress =
      args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto made = plan::make_plan(options);
  if (!made) return report_error(made.error());
  if (auto written = plan::write_plan(*made, args.output); !written)
    return report_error(written.error());
  if (args.json)
    std::cout << plan::plan_json(*made);
  else
    std::cerr << plan::plan_text(*made);
  return made->missing.empty() ? kExitSuccess : kExitSomeFailed;
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "plan",
      "cut inputs into shards that keep whole studies together, for radguard deid --files-from "
      "on many machines");
  auto args = std::make_shared<PlanArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)");
  add_files_from(*cmd, args->files_from);
  cmd->add_option("--shards", args->shards, "how many shards")->required()->check(CLI::Range(1, 100000));
  cmd->add_option("-o,--output", args->output,
                  "plan folder: shard-NNNN.txt (one path per line), left-out.txt, plan.json")
      ->required();
  cmd->add_option("-j,--threads", args->threads, "threads reading headers (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json, "print plan.json on stdout instead of the summary");
  cmd->callback([&action, args] { action = [args] { return run_plan_command(*args); }; });
}

}  // namespace radguard::cli
