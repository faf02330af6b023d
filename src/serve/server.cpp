// The HTTP side of `radguard serve` (cpp-httplib lives only in this file).
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "consent/consent.hpp"
#include "crypto/crypto.hpp"
#include "dicom/signature.hpp"
#include "export/release_check.hpp"
#include "ledger/accounting.hpp"
#include "ledger/ledger.hpp"
#include "serve/assets.hpp"
#include "serve/guard.hpp"
#include "serve/jobs.hpp"
#include "serve/serve.hpp"
#include "share/archive.hpp"
#include "store/database.hpp"

namespace radguard::serve {

namespace fs = std::filesystem;

namespace {

constexpr const char* kCookie = "radguard_token";
constexpr const char* kJson = "application/json";
// Nothing from elsewhere, no inline script or style, no framing, no form posting elsewhere.
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
constexpr const char* kJobPattern = "/api/jobs/([0-9a-f]{32})";

std::string error_json(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

// How far past the upload limit a body is still read (and dropped) before the 413 is sent.
constexpr std::uint64_t kDrainAfterRefusal = 16ULL * 1024 * 1024;

// A declared Content-Length; `cap` where it is larger or not a number, 0 where it is empty.
std::uint64_t declared_length(std::string_view text, std::uint64_t cap) {
  std::uint64_t n = 0;
  for (const char c : text) {
    if (c < '0' || c > '9' || n > cap / 10) return cap;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return std::min(n, cap);
}

void refuse(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  res.set_content(error_json(message), kJson);
}

// The extension a stored upload keeps (share recognises NIfTI volumes by name); everything
// else of the name is dropped.
std::string kept_extension(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.ends_with(".nii.gz")) return ".nii.gz";
  if (lower.ends_with(".nii")) return ".nii";
  return "";
}

std::string numbered(std::size_t n) {
  std::string digits = std::to_string(n);
  return "f" + std::string(digits.size() < 6 ? 6 - digits.size() : 0, '0') + digits;
}

// Streams one upload into a job's input folder under neutral names.
class UploadWriter {
 public:
  UploadWriter(fs::path folder, std::uint64_t max_bytes)
      : folder_(std::move(folder)), max_bytes_(max_bytes) {}

  bool begin(std::string_view name) {
    close_file();
    if (status_ != 0) return true;  // refused already: the rest is only drained
    if (!upload_name_allowed(name)) return fail_with(400, "a file name points outside its folder");
    path_ = folder_ / (numbered(++files_) + kept_extension(name));
    out_.open(path_, std::ios::binary);
    if (!out_) return fail_with(500, "the upload could not be written on this computer");
    paths_.push_back(path_);
    return true;
  }
  void skip_field() {
    close_file();
    writing_ = false;
  }
  bool write(const char* data, std::size_t size) {
    bytes_ += size;
    if (bytes_ > max_bytes_) {
      fail_with(413, "the upload is larger than this server accepts");
      close_file();
      // Read on, dropping it, a little past the limit: the client then hears the 413 instead
      // of a reset connection (a chunked body has no length to refuse it by in advance).
      return bytes_ - max_bytes_ <= kDrainAfterRefusal;
    }
    if (!writing_ || status_ != 0) return true;
    out_.write(data, static_cast<std::streamsize>(size));
    if (!out_) return fail_with(500, "the upload could not be written on this computer");
    return true;
  }
  bool finish() {
    close_file();
    return status_ == 0;
  }
  void start_file() { writing_ = true; }

  std::size_t files() const { return files_; }
  const std::vector<fs::path>& paths() const { return paths_; }
  int status() const { return status_; }
  const std::string& message() const { return message_; }

 private:
  // Closing a file never opened sets its fail bit: only an open file's close is checked.
  void close_file() {
    if (!out_.is_open()) return;
    out_.close();
    if (out_.fail()) fail_with(500, "the upload could not be written on this computer");
  }
  bool fail_with(int status, std::string message) {
    if (status_ == 0) {
      status_ = status;
      message_ = std::move(message);
    }
    return false;
  }
  fs::path folder_;
  std::uint64_t max_bytes_;
  std::uint64_t bytes_ = 0;
  std::size_t files_ = 0;
  bool writing_ = false;
  std::ofstream out_;
  fs::path path_;
  std::vector<fs::path> paths_;
  int status_ = 0;
  std::string message_;
};

// The HTTP status for an error of the officer's look-ups. Messages come from the library and
// name no patient (ledger and registry messages name the store by its display name).
int officer_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::usage: return 400;
    case ErrorCode::not_found: return 404;
    case ErrorCode::key: return 409;
    default: return 500;
  }
}

// A patient ID from the query: present, not too long, no control characters.
std::optional<std::string> patient_param(const httplib::Request& req) {
  if (!req.has_param("patient")) return std::nullopt;
  std::string id = req.get_param_value("patient");
  if (id.empty() || id.size() > 256) return std::nullopt;
  for (const char c : id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
  return id;
}

// A folder from the query: an absolute path of at most 4096 bytes, no control characters.
std::optional<fs::path> folder_param(const httplib::Request& req) {
  if (!req.has_param("folder")) return std::nullopt;
  std::string folder = req.get_param_value("folder");
  if (folder.empty() || folder.size() > 4096 || folder.front() != '/') return std::nullopt;
  for (const char c : folder)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return std::nullopt;
  return fs::path(folder);
}

}  // namespace

struct Server::Impl {
  ServeOptions options;
  std::unique_ptr<JobStore> jobs;
  httplib::Server http;
  std::uint16_t port = 0;
  std::string token;

