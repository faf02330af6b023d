// The services plugin's one exported symbol (radguard-services.so): the table of its functions,
// handed only to an executable of the same build (the stamp). Everything else in the plugin is
// compiled with hidden visibility, so its calls between its own functions never reach the
// executable's forwarding definitions of the same names (src/services/stub.cpp).
#include <cstring>

#include "pixels_stamp.hpp"
#include "postgres/postgres.hpp"
#include "services/api.hpp"

namespace {

using namespace radguard;

const services::Api& table() {
  static const services::Api api = [] {
    services::Api a;
    a.pg_display_name = &postgres::display_name;
    a.pg_connect = &postgres::connect;
    a.store_succeeded = &net::store_succeeded;
    a.disable_nagle = &net::disable_nagle;
    a.check_tls = &net::check_tls;
    a.parse_host_rule = &net::parse_host_rule;
    a.host_matches = &net::host_matches;
    a.create_store_server = &net::StoreServer::create;
    a.parse_peer = &net::parse_peer;
    a.echo = &net::echo;
    a.store_files = &net::store_files;
    a.check_study_key = &net::check_study_key;
    a.find_studies = &net::find_studies;
    a.move_study = &net::move_study;
    a.level_name = &net::level_name;
    a.query_sop_classes = &net::query_sop_classes;
    a.create_store_session = &net::StoreSession::create;
    return a;
  }();
  return api;
}

}  // namespace

// The stamp is the pixel plugin's (a digest of every header under src/): one build, one stamp.
extern "C" __attribute__((visibility("default"))) const radguard::services::Api*
radguard_services_v1(const char* stamp) {
  if (stamp == nullptr || std::strcmp(stamp, radguard::pixels::kPixelsStamp) != 0) return nullptr;
  return &table();
}
