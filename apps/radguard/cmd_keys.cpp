#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "signing/keys.hpp"

namespace radguard::cli {

namespace {

struct KeysNewArgs {
  std::string key, cert, subject = "radguard test signer", algorithm = "rsa";
  int days = 365;
  bool json = false;
};

int run_keys_new(const KeysNewArgs& args) {
  auto algorithm = signing::parse_key_algorithm(args.algorithm);
  if (!algorithm) return report_error(algorithm.error());
  signing::TestIdentityRequest request;
  request.common_name = args.subject;
  request.algorithm = *algorithm;
  request.days = args.days;
  auto identity = signing::write_test_identity(args.key, args.cert, request);
  if (!identity) return report_error(identity.error());
  // On stderr even with --json: nobody should miss that this identity proves nothing.
  std::fprintf(stderr,
               "radguard: WARNING: %s is a self-signed TEST certificate (O=%s). It proves "
               "nothing about who signed; use a certificate from your organisation's PKI for "
               "real releases.\n",
               args.cert.c_str(), std::string(signing::kTestOrganisation).c_str());
  if (args.json) {
    const nlohmann::json out = {{"command", "keys new"},
                                {"key", args.key},
                                {"certificate", args.cert},
                                {"subject", identity->subject},
                                {"sha256_fingerprint", identity->fingerprint},
                                {"test_only", true}};
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf("wrote %s (mode 0600) and %s\nsubject %s\nSHA-256 fingerprint %s\n",
                args.key.c_str(), args.cert.c_str(), identity->subject.c_str(),
                identity->fingerprint.c_str());
  }
  return kExitSuccess;
}

}  // namespace

void add_keys(CLI::App& app, Action& action) {
  auto* keys = app.add_subcommand("keys", "signing keys and certificates");
  keys->require_subcommand(1);
  auto* cmd = keys->add_subcommand(
      "new",
      "make a TEST signing key and self-signed certificate, for trying radguard without a PKI");
  auto args = std::make_shared<KeysNewArgs>();
  cmd->add_option("--key", args->key,
                  "where to write the private key (PEM, mode 0600; never replaced)")
      ->required();
  cmd->add_option("--cert", args->cert, "where to write the certificate (PEM)")->required();
  cmd->add_option("--subject", args->subject, "common name (CN) of the certificate")
      ->capture_default_str();
  cmd->add_option("--days", args->days, "validity in days")->capture_default_str();
  cmd->add_option("--algorithm", args->algorithm,
                  "rsa (RSA-2048, all profiles) or ecdsa (P-256, profile none)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print a JSON summary on stdout");
  cmd->callback([&action, args] { action = [args] { return run_keys_new(*args); }; });
}

}  // namespace radguard::cli
