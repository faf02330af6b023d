#pragma once
// Pipeline files: the settings of a Spec in a file a person edits (TOML, read with Debian's
// toml++), so a gateway, a web page, cluster shards and the command line run the same
// pipeline. The format, with every key (docs/pipeline.example.toml is a commented example):
//
//   key = "secret.key"                 # radguard keygen's key file        (--key)
//   profile = "basic"                  # basic or research                 (--profile)
//   options = ["clean-descriptors"]    # PS3.15 options                    (--option, repeated)
//   recipe = "recipe.txt"              # per-attribute overrides           (--recipe)
//   allow_burned_in_annotation = false #                      (--allow-burned-in-annotation)
//   [clean_pixel_data]
//   redact_mode = "phi-text"           # phi-text or all-text              (--redact-mode)
//   redaction_rules = "rules.json"     # known screen layouts              (--redaction-rules)
//   [signing]
//   key = "signer.pem"                 #                                   (--sign-key)
//   cert = "signer.crt"                #                                   (--sign-cert)
//   profile = "base"                   # base, creator, authorization, none (--sign-profile)
//   [release]                          # radguard export only
//   purpose = "research"               #                                   (--purpose)
//   recipient = "Example lab"          #                                   (--recipient)
//   registry = "consent.db"            # consent registry                  (--registry)
//   ledger = "ledger.db"               # disclosure ledger                 (--ledger)
//   (consent_at is refused here: a standing date would outlive withdrawals; --consent-at only)
//   on_failure = "withhold-study"      # withhold-study or abort           (--on-failure)
//
// Relative paths are relative to the folder that holds the pipeline file. Every key is
// optional (a key file must come from the file or the command line). A key radguard does not
// know, or a value of the wrong type, is an error naming the key: a misspelt setting is never
// silently ignored.
#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "pipeline/pipeline.hpp"

namespace radguard::pipeline {

// Parses the text of a pipeline file; `base` is the folder relative paths are resolved
// against, `name` names the file in errors. Fails with ErrorCode::usage naming the line and
// key. Thread-safe.
[[nodiscard]] Result<Spec> parse_spec(std::string_view text, const std::filesystem::path& base,
                                      std::string_view name);

// Reads a pipeline file. Fails with ErrorCode::io (cannot be read) or as parse_spec.
[[nodiscard]] Result<Spec> read_spec(const std::filesystem::path& path);

// The resolved settings as a pipeline file (absolute paths), for `radguard config check`
// and for logs: names files and options, never a key's bytes.
std::string spec_text(const Spec& spec);

}  // namespace radguard::pipeline
