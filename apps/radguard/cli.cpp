#include "cli.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <string_view>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/version.hpp"
#include "dicom/dicom_file.hpp"

namespace radguard::cli {

Result<crypto::SecretKey> load_secret_key(const std::string& path) {
  auto key = crypto::SecretKey::load(path);
  if (key)
    if (auto warning = crypto::SecretKey::permission_warning(path))
      std::fprintf(stderr, "radguard: warning: %s\n", warning->c_str());
  return key;
}

namespace {

batch::CancelToken interrupted;

extern "C" void on_interrupt(int signal_number) {
  interrupted.cancel();  // a lock-free atomic store: safe in a signal handler
  std::signal(signal_number, SIG_DFL);
}

// Tesseract (Debian's 5.3) runs each step of its LSTM in an OpenMP team of up to four
// threads, inside radguard's own parallelism (-j: one file per thread, one reader each): on
// two cores and -j 2 that is eight threads taking turns for small steps, and the profile
// showed more time in libgomp than in Tesseract (docs/benchmarks.md, issue 11 fifteenth
// pass). One thread per reading reads the same words (outputs byte-identical there); the
// cores go to the files and the detector. libgomp reads OMP_THREAD_LIMIT once, when it is
// loaded (with the pixel plugin, after this), so it is set here, before any thread starts;
// a value the user gave is kept.
void one_thread_per_reading() { ::setenv("OMP_THREAD_LIMIT", "1", 0); }

}  // namespace

const batch::CancelToken& interrupt_token() {
  static const bool installed = [] {
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    return true;
  }();
  (void)installed;
  return interrupted;
}

void add_files_from(CLI::App& command, std::string& list) {
  command.add_option("--files-from", list,
                     "also the files (or folders) this list names, one per line (e.g. a shard "
                     "list of radguard plan)");
}

Result<std::vector<std::filesystem::path>> command_inputs(const std::vector<std::string>& named,
                                                          const std::string& list) {
  std::vector<std::filesystem::path> inputs(named.begin(), named.end());
  if (!list.empty()) {
    auto listed = batch::read_file_list(list);
    if (!listed) return std::unexpected(listed.error());
    inputs.insert(inputs.end(), listed->begin(), listed->end());
  }
  if (inputs.empty()) return fail(ErrorCode::usage, "no input: name files or folders, or give --files-from");
  return inputs;
}

int report_error(const Error& error) {
  std::fprintf(stderr, "radguard: error: %s\n", error.message.c_str());
  return statuses_for(error.code).exit_code;
}

int emit_report(const std::string& json, const std::string& text, const std::string& report_path,
                ReportFormat format, int exit_code) {
  if (!report_path.empty()) {
    const auto owner_only =
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write;
    if (auto written = write_file_atomically(report_path, json, owner_only); !written)
      return report_error(written.error());
  }
  if (format == ReportFormat::json)
    std::cout << json;
  else
    std::cerr << text;
  return exit_code;
}

namespace {

// Building every command's options is about four million instructions, a tenth of a process
// start, paid again by each shard of a cluster job. A command whose name is not among the
// words cannot be chosen, so only the named ones are built, unless help is asked for (it
// lists them all). Without a named command the parser fails as it does with all of them (a
// command is required), and --version needs none.
struct Command {
  std::string_view name;
  void (*add)(CLI::App&, Action&);
};
constexpr std::array kCommands{
    Command{"share", add_share},  // first in --help: the one-step path for patients
    Command{"serve", add_serve},  // the same in a browser
    Command{"keygen", add_keygen},
    Command{"deid", add_deid},
    Command{"consent", add_consent},
    Command{"ledger", add_ledger},
    Command{"disclosures", add_disclosures},
    Command{"pseudonym", add_pseudonym},
    Command{"export", add_export},
    Command{"keys", add_keys},
    Command{"sign", add_sign},
    Command{"verify", add_verify},
    Command{"verify-release", add_verify_release},
    Command{"manifest", add_manifest},
    Command{"redact", add_redact},
    Command{"deface", add_deface},
    Command{"config", add_config},
    Command{"plan", add_plan},
    Command{"audit", add_audit},
    Command{"gateway", add_gateway},
};

void add_commands(CLI::App& app, Action& action, const std::vector<char*>& words) {
  const auto after_program = words.empty() ? words.begin() : words.begin() + 1;
  const auto has = [&](std::string_view word) {
    return std::any_of(after_program, words.end(),
                       [word](const char* w) { return std::string_view(w) == word; });
  };
  // Every way CLI11 takes a request for help (-h, -hh, -h=1, --help, --help=1):
  // a word that only looks like one costs the time saved, never a command.
  const bool help = std::any_of(after_program, words.end(), [](const char* w) {
    const std::string_view word(w);
    return word.starts_with("--help") ||
           (word.size() > 1 && word[0] == '-' && word[1] != '-' &&
            word.find('h') != std::string_view::npos);
  });
  for (const Command& command : kCommands)
    if (help || has(command.name)) command.add(app, action);
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{
      "radguard: keep medical images private and trustworthy once they leave clinical care"};
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);
  Action action;
  std::vector<char*> words(argv, argv + argc);
  add_commands(app, action, words);
  // Only named commands are built, so without this a misspelt one reads "A subcommand is
  // required", as if none had been given.
  if (app.get_subcommands({}).empty() && argc > 1 && argv[1][0] != '-') {
    std::fprintf(stderr, "radguard: unknown command \"%s\"; radguard --help lists them\n", argv[1]);
    return kExitUsage;
  }
  // radguard plan ... --sbatch -- deid ...: the words after "--" are the shards' command, not
  // inputs of plan, so they never reach the parser.
  if (argc > 1 && std::string_view(argv[1]) == "plan") {
    const auto dashes = std::find_if(words.begin(), words.end(),
                                     [](const char* w) { return std::string_view(w) == "--"; });
    if (dashes != words.end()) {
      plan_command_words().assign(dashes + 1, words.end());
      words.erase(dashes, words.end());
    }
  }
  try {
    app.parse(static_cast<int>(words.size()), words.data());
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitSuccess : kExitUsage;
  }
  // Before any command starts a thread: the first initialise() sets DCMDICTPATH for a moment
  // (dicom_file.hpp), which must not race a thread reading the environment.
  if (action) {
    one_thread_per_reading();
    dicom::initialise();
  }
  try {
    return action ? action() : kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "radguard: internal error: %s\n", e.what());
    return kExitSomeFailed;
  }
}

}  // namespace radguard::cli
