#pragma once
// Finding and loading one of radguard's plugins (radguard-pixels.so, radguard-services.so):
// shared objects built next to the radguard executable and loaded with dlopen the first time a
// command needs what they hold, so that the commands that never do start without their
// libraries (docs/ARCHITECTURE.md, "Start-up: the pixel plugin", "... the services plugin").
// Each plugin exports one entry point that hands its table of functions only to an executable
// of the same build (the stamp).
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace radguard::plugin {

struct Spec {
  const char* kind;         // "pixel": named in messages ("not a radguard pixel plugin")
  const char* file;         // "radguard-pixels.so"
  const char* environment;  // a variable naming the file instead ("RADGUARD_PIXELS")
  const char* entry_point;  // extern "C" const void* entry(const char* stamp)
  const char* stamp;        // this build's stamp, which the plugin must share
};

// Where the plugin is looked for, first found wins: $<environment> (a file: nothing else is
// tried), then next to the executable, then <executable>/../lib/radguard/. Never the current
// directory.
std::vector<std::filesystem::path> candidates(const Spec& spec);

struct Loaded {
  const void* table = nullptr;  // what the entry point returned for this build's stamp
  std::string error;            // when table is null: the file tried and why (no patient data)
};

// dlopen (RTLD_NOW: a symbol the plugin needs and the executable lacks fails here, not in the
// middle of a file) and the entry point. The handle stays open for the life of the process.
// Callers load once (a function-local static), through load_table.
Loaded load(const Spec& spec);

// A plugin's table of functions, of type Api (whose first members are `std::uint32_t version`,
// 1, and `std::size_t size`, sizeof(Api) in the same build).
template <class Api>
struct Table {
  const Api* api = nullptr;
  std::string error;  // when api is null: what went wrong
};

template <class Api>
Table<Api> load_table(const Spec& spec) {
  Loaded found = load(spec);
  if (found.table == nullptr) return {nullptr, std::move(found.error)};
  const auto* api = static_cast<const Api*>(found.table);
  if (api->version != 1 || api->size != sizeof(Api)) {
    return {nullptr, std::string(spec.file) +
                         " comes from another build of radguard (rebuild or reinstall both)"};
  }
  return {api, {}};
}

}  // namespace radguard::plugin
