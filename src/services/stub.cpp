// radguard's side of the services plugin: finds and loads radguard-services.so on first use,
// and defines the functions of postgres/postgres.hpp, net/dimse.hpp and net/query.hpp by
// forwarding them to it (services.hpp).
#include "pixels_stamp.hpp"
#include "plugin/loader.hpp"
#include "postgres/postgres.hpp"
#include "services/api.hpp"
#include "services/services.hpp"

namespace radguard::services {

namespace {

constexpr const char* kPluginName = "radguard-services.so";
// One build, one stamp: the pixel plugin's digest of every header under src/.
constexpr plugin::Spec kSpec{"services", kPluginName, "RADGUARD_SERVICES", kEntryPoint,
                             pixels::kPixelsStamp};

const plugin::Table<Api>& loaded() {
  static const plugin::Table<Api> once = plugin::load_table<Api>(kSpec);
  return once;
}

std::string missing_message() {
  return "network and PostgreSQL support (" + std::string(kPluginName) +
         ") is not available: " + loaded().error +
         "; the gateway, DICOM send, query/retrieve and PostgreSQL stores need it";
}

}  // namespace

std::unexpected<Error> missing() { return fail(ErrorCode::unsupported, missing_message()); }

// Loads the plugin on first use; nullptr when it is missing.
const Api* api_or_null() { return loaded().api; }

std::vector<std::filesystem::path> plugin_candidates() { return plugin::candidates(kSpec); }

Status load() {
  if (loaded().api == nullptr) return missing();
  return {};
}

bool is_plugin_build() { return true; }

}  // namespace radguard::services

// The forwarding definitions (the declarations are the headers').
namespace radguard::postgres {

std::string display_name(std::string_view target) {
  const services::Api* api = services::api_or_null();
  // Only ever shown in messages: without the plugin (libpq parses the target), no part of the
  // target, which may hold a password, is shown.
  return api == nullptr ? "postgresql://(PostgreSQL support not available)"
                        : api->pg_display_name(target);
}

Result<std::unique_ptr<store::Database>> connect(const std::string& target,
                                                 store::OpenMode mode) {
  const services::Api* api = services::api_or_null();
  if (api == nullptr) return services::missing();
  return api->pg_connect(target, mode);
}

}  // namespace radguard::postgres

namespace radguard::net {

using services::api_or_null;
using services::missing;

// The functions without a Result fail closed when the plugin is missing, without throwing (a
// caller may be a pool thread or a destructor): nothing succeeded, no host matches, no query
// class is offered. The Result functions have failed first anyway (no server, no peer).
bool store_succeeded(std::uint16_t status) {
  const services::Api* api = api_or_null();
  return api != nullptr && api->store_succeeded(status);
}

// Without the plugin no DICOM socket is ever opened: nothing to configure.
void disable_nagle() {
  if (const services::Api* api = api_or_null(); api != nullptr) api->disable_nagle();
}

Status check_tls(const TlsFiles& files) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->check_tls(files);
}

Result<HostRule> parse_host_rule(const std::string& text) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->parse_host_rule(text);
}

bool host_matches(const HostRule& rule, const std::string& address) {
  const services::Api* api = api_or_null();
  return api != nullptr && api->host_matches(rule, address);
}

Result<std::unique_ptr<StoreServer>> StoreServer::create(ServerConfig config,
                                                         StoreHandler handler) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->create_store_server(std::move(config), std::move(handler));
}

Result<Peer> parse_peer(const std::string& text) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->parse_peer(text);
}

Status echo(const Peer& peer, const std::string& calling_ae, std::uint32_t timeout_s) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->echo(peer, calling_ae, timeout_s);
}

Result<std::vector<std::uint16_t>> store_files(const Peer& peer, const std::string& calling_ae,
                                               const std::vector<std::filesystem::path>& files,
                                               std::uint32_t timeout_s,
                                               const StoreAnswer& on_answer) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->store_files(peer, calling_ae, files, timeout_s, on_answer);
}

Result<std::unique_ptr<StoreSession>> StoreSession::create(Peer peer, std::string calling_ae,
                                                           std::uint32_t timeout_s) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->create_store_session(std::move(peer), std::move(calling_ae), timeout_s);
}

Status check_study_key(StudyKey key, const std::string& value) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->check_study_key(key, value);
}

Result<std::vector<std::string>> find_studies(const Peer& peer, const std::string& calling_ae,
                                              StudyKey key, const std::string& value,
                                              std::uint32_t timeout_s) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->find_studies(peer, calling_ae, key, value, timeout_s);
}

Result<MoveResult> move_study(const Peer& peer, const std::string& calling_ae,
                              const std::string& destination, const std::string& study_uid,
                              std::uint32_t timeout_s) {
  if (api_or_null() == nullptr) return missing();
  return api_or_null()->move_study(peer, calling_ae, destination, study_uid, timeout_s);
}

const char* level_name(QueryLevel level) {
  const services::Api* api = api_or_null();
  return api == nullptr ? "unknown" : api->level_name(level);
}

const std::vector<std::string>& query_sop_classes() {
  static const std::vector<std::string> none;
  const services::Api* api = api_or_null();
  return api == nullptr ? none : api->query_sop_classes();
}

}  // namespace radguard::net
