#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "batch/batch.hpp"
#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "export/export.hpp"
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

// True when `folder` holds a release made by radguard export (its manifest.json).
bool is_release(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec) || !fs::is_regular_file(folder / "manifest.json", ec))
    return false;
  auto text = read_small_file(folder / "manifest.json");
  if (!text) return false;
  const auto manifest = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return manifest.is_object() &&
         manifest.value("format", "").starts_with("radguard-release-manifest/");
}

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
    if (!is_release(input)) continue;
    std::error_code ec;
    manifests.insert(fs::weakly_canonical(input / "manifest.json", ec).string());
    auto problems = exporter::check_release_files(input);
    if (!problems) return report_error(problems.error());
    for (const auto& p : *problems) release_problems.push_back(input.string() + ": " + p);
    if (problems->empty())
      std::cerr << "radguard: " << input.string()
                << ": every file matches the release's manifest.json\n";
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

}  // namespace

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
