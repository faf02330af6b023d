#pragma once
// Checking a release as its recipient does, in one step: the release's manifest.json (every
// file with its SHA-256, written by radguard export) and its detached CMS signature
// manifest.json.p7s (made when export is given signing keys), every file's hash against the
// manifest, and every DICOM file's Digital Signatures. Says file by file what is wrong:
// altered, added, missing, unsigned, bad signature.
//
// The signature file is a DER CMS SignedData over manifest.json's bytes (signing/keys.hpp,
// sign_cms_detached), so a recipient without radguard checks it with OpenSSL alone:
//   openssl cms -verify -binary -inform DER -in manifest.json.p7s -content manifest.json
//           -CAfile CA.pem -purpose any
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "dicom/signature.hpp"
#include "ledger/ledger.hpp"
#include "signing/keys.hpp"

namespace radguard::exporter {

inline constexpr std::string_view kReleaseManifest = "manifest.json";
inline constexpr std::string_view kReleaseManifestSignature = "manifest.json.p7s";
inline constexpr std::string_view kReleaseManifestFormat = "radguard-release-manifest/1";

// True when `folder` holds a release manifest (manifest.json of kReleaseManifestFormat).
bool is_release_folder(const std::filesystem::path& folder);
// True when `text` is a release manifest (JSON of kReleaseManifestFormat).
bool is_release_manifest(std::string_view text);

// What became of one file since the manifest was made.
enum class ReleaseFileState : std::uint8_t {
  intact,      // listed, present, the SHA-256 recorded
  altered,     // listed, present, another SHA-256
  missing,     // listed, not present (or not a regular file)
  added,       // present, not listed (anything but the manifest and its signature)
  unreadable,  // listed, present, cannot be read
};
std::string_view release_file_state_name(ReleaseFileState state);

struct ReleaseFile {
  std::string path;  // relative to the release, '/'-separated
  ReleaseFileState state = ReleaseFileState::intact;
  // The DICOM signatures' verdict, when they were checked (listed files that are present).
  std::optional<dicom::Verdict> signature;
  // Why: the signature's reason and what changed (tags, never values), or a read error.
  std::string detail;
  // True when this file is all right: intact and, when signatures are checked, validly signed.
  bool good(bool signatures_checked) const;
};

// Whether the DICOM files' own signatures are checked too (verify-release), or only the
// manifest and the hashes (ledger verify --releases, manifest verify).
enum class DicomSignatures : std::uint8_t { check, skip };

// Whether a release whose manifest has no signature file can pass.
enum class ManifestSignature : std::uint8_t { required, optional };

struct ReleaseCheck {
  std::string release;  // the release's name, as its manifest says
  // nullopt when there is no manifest.json.p7s beside the manifest.
  std::optional<signing::DetachedVerification> manifest_signature;
  // Entries of the manifest that cannot be honoured (a path leaving the folder ...).
  std::vector<std::string> manifest_problems;
  std::vector<ReleaseFile> files;  // listed and added files, by path
  DicomSignatures dicom = DicomSignatures::skip;

  // Files that are not good(), plus manifest problems.
  std::size_t problems() const;
  bool passed(ManifestSignature policy) const;
};

// Checks the folder `release` against the release manifest `manifest` (usually
// release/manifest.json) and its signature `manifest`.p7s when present. Fails only when the
// manifest cannot be read or is not a release manifest (ErrorCode::io, ErrorCode::integrity),
// the folder cannot be listed (ErrorCode::io), or a trust file cannot be read
// (ErrorCode::key). `threads`: 0 for one per core. Thread-safe.
Result<ReleaseCheck> check_release(const std::filesystem::path& release,
                                   const std::filesystem::path& manifest,
                                   std::span<const std::filesystem::path> trusted,
                                   DicomSignatures dicom, unsigned threads);

// One line per problem ("path: altered (...)"), as ledger verify --releases prints them.
std::vector<std::string> problem_lines(const ReleaseCheck& check);

// The reports of verify-release: JSON (every file) and text (every problem, then a verdict).
std::string release_check_json(const ReleaseCheck& check, ManifestSignature policy);
std::string release_check_text(const ReleaseCheck& check, ManifestSignature policy);

// Every release-* folder under `folder` against the ledger (radguard ledger verify
// --releases): each must be a committed `released` entry whose manifest digest matches (this
// catches a folder published by a run that crashed before its ledger entry committed, and a
// manifest changed after release), and every file must still be what its manifest lists.
// Returns one problem per finding, naming the release folder; fails only when the ledger or
// the folder cannot be read (ErrorCode::io).
[[nodiscard]] Result<std::vector<std::string>> check_releases_against_ledger(
    ledger::Ledger& ledger, const std::filesystem::path& folder);

}  // namespace radguard::exporter
