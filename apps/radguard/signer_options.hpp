#pragma once
// Signing flags shared by the commands that publish DICOM files (sign, deid, export); what
// they mean is pipeline::SigningSpec's (src/pipeline).
#include <CLI/CLI.hpp>
#include <string>

namespace radguard::cli {

struct SignerArgs {
  std::string key, cert, profile;
};

// Adds --sign-key, --sign-cert and --sign-profile to a publishing command.
void add_signer_options(CLI::App& command, SignerArgs& args);

}  // namespace radguard::cli
