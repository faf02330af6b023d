#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "crypto/crypto.hpp"
#include "export/release_check.hpp"
#include "ledger/ledger.hpp"
#include "store/database.hpp"

namespace radguard::cli {

namespace {

struct LedgerArgs {
  std::string ledger;
  std::string expect_head;
  std::string releases;
  bool json = false;
};

int run_verify(const LedgerArgs& a) {
  auto ledger = ledger::Ledger::open(a.ledger, ledger::LedgerAccess::read_only);
  if (!ledger) return report_error(ledger.error());
  auto report = ledger->verify();
  if (!report) return report_error(report.error());
  std::optional<Error> problem;
  if (!report->intact()) {
    problem = Error{ErrorCode::integrity, store::display_name(a.ledger) + ": " + report->problem};
  } else if (!a.expect_head.empty() && a.expect_head != report->head_hash) {
    // The chain cannot show entries cut off its end; the head recorded elsewhere can.
    problem = Error{ErrorCode::integrity,
                    store::display_name(a.ledger) +
                        ": the last entry's hash is not the expected head (entries were "
                        "removed from the end, or the ledger was replaced)"};
  }
  std::vector<std::string> release_problems;
  if (!problem && !a.releases.empty()) {
    auto checked = exporter::check_releases_against_ledger(*ledger, a.releases);
    if (!checked) return report_error(checked.error());
    release_problems = std::move(*checked);
    if (!release_problems.empty()) problem = Error{ErrorCode::integrity, release_problems.front()};
  }
  if (a.json) {
    nlohmann::json doc = {
        {"ledger", store::display_name(a.ledger)},
        {"intact", !problem.has_value()},
        {"entries", report->entries},
        {"head_hash", report->head_hash},
        {"first_bad_entry", report->first_bad_sequence ? nlohmann::json(*report->first_bad_sequence)
                                                       : nlohmann::json(nullptr)},
        {"problem", problem ? problem->message : ""},
        {"release_problems", release_problems}};
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  if (problem) return report_error(*problem);
  if (!a.json)
    std::cout << store::display_name(a.ledger) << ": intact, " << report->entries
              << " entries, head " << report->head_hash << "\n";
  return kExitSuccess;
}

// Every entry, oldest first: date, status, recipient, purpose, counts (no patient).
int run_list(const LedgerArgs& a) {
  auto ledger = ledger::Ledger::open(a.ledger, ledger::LedgerAccess::read_only);
  if (!ledger) return report_error(ledger.error());
  auto entries = ledger->all();
  if (!entries) return report_error(entries.error());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : *entries) {
    list.push_back({{"sequence", e.sequence},
                    {"date", e.recorded_at},
                    {"status", ledger::status_name(e.status)},
                    {"recipient", e.recipient},
                    {"purpose", e.purpose},
                    {"release", e.release},
                    {"patients", e.patients.size()},
                    {"studies", e.studies},
                    {"instances", e.instances},
                    {"excluded_studies", e.excluded_studies},
                    {"error", e.error}});
    if (!a.json)
      std::cout << e.sequence << "  " << e.recorded_at << "  " << ledger::status_name(e.status)
                << "  " << e.recipient << "  " << e.purpose << "  " << e.patients.size()
                << " patients, " << e.studies << " studies, " << e.instances << " instances, "
                << e.excluded_studies << " studies withheld"
                << (e.release.empty() ? "" : "  " + e.release) << "\n";
  }
  if (a.json)
    std::cout << nlohmann::json{{"ledger", store::display_name(a.ledger)}, {"entries", list}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  return kExitSuccess;
}

}  // namespace

void add_ledger(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "ledger", "the disclosure ledger: an append-only, hash-chained record of releases");
  cmd->require_subcommand(1);
  auto args = std::make_shared<LedgerArgs>();
  auto* verify = cmd->add_subcommand(
      "verify",
      "check every entry's hash and link; exit 0 when intact, non-zero naming the first bad entry");
  verify
      ->add_option("--ledger", args->ledger, "ledger (SQLite file, file: URI or postgresql:// URI)")
      ->required();
  verify->add_option(
      "--expect-head", args->expect_head,
      "the head hash printed by an earlier verify: also detects entries removed from the end");
  verify->add_option(
      "--releases", args->releases,
      "also check that every release-* folder in this folder is recorded with its manifest digest");
  verify->add_flag("--json", args->json, "print JSON on stdout");
  verify->callback([&action, args] { action = [args] { return run_verify(*args); }; });
  auto* list = cmd->add_subcommand(
      "list", "every release and failed attempt: date, recipient, purpose, counts (no patient)");
  list->add_option("--ledger", args->ledger, "ledger (SQLite file, file: URI or postgresql:// URI)")
      ->required();
  list->add_flag("--json", args->json, "print JSON on stdout");
  list->callback([&action, args] { action = [args] { return run_list(*args); }; });
}

}  // namespace radguard::cli
