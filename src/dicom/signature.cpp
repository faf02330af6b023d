#include "dicom/signature.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcstack.h>
#include <dcmtk/dcmdata/dcvrat.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmsign/dcsighlp.h>
#include <dcmtk/dcmsign/dcsignat.h>
#include <dcmtk/dcmsign/siautopr.h>
#include <dcmtk/dcmsign/sibrsapr.h>
#include <dcmtk/dcmsign/sicert.h>
#include <dcmtk/dcmsign/sicertvf.h>
#include <dcmtk/dcmsign/sicreapr.h>
#include <dcmtk/dcmsign/simdmac.h>
#include <dcmtk/dcmsign/sinullpr.h>
#include <dcmtk/dcmsign/siprivat.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <array>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>

#include "core/atomic_file.hpp"
#include "core/version.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/dicom_file_impl.hpp"
#include "dicom/structure_check.hpp"

namespace radguard::dicom {

namespace fs = std::filesystem;

namespace {

constexpr Uint32 kMaxInMemoryValue = 4096;

void initialise_signing() {
  static std::once_flag once;
  std::call_once(once, [] {
    initialise();  // silences DCMTK logging before dcmsign can print anything
    DcmSignature::initializeLibrary();
  });
}

Tag tag_of(const DcmTagKey& key) { return Tag{key.getGroup(), key.getElement()}; }

// Elements PS3.15 C.12.1.1.3 excludes from every MAC.
bool signable(const DcmTagKey& key) {
  return key.getElement() != 0x0000 && key != DCM_DigitalSignaturesSequence &&
         key != DCM_MACParametersSequence && key != DCM_DataSetTrailingPadding &&
         key != DcmTagKey(0x0008, 0x0001) && key.getGroup() != 0x0002;
}

bool is_part10(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 132> head{};
  in.read(head.data(), head.size());
  return in.gcount() == 132 && std::string_view(head.data() + 128, 4) == "DICM";
}

Result<std::unique_ptr<DcmFileFormat>> load(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return fail(ErrorCode::io, "not a readable file");
  // A signature is only meaningful for a Part 10 file: a bare data set has no transfer
  // syntax that another reader would agree on.
  if (std::ifstream probe(path, std::ios::binary); !probe)
    return fail(ErrorCode::io, "cannot be read: permission denied or unreadable");
  if (!is_part10(path)) return fail(ErrorCode::not_dicom, "not a DICOM Part 10 file");
  // Nesting and deflate bombs are refused before DCMTK's recursive reader sees them.
  if (auto checked = check_structure(path, FileLayout::part10); !checked)
    return std::unexpected(checked.error());
  auto file = std::make_unique<DcmFileFormat>();
  const OFCondition status = file->loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange,
                                            kMaxInMemoryValue, ERM_fileOnly);
  if (status.bad()) return fail(ErrorCode::malformed_dicom, parse_failure(*file, status));
  if (file->getDataset() == nullptr || file->getDataset()->card() == 0)
    return fail(ErrorCode::malformed_dicom, "the file holds no data set");
  return file;
}

std::unique_ptr<SiSecurityProfile> make_profile(SignatureProfile profile) {
  switch (profile) {
    case SignatureProfile::base:
      return std::make_unique<SiBaseRSAProfile>();
    case SignatureProfile::creator:
      return std::make_unique<SiCreatorProfile>();
    case SignatureProfile::authorization:
      return std::make_unique<SiAuthorizationProfile>();
    case SignatureProfile::none:
      break;
  }
  return std::make_unique<SiNullProfile>();
}

// The MAC is computed over an encoding every reader can reproduce: explicit VR little endian,
// except for encapsulated pixel data, which has no other encoding than its own.
E_TransferSyntax mac_transfer_syntax(DcmDataset& dataset) {
  const DcmXfer original(dataset.getOriginalXfer());
  return original.isEncapsulated() ? original.getXfer() : EXS_LittleEndianExplicit;
}

struct KeyPair {
  SiPrivateKey key;
  SiCertificate cert;
};

// PEM keys and certificates are a few kilobytes; anything far larger is not one.
constexpr std::uint64_t kMaxPemFile = 1 << 20;

Status check_certificate_file(const fs::path& path) {
  // DCMTK reads the file itself: refuse devices (/dev/zero would be read forever) and
  // huge files first.
  if (auto text = read_small_file(path, kMaxPemFile); !text)
    return fail(ErrorCode::key, text.error().message);
  return {};
}

Status load_key_pair(const fs::path& key_path, const fs::path& cert_path, KeyPair& pair) {
  if (auto checked = check_secret_file(key_path, kMaxPemFile); !checked) return checked;
  if (auto checked = check_certificate_file(cert_path); !checked) return checked;
  // An empty password makes an encrypted key fail to load instead of prompting on a terminal
  // in the middle of a batch.
  pair.key.setPrivateKeyPasswd("");
  if (pair.key.loadPrivateKey(key_path.c_str(), X509_FILETYPE_PEM).bad())
    return fail(ErrorCode::key,
                "cannot read private key " + key_path.string() + " (PEM, unencrypted, RSA or EC)");
  if (pair.cert.loadCertificate(cert_path.c_str(), X509_FILETYPE_PEM).bad())
    return fail(ErrorCode::key, "cannot read certificate " + cert_path.string() + " (PEM)");
  if (!pair.key.matchesCertificate(pair.cert))
    return fail(ErrorCode::key, "the private key " + key_path.string() +
                                    " does not belong to the certificate " + cert_path.string());
  return {};
}

// Borrowed objects go back to their pool when the lease ends, ready for the next call.
template <typename T>
class Pool {
 public:
  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<T> object) : pool_(&pool), object_(std::move(object)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (object_) pool_->give_back(std::move(object_));
    }
    T& operator*() const { return *object_; }
    T* operator->() const { return object_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<T> object_;
  };

