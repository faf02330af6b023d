#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "consent/consent.hpp"
#include "core/error_table.hpp"
#include "core/iso_time.hpp"

namespace radguard::cli {

namespace {

using nlohmann::json;

struct ConsentArgs {
  std::string registry;
  std::string patient;
  std::string purpose;
  std::string decision;
  std::string date;
  std::string source = "cli";
  std::string expires;
  std::string file;
  std::string at;
  bool json = false;
};

json record_json(const consent::Record& r) {
  return {{"patient_id", r.patient_id},
          {"purpose", consent::purpose_name(r.purpose)},
          {"decision", consent::decision_name(r.decision)},
          {"date", r.date},
          {"source", r.source},
          {"expires", r.expires.empty() ? json(nullptr) : json(r.expires)},
          {"sequence", r.sequence},
          {"recorded_at", r.recorded_at}};
}

Result<consent::Purpose> purpose_arg(const std::string& text) {
  if (auto p = consent::parse_purpose(text)) return *p;
  return fail(ErrorCode::usage, "--purpose must be one of " + consent::purpose_names());
}

Result<consent::Decision> decision_arg(const std::string& text) {
  if (auto d = consent::parse_decision(text)) return *d;
  return fail(ErrorCode::usage, "--decision must be permit or deny");
}

Result<std::string> time_arg(const std::string& text, const char* option) {
  if (text.empty()) return utc_now_iso8601();
  auto normalized = normalize_iso8601(text);
  if (!normalized)
    return fail(ErrorCode::usage, std::string(option) + ": " + normalized.error().message);
  return *normalized;
}

int run_set(const ConsentArgs& a) {
  auto purpose = purpose_arg(a.purpose);
  if (!purpose) return report_error(purpose.error());
  auto decision = decision_arg(a.decision);
  if (!decision) return report_error(decision.error());
  auto date = time_arg(a.date, "--date");
  if (!date) return report_error(date.error());
  consent::Record record;
  record.patient_id = a.patient;
  record.purpose = *purpose;
  record.decision = *decision;
  record.date = *date;
  record.source = a.source;
  if (!a.expires.empty()) {
    auto expires = time_arg(a.expires, "--expires");
    if (!expires) return report_error(expires.error());
    record.expires = *expires;
  }
  auto registry = consent::Registry::open(a.registry);
  if (!registry) return report_error(registry.error());
  auto stored = registry->record(record);
  if (!stored) return report_error(stored.error());
  record = *stored;
  if (a.json) {
    std::cout << json{{"command", "consent set"}, {"recorded", record_json(record)}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << "recorded " << consent::decision_name(record.decision) << " for "
              << consent::purpose_name(record.purpose) << " dated " << record.date << "\n";
  }
  return kExitSuccess;
}

int run_show(const ConsentArgs& a) {
  auto at = time_arg(a.at, "--at");
  if (!at) return report_error(at.error());
  auto registry = consent::Registry::open(a.registry, consent::RegistryAccess::read_only);
  if (!registry) return report_error(registry.error());
  json current = json::array();
  std::vector<std::pair<consent::Purpose, consent::Verdict>> verdicts;
  for (const consent::Purpose p : consent::all_purposes()) {
    auto verdict = registry->decide(a.patient, p, *at);
    if (!verdict) return report_error(verdict.error());
    current.push_back(
        {{"purpose", consent::purpose_name(p)},
         {"decision", consent::decision_name(verdict->decision)},
         {"basis", consent::basis_name(verdict->basis)},
         {"record", verdict->record ? record_json(*verdict->record) : json(nullptr)}});
    verdicts.emplace_back(p, *verdict);
  }
  auto history = registry->history(a.patient);
  if (!history) return report_error(history.error());
  if (a.json) {
    json h = json::array();
    for (const auto& r : *history) h.push_back(record_json(r));
    std::cout << json{{"patient_id", a.patient}, {"at", *at}, {"current", current}, {"history", h}}
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    return kExitSuccess;
  }
  std::cout << "decisions in force at " << *at << ":\n";
  for (const auto& [p, v] : verdicts) {
    std::cout << "  " << consent::purpose_name(p) << ": " << consent::decision_name(v.decision);
    if (v.record) {
      std::cout << " (" << v.record->date << ", " << v.record->source;
      if (!v.record->expires.empty()) std::cout << ", expires " << v.record->expires;
      std::cout << ")";
    } else {
      std::cout << " (default policy)";
    }
    std::cout << "\n";
  }
  std::cout << "history (" << history->size() << " decisions, oldest first):\n";
  for (const auto& r : *history) {
    std::cout << "  #" << r.sequence << " " << r.date << " " << consent::purpose_name(r.purpose)
              << " " << consent::decision_name(r.decision) << " source=" << r.source;
    if (!r.expires.empty()) std::cout << " expires=" << r.expires;
    std::cout << " recorded " << r.recorded_at << "\n";
  }
  return kExitSuccess;
}

int run_list(const ConsentArgs& a) {
  std::optional<consent::Purpose> purpose;
  if (!a.purpose.empty()) {
    auto p = purpose_arg(a.purpose);
    if (!p) return report_error(p.error());
    purpose = *p;
  }
  auto at = time_arg(a.at, "--at");
  if (!at) return report_error(at.error());
  auto registry = consent::Registry::open(a.registry, consent::RegistryAccess::read_only);
  if (!registry) return report_error(registry.error());
  auto current = registry->current(purpose, *at);
  if (!current) return report_error(current.error());
  if (a.json) {
    json list = json::array();
    for (const auto& r : *current) list.push_back(record_json(r));
    std::cout << json{{"at", *at}, {"decisions", list}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    return kExitSuccess;
  }
  for (const auto& r : *current) {
    std::cout << r.patient_id << "\t" << consent::purpose_name(r.purpose) << "\t"
              << consent::decision_name(r.decision) << "\t" << r.date << "\t" << r.source << "\t"
              << (r.expires.empty() ? "-" : r.expires) << "\n";
  }
  return kExitSuccess;
}

int run_import(const ConsentArgs& a) {
  auto registry = consent::Registry::open(a.registry);
  if (!registry) return report_error(registry.error());
  auto summary = registry->import_file(a.file);
  if (!summary) return report_error(summary.error());
  if (a.json) {
    std::cout << json{{"command", "consent import"},
                      {"file", a.file},
                      {"format", summary->format},
                      {"imported", summary->imported},
                      {"skipped", summary->skipped}}
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << "imported " << summary->imported << " decisions from " << a.file << " ("
              << summary->format << ")";
    if (summary->skipped > 0)
      std::cout << "; skipped " << summary->skipped << " resources not in force or not Consent";
    std::cout << "\n";
  }
  return kExitSuccess;
}

int run_default(const ConsentArgs& a) {
  if (a.purpose.empty() != a.decision.empty())
    return report_error(
        Error{ErrorCode::usage,
              "give both --purpose and --decision to change a default, or neither to show them"});
  auto registry = consent::Registry::open(a.registry, consent::RegistryAccess::existing_only);
  if (!registry) return report_error(registry.error());
  if (!a.purpose.empty()) {
    auto purpose = purpose_arg(a.purpose);
    if (!purpose) return report_error(purpose.error());
    auto decision = decision_arg(a.decision);
    if (!decision) return report_error(decision.error());
    if (auto s = registry->set_default(*purpose, *decision); !s) return report_error(s.error());
  }
  json defaults = json::object();
  for (const consent::Purpose p : consent::all_purposes()) {
    auto d = registry->default_for(p);
    if (!d) return report_error(d.error());
    defaults[std::string(consent::purpose_name(p))] = consent::decision_name(*d);
  }
  if (a.json) {
    std::cout << json{{"defaults", defaults}}.dump(2, ' ', false,
                                                   nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    for (const auto& [purpose, decision] : defaults.items())
      std::cout << purpose << ": " << decision.get<std::string>() << "\n";
  }
  return kExitSuccess;
}

}  // namespace

void add_consent(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("consent", "the consent registry: patients' decisions per purpose of use");
  cmd->require_subcommand(1);
  auto args = std::make_shared<ConsentArgs>();
  const std::string purposes = "purpose: " + consent::purpose_names();
  auto registry_option = [&](CLI::App* sub) {
    sub->add_option(
           "--registry", args->registry,
           "consent registry (SQLite file, file: URI or postgresql:// URI; import and set "
           "create it if missing, the other commands need it to exist)")
        ->required();
    sub->add_flag("--json", args->json, "print JSON on stdout");
  };

  auto* set = cmd->add_subcommand(
      "set", "record one decision (history is kept; the latest by date is in force)");
  set->add_option("--patient", args->patient, "patient ID")->required();
  set->add_option("--purpose", args->purpose, purposes)->required();
  set->add_option("--decision", args->decision, "permit or deny")->required();
  set->add_option("--date", args->date, "when the patient decided (ISO 8601; default now)");
  set->add_option("--source", args->source, "where the decision comes from")->capture_default_str();
  set->add_option("--expires", args->expires, "when the decision lapses (ISO 8601)");
  registry_option(set);
  set->callback([&action, args] { action = [args] { return run_set(*args); }; });

  auto* show = cmd->add_subcommand("show", "a patient's decisions in force and their history");
  show->add_option("--patient", args->patient, "patient ID")->required();
  show->add_option("--at", args->at, "evaluate at this time instead of now (ISO 8601)");
  registry_option(show);
  show->callback([&action, args] { action = [args] { return run_show(*args); }; });

  auto* list = cmd->add_subcommand(
      "list", "every recorded decision in force (internal: prints patient IDs)");
  list->add_option("--purpose", args->purpose, "only this " + purposes);
  list->add_option("--at", args->at, "evaluate at this time instead of now (ISO 8601)");
  registry_option(list);
  list->callback([&action, args] { action = [args] { return run_list(*args); }; });

  auto* import = cmd->add_subcommand(
      "import",
      "import decisions from CSV (patient_id,purpose,decision,date[,source,expires]) or FHIR R4 "
      "Consent JSON; "
      "all or nothing");
  import->add_option("FILE", args->file, "CSV file, or a FHIR Consent resource or Bundle (JSON)")
      ->required();
  registry_option(import);
  import->callback([&action, args] { action = [args] { return run_import(*args);
};
}  // namespace radguard::cli
);

auto* defaults = cmd->add_subcommand(
    "default", "show or change the decision used when a patient has none in force");
defaults->add_option("--purpose", args->purpose, purposes);
defaults->add_option("--decision", args->decision, "permit or deny");
registry_option(defaults);
defaults->callback([&action, args] { action = [args] { return run_default(*args); }; });
}

}  // namespace radguard::cli
