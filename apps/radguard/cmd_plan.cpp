#include <iostream>

#include "cli.hpp"
#include "audit/audit.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "consent/consent.hpp"
#include "crypto/crypto.hpp"
#include "export/export.hpp"
#include "ledger/ledger.hpp"
#include "plan/merge.hpp"
#include "plan/plan.hpp"
#include "pipeline/pipeline.hpp"
#include "plan/sbatch.hpp"

namespace radguard::cli {

namespace fs = std::filesystem;

std::vector<std::string>& plan_command_words() {
  static std::vector<std::string> words;
  return words;
}

namespace {

struct PlanArgs {
  std::vector<std::string> inputs;
  std::string files_from;
  std::string output;
  unsigned shards = 0;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
  bool sbatch = false;
  unsigned cpus_per_task = 1;
  unsigned mem_mb = 0;
  std::string partition;
  std::string job_name = "radguard";
};

struct PublishArgs {
  std::string plan;
  std::string report;
  unsigned threads = 0;
  bool json = false;
};

struct MergeArgs {
  std::string plan;
  std::string report;
  bool json = false;
};

int run_plan_command(const PlanArgs& args) {
  if (args.shards == 0 || args.output.empty())
    return report_error(Error{ErrorCode::usage, "plan needs --shards and --output (or: plan merge PLANDIR)"});
  const auto& words = plan_command_words();
  if (!words.empty() && !args.sbatch)
    return report_error(Error{ErrorCode::usage, "a command after -- is for --sbatch"});
  plan::SbatchOptions sbatch;
  if (args.sbatch) {
    std::error_code ec;
    sbatch.radguard = fs::read_symlink("/proc/self/exe", ec);
    sbatch.plan_folder = fs::absolute(args.output, ec).lexically_normal();
    sbatch.working_folder = fs::current_path(ec);
    if (ec) return report_error(Error{ErrorCode::io, "cannot resolve paths: " + ec.message()});
    sbatch.shards = args.shards;
    sbatch.command = words;
    sbatch.cpus_per_task = args.cpus_per_task;
    if (args.mem_mb > 0) sbatch.mem_mb = args.mem_mb;
    sbatch.partition = args.partition;
    sbatch.job_name = args.job_name;
    // Checked before any header is read: a wrong command fails at once.
    if (auto checked = plan::check_sbatch_options(sbatch); !checked) return report_error(checked.error());
  }
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
  // deid and redact say the same of no input.
  if (plan::nothing_planned(*made)) {
    std::cerr << plan::missing_text(*made) << "error: no input found to plan; no plan was written\n";
    return kExitSomeFailed;
  }
  if (auto written = plan::write_plan(*made, args.output); !written)
    return report_error(written.error());
  if (args.sbatch)
    if (auto written = plan::write_sbatch(sbatch); !written) return report_error(written.error());
  if (args.json)
    std::cout << plan::plan_json(*made);
  else
    std::cerr << plan::plan_text(*made)
              << (args.sbatch ? "submit with: " + (sbatch.plan_folder / "submit.sh").string() + "\n"
                              : std::string());
  return made->missing.empty() ? kExitSuccess : kExitSomeFailed;
}

int run_merge_command(const MergeArgs& args) {
  const fs::path report = args.report.empty() ? fs::path(args.plan) / "report.json" : fs::path(args.report);
  // A report of an earlier merge must not stand for this one if this one fails (only the
  // default one: a --report path may be any file, the plan's own included).
  std::error_code ec;
  if (args.report.empty()) fs::remove(report, ec);
  auto merged = plan::merge_reports(args.plan);
  if (!merged) return report_error(merged.error());
  const std::string json =
      merged->report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (auto written = write_file_atomically(report, json, fs::perms::owner_read | fs::perms::owner_write);
      !written)
    return report_error(written.error());
  if (args.json)
    std::cout << json;
  else
    std::cerr << plan::merged_text(*merged);
  return merged->exit_code;
}

// Publishes the release an export's shards staged: once, with one ledger entry.
int run_publish_command(const PublishArgs& args) {
  auto staged = exporter::read_staged(args.plan);
  if (!staged) return report_error(staged.error());
  // Consent is decided again at publish, with the registry and key the shards used: read
  // only (the registry is not changed here, and no writer waits on this).
  auto registry = consent::Registry::open(staged->registry, consent::RegistryAccess::read_only);
  if (!registry) return report_error(registry.error());
  auto key = crypto::SecretKey::load(staged->key_file);
  if (!key) return report_error(key.error());
  auto ledger = ledger::Ledger::open(staged->ledger, ledger::LedgerAccess::create_if_missing);
  if (!ledger) return report_error(ledger.error());
  // Before anything is touched: the ledger would refuse the entry at the end.
  if (auto same = ledger->check_key(staged->parts.front().value("key_fingerprint", "")); !same)
    return report_error(same.error());
  // The shards' --audit-gate, over the whole release.
  const auto gate = audit::parse_fail_on(staged->audit_gate);
  if (!gate)
    return report_error(Error{ErrorCode::integrity, "the parts name an unknown --audit-gate"});
  auto published = exporter::publish_staged(*staged, *registry, *key, *ledger, args.threads,
                                            pipeline::audit_gate(*gate, args.threads));
  if (!published) return report_error(published.error());
  return emit_report(
      published->report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
      exporter::publish_text(*published), args.report,
      args.json ? ReportFormat::json : ReportFormat::text, published->exit_code);
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "plan",
      "cut inputs into shards that keep whole studies together, for radguard deid --files-from "
      "on many machines (--sbatch: Slurm scripts); plan merge: one report from the shards'");
  auto args = std::make_shared<PlanArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)");
  add_files_from(*cmd, args->files_from);
  cmd->add_option("--shards", args->shards, "how many shards")->check(CLI::Range(1, 100000));
  cmd->add_option("-o,--output", args->output,
                  "plan folder: shard-NNNN.txt (one path per line), left-out.txt, plan.json");
  cmd->add_option("-j,--threads", args->threads, "threads reading headers (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json, "print plan.json on stdout instead of the summary");
  cmd->add_flag("--sbatch", args->sbatch,
                "also write Slurm scripts into the plan folder: run.sbatch (a job array, one task "
                "per shard running the command given after --, e.g. -- deid -o OUT -k KEY), "
                "merge.sbatch (radguard plan merge) and submit.sh (queues both, the merge "
                "after the array succeeded)");
  cmd->add_option("--cpus-per-task", args->cpus_per_task, "--sbatch: cores per shard (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--mem", args->mem_mb, "--sbatch: memory per shard in MB (default: the partition's)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--partition", args->partition, "--sbatch: the Slurm partition");
  cmd->add_option("--job-name", args->job_name, "--sbatch: job name prefix (default radguard)");

  auto* merge = cmd->add_subcommand(
      "merge",
      "merge the shards' reports (PLANDIR/reports/shard-NNNN.json) into one, equal in counts and "
      "failures to one run's report; exit 0 only when every input was written");
  auto margs = std::make_shared<MergeArgs>();
  merge->add_option("PLANDIR", margs->plan, "the plan folder")->required();
  merge->add_option("--report", margs->report, "write the merged report here (default PLANDIR/report.json)");
  merge->add_flag("--json", margs->json, "print the merged report on stdout instead of the summary");
  merge->callback([&action, margs] { action = [margs] { return run_merge_command(*margs); }; });

  auto* publish = cmd->add_subcommand(
      "publish",
      "publish the release the shards of an export staged (radguard export --shard "
      "PLANDIR/shard-NNNN.txt): once, as one release folder with one manifest and one ledger "
      "entry; nothing is published or recorded when a shard failed or did not run");
  auto pargs = std::make_shared<PublishArgs>();
  publish->add_option("PLANDIR", pargs->plan, "the plan folder")->required();
  publish->add_option("--report", pargs->report, "write the JSON report to this file");
  publish->add_option("-j,--threads", pargs->threads, "threads checking the staged files' hashes");
  publish->add_flag("--json", pargs->json, "print the JSON report on stdout instead of the summary");
  publish->callback([&action, pargs] { action = [pargs] { return run_publish_command(*pargs); }; });
  // CLI11 calls plan's callback after merge's: plan's own action only when merge was not given.
  cmd->callback([&action, args, merge, publish] {
    if (merge->parsed() || publish->parsed()) return;
    action = [args] { return run_plan_command(*args); };
  });
}

}  // namespace radguard::cli
