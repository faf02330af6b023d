#include "signing/keys.hpp"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <vector>

#include "core/atomic_file.hpp"
#include "crypto/crypto.hpp"

namespace radguard::signing {

namespace fs = std::filesystem;

namespace {

// PEM keys and certificates are a few kilobytes; anything far larger is not one.
constexpr std::uint64_t kMaxPemFile = 1 << 20;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using Extension = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using Cms = std::unique_ptr<CMS_ContentInfo, Deleter<CMS_ContentInfo, CMS_ContentInfo_free>>;

void free_certificates(STACK_OF(X509) * certs) { sk_X509_pop_free(certs, X509_free); }
void free_stack(STACK_OF(X509) * certs) { sk_X509_free(certs); }
using Certificates = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_certificates>>;
// A stack whose certificates belong to someone else.
using BorrowedCertificates = std::unique_ptr<STACK_OF(X509), Deleter<STACK_OF(X509), free_stack>>;

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::string text(256, '\0');
  ERR_error_string_n(code, text.data(), text.size());
  text.resize(text.find('\0'));
  return text;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

Bio memory_bio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string subject_of(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  return bio_text(bio.get());
}

std::string fingerprint_of(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert, EVP_sha256(), digest, &length);
  return crypto::to_hex(digest, length);
}

Result<X509Ptr> parse_certificate(std::string_view pem, const std::string& what) {
  Bio bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail(ErrorCode::key, "cannot read certificate " + what + " (PEM)");
  return cert;
}

Result<X509Ptr> read_certificate(const fs::path& path) {
  auto text = read_small_file(path, kMaxPemFile);
  if (!text) return fail(ErrorCode::key, text.error().message);
  return parse_certificate(*text, path.string());
}

Result<Store> trust_store(std::span<const fs::path> trusted) {
  Store store(X509_STORE_new());
  if (!store) return fail(ErrorCode::crypto, "cannot make a trust store: " + openssl_error());
  for (const auto& path : trusted) {
    auto anchor = read_certificate(path);
    if (!anchor) return fail(ErrorCode::key, "cannot read trusted certificate " + path.string());
    X509_STORE_add_cert(store.get(), anchor->get());
  }
  return store;
}

// Whether `cert` chains to the store (`untrusted`: intermediates offered by the signature).
// Fills `result` for anything but a valid chain and returns false then.
Result<bool> check_chain(X509_STORE* store, X509* cert, STACK_OF(X509) * untrusted,
                         bool no_anchors, DetachedVerification& result) {
  StoreCtx verify(X509_STORE_CTX_new());
  if (!verify || X509_STORE_CTX_init(verify.get(), store, cert, untrusted) != 1)
    return fail(ErrorCode::crypto, "cannot check the certificate: " + openssl_error());
  if (X509_verify_cert(verify.get()) == 1) return true;
  const int error = X509_STORE_CTX_get_error(verify.get());
  ERR_clear_error();
  result.check = (error == X509_V_ERR_CERT_HAS_EXPIRED || error == X509_V_ERR_CERT_NOT_YET_VALID)
                     ? SignatureCheck::expired_certificate
                     : SignatureCheck::untrusted_signer;
  result.reason =
      no_anchors ? "no trusted certificates given (--trust)" : X509_verify_cert_error_string(error);
  return false;
}

Result<PKey> read_private_key(const fs::path& path) {
  if (auto checked = check_secret_file(path, kMaxPemFile); !checked)
    return std::unexpected(checked.error());
  auto text = read_small_file(path, kMaxPemFile);
  if (!text) return fail(ErrorCode::key, text.error().message);
  Bio bio = memory_bio(*text);
  // An empty passphrase: an encrypted key fails instead of prompting in the middle of a run.
  char empty[] = "";
  PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, empty));
  OPENSSL_cleanse(text->data(), text->size());
  if (!key)
    return fail(ErrorCode::key, "cannot read private key " + path.string() + " (PEM, unencrypted)");
  return key;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) --size;
  out.resize(size);
  return out;
}

Status add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return fail(ErrorCode::crypto, "cannot add a certificate extension: " + openssl_error());
  return {};
}

}  // namespace