  // An idle object, or nullptr when the caller must make one.
  std::unique_ptr<T> take() {
    const std::lock_guard lock(mutex_);
    if (idle_.empty()) return nullptr;
    auto object = std::move(idle_.back());
    idle_.pop_back();
    return object;
  }
  void give_back(std::unique_ptr<T> object) {
    const std::lock_guard lock(mutex_);
    idle_.push_back(std::move(object));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> idle_;
};

std::string subject_of(SiCertificate& cert) {
  OFString subject;
  cert.getCertSubjectName(subject);
  return subject.c_str();
}

}  // namespace

struct KeyPool : Pool<KeyPair> {};
struct VerifierPool : Pool<SiCertificateVerifier> {};

Result<SignatureProfile> parse_signature_profile(std::string_view name) {
  if (name == "none") return SignatureProfile::none;
  if (name == "base") return SignatureProfile::base;
  if (name == "creator") return SignatureProfile::creator;
  if (name == "authorization") return SignatureProfile::authorization;
  return fail(ErrorCode::usage, "unknown signature profile '" + std::string(name) +
                                    "' (none, base, creator, authorization)");
}

std::string_view to_string(SignatureProfile profile) {
  switch (profile) {
    case SignatureProfile::none:
      return "none";
    case SignatureProfile::base:
      return "base";
    case SignatureProfile::creator:
      return "creator";
    case SignatureProfile::authorization:
      return "authorization";
  }
  return "none";
}

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::valid:
      return "valid";
    case Verdict::untrusted_signer:
      return "untrusted_signer";
    case Verdict::expired_certificate:
      return "expired_certificate";
    case Verdict::unsigned_file:
      return "unsigned";
    case Verdict::invalid:
      return "invalid";
  }
  return "invalid";
}

Result<Signer> Signer::load(const fs::path& key, const fs::path& cert, SignatureProfile profile) {
  initialise_signing();
  auto pair = std::make_unique<KeyPair>();
  if (auto loaded = load_key_pair(key, cert, *pair); !loaded)
    return std::unexpected(loaded.error());
  if (!make_profile(profile)->isAllowableAlgorithmType(pair->key.getKeyType()))
    return fail(ErrorCode::usage, "the " + std::string(to_string(profile)) +
                                      " profile needs an RSA key; use --profile none for ECDSA");
  std::string subject = subject_of(pair->cert);
  auto pool = std::make_shared<KeyPool>();
  pool->give_back(std::move(pair));
  return Signer(key, cert, profile, std::move(subject), std::move(pool));
}

struct SignerAccess {
  static KeyPool& pool(const Signer& signer) { return *signer.pool_; }
};

