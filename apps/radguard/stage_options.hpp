#pragma once
// The de-identification flags shared by the commands that de-identify (deid, export): key,
// preset, options, recipe, burned-in annotation, pixel cleaning, signing. They only fill a
// pipeline::Spec; checking and building are src/pipeline's.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "pipeline/pipeline.hpp"
#include "signer_options.hpp"

namespace radguard::cli {

struct StageArgs {
  std::string config;  // a pipeline file (pipeline/config.hpp); flags given override it
  CLI::App* command = nullptr;  // set by add_stage_options: tells which flags were given
  std::string key;
  std::string profile = "basic";
  std::vector<std::string> options;
  std::string recipe;
  bool allow_burned_in = false;
  std::string redact_mode = "phi-text";  // with clean-pixel-data
  std::string redaction_rules;           // with clean-pixel-data: a rule file
  SignerArgs signer;
};

// Adds --config, --key, --profile, --option, --recipe, --allow-burned-in-annotation, --redact-mode,
// --redaction-rules and the signing flags.
void add_stage_options(CLI::App& command, StageArgs& args);

// The spec the pipeline file (if any) and the flags give: each flag given overrides the
// file's setting (--option, when given, replaces the file's list). Fails with ErrorCode::usage
// (a bad pipeline file; no key from either) or ErrorCode::io.
Result<pipeline::Spec> stage_spec(const StageArgs& args);

// pipeline::Pipeline::create, with its warnings printed on stderr ("radguard: warning: ...").
Result<pipeline::Pipeline> make_pipeline(const pipeline::Spec& spec);

}  // namespace radguard::cli
