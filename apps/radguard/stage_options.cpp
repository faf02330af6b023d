#include "stage_options.hpp"

#include <cstdio>

#include "pipeline/config.hpp"

namespace radguard::cli {

void add_stage_options(CLI::App& command, StageArgs& args) {
  args.command = &command;
  command.add_option("--config", args.config,
                     "pipeline file (TOML; see docs/pipeline.example.toml): the settings below "
                     "from a file; flags given override it");
  command.add_option("-k,--key", args.key,
                     "secret key file (radguard keygen); required unless the pipeline file "
                     "names one");
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
  add_signer_options(command, args.signer);
}

Result<pipeline::Spec> stage_spec(const StageArgs& args) {
  pipeline::Spec spec;
  if (!args.config.empty()) {
    auto read = pipeline::read_spec(args.config);
    if (!read) return std::unexpected(read.error());
    spec = std::move(*read);
  }
  auto given = [&](const char* flag) { return args.command == nullptr || args.command->count(flag) > 0; };
  if (given("--key")) spec.key_file = args.key;
  if (given("--profile")) spec.profile = args.profile;
  if (given("--option")) spec.options = args.options;
  if (given("--recipe")) spec.recipe = args.recipe;
  if (given("--allow-burned-in-annotation") && args.allow_burned_in)
    spec.burned_in = pipeline::BurnedIn::allow;
  if (given("--redact-mode")) spec.redact_mode = args.redact_mode;
  if (given("--redaction-rules")) spec.redaction_rules = args.redaction_rules;
  if (given("--sign-key")) spec.signing.key = args.signer.key;
  if (given("--sign-cert")) spec.signing.cert = args.signer.cert;
  if (given("--sign-profile")) spec.signing.profile = args.signer.profile;
  if (spec.key_file.empty())
    return fail(ErrorCode::usage,
                "no secret key: give --key or key in the pipeline file (--config)");
  return spec;
}

Result<pipeline::Pipeline> make_pipeline(const pipeline::Spec& spec) {
  auto made = pipeline::Pipeline::create(spec);
  if (!made) return made;
  for (const auto& warning : made->warnings())
    std::fprintf(stderr, "radguard: warning: %s\n", warning.c_str());
  return made;
}

}  // namespace radguard::cli
