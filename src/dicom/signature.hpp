#pragma once
// DICOM Digital Signatures (PS3.15 Annex C) through DCMTK's dcmsign. Like dicom_file.hpp,
// this header shows no DCMTK or OpenSSL type: callers see paths, strings and radguard types.
//
// radguard writes two signatures per file, both SHA-256 MACs signed with the same key:
//   - a full signature over every signable attribute of the data set including pixel data
//     (DCMTK records them all in Data Elements Signed), under the chosen security profile;
//   - a pixel signature whose Data Elements Signed is Pixel Data alone (files with pixels).
// The second one lets a verifier say *what* changed: when the full signature fails but the
// pixel one holds, the change lies in the attributes; when both fail, in the pixel data
// (whether attributes changed as well cannot then be told). Both verify with
// `dcmsign --verify`. (A header-only signature would tell the same apart, but DCMTK checks
// signature tag lists linearly per attribute, which made signing a third slower.)
//
// A signature covers only the attributes it lists, so an attribute added after signing
// leaves it intact (dcmsign reports such a file as OK); radguard reports it as invalid and
// names the added tag.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "core/tag.hpp"

namespace radguard::dicom {

// Which PS3.15 Annex C security profile a signature must satisfy. The three RSA profiles
// (base, creator, authorization) accept RSA keys only; `none` accepts RSA and ECDSA.
enum class SignatureProfile : std::uint8_t { none, base, creator, authorization };

// Parses "none", "base", "creator", "authorization". Fails with ErrorCode::usage.
[[nodiscard]] Result<SignatureProfile> parse_signature_profile(std::string_view name);
std::string_view to_string(SignatureProfile profile);

// Parsed key material kept between calls: decoding PEM costs more than signing an image.
struct KeyPool;
struct VerifierPool;
struct SignedFile;
struct FileVerification;

// A private key and its certificate, checked to match. Immutable once loaded; copies share
// the parsed key material. Thread-safe: each concurrent call borrows its own parsed copy.
class Signer {
 public:
  // Loads a PEM private key (unencrypted: radguard never prompts) and a PEM certificate.
  // Fails with ErrorCode::key when either cannot be read or they do not belong together,
  // ErrorCode::usage when the profile does not allow the key's algorithm.
  [[nodiscard]] static Result<Signer> load(const std::filesystem::path& key,
                                           const std::filesystem::path& cert,
                                           SignatureProfile profile);

  const std::filesystem::path& key_path() const { return key_; }
  const std::filesystem::path& cert_path() const { return cert_; }
  SignatureProfile profile() const { return profile_; }
  // The certificate's subject, as an RFC 2253-like string (the signer, not a patient).
  const std::string& subject() const { return subject_; }

 private:
  Signer(std::filesystem::path key, std::filesystem::path cert, SignatureProfile profile,
         std::string subject, std::shared_ptr<KeyPool> pool)
      : key_(std::move(key)),
        cert_(std::move(cert)),
        profile_(profile),
        subject_(std::move(subject)),
        pool_(std::move(pool)) {}
  friend struct SignerAccess;  // signature.cpp: the parsed key material
  std::filesystem::path key_, cert_;
  SignatureProfile profile_;
  std::string subject_;
  std::shared_ptr<KeyPool> pool_;
};

struct SignedFile {
  std::string signature_uid;  // Digital Signature UID of the full signature
  std::uint64_t bytes_read = 0;
};

// Adds radguard's two signatures to the DICOM file `input` and publishes the result at
// `output` atomically (temporary file + rename), so `output` may equal `input` (in-place).
// Existing signatures are kept (a new signer adds to, never replaces, earlier ones).
// Fails with ErrorCode::not_dicom / malformed_dicom for bad input, ErrorCode::crypto when
// DCMTK refuses to sign (e.g. the profile needs an attribute the file lacks), ErrorCode::io
// when the output cannot be written; `output` is then untouched. Thread-safe.
[[nodiscard]] Result<SignedFile> sign_file(const std::filesystem::path& input,
                                           const std::filesystem::path& output,
                                           const Signer& signer);

// A signed object held in memory.
struct SignedBytes {
  std::vector<std::uint8_t> bytes;  // the Part 10 object with radguard's two signatures added
  std::string signature_uid;        // Digital Signature UID of the full signature
};

// sign_file for an object held in memory (a pipeline's output on its way to the network or a
// download): the same signatures and meta header, written to memory. `part10` must be a Part
// 10 object (ErrorCode::not_dicom otherwise); the other errors are sign_file's. Thread-safe.
[[nodiscard]] Result<SignedBytes> sign_bytes(std::span<const std::uint8_t> part10,
                                             const Signer& signer);

// Certificates trusted as signers or as their issuing authorities. Immutable once loaded;
// copies share parsed state; thread-safe for verification.
class TrustStore {
 public:
  // Reads every PEM certificate file given. An empty list is allowed: nothing is trusted.
  // Fails with ErrorCode::key naming the file that cannot be read.
  [[nodiscard]] static Result<TrustStore> load(std::span<const std::filesystem::path> pem_files);
  std::span<const std::filesystem::path> files() const { return files_; }

 private:
  TrustStore(std::vector<std::filesystem::path> files, std::shared_ptr<VerifierPool> pool)
      : files_(std::move(files)), pool_(std::move(pool)) {}
  friend Result<FileVerification> verify_file(const std::filesystem::path&, const TrustStore&);
  std::vector<std::filesystem::path> files_;
  std::shared_ptr<VerifierPool> pool_;
};

// The verdict on one signature or one file, worst last: a file's verdict is the worst of its
// signatures' verdicts (and `unsigned_file` when it has none).
enum class Verdict : std::uint8_t {
  valid,
  untrusted_signer,  // the signature is intact but its certificate does not chain to a trust anchor
  expired_certificate,  // the signature is intact but the certificate has expired / is not yet
                        // valid
  unsigned_file,        // no Digital Signatures Sequence at all
  invalid,              // the signed data changed, or the signature itself is damaged
};
std::string_view to_string(Verdict verdict);

struct SignatureReport {
  std::string uid;                 // Digital Signature UID
  std::string location;            // "" for the main data set, else "(gggg,eeee)[i]..." of the item
  std::string signer;              // certificate subject
  std::string signed_at;           // Signature DateTime as written
  std::string mac_algorithm;       // e.g. "SHA256"
  bool covers_pixel_data = false;  // Pixel Data is among the signed elements
  bool pixel_data_only = false;    // radguard's pixel signature: Pixel Data alone
  Verdict verdict = Verdict::invalid;
  std::string reason;  // why, for anything but valid
};

struct FileVerification {
  Verdict verdict = Verdict::invalid;
  std::vector<SignatureReport> signatures;
  // What changed, when radguard can tell: "pixel data", "attributes", and tags added or
  // removed since signing ("added (0010,0010)"). Tags only, never values.
  std::vector<std::string> changes;
};

// Checks every signature in `path` (main data set and nested items). Fails only when the
// file cannot be examined at all (ErrorCode::io, not_dicom, malformed_dicom); every verdict,
// including `invalid`, is a successful result. Thread-safe.
[[nodiscard]] Result<FileVerification> verify_file(const std::filesystem::path& path,
                                                   const TrustStore& trust);

}  // namespace radguard::dicom
