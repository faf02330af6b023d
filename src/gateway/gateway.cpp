#include "gateway/gateway.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "pipeline/assembler.hpp"

namespace radguard::gateway {

namespace fs = std::filesystem;

namespace {

constexpr fs::perms kOutputPerms = fs::perms::owner_read | fs::perms::owner_write |
                                   fs::perms::group_read;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An absolute, normal path with no trailing separator ("out/" and "out" are one folder), so
// that paths compare as the folders they name.
fs::path folder_path(const fs::path& path) {
  std::error_code ec;
  fs::path normal = fs::weakly_canonical(path, ec);
  if (ec) normal = fs::absolute(path, ec);
  normal = normal.lexically_normal();
  if (!normal.has_filename() && normal.has_relative_path()) normal = normal.parent_path();
  return normal;
}

std::string status_hex(std::uint16_t status) {
  char text[8];
  std::snprintf(text, sizeof text, "%04X", status);
  return std::string("0x") + text;
}

// Serialises log lines from the pool's, the workers' and the forwarder's threads.
class Log {
 public:
  explicit Log(std::ostream& out) : out_(out) {}
  void line(const std::string& text) {
    std::lock_guard lock(mutex_);
    out_ << "radguard gateway: " << text << '\n' << std::flush;
  }

 private:
  std::ostream& out_;
  std::mutex mutex_;
};

struct Counters {
  std::atomic<std::uint64_t> received{0}, refused{0}, processed{0}, quarantined{0}, forwarded{0},
      forward_failures{0};
};

// Wakes the workers when an instance arrives, and everyone when the run stops.
class Signal {
 public:
  void notify() {
    { std::lock_guard lock(mutex_); ++generation_; }
    cv_.notify_all();
  }
  void wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const auto seen = generation_;
    cv_.wait_for(lock, timeout, [&] { return generation_ != seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t generation_ = 0;
};

class Gateway {
 public:
  Gateway(const GatewayConfig& config, const pipeline::Pipeline& pipeline, Spool spool,
          std::ostream& log, pipeline::SeriesAssembler* assembler)
      : config_(config),
        pipeline_(pipeline),
        spool_(std::move(spool)),
        log_(log),
        assembler_(assembler) {}

  std::uint16_t on_store(const net::StoreRequest& request, const net::ReceiveInto& receive) {
    auto pending = spool_.reserve_incoming();
    if (!pending) {
      ++counters_.refused;
      log_.line("refused an instance from " + request.calling_ae + " (out of resources): " +
                pending.error().message);
      return net::kStatusOutOfResources;
    }
    if (auto received = receive(pending->temp_path()); !received) {
      ++counters_.refused;
      log_.line("an instance from " + request.calling_ae + " did not arrive whole");
      return net::kStatusCannotUnderstand;
    }
    auto id = spool_.commit_incoming(*pending);
    if (!id) {
      ++counters_.refused;
      log_.line("could not spool an instance from " + request.calling_ae +
                " (out of resources): " + id.error().message);
      return net::kStatusOutOfResources;
    }
    ++counters_.received;
    work_.notify();
    return net::kStatusSuccess;
  }

  // Takes the oldest unclaimed incoming instance; empty when none.
  std::optional<std::string> claim() {
    std::lock_guard lock(claim_mutex_);
    // The folder is listed once for many instances, not once per instance.
    if (backlog_.empty())
      for (auto& id : spool_.incoming())
        if (!claimed_.contains(id)) backlog_.push_back(std::move(id));
    while (!backlog_.empty()) {
      std::string id = std::move(backlog_.front());
      backlog_.pop_front();
      if (claimed_.insert(id).second) return id;
    }
    return std::nullopt;
  }
  void release(const std::string& id) {
    std::lock_guard lock(claim_mutex_);
    claimed_.erase(id);
  }

  // With a stage that needs whole series (defacing): the instance joins its series in the
  // assembler and stays in incoming/, claimed, until its series is closed and settled, so a
  // gateway killed meanwhile assembles it again after a restart.
  void hold(const std::string& id) {
    auto bytes = read_small_file(spool_.incoming_path(id), 4ULL << 30);
    Status held;
    if (!bytes) {
      held = std::unexpected(bytes.error());
    } else {
      const std::span<const std::uint8_t> view(
          reinterpret_cast<const std::uint8_t*>(bytes->data()), bytes->size());
      auto added = assembler_->add(view, id);
      if (added) return;
      held = std::unexpected(added.error());
    }
    settle(id, held);
    release(id);
  }

  // Series that have been quiet for --series-quiet: defaced whole, each instance delivered or
  // quarantined, then taken out of incoming/.
  void close_quiet_series() {
    for (const std::string& key : assembler_->quiet_series()) {
      for (auto& outcome : assembler_->close(key)) {
        settle(outcome.id, outcome.output ? deliver(*outcome.output)
                                          : Status(std::unexpected(outcome.output.error())));
        release(outcome.id);
      }
    }
  }

  void settle(const std::string& id, const Status& outcome) {
    if (outcome) {
      ++counters_.processed;
      if (auto done = spool_.finish_incoming(id); !done)
        log_.line("instance " + id + ": " + done.error().message);
      if (config_.forward) forward_.notify();
      return;
    }
    if (outcome.error().code == ErrorCode::io) {
      // The spool or the output could not be written: leave the instance for a later try.
      log_.line("instance " + id + " kept for a later try: " + outcome.error().message);
      io_trouble_ = true;
      return;
    }
    ++counters_.quarantined;
    log_.line("instance " + id + " quarantined: " +
              std::string(statuses_for(outcome.error().code).name));
    if (auto moved = spool_.quarantine(id, outcome.error()); !moved)
      log_.line("instance " + id + ": " + moved.error().message);
  }

  void worker_loop(const batch::CancelToken& stop) {
    while (!stop.cancelled()) {
      if (assembler_ != nullptr) close_quiet_series();
      auto id = claim();
      if (!id) {
        work_.wait_for(std::chrono::milliseconds(500));
        continue;
      }
      if (assembler_ != nullptr) {
        hold(*id);
        continue;
      }
      settle(*id, process_one(*id));
      release(*id);
      if (io_trouble_.exchange(false)) work_.wait_for(std::chrono::milliseconds(1000));
    }
  }

  void forward_loop(const batch::CancelToken& stop) {
    while (!stop.cancelled()) {
      auto due = spool_.outbox_due(unix_now(), config_.forward_batch);
      if (due.empty()) {
        forward_.wait_for(std::chrono::milliseconds(500));
        continue;
      }
      std::vector<fs::path> files;
      for (const auto& item : due) files.push_back(item.path);
      auto statuses = net::store_files(*config_.forward, config_.ae_title, files);
      const std::int64_t now = unix_now();
      std::size_t failed = 0;
      if (statuses && !last_trouble_.empty()) {
        log_.line("forwarding again");
        last_trouble_.clear();
      }
      for (std::size_t i = 0; i < due.size(); ++i) {
        const bool ok = statuses && net::store_succeeded((*statuses)[i]);
        if (ok) {
          ++counters_.forwarded;
          if (auto done = spool_.forwarded(due[i]); !done) log_.line(done.error().message);
          continue;
        }
        ++failed;
        ++counters_.forward_failures;
        const std::string error = statuses ? "destination answered " + status_hex((*statuses)[i])
                                           : statuses.error().message;
        if (auto noted = spool_.forward_failed(due[i], error, now, config_.retry); !noted)
          log_.line(noted.error().message);
      }
      if (failed > 0) {
        // One line when the trouble starts or changes, not one per retry.
        const std::string trouble = statuses ? std::string("refused by the destination")
                                             : statuses.error().message;
        if (trouble != last_trouble_)
          log_.line(std::to_string(failed) + " of " + std::to_string(due.size()) +
                    " instances not forwarded (" + trouble + "); retrying with backoff");
        last_trouble_ = trouble;
        // Nothing more is due before the earliest retry; a short pause avoids a busy loop.
        forward_.wait_for(std::chrono::milliseconds(200));
      }
    }
  }

  void wake_all() {
    work_.notify();
    forward_.notify();
  }

  GatewayTotals totals() const {
    return {counters_.received.load(),  counters_.refused.load(),   counters_.processed.load(),
            counters_.quarantined.load(), counters_.forwarded.load(),
            counters_.forward_failures.load()};
  }

  Log& log() { return log_; }
  const Spool& spool() const { return spool_; }

 private:
  Status process_one(const std::string& id) {
    auto bytes = read_small_file(spool_.incoming_path(id), 4ULL << 30);
    if (!bytes) return std::unexpected(bytes.error());
    const std::span<const std::uint8_t> view(reinterpret_cast<const std::uint8_t*>(bytes->data()),
                                             bytes->size());
    auto output = pipeline_.process_instance(view, id);
    if (!output) return std::unexpected(output.error());
    return deliver(*output);
  }

  // Publishes one de-identified instance: into the outbox (--forward) or the output folder.
  Status deliver(const pipeline::OutputInstance& instance) {
    const pipeline::OutputInstance* output = &instance;
    if (output->name.empty() || output->name.is_absolute())
      return fail(ErrorCode::internal, "the pipeline gave no output name");
    if (config_.forward) return spool_.put_outbox(output->name, output->bytes);
    auto pending = PendingFile::create(config_.output / output->name);
    if (!pending) return std::unexpected(pending.error());
    if (auto written = pending->write_contents(
            std::string_view(reinterpret_cast<const char*>(output->bytes.data()),
                             output->bytes.size()),
            kOutputPerms);
        !written)
      return written;
    // The same instance processed again (after a crash) gives the same bytes: nothing to do.
    // Different bytes under the same name (another object with the same instance UID) are a
    // conflict: quarantined, never replaced silently.
    if (auto committed = pending->commit(std::nullopt, PendingFile::Existing::keep_if_different);
        !committed)
      return committed;
    // The folders on the way to the file are new after a first instance of a series.
    for (fs::path folder = (config_.output / output->name).parent_path();;
         folder = folder.parent_path()) {
      if (auto synced = sync_folder(folder); !synced) return synced;
      if (folder == config_.output || !folder.has_relative_path()) break;
    }
    return {};
  }

  const GatewayConfig& config_;
  const pipeline::Pipeline& pipeline_;
  Spool spool_;
  Log log_;
  Counters counters_;
  Signal work_, forward_;
  std::mutex claim_mutex_;
  std::set<std::string> claimed_;
  std::deque<std::string> backlog_;
  std::atomic<bool> io_trouble_{false};
  std::string last_trouble_;  // the forwarder thread's only
  pipeline::SeriesAssembler* assembler_;  // with a whole-series stage (defacing); else null
};

}  // namespace

Status check_route(const GatewayConfig& config, const pipeline::Pipeline& pipeline) {
  if (pipeline.needs_whole_series() && config.series_quiet.count() <= 0)
    return fail(ErrorCode::usage, "--series-quiet must be at least 1 second with defacing");
  if (config.forward.has_value() == !config.output.empty())
    return fail(ErrorCode::usage, "give exactly one of --forward AET@HOST:PORT and --output DIR");
  if (config.spool.empty()) return fail(ErrorCode::usage, "the gateway needs --spool DIR");
  if (config.port == 0) return fail(ErrorCode::usage, "the gateway needs --listen PORT");
  if (config.workers == 0 || config.workers > 256)
    return fail(ErrorCode::usage, "the gateway needs 1 to 256 workers");
  if (config.forward_batch == 0) return fail(ErrorCode::usage, "the forward batch must be > 0");
  if (config.retry.first.count() <= 0 || config.retry.max < config.retry.first)
    return fail(ErrorCode::usage, "the retry delays must be positive, the longest not shorter");
  if (!config.output.empty()) {
    const fs::path spool = folder_path(config.spool);
    const fs::path output = folder_path(config.output);
    const auto [a, b] = std::mismatch(spool.begin(), spool.end(), output.begin(), output.end());
    if (a == spool.end() || b == output.end())
      return fail(ErrorCode::usage, "the spool and the output folder must not hold one another");
  }
  return {};
}

Result<GatewayTotals> run_gateway(const GatewayConfig& given, const pipeline::Pipeline& pipeline,
                                  const batch::CancelToken& stop, std::ostream& log_stream) {
  if (auto checked = check_route(given, pipeline); !checked)
    return std::unexpected(checked.error());
  GatewayConfig config = given;
  config.spool = folder_path(given.spool);
  if (!given.output.empty()) config.output = folder_path(given.output);
  if (!config.output.empty()) {
    std::error_code ec;
    fs::create_directories(config.output, ec);
    if (ec)
      return fail(ErrorCode::io, "cannot create " + config.output.string() + ": " + ec.message());
    remove_stale_temporaries(config.output);
  }
  auto spool = Spool::open(config.spool, config.min_free_bytes);
  if (!spool) return std::unexpected(spool.error());
  // Defacing needs whole series: instances wait, grouped by series, until theirs has been
  // quiet for --series-quiet. Their spill folder lives in the spool; a killed run's is
  // removed here (its instances are still in incoming/ and are assembled again).
  std::optional<pipeline::SeriesAssembler> assembler;
  if (pipeline.needs_whole_series()) {
    std::error_code ec;
    fs::remove_all(config.spool / "assembling", ec);
    pipeline::AssemblerSettings settings;
    settings.quiet = config.series_quiet;
    settings.work_parent = config.spool / "assembling";
    auto made = pipeline::SeriesAssembler::create(pipeline, settings);
    if (!made) return std::unexpected(made.error());
    assembler = std::move(*made);
  }
  Gateway gateway(config, pipeline, std::move(*spool), log_stream,
                  assembler ? &*assembler : nullptr);

  net::ServerConfig server_config;
  server_config.port = config.port;
  server_config.ae_title = config.ae_title;
  server_config.max_associations = config.max_associations;
  server_config.allowed_calling = config.allowed_calling;
  server_config.log = [&gateway](const std::string& line) { gateway.log().line(line); };
  auto server = net::StoreServer::create(
      server_config, [&gateway](const net::StoreRequest& request, const net::ReceiveInto& receive) {
        return gateway.on_store(request, receive);
      });
  if (!server) return std::unexpected(server.error());

  const auto waiting = gateway.spool().status();
  gateway.log().line("listening on port " + std::to_string(config.port) + " as " +
                     config.ae_title + "; " + std::to_string(waiting.incoming) +
                     " instances to process and " + std::to_string(waiting.outbox) +
                     " to forward from an earlier run");

  batch::CancelToken stop_workers;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < config.workers; ++i)
    threads.emplace_back([&] { gateway.worker_loop(stop_workers); });
  if (config.forward) threads.emplace_back([&] { gateway.forward_loop(stop_workers); });

