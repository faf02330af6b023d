#pragma once
// Query/Retrieve service class provider (PS3.4 Annex C): C-FIND and C-MOVE answered on the
// associations of a StoreServer (same port, pool, allow-lists and TLS as C-STORE), for the
// Patient Root and Study Root information models. This layer reads the request's identifier
// into plain keys and writes the answers back; what matches and which files a C-MOVE sends are
// the handlers' (the gateway answers from what it has released: gateway/query_scp.hpp). The
// sub-operations of a C-MOVE are C-STOREs to the destination the handler names, over their own
// association (store_files), with a pending answer after each.
//
// Nothing here logs a key's value: log lines name AE titles, levels and counts.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/dimse.hpp"

namespace radguard::net {

// Statuses of PS3.4 C.4.1.1.4 and C.4.2.1.5 the service answers with.
inline constexpr std::uint16_t kStatusPending = 0xFF00;
inline constexpr std::uint16_t kStatusMoveDestinationUnknown = 0xA801;
inline constexpr std::uint16_t kStatusSubOperationsRefused = 0xA702;  // out of resources
inline constexpr std::uint16_t kStatusIdentifierMismatch = 0xA900;
inline constexpr std::uint16_t kStatusUnableToProcess = 0xC000;
inline constexpr std::uint16_t kStatusSubOperationsFailed = 0xB000;  // warning: some failed
inline constexpr std::uint16_t kStatusFindOutOfResources = 0xA700;
inline constexpr std::uint16_t kStatusMoveOutOfResources = 0xA701;  // no count of matches

// Bounds on what a peer may ask (a hostile identifier must not cost unbounded memory or time):
// keys beyond these are answered 0xA900; more matches than kMaxFindMatches end the C-FIND with
// 0xA700 after that many answers.
inline constexpr std::size_t kMaxIdentifierBytes = 64 * 1024;
inline constexpr std::size_t kMaxQueryKeys = 256;
inline constexpr std::size_t kMaxKeyValueBytes = 1024;
inline constexpr std::size_t kMaxKeyValues = 64;  // values of one key ('\'-separated)
inline constexpr std::size_t kMaxFindMatches = 10000;

enum class QueryModel : std::uint8_t { patient_root, study_root };
enum class QueryLevel : std::uint8_t { patient, study, series, image };
// The level as DICOM writes it ("PATIENT", "STUDY", "SERIES", "IMAGE").
const char* level_name(QueryLevel level);

// One attribute of an identifier: a top-level tag (group << 16 | element) and its value as
// text (several values separated by '\'). Sequences are not passed on.
struct QueryKey {
  std::uint32_t tag = 0;
  std::string value;
};

struct QueryRequest {
  std::string calling_ae;  // printable ASCII only
  QueryModel model = QueryModel::study_root;
  QueryLevel level = QueryLevel::study;
  std::vector<QueryKey> keys;  // the identifier less Query/Retrieve Level
};

// One C-FIND answer: the identifier's keys with the values of a match (the service adds the
// Query/Retrieve Level).
using QueryMatch = std::vector<QueryKey>;

// Answers a C-FIND. Fails with ErrorCode::usage (the identifier does not fit the model and
// level: answered 0xA900) or any other code (answered 0xC000). Called from pool threads at
// once: must be thread-safe.
using FindHandler = std::function<Result<std::vector<QueryMatch>>(const QueryRequest&)>;

// What a C-MOVE sends, and where.
struct MovePlan {
  Peer destination;
  std::vector<std::filesystem::path> files;  // Part 10 files, sent in this order
};

// Plans a C-MOVE to the AE title `destination`. Fails with ErrorCode::not_found (the
// destination is not known: answered 0xA801), ErrorCode::usage (0xA900) or any other code
// (0xC000). Called from pool threads at once: must be thread-safe.
using MoveHandler =
    std::function<Result<MovePlan>(const QueryRequest&, const std::string& destination)>;

// The Query/Retrieve service of a StoreServer (ServerConfig::query).
struct QueryService {
  FindHandler find;
  MoveHandler move;
  std::string ae_title;  // the calling AE title of the C-MOVE sub-associations
  std::uint32_t store_timeout_s = 60;
  // C-FINDs and C-MOVEs served at once; beyond, refused as out of resources (0xA700, 0xA701)
  // so that queries cannot hold every association the pool has for C-STORE. 0: no bound.
  std::size_t max_concurrent = 0;
  std::shared_ptr<std::atomic<std::size_t>> active = std::make_shared<std::atomic<std::size_t>>(0);
};

// The SOP class UIDs the service answers (C-FIND and C-MOVE, Patient and Study Root), for
// association negotiation.
const std::vector<std::string>& query_sop_classes();

}  // namespace radguard::net
