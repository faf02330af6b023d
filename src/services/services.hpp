#pragma once
// The capabilities that need libraries most commands never use are a plugin,
// radguard-services.so, that the radguard executable loads on first use: PostgreSQL stores
// (src/postgres: libpq, which pulls in Kerberos, LDAP, GnuTLS) and DICOM networking (src/net:
// DCMTK's dcmnet and dcmtls, the gateway and query/retrieve). deid, sign, verify, manifest,
// consent and ledger on SQLite, plan... start without them. Tests and tools link the same code
// directly (radguard_services_direct); only an executable with the target property
// RADGUARD_SERVICES_PLUGIN gets the loader (docs/ARCHITECTURE.md, "Start-up: the services
// plugin").
//
// Fail closed: when the plugin is missing, does not load or comes from another build, every
// function of postgres.hpp and net/dimse.hpp that returns a Result fails with
// ErrorCode::unsupported naming the plugin; the few others answer as if nothing matched or
// succeeded, never throwing: net::store_succeeded and net::host_matches false,
// net::query_sop_classes empty, net::level_name "unknown", net::disable_nagle nothing, and
// postgres::display_name a name that shows no part of the target.
#include <filesystem>
#include <vector>

#include "core/result.hpp"

namespace radguard::services {

// Where the plugin is looked for: $RADGUARD_SERVICES (a file), then next to the executable,
// then <executable>/../lib/radguard/ (plugin/loader.hpp).
std::vector<std::filesystem::path> plugin_candidates();

// Loads the plugin once per process (thread-safe); later calls return the same answer.
[[nodiscard]] Status load();

// Whether this executable loads the services as a plugin (false: linked in directly).
bool is_plugin_build();

}  // namespace radguard::services
