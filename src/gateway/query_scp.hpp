#pragma once
// radguard gateway as a Query/Retrieve SCP (C-FIND, C-MOVE; Patient and Study Root) over what
// it has released: the de-identified instances in its output folder, never the spool (incoming,
// quarantine, held) where the received originals wait. A query therefore sees only
// de-identified attributes: a query for an original patient name or ID finds nothing, one for
// the pseudonym finds the study. The associations are the C-STORE listener's (net/query.hpp):
// the same allow-lists and TLS.
//
// Matching (PS3.4 C.2.2.2) on every key given with a value: single value, '*' and '?'
// wildcards, a list of values ('\'), and a range (a-b, -b, a-) for dates and times. An
// instance without the attribute matches no non-empty key. Sequence keys are not offered.
// Answers carry the keys asked for with the values of the first matching instance of each
// record (patient, study, series or instance), plus the record's unique key and the counts
// (Number of ... Related Instances/Series) and Modalities in Study when asked for.
//
// A C-MOVE sends the matching instances to a destination the configuration names by AE title
// (unknown titles are refused: 0xA801), over TLS with the listener's files exactly when the
// listener uses TLS (a destination's own TLS settings are not used).
// Each request reads the output folder afresh (the headers only, up to the keys asked for).
// Log lines name AE titles, levels and counts, never a key's value.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "net/query.hpp"

namespace radguard::gateway {

struct QueryRetrieveConfig {
  std::filesystem::path released;      // the output folder: de-identified instances only
  std::string ae_title;                // the gateway's (Retrieve AE Title, C-MOVE's calling AE)
  std::vector<net::Peer> destinations;  // C-MOVE destinations, by AE title
  std::optional<net::TlsFiles> tls;    // set: C-MOVE sends over TLS (the listener's files)
  std::size_t max_concurrent = 1;      // C-FINDs and C-MOVEs served at once (0xA700 beyond)
};

// Whether `value` (an instance's, padding removed) matches the key `key` of attribute `tag`.
// An empty key matches everything (universal matching).
[[nodiscard]] bool key_matches(std::uint32_t tag, const std::string& key, const std::string& value);

// The C-FIND answers over the released folder (`retrieve_ae`: the Retrieve AE Title answered).
[[nodiscard]] Result<std::vector<net::QueryMatch>> find_released(
    const std::filesystem::path& released, const net::QueryRequest& request,
    const std::string& retrieve_ae);

// The files a C-MOVE of `request` sends (the matching instances, in path order).
[[nodiscard]] Result<std::vector<std::filesystem::path>> released_files(
    const std::filesystem::path& released, const net::QueryRequest& request);

// The service the gateway's listener answers C-FIND and C-MOVE with. `log` hears one neutral
// line per request.
[[nodiscard]] std::shared_ptr<const net::QueryService> make_query_service(
    QueryRetrieveConfig config, std::function<void(const std::string&)> log);

}  // namespace radguard::gateway
