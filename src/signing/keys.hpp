#pragma once
// Key material with OpenSSL: test identities for people without a PKI, and the detached
// signatures that protect a manifest.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace radguard::signing {

enum class KeyAlgorithm : std::uint8_t { rsa2048, ecdsa_p256 };

// Parses "rsa" / "rsa2048" and "ec" / "ecdsa" / "p256". Fails with ErrorCode::usage.
[[nodiscard]] Result<KeyAlgorithm> parse_key_algorithm(std::string_view name);

// The organisation every test certificate names, so nobody mistakes one for a real identity.
inline constexpr std::string_view kTestOrganisation = "radguard TEST ONLY";

struct TestIdentityRequest {
  std::string common_name = "radguard test signer";
  KeyAlgorithm algorithm = KeyAlgorithm::rsa2048;
  int days = 365;
  // Shifts the validity window (tests make expired certificates with a negative offset).
  std::chrono::days not_before_offset{0};
};

struct TestIdentity {
  std::string subject;      // one-line subject of the certificate
  std::string fingerprint;  // SHA-256 of the certificate's DER encoding, hex
};

// Makes a new key pair and a self-signed certificate (O=radguard TEST ONLY) and writes them
// atomically: the key with mode 0600, the certificate 0644. Refuses to replace an existing
// key file (ErrorCode::conflict). Fails with ErrorCode::usage for days < 1, ErrorCode::crypto
// when OpenSSL fails, ErrorCode::io when a file cannot be written. Thread-safe.
[[nodiscard]] Result<TestIdentity> write_test_identity(const std::filesystem::path& key_path,
                                                       const std::filesystem::path& cert_path,
                                                       const TestIdentityRequest& request);

// A detached signature over some bytes, with the certificate that checks it.
struct DetachedSignature {
  std::string algorithm;        // "ecdsa-with-SHA256" or "sha256WithRSAEncryption"
  std::string certificate_pem;  // the signer's certificate
  std::string value;            // DER signature, base64
};

// Signs `message` (SHA-256) with the PEM key at `key_path`; `cert_path` must hold its
// certificate. Fails with ErrorCode::key when the files cannot be read or do not match,
// ErrorCode::crypto when signing fails. Thread-safe.
[[nodiscard]] Result<DetachedSignature> sign_detached(std::string_view message,
                                                      const std::filesystem::path& key_path,
                                                      const std::filesystem::path& cert_path);

enum class SignatureCheck : std::uint8_t { valid, invalid, untrusted_signer, expired_certificate };
std::string_view to_string(SignatureCheck check);

struct DetachedVerification {
  SignatureCheck check = SignatureCheck::invalid;
  std::string signer;  // certificate subject
  std::string reason;  // for anything but valid
};

// Checks `signature` over `message`, then the certificate against the trusted PEM files (an
// empty list trusts nothing). Fails with ErrorCode::key when a trust file cannot be read;
// every verdict, including invalid, is a successful result. Thread-safe.
[[nodiscard]] Result<DetachedVerification> verify_detached(
    std::string_view message, const DetachedSignature& signature,
    std::span<const std::filesystem::path> trusted);

// A detached CMS (PKCS #7) SignedData over `message`, DER encoded, as
// `openssl cms -sign -binary -outform DER` makes it: SHA-256, signed attributes, the signer's
// certificate included, the content left out. It verifies with OpenSSL alone:
//   openssl cms -verify -binary -inform DER -in SIG -content FILE -CAfile CA.pem -purpose any
// Same errors as sign_detached. Thread-safe.
Result<std::string> sign_cms_detached(std::string_view message,
                                      const std::filesystem::path& key_path,
                                      const std::filesystem::path& cert_path);

// Checks a detached CMS signature (DER) over `message`: every signer's signature (invalid
// when the message or the signature changed, or the bytes are not a CMS signature), then
// each signer's certificate (with the certificates the signature carries as intermediates)
// against the trusted PEM files; the worst verdict wins. Fails with ErrorCode::key when a
// trust file cannot be read; every verdict is a successful result. Thread-safe.
Result<DetachedVerification> verify_cms_detached(std::string_view message, std::string_view der,
                                                 std::span<const std::filesystem::path> trusted);

}  // namespace radguard::signing
