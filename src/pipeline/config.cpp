#include "pipeline/config.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "consent/consent.hpp"
#include "store/database.hpp"

namespace radguard::pipeline {

namespace fs = std::filesystem;

namespace {

class Reader {
 public:
  Reader(const fs::path& base, std::string_view name) : base_(base), name_(name) {}

  // Refuses keys of `table` that are not in `known` (named as prefix + key).
  Status only(const toml::table& table, const std::set<std::string_view>& known,
              const std::string& prefix) const {
    for (const auto& [key, node] : table) {
      if (!known.contains(key.str()))
        return error(node, "unknown key '" + prefix + std::string(key.str()) + "'");
    }
    return {};
  }

  Status string(const toml::table& table, std::string_view key, const std::string& prefix,
                std::string& out) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return {};
    const auto* value = node->as_string();
    if (value == nullptr)
      return error(*node, "'" + prefix + std::string(key) + "' must be a string");
    out = value->get();
    return {};
  }

  // A string that must be one of `allowed` (a wrong value is named with its key and line here,
  // not later by the flag a run would blame).
  Status choice(const toml::table& table, std::string_view key, const std::string& prefix,
                const std::vector<std::string>& allowed, std::string& out) const {
    if (auto read = string(table, key, prefix, out); !read) return read;
    const toml::node* node = table.get(key);
    if (node == nullptr || std::find(allowed.begin(), allowed.end(), out) != allowed.end())
      return {};
    std::string names;
    for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
    return error(*node, "'" + prefix + std::string(key) + "' must be one of " + names);
  }

  Status path(const toml::table& table, std::string_view key, const std::string& prefix,
              fs::path& out) const {
    std::string text;
    if (auto read = string(table, key, prefix, text); !read) return read;
    if (table.contains(key)) {
      if (text.empty())
        return error(*table.get(key), "'" + prefix + std::string(key) + "' is empty");
      out = fs::path(text).is_absolute() ? fs::path(text) : (base_ / text).lexically_normal();
    }
    return {};
  }

  Status boolean(const toml::table& table, std::string_view key, bool& out) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return {};
    const auto* value = node->as_boolean();
    if (value == nullptr) return error(*node, "'" + std::string(key) + "' must be true or false");
    out = value->get();
    return {};
  }

  Status strings(const toml::table& table, std::string_view key,
                 std::vector<std::string>& out) const {
    const toml::node* node = table.get(key);
    if (node == nullptr) return {};
    const auto* array = node->as_array();
    if (array == nullptr)
      return error(*node, "'" + std::string(key) + "' must be a list of strings");
    out.clear();
    for (const auto& element : *array) {
      const auto* value = element.as_string();
      if (value == nullptr)
        return error(element, "'" + std::string(key) + "' must be a list of strings");
      out.push_back(value->get());
    }
    return {};
  }

  Result<const toml::table*> table(const toml::table& root, std::string_view key) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return nullptr;
    const auto* sub = node->as_table();
    if (sub == nullptr) return std::unexpected(error(*node, "'" + std::string(key) + "' must be a table ([" + std::string(key) + "])").error());
    return sub;
  }

  Status error(const toml::node& node, const std::string& what) const {
    return fail(ErrorCode::usage, std::string(name_) + ":" +
                                      std::to_string(node.source().begin.line) + ": " + what);
  }

 private:
  fs::path base_;
  std::string_view name_;
};

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04X", static_cast<unsigned>(c) & 0xFFU);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::vector<std::string> purposes() {
  std::vector<std::string> out;
  for (const auto purpose : consent::all_purposes()) out.emplace_back(consent::purpose_name(purpose));
  return out;
}

}  // namespace

