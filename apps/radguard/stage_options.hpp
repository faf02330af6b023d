#pragma once
// The de-identification options shared by the commands that de-identify (deid, export):
// key, preset, options, recipe, and what to do with burned-in annotation.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "deid/header_stage.hpp"

namespace radguard::cli {

struct StageArgs {
  std::string key;
  std::string profile = "basic";
  std::vector<std::string> options;
  std::string recipe;
  bool allow_burned_in = false;
  std::string redact_mode = "phi-text";  // with clean-pixel-data
  std::string redaction_rules;           // with clean-pixel-data: a rule file
};

// Adds --key, --profile, --option, --recipe, --allow-burned-in-annotation, --redact-mode
// and --redaction-rules.
void add_stage_options(CLI::App& command, StageArgs& args);

// Loads the key and builds the header stage. Fails with ErrorCode::key or ErrorCode::usage.
Result<deid::HeaderStage> make_stage(const StageArgs& args);

}  // namespace radguard::cli
