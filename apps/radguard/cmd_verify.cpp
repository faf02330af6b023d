#include <iostream>
#include <set>

#include "batch/batch.hpp"
#include "cli.hpp"
#include "core/error_table.hpp"
#include "export/release_check.hpp"
#include "signing/signing.hpp"

namespace radguard::cli {

namespace {

struct VerifyArgs {
  std::vector<std::string> inputs;
  std::vector<std::string> trust;
  bool json = false;
  unsigned threads = 0;
};

namespace fs = std::filesystem;

int run_verify(const VerifyArgs& args) {
  const std::vector<fs::path> anchors(args.trust.begin(), args.trust.end());
  auto trust = signing::TrustStore::load(anchors);
  if (!trust) return report_error(trust.error());
  const std::vector<fs::path> given(args.inputs.begin(), args.inputs.end());
  // A release folder's manifest.json is checked against the files (every hash), not
  // reported as an unsigned DICOM file.
  std::set<std::string> manifests;
  std::vector<std::string> release_problems;
  for (const auto& input : given) {
    if (!exporter::is_release_folder(input)) continue;
    std::error_code ec;
    manifests.insert(fs::weakly_canonical(input / exporter::kReleaseManifest, ec).string());
    manifests.insert(
        fs::weakly_canonical(input / exporter::kReleaseManifestSignature, ec).string());
    auto check = exporter::check_release(input, input / exporter::kReleaseManifest, anchors,
                                         exporter::DicomSignatures::skip, args.threads);
    if (!check) return report_error(check.error());
    auto problems = exporter::problem_lines(*check);
    if (!check->manifest_signature)
      problems.push_back(std::string(exporter::kReleaseManifest) + ": not signed (no " +
                         std::string(exporter::kReleaseManifestSignature) + ")");
    else if (check->manifest_signature->check != signing::SignatureCheck::valid)
      problems.push_back(std::string(exporter::kReleaseManifest) + ": signature " +
                         std::string(signing::to_string(check->manifest_signature->check)) +
                         (check->manifest_signature->reason.empty()
                              ? ""
                              : " (" + check->manifest_signature->reason + ")"));
    for (const auto& p : problems) release_problems.push_back(input.string() + ": " + p);
    if (problems.empty())
      std::cerr << "radguard: " << input.string()
                << ": every file matches the release's signed manifest.json\n";
  }
  std::vector<fs::path> inputs;
  if (manifests.empty()) {
    inputs = given;
  } else {
    const batch::InputSet found = batch::find_files(given);
    for (const auto& f : found.files)
      if (!manifests.contains(f)) inputs.push_back(f);
    for (const auto& m : found.missing) inputs.push_back(m.path);  // reported as missing
  }
  const auto report = signing::verify_files(inputs, *trust, args.threads);
  if (args.json)
    std::cout << signing::verify_report_json(report);
  else
    std::cout << signing::verify_report_text(report);
  for (const auto& p : release_problems) std::cerr << "radguard: error: " << p << "\n";
  return release_problems.empty() ? report.exit_code() : kExitSomeFailed;
}

struct VerifyReleaseArgs {
  std::string release;
  std::vector<std::string> trust;
  bool json = false;
  unsigned threads = 0;
};

int run_verify_release(const VerifyReleaseArgs& args) {
  const fs::path release(args.release);
  const std::vector<fs::path> anchors(args.trust.begin(), args.trust.end());
  auto check = exporter::check_release(release, release / exporter::kReleaseManifest, anchors,
                                       exporter::DicomSignatures::check, args.threads);
  if (!check) return report_error(check.error());
  const auto policy = exporter::ManifestSignature::required;
  std::cout << (args.json ? exporter::release_check_json(*check, policy)
                          : exporter::release_check_text(*check, policy));
  return check->passed(policy) ? kExitSuccess : kExitSomeFailed;
}

}  // namespace

void add_verify_release(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "verify-release",
      "check a release as its recipient: the manifest's signature, every file's hash and every "
      "DICOM signature; says file by file what is wrong");
  auto args = std::make_shared<VerifyReleaseArgs>();
  cmd->add_option("DIR", args->release, "the release folder (holding manifest.json)")->required();
  cmd->add_option("--trust", args->trust,
                  "trusted certificate (PEM): the signer's own certificate or its CA; "
                  "repeatable. Without one nothing is trusted")
      ->required();
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--json", args->json, "print a JSON report on stdout");
  cmd->callback([&action, args] { action = [args] { return run_verify_release(*args); }; });
}

void add_verify(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "verify", "check the DICOM Digital Signatures of files against trusted certificates");
  auto args = std::make_shared<VerifyArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)")
      ->required();
  cmd->add_option("--trust", args->trust,
                  "trusted certificate (PEM): a signer's own certificate or its CA; repeatable. "
                  "Without one, intact signatures are reported as untrusted_signer");
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--json", args->json, "print a JSON report on stdout");
  cmd->callback([&action, args] { action = [args] { return run_verify(*args); }; });
}

}  // namespace radguard::cli
