#pragma once
// Consent per patient, for instances that arrive one at a time (a gateway route, an upload):
// the decision radguard export makes per study when it scans its inputs, made here per
// instance as it arrives, so that a withheld patient's images never reach a stage.
#include <memory>
#include <string>
#include <string_view>

#include "consent/consent.hpp"
#include "core/result.hpp"

namespace radguard::dicom {
class DicomFile;
}

namespace radguard::pipeline {

// What a consent gate is, as plain values (flags, a pipeline file).
struct ConsentSpec {
  std::string registry;    // a path or SQLite "file:" URI; must exist
  std::string purpose;     // consent::purpose_names()
  std::string consent_at;  // ISO 8601; empty: the time each instance arrives
};

// A purpose and a consent time checked: the purpose parsed, the time normalised (empty: now).
struct ConsentSettings {
  consent::Purpose purpose;
  std::string consent_at;
};
// The one check of --purpose and --consent-at, for export and for a gate. Fails with
// ErrorCode::usage naming the flag.
[[nodiscard]] Result<ConsentSettings> check_consent_settings(std::string_view purpose,
                                                             std::string_view consent_at);

// Thread-safe: admit() may be called from any thread (calls are serialised on the registry,
// which is not thread-safe).
class ConsentGate {
 public:
  // Opens the registry (never creates one: a mistyped path must not become a registry that
  // withholds everything without saying why). Fails with ErrorCode::usage (purpose, time),
  // ErrorCode::not_found (no registry), ErrorCode::io or ErrorCode::integrity.
  [[nodiscard]] static Result<ConsentGate> open(const ConsentSpec& spec);

  // Whether the instance's patient permits the purpose. Fails with ErrorCode::policy when
  // not (no Patient ID, a recorded denial, or no decision and a default that denies; the
  // message says which, never the ID), ErrorCode::io when the registry cannot be read.
  [[nodiscard]] Status admit(const dicom::DicomFile& instance) const;

  consent::Purpose purpose() const;

 private:
  struct State;
  explicit ConsentGate(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace radguard::pipeline