Result<Spec> parse_spec(std::string_view text, const fs::path& base, std::string_view name) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return fail(ErrorCode::usage, std::string(name) + ":" +
                                      std::to_string(e.source().begin.line) + ": " +
                                      std::string(e.description()));
  }
  const Reader read(base, name);
  Spec spec;
  if (auto ok = read.only(root,
                          {"key", "profile", "options", "recipe", "allow_burned_in_annotation",
                           "clean_pixel_data", "signing", "release"},
                          "");
      !ok)
    return std::unexpected(ok.error());
  bool allow_burned_in = false;
  for (const Status& step :
       {read.path(root, "key", "", spec.key_file), read.string(root, "profile", "", spec.profile),
        read.strings(root, "options", spec.options), read.path(root, "recipe", "", spec.recipe),
        read.boolean(root, "allow_burned_in_annotation", allow_burned_in)}) {
    if (!step) return std::unexpected(step.error());
  }
  spec.burned_in = allow_burned_in ? BurnedIn::allow : BurnedIn::refuse;

  auto pixels = read.table(root, "clean_pixel_data");
  if (!pixels) return std::unexpected(pixels.error());
  if (*pixels != nullptr) {
    const toml::table& t = **pixels;
    for (const Status& step :
         {read.only(t, {"redact_mode", "redaction_rules"}, "clean_pixel_data."),
          read.choice(t, "redact_mode", "clean_pixel_data.", {"phi-text", "all-text"},
                      spec.redact_mode),
          read.path(t, "redaction_rules", "clean_pixel_data.", spec.redaction_rules)}) {
      if (!step) return std::unexpected(step.error());
    }
  }
  auto signing = read.table(root, "signing");
  if (!signing) return std::unexpected(signing.error());
  if (*signing != nullptr) {
    const toml::table& t = **signing;
    for (const Status& step : {read.only(t, {"key", "cert", "profile"}, "signing."),
                               read.path(t, "key", "signing.", spec.signing.key),
                               read.path(t, "cert", "signing.", spec.signing.cert),
                               read.string(t, "profile", "signing.", spec.signing.profile)}) {
      if (!step) return std::unexpected(step.error());
    }
  }
  auto release = read.table(root, "release");
  if (!release) return std::unexpected(release.error());
  if (*release != nullptr) {
    const toml::table& t = **release;
    ReleaseSpec& r = spec.release;
    fs::path registry, ledger;
    // A consent time kept in a file would decide consent as of that day on every later
    // export, releasing patients who withdrew since: it is given per run, by flag only.
    if (const toml::node* at = t.get("consent_at"); at != nullptr)
      return std::unexpected(
          read.error(*at, "'release.consent_at' is not read from a file (it would decide "
                          "consent as of that day on every later export): give --consent-at")
              .error());
    for (const Status& step :
         {read.only(t, {"purpose", "recipient", "registry", "ledger", "on_failure", "audit_gate"},
                    "release."),
          read.choice(t, "purpose", "release.", purposes(), r.purpose),
          read.string(t, "recipient", "release.", r.recipient),
          read.string(t, "registry", "release.", r.registry),
          read.string(t, "ledger", "release.", r.ledger),
          read.choice(t, "on_failure", "release.", {"withhold-study", "abort"}, r.on_failure),
          read.choice(t, "audit_gate", "release.", {"high", "medium", "never"}, r.audit_gate)}) {
      if (!step) return std::unexpected(step.error());
    }
    // Stores are paths relative to the file's folder, or SQLite and PostgreSQL URIs taken
    // as written.
    for (std::string* target : {&r.registry, &r.ledger})
      if (store::names_a_file(*target) && fs::path(*target).is_relative())
        *target = (base / *target).lexically_normal().string();
  }
  return spec;
}

Result<Spec> read_spec(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, "cannot read the pipeline file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::io, "cannot read the pipeline file " + path.string());
  std::error_code ec;
  fs::path base = fs::absolute(path, ec).parent_path();
  if (ec) base = path.parent_path();
  return parse_spec(text.str(), base, path.string());
}

std::string spec_text(const Spec& spec) {
  auto absolute = [](const fs::path& p) {
    std::error_code ec;
    const fs::path a = p.empty() ? p : fs::absolute(p, ec);
    return quoted((ec ? p : a).string());
  };
  std::ostringstream out;
  if (!spec.key_file.empty()) out << "key = " << absolute(spec.key_file) << "\n";
  out << "profile = " << quoted(spec.profile) << "\n";
  out << "options = [";
  for (std::size_t i = 0; i < spec.options.size(); ++i)
    out << (i ? ", " : "") << quoted(spec.options[i]);
  out << "]\n";
  if (!spec.recipe.empty()) out << "recipe = " << absolute(spec.recipe) << "\n";
  out << "allow_burned_in_annotation = "
      << (spec.burned_in == BurnedIn::allow ? "true" : "false") << "\n";
  out << "\n[clean_pixel_data]\nredact_mode = " << quoted(spec.redact_mode) << "\n";
  if (!spec.redaction_rules.empty())
    out << "redaction_rules = " << absolute(spec.redaction_rules) << "\n";
  if (!spec.signing.key.empty() || !spec.signing.cert.empty() || !spec.signing.profile.empty()) {
    out << "\n[signing]\n";
    if (!spec.signing.key.empty()) out << "key = " << absolute(spec.signing.key) << "\n";
    if (!spec.signing.cert.empty()) out << "cert = " << absolute(spec.signing.cert) << "\n";
    if (!spec.signing.profile.empty()) out << "profile = " << quoted(spec.signing.profile) << "\n";
  }
  const ReleaseSpec& r = spec.release;
  const std::pair<const char*, const std::string*> release[] = {
      {"purpose", &r.purpose}, {"recipient", &r.recipient}, {"registry", &r.registry},
      {"ledger", &r.ledger},   {"on_failure", &r.on_failure}};
  bool any = false;
  for (const auto& [key, value] : release) {
    if (value->empty()) continue;
    if (!any) out << "\n[release]\n";
    any = true;
    out << key << " = " << quoted(*value) << "\n";
  }
  return out.str();
}

}  // namespace radguard::pipeline
