#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "signing/signing.hpp"

namespace radguard::cli {

namespace {

struct VerifyArgs {
  std::vector<std::string> inputs;
  std::vector<std::string> trust;
  bool json = false;
  unsigned threads = 0;
};

int run_verify(const VerifyArgs& args) {
  const std::vector<std::filesystem::path> anchors(args.trust.begin(), args.trust.end());
  auto trust = signing::TrustStore::load(anchors);
  if (!trust) return report_error(trust.error());
  const std::vector<std::filesystem::path> inputs(args.inputs.begin(), args.inputs.end());
  const auto report = signing::verify_files(inputs, *trust, args.threads);
  if (args.json)
    std::cout << signing::verify_report_json(report);
  else
    std::cout << signing::verify_report_text(report);
  return report.exit_code();
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
