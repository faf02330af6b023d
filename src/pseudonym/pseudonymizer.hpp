#pragma once
// Keyed pseudonyms: every replacement UID, identifier, name and date shift is an
// HMAC-SHA256 of the original under the secret key. Stateless, so any number of threads,
// processes and machines holding the same key agree without talking to each other, and
// nobody without the key can recompute the mapping.
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/crypto.hpp"

namespace radguard::pseudonym {

// A per-patient shift applied to every date and time of that patient.
struct DateOffset {
  int days = 0;     // negative: dates move into the past
  int seconds = 0;  // 0..86399, added to times (carrying into the date when paired)
};

// Identifies a patient across files: issuer and ID when there is an ID, otherwise name and
// birth date. Built from original (pre-de-identification) values.
std::string patient_key(std::string_view patient_id, std::string_view issuer, std::string_view name,
                        std::string_view birth_date);

// Thread-safe; holds a copy of the key.
class Pseudonymizer {
 public:
  explicit Pseudonymizer(crypto::SecretKey key) : key_(std::move(key)) {}

  // "2.25." followed by the decimal form of 128 bits of HMAC of the original UID: at most 44
  // characters, no leading zeros, identical for identical input under the same key.
  std::string uid(std::string_view original) const;
  // A pseudonymous Patient ID ("RG" + 16 base-32 characters) for a patient key.
  std::string patient_id(std::string_view patient_key) const;
  // A pseudonymous Patient's Name ("Anonymous^RG...") for a patient key.
  std::string patient_name(std::string_view patient_key) const;
  // The date shift of a patient: whole weeks (so weekdays are kept) between 1 and 520
  // weeks back, plus a time-of-day shift.
  DateOffset date_offset(std::string_view patient_key) const;
  // A keyed, opaque token for any other value (used for output names and reports).
  std::string token(std::string_view domain, std::string_view value, std::size_t length) const;

  const crypto::SecretKey& key() const { return key_; }

 private:
  crypto::SecretKey key_;
};

}  // namespace radguard::pseudonym
