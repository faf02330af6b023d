// Finding and loading a plugin (loader.hpp).
#include "plugin/loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <system_error>

namespace radguard::plugin {

namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

}  // namespace

std::vector<fs::path> candidates(const Spec& spec) {
  std::vector<fs::path> out;
  if (const char* given = std::getenv(spec.environment); given != nullptr && *given != '\0') {
    out.emplace_back(given);
    return out;  // named explicitly: nothing else is tried
  }
  const fs::path dir = executable_dir();
  if (!dir.empty()) {
    out.push_back(dir / spec.file);
    out.push_back(dir.parent_path() / "lib" / "radguard" / spec.file);
  }
  return out;
}

Loaded load(const Spec& spec) {
  std::string tried;
  for (const fs::path& candidate : candidates(spec)) {
    std::error_code ec;
    if (!fs::is_regular_file(candidate, ec)) {
      tried += (tried.empty() ? "" : ", ") + candidate.string();
      continue;
    }
    void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      return {nullptr, "cannot load " + candidate.string() + ": " + (why ? why : "unknown error")};
    }
    using Entry = const void* (*)(const char*);
    auto* entry = reinterpret_cast<Entry>(dlsym(handle, spec.entry_point));
    if (entry == nullptr) {
      return {nullptr, candidate.string() + " is not a radguard " + spec.kind + " plugin (no " +
                           std::string(spec.entry_point) + ")"};
    }
    const void* table = entry(spec.stamp);
    if (table == nullptr) {
      return {nullptr, candidate.string() +
                           " comes from another build of radguard (rebuild or reinstall both)"};
    }
    return {table, {}};
  }
  return {nullptr, "not found (looked for " + tried + ")"};
}

}  // namespace radguard::plugin