Result<KeyAlgorithm> parse_key_algorithm(std::string_view name) {
  if (name == "rsa" || name == "rsa2048") return KeyAlgorithm::rsa2048;
  if (name == "ec" || name == "ecdsa" || name == "p256") return KeyAlgorithm::ecdsa_p256;
  return fail(ErrorCode::usage, "unknown key algorithm '" + std::string(name) + "' (rsa, ecdsa)");
}

std::string_view to_string(SignatureCheck check) {
  switch (check) {
    case SignatureCheck::valid:
      return "valid";
    case SignatureCheck::invalid:
      return "invalid";
    case SignatureCheck::untrusted_signer:
      return "untrusted_signer";
    case SignatureCheck::expired_certificate:
      return "expired_certificate";
  }
  return "invalid";
}

Result<TestIdentity> write_test_identity(const fs::path& key_path, const fs::path& cert_path,
                                         const TestIdentityRequest& request) {
  if (request.days < 1) return fail(ErrorCode::usage, "--days must be at least 1");
  std::error_code ec;
  if (fs::exists(key_path, ec))
    return fail(ErrorCode::conflict, key_path.string() + " exists; radguard never replaces a key");
  PKey key(request.algorithm == KeyAlgorithm::rsa2048 ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  if (!key) return fail(ErrorCode::crypto, "cannot generate a key: " + openssl_error());

  X509Ptr cert(X509_new());
  if (!cert) return fail(ErrorCode::crypto, "cannot make a certificate: " + openssl_error());
  X509_set_version(cert.get(), 2);
  auto serial = crypto::random_bytes(16);
  if (!serial) return std::unexpected(serial.error());
  (*serial)[0] = static_cast<char>((*serial)[0] & 0x7F);  // a positive INTEGER
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(serial->data()), 16, nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  // An hour of slack before now: a signature made in the same second as the certificate, or
  // on a machine whose clock runs a little behind, must not predate it.
  const long offset = static_cast<long>(request.not_before_offset.count()) * 86400L;
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), offset - 3600L);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  offset + static_cast<long>(request.days) * 86400L);
  X509_NAME* name = X509_get_subject_name(cert.get());
  auto add = [name](const char* field, std::string_view value) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  };
  add("O", kTestOrganisation);
  add("OU", "not for clinical use");
  add("CN", request.common_name);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  // The certificate is its own trust anchor, hence CA:TRUE and keyCertSign.
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
        std::pair{NID_key_usage, "critical,digitalSignature,nonRepudiation,keyCertSign"},
        std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_netscape_comment, "radguard TEST ONLY certificate: not for clinical use"}}) {
    if (auto added = add_extension(cert.get(), nid, value); !added)
      return std::unexpected(added.error());
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
    return fail(ErrorCode::crypto, "cannot sign the certificate: " + openssl_error());

  Bio key_bio(BIO_new(BIO_s_mem()));
  Bio cert_bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1)
    return fail(ErrorCode::crypto, "cannot encode the key pair: " + openssl_error());
  std::string key_pem = bio_text(key_bio.get());
  const auto written =
      write_file_atomically(key_path, key_pem, fs::perms::owner_read | fs::perms::owner_write);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!written) return std::unexpected(written.error());
  if (auto cert_written = write_file_atomically(cert_path, bio_text(cert_bio.get()),
                                                fs::perms::owner_read | fs::perms::owner_write |
                                                    fs::perms::group_read | fs::perms::others_read);
      !cert_written)
    return std::unexpected(cert_written.error());
  return TestIdentity{subject_of(cert.get()), fingerprint_of(cert.get())};
}