  // Host, Origin and token, in that order; then the declared body size.
  httplib::Server::HandlerResponse guard(const httplib::Request& req, httplib::Response& res) {
    if (!host_allowed(req.get_header_value("Host"), port)) {
      refuse(res, 403, "this page answers only at 127.0.0.1 or localhost on its own port");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!origin_allowed(req.get_header_value("Origin"), port) ||
        !fetch_site_allowed(req.get_header_value("Sec-Fetch-Site"))) {
      refuse(res, 403, "requests from other sites are refused");
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool authorised =
        same_token(bearer_token(req.get_header_value("Authorization")), token) ||
        same_token(cookie_value(req.get_header_value("Cookie"), kCookie), token) ||
        (req.method == "GET" && req.path == "/" && same_token(req.get_param_value("token"), token));
    if (!authorised) {
      refuse(res, 401,
             "open the address radguard serve printed (it carries a one-time token), or send "
             "Authorization: Bearer TOKEN");
      return httplib::Server::HandlerResponse::Handled;
    }
    // Only an upload has a body: the library would read any other request's chunked body
    // whole, with no limit (its payload limit counts declared lengths only).
    const bool upload = req.method == "POST" && req.path == "/api/jobs";
    if (!upload && (req.has_header("Transfer-Encoding") ||
                    declared_length(req.get_header_value("Content-Length"), 1) > 0)) {
      refuse(res, 413, "only an upload to /api/jobs may carry a body");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Content-Length")) {
      const std::uint64_t drained = options.max_upload_bytes + kDrainAfterRefusal;
      const std::uint64_t n = declared_length(req.get_header_value("Content-Length"), drained + 1);
      // A body at most kDrainAfterRefusal past the limit is left to the library, which reads
      // and discards it before answering 413: a client that sends without waiting for
      // "100 Continue" (a browser) would otherwise see its connection reset, not the answer.
      if (n > drained) {
        refuse(res, 413, "the upload is larger than this server accepts");
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  void upload(const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader) {
    auto id = jobs->create_job();
    if (!id) return refuse(res, 503, id.error().message);
    const auto folder = jobs->input_folder(*id);
    if (!folder) return refuse(res, 500, "the job went away");
    UploadWriter writer(*folder, options.max_upload_bytes);
    const std::string type = req.get_header_value("Content-Type");
    bool read = false;
    if (req.is_multipart_form_data()) {
      read = reader(
          [&](const httplib::MultipartFormData& part) {
            if (part.name != "files" || part.filename.empty()) {
              writer.skip_field();
              return true;
            }
            writer.start_file();
            return writer.begin(part.filename);
          },
          [&](const char* data, std::size_t size) { return writer.write(data, size); });
    } else if (type == "application/zip" || type == "application/octet-stream") {
      read = writer.begin("upload.zip");
      writer.start_file();
      read = read && reader([&](const char* data, std::size_t size) {
        return writer.write(data, size);
      });
    } else {
      jobs->remove(*id);
      return refuse(res, 415, "send multipart/form-data (field \"files\") or one zip file");
    }
    const bool finished = writer.finish();
    if (!read || !finished) {
      jobs->remove(*id);
      const int status = writer.status() != 0 ? writer.status() : res.status == 413 ? 413 : 400;
      res.set_header("Connection", "close");
      return refuse(res, status,
                    writer.status() != 0 ? writer.message() : "the upload could not be read");
    }
    if (writer.files() == 0) {
      jobs->remove(*id);
      return refuse(res, 400, "no file was sent");
    }
    // Zip files are looked into before anything else: a name that climbs out of the zip, a
    // link, or more than the server accepts refuses the whole upload.
    for (const auto& path : writer.paths()) {
      if (!share::is_zip(path)) continue;
      if (auto s = check_zip(path, options.max_unpacked_bytes); !s) {
        jobs->remove(*id);
        return refuse(res, s.error().code == ErrorCode::policy ? 400 : 422, s.error().message);
      }
    }
    if (auto s = jobs->start(*id); !s) return refuse(res, 500, "the job could not be started");
    res.status = 202;
    res.set_content(nlohmann::json{{"id", *id}}.dump(), kJson);
  }

  // The privacy officer's read-only routes: a connection of its own per request (the ledger
  // and registry are not thread-safe; requests run on several threads).
  void officer_routes() {
    http.Get("/api/officer/disclosures", [this](const httplib::Request& req,
                                                         httplib::Response& res) {
      const OfficerOptions& officer = *options.officer;
      const auto patient = patient_param(req);
      if (!patient) return refuse(res, 400, "give ?patient=ID (1 to 256 characters)");
      auto ledger = ledger::Ledger::open(officer.ledger, ledger::LedgerAccess::read_only);
      if (!ledger) return refuse(res, officer_status(ledger.error().code), ledger.error().message);
      auto accounting = ledger::account_for(*ledger, store::display_name(officer.ledger),
                                            officer.key, *patient, req.get_param_value("since"));
      if (!accounting)
        return refuse(res, officer_status(accounting.error().code), accounting.error().message);
      // An altered ledger still gives its accounting, flagged (intact false, problem).
      res.set_content(ledger::accounting_json(*accounting), kJson);
    });
    http.Get("/api/officer/consent", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
      const OfficerOptions& officer = *options.officer;
      const auto patient = patient_param(req);
      if (!patient) return refuse(res, 400, "give ?patient=ID (1 to 256 characters)");
      auto registry =
          consent::Registry::open(officer.registry, consent::RegistryAccess::read_only);
      if (!registry)
        return refuse(res, officer_status(registry.error().code), registry.error().message);
      auto history = registry->history(*patient);
      if (!history) return refuse(res, officer_status(history.error().code), history.error().message);
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : *history)
        list.push_back({{"purpose", consent::purpose_name(r.purpose)},
                        {"decision", consent::decision_name(r.decision)},
                        {"date", r.date},
                        {"source", r.source},
                        {"expires", r.expires.empty() ? nlohmann::json(nullptr)
                                                      : nlohmann::json(r.expires)},
                        {"sequence", r.sequence},
                        {"recorded_at", r.recorded_at}});
      res.set_content(nlohmann::json{{"patient_id", *patient}, {"history", list}}.dump(
                          -1, ' ', false, nlohmann::json::error_handler_t::replace),
                      kJson);
    });
    http.Get("/api/officer/verify", [this](const httplib::Request&,
                                                    httplib::Response& res) {
      const OfficerOptions& officer = *options.officer;
      auto ledger = ledger::Ledger::open(officer.ledger, ledger::LedgerAccess::read_only);
      if (!ledger) return refuse(res, officer_status(ledger.error().code), ledger.error().message);
      auto report = ledger->verify();
      if (!report) return refuse(res, officer_status(report.error().code), report.error().message);
      res.set_content(
          nlohmann::json{{"ledger", store::display_name(officer.ledger)},
                         {"intact", report->intact()},
                         {"entries", report->entries},
                         {"head_hash", report->head_hash},
                         {"first_bad_sequence", report->first_bad_sequence
                                                    ? nlohmann::json(*report->first_bad_sequence)
                                                    : nlohmann::json(nullptr)},
                         {"problem", report->problem}}
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
          kJson);
    });
  }

  // A release folder checked as its recipient would (verify-release): the library's
  // check_release, its JSON report (paths inside the release, states, signature verdicts,
  // tags that changed: no value), and the number of certificates it was checked against.
  void release_route() {
    http.Get("/api/officer/release", [this](const httplib::Request& req,
                                            httplib::Response& res) {
      const OfficerOptions& officer = *options.officer;
      const auto folder = folder_param(req);
      if (!folder)
        return refuse(res, 400,
                      "give ?folder=PATH, the full path of a release folder on this computer");
      std::error_code ec;
      if (!fs::is_directory(*folder, ec)) return refuse(res, 404, "there is no folder at that path");
      if (!exporter::is_release_folder(*folder))
        return refuse(res, 422,
                      "this folder is not a radguard release: it holds no release manifest "
                      "(manifest.json), so there is nothing to verify it against");
      auto check = exporter::check_release(*folder, *folder / exporter::kReleaseManifest,
                                           officer.trust, exporter::DicomSignatures::check,
                                           options.threads);
      if (!check) return refuse(res, officer_status(check.error().code), check.error().message);
      auto report = nlohmann::json::parse(
          exporter::release_check_json(*check, exporter::ManifestSignature::required));
      report["trusted_certificates"] = officer.trust.size();
      res.set_content(report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
    });
  }

  void routes() {
    // Every refusal closes the connection: a body it leaves unread must not be read as the
    // next request.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const auto handled = guard(req, res);
      if (handled == httplib::Server::HandlerResponse::Handled)
        res.set_header("Connection", "close");
      return handled;
    });
    // A client that asks before sending its body (curl does past 1 MiB) hears every refusal
    // before sending a byte of it, and a refused upload then ends cleanly, not by a reset.
    http.set_expect_100_continue_handler([this](const httplib::Request& req,
                                                httplib::Response& res) {
      const std::uint64_t limit = options.max_upload_bytes;
      if (guard(req, res) != httplib::Server::HandlerResponse::Handled &&
          declared_length(req.get_header_value("Content-Length"), limit + 1) <= limit)
        return 100;
      if (res.status < 400) refuse(res, 413, "the upload is larger than this server accepts");
      res.set_header("Connection", "close");
      return res.status;
    });
    http.set_default_headers({{"Content-Security-Policy", kPolicy},
                              {"X-Content-Type-Options", "nosniff"},
                              {"X-Frame-Options", "DENY"},
                              {"Referrer-Policy", "no-referrer"},
                              {"Cache-Control", "no-store"},
                              {"Cross-Origin-Opener-Policy", "same-origin"},
                              {"Cross-Origin-Resource-Policy", "same-origin"}});
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) res.set_content(error_json("refused (HTTP " + std::to_string(res.status) + ")"), kJson);
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          refuse(res, 500, "an error inside radguard");
        });
    for (const auto& asset : assets()) {
      http.Get(std::string(asset.path), [this, asset](const httplib::Request& req,
                                                      httplib::Response& res) {
        if (asset.path == "/" && req.has_param("token")) {
          // The token moves from the address into a cookie only this page's requests carry,
          // and the address loses it (history, screenshots).
          res.set_header("Set-Cookie", std::string(kCookie) + "=" + token +
                                           "; Path=/; HttpOnly; SameSite=Strict");
          res.set_redirect("/", 303);
          return;
        }
        res.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type));
      });
    }
    http.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;  // no icon: browsers ask for one anyway
    });
    http.Post("/api/jobs", [this](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
      upload(req, res, reader);
    });
    http.Get(kJobPattern, [this](const httplib::Request& req, httplib::Response& res) {
      const auto status = jobs->status_json(req.matches[1].str());
      if (!status) return refuse(res, 404, "no such job (deleted?)");
      res.set_content(*status, kJson);
    });
    http.Delete(kJobPattern, [this](const httplib::Request& req, httplib::Response& res) {
      if (!jobs->remove(req.matches[1].str())) return refuse(res, 404, "no such job");
      res.set_content(nlohmann::json{{"deleted", true}}.dump(), kJson);
    });
    http.Get(std::string(kJobPattern) + "/result.zip",
             [this](const httplib::Request& req, httplib::Response& res) {
               const auto zip = jobs->result_zip(req.matches[1].str());
               if (!zip) return refuse(res, 404, "no copy (not done yet, or deleted)");
               send_file(res, *zip, "application/zip");
               res.set_header("Content-Disposition", "attachment; filename=\"safe-copy.zip\"");
             });
    http.Get(std::string(kJobPattern) + R"(/previews/([pb][0-9]{1,5}\.png))",
             [this](const httplib::Request& req, httplib::Response& res) {
               const auto png = jobs->preview(req.matches[1].str(), req.matches[2].str());
               if (!png) return refuse(res, 404, "no such picture");
               send_file(res, *png, "image/png");
             });
    // Always answers (the page asks it first; a 404 would be an error in the browser's
    // console): whether the officer's part is on, and over which ledger and registry.
    http.Get("/api/officer", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json info{{"officer", options.officer.has_value()}};
      if (options.officer) {
        info["ledger"] = store::display_name(options.officer->ledger);
        info["registry"] = store::display_name(options.officer->registry);
        info["key_fingerprint"] = options.officer->key.fingerprint();
        info["trusted_certificates"] = options.officer->trust.size();
      }
      res.set_content(info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kJson);
    });
    if (options.officer) {
      officer_routes();
      release_route();
    }
  }

  // Streams a file; the open stream keeps it readable even when the job is deleted meanwhile.
  static void send_file(httplib::Response& res, const fs::path& path, const char* type) {
    auto in = std::make_shared<std::ifstream>(path, std::ios::binary);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!*in || ec) return refuse(res, 404, "the file is gone");
    res.set_content_provider(
        static_cast<std::size_t>(size), type,
        [in](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          std::array<char, 1 << 16> buffer{};
          in->seekg(static_cast<std::streamoff>(offset));
          const std::size_t n = std::min(length, buffer.size());
          in->read(buffer.data(), static_cast<std::streamsize>(n));
          const auto got = in->gcount();
          if (got <= 0) return false;
          return sink.write(buffer.data(), static_cast<std::size_t>(got));
        });
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->http.stop();
  impl_->jobs.reset();  // every job folder and the private folder
}

