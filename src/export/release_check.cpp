#include "export/release_check.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "batch/batch.hpp"
#include "core/atomic_file.hpp"
#include "crypto/crypto.hpp"
#include "export/export.hpp"

namespace radguard::exporter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A listed name must stay inside the release: relative, no "..", no empty or odd parts.
bool safe_relative(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos ||
      path.find('\0') != std::string::npos)
    return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::string signature_detail(const dicom::FileVerification& v) {
  std::string detail;
  for (const auto& s : v.signatures)
    if (s.verdict == v.verdict && !s.reason.empty()) {
      detail = s.reason;
      break;
    }
  if (!v.changes.empty()) {
    detail += detail.empty() ? "changed: " : "; changed: ";
    for (std::size_t i = 0; i < v.changes.size(); ++i)
      detail += (i ? ", " : "") + v.changes[i];
  }
  return detail;
}

std::string manifest_signature_words(const ReleaseCheck& check, ManifestSignature policy) {
  if (!check.manifest_signature)
    return std::string("none (no ") + std::string(kReleaseManifestSignature) + ")" +
           (policy == ManifestSignature::required ? "" : ", accepted");
  const auto& s = *check.manifest_signature;
  std::string words = std::string(signing::to_string(s.check));
  if (!s.signer.empty()) words += " (" + s.signer + ")";
  if (!s.reason.empty()) words += ": " + s.reason;
  return words;
}

}  // namespace

bool is_release_manifest(std::string_view text) {
  const json manifest = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return manifest.is_object() && manifest.contains("format") && manifest["format"].is_string() &&
         manifest["format"].get<std::string>() == kReleaseManifestFormat;
}

bool is_release_folder(const fs::path& folder) {
  std::error_code ec;
  const fs::path manifest = folder / kReleaseManifest;
  if (!fs::is_directory(folder, ec) || !fs::is_regular_file(manifest, ec)) return false;
  auto text = read_small_file(manifest);
  return text && is_release_manifest(*text);
}

std::string_view release_file_state_name(ReleaseFileState state) {
  switch (state) {
    case ReleaseFileState::intact:
      return "intact";
    case ReleaseFileState::altered:
      return "altered";
    case ReleaseFileState::missing:
      return "missing";
    case ReleaseFileState::added:
      return "added";
    case ReleaseFileState::unreadable:
      return "unreadable";
  }
  return "unreadable";
}

bool ReleaseFile::good(bool signatures_checked) const {
  return state == ReleaseFileState::intact &&
         (!signatures_checked || signature == dicom::Verdict::valid);
}

std::size_t ReleaseCheck::problems() const {
  const bool signatures = dicom == DicomSignatures::check;
  return manifest_problems.size() +
         static_cast<std::size_t>(std::count_if(files.begin(), files.end(), [&](const auto& f) {
           return !f.good(signatures);
         }));
}

bool ReleaseCheck::passed(ManifestSignature policy) const {
  const bool signature_ok = manifest_signature
                                ? manifest_signature->check == signing::SignatureCheck::valid
                                : policy == ManifestSignature::optional;
  return signature_ok && problems() == 0;
}

