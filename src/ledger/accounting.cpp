#include "ledger/accounting.hpp"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/html.hpp"
#include "core/iso_time.hpp"

namespace radguard::ledger {

using nlohmann::json;

Result<Accounting> account_for(Ledger& ledger, std::string_view ledger_name,
                               const crypto::SecretKey& key, std::string_view patient_id,
                               std::string_view since_text) {
  Accounting out;
  out.ledger = std::string(ledger_name);
  out.key_fingerprint = key.fingerprint();
  if (!since_text.empty()) {
    auto normalized = normalize_iso8601(since_text);
    if (!normalized) return fail(ErrorCode::usage, "--since: " + normalized.error().message);
    out.since = *normalized;
  }
  if (auto same = ledger.check_key(key.fingerprint()); !same) return std::unexpected(same.error());
  auto verified = ledger.verify();
  if (!verified) return std::unexpected(verified.error());
  out.intact = verified->intact();
  out.problem = verified->problem;
  out.entries = verified->entries;
  auto entries = ledger.entries_for(patient_hash(key, std::string(patient_id)), out.since);
  if (!entries) return std::unexpected(entries.error());
  for (const auto& e : *entries) {
    const auto& p = e.patients.front();
    Disclosure d{e.recorded_at, e.recipient,     e.purpose,  describe(e, p), p.instances(), {},
                 e.release,     e.output_digest, e.sequence, e.entry_hash};
    for (const auto& s : p.studies) d.studies.push_back({s.study_uid, s.instances, s.modalities});
    out.disclosures.push_back(std::move(d));
  }
  return out;
}

namespace {

std::string integrity_words(const Accounting& a) {
  return a.intact ? "verified intact (" + std::to_string(a.entries) + " entries)"
                  : "ALTERED: " + a.problem;
}

}  // namespace

std::string accounting_json(const Accounting& a) {
  json list = json::array();
  for (const auto& d : a.disclosures) {
    json studies = json::array();
    for (const auto& s : d.studies)
      studies.push_back(
          {{"study_uid", s.study_uid}, {"instances", s.instances}, {"modalities", s.modalities}});
    list.push_back({{"date", d.date},
                    {"recipient", d.recipient},
                    {"purpose", d.purpose},
                    {"description", d.description},
                    {"instances", d.instances},
                    {"studies", studies},
                    {"release", d.release},
                    {"manifest_sha256", d.manifest_sha256},
                    {"ledger_entry", d.ledger_entry},
                    {"entry_hash", d.entry_hash}});
  }
  const json doc = {{"command", "disclosures"},
                    {"ledger", a.ledger},
                    {"ledger_intact", a.intact},
                    {"ledger_problem", a.problem},
                    {"key_fingerprint", a.key_fingerprint},
                    {"since", a.since ? json(*a.since) : json(nullptr)},
                    {"count", list.size()},
                    {"disclosures", list}};
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string accounting_text(const Accounting& a) {
  std::ostringstream out;
  out << "Accounting of disclosures (ledger " << a.ledger << ", " << integrity_words(a) << ")";
  if (a.since) out << " since " << *a.since;
  const std::size_t n = a.disclosures.size();
  out << ": " << n << (n == 1 ? " disclosure\n" : " disclosures\n");
  for (const auto& d : a.disclosures)
    out << d.date << "  to " << d.recipient << "  for " << d.purpose << "\n    " << d.description
        << "\n";
  return out.str();
}

std::string accounting_html(const Accounting& a) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Accounting of "
         "disclosures</title>"
      << "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px "
         "solid #999;"
         "padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>\n"
      << "<h1>Accounting of disclosures</h1>\n<p>Ledger " << html_escaped(a.ledger) << ": "
      << html_escaped(integrity_words(a))
      << (a.since ? ". Disclosures since " + html_escaped(*a.since) : std::string()) << ".</p>\n";
  if (a.disclosures.empty()) {
    out << "<p>No disclosures recorded.</p>\n";
  } else {
    out << "<table><thead><tr><th>Date</th><th>Recipient</th><th>Purpose</th><th>What was "
           "disclosed</th></tr>"
           "</thead><tbody>\n";
    for (const auto& d : a.disclosures)
      out << "<tr><td>" << html_escaped(d.date) << "</td><td>" << html_escaped(d.recipient)
          << "</td><td>" << html_escaped(d.purpose) << "</td><td>" << html_escaped(d.description)
          << "</td></tr>\n";
    out << "</tbody></table>\n";
  }
  out << "</body></html>\n";
  return out.str();
}

}  // namespace radguard::ledger
