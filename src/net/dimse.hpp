#pragma once
// DICOM networking for radguard (the gateway): a C-ECHO and C-STORE service class provider
// with a pool of associations, and a C-STORE/C-ECHO user. The one place that speaks DCMTK's
// dcmnet; this header holds no DCMTK type.
//
// Every socket made here has Nagle's algorithm off (TCP_NODELAY): DCMTK 3.6.7 leaves it on
// unless the environment variable TCP_NODELAY says otherwise, which costs tens of
// milliseconds per small message on loopback.
//
// DICOM TLS (PS3.15 Annex B) goes through DCMTK's dcmtls with the non-downgrading BCP 195
// profile (TLS 1.2 or later, DCMTK's default): both sides present a certificate that the
// other's trusted certificates verify (mutual authentication); a node that listens with TLS
// refuses plain associations, and one that sends with TLS refuses a peer whose certificate
// it cannot verify or that was issued for another name than the one it called (Peer::tls_name,
// by default the host: OpenSSL's host-name check, X509_VERIFY_PARAM_set1_host/_ip).
//
// Nothing here logs an attribute value: requests are named to handlers by SOP class and
// instance UIDs only so that the handler can answer them; log lines name AE titles, peers'
// addresses and DIMSE statuses.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace radguard::net {

// DIMSE statuses (PS3.7 Annex C) the gateway answers with.
inline constexpr std::uint16_t kStatusSuccess = 0x0000;
inline constexpr std::uint16_t kStatusOutOfResources = 0xA700;
inline constexpr std::uint16_t kStatusCannotUnderstand = 0xC000;
inline constexpr std::uint16_t kStatusProcessingFailure = 0x0110;
// A request on a presentation context negotiated for another SOP class than its own.
inline constexpr std::uint16_t kStatusSopClassNotSupported = 0x0122;

// Whether a C-STORE response status means the peer holds the instance (success, or a
// warning: 0x0001, 0xB000, 0xB007, 0xB006).
bool store_succeeded(std::uint16_t status);

// Turns Nagle's algorithm off for every DICOM socket this process opens afterwards (sets
// DCMTK's TCP_NODELAY environment variable to 1, which DCMTK 3.6.7 reads when it opens a
// socket) and configures DCMTK once (dicom::initialise: its logging off, since it can print
// attribute values). Called by StoreServer::create and the user functions below; idempotent.
void disable_nagle();

// A node's TLS identity and trust, PEM files: its certificate and private key (unencrypted)
// and the certificates it trusts to sign its peers' (a CA certificate, or a peer's own).
struct TlsFiles {
  std::filesystem::path certificate;
  std::filesystem::path private_key;
  std::filesystem::path trusted;
};

// Checks that the files load, the key matches the certificate and the trusted certificate
// reads. Fails with ErrorCode::usage naming the file (never its contents).
[[nodiscard]] Status check_tls(const TlsFiles& files);

// An allow-list entry for peers' addresses: an IPv4 or IPv6 address, or a network
// (address/prefix, e.g. 10.1.0.0/16). Fails with ErrorCode::usage (host names are not
// accepted: the list is checked against the connection's address, never a name lookup).
struct HostRule {
  std::uint8_t address[16] = {};  // IPv4 as ::ffff:a.b.c.d
  unsigned prefix = 128;
};
[[nodiscard]] Result<HostRule> parse_host_rule(const std::string& text);
// Whether a textual address (IPv4 or IPv6) matches a rule.
bool host_matches(const HostRule& rule, const std::string& address);

struct QueryService;  // net/query.hpp

// One C-STORE request as a handler sees it.
struct StoreRequest {
  std::string calling_ae;  // printable ASCII only (other bytes shown as '?')
  std::string sop_class_uid;
};

// Receives the request's data set into a new Part 10 file at `path` (the data set's bytes
// exactly as they came, with a meta header); at most once per request. The bytes are not
// parsed here: a data set cut inside an element or of odd length arrives as it came, and the
// association goes on (whoever reads the file judges it). Fails with ErrorCode::io (the file
// could not be written: the data set was read and dropped) or ErrorCode::malformed_dicom (the
// data set came on another presentation context than its command, or the association broke).
// Only a broken association ends it; after any other failure the request is answered.
using ReceiveInto = std::function<Status(const std::filesystem::path& path)>;

// Handles one C-STORE request and returns the DIMSE status to answer. It must call `receive`
// to take the data set; if it does not (it refuses before reading), the data set is read and
// dropped before the answer. Called from pool threads at once: must be thread-safe.
using StoreHandler = std::function<std::uint16_t(const StoreRequest&, const ReceiveInto& receive)>;

