#pragma once
// radguard gateway: a de-identifying DICOM node. It receives instances (C-STORE), answers
// success only once each is durably in the spool (gateway/spool.hpp), de-identifies each
// with the pipeline (pipeline::Pipeline::process_instance: the bytes and name radguard deid
// publishes; with defacing, series by series through a pipeline::SeriesAssembler once each has
// been quiet for --series-quiet), and writes the result to an output folder laid out as deid lays
// it out, or forwards it (C-STORE) from a persistent outbox with retries and backoff. Instances the
// pipeline refuses go to quarantine with the reason and are never forwarded.
//
// After a kill at any moment, a restart on the same spool processes every acknowledged
// instance; an instance processed twice gets the same pseudonymous name, so none arrives
// twice under different names.
//
// With release settings (GatewayConfig::release, as radguard export takes them), each
// instance's patient must permit the route's purpose in the consent registry before any stage
// sees it (pipeline::ConsentGate; otherwise the instance is quarantined with a reason that
// names no one), and de-identified instances are held per study until the study has been
// quiet for series_quiet (or holds release_batch_max instances): then one ledger entry records
// the study batch, and only after it has committed are its instances delivered (outbox or
// output). A kill between the two leaves the instances in incoming/: the next run records
// them again and delivers them (a disclosure may be recorded twice, never not at all).
//
// Logs name spool ids (arrival time, process, counter), AE titles, counts and error
// categories; never an attribute value, a patient's name or an input path.
//
// DICOM networking lives in src/net; this header holds no DCMTK type.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "gateway/spool.hpp"
#include "net/dimse.hpp"
#include "pipeline/pipeline.hpp"

namespace radguard::gateway {

// A release route: consent gate and disclosure ledger, as radguard export takes them. All
// four of purpose, recipient, registry and ledger are required (check_route).
struct ReleaseRoute {
  std::string purpose;     // consent::purpose_names()
  std::string recipient;   // recorded in each ledger entry
  std::string registry;    // consent registry: a path or SQLite file: URI; must exist
  std::string ledger;      // disclosure ledger; created if missing
  std::string consent_at;  // ISO 8601; empty: the time each instance is checked
};

// Whether the gateway answers C-FIND and C-MOVE (gateway/query_scp.hpp).
enum class QueryRetrieve : std::uint8_t {
  off,
  over_output,  // over the de-identified instances of the output folder (--output only)
};

struct GatewayConfig {
  std::uint16_t port = 0;
  std::string ae_title;
  std::filesystem::path spool;
  // Exactly one of the two routes.
  std::optional<net::Peer> forward;          // C-STORE to this node
  std::filesystem::path output;              // or publish into this folder, as radguard deid does
  std::vector<std::string> allowed_calling;  // empty: every calling AE title
  std::vector<net::HostRule> allowed_hosts;  // empty: every peer address
  // Set: the listener speaks DICOM TLS only (plain associations are refused). Forwarding
  // over TLS is forward->tls.
  std::optional<net::TlsFiles> tls;
  unsigned max_associations = 8;
  // A C-STORE's whole-instance deadline: this floor plus one second per
  // store_min_bytes_per_s bytes received (net::ServerConfig says why and the defaults).
  std::uint32_t store_floor_s = net::ServerConfig{}.store_floor_s;
  std::uint64_t store_min_bytes_per_s = net::ServerConfig{}.store_min_bytes_per_s;
  std::uint64_t store_max_bytes = net::ServerConfig{}.store_max_bytes;
  unsigned workers = 1;  // de-identification threads
  // With defacing (a stage that needs whole series), a series is processed once it has
  // received nothing for this long (pipeline::SeriesAssembler); its instances wait in
  // incoming/ until then.
  std::chrono::seconds series_quiet{30};
  RetryPolicy retry;
  std::uint64_t min_free_bytes = 64ULL << 20;  // refuse instances below this free space
  std::size_t forward_batch = 64;              // instances claimed per forward batch
  // Outgoing associations at once, each with instances of its own (1 to 64): while one waits
  // for the destination's answer another sends. One by default: on 2 shared vCPUs two were
  // not measurably faster (docs/benchmarks.md, gateway19), the file system's work dominates.
  unsigned forward_associations = 1;
  // A forwarder keeps its association open from one batch to the next (net::StoreSession) and
  // releases it once it has had nothing to send for this long; 0: released after every batch.
  // While the workers keep up with the senders each batch is a handful of instances, and an
  // association per batch cost a set-up each (at a `storescp --fork`, a process each).
  std::chrono::milliseconds forward_idle{5000};
  std::optional<ReleaseRoute> release;         // consent gate and ledger; none: neither
  std::size_t release_batch_max = 1000;        // instances of a study per ledger entry, at most
  QueryRetrieve query_retrieve = QueryRetrieve::off;
  std::vector<net::Peer> move_destinations;  // where a C-MOVE may send, by AE title
};

// Checks a configuration: refuses (with ErrorCode::usage) both routes or none, a spool and an
// output folder inside one another, a bad port or worker count, defacing without a quiet
// time (a series is defaced whole once it has been quiet for series_quiet), and release
// settings that are incomplete or unreadable (purpose, consent time, recipient), and TLS
// files that do not load (net::check_tls), query/retrieve without --output, move destinations
// without query/retrieve or with a release route (a C-MOVE would disclose instances to a
// recipient no ledger entry names). Signing is
// done per instance (the pipeline signs what process_instance returns when its spec signs).
[[nodiscard]] Status check_route(const GatewayConfig& config, const pipeline::Pipeline& pipeline);

// Counts of one run, for its last log line.
struct GatewayTotals {
  std::uint64_t received = 0, refused = 0, processed = 0, quarantined = 0, forwarded = 0,
                forward_failures = 0, ledger_entries = 0, forward_given_up = 0;
};

// Runs the gateway in the calling thread until `stop` is cancelled (the command cancels it on
// SIGTERM or SIGINT): then no association is accepted, those under way end, each worker
// finishes the instance it holds, and the function returns (what is still spooled is taken
// up by the next run). Log lines go to `log`. Fails with ErrorCode::usage (check_route),
// ErrorCode::io (the spool, the output folder, the port), ErrorCode::not_found (no consent
// registry), ErrorCode::key (a ledger kept with another key).
[[nodiscard]] Result<GatewayTotals> run_gateway(const GatewayConfig& config,
                                                const pipeline::Pipeline& pipeline,
                                                const batch::CancelToken& stop, std::ostream& log);

// The spool's state as `radguard gateway status` prints it.
[[nodiscard]] Result<SpoolStatus> read_status(const std::filesystem::path& spool);
std::string status_text(const SpoolStatus& status);
std::string status_json(const SpoolStatus& status);

}  // namespace radguard::gateway