Result<DetachedSignature> sign_detached(std::string_view message, const fs::path& key_path,
                                        const fs::path& cert_path) {
  auto key = read_private_key(key_path);
  if (!key) return std::unexpected(key.error());
  auto cert_text = read_small_file(cert_path, kMaxPemFile);
  if (!cert_text) return fail(ErrorCode::key, cert_text.error().message);
  auto cert = parse_certificate(*cert_text, cert_path.string());
  if (!cert) return std::unexpected(cert.error());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return fail(ErrorCode::key, "the private key " + key_path.string() +
                                    " does not belong to the certificate " + cert_path.string());
  }
  MdCtx ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key->get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return fail(ErrorCode::crypto, "cannot sign: " + openssl_error());
  std::string value(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(value.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return fail(ErrorCode::crypto, "cannot sign: " + openssl_error());
  value.resize(size);
  DetachedSignature signature;
  signature.algorithm =
      EVP_PKEY_base_id(key->get()) == EVP_PKEY_EC ? "ecdsa-with-SHA256" : "sha256WithRSAEncryption";
  signature.certificate_pem = *cert_text;
  signature.value = base64(value);
  return signature;
}

Result<DetachedVerification> verify_detached(std::string_view message,
                                             const DetachedSignature& signature,
                                             std::span<const fs::path> trusted) {
  auto store = trust_store(trusted);
  if (!store) return std::unexpected(store.error());
  DetachedVerification result;
  auto cert = parse_certificate(signature.certificate_pem, "in the manifest");
  if (!cert) {
    result.reason = "the signature carries no readable certificate";
    return result;
  }
  result.signer = subject_of(cert->get());
  const auto value = unbase64(signature.value);
  EVP_PKEY* public_key = X509_get0_pubkey(cert->get());
  MdCtx ctx(EVP_MD_CTX_new());
  if (!value || public_key == nullptr || !ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, public_key) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(value->data()),
                       value->size(), reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
    ERR_clear_error();
    result.reason = "the signature does not match the manifest: it was altered after signing";
    return result;
  }
  auto chained = check_chain(store->get(), cert->get(), nullptr, trusted.empty(), result);
  if (!chained) return std::unexpected(chained.error());
  if (*chained) result.check = SignatureCheck::valid;
  return result;
}

Result<std::string> sign_cms_detached(std::string_view message, const fs::path& key_path,
                                      const fs::path& cert_path) {
  auto key = read_private_key(key_path);
  if (!key) return std::unexpected(key.error());
  auto cert = read_certificate(cert_path);
  if (!cert) return std::unexpected(cert.error());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return fail(ErrorCode::key, "the private key " + key_path.string() +
                                    " does not belong to the certificate " + cert_path.string());
  }
  constexpr unsigned flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
  Cms cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
  Bio content = memory_bio(message);
  Bio out(BIO_new(BIO_s_mem()));
  if (!cms || !content || !out ||
      CMS_add1_signer(cms.get(), cert->get(), key->get(), EVP_sha256(), flags) == nullptr ||
      CMS_final(cms.get(), content.get(), nullptr, flags) != 1 ||
      i2d_CMS_bio(out.get(), cms.get()) != 1)
    return fail(ErrorCode::crypto, "cannot make the CMS signature: " + openssl_error());
  return bio_text(out.get());
}

Result<DetachedVerification> verify_cms_detached(std::string_view message, std::string_view der,
                                                 std::span<const fs::path> trusted) {
  auto store = trust_store(trusted);
  if (!store) return std::unexpected(store.error());
  DetachedVerification result;
  Bio in = memory_bio(der);
  Cms cms(in ? d2i_CMS_bio(in.get(), nullptr) : nullptr);
  if (!cms || OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) {
    ERR_clear_error();
    result.reason = "the signature file is not a CMS signature";
    return result;
  }
  Bio content = memory_bio(message);
  // The signatures and message digests first; the certificates are judged below, so an
  // untrusted signer is told apart from an altered message.
  if (!content || CMS_verify(cms.get(), nullptr, nullptr, content.get(), nullptr,
                             CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
    ERR_clear_error();
    result.reason = "the signature does not match the manifest: it was altered after signing";
    return result;
  }
  STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
  if (signers == nullptr || sk_X509_num(signers) == 0) {
    ERR_clear_error();
    result.reason = "the signature names no signer";
    return result;
  }
  // CMS_get0_signers returns a new stack whose certificates belong to the CMS structure.
  BorrowedCertificates owned(signers);
  Certificates carried(CMS_get1_certs(cms.get()));
  std::string subjects;
  for (int i = 0; i < sk_X509_num(signers); ++i) {
    X509* signer = sk_X509_value(signers, i);
    subjects += (subjects.empty() ? "" : "; ") + subject_of(signer);
    auto chained = check_chain(store->get(), signer, carried.get(), trusted.empty(), result);
    if (!chained) return std::unexpected(chained.error());
    if (!*chained) {
      result.signer = subject_of(signer);
      return result;
    }
  }
  result.signer = subjects;
  result.check = SignatureCheck::valid;
  return result;
}

}  // namespace radguard::signing
