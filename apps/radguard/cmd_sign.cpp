#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "pipeline/pipeline.hpp"
#include "signer_options.hpp"
#include "signing/signing.hpp"

namespace radguard::cli {

namespace {

struct SignArgs {
  std::vector<std::string> inputs;
  std::string key, cert, profile, output;
  bool in_place = false;
  bool json = false;
  unsigned threads = 0;
};

int run_sign(const SignArgs& args) {
  if (args.output.empty() == !args.in_place)
    return report_error(
        Error{ErrorCode::usage, "give exactly one of --output FOLDER and --in-place"});
  auto signer = pipeline::load_signer({args.key, args.cert, args.profile});
  if (!signer) return report_error(signer.error());
  signing::SignBatchOptions options;
  options.inputs.assign(args.inputs.begin(), args.inputs.end());
  options.mode = args.in_place ? signing::OutputMode::in_place : signing::OutputMode::to_folder;
  options.output = args.output;
  options.threads = args.threads;
  auto report = signing::sign_files(options, *signer);
  if (!report) return report_error(report.error());
  if (args.json)
    std::cout << signing::sign_report_json(*report, *signer);
  else
    std::cerr << signing::sign_report_text(*report);
  return report->exit_code();
}

}  // namespace

void add_sign(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("sign",
                                 "add DICOM Digital Signatures (PS3.15 Annex C, SHA-256) over "
                                 "whole data sets incl. pixel data");
  auto args = std::make_shared<SignArgs>();
  cmd->add_option("INPUT", args->inputs, "DICOM files or folders (searched recursively)")
      ->required();
  cmd->add_option("--key", args->key, "private key (PEM, unencrypted)")->required();
  cmd->add_option("--cert", args->cert, "the key's X.509 certificate (PEM)")->required();
  cmd->add_option("--profile", args->profile,
                  "security profile: base, creator, authorization (RSA keys) or none "
                  "(default: base for RSA keys, none for ECDSA keys)");
  auto* output =
      cmd->add_option("-o,--output", args->output, "write signed copies into this folder");
  auto* in_place = cmd->add_flag("--in-place", args->in_place,
                                 "replace each input by its signed version (atomically)");
  output->excludes(in_place);
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--json", args->json, "print a JSON report on stdout");
  cmd->callback([&action, args] { action = [args] { return run_sign(*args); }; });
}

}  // namespace radguard::cli
