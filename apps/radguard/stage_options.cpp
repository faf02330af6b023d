#include "stage_options.hpp"

#include <filesystem>
#include <optional>

#include "crypto/crypto.hpp"

namespace radguard::cli {

void add_stage_options(CLI::App& command, StageArgs& args) {
  command.add_option("-k,--key", args.key, "secret key file (radguard keygen)")->required();
  command.add_option("-p,--profile", args.profile, "preset: basic or research")
      ->capture_default_str();
  command.add_option(
      "--option", args.options,
      "add a PS3.15 option: retain-safe-private, retain-uids, retain-device-identity, "
      "retain-institution-identity, retain-patient-characteristics, retain-long-full-dates, "
      "retain-long-modified-dates, clean-descriptors, clean-structured-content, clean-graphics, "
      "clean-pixel-data (burned-in text), clean-recognizable-visual-features (faces)");
  command.add_option("--recipe", args.recipe,
                     "per-attribute overrides: lines of '<tag or keyword> <X|Z|D|K|C|U>'");
  command.add_flag("--allow-burned-in-annotation", args.allow_burned_in,
                   "release images whose header says text is burned into the pixels");
  command.add_option("--redact-mode", args.redact_mode,
                     "with clean-pixel-data: phi-text (identifying words) or all-text")
      ->capture_default_str();
  command.add_option("--redaction-rules", args.redaction_rules,
                     "with clean-pixel-data: regions of known screen layouts (JSON rule file)");
}

Result<deid::HeaderStage> make_stage(const StageArgs& args) {
  auto key = crypto::SecretKey::load(args.key);
  if (!key) return std::unexpected(key.error());
  auto policy = deid::Policy::create(
      args.profile, args.options,
      args.recipe.empty() ? std::nullopt : std::optional<std::filesystem::path>(args.recipe));
  if (!policy) return std::unexpected(policy.error());
  return deid::HeaderStage(
      std::move(*policy), pseudonym::Pseudonymizer(std::move(*key)),
      args.allow_burned_in ? deid::BurnedInPolicy::allow : deid::BurnedInPolicy::reject);
}

}  // namespace radguard::cli