Result<ReleaseCheck> check_release(const fs::path& release, const fs::path& manifest,
                                   std::span<const fs::path> trusted, DicomSignatures dicom,
                                   unsigned threads) {
  auto text = read_small_file(manifest);
  if (!text) return std::unexpected(text.error());
  const json document = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!is_release_manifest(*text) || !document.contains("files") ||
      !document["files"].is_array())
    return fail(ErrorCode::integrity, manifest.string() + " is not a radguard release manifest");
  std::error_code ec;
  if (!fs::is_directory(release, ec))
    return fail(ErrorCode::io, release.string() + " is not a folder");

  ReleaseCheck check;
  check.dicom = dicom;
  if (document.contains("release") && document["release"].is_string())
    check.release = document["release"].get<std::string>();

  // The manifest's signature: over the manifest's exact bytes.
  const fs::path signature_path = fs::path(manifest.string() + ".p7s");
  if (fs::exists(fs::symlink_status(signature_path, ec))) {
    auto der = read_small_file(signature_path, 1 << 20);
    if (!der) {
      check.manifest_signature = signing::DetachedVerification{
          signing::SignatureCheck::invalid, "", "the signature file cannot be read"};
    } else {
      auto verified = signing::verify_cms_detached(*text, *der, trusted);
      if (!verified) return std::unexpected(verified.error());
      check.manifest_signature = *verified;
    }
  }

  // What the manifest lists.
  std::map<std::string, std::string> listed;  // path -> expected SHA-256 (hex)
  for (const json& f : document["files"]) {
    const std::string path =
        f.is_object() && f.contains("path") && f["path"].is_string() ? f["path"].get<std::string>()
                                                                      : std::string();
    const std::string expected = f.is_object() && f.contains("sha256") && f["sha256"].is_string()
                                     ? f["sha256"].get<std::string>()
                                     : std::string();
    if (!safe_relative(path)) {
      check.manifest_problems.push_back("the manifest lists an invalid path");
      continue;
    }
    listed.emplace(path, expected);
  }

  // What the folder holds: every entry but folders (a link or a device is something added).
  std::set<std::string> present;
  for (auto it = fs::recursive_directory_iterator(release, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_symlink(type_ec) && it->is_directory(type_ec)) continue;
    if (fs::equivalent(it->path(), manifest, type_ec) ||
        fs::equivalent(it->path(), signature_path, type_ec))
      continue;
    present.insert(fs::relative(it->path(), release, type_ec).generic_string());
  }
  if (ec) return fail(ErrorCode::io, "cannot list " + release.string() + ": " + ec.message());

  for (const auto& [path, expected] : listed) check.files.push_back({path, {}, {}, {}});
  for (const auto& path : present)
    if (!listed.contains(path))
      check.files.push_back({path, ReleaseFileState::added, std::nullopt, "not in the manifest"});
  std::sort(check.files.begin(), check.files.end(),
            [](const ReleaseFile& a, const ReleaseFile& b) { return a.path < b.path; });

  std::optional<dicom::TrustStore> trust;
  if (dicom == DicomSignatures::check) {
    auto loaded = dicom::TrustStore::load(trusted);
    if (!loaded) return std::unexpected(loaded.error());
    trust.emplace(std::move(*loaded));
  }
  batch::run_parallel(
      check.files.size(), batch::default_threads(threads),
      [&](std::size_t i) {
        ReleaseFile& file = check.files[i];
        if (file.state == ReleaseFileState::added) return;
        const fs::path path = release / file.path;
        std::error_code file_ec;
        if (fs::is_symlink(path, file_ec) || !fs::is_regular_file(path, file_ec)) {
          file.state = ReleaseFileState::missing;
          return;
        }
        auto digest = crypto::sha256_file(path);
        if (!digest) {
          file.state = ReleaseFileState::unreadable;
          file.detail = digest.error().message;
          return;
        }
        file.state = crypto::to_hex(*digest) == listed.at(file.path) ? ReleaseFileState::intact
                                                                      : ReleaseFileState::altered;
        if (!trust) return;
        auto verified = dicom::verify_file(path, *trust);
        if (!verified) {
          file.detail = "its signatures cannot be checked: " + verified.error().message;
          return;
        }
        file.signature = verified->verdict;
        file.detail = signature_detail(*verified);
      },
      [&](std::size_t i, const std::string& what) {
        check.files[i].state = ReleaseFileState::unreadable;
        check.files[i].detail = "internal error: " + what;
      });
  return check;
}

