#include "crypto/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "core/atomic_file.hpp"

namespace radguard::crypto {

namespace {
constexpr std::string_view kKeyHeader = "radguard-key-v1:";
}

Digest hmac_sha256(std::string_view key, std::string_view message) {
  Digest out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(), &length);
  return out;
}

Digest sha256(std::string_view data) {
  Digest out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

Result<Digest> sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, "cannot open " + path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return fail(ErrorCode::crypto, "cannot initialise SHA-256");
  std::string buffer(1 << 16, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = in.gcount();
    if (got > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(got));
  }
  if (in.bad()) return fail(ErrorCode::io, "cannot read " + path.string());
  Digest out{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), out.data(), &length);
  return out;
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xF];
  }
  return out;
}

Result<std::string> random_bytes(std::size_t count) {
  std::string out(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1)
    return fail(ErrorCode::crypto, "the system random generator failed");
  return out;
}

Result<SecretKey> SecretKey::generate() {
  auto bytes = random_bytes(kBytes);
  if (!bytes) return std::unexpected(bytes.error());
  return SecretKey(std::move(*bytes));
}

Result<SecretKey> SecretKey::parse(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    if (!line.starts_with(kKeyHeader))
      return fail(ErrorCode::key, "not a radguard key file (expected a line starting with " +
                                      std::string(kKeyHeader) + ")");
    const std::string_view hex = line.substr(kKeyHeader.size());
    if (hex.size() != kBytes * 2) return fail(ErrorCode::key, "key has the wrong length");
    std::string bytes;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int hi = nibble(hex[i]);
      const int lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return fail(ErrorCode::key, "key is not hexadecimal");
      bytes += static_cast<char>((hi << 4) | lo);
    }
    return SecretKey(std::move(bytes));
  }
  return fail(ErrorCode::key, "key file holds no key");
}

std::optional<std::string> SecretKey::permission_warning(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::perms perms = fs::status(path, ec).permissions();
  const fs::perms others = fs::perms::group_all | fs::perms::others_all;
  if (ec || (perms & others) == fs::perms::none) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(perms) & 0777U);
  return "the secret key " + path.string() + " can be read or changed by other users (mode " +
         mode + "); anyone who reads it can re-identify the data: chmod 600 it";
}

Result<SecretKey> SecretKey::load(const std::filesystem::path& path) {
  // A key file is a few lines: anything else (a device such as /dev/zero, a huge file) is
  // refused before it is read.
  constexpr std::uint64_t kMaxKeyFile = 4096;
  if (auto checked = check_secret_file(path, kMaxKeyFile); !checked)
    return std::unexpected(checked.error());
  auto text = read_small_file(path, kMaxKeyFile);
  if (!text) return std::unexpected(Error{ErrorCode::key, text.error().message});
  auto key = parse(*text);
  if (!key) return std::unexpected(with_context(key.error(), path.string()));
  return key;
}

Status SecretKey::save_new(const std::filesystem::path& path) const {
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    return fail(ErrorCode::conflict, path.string() + " already exists; refusing to replace a key");
  const std::string text =
      "# radguard secret key. Anyone holding this file can recompute every pseudonym,\n"
      "# UID and date shift made with it: keep it private and backed up.\n" +
      std::string(kKeyHeader) +
      to_hex(reinterpret_cast<const std::uint8_t*>(bytes_.data()), bytes_.size()) + "\n";
  return write_file_atomically(
      path, text, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

Digest SecretKey::derive(std::string_view domain, std::string_view message) const {
  std::string input;
  input.reserve(domain.size() + 1 + message.size());
  input.append(domain);
  input.push_back('\0');
  input.append(message);
  return hmac_sha256(bytes_, input);
}

std::string SecretKey::fingerprint() const {
  const Digest d = derive("fingerprint", "");
  return to_hex(d.data(), 8);
}

}  // namespace radguard::crypto
