#pragma once
// Bringing a sharded run together (radguard plan merge): the JSON reports the shards' runs
// wrote (radguard deid --files-from shard-NNNN.txt --report reports/shard-NNNN.json) become
// one report equal in counts and failures to the report of one run over all inputs.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.hpp"

namespace radguard::plan {

// Where the run of shard `shard` writes its report, relative to the plan folder.
std::filesystem::path shard_report_path(std::size_t shard);

struct MergedReport {
  nlohmann::json report;  // a deid report, plus "merged": {plan, shards, shard_seconds}
  std::size_t shards = 0;
  std::size_t reports = 0;  // shard reports read (shards with no files have none)
  int exit_code = 0;        // as the merged report's exit_code
  std::size_t stale_temporaries_removed = 0;  // from the shards' output tree (below)
};

// Reads plan.json and every shard's report under `plan_folder` and merges them: counts,
// pixel counts, bytes and times are summed; failures, skipped inputs and pixel work are
// gathered and sorted by input name (a single run lists them in input order); the inputs
// plan.json names as missing (in no shard, so in no shard's report) are counted and listed
// among the failures as a single run's report lists them; the exit code is recomputed from
// the merged counts as deid computes it. Fails closed, naming the shard:
// ErrorCode::io when plan.json or the report of a shard with files cannot be read;
// ErrorCode::integrity when a report is not JSON, is not a deid report, does not account for
// exactly its shard's listed files, or differs from the first report in what must be shared
// (tool version, profile, key fingerprint, output folder, how inputs are named).
// Once merged, the shards' output folder is cleared of the temporary files killed runs left
// anywhere in it (remove_stale_temporaries): each shard looked only in the folders it wrote.
[[nodiscard]] Result<MergedReport> merge_reports(const std::filesystem::path& plan_folder);

// A short summary for people, in the words of deid's summary.
std::string merged_text(const MergedReport& merged);

}  // namespace radguard::plan