struct ServerConfig {
  std::uint16_t port = 0;
  std::string ae_title;
  unsigned max_associations = 8;  // more at once are refused (local limit exceeded)
  std::vector<std::string> allowed_calling;  // empty: any calling AE title
  std::vector<HostRule> allowed_hosts;       // empty: any peer address
  std::optional<TlsFiles> tls;               // set: TLS only, plain associations refused
  std::uint32_t dimse_timeout_s = 60;        // a peer silent this long loses its association
  // A C-STORE's data set must arrive whole within store_floor_s plus one second per
  // store_min_bytes_per_s bytes received (checked between fragments); past that the
  // association is aborted, nothing answered and nothing kept. dimse_timeout_s bounds each
  // wait only, so without this a peer that trickles fragments holds a pool slot for ever.
  // The defaults pass a 1 GB instance at 64 KiB/s (0.5 Mbit/s) and refuse a peer that sends
  // a few bytes now and then after two minutes. store_min_bytes_per_s 0: the floor alone.
  std::uint32_t store_floor_s = 120;
  std::uint64_t store_min_bytes_per_s = 64 * 1024;
  // The deadline grows with the bytes received, so a data set also has a size limit: past
  // it the association is aborted as above (a peer streaming an endless data set at the
  // minimum rate would otherwise hold its slot and fill the spool for ever). 0 is refused.
  std::uint64_t store_max_bytes = 8ULL << 30;
  // Set: C-FIND and C-MOVE are answered too (net/query.hpp), on the same associations.
  std::shared_ptr<const QueryService> query;
  // Hears one neutral line per refused association (AE titles, the peer's address, why).
  // Optional; called from pool threads at once.
  std::function<void(const std::string&)> log;
  // Hears each C-STORE answered with a failure before the handler was asked (no data set, or a
  // presentation context of another SOP class), so that the caller's totals count it.
  // Optional; called from pool threads at once.
  std::function<void()> store_refused;
};

// A C-ECHO and C-STORE SCP for every storage SOP class DCMTK knows, accepting the common
// transfer syntaxes (uncompressed, deflated, JPEG, JPEG-LS, JPEG 2000, RLE, MPEG and HEVC
// video) as they come.
//
// A pure interface: the DCMTK server that implements it lives in the services plugin
// (src/services), and the radguard executable destroys, runs and stops it through its virtual
// functions. Every virtual member is inline here (only the factory `create` is out of line), so
// every program that uses the interface has its own type information
// (UndefinedBehaviorSanitizer's vptr check in the executable needs it there, not only in the
// plugin).
class StoreServer {
 public:
  // Checks the settings (the TLS files load: check_tls); opens nothing yet. Fails with
  // ErrorCode::usage.
  [[nodiscard]] static Result<std::unique_ptr<StoreServer>> create(ServerConfig config,
                                                                   StoreHandler handler);
  virtual ~StoreServer() = default;
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  // Listens and serves until stop() is called; returns once the associations under way have
  // ended. Fails with ErrorCode::io when the port cannot be opened.
  [[nodiscard]] virtual Status run() = 0;
  // Asks run() to return: no new association is accepted, those under way finish. Safe from
  // any thread (not from a signal handler).
  virtual void stop() = 0;

 protected:
  StoreServer() = default;
};

// A DICOM node to send to.
struct Peer {
  std::string ae_title;
  std::string host;
  std::uint16_t port = 0;
  std::optional<TlsFiles> tls;  // set: associations with this node use TLS
  // With TLS, the name the node's certificate must carry besides a trusted chain: a DNS name
  // (subject alternative names, or the common name when it has none; no partial wildcards)
  // or an IP address (its IP subject alternative names). Empty: `host` itself, so a
  // certificate that the trusted CA issued for another node is refused.
  std::string tls_name;
};

// Parses AET@HOST:PORT (no TLS). Fails with ErrorCode::usage.
[[nodiscard]] Result<Peer> parse_peer(const std::string& text);

// Sends C-ECHO. Fails with ErrorCode::io (no association, no answer) naming the peer.
[[nodiscard]] Status echo(const Peer& peer, const std::string& calling_ae,
                          std::uint32_t timeout_s = 30);