  Status served;
  std::thread listener([&] { served = (*server)->run(); });
  // Wait for the stop request, or for the listener to fail (port taken).
  std::atomic<bool> listener_done{false};
  std::thread watcher([&] {
    while (!stop.cancelled() && !listener_done.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stop.cancelled())
      gateway.log().line("stopping: no new association; those under way and the instances "
                         "being processed finish");
    (*server)->stop();
  });
  listener.join();
  listener_done = true;
  watcher.join();
  stop_workers.cancel();
  gateway.wake_all();
  for (auto& thread : threads) thread.join();
  if (!served) return std::unexpected(served.error());

  const GatewayTotals totals = gateway.totals();
  gateway.log().line("stopped: received " + std::to_string(totals.received) + ", refused " +
                     std::to_string(totals.refused) + ", processed " +
                     std::to_string(totals.processed) + ", quarantined " +
                     std::to_string(totals.quarantined) + ", forwarded " +
                     std::to_string(totals.forwarded));
  return totals;
}

Result<SpoolStatus> read_status(const fs::path& spool) {
  std::error_code ec;
  if (!fs::is_directory(spool / "incoming", ec))
    return fail(ErrorCode::not_found, spool.string() + " is not a gateway spool");
  auto opened = Spool::open(spool);
  if (!opened) return std::unexpected(opened.error());
  return opened->status();
}

std::string status_text(const SpoolStatus& status) {
  std::ostringstream out;
  out << "incoming (received, not yet de-identified): " << status.incoming << '\n'
      << "outbox (de-identified, to forward): " << status.outbox;
  if (status.outbox_retrying > 0) out << " (" << status.outbox_retrying << " after a failed try)";
  out << '\n' << "quarantined: " << status.quarantined << '\n';
  if (!status.last_quarantined.empty()) {
    out << "last quarantined:\n";
    for (const auto& entry : status.last_quarantined)
      out << "  " << entry.id << "  " << entry.reason << '\n';
  }
  if (!status.last_forward_errors.empty()) {
    out << "last forward errors:\n";
    for (const auto& error : status.last_forward_errors) out << "  " << error << '\n';
  }
  return out.str();
}

std::string status_json(const SpoolStatus& status) {
  nlohmann::ordered_json json;
  json["incoming"] = status.incoming;
  json["outbox"] = status.outbox;
  json["outbox_retrying"] = status.outbox_retrying;
  json["quarantined"] = status.quarantined;
  json["last_quarantined"] = nlohmann::ordered_json::array();
  for (const auto& entry : status.last_quarantined)
    json["last_quarantined"].push_back({{"id", entry.id}, {"reason", entry.reason}});
  json["last_forward_errors"] = status.last_forward_errors;
  return json.dump(2) + "\n";
}

}  // namespace radguard::gateway
