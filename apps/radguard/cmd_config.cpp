#include <iostream>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "pipeline/config.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace {

// Reads a pipeline file, checks it as a run would (key, profile, options, recipe, redaction
// settings, signer) and prints the resolved settings.
int run_config_check(const std::string& path) {
  auto spec = pipeline::read_spec(path);
  if (!spec) return report_error(spec.error());
  if (spec->key_file.empty())
    return report_error(Error{ErrorCode::usage, path + ": no key (a run needs --key then)"});
  auto made = make_pipeline(*spec);
  if (!made) return report_error(made.error());
  std::cout << pipeline::spec_text(*spec);
  return kExitSuccess;
}

}  // namespace

void add_config(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("config", "pipeline files (--config of deid and export)");
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand(
      "check", "check a pipeline file as a run would and print the resolved settings");
  auto path = std::make_shared<std::string>();
  check->add_option("FILE", *path, "pipeline file (TOML)")->required();
  check->callback([&action, path] { action = [path] { return run_config_check(*path); }; });
}

}  // namespace radguard::cli