// Sends Part 10 files with C-STORE over one association (presentation contexts for each
// file's SOP class and transfer syntax). Returns a DIMSE status per file, in order (a file
// that could not be read or had no accepted context gets 0x0110 and the association goes on).
// Fails with ErrorCode::io when no association could be made or it broke before any answer:
// then nothing is known to have arrived. `on_answer`, when set, hears each answer (the file's
// index and status) as soon as it comes, before the next file is sent: a caller that records
// each success at once re-sends at most the one instance in flight after a crash, not a batch.
// A file that could not be read or had no accepted context is heard too, with its 0x0110; a
// file the association broke before is never heard (it was not sent).
using StoreAnswer = std::function<void(std::size_t index, std::uint16_t status)>;
[[nodiscard]] Result<std::vector<std::uint16_t>> store_files(
    const Peer& peer, const std::string& calling_ae,
    const std::vector<std::filesystem::path>& files, std::uint32_t timeout_s = 60,
    const StoreAnswer& on_answer = {});

// C-STORE to one node over an association kept open from one store() to the next, so that a
// sender of many small batches does not pay an association's set-up (a TCP connection, the
// negotiation, and a forked process at a `storescp --fork`) per batch. store() opens the
// association when none is open, and opens it again, proposing every (SOP class, transfer
// syntax) seen so far, when a file needs a context the open one lacks. An association the peer
// ended while it sat idle (its own timeout) is found at the next store(), which opens a new one
// and sends again from the file it was at, once. release() ends the association (the caller
// does so after an idle interval, and the destructor does); the next store() opens another.
// Not thread-safe: one per sending thread.
//
// A pure interface like StoreServer (the DCMTK SCU lives in the services plugin).
class StoreSession {
 public:
  // Checks the TLS files (a Peer with tls); opens nothing yet. Fails with ErrorCode::usage.
  [[nodiscard]] static Result<std::unique_ptr<StoreSession>> create(Peer peer,
                                                                    std::string calling_ae,
                                                                    std::uint32_t timeout_s = 60);
  virtual ~StoreSession() = default;
  StoreSession(const StoreSession&) = delete;
  StoreSession& operator=(const StoreSession&) = delete;

  // As store_files, over the kept association: a status per file, in order; fails with
  // ErrorCode::io when no association could be made or it broke before any answer (then
  // nothing is known to have arrived, and the association is closed).
  [[nodiscard]] virtual Result<std::vector<std::uint16_t>> store(
      const std::vector<std::filesystem::path>& files, const StoreAnswer& on_answer) = 0;
  // Ends the association (A-RELEASE, or an abort if the peer does not answer); nothing if none.
  virtual void release() = 0;
  [[nodiscard]] virtual bool is_open() const = 0;
  // Associations opened since create(), for tests and logs.
  [[nodiscard]] virtual std::uint64_t associations_opened() const = 0;

 protected:
  StoreSession() = default;
};

// --- retrieving from a PACS (Study Root Query/Retrieve Information Model)

// The attribute that names the studies to retrieve.
enum class StudyKey { study_uid, accession_number, patient_id };

// Whether a value can name studies exactly: not empty, at most 64 characters, printable, and
// none of C-FIND's wildcards or value separator ('*', '?', '\'), which would make it match
// other patients' studies. Fails with ErrorCode::usage (the value is not shown).
[[nodiscard]] Status check_study_key(StudyKey key, const std::string& value);

// Asks `peer` (C-FIND, Study Root, STUDY level) for the Study Instance UIDs of the studies
// whose key attribute equals `value` exactly (check_study_key first). Fails with ErrorCode::io
// (no association, it broke, or a failure status) naming the peer, never the value.
[[nodiscard]] Result<std::vector<std::string>> find_studies(const Peer& peer,
                                                            const std::string& calling_ae,
                                                            StudyKey key, const std::string& value,
                                                            std::uint32_t timeout_s = 60);

// The last answer of a C-MOVE: its status and sub-operation counts.
struct MoveResult {
  std::uint16_t status = kStatusProcessingFailure;
  unsigned completed = 0, failed = 0, warnings = 0;
};

// Asks `peer` (C-MOVE, Study Root, STUDY level) to send the study with this Study Instance
// UID to the node it knows as `destination` (an AE title the PACS maps to an address: the
// gateway's own), and waits for the last answer (up to `timeout_s` between answers). Fails
// with ErrorCode::io (no association, or it broke before the last answer).
[[nodiscard]] Result<MoveResult> move_study(const Peer& peer, const std::string& calling_ae,
                                            const std::string& destination,
                                            const std::string& study_uid,
                                            std::uint32_t timeout_s = 600);

}  // namespace radguard::net
