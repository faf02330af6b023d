#pragma once
// Signing options shared by the commands that publish DICOM files (sign, deid, export).
#include <CLI/CLI.hpp>
#include <string>

#include "core/result.hpp"
#include "deid/deid_run.hpp"
#include "signing/signing.hpp"

namespace radguard::cli {

struct SignerArgs {
  std::string key, cert, profile;
};

// Loads the signer; an empty profile means base for RSA keys and none for ECDSA keys.
// Fails with ErrorCode::key or ErrorCode::usage.
Result<signing::Signer> load_signer(const SignerArgs& args);

// Adds --sign-key, --sign-cert and --sign-profile to a publishing command.
void add_signer_options(CLI::App& command, SignerArgs& args);

// A finisher that signs each output before it is published, or an empty one when no
// --sign-key was given. Fails with ErrorCode::usage when only one of key and cert is given.
Result<deid::OutputFinisher> signing_finisher(const SignerArgs& args);

}  // namespace radguard::cli
