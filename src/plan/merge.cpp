#include "plan/merge.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/json_number.hpp"

namespace radguard::plan {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What every shard's report must agree on: runs that differ here are not one release.
constexpr const char* kShared[] = {"tool",    "version",          "command",
                                   "profile", "key_fingerprint",  "output",
                                   "input_paths", "patient_identity_removed",
                                   "kept_against_profile"};

Error bad(const std::string& what) { return Error{ErrorCode::integrity, what}; }

Result<json> read_json(const fs::path& path) {
  auto text = read_small_file(path);
  if (!text) return std::unexpected(text.error());
  json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return std::unexpected(bad(path.string() + " is not a JSON object"));
  return doc;
}

// Adds b's numbers into a, key by key (objects recursively); a key only b has is copied.
void add_numbers(json& a, const json& b) {
  if (!b.is_object()) return;
  for (const auto& [key, value] : b.items()) {
    if (!a.contains(key)) {
      a[key] = value;
    } else if (value.is_number_unsigned() && a[key].is_number_unsigned()) {
      a[key] = a[key].get<std::uint64_t>() + value.get<std::uint64_t>();
    } else if (value.is_number() && a[key].is_number()) {
      a[key] = a[key].get<double>() + value.get<double>();
    } else if (value.is_object() && a[key].is_object()) {
      add_numbers(a[key], value);
    }
  }
}

std::uint64_t count_of(const json& report, const char* name) {
  const auto& counts = report.at("counts");
  return counts.contains(name) && counts[name].is_number_unsigned() ? counts[name].get<std::uint64_t>() : 0;
}

// Inputs the plan could not find are in no shard, so no shard's report names them; one run
// over the same inputs would have failed on them. They count, and are listed, as its report
// would list them: by file name unless the shards' reports show full paths.
void add_plans_missing_inputs(const json& plan, json& out, json& failures) {
  const json missing = plan.value("missing_inputs", json::array());
  if (!missing.is_array() || missing.empty()) return;
  const bool full_paths = out.value("input_paths", std::string()) == "full";
  for (const auto& m : missing) {
    const fs::path input = m.value("input", std::string());
    failures.push_back({{"input", full_paths ? input.string() : input.filename().string()},
                        {"status", "missing_input"},
                        {"error", "io"},
                        {"reason", m.value("reason", std::string())}});
  }
  out["counts"]["missing_inputs"] = count_of(out, "missing_inputs") + missing.size();
}

void append_sorted(json& into, const json& from) {
  if (from.is_array())
    for (const auto& entry : from) into.push_back(entry);
}

void sort_by_input(json& list) {
  std::stable_sort(list.begin(), list.end(), [](const json& a, const json& b) {
    return a.value("input", std::string()) < b.value("input", std::string());
  });
}

}  // namespace

fs::path shard_report_path(std::size_t shard) {
  char name[48];
  std::snprintf(name, sizeof name, "reports/shard-%04zu.json", shard);
  return name;
}

namespace {
Result<MergedReport> merge_checked_shapes(const fs::path& plan_folder);
}  // namespace

Result<MergedReport> merge_reports(const fs::path& plan_folder) {
  // A value of the wrong type anywhere (a hand-edited or damaged report) names the plan
  // instead of escaping as an exception.
  try {
    return merge_checked_shapes(plan_folder);
  } catch (const json::exception& e) {
    return std::unexpected(bad(plan_folder.string() +
                               ": a plan or shard report holds a value of the wrong type (" +
                               e.what() + ")"));
  }
}

