#pragma once
// A signed manifest of a whole folder: every file's SHA-256 and size, a Merkle root over
// them, and a detached signature over the canonical JSON. Verifying it reports, file by
// file, what was added, deleted, altered or renamed since it was made.
//
// Merkle tree: leaves in path order, leaf = SHA-256(0x00 || path || 0x00 || digest),
// node = SHA-256(0x01 || left || right), an odd node is promoted unchanged; the root of no
// files is SHA-256 of the empty string. Paths are relative, '/'-separated, UTF-8 as stored.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "crypto/crypto.hpp"
#include "signing/keys.hpp"

namespace radguard::signing {

inline constexpr std::string_view kManifestFormat = "radguard-manifest/1";

struct ManifestEntry {
  std::string path;  // relative to the folder, '/'-separated
  crypto::Digest sha256{};
  std::uint64_t size = 0;
};

// The Merkle root of entries sorted by path. Never fails. Thread-safe.
crypto::Digest merkle_root(std::span<const ManifestEntry> sorted_entries);

struct KeyFiles {
  std::filesystem::path key, cert;
};

// Hashes every regular file under `folder` (recursively, symbolic links not followed,
// `exclude` and radguard's temporary files skipped) on `threads` threads (0: one per core).
// Fails with ErrorCode::io naming the first file that cannot be read.
[[nodiscard]] Result<std::vector<ManifestEntry>> scan_folder(const std::filesystem::path& folder,
                                                             const std::filesystem::path& exclude,
                                                             unsigned threads);

// The manifest text (JSON) for `folder`, signed when `signer` is given. Fails with the
// errors of scan_folder and sign_detached. Thread-safe.
[[nodiscard]] Result<std::string> create_manifest(const std::filesystem::path& folder,
                                                  const std::optional<KeyFiles>& signer,
                                                  const std::filesystem::path& exclude,
                                                  unsigned threads);

enum class FileChange : std::uint8_t { added, deleted, altered, renamed };
std::string_view to_string(FileChange change);

struct ManifestDifference {
  FileChange change = FileChange::altered;
  std::string path;          // the path now (for deleted: the path in the manifest)
  std::string renamed_from;  // for renamed only: the path in the manifest
};

struct ManifestVerification {
  // nullopt when the manifest carries no signature.
  std::optional<DetachedVerification> signature;
  bool root_matches = false;  // the listed files hash to the listed root
  std::size_t files_listed = 0;
  std::size_t unchanged = 0;
  std::vector<ManifestDifference> differences;  // sorted by path
};

enum class UnsignedManifest : std::uint8_t { reject, accept };

// True when the folder matches a trustworthy manifest.
bool passed(const ManifestVerification& verification, UnsignedManifest unsigned_policy);

// Compares `folder` with the manifest text. Fails with ErrorCode::integrity when the text is
// not a radguard manifest, ErrorCode::key when a trust file cannot be read, ErrorCode::io
// when a file cannot be read. Thread-safe.
[[nodiscard]] Result<ManifestVerification> verify_manifest(
    const std::filesystem::path& folder, std::string_view manifest_text,
    std::span<const std::filesystem::path> trusted, const std::filesystem::path& exclude,
    unsigned threads);

// The JSON report of a verification (for --json), and a text one for people.
std::string verification_json(const ManifestVerification& verification,
                              UnsignedManifest unsigned_policy);
std::string verification_text(const ManifestVerification& verification,
                              UnsignedManifest unsigned_policy);

}  // namespace radguard::signing
