#pragma once
// The table of functions the services plugin (radguard-services.so) hands to radguard: every
// function of src/postgres and src/net that code outside them calls. Only src/services sees
// this table; everyone else calls the functions the headers declare (postgres/postgres.hpp,
// net/dimse.hpp, net/query.hpp), which src/services/stub.cpp forwards here. StoreServer's
// destructor, run() and stop() are virtual and need no entry. See services.hpp.
//
// Changing the table: add members at the end; the stamp (a digest of the headers under src/,
// src/pixels/stamp.cmake) checks that an executable and a plugin come from one build.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "net/dimse.hpp"
#include "net/query.hpp"
#include "store/database.hpp"

namespace radguard::services {

// The plugin's one exported symbol: extern "C" const Api* radguard_services_v1(const char*
// stamp), which returns nullptr when `stamp` is not its own.
inline constexpr const char* kEntryPoint = "radguard_services_v1";

struct Api {
  std::uint32_t version = 1;
  std::size_t size = sizeof(Api);

  // postgres/postgres.hpp
  std::string (*pg_display_name)(std::string_view) = nullptr;
  Result<std::unique_ptr<store::Database>> (*pg_connect)(const std::string&,
                                                         store::OpenMode) = nullptr;

  // net/dimse.hpp
  bool (*store_succeeded)(std::uint16_t) = nullptr;
  void (*disable_nagle)() = nullptr;
  Status (*check_tls)(const net::TlsFiles&) = nullptr;
  Result<net::HostRule> (*parse_host_rule)(const std::string&) = nullptr;
  bool (*host_matches)(const net::HostRule&, const std::string&) = nullptr;
  Result<std::unique_ptr<net::StoreServer>> (*create_store_server)(net::ServerConfig,
                                                                   net::StoreHandler) = nullptr;
  Result<net::Peer> (*parse_peer)(const std::string&) = nullptr;
  Status (*echo)(const net::Peer&, const std::string&, std::uint32_t) = nullptr;
  Result<std::vector<std::uint16_t>> (*store_files)(const net::Peer&, const std::string&,
                                                    const std::vector<std::filesystem::path>&,
                                                    std::uint32_t,
                                                    const net::StoreAnswer&) = nullptr;
  Status (*check_study_key)(net::StudyKey, const std::string&) = nullptr;
  Result<std::vector<std::string>> (*find_studies)(const net::Peer&, const std::string&,
                                                   net::StudyKey, const std::string&,
                                                   std::uint32_t) = nullptr;
  Result<net::MoveResult> (*move_study)(const net::Peer&, const std::string&, const std::string&,
                                        const std::string&, std::uint32_t) = nullptr;

  // net/query.hpp
  const char* (*level_name)(net::QueryLevel) = nullptr;
  const std::vector<std::string>& (*query_sop_classes)() = nullptr;

  // net/dimse.hpp, added later
  Result<std::unique_ptr<net::StoreSession>> (*create_store_session)(net::Peer, std::string,
                                                                     std::uint32_t) = nullptr;
};

}  // namespace radguard::services
