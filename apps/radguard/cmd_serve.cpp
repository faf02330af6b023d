#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <iostream>
#include <thread>
#include <utility>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "serve/serve.hpp"

extern char** environ;

namespace radguard::cli {

namespace {

struct ServeArgs {
  std::uint16_t port = 0;
  bool open = false;
  std::uint64_t max_upload_mb = 4096;
  unsigned threads = 0;
  std::string registry, ledger, key;  // the privacy officer's part: all three or none
  std::vector<std::string> trust;     // its release check's certificates
};

// Asks the desktop to open the address (xdg-open, no shell); failing is not an error. The
// token never goes on a command line (any local user can read another's argv in /proc): the
// browser is given an owner-only page in the server's private folder that forwards to it.
void open_in_browser(const std::string& url, const std::filesystem::path& private_folder) {
  const std::filesystem::path page = private_folder / "open.html";
  const auto written = write_file_atomically(
      page, "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url=" + url + "\">",
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  pid_t pid = 0;
  std::string program = "xdg-open";
  std::string target = "file://" + page.string();
  std::vector<char*> argv = {program.data(), target.data(), nullptr};
  if (!written ||
      posix_spawnp(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    std::cerr << "radguard: could not open a browser; open the address above yourself\n";
    return;
  }
  std::thread([pid] { waitpid(pid, nullptr, 0); }).detach();  // no zombie left behind
}

int run_serve_command(const ServeArgs& args) {
  serve::ServeOptions options;
  options.port = args.port;
  options.max_upload_bytes = args.max_upload_mb << 20;
  options.max_unpacked_bytes = options.max_upload_bytes * 4;
  options.threads = args.threads;
  const int given = int(!args.registry.empty()) + int(!args.ledger.empty()) + int(!args.key.empty());
  if (given != 0 && given != 3) {
    std::string missing;
    for (const auto& [value, name] : {std::pair{&args.registry, "--registry"},
                                      std::pair{&args.ledger, "--ledger"}, std::pair{&args.key, "--key"}})
      if (value->empty()) missing += std::string(missing.empty() ? "" : " and ") + name;
    return report_error(Error{ErrorCode::usage,
                              "the privacy officer's page needs --registry, --ledger and --key "
                              "together; missing: " + missing});
  }
  if (given == 0 && !args.trust.empty())
    return report_error(Error{ErrorCode::usage,
                              "--trust is for the privacy officer's page: give --registry, "
                              "--ledger and --key too"});
  if (given == 3) {
    auto key = load_secret_key(args.key);
    if (!key) return report_error(key.error());
    options.officer.emplace(serve::OfficerOptions{
        args.registry, args.ledger, std::move(*key),
        std::vector<std::filesystem::path>(args.trust.begin(), args.trust.end())});
  }
  serve::block_stop_signals();  // before any thread starts: Ctrl-C is waited for below
  auto server = serve::Server::create(options);
  if (!server) return report_error(server.error());
  std::cout << "radguard serve: open this address in your browser (on this computer only):\n  "
            << (*server)->url() << "\nPress Ctrl-C to stop; the files you gave are then removed."
            << std::endl;
  if (args.open) open_in_browser((*server)->url(), (*server)->work_folder());
  const auto served = serve::run_until_signal(**server);
  server->reset();  // removes every upload and copy
  if (!served) return report_error(served.error());
  std::cerr << "radguard serve: stopped; its files are removed\n";
  return 0;
}

}  // namespace

void add_serve(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "serve",
      "a page in your browser, on this computer only, where you drop a CD, folders or a zip "
      "and get a copy that is safe to share (as `radguard share`)");
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("--port", args->port, "the port on 127.0.0.1 (default: a free one)");
  cmd->add_flag("--open", args->open, "open the page in the desktop's browser");
  cmd->add_option("--max-upload-mb", args->max_upload_mb,
                  "the largest upload accepted, in MiB (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_option("--registry", args->registry,
                  "privacy officer's page: the consent registry (with --ledger and --key)");
  cmd->add_option("--ledger", args->ledger,
                  "privacy officer's page: the ledger of disclosures (with --registry and --key)");
  cmd->add_option("-k,--key", args->key,
                  "privacy officer's page: the secret key the exports used");
  cmd->add_option("--trust", args->trust,
                  "privacy officer's page: a certificate (PEM) release signatures are checked "
                  "against when a release folder is verified; repeatable");
  cmd->callback([&action, args] { action = [args] { return run_serve_command(*args); }; });
}

}  // namespace radguard::cli
