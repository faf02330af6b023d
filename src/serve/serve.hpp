#pragma once
// `radguard serve`: a web page on this computer only, where a patient drops a CD (files,
// folders, a zip) and gets a copy that is safe to share (`radguard share`), and the same
// API for scripts:
//   POST   /api/jobs                  multipart files (or one application/zip body) -> {"id"}
//   GET    /api/jobs/{id}             state, progress; when done share's report (no values)
//   GET    /api/jobs/{id}/result.zip  the copy, one zip
//   GET    /api/jobs/{id}/previews/pN.png   a picture in the copy; bN.png the same before
//                                            (kept outside the copy, for this page only)
//   DELETE /api/jobs/{id}             the job's files removed
//   GET    /api/officer               {"officer": false}, or true with the ledger's and the
//                                      registry's display names when the part below is on
// and, only when the server is given a consent registry, a ledger and the key (the privacy
// officer's part; 404 otherwise), read-only routes:
//   GET    /api/officer/disclosures?patient=ID[&since=DATE]  the accounting of disclosures
//                                              (ledger/accounting.hpp, JSON)
//   GET    /api/officer/consent?patient=ID     the patient's consent history, oldest first
//   GET    /api/officer/verify                 the ledger's hash chain verified
//   GET    /api/officer/release?folder=PATH    a release folder on this computer checked as its
//                                              recipient would (radguard verify-release:
//                                              exporter::check_release, the manifest's signature,
//                                              every file's hash and DICOM signatures against
//                                              the certificates given with --trust), per file
// Nothing is changed through them: the ledger and the registry are opened read-only
// (LedgerAccess::read_only, RegistryAccess::read_only: no writers' lock, no schema
// statement; they answer while an export holds the writers' lock, and from a 0444 file).
// Bound to 127.0.0.1 only. Every request must carry the server's one-time token (cookie set
// when the page is opened with ?token=, or "Authorization: Bearer TOKEN"): 401 without it;
// a Host other than 127.0.0.1:PORT / localhost:PORT (DNS rebinding) or a foreign Origin
// (another site's page) is refused with 403 before the token is looked at; a body larger
// than the upload limit with 413 (before the body is sent to a client that asks first with
// "Expect: 100-continue"; after reading and dropping it when it is at most 16 MiB over, so a
// browser hears the answer; closed unread past that), and a body on any request but an
// upload with 413. Every refusal closes the connection. Uploads and results live in a private 0700 folder removed
// when a job is deleted and when the server stops. Nothing is loaded from elsewhere (the page
// is compiled in; strict Content-Security-Policy). Nothing about a request is logged.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "crypto/crypto.hpp"

namespace radguard::serve {

// The privacy officer's part: read-only look-ups in these (paths, file: URIs or PostgreSQL
// targets, as for radguard disclosures and radguard consent show).
struct OfficerOptions {
  std::string registry;
  std::string ledger;
  crypto::SecretKey key;  // the key the exports used (patients are found by keyed hash)
  // Certificates (PEM) a release's signatures are checked against (verify-release --trust);
  // none: every signature is reported as from a signer not trusted.
  std::vector<std::filesystem::path> trust;
};

struct ServeOptions {
  std::uint16_t port = 0;                         // 0: a free port chosen by the system
  std::uint64_t max_upload_bytes = 4ULL << 30;    // one request's body
  std::uint64_t max_unpacked_bytes = 16ULL << 30; // what the zips of one upload declare
  unsigned threads = 0;                           // share's worker threads (0: one per core)
  std::filesystem::path work_parent;              // "" = the system's temporary folder
  std::optional<OfficerOptions> officer;          // nullopt: no officer routes (404)
};

class Server {
 public:
  // Binds 127.0.0.1:port and makes the private folder. ErrorCode::io when the port is taken;
  // with officer options, the registry and the ledger must exist and open (their errors).
  [[nodiscard]] static Result<std::unique_ptr<Server>> create(const ServeOptions& options);
  ~Server();  // stops, removes every job and the private folder
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT/?token=TOKEN": the address to open.
  std::string url() const;
  const std::filesystem::path& work_folder() const;
  // Serves until stop() (from another thread). ErrorCode::io when it cannot listen.
  [[nodiscard]] Status run();
  void stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Blocks SIGINT and SIGTERM in the calling thread and in the threads it starts afterwards;
// call before Server::create, then serve with run_until_signal.
void block_stop_signals();
// Serves until SIGINT or SIGTERM; the Server is then stopped (the caller destroys it, which
// removes its files).
[[nodiscard]] Status run_until_signal(Server& server);

}  // namespace radguard::serve
