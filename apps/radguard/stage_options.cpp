#include "stage_options.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "cli.hpp"
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
                   "release images that may show burned-in text (ultrasound, screen captures, "
                   "documents, Burned In Annotation not NO ...) without --option "
                   "clean-pixel-data: only after checking the pixels by other means");
  command
      .add_option("--redact-mode", args.redact_mode,
                  "with clean-pixel-data: phi-text (identifying words) or all-text")
      ->capture_default_str();
  command.add_option("--redaction-rules", args.redaction_rules,
                     "with clean-pixel-data: regions of known screen layouts (JSON rule file)");
}

namespace {

// Says, before the run, what the recipe and options keep that the Basic Profile would not,
// so an output is never believed cleaner than it is.
void warn_kept_attributes(const deid::Policy& policy) {
  std::map<std::string, std::vector<std::string>> by_source;
  std::vector<std::string> direct;
  for (const auto& kept : policy.kept_against_profile()) {
    by_source[kept.source].push_back(kept.name);
    if (kept.direct_identifier) direct.push_back(kept.name);
  }
  auto joined = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
  };
  for (const auto& [source, names] : by_source)
    std::fprintf(stderr,
                 "radguard: warning: %s%s keeps %zu attribute(s) the Basic Profile removes or "
                 "replaces: %s\n",
                 source == "recipe" ? "the " : "option ", source.c_str(), names.size(),
                 joined(names).c_str());
  if (!direct.empty())
    std::fprintf(stderr,
                 "radguard: warning: a direct identifier is kept (%s): outputs are marked "
                 "Patient Identity Removed = NO\n",
                 joined(direct).c_str());
}

}  // namespace

Result<deid::HeaderStage> make_stage(const StageArgs& args) {
  auto key = load_secret_key(args.key);
  if (!key) return std::unexpected(key.error());
  auto policy = deid::Policy::create(
      args.profile, args.options,
      args.recipe.empty() ? std::nullopt : std::optional<std::filesystem::path>(args.recipe));
  if (!policy) return std::unexpected(policy.error());
  warn_kept_attributes(*policy);
  return deid::HeaderStage(
      std::move(*policy), pseudonym::Pseudonymizer(std::move(*key)),
      args.allow_burned_in ? deid::BurnedInPolicy::allow : deid::BurnedInPolicy::reject);
}

}  // namespace radguard::cli