// Adds the two signatures to a loaded file and brings its meta header up to date. Returns the
// signature's UID; the caller writes the file in its data set's original transfer syntax.
Result<SignedFile> sign_loaded(DcmFileFormat& file, const Signer& signer) {
  DcmDataset& dataset = *file.getDataset();
  KeyPool& pool = SignerAccess::pool(signer);
  auto idle = pool.take();
  if (!idle) {
    idle = std::make_unique<KeyPair>();
    if (auto loaded = load_key_pair(signer.key_path(), signer.cert_path(), *idle); !loaded)
      return std::unexpected(loaded.error());
  }
  const Pool<KeyPair>::Lease lease(pool, std::move(idle));
  KeyPair& pair = *lease;
  const E_TransferSyntax mac_xfer = mac_transfer_syntax(dataset);

  const bool has_pixel_data = dataset.tagExists(DCM_PixelData);

  DcmSignature signature;
  signature.attach(&dataset);
  SiMDMAC full_mac(EMT_SHA256);
  auto profile = make_profile(signer.profile());
  OFCondition status = signature.createSignature(pair.key, pair.cert, full_mac, *profile, mac_xfer);
  if (status.bad())
    return fail(ErrorCode::crypto, std::string("cannot sign under the ") +
                                       std::string(to_string(signer.profile())) +
                                       " profile: " + status.text());
  SignedFile result;
  if (signature.selectSignature(signature.numberOfSignatures() - 1).good()) {
    OFString uid;
    signature.getCurrentSignatureUID(uid);
    result.signature_uid = uid.c_str();
  }
  if (has_pixel_data) {
    DcmAttributeTag pixel_only(DCM_DataElementsSigned);
    pixel_only.putTagVal(DCM_PixelData, 0);
    SiMDMAC pixel_mac(EMT_SHA256);
    SiNullProfile pixel_profile;
    status = signature.createSignature(pair.key, pair.cert, pixel_mac, pixel_profile, mac_xfer,
                                       &pixel_only);
    if (status.bad())
      return fail(ErrorCode::crypto, std::string("cannot sign the pixel data: ") + status.text());
  }
  signature.detach();

  // The meta header is kept (signing is not de-identification), except that it names the
  // implementation that wrote this file and the transfer syntax it is written in.
  const E_TransferSyntax xfer = dataset.getOriginalXfer();
  DcmMetaInfo& meta = *file.getMetaInfo();
  meta.putAndInsertString(DCM_TransferSyntaxUID, DcmXfer(xfer).getXferID());
  meta.putAndInsertString(DCM_ImplementationClassUID, std::string(kImplementationClassUid).c_str());
  meta.putAndInsertString(DCM_ImplementationVersionName,
                          std::string(kImplementationVersionName).c_str());
  meta.putAndInsertUint32(DCM_FileMetaInformationGroupLength, 0);
  meta.computeGroupLengthAndPadding(EGL_withGL, EPD_noChange, EXS_LittleEndianExplicit,
                                    EET_ExplicitLength);
  return result;
}

Result<SignedFile> sign_file(const fs::path& input, const fs::path& output, const Signer& signer) {
  initialise_signing();
  auto file = load(input);
  if (!file) return std::unexpected(file.error());
  auto result = sign_loaded(**file, signer);
  if (!result) return std::unexpected(result.error());
  const E_TransferSyntax xfer = (*file)->getDataset()->getOriginalXfer();
  auto pending = PendingFile::create(output);
  if (!pending) return std::unexpected(pending.error());
  if (auto saved = save_checked(**file, pending->temp_path(), xfer, EWM_dontUpdateMeta); !saved)
    return std::unexpected(with_context(saved.error(), output.string()));
  std::error_code ec;
  result->bytes_read = fs::file_size(input, ec);
  // Keep the input's permission bits: signing must not widen who can read an image.
  const fs::perms perms = fs::status(input, ec).permissions();
  if (auto committed = ec ? pending->commit() : pending->commit(perms & fs::perms::mask);
      !committed)
    return std::unexpected(committed.error());
  return result;
}

Result<SignedBytes> sign_bytes(std::span<const std::uint8_t> part10, const Signer& signer) {
  initialise_signing();
  // As load() requires of a file: only a Part 10 object has a transfer syntax every reader
  // agrees on.
  if (part10.size() < 132 ||
      std::string_view(reinterpret_cast<const char*>(part10.data()) + 128, 4) != "DICM")
    return fail(ErrorCode::not_dicom, "not a DICOM Part 10 object");
  auto file = DicomFile::open_bytes(part10);
  if (!file) return std::unexpected(file.error());
  DcmFileFormat& format = PixelAccess::impl(*file).file;
  auto result = sign_loaded(format, signer);
  if (!result) return std::unexpected(result.error());
  auto written =
      write_to_memory(format, format.getDataset()->getOriginalXfer(), EWM_dontUpdateMeta);
  if (!written) return std::unexpected(written.error());
  return SignedBytes{std::move(*written), std::move(result->signature_uid)};
}

Result<TrustStore> TrustStore::load(std::span<const fs::path> pem_files) {
  initialise_signing();
  for (const auto& path : pem_files) {
    if (auto checked = check_certificate_file(path); !checked)
      return std::unexpected(checked.error());
    SiCertificate cert;
    if (cert.loadCertificate(path.c_str(), X509_FILETYPE_PEM).bad())
      return fail(ErrorCode::key, "cannot read trusted certificate " + path.string() + " (PEM)");
  }
  return TrustStore(std::vector<fs::path>(pem_files.begin(), pem_files.end()),
                    std::make_shared<VerifierPool>());
}

