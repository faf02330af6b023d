#include "signer_options.hpp"

namespace radguard::cli {

void add_signer_options(CLI::App& command, SignerArgs& args) {
  command.add_option("--sign-key", args.key,
                     "sign every output with this private key (PEM) before publishing it; "
                     "de-identification breaks earlier signatures, so radguard signs as itself");
  command.add_option("--sign-cert", args.cert, "the signing key's certificate (PEM)");
  command.add_option("--sign-profile", args.profile,
                     "signature profile: base, creator, authorization (RSA) or none");
}

}  // namespace radguard::cli
