#pragma once
// Cryptographic primitives (OpenSSL) and radguard's secret key.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace radguard::crypto {

using Digest = std::array<std::uint8_t, 32>;

// HMAC-SHA256 of `message` under `key`. Thread-safe. Never fails for in-memory input.
Digest hmac_sha256(std::string_view key, std::string_view message);

// SHA-256 of `data`. Thread-safe.
Digest sha256(std::string_view data);

// SHA-256 of a file's contents, streamed. Fails with ErrorCode::io.
[[nodiscard]] Result<Digest> sha256_file(const std::filesystem::path& path);

// Lower-case hexadecimal.
std::string to_hex(const std::uint8_t* data, std::size_t size);
inline std::string to_hex(const Digest& d) { return to_hex(d.data(), d.size()); }

// `count` bytes from the operating system's CSPRNG. Fails with ErrorCode::crypto.
[[nodiscard]] Result<std::string> random_bytes(std::size_t count);

// The secret that makes every pseudonym, UID and date shift repeatable for its holder and
// impossible to recompute for anyone else. Immutable once loaded; safe to share between
// threads.
class SecretKey {
 public:
  static constexpr std::size_t kBytes = 32;

  // Makes a new random key. Fails with ErrorCode::crypto.
  [[nodiscard]] static Result<SecretKey> generate();
  // Parses the text of a key file. Fails with ErrorCode::key (the message never echoes
  // the key material).
  [[nodiscard]] static Result<SecretKey> parse(std::string_view file_text);
  // Reads a key file. Fails with ErrorCode::key or ErrorCode::io.
  [[nodiscard]] static Result<SecretKey> load(const std::filesystem::path& path);
  // A warning for the operator when group or others may read or change the key file at
  // `path` (anyone who reads it can re-identify the data; said as ssh says it of private
  // keys); nullopt otherwise or when the file cannot be examined.
  static std::optional<std::string> permission_warning(const std::filesystem::path& path);

  // Writes the key to a new file with mode 0600. Refuses to replace an existing file
  // (ErrorCode::conflict) so a key in use is never lost by accident.
  [[nodiscard]] Status save_new(const std::filesystem::path& path) const;

  // HMAC-SHA256 of `domain` + NUL + `message`: separate domains never collide.
  Digest derive(std::string_view domain, std::string_view message) const;

  // A short public fingerprint that names the key in reports without revealing it.
  std::string fingerprint() const;

 private:
  explicit SecretKey(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

}  // namespace radguard::crypto
