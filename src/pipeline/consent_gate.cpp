#include "pipeline/consent_gate.hpp"

#include <filesystem>
#include <mutex>

#include "core/iso_time.hpp"
#include "core/text.hpp"
#include "dicom/dicom_file.hpp"
#include "standard/tags.hpp"
#include "store/database.hpp"

namespace radguard::pipeline {

struct ConsentGate::State {
  std::mutex mutex;
  consent::Registry registry;
  consent::Purpose purpose;
  std::string consent_at;  // normalised; empty: now, per instance
};

Result<ConsentSettings> check_consent_settings(std::string_view purpose_name,
                                               std::string_view consent_at) {
  const auto purpose = consent::parse_purpose(purpose_name);
  if (!purpose)
    return fail(ErrorCode::usage, "--purpose must be one of " + consent::purpose_names());
  ConsentSettings settings{*purpose, {}};
  if (!consent_at.empty()) {
    auto normalized = normalize_iso8601(consent_at);
    if (!normalized) return fail(ErrorCode::usage, "--consent-at: " + normalized.error().message);
    settings.consent_at = *normalized;
  }
  return settings;
}

Result<ConsentGate> ConsentGate::open(const ConsentSpec& spec) {
  auto settings = check_consent_settings(spec.purpose, spec.consent_at);
  if (!settings) return std::unexpected(settings.error());
  std::error_code ec;
  if (store::names_a_file(spec.registry) && !std::filesystem::exists(spec.registry, ec))
    return fail(ErrorCode::not_found,
                "the consent registry " + spec.registry +
                    " does not exist (create it with radguard consent import or set)");
  auto registry = consent::Registry::open(spec.registry, consent::RegistryAccess::existing_only);
  if (!registry) return std::unexpected(registry.error());
  return ConsentGate(std::shared_ptr<State>(
      new State{{}, std::move(*registry), settings->purpose, std::move(settings->consent_at)}));
}

consent::Purpose ConsentGate::purpose() const { return state_->purpose; }

Status ConsentGate::admit(const dicom::DicomFile& instance) const {
  const std::string patient = trimmed(instance.string_of(tags::PatientID).value_or(""));
  if (patient.empty())
    return fail(ErrorCode::policy, "withheld: no Patient ID to look consent up by");
  const std::lock_guard lock(state_->mutex);
  const std::string now = state_->consent_at.empty() ? utc_now_iso8601() : state_->consent_at;
  auto verdict = state_->registry.decide(patient, state_->purpose, now);
  if (!verdict)
    return fail(ErrorCode::io,
                "the consent registry could not be read: " + verdict.error().message);
  if (verdict->permitted()) return {};
  return fail(ErrorCode::policy, verdict->basis == consent::Basis::recorded
                                     ? "withheld: the patient declined this purpose"
                                     : "withheld: no consent recorded for this purpose, and "
                                       "the registry's default denies it");
}

}  // namespace radguard::pipeline
