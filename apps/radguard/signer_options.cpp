#include "signer_options.hpp"

#include <memory>

namespace radguard::cli {

Result<signing::Signer> load_signer(const SignerArgs& args) {
  if (args.profile.empty()) {
    auto signer = signing::Signer::load(args.key, args.cert, signing::SignatureProfile::base);
    if (!signer && signer.error().code == ErrorCode::usage)
      signer = signing::Signer::load(args.key, args.cert, signing::SignatureProfile::none);
    return signer;
  }
  auto profile = dicom::parse_signature_profile(args.profile);
  if (!profile) return std::unexpected(profile.error());
  return signing::Signer::load(args.key, args.cert, *profile);
}

void add_signer_options(CLI::App& command, SignerArgs& args) {
  command.add_option("--sign-key", args.key,
                     "sign every output with this private key (PEM) before publishing it; "
                     "de-identification breaks earlier signatures, so radguard signs as itself");
  command.add_option("--sign-cert", args.cert, "the signing key's certificate (PEM)");
  command.add_option("--sign-profile", args.profile,
                     "signature profile: base, creator, authorization (RSA) or none");
}

Result<deid::OutputFinisher> signing_finisher(const SignerArgs& args) {
  if (args.key.empty() && args.cert.empty()) return deid::OutputFinisher{};
  if (args.key.empty() || args.cert.empty())
    return fail(ErrorCode::usage, "--sign-key and --sign-cert go together");
  auto signer = load_signer(args);
  if (!signer) return std::unexpected(signer.error());
  auto shared = std::make_shared<const signing::Signer>(std::move(*signer));
  return deid::OutputFinisher([shared](const std::filesystem::path& temporary) -> Status {
    auto signed_file = signing::sign_file(temporary, temporary, *shared);
    if (!signed_file) return std::unexpected(with_context(signed_file.error(), "signing"));
    return {};
  });
}

}  // namespace radguard::cli
