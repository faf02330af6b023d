#include <cstdio>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "crypto/crypto.hpp"

namespace radguard::cli {

void add_keygen(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "keygen", "write a new secret key (mode 0600) for pseudonyms and date shifts");
  auto path = std::make_shared<std::string>();
  cmd->add_option("KEYFILE", *path, "where to write the key; an existing file is never replaced")
      ->required();
  cmd->callback([&action, path] {
    action = [path] {
      auto key = crypto::SecretKey::generate();
      if (!key) return report_error(key.error());
      if (auto saved = key->save_new(*path); !saved) return report_error(saved.error());
      std::printf("wrote %s (fingerprint %s)\n", path->c_str(), key->fingerprint().c_str());
      return kExitSuccess;
    };
  });
}

}  // namespace radguard::cli
