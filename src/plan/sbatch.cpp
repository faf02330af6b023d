#include "plan/sbatch.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "core/atomic_file.hpp"
#include "plan/merge.hpp"

namespace radguard::plan {

namespace fs = std::filesystem;

namespace {

constexpr fs::perms kScriptPerms = fs::perms::owner_all;

bool plain_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

bool names_option(const std::vector<std::string>& words, std::initializer_list<const char*> names) {
  return std::any_of(words.begin(), words.end(), [&](const std::string& w) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) {
      const std::string name = n;
      return w == name || w.starts_with(name + "=");
    });
  });
}

std::string header(const SbatchOptions& o, const std::string& name) {
  std::ostringstream out;
  out << "#!/bin/bash\n";
  out << "#SBATCH --job-name=" << o.job_name << "-" << name << "\n";
  if (!o.partition.empty()) out << "#SBATCH --partition=" << o.partition << "\n";
  return out.str();
}

}  // namespace

std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Status check_sbatch_options(const SbatchOptions& o) {
  if (o.command.empty())
    return fail(ErrorCode::usage,
                "--sbatch needs the command each shard runs after --, e.g. -- deid -o OUT -k KEY");
  if (o.command.front() != "deid" && o.command.front() != "export")
    return fail(ErrorCode::usage,
                "--sbatch runs deid or export on each shard (deid's reports merge; export's "
                "shards stage one release that is published once); got '" +
                    o.command.front() + "'");
  if (o.command.front() == "export" && names_option(o.command, {"--shard", "--dry-run"}))
    return fail(ErrorCode::usage,
                "the shard command must not give --shard (each task sets it) or --dry-run");
  if (!names_option(o.command, {"-o", "--output"}))
    return fail(ErrorCode::usage,
                "the shard command must name the output folder (-o OUT): every task writes into it");
  if (names_option(o.command, {"--files-from", "--report", "--json"}))
    return fail(ErrorCode::usage,
                "the shard command must not give --files-from, --report or --json: each task "
                "sets them");
  if (!o.partition.empty() && !plain_name(o.partition))
    return fail(ErrorCode::usage, "--partition: letters, digits and ._- only");
  if (!plain_name(o.job_name)) return fail(ErrorCode::usage, "job name: letters, digits and ._- only");
  if (o.cpus_per_task == 0) return fail(ErrorCode::usage, "--cpus-per-task must be at least 1");
  if (o.shards == 0) return fail(ErrorCode::usage, "no shards");
  if (!o.plan_folder.is_absolute() || !o.working_folder.is_absolute() || !o.radguard.is_absolute())
    return fail(ErrorCode::internal, "sbatch paths must be absolute");
  return {};
}

std::string run_script(const SbatchOptions& o) {
  std::ostringstream out;
  out << header(o, "shards");
  out << "#SBATCH --array=0-" << o.shards - 1 << "\n";
  out << "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n";
  if (o.mem_mb) out << "#SBATCH --mem=" << *o.mem_mb << "\n";
  out << "# Written by radguard plan --sbatch: one task per shard of the plan in\n# "
      << o.plan_folder.string() << "\n"
      << "# Submit with submit.sh (it also queues the merge). Exit 1 of radguard (some inputs\n"
         "# failed, the report says which) is a success here: the merge counts the failures.\n"
      << "set -uo pipefail\n"
      << "task=${SLURM_ARRAY_TASK_ID:?run this script through sbatch (submit.sh): it is a job array}\n"
      << "plan=" << shell_quote(o.plan_folder.string()) << "\n"
      << "list=$(printf '%s/shard-%04d.txt' \"$plan\" \"$task\")\n"
      << "report=$(printf '%s/reports/shard-%04d.json' \"$plan\" \"$task\")\n"
      << "if [ ! -f \"$list\" ]; then echo \"radguard shard $task: no list $list\" >&2; exit 2; fi\n"
      << "rm -f -- \"$report\"\n"
      << "if [ ! -s \"$list\" ]; then echo \"radguard shard $task: empty, nothing to run\"; exit 0; fi\n"
      << "mkdir -p -m 700 -- \"$plan/reports\" || exit 2\n"
      << "cd " << shell_quote(o.working_folder.string()) << " || exit 2\n"
      << shell_quote(o.radguard.string());
  for (const auto& word : o.command) out << " " << shell_quote(word);
  // An export's shard stages its part of the release (--shard); a deid's runs its list.
  out << " \\\n  " << (o.command.front() == "export" ? "--shard" : "--files-from")
      << " \"$list\" --report \"$report\"";
  if (!names_option(o.command, {"--no-progress"})) out << " --no-progress";
  if (!names_option(o.command, {"-j", "--threads"})) out << " -j \"${SLURM_CPUS_PER_TASK:-1}\"";
  out << "\nrc=$?\n"
      << "if [ \"$rc\" -eq 1 ] && [ -s \"$report\" ]; then rc=0; fi\n"
      << "echo \"radguard shard $task: exit $rc\"\n"
      << "exit \"$rc\"\n";
  return out.str();
}