Result<std::unique_ptr<Server>> Server::create(const ServeOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto token = crypto::random_bytes(16);
  if (!token) return std::unexpected(token.error());
  impl->token = crypto::to_hex(reinterpret_cast<const std::uint8_t*>(token->data()), token->size());
  JobStoreOptions job_options;
  job_options.parent = options.work_parent;
  job_options.threads = options.threads;
  job_options.max_unpacked_bytes = options.max_unpacked_bytes;
  if (options.officer) {
    // Fail at start, not at the first look-up: a mistyped path must not look like "nothing".
    auto ledger = ledger::Ledger::open(options.officer->ledger, ledger::LedgerAccess::read_only);
    if (!ledger) return std::unexpected(ledger.error());
    auto registry =
        consent::Registry::open(options.officer->registry, consent::RegistryAccess::read_only);
    if (!registry) return std::unexpected(registry.error());
    if (auto trust = dicom::TrustStore::load(options.officer->trust); !trust)
      return std::unexpected(trust.error());
  }
  auto jobs = JobStore::create(job_options);
  if (!jobs) return std::unexpected(jobs.error());
  impl->jobs = std::move(*jobs);
  // Limits of our own: the library accepts bodies of any size by default.
  impl->http.set_payload_max_length(static_cast<std::size_t>(options.max_upload_bytes));
  impl->http.set_read_timeout(60, 0);
  impl->http.set_write_timeout(60, 0);
  impl->http.set_keep_alive_max_count(20);
  impl->http.set_keep_alive_timeout(5);
  impl->routes();
  if (options.port == 0) {
    const int port = impl->http.bind_to_any_port("127.0.0.1");
    if (port <= 0) return fail(ErrorCode::io, "cannot listen on 127.0.0.1");
    impl->port = static_cast<std::uint16_t>(port);
  } else {
    if (!impl->http.bind_to_port("127.0.0.1", options.port))
      return fail(ErrorCode::io,
                  "cannot listen on 127.0.0.1:" + std::to_string(options.port) + " (taken?)");
    impl->port = options.port;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::uint16_t Server::port() const { return impl_->port; }

std::string Server::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + "/?token=" + impl_->token;
}

const fs::path& Server::work_folder() const { return impl_->jobs->root(); }

Status Server::run() {
  if (!impl_->http.listen_after_bind()) return fail(ErrorCode::io, "the server stopped listening");
  return {};
}

void Server::stop() { impl_->http.stop(); }

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Status run_until_signal(Server& server) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  const pthread_t waiter = pthread_self();
  Status result;
  std::atomic<bool> serving{true};
  std::thread serving_thread([&] {
    result = server.run();
    serving = false;
    pthread_kill(waiter, SIGUSR1);  // wakes the sigwait below when listening failed
  });
  int signal_number = 0;
  bool signalled = false;
  while (serving) {
    if (sigwait(&set, &signal_number) != 0) break;
    if (signal_number == SIGINT || signal_number == SIGTERM) {
      signalled = true;
      break;
    }
  }
  server.stop();
  serving_thread.join();
  return signalled ? Status{} : result;
}

}  // namespace radguard::serve