namespace {

Result<MergedReport> merge_checked_shapes(const fs::path& plan_folder) {
  auto plan = read_json(plan_folder / "plan.json");
  if (!plan) return std::unexpected(plan.error());
  if (!plan->contains("shards") || !(*plan)["shards"].is_array() ||
      plan->value("command", "") != "plan")
    return std::unexpected(bad((plan_folder / "plan.json").string() + " is not a radguard plan"));
  const json& shards = (*plan)["shards"];

  MergedReport merged;
  merged.shards = shards.size();
  json out, failures = json::array(), skipped = json::array(), pixel_work = json::array();
  json shard_seconds = json::array(), stage_times = json::array();
  std::uint64_t not_started = 0;
  bool cancelled = false;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    const auto planned = json_integer_field(shards[s], "files", std::uint64_t{0});
    if (!planned)
      return std::unexpected(bad((plan_folder / "plan.json").string() + ": shard " +
                                 std::to_string(s) + "'s \"files\" is not a whole number"));
    const std::uint64_t listed = *planned;
    const fs::path path = plan_folder / shard_report_path(s);
    std::error_code ec;
    if (listed == 0 && !fs::exists(path, ec)) {
      shard_seconds.push_back(nullptr);
      continue;
    }
    auto report = read_json(path);
    if (!report)
      return std::unexpected(Error{report.error().code, "shard " + std::to_string(s) +
                                                            " has no usable report: " +
                                                            report.error().message});
    const std::string name = "shard " + std::to_string(s) + " (" + path.string() + ")";
    if (report->value("command", "") != "deid" || !report->contains("counts") ||
        !(*report)["counts"].is_object())
      return std::unexpected(bad(name + " is not a radguard deid report"));
    // Every listed file is accounted for: seen, or missing when the run looked for it.
    const std::uint64_t accounted =
        count_of(*report, "files_seen") + count_of(*report, "missing_inputs");
    if (accounted != listed)
      return std::unexpected(bad(name + " accounts for " + std::to_string(accounted) +
                                 " files, its list has " + std::to_string(listed) +
                                 " (a report of another plan or run?)"));
    // Every report's, the first's too: it becomes the merged report's starting value.
    const auto bytes_read = json_integer_field(*report, "bytes_read", std::uint64_t{0});
    if (!bytes_read) return std::unexpected(bad(name + ": \"bytes_read\" is not a whole number"));
    if (out.is_null()) {
      out = *report;
      stage_times = report->contains("timings") ? (*report)["timings"].value("pixel_stages", json::array())
                                                : json::array();
    } else {
      for (const char* key : kShared)
        if (out.value(key, json()) != report->value(key, json()))
          return std::unexpected(bad(name + " differs from the first shard's report in \"" + key +
                                     "\": not one release"));
      add_numbers(out["counts"], (*report)["counts"]);
      add_numbers(out["pixels"], report->value("pixels", json::object()));
      out["bytes_read"] = out.value("bytes_read", std::uint64_t{0}) + *bytes_read;
      out["seconds"] = out.value("seconds", 0.0) + report->value("seconds", 0.0);
      const json stages = report->contains("timings")
                              ? (*report)["timings"].value("pixel_stages", json::array())
                              : json::array();
      for (std::size_t i = 0; i < stages.size() && i < stage_times.size(); ++i)
        if (stages[i].value("stage", "") == stage_times[i].value("stage", ""))
          add_numbers(stage_times[i], json{{"prepare_seconds", stages[i].value("prepare_seconds", 0.0)},
                                           {"file_seconds_summed_over_threads",
                                            stages[i].value("file_seconds_summed_over_threads", 0.0)}});
    }
    append_sorted(failures, report->value("failures", json::array()));
    append_sorted(skipped, report->value("skipped", json::array()));
    append_sorted(pixel_work, report->value("pixel_work", json::array()));
    shard_seconds.push_back(report->value("seconds", 0.0));
    if (report->contains("cancelled")) {
      cancelled = true;
      const auto left =
          json_integer_field((*report)["cancelled"], "files_not_started", std::uint64_t{0});
      if (!left)
        return std::unexpected(bad(name + ": \"files_not_started\" is not a whole number"));
      not_started += *left;
    }
    ++merged.reports;
  }
  if (out.is_null())
    return std::unexpected(Error{ErrorCode::usage, "the plan in " + plan_folder.string() +
                                                       " has no shard with files: nothing to merge"});
  add_plans_missing_inputs(*plan, out, failures);
  sort_by_input(failures);
  sort_by_input(skipped);
  sort_by_input(pixel_work);
  out["failures"] = failures;
  out["skipped"] = skipped;
  out["pixel_work"] = pixel_work;
  out["timings"] = {{"total_seconds", out.value("seconds", 0.0)}, {"pixel_stages", stage_times}};
  out.erase("cancelled");
  if (cancelled) out["cancelled"] = {{"files_not_started", not_started}};
  // As DeidRunReport::exit_code: anything not written, or nothing DICOM at all, is a failure.
  const bool any_failed = count_of(out, "failed") > 0 || count_of(out, "duplicates") > 0 ||
                          count_of(out, "missing_inputs") > 0 ||
                          count_of(out, "dicom_inputs") == 0 || cancelled;
  merged.exit_code = any_failed ? 1 : 0;
  out["exit_code"] = merged.exit_code;
  // Each shard looked for killed runs' temporaries only in the folders its own files went to
  // (deid::StaleTemporaries::written_folders); one killed and not run again, or run again
  // after its list changed, left them elsewhere. The shared output tree (as the shards named
  // it, so relative to the same working folder) is walked here, once per release.
  const std::string output = out.value("output", std::string());
  merged.stale_temporaries_removed = output.empty() ? 0 : remove_stale_temporaries(output);
  out["merged"] = {{"shards", merged.shards},
                   {"shard_reports", merged.reports},
                   {"seconds", "summed over shards"},
                   {"shard_seconds", shard_seconds},
                   {"stale_temporaries_removed", merged.stale_temporaries_removed}};
  merged.report = std::move(out);
  return merged;
}

}  // namespace

std::string merged_text(const MergedReport& merged) {
  const json& r = merged.report;
  std::ostringstream out;
  out << "merged " << merged.reports << " shard reports of " << merged.shards
      << " shards: de-identified " << count_of(r, "written") << " of " << count_of(r, "files_seen")
      << " files in " << r.value("seconds", 0.0) << " s (summed over shards); failed "
      << count_of(r, "failed");
  if (const auto refused = count_of(r, "refused_burned_in_text"); refused > 0)
    out << " (" << refused << " refused: may show burned-in text)";
  out << ", duplicates " << count_of(r, "duplicates") << ", not DICOM "
      << count_of(r, "skipped_not_dicom") << ", DICOMDIR dropped "
      << count_of(r, "dicomdir_dropped") << "\n";
  for (const auto& f : r.value("failures", json::array()))
    out << "error: " << f.value("input", "") << ": " << f.value("reason", "") << "\n";
  if (count_of(r, "dicom_inputs") == 0)
    out << "error: no DICOM input found; nothing was de-identified\n";
  if (r.contains("cancelled"))
    out << "error: cancelled: " << r["cancelled"].value("files_not_started", std::uint64_t{0})
        << " file(s) not started\n";
  return out.str();
}

}  // namespace radguard::plan