std::vector<std::string> problem_lines(const ReleaseCheck& check) {
  std::vector<std::string> lines = check.manifest_problems;
  const bool signatures = check.dicom == DicomSignatures::check;
  for (const auto& f : check.files) {
    if (f.good(signatures)) continue;
    std::string line = f.path + ": ";
    switch (f.state) {
      case ReleaseFileState::altered:
        line += "altered (its SHA-256 is not the one recorded)";
        break;
      case ReleaseFileState::missing:
        line += "missing";
        break;
      case ReleaseFileState::added:
        line += "added (not in the manifest)";
        break;
      case ReleaseFileState::unreadable:
        line += "unreadable: " + f.detail;
        break;
      case ReleaseFileState::intact:
        line += "intact";
        break;
    }
    if (signatures && f.state != ReleaseFileState::missing &&
        f.state != ReleaseFileState::added && f.state != ReleaseFileState::unreadable) {
      if (!f.signature)
        line += "; " + f.detail;
      else if (*f.signature == dicom::Verdict::unsigned_file)
        line += "; unsigned (no DICOM signature)";
      else if (*f.signature != dicom::Verdict::valid)
        line += "; bad signature: " + std::string(dicom::to_string(*f.signature)) +
                (f.detail.empty() ? "" : " (" + f.detail + ")");
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string release_check_json(const ReleaseCheck& check, ManifestSignature policy) {
  json files = json::array();
  std::map<std::string, std::size_t> counts;
  const bool signatures = check.dicom == DicomSignatures::check;
  for (const auto& f : check.files) {
    json item = {{"path", f.path}, {"state", release_file_state_name(f.state)}};
    ++counts[std::string(release_file_state_name(f.state))];
    if (signatures && f.state != ReleaseFileState::added && f.state != ReleaseFileState::missing)
      item["signature"] = f.signature ? json(dicom::to_string(*f.signature)) : json("error");
    if (f.signature && *f.signature != dicom::Verdict::valid)
      ++counts[std::string(*f.signature == dicom::Verdict::unsigned_file ? "unsigned"
                                                                         : "bad_signature")];
    if (!f.detail.empty()) item["detail"] = f.detail;
    item["good"] = f.good(signatures);
    files.push_back(item);
  }
  json signature = {{"status", "unsigned"}, {"file", std::string(kReleaseManifestSignature)}};
  if (check.manifest_signature) {
    signature["status"] = signing::to_string(check.manifest_signature->check);
    signature["signer"] = check.manifest_signature->signer;
    if (!check.manifest_signature->reason.empty())
      signature["reason"] = check.manifest_signature->reason;
  }
  const json report = {{"command", "verify-release"},
                       {"release", check.release},
                       {"passed", check.passed(policy)},
                       {"manifest_signature", signature},
                       {"manifest_problems", check.manifest_problems},
                       {"dicom_signatures_checked", signatures},
                       {"files_checked", check.files.size()},
                       {"problems", check.problems()},
                       {"counts", counts},
                       {"files", files}};
  return report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string release_check_text(const ReleaseCheck& check, ManifestSignature policy) {
  std::ostringstream out;
  out << "release " << (check.release.empty() ? "(unnamed)" : check.release) << "\n";
  out << kReleaseManifest << " signature: " << manifest_signature_words(check, policy) << "\n";
  for (const auto& line : problem_lines(check)) out << line << "\n";
  const bool signatures = check.dicom == DicomSignatures::check;
  const auto good = static_cast<std::size_t>(std::count_if(
      check.files.begin(), check.files.end(), [&](const auto& f) { return f.good(signatures); }));
  out << good << " of " << check.files.size() << " files "
      << (signatures ? "intact and validly signed" : "intact") << ", " << check.problems()
      << (check.problems() == 1 ? " problem" : " problems") << ": "
      << (check.passed(policy) ? "PASSED" : "FAILED") << "\n";
  return out.str();
}

Result<std::vector<std::string>> check_releases_against_ledger(ledger::Ledger& ledger,
                                                               const std::filesystem::path& folder) {
  auto entries = ledger.all();
  if (!entries) return std::unexpected(entries.error());
  std::map<std::string, std::string> recorded;  // release name -> manifest digest
  for (const auto& e : *entries) {
    if (e.status == ledger::EntryStatus::released) recorded[e.release] = e.output_digest;
  }
  std::error_code ec;
  std::vector<std::filesystem::path> releases;
  for (const auto& item : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = item.path().filename().string();
    if (item.is_directory(ec) && name.starts_with("release-")) releases.push_back(item.path());
  }
  if (ec) return fail(ErrorCode::io, "cannot list " + folder.string() + ": " + ec.message());
  std::sort(releases.begin(), releases.end());
  std::vector<std::string> problems;
  for (const auto& release : releases) {
    const std::string name = release.filename().string();
    const auto it = recorded.find(name);
    if (it == recorded.end()) {
      problems.push_back(release.string() +
                         " has no released entry in the ledger: it must not be delivered");
      continue;
    }
    auto digest = crypto::sha256_file(release / "manifest.json");
    if (!digest) {
      problems.push_back(release.string() + ": " + digest.error().message);
    } else if (crypto::to_hex(*digest) != it->second) {
      problems.push_back(release.string() +
                         ": manifest.json differs from the one recorded in the ledger");
    } else {
      // The manifest is the one recorded: every file must still be what it lists.
      auto files = check_release_files(release);
      if (!files) return std::unexpected(files.error());
      for (const auto& problem : *files) problems.push_back(release.string() + ": " + problem);
    }
  }
  return problems;
}

}  // namespace radguard::exporter