namespace {

struct SignedList {
  bool present = false;
  std::vector<DcmTagKey> tags;
};

SignedList data_elements_signed(DcmSignature& signature) {
  SignedList list;
  DcmAttributeTag tags(DCM_DataElementsSigned);
  if (signature.getCurrentDataElementsSigned(tags).bad()) return list;
  list.present = true;
  for (unsigned long i = 0; i < tags.getVM(); ++i) {
    DcmTagKey key;
    if (tags.getTagVal(key, i).good()) list.tags.push_back(key);
  }
  return list;
}

// The attributes of `item` a signature made now would cover. DCMTK leaves out elements whose
// VR is uncertain (read in implicit VR without a dictionary entry, such as most private
// elements): their encoding in the MAC's explicit VR syntax is not defined, so no signature
// covers them, and their absence from Data Elements Signed does not mean they were added.
std::set<DcmTagKey> signable_tags_of(DcmItem& item) {
  std::set<DcmTagKey> tags;
  for (DcmObject* object = item.nextInContainer(nullptr); object != nullptr;
       object = item.nextInContainer(object))
    if (signable(object->getTag()) && object->isSignable()) tags.insert(object->getTag());
  return tags;
}

// The signature's Digital Signature DateTime (YYYYMMDDHHMMSS[.FFFFFF][&ZZXX]) in seconds
// since the epoch, UTC: the offset is applied (DCMTK's own check ignores it and reads a local
// time as UTC); without one the time is taken as UTC.
std::optional<std::int64_t> signature_time_utc(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  if (text.size() < 14 ||
      !std::all_of(text.begin(), text.begin() + 14, [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  auto number = [&](std::size_t at, std::size_t n) { return std::stoi(text.substr(at, n)); };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(4, 2) - 1;
  tm.tm_mday = number(6, 2);
  tm.tm_hour = number(8, 2);
  tm.tm_min = number(10, 2);
  tm.tm_sec = number(12, 2);
  std::int64_t seconds = ::timegm(&tm);
  const auto sign = text.find_first_of("+-", 14);
  if (sign != std::string::npos && sign + 5 <= text.size()) {
    const std::string offset = text.substr(sign + 1, 4);
    if (!std::all_of(offset.begin(), offset.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    const std::int64_t minutes = std::stoi(offset.substr(0, 2)) * 60 + std::stoi(offset.substr(2, 2));
    seconds += (text[sign] == '+' ? -60 : 60) * minutes;
  }
  return seconds;
}

std::optional<std::int64_t> asn1_seconds(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm));
}

// DCMTK reports "not yet valid at signature creation" when the certificate's notBefore is
// after the signature's date and time as DCMTK reads it: ignoring the time zone, at whole
// seconds. A signature made in the same second as its certificate (clocks read by different
// routines can straddle a second boundary) or dated in a zone west of UTC was then called
// expired. Judged again here with the offset applied and one second of tolerance.
bool valid_at_signature_time(SiCertificate& cert, const std::string& signed_at) {
  X509* x509 = cert.getRawCertificate();
  const auto when = signature_time_utc(signed_at);
  if (x509 == nullptr || !when) return false;
  const auto not_before = asn1_seconds(X509_get0_notBefore(x509));
  const auto not_after = asn1_seconds(X509_get0_notAfter(x509));
  if (!not_before || !not_after) return false;
  constexpr std::int64_t kToleranceSeconds = 1;
  return *when + kToleranceSeconds >= *not_before && *when <= *not_after;
}

std::string location_of(DcmStack& stack) {
  OFString text;
  DcmSignatureHelper::printSignatureItemPosition(stack, text);
  return text.c_str();
}

}  // namespace

Result<FileVerification> verify_file(const fs::path& path, const TrustStore& trust) {
  initialise_signing();
  auto file = load(path);
  if (!file) return std::unexpected(file.error());
  DcmDataset& dataset = *(*file)->getDataset();

  auto idle = trust.pool_->take();
  if (!idle) {
    idle = std::make_unique<SiCertificateVerifier>();
    for (const auto& anchor : trust.files()) {
      if (idle->addTrustedCertificateFile(anchor.c_str(), X509_FILETYPE_PEM).bad())
        return fail(ErrorCode::key, "cannot read trusted certificate " + anchor.string());
    }
  }
  const Pool<SiCertificateVerifier>::Lease lease(*trust.pool_, std::move(idle));
  SiCertificateVerifier& verifier = *lease;

  FileVerification result;
  result.verdict = Verdict::valid;
  // Main data set signatures: the attributes each covers, and radguard's pixel signature.
  std::set<DcmTagKey> covered;
  bool full_failed = false;
  std::optional<std::size_t> pixel_index;

  DcmStack stack;
  for (DcmItem* item = DcmSignature::findFirstSignatureItem(dataset, stack); item != nullptr;
       item = DcmSignature::findNextSignatureItem(dataset, stack)) {
    const bool main = item == &dataset;
    const std::string location = main ? std::string() : location_of(stack);
    DcmSignature signature;
    signature.attach(item);
    for (unsigned long i = 0; i < signature.numberOfSignatures(); ++i) {
      SignatureReport report;
      report.location = location;
      if (signature.selectSignature(i).bad()) {
        report.reason = "unreadable signature item";
        result.verdict = Verdict::invalid;
        result.signatures.push_back(std::move(report));
        continue;
      }
      OFString text;
      if (signature.getCurrentSignatureUID(text).good()) report.uid = text.c_str();
      if (signature.getCurrentSignatureDateTime(text).good()) report.signed_at = text.c_str();
      if (signature.getCurrentMacName(text).good()) report.mac_algorithm = text.c_str();
      const SignedList list = data_elements_signed(signature);
      report.covers_pixel_data = !list.present || std::find(list.tags.begin(), list.tags.end(),
                                                            DCM_PixelData) != list.tags.end();
      report.pixel_data_only =
          list.present && list.tags.size() == 1 && list.tags.front() == DCM_PixelData;
      SiCertificate* cert = signature.getCurrentCertificate();
      if (cert != nullptr) report.signer = subject_of(*cert);

      OFCondition status = signature.verifyCurrent();
      // verifyCurrent() checks the dates only after the MAC and the signature verified.
      if (status == SI_EC_VerificationFailed_CertNotYetValidAtSig && cert != nullptr &&
          valid_at_signature_time(*cert, report.signed_at))
        status = EC_Normal;
      if (status == SI_EC_VerificationFailed_CertExpiredAtSignature ||
          status == SI_EC_VerificationFailed_CertNotYetValidAtSig) {
        report.verdict = Verdict::expired_certificate;
        report.reason = status.text();
      } else if (status.bad()) {
        report.verdict = Verdict::invalid;
        report.reason = status == SI_EC_VerificationFailed_Corrupted
                            ? "the signed data changed since signing"
                            : status.text();
      } else if (cert == nullptr) {
        report.verdict = Verdict::invalid;
        report.reason = "no certificate in the signature";
      } else if (verifier.verifyCertificate(*cert).bad()) {
        report.verdict = verifier.lastErrorIsCertExpiry() ? Verdict::expired_certificate
                                                          : Verdict::untrusted_signer;
        report.reason = trust.files().empty() ? "no trusted certificates given (--trust)"
                                              : std::string(verifier.lastError());
      } else {
        report.verdict = Verdict::valid;
      }

      if (main) {
        if (report.pixel_data_only) {
          pixel_index = result.signatures.size();
        } else if (report.verdict == Verdict::invalid) {
          full_failed = true;
        }
        if (list.present) {
          covered.insert(list.tags.begin(), list.tags.end());
        } else {
          const auto all = signable_tags_of(dataset);
          covered.insert(all.begin(), all.end());
        }
      }
      result.verdict = std::max(result.verdict, report.verdict);
      result.signatures.push_back(std::move(report));
    }
    signature.detach();
  }
  if (result.signatures.empty()) {
    result.verdict = Verdict::unsigned_file;
    return result;
  }
  // A signature covers only the attributes it lists (PS3.15 C.12.1.1.3), so attributes added
  // after signing leave every signature intact; radguard still calls such a file invalid.
  const auto now = signable_tags_of(dataset);
  if (!covered.empty()) {
    for (const auto& key : now) {
      if (covered.contains(key)) continue;
      result.changes.push_back("added " + tag_of(key).to_string());
      result.verdict = Verdict::invalid;
    }
  }
  if (full_failed) {
    if (!pixel_index)
      result.changes.emplace_back("attributes or pixel data (no pixel signature to tell which)");
    else if (result.signatures[*pixel_index].verdict == Verdict::invalid)
      result.changes.emplace_back("pixel data");
    else
      result.changes.emplace_back("attributes");
    for (const auto& key : covered)
      if (!now.contains(key)) result.changes.push_back("removed " + tag_of(key).to_string());
  }
  return result;
}

}  // namespace radguard::dicom
