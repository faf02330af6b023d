#include "pseudonym/pseudonymizer.hpp"

#include <algorithm>
#include <array>

#include "core/text.hpp"

namespace radguard::pseudonym {

namespace {

std::string base32(const crypto::Digest& digest, std::size_t length) {
  static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";  // no I, O, 0, 1
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (const std::uint8_t byte : digest) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.size() < length) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31U];
      bits -= 5;
    }
  }
  return out;
}

}  // namespace

std::string patient_key(std::string_view patient_id, std::string_view issuer, std::string_view name,
                        std::string_view birth_date) {
  const std::string id = trimmed(patient_id);
  if (!id.empty()) return "id:" + trimmed(issuer) + "\x1f" + id;
  return "name:" + trimmed(name) + "\x1f" + trimmed(birth_date);
}

std::string Pseudonymizer::uid(std::string_view original) const {
  const crypto::Digest d = key_.derive("uid", trimmed(original));
  // The first 128 bits as a big-endian integer, written in decimal by long division.
  std::array<std::uint8_t, 16> value{};
  std::copy_n(d.begin(), value.size(), value.begin());
  std::string digits;
  bool nonzero = true;
  while (nonzero) {
    unsigned remainder = 0;
    nonzero = false;
    for (auto& byte : value) {
      const unsigned current = (remainder << 8) | byte;
      byte = static_cast<std::uint8_t>(current / 10);
      remainder = current % 10;
      nonzero = nonzero || byte != 0;
    }
    digits += static_cast<char>('0' + remainder);
  }
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

std::string Pseudonymizer::patient_id(std::string_view key) const {
  return "RG" + base32(key_.derive("patient-id", key), 16);
}

std::string Pseudonymizer::patient_name(std::string_view key) const {
  return "Anonymous^" + patient_id(key);
}

DateOffset Pseudonymizer::date_offset(std::string_view key) const {
  const crypto::Digest d = key_.derive("date-offset", key);
  const std::uint32_t a =
      (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
  const std::uint32_t b =
      (std::uint32_t{d[4]} << 24) | (std::uint32_t{d[5]} << 16) | (std::uint32_t{d[6]} << 8) | d[7];
  return DateOffset{-7 * static_cast<int>(1 + a % 520), static_cast<int>(b % 86400)};
}

std::string Pseudonymizer::token(std::string_view domain, std::string_view value,
                                 std::size_t length) const {
  return base32(key_.derive(domain, value), std::min<std::size_t>(length, 51));
}

}  // namespace radguard::pseudonym