std::string merge_script(const SbatchOptions& o) {
  std::ostringstream out;
  out << header(o, "merge");
  out << "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n";
  const bool publish = o.command.front() == "export";
  out << (publish ? "# Written by radguard plan --sbatch: publishes the release the shards staged, once,\n"
                    "# with one ledger entry, once every task of the array succeeded (submit.sh\n"
                    "# queues it with --dependency=afterok). A shard that failed publishes nothing.\n"
                  : "# Written by radguard plan --sbatch: merges the shards' reports once every task of\n"
                    "# the array succeeded (submit.sh queues it with --dependency=afterok).\n")
      << "set -uo pipefail\n"
      << "cd " << shell_quote(o.working_folder.string()) << " || exit 2\n"
      << "exec " << shell_quote(o.radguard.string()) << (publish ? " plan publish " : " plan merge ")
      << shell_quote(o.plan_folder.string())
      << (publish ? " --report " + shell_quote((o.plan_folder / "report.json").string()) : "")
      << "\n";
  return out.str();
}

std::string submit_script(const SbatchOptions& o) {
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Written by radguard plan --sbatch: queues the shards (a job array) and the merge,\n"
         "# which runs only once every shard succeeded. Prints the two job IDs.\n"
      << "set -euo pipefail\n"
      << "plan=" << shell_quote(o.plan_folder.string()) << "\n"
      << "mkdir -p -m 700 -- \"$plan/reports\" \"$plan/logs\"\n"
      << "rm -f -- \"$plan/report.json\"\n"
      << "array=$(sbatch --parsable --output=\"$plan/logs/shard-%4a.out\" \"$@\" \"$plan/run.sbatch\")\n"
      << "array=${array%%;*}\n"
      << "merge=$(sbatch --parsable --dependency=\"afterok:$array\" --kill-on-invalid-dep=yes \\\n"
      << "  --output=\"$plan/logs/merge.out\" \"$@\" \"$plan/merge.sbatch\")\n"
      << "merge=${merge%%;*}\n"
      << "echo \"array_job=$array\"\n"
      << "echo \"merge_job=$merge\"\n";
  return out.str();
}

Status write_sbatch(const SbatchOptions& o) {
  if (auto checked = check_sbatch_options(o); !checked) return checked;
  std::error_code ec;
  for (const char* sub : {"reports", "logs"}) {
    fs::create_directories(o.plan_folder / sub, ec);
    if (!ec) fs::permissions(o.plan_folder / sub, fs::perms::owner_all, ec);
    if (ec) return fail(ErrorCode::io, "cannot create " + (o.plan_folder / sub).string() + ": " + ec.message());
  }
  if (auto w = write_file_atomically(o.plan_folder / "run.sbatch", run_script(o), kScriptPerms); !w) return w;
  if (auto w = write_file_atomically(o.plan_folder / "merge.sbatch", merge_script(o), kScriptPerms); !w)
    return w;
  return write_file_atomically(o.plan_folder / "submit.sh", submit_script(o), kScriptPerms);
}

}  // namespace radguard::plan
