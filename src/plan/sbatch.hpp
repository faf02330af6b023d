#pragma once
// Slurm scripts for a plan (radguard plan --sbatch): a job array with one task per shard, each
// running the radguard command given on its shard's list, and a final job, dependent on the
// whole array succeeding, that merges the shards' reports (radguard plan merge).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace radguard::plan {

struct SbatchOptions {
  std::filesystem::path radguard;       // the radguard binary (absolute)
  std::filesystem::path plan_folder;    // absolute
  std::filesystem::path working_folder; // absolute: relative paths in `command` resolve here
  std::size_t shards = 1;
  // The radguard command each task runs, without inputs: "deid" or "export", then its
  // options (e.g. -o OUT -k KEY, or --config PIPELINE.toml). The task adds --files-from
  // (export: --shard), --report, --no-progress and, unless given, -j from the CPUs Slurm gave
  // it. For export, the final job publishes the release (radguard plan publish) instead of
  // merging reports.
  std::vector<std::string> command;
  unsigned cpus_per_task = 1;
  std::optional<unsigned> mem_mb;        // per task; unset: the partition's default
  std::string partition;                 // empty: the default partition
  std::string job_name = "radguard";
};

// Checks the options: the command must be deid (whose reports merge) or export (whose shards
// stage one release), must name -o, and must not name --files-from, --report or --json (the
// task sets them; export: nor --shard or --dry-run); a partition or job
// name holds only letters, digits and "._-". Fails with ErrorCode::usage.
[[nodiscard]] Status check_sbatch_options(const SbatchOptions& options);

// Quotes one word for bash: single quotes, an embedded quote as '\''.
std::string shell_quote(const std::string& word);

std::string run_script(const SbatchOptions& options);    // run.sbatch
std::string merge_script(const SbatchOptions& options);  // merge.sbatch
std::string submit_script(const SbatchOptions& options); // submit.sh

// Checks the options and writes run.sbatch, merge.sbatch and submit.sh (executable) into the
// plan folder, and creates its reports/ and logs/ folders (0700). Fails with ErrorCode::usage
// or ErrorCode::io.
[[nodiscard]] Status write_sbatch(const SbatchOptions& options);

}  // namespace radguard::plan
