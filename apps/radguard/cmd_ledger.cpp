#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "ledger/ledger.hpp"

namespace radguard::cli {

namespace {

struct LedgerArgs {
  std::string ledger;
  std::string expect_head;
  bool json = false;
};

int run_verify(const LedgerArgs& a) {
  auto ledger = ledger::Ledger::open(a.ledger, ledger::LedgerAccess::existing_only);
  if (!ledger) return report_error(ledger.error());
  auto report = ledger->verify();
  if (!report) return report_error(report.error());
  std::optional<Error> problem;
  if (!report->intact()) {
    problem = Error{ErrorCode::integrity, a.ledger + ": " + report->problem};
  } else if (!a.expect_head.empty() && a.expect_head != report->head_hash) {
    // The chain cannot show entries cut off its end; the head recorded elsewhere can.
    problem = Error{ErrorCode::integrity,
                    a.ledger +
                        ": the last entry's hash is not the expected head (entries were "
                        "removed from the end, or the ledger was replaced)"};
  }
  if (a.json) {
    nlohmann::json doc = {
        {"ledger", a.ledger},
        {"intact", !problem.has_value()},
        {"entries", report->entries},
        {"head_hash", report->head_hash},
        {"first_bad_entry", report->first_bad_sequence ? nlohmann::json(*report->first_bad_sequence)
                                                       : nlohmann::json(nullptr)},
        {"problem", problem ? problem->message : ""}};
    std::cout << doc.dump(2) << "\n";
  }
  if (problem) return report_error(*problem);
  if (!a.json)
    std::cout << a.ledger << ": intact, " << report->entries << " entries, head "
              << report->head_hash << "\n";
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
  verify->add_option("--ledger", args->ledger, "ledger (SQLite file or file: URI)")->required();
  verify->add_option(
      "--expect-head", args->expect_head,
      "the head hash printed by an earlier verify: also detects entries removed from the end");
  verify->add_flag("--json", args->json, "print JSON on stdout");
  verify->callback([&action, args] { action = [args] { return run_verify(*args); }; });
}

}  // namespace radguard::cli
