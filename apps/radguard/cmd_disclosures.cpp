#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "core/html.hpp"
#include "core/iso_time.hpp"
#include "crypto/crypto.hpp"
#include "ledger/ledger.hpp"

namespace radguard::cli {

namespace {

using nlohmann::json;

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
  std::optional<std::string> since;
  if (!a.since.empty()) {
    auto normalized = normalize_iso8601(a.since);
    if (!normalized)
      return report_error(Error{ErrorCode::usage, "--since: " + normalized.error().message});
    since = *normalized;
  }
  auto key = load_secret_key(a.key);
  if (!key) return report_error(key.error());
  auto ledger = ledger::Ledger::open(a.ledger, ledger::LedgerAccess::existing_only);
  if (!ledger) return report_error(ledger.error());
  // With another key no patient is ever found: "0 disclosures" would be a false accounting.
  if (auto same = ledger->check_key(key->fingerprint()); !same) return report_error(same.error());
  // An accounting from an altered ledger is still printed, but flagged and not a success.
  auto verified = ledger->verify();
  if (!verified) return report_error(verified.error());
  auto entries = ledger->entries_for(ledger::patient_hash(*key, a.patient), since);
  if (!entries) return report_error(entries.error());

  json list = json::array();
  for (const auto& e : *entries) {
    const auto& p = e.patients.front();
    json studies = json::array();
    for (const auto& s : p.studies)
      studies.push_back(
          {{"study_uid", s.study_uid}, {"instances", s.instances}, {"modalities", s.modalities}});
    list.push_back({{"date", e.recorded_at},
                    {"recipient", e.recipient},
                    {"purpose", e.purpose},
                    {"description", ledger::describe(e, p)},
                    {"instances", p.instances()},
                    {"studies", studies},
                    {"release", e.release},
                    {"manifest_sha256", e.output_digest},
                    {"ledger_entry", e.sequence},
                    {"entry_hash", e.entry_hash}});
  }
  const std::string integrity =
      verified->intact() ? "verified intact (" + std::to_string(verified->entries) + " entries)"
                         : "ALTERED: " + verified->problem;
  if (a.format == "json") {
    const json doc = {{"command", "disclosures"},
                      {"ledger", a.ledger},
                      {"ledger_intact", verified->intact()},
                      {"ledger_problem", verified->problem},
                      {"key_fingerprint", key->fingerprint()},
                      {"since", since ? json(*since) : json(nullptr)},
                      {"count", list.size()},
                      {"disclosures", list}};
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (a.format == "html") {
    std::ostringstream out;
    out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Accounting of "
           "disclosures</title>"
        << "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px "
           "solid #999;"
           "padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>\n"
        << "<h1>Accounting of disclosures</h1>\n<p>Ledger " << html_escaped(a.ledger) << ": "
        << html_escaped(integrity)
        << (since ? ". Disclosures since " + html_escaped(*since) : std::string()) << ".</p>\n";
    if (list.empty()) {
      out << "<p>No disclosures recorded.</p>\n";
    } else {
      out << "<table><thead><tr><th>Date</th><th>Recipient</th><th>Purpose</th><th>What was "
             "disclosed</th></tr>"
             "</thead><tbody>\n";
      for (const auto& d : list) {
        out << "<tr><td>" << html_escaped(d["date"].get<std::string>()) << "</td><td>"
            << html_escaped(d["recipient"].get<std::string>()) << "</td><td>"
            << html_escaped(d["purpose"].get<std::string>()) << "</td><td>"
            << html_escaped(d["description"].get<std::string>()) << "</td></tr>\n";
      }
      out << "</tbody></table>\n";
    }
    out << "</body></html>\n";
    std::cout << out.str();
  } else {
    std::cout << "Accounting of disclosures (ledger " << a.ledger << ", " << integrity << ")";
    if (since) std::cout << " since " << *since;
    std::cout << ": " << list.size() << (list.size() == 1 ? " disclosure\n" : " disclosures\n");
    for (const auto& d : list) {
      std::cout << d["date"].get<std::string>() << "  to " << d["recipient"].get<std::string>()
                << "  for " << d["purpose"].get<std::string>() << "\n    "
                << d["description"].get<std::string>() << "\n";
    }
  }
  if (!verified->intact())
    return report_error(
        Error{ErrorCode::integrity,
              a.ledger + ": " + verified->problem +
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
  cmd->add_option("--ledger", args->ledger, "ledger (SQLite file or file: URI)")->required();
  cmd->add_option("-k,--key", args->key, "the secret key the exports used")->required();
  cmd->add_option("--since", args->since,
                  "only disclosures recorded at or after this date (ISO 8601)");
  cmd->add_option("--format", args->format, "text, json or html")->capture_default_str();
  cmd->callback([&action, args] { action = [args] { return run_disclosures(*args); }; });
}

}  // namespace radguard::cli
