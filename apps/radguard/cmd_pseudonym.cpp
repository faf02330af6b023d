#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "ledger/ledger.hpp"
#include "pseudonym/pseudonymizer.hpp"

namespace radguard::cli {

namespace {

struct PseudonymArgs {
  std::string patient;
  std::string issuer;
  std::string key;
  std::vector<std::string> uids;
  bool json = false;
};

// What a patient's data became under a key: to trace a withdrawal request to released data.
int run_pseudonym(const PseudonymArgs& a) {
  if (a.patient.empty() && a.uids.empty())
    return report_error(Error{ErrorCode::usage, "give --patient, --uid, or both"});
  auto key = load_secret_key(a.key);
  if (!key) return report_error(key.error());
  const pseudonym::Pseudonymizer pseudonymizer(*key);
  nlohmann::json doc = {{"key_fingerprint", key->fingerprint()}};
  if (!a.patient.empty()) {
    const std::string patient = pseudonym::patient_key(a.patient, a.issuer, "", "");
    doc["patient_id"] = pseudonymizer.patient_id(patient);
    doc["patient_name"] = pseudonymizer.patient_name(patient);
    doc["ledger_patient_hash"] = ledger::patient_hash(*key, a.patient);
  }
  nlohmann::json uids = nlohmann::json::object();
  for (const auto& uid : a.uids) uids[uid] = pseudonymizer.uid(uid);
  if (!a.uids.empty()) doc["uids"] = uids;
  if (a.json) {
    std::cout << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitSuccess;
  }
  if (!a.patient.empty()) {
    std::cout << "Patient ID     " << doc["patient_id"].get<std::string>() << "\n"
              << "Patient's Name " << doc["patient_name"].get<std::string>() << "\n";
  }
  for (const auto& [original, replaced] : uids.items())
    std::cout << original << " -> " << replaced.get<std::string>() << "\n";
  return kExitSuccess;
}

}  // namespace

void add_pseudonym(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "pseudonym",
      "print what a patient's ID (and given UIDs) became in releases made with a key, "
      "to trace a withdrawal request to released data");
  auto args = std::make_shared<PseudonymArgs>();
  cmd->add_option("--patient", args->patient, "the original Patient ID");
  cmd->add_option("--issuer", args->issuer,
                  "the original Issuer of Patient ID, if the data had one");
  cmd->add_option("--uid", args->uids,
                  "an original Study, Series or SOP Instance UID (repeatable)");
  cmd->add_option("-k,--key", args->key, "the secret key the releases were made with")->required();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->callback([&action, args] { action = [args] { return run_pseudonym(*args); }; });
}

}  // namespace radguard::cli
