#include "gateway/pull.hpp"

#include <ostream>
#include <utility>

namespace radguard::gateway {

Status check_pull(const PullConfig& config) {
  if (config.values.empty())
    return fail(ErrorCode::usage, "nothing to pull: give studies on the command line or with --list");
  for (std::size_t i = 0; i < config.values.size(); ++i)
    if (auto checked = net::check_study_key(config.by, config.values[i]); !checked)
      return fail(ErrorCode::usage,
                  "item " + std::to_string(i + 1) + " of the list: " + checked.error().message);
  if (config.move_to.empty() || config.move_to.size() > 16)
    return fail(ErrorCode::usage, "--move-to must be an AE title of 1 to 16 characters");
  if (config.ae_title.empty() || config.ae_title.size() > 16)
    return fail(ErrorCode::usage, "--ae-title must be an AE title of 1 to 16 characters");
  return {};
}

Result<PullTotals> pull(const PullConfig& config, std::ostream& log) {
  if (auto checked = check_pull(config); !checked) return std::unexpected(checked.error());
  PullTotals totals;
  totals.items = config.values.size();
  bool reached = false;
  for (std::size_t i = 0; i < config.values.size(); ++i) {
    const std::string item = "item " + std::to_string(i + 1) + " of " +
                             std::to_string(config.values.size());
    // Asked first even for a Study Instance UID, so that a study the PACS does not hold is
    // reported as not found rather than as an empty move.
    auto found = net::find_studies(config.from, config.ae_title, config.by, config.values[i]);
    if (!found) {
      if (!reached) return std::unexpected(found.error());
      log << "radguard pull: " << item << ": " << found.error().message << '\n';
      ++totals.failed_studies;
      continue;
    }
    const std::vector<std::string> studies = std::move(*found);
    reached = true;
    if (studies.empty()) {
      ++totals.not_found;
      log << "radguard pull: " << item << ": no study found\n";
      continue;
    }
    std::uint64_t completed = 0, failed = 0, warnings = 0;
    std::size_t failed_studies = 0;
    for (const auto& study : studies) {
      ++totals.studies;
      auto moved = net::move_study(config.from, config.ae_title, config.move_to, study,
                                   config.timeout_s);
      if (!moved) {
        ++failed_studies;
        log << "radguard pull: " << item << ": " << moved.error().message << '\n';
        continue;
      }
      completed += moved->completed;
      failed += moved->failed;
      warnings += moved->warnings;
      if (!net::store_succeeded(moved->status) || moved->failed > 0) ++failed_studies;
    }
    totals.completed += completed;
    totals.failed += failed;
    totals.warnings += warnings;
    totals.failed_studies += failed_studies;
    log << "radguard pull: " << item << ": " << studies.size()
        << (studies.size() == 1 ? " study, " : " studies, ") << completed
        << (completed == 1 ? " instance" : " instances") << " sent to "
        << config.move_to << ", " << failed << " failed"
        << (failed_studies > 0 ? " (" + std::to_string(failed_studies) + " not complete)" : "")
        << '\n';
  }
  return totals;
}

}  // namespace radguard::gateway
