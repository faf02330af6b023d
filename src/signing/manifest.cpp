#include "signing/manifest.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "batch/batch.hpp"
#include "core/json_number.hpp"

namespace radguard::signing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

crypto::Digest hash_concat(std::uint8_t prefix, std::string_view a, std::string_view b) {
  std::string buffer;
  buffer.reserve(1 + a.size() + b.size());
  buffer += static_cast<char>(prefix);
  buffer += a;
  buffer += b;
  return crypto::sha256(buffer);
}

std::string_view bytes_of(const crypto::Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::optional<crypto::Digest> parse_digest(const std::string& hex) {
  if (hex.size() != 64) return std::nullopt;
  crypto::Digest out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

bool is_excluded(const fs::path& file, const fs::path& exclude) {
  if (file.filename().string().starts_with(".radguard-tmp-")) return true;
  if (exclude.empty()) return false;
  std::error_code ec;
  return fs::equivalent(file, exclude, ec);
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

json entries_json(std::span<const ManifestEntry> entries) {
  json files = json::array();
  for (const auto& e : entries)
    files.push_back({{"path", e.path}, {"sha256", crypto::to_hex(e.sha256)}, {"size", e.size}});
  return files;
}

}  // namespace

crypto::Digest merkle_root(std::span<const ManifestEntry> entries) {
  if (entries.empty()) return crypto::sha256("");
  std::vector<crypto::Digest> level;
  level.reserve(entries.size());
  for (const auto& e : entries)
    level.push_back(hash_concat(0x00, e.path + '\0', bytes_of(e.sha256)));
  while (level.size() > 1) {
    std::vector<crypto::Digest> next;
    next.reserve((level.size() + 1) / 2);
    for (std::size_t i = 0; i + 1 < level.size(); i += 2)
      next.push_back(hash_concat(0x01, bytes_of(level[i]), bytes_of(level[i + 1])));
    if (level.size() % 2 == 1) next.push_back(level.back());
    level = std::move(next);
  }
  return level.front();
}

Result<std::vector<ManifestEntry>> scan_folder(const fs::path& folder, const fs::path& exclude,
                                               unsigned threads) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    return fail(ErrorCode::io, folder.string() + " is not a folder");
  // Links are not recorded: a manifest vouches for the bytes of files in the folder.
  const auto listing = batch::list_files(folder, batch::FileLinks::skip);
  if (auto complete = batch::require_complete(listing); !complete)
    return std::unexpected(complete.error());
  std::vector<fs::path> files;
  for (const auto& file : listing.files)
    if (!is_excluded(file, exclude)) files.emplace_back(file);
  std::vector<ManifestEntry> entries(files.size());
  std::vector<std::optional<Error>> errors(files.size());
  batch::run_parallel(
      files.size(), batch::default_threads(threads),
      [&](std::size_t i) {
        auto digest = crypto::sha256_file(files[i]);
        if (!digest) {
          errors[i] = digest.error();
          return;
        }
        std::error_code size_ec;
        entries[i].path = fs::relative(files[i], folder, size_ec).generic_string();
        entries[i].sha256 = *digest;
        entries[i].size = fs::file_size(files[i], size_ec);
      },
      [&](std::size_t i, const std::string& what) {
        errors[i] = Error{ErrorCode::internal, what};
      });
  for (const auto& error : errors)
    if (error) return std::unexpected(*error);
  std::sort(entries.begin(), entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return entries;
}

Result<std::string> create_manifest(const fs::path& folder, const std::optional<KeyFiles>& signer,
                                    const fs::path& exclude, unsigned threads) {
  auto entries = scan_folder(folder, exclude, threads);
  if (!entries) return std::unexpected(entries.error());
  std::uint64_t total = 0;
  for (const auto& e : *entries) total += e.size;
  json manifest = {
      {"format", kManifestFormat},
      {"hash", "SHA-256"},
      {"created", utc_now()},
      {"file_count", entries->size()},
      {"total_bytes", total},
      {"root", crypto::to_hex(merkle_root(*entries))},
      {"files", entries_json(*entries)},
  };
  json document = {{"manifest", manifest}, {"signature", nullptr}};
  if (signer) {
    // The signature covers the compact dump of "manifest": nlohmann writes object keys in
    // sorted order, so the verifier can reproduce these exact bytes.
    auto signature =
        sign_detached(manifest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                      signer->key, signer->cert);
    if (!signature) return std::unexpected(signature.error());
    document["signature"] = {{"algorithm", signature->algorithm},
                             {"certificate", signature->certificate_pem},
                             {"value", signature->value}};
  }
  return document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string_view to_string(FileChange change) {
  switch (change) {
    case FileChange::added:
      return "added";
    case FileChange::deleted:
      return "deleted";
    case FileChange::altered:
      return "altered";
    case FileChange::renamed:
      return "renamed";
  }
  return "altered";
}

bool passed(const ManifestVerification& v, UnsignedManifest unsigned_policy) {
  const bool signature_ok = v.signature ? v.signature->check == SignatureCheck::valid
                                        : unsigned_policy == UnsignedManifest::accept;
  return signature_ok && v.root_matches && v.differences.empty();
}

Result<ManifestVerification> verify_manifest(const fs::path& folder, std::string_view text,
                                             std::span<const fs::path> trusted,
                                             const fs::path& exclude, unsigned threads) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception&) {
    return fail(ErrorCode::integrity, "the manifest is not valid JSON");
  }
  ManifestVerification result;
  std::map<std::string, ManifestEntry> listed;
  std::vector<ManifestEntry> listed_sorted;
  crypto::Digest root{};
  try {
    const json& manifest = document.at("manifest");
    if (manifest.at("format").get<std::string>() != kManifestFormat)
      return fail(ErrorCode::integrity, "not a " + std::string(kManifestFormat) + " manifest");
    const auto parsed_root = parse_digest(manifest.at("root").get<std::string>());
    if (!parsed_root)
      return fail(ErrorCode::integrity, "the manifest root is not a SHA-256 digest");
    root = *parsed_root;
    for (const auto& f : manifest.at("files")) {
      ManifestEntry e;
      e.path = f.at("path").get<std::string>();
      const auto digest = parse_digest(f.at("sha256").get<std::string>());
      if (!digest) return fail(ErrorCode::integrity, "a manifest entry has a malformed digest");
      e.sha256 = *digest;
      const auto size = json_integer<std::uint64_t>(f.at("size"));
      if (!size) return fail(ErrorCode::integrity, "a manifest entry has a malformed size");
      e.size = *size;
      listed_sorted.push_back(e);
      listed.emplace(e.path, e);
    }
    const json& signature = document.at("signature");
    if (!signature.is_null()) {
      DetachedSignature detached{signature.at("algorithm").get<std::string>(),
                                 signature.at("certificate").get<std::string>(),
                                 signature.at("value").get<std::string>()};
      auto checked =
          verify_detached(manifest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                          detached, trusted);
      if (!checked) return std::unexpected(checked.error());
      result.signature = *checked;
    }
  } catch (const json::exception&) {
    return fail(ErrorCode::integrity, "the manifest lacks a required field or has a wrong type");
  }
  std::sort(listed_sorted.begin(), listed_sorted.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  result.root_matches = merkle_root(listed_sorted) == root;
  result.files_listed = listed_sorted.size();

  auto present = scan_folder(folder, exclude, threads);
  if (!present) return std::unexpected(present.error());
  std::vector<const ManifestEntry*> added;
  std::map<std::string, const ManifestEntry*> deleted;
  for (const auto& [path, entry] : listed) deleted.emplace(path, &entry);
  for (const auto& now : *present) {
    auto it = listed.find(now.path);
    if (it == listed.end()) {
      added.push_back(&now);
      continue;
    }
    deleted.erase(now.path);
    if (it->second.sha256 == now.sha256 && it->second.size == now.size)
      ++result.unchanged;
    else
      result.differences.push_back({FileChange::altered, now.path, {}});
  }
  // A file whose content left one path and appeared at another was renamed (or copied over
  // and the original deleted, which is the same thing to a reader of the folder).
  for (const ManifestEntry* now : added) {
    auto match = std::find_if(deleted.begin(), deleted.end(), [now](const auto& d) {
      return d.second->sha256 == now->sha256 && d.second->size == now->size;
    });
    if (match != deleted.end()) {
      result.differences.push_back({FileChange::renamed, now->path, match->first});
      deleted.erase(match);
    } else {
      result.differences.push_back({FileChange::added, now->path, {}});
    }
  }
  for (const auto& [path, entry] : deleted)
    result.differences.push_back({FileChange::deleted, path, {}});
  std::sort(
      result.differences.begin(), result.differences.end(),
      [](const ManifestDifference& a, const ManifestDifference& b) { return a.path < b.path; });
  return result;
}

std::string verification_json(const ManifestVerification& v, UnsignedManifest unsigned_policy) {
  json differences = json::array();
  for (const auto& d : v.differences) {
    json item = {{"change", to_string(d.change)}, {"path", d.path}};
    if (d.change == FileChange::renamed) item["from"] = d.renamed_from;
    differences.push_back(item);
  }
  json signature = {{"status", "unsigned"}};
  if (v.signature) {
    signature = {{"status", to_string(v.signature->check)}, {"signer", v.signature->signer}};
    if (!v.signature->reason.empty()) signature["reason"] = v.signature->reason;
  }
  json report = {{"command", "manifest verify"},   {"passed", passed(v, unsigned_policy)},
                 {"signature", signature},         {"root_matches", v.root_matches},
                 {"files_listed", v.files_listed}, {"unchanged", v.unchanged},
                 {"differences", differences}};
  return report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string verification_text(const ManifestVerification& v, UnsignedManifest unsigned_policy) {
  std::ostringstream out;
  if (!v.signature)
    out << "signature: none (the manifest is not signed)\n";
  else
    out << "signature: " << to_string(v.signature->check) << " (" << v.signature->signer << ")"
        << (v.signature->reason.empty() ? "" : ": " + v.signature->reason) << "\n";
  if (!v.root_matches) out << "hash tree: the listed files do not hash to the listed root\n";
  for (const auto& d : v.differences) {
    out << to_string(d.change) << ": " << d.path;
    if (d.change == FileChange::renamed) out << " (was " << d.renamed_from << ")";
    out << "\n";
  }
  out << v.unchanged << " of " << v.files_listed << " listed files unchanged, "
      << v.differences.size()
      << " differences: " << (passed(v, unsigned_policy) ? "PASSED" : "FAILED") << "\n";
  return out.str();
}

}  // namespace radguard::signing
