#pragma once
// The accounting of disclosures for one patient (HIPAA 164.528-style: when, to whom, for what
// purpose, what was disclosed), read from the ledger and given as text, JSON or HTML: by
// radguard disclosures and by the privacy officer's page.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "crypto/crypto.hpp"
#include "ledger/ledger.hpp"

namespace radguard::ledger {

struct DisclosedStudy {
  std::string study_uid;  // as released (pseudonymous)
  std::uint64_t instances = 0;
  std::vector<std::string> modalities;
};

struct Disclosure {
  std::string date;  // when the release was recorded
  std::string recipient, purpose;
  std::string description;  // in words: what was disclosed
  std::uint64_t instances = 0;
  std::vector<DisclosedStudy> studies;
  std::string release;          // the release folder's name
  std::string manifest_sha256;  // of its manifest.json
  std::int64_t ledger_entry = 0;
  std::string entry_hash;
};

struct Accounting {
  std::string ledger;       // as named by the caller (a path the operator gave)
  bool intact = false;      // the hash chain verified
  std::string problem;      // when not intact: the first problem found
  std::size_t entries = 0;  // in the whole ledger
  std::string key_fingerprint;
  std::optional<std::string> since;     // normalised ISO 8601
  std::vector<Disclosure> disclosures;  // oldest first
};

// The accounting for `patient_id` (looked up by its keyed hash) since `since` (ISO 8601, any
// form normalize_iso8601 takes; empty: all). An altered ledger still gives its accounting,
// with intact false and the problem (the caller flags it and fails). Fails with
// ErrorCode::usage (since), ErrorCode::key (the ledger was written with another key: no
// patient would ever be found, and "0 disclosures" would be a false accounting), ErrorCode::io.
[[nodiscard]] Result<Accounting> account_for(Ledger& ledger, std::string_view ledger_name,
                                             const crypto::SecretKey& key,
                                             std::string_view patient_id, std::string_view since);

std::string accounting_json(const Accounting& accounting);
std::string accounting_text(const Accounting& accounting);
// A whole page (inline style, nothing loaded from outside), every value escaped.
std::string accounting_html(const Accounting& accounting);

}  // namespace radguard::ledger
