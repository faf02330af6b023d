#pragma once
// The radguard command line: parses options and calls the library. Each command lives in
// its own cmd_*.cpp and registers itself here.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "crypto/crypto.hpp"

namespace radguard::cli {

// Runs the command line; returns the process exit status. Catches every exception.
int run(int argc, char** argv);

// What a parsed command does; set by the command's registration.
using Action = std::function<int()>;

void add_keygen(CLI::App& app, Action& action);
void add_deid(CLI::App& app, Action& action);
void add_consent(CLI::App& app, Action& action);
void add_ledger(CLI::App& app, Action& action);
void add_disclosures(CLI::App& app, Action& action);
void add_export(CLI::App& app, Action& action);
void add_keys(CLI::App& app, Action& action);
void add_sign(CLI::App& app, Action& action);
void add_verify(CLI::App& app, Action& action);
void add_verify_release(CLI::App& app, Action& action);
void add_manifest(CLI::App& app, Action& action);
void add_redact(CLI::App& app, Action& action);
void add_deface(CLI::App& app, Action& action);
void add_share(CLI::App& app, Action& action);
void add_serve(CLI::App& app, Action& action);
void add_pseudonym(CLI::App& app, Action& action);
void add_config(CLI::App& app, Action& action);
void add_plan(CLI::App& app, Action& action);
// The words after "--" on a radguard plan command line (the command --sbatch runs per shard).
std::vector<std::string>& plan_command_words();
void add_audit(CLI::App& app, Action& action);
void add_gateway(CLI::App& app, Action& action);

// Loads a secret key file (crypto::SecretKey::load), warning on stderr, as ssh does, when
// the file is readable or writable by group or others.
Result<crypto::SecretKey> load_secret_key(const std::string& path);

// A token cancelled by the first SIGINT or SIGTERM (Ctrl-C): long runs stop between files,
// finish and publish whole the files begun, and say they were cancelled (an export publishes
// nothing). The handlers are installed on the first call; a second signal kills the process
// as usual.
const batch::CancelToken& interrupt_token();

// Adds --files-from LIST (batch::read_file_list: one path per line, such as a shard list of
// radguard plan) to a command that takes inputs.
void add_files_from(CLI::App& command, std::string& list);
// The command's inputs: those named on the command line, then those the list names. Fails
// with ErrorCode::usage when there are none, or as read_file_list.
[[nodiscard]] Result<std::vector<std::filesystem::path>> command_inputs(
    const std::vector<std::string>& named, const std::string& list);

// Prints "radguard: <message>" on stderr and returns the error's exit status.
int report_error(const Error& error);

enum class ReportFormat : std::uint8_t { text, json };

// Publishes a command's report: the JSON to `report_path` (owner-only, atomically) when one
// is given, then the JSON on stdout or the text on stderr. Returns `exit_code`, or the
// error's exit status when the report file cannot be written.
int emit_report(const std::string& json, const std::string& text, const std::string& report_path,
                ReportFormat format, int exit_code);

}  // namespace radguard::cli
