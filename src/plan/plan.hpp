#pragma once
// Cutting one release into shards for many machines (radguard plan): each input's header is
// read once and whole studies are kept together (series-level stages such as defacing see
// whole series), so that running every shard (radguard deid --files-from shard-NNNN.txt) into
// one output folder gives exactly the outputs of one run over all inputs: outputs are named by
// keyed pseudonymous UIDs, never by shard. Files that share a SOP Instance UID go to one shard
// (with their studies), where the run settles the duplicate as a single run would; so do
// studies that share a Series Instance UID (series-level stages group by it).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"

namespace radguard::plan {

struct PlanOptions {
  std::vector<std::filesystem::path> inputs;  // files and folders
  unsigned shards = 1;                        // at least 1
  unsigned threads = 0;                       // for reading headers; 0: one per core
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
};

struct Shard {
  std::vector<std::string> files;  // in the order find_files gives them
  std::uint64_t bytes = 0;
  std::size_t studies = 0;
  std::size_t left_out = 0;  // of `files`, those in Plan::left_out
};

// An input that is not DICOM, or DICOM that cannot be read (reason: never a value). It is
// still listed in one shard, alone, so that the shard's run reports it (skipped as not DICOM,
// failed) as one run over all inputs would, and the merged report counts it the same.
struct LeftOut {
  std::string path;
  std::string reason;
};

struct Plan {
  // Random, made by make_plan: names this plan (plan.json "id"), so the shards of an export
  // across it stage into one folder of their own (exporter::shard_staging_folder).
  std::string id;
  std::vector<Shard> shards;  // options.shards of them; some may be empty
  std::vector<LeftOut> left_out;
  std::vector<batch::MissingInput> missing;
  // The input folders, canonical (plan.json "input_folders"): what a shard's run names its
  // files relative to (list_roots), as one run over the inputs would.
  std::vector<std::string> input_folders;
  std::size_t files = 0, studies = 0;  // DICOM files read (left_out not counted)
  std::uint64_t bytes = 0;
  double seconds = 0;
};

// Reads every input's Study, Series and SOP Instance UIDs and size, groups files into studies
// (studies that share a Series or SOP Instance UID into one group), and deals the groups out, largest
// first, each to the shard with the fewest bytes so far (ties: the lowest shard number), so
// the plan is the same for the same inputs. Fails with ErrorCode::usage for no shards.
[[nodiscard]] Result<Plan> make_plan(const PlanOptions& options);

// Writes the plan into `folder` (created): shard-NNNN.txt (one absolute path per line, for
// --files-from), left-out.txt (path, tab, reason) and plan.json; each file atomically.
// Fails with ErrorCode::io.
[[nodiscard]] Status write_plan(const Plan& plan, const std::filesystem::path& folder);

std::string plan_json(const Plan& plan);

// Whether the plan holds no input at all (no DICOM file read, none left out): a wrong or
// empty folder. Nothing is to be written or run for it: its shards would merge to a release
// of nothing reported as a success.
[[nodiscard]] bool nothing_planned(const Plan& plan);

// The missing inputs, one "error: PATH: REASON" line each (the end of plan_text).
std::string missing_text(const Plan& plan);

// What a shard's run needs from a written plan: its id and each shard's file count.
struct PlanSummary {
  std::string id;
  std::vector<std::size_t> shard_files;  // per shard, the lines of shard-NNNN.txt
};
// Reads plan.json in `folder`. Fails with ErrorCode::io (unreadable) or ErrorCode::integrity
// (not a plan, or one written before plans had an id: plan again).
[[nodiscard]] Result<PlanSummary> read_plan_summary(const std::filesystem::path& folder);
// "shard-0003.txt" for shard 3; shard_index_of("shard-0003.txt") is 3, nullopt for a name of
// another shape.
std::string shard_list_name(std::size_t shard);
std::optional<std::size_t> shard_index_of(const std::string& list_name);
std::string plan_text(const Plan& plan);

// The input folders of the plan `list` is a shard list of (shard-NNNN.txt beside its
// plan.json), for DeidRunOptions::report_roots; empty for any other list, or a plan written
// before plans recorded them. Never fails: the roots only name files in reports.
[[nodiscard]] std::vector<std::string> list_roots(const std::filesystem::path& list);

}  // namespace radguard::plan
