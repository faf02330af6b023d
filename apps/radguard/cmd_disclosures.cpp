#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "crypto/crypto.hpp"
#include "ledger/accounting.hpp"
#include "ledger/ledger.hpp"
#include "store/database.hpp"

namespace radguard::cli {

namespace {

struct DisclosuresArgs {
  std::string patient;
  std::string ledger;
  std::string key;
  std::string since;
  std::string format = "text";
};

int run_disclosures(const DisclosuresArgs& a) {
  if (a.format != "text" && a.format != "json" && a.format != "html")
    return report_error(Error{ErrorCode::usage, "--format must be text, json or html"});
  auto key = load_secret_key(a.key);
  if (!key) return report_error(key.error());
  auto ledger = ledger::Ledger::open(a.ledger, ledger::LedgerAccess::read_only);
  if (!ledger) return report_error(ledger.error());
  auto accounting =
      ledger::account_for(*ledger, store::display_name(a.ledger), *key, a.patient, a.since);
  if (!accounting) return report_error(accounting.error());
  // An accounting from an altered ledger is still printed, but flagged and not a success.
  std::cout << (a.format == "json"   ? ledger::accounting_json(*accounting)
                : a.format == "html" ? ledger::accounting_html(*accounting)
                                     : ledger::accounting_text(*accounting));
  if (!accounting->intact)
    return report_error(
        Error{ErrorCode::integrity,
              store::display_name(a.ledger) + ": " + accounting->problem +
                  " (run radguard ledger verify; this accounting may be incomplete)"});
  return kExitSuccess;
}

}  // namespace

void add_disclosures(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("disclosures",
                                 "the accounting of disclosures for one patient, from the ledger");
  auto args = std::make_shared<DisclosuresArgs>();
  cmd->add_option("--patient", args->patient, "patient ID (looked up by its keyed hash)")
      ->required();
  cmd->add_option("--ledger", args->ledger, "ledger (SQLite file, file: URI or postgresql:// URI)")
      ->required();
  cmd->add_option("-k,--key", args->key, "the secret key the exports used")->required();
  cmd->add_option("--since", args->since,
                  "only disclosures recorded at or after this date (ISO 8601)");
  cmd->add_option("--format", args->format, "text, json or html")->capture_default_str();
  cmd->callback([&action, args] { action = [args] { return run_disclosures(*args); }; });
}

}  // namespace radguard::cli
