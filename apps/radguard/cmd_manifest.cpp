#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "export/release_check.hpp"
#include "signing/manifest.hpp"

namespace radguard::cli {

namespace {

struct ManifestArgs {
  std::string folder, manifest, key, cert, output;
  std::vector<std::string> trust;
  bool allow_unsigned = false;
  bool json = false;
  unsigned threads = 0;
};

std::filesystem::path default_manifest(const std::string& folder) {
  return std::filesystem::path(folder) / "radguard-manifest.json";
}

int run_create(const ManifestArgs& args) {
  if (args.key.empty() != args.cert.empty())
    return report_error(Error{ErrorCode::usage, "--key and --cert go together"});
  std::optional<signing::KeyFiles> signer;
  if (!args.key.empty()) signer = signing::KeyFiles{args.key, args.cert};
  const std::filesystem::path output =
      args.output.empty() ? default_manifest(args.folder) : std::filesystem::path(args.output);
  auto text = signing::create_manifest(args.folder, signer, output, args.threads);
  if (!text) return report_error(text.error());
  using std::filesystem::perms;
  if (auto written = write_file_atomically(
          output, *text,
          perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
      !written)
    return report_error(written.error());
  const auto document = nlohmann::json::parse(*text);
  const auto& manifest = document.at("manifest");
  if (args.json) {
    const nlohmann::json out = {{"command", "manifest create"},
                                {"manifest", output.string()},
                                {"signed", signer.has_value()},
                                {"file_count", manifest.at("file_count")},
                                {"root", manifest.at("root")}};
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cerr << "wrote " << output.string() << ": " << manifest.at("file_count").get<std::size_t>()
              << " files, root " << manifest.at("root").get<std::string>()
              << (signer ? ", signed" : ", NOT signed (give --key and --cert)") << "\n";
  }
  return kExitSuccess;
}

int run_verify_manifest(const ManifestArgs& args) {
  auto text = read_small_file(args.manifest);
  if (!text) return report_error(text.error());
  const std::vector<std::filesystem::path> trust(args.trust.begin(), args.trust.end());
  const auto policy =
      args.allow_unsigned ? signing::UnsignedManifest::accept : signing::UnsignedManifest::reject;
  // A release's manifest.json (radguard export): its signature is manifest.json.p7s.
  if (exporter::is_release_manifest(*text)) {
    const auto release_policy = args.allow_unsigned ? exporter::ManifestSignature::optional
                                                    : exporter::ManifestSignature::required;
    auto check = exporter::check_release(args.folder, args.manifest, trust,
                                         exporter::DicomSignatures::skip, args.threads);
    if (!check) return report_error(with_context(check.error(), args.manifest));
    std::cout << (args.json ? exporter::release_check_json(*check, release_policy)
                            : exporter::release_check_text(*check, release_policy));
    return check->passed(release_policy) ? kExitSuccess : kExitSomeFailed;
  }
  auto verification =
      signing::verify_manifest(args.folder, *text, trust, args.manifest, args.threads);
  if (!verification) return report_error(with_context(verification.error(), args.manifest));
  if (args.json)
    std::cout << signing::verification_json(*verification, policy);
  else
    std::cout << signing::verification_text(*verification, policy);
  return signing::passed(*verification, policy) ? kExitSuccess : kExitSomeFailed;
}

}  // namespace

void add_manifest(CLI::App& app, Action& action) {
  auto* manifest = app.add_subcommand("manifest", "signed hash-tree manifests of whole folders");
  manifest->require_subcommand(1);
  auto args = std::make_shared<ManifestArgs>();

  auto* create =
      manifest->add_subcommand("create", "hash every file of a folder into a (signed) manifest");
  create->add_option("DIR", args->folder, "the folder")->required();
  create->add_option("--key", args->key, "private key (PEM) to sign the manifest with");
  create->add_option("--cert", args->cert, "the key's certificate (PEM), embedded in the manifest");
  create->add_option("-o,--output", args->output,
                     "manifest file (default DIR/radguard-manifest.json, not hashed)");
  create->add_option("-j,--threads", args->threads, "hashing threads (default: one per core)");
  create->add_flag("--json", args->json, "print a JSON summary on stdout");
  create->callback([&action, args] { action = [args] { return run_create(*args); }; });

  auto* verify = manifest->add_subcommand(
      "verify", "report files added, deleted, altered or renamed since the manifest");
  verify->add_option("DIR", args->folder, "the folder")->required();
  verify->add_option("MANIFEST", args->manifest,
                     "the manifest file (radguard-manifest.json, or a release's manifest.json, "
                     "whose signature is manifest.json.p7s beside it)")
      ->required();
  verify->add_option("--trust", args->trust,
                     "trusted certificate (PEM) for the manifest's signer; repeatable");
  verify->add_flag("--allow-unsigned", args->allow_unsigned,
                   "accept a manifest without signature (integrity only)");
  verify->add_option("-j,--threads", args->threads, "hashing threads (default: one per core)");
  verify->add_flag("--json", args->json, "print a JSON report on stdout");
  verify->callback([&action, args] { action = [args] { return run_verify_manifest(*args); }; });
}

}  // namespace radguard::cli
