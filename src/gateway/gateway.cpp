#include "gateway/gateway.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "consent/consent.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/group_commit.hpp"
#include "core/text.hpp"
#include "crypto/crypto.hpp"
#include "dicom/dicom_file.hpp"
#include "ledger/ledger.hpp"
#include "pipeline/assembler.hpp"
#include "pipeline/consent_gate.hpp"
#include "gateway/query_scp.hpp"
#include "gateway/signal.hpp"
#include "standard/tags.hpp"

namespace radguard::gateway {

namespace fs = std::filesystem;

namespace {

constexpr fs::perms kOutputPerms = fs::perms::owner_read | fs::perms::owner_write |
                                   fs::perms::group_read;
// A worker claims up to this many instances at once and publishes their outputs with one group
// commit (two flushes of the file system, one of incoming/) instead of an fsync per file and
// folder; at most kWorkerBatchBytes of outputs wait in memory for it.
constexpr std::size_t kWorkerBatch = 32;
constexpr std::size_t kWorkerBatchBytes = 64ULL << 20;
// How long an idle forwarder sleeps before it looks at the outbox again (it is woken as soon
// as a worker adds to it).
constexpr std::chrono::milliseconds kForwardWait{500};

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

// Whether a forwarder's association was made (answers came, successes or refusals).
enum class Association : std::uint8_t { made, failed };

struct Counters {
  std::atomic<std::uint64_t> received{0}, refused{0}, processed{0}, quarantined{0}, forwarded{0},
      forward_failures{0}, ledger_entries{0}, forward_given_up{0};
};

// The consent gate and the ledger of a release route, opened for a run.
struct Release {
  pipeline::ConsentGate gate;
  ledger::Ledger ledger;  // not thread-safe: used under Gateway::ledger_mutex_
  std::string purpose;    // the purpose's name, as recorded
  std::string recipient;
};

// What the ledger needs of an instance that is not in its de-identified bytes, kept from the
// received instance: the patient's keyed hash (never the ID) and the modality.
struct ReleaseMeta {
  std::string patient_hash;
  std::string modality;
};

// A de-identified instance waiting for its study batch's ledger entry; its bytes are in a
// spill file (the instance itself stays in incoming/ until delivered).
struct HeldInstance {
  std::string id;
  fs::path name;
  fs::path spill;
  std::string sha256;
};

struct StudyBatch {
  std::string patient_hash;
  std::set<std::string> modalities;
  std::vector<HeldInstance> held;
  std::chrono::steady_clock::time_point last_added;
};

class Gateway {
 public:
  Gateway(const GatewayConfig& config, const pipeline::Pipeline& pipeline, Spool spool,
          std::ostream& log, pipeline::SeriesAssembler* assembler, Release* release)
      : config_(config),
        pipeline_(pipeline),
        spool_(std::move(spool)),
        log_(log),
        assembler_(assembler),
        release_(release) {}

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
      if (received.error().code == ErrorCode::io) {
        log_.line("refused an instance from " + request.calling_ae +
                  " (out of resources): " + received.error().message);
        return net::kStatusOutOfResources;
      }
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

  // Takes the oldest unclaimed incoming instances, at most `max`, and no more than this
  // worker's share of what waits (so that the other workers are not left idle); empty when
  // none.
  std::vector<std::string> claim(std::size_t max) {
    std::lock_guard lock(claim_mutex_);
    // The folder is listed once for many instances, not once per instance.
    if (backlog_.empty())
      for (auto& id : spool_.incoming())
        if (!claimed_.contains(id)) backlog_.push_back(std::move(id));
    const std::size_t share =
        std::clamp<std::size_t>((backlog_.size() + config_.workers - 1) / config_.workers, 1, max);
    std::vector<std::string> ids;
    while (!backlog_.empty() && ids.size() < share) {
      std::string id = std::move(backlog_.front());
      backlog_.pop_front();
      if (claimed_.insert(id).second) ids.push_back(std::move(id));
    }
    return ids;
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
      if (auto admitted = admit(id, view); !admitted) {
        held = admitted;
      } else {
        auto added = assembler_->add(view, id);
        if (added) return;
        held = std::unexpected(added.error());
      }
    }
    settle(id, held);
    release(id);
  }

  // Series that have been quiet for --series-quiet: defaced whole, each instance delivered or
  // quarantined, then taken out of incoming/.
  void close_quiet_series() {
    for (const std::string& key : assembler_->quiet_series()) {
      for (auto& outcome : assembler_->close(key)) {
        if (!outcome.output) {
          settle(outcome.id, std::unexpected(outcome.output.error()));
          release(outcome.id);
        } else {
          handle_output(outcome.id, *outcome.output);
        }
      }
    }
  }

  void settle(const std::string& id, const Status& outcome) {
    settle(std::span<const std::string>(&id, 1), std::span<const Status>(&outcome, 1));
  }

  // Instances whose outputs are durable leave incoming/ together (one folder flush); the
  // others are quarantined or kept for a later try, one by one.
  void settle(std::span<const std::string> ids, std::span<const Status> outcomes) {
    std::vector<std::string> done;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (outcomes[i])
        done.push_back(ids[i]);
      else
        settle_failure(ids[i], outcomes[i].error());
    }
    if (done.empty()) return;
    counters_.processed += done.size();
    if (auto finished = spool_.finish_incoming(done); !finished)
      log_.line(std::to_string(done.size()) + " instances from " + done.front() + ": " +
                finished.error().message);
    if (config_.forward) forward_.notify();
  }

  void settle_failure(const std::string& id, const Error& error) {
    forget_release_meta(id);  // admitted, then failed: admitted again if it is tried again
    if (error.code == ErrorCode::io) {
      // The spool or the output could not be written: leave the instance for a later try.
      log_.line("instance " + id + " kept for a later try: " + error.message);
      io_trouble_ = true;
      return;
    }
    ++counters_.quarantined;
    log_.line("instance " + id + " quarantined: " + std::string(statuses_for(error.code).name));
    if (auto moved = spool_.quarantine(id, error); !moved)
      log_.line("instance " + id + ": " + moved.error().message);
  }

  // A de-identified instance: delivered at once, or, with a ledger, held for its study's
  // batch (settled and released when the batch is recorded and delivered).
  void handle_output(const std::string& id, const pipeline::OutputInstance& output) {
    if (release_ == nullptr) {
      settle(id, deliver(output.name, output.bytes));
      release(id);
      return;
    }
    if (auto held = hold_for_release(id, output); !held) {
      settle(id, held);
      release(id);
    }
  }

  // Records and delivers the study batches that are due: quiet for series_quiet, full, or
  // every one when `all_batches` (a graceful stop).
  void record_due_batches(bool all_batches) {
    if (release_ == nullptr) return;
    std::vector<StudyBatch> due;
    {
      std::lock_guard lock(batch_mutex_);
      const auto now = std::chrono::steady_clock::now();
      for (auto it = batches_.begin(); it != batches_.end();) {
        if (all_batches || it->second.held.size() >= config_.release_batch_max ||
            now - it->second.last_added >= config_.series_quiet) {
          due.push_back(std::move(it->second));
          it = batches_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& batch : due) record_and_deliver(batch);
  }

  void worker_loop(const batch::CancelToken& stop) {
    while (!stop.cancelled()) {
      const auto seen = work_.generation();  // before looking: no notice is lost meanwhile
      record_due_batches(false);
      if (assembler_ != nullptr) close_quiet_series();
      const auto ids = claim(kWorkerBatch);
      if (ids.empty()) {
        work_.wait_for(seen, std::chrono::milliseconds(500));
        continue;
      }
      if (assembler_ != nullptr) {
        for (const auto& id : ids) hold(id);
        continue;
      }
      process_batch(ids);
      if (io_trouble_.exchange(false))
        work_.wait_for(work_.generation(), std::chrono::milliseconds(1000));
    }
  }

  // One of config_.forward_associations forwarders: each sends the outbox items it claimed
  // over an association of its own, so that one waiting for the destination's answer does not
  // hold up the others. The association stays open between batches until it has been idle for
  // forward_idle, then it is released (a graceful stop releases it too).
  void forward_loop(const batch::CancelToken& stop, net::StoreSession& session) {
    auto last_sent = std::chrono::steady_clock::now();
    while (!stop.cancelled()) {
      const auto seen = forward_.generation();  // before looking: no notice is lost meanwhile
      const auto due = claim_outbox();
      if (due.empty()) {
        if (session.is_open() &&
            std::chrono::steady_clock::now() - last_sent >= config_.forward_idle)
          session.release();
        forward_.wait_for(
            seen, session.is_open() ? std::min(kForwardWait, config_.forward_idle) : kForwardWait);
        continue;
      }
      const std::size_t failed = forward_batch(due, session);
      release_outbox(due);
      last_sent = std::chrono::steady_clock::now();
      if (config_.forward_idle.count() == 0) session.release();
      // Nothing more is due before the earliest retry; a short pause avoids a busy loop.
      if (failed > 0) forward_.wait_for(forward_.generation(), std::chrono::milliseconds(200));
    }
    session.release();
  }

  // Takes the due outbox items no other forwarder holds, oldest name first: at most
  // forward_batch, and no more than this forwarder's share of what is due (so that the others
  // are not left idle).
  std::vector<OutboxItem> claim_outbox() {
    std::lock_guard lock(outbox_mutex_);
    // Those the others hold are among the first claimed_.size() + forward_batch * forwarders.
    const std::size_t forwarders = config_.forward_associations;
    auto due = spool_.outbox_due(unix_now(), outbox_claimed_.size() + config_.forward_batch * forwarders);
    std::erase_if(due, [&](const OutboxItem& item) { return outbox_claimed_.contains(item.path); });
    const std::size_t share =
        std::clamp<std::size_t>((due.size() + forwarders - 1) / forwarders, 1, config_.forward_batch);
    if (due.size() > share) due.resize(share);
    for (const auto& item : due) outbox_claimed_.insert(item.path);
    return due;
  }
  void release_outbox(const std::vector<OutboxItem>& items) {
    std::lock_guard lock(outbox_mutex_);
    for (const auto& item : items) outbox_claimed_.erase(item.path);
  }

  // Sends claimed items over one association; each the destination holds leaves the outbox,
  // each other is noted for a retry (or given up). Returns how many were not forwarded.
  std::size_t forward_batch(const std::vector<OutboxItem>& due, net::StoreSession& session) {
    std::vector<fs::path> files;
    for (const auto& item : due) files.push_back(item.path);
    // Each instance the destination holds leaves the outbox as soon as its answer comes, so
    // that a crash during a batch re-sends at most the one in flight, not the whole batch.
    std::vector<bool> settled(due.size(), false);
    // Answered at all (success or a refusal): an instance the batch never reached (the
    // association broke first) is unreachable, not refused, so it is never given up for
    // refusals the destination never made.
    std::vector<bool> answered(due.size(), false);
    auto statuses = session.store(files, [&](std::size_t i, std::uint16_t status) {
      answered[i] = true;
      if (!net::store_succeeded(status)) return;
      settled[i] = true;
      ++counters_.forwarded;
      if (auto done = spool_.forwarded(due[i], PendingFile::FolderSync::deferred); !done)
        log_.line(done.error().message);
    });
    // The removals of this batch, flushed once (a kill -9 loses none of them).
    std::vector<OutboxItem> arrived;
    for (std::size_t i = 0; i < due.size(); ++i)
      if (settled[i]) arrived.push_back(due[i]);
    if (!arrived.empty())
      if (auto synced = spool_.sync_outbox(arrived); !synced) log_.line(synced.error().message);
    const std::int64_t now = unix_now();
    std::size_t failed = 0;
    for (std::size_t i = 0; i < due.size(); ++i) {
      if (settled[i]) continue;  // the destination holds it: left the outbox as it answered
      ++failed;
      ++counters_.forward_failures;
      const bool refused = statuses && answered[i];
      const std::string error =
          refused    ? "destination answered " + status_hex((*statuses)[i])
          : statuses ? std::string("not sent: the association ended before it")
                     : statuses.error().message;
      auto noted = spool_.forward_failed(
          due[i], error, now, config_.retry,
          refused ? ForwardFailure::refused : ForwardFailure::unreachable);
      if (!noted) {
        log_.line(noted.error().message);
      } else if (*noted == ForwardFate::given_up) {
        ++counters_.forward_given_up;
        log_.line("an instance was given up after " + std::to_string(due[i].attempts + 1) +
                  " failed forwards (" + error + "); it is kept in failed/");
      }
    }
    note_trouble(statuses ? Association::made : Association::failed,
                 statuses ? std::string("refused by the destination") : statuses.error().message,
                 failed, due.size());
    return failed;
  }

  // One line when the trouble starts or changes, and one when an association works again;
  // not one per retry (nor one per forwarder).
  void note_trouble(Association association, const std::string& trouble, std::size_t failed,
                    std::size_t tried) {
    std::lock_guard lock(outbox_mutex_);
    if (association == Association::made && !last_trouble_.empty()) {
      log_.line("forwarding again");
      last_trouble_.clear();
    }
    if (failed == 0) return;
    if (trouble != last_trouble_)
      log_.line(std::to_string(failed) + " of " + std::to_string(tried) +
                " instances not forwarded (" + trouble + "); retrying with backoff");
    last_trouble_ = trouble;
  }

  void wake_all() {
    work_.notify();
    forward_.notify();
  }

  GatewayTotals totals() const {
    return {counters_.received.load(),  counters_.refused.load(),   counters_.processed.load(),
            counters_.quarantined.load(), counters_.forwarded.load(),
            counters_.forward_failures.load(), counters_.ledger_entries.load(),
            counters_.forward_given_up.load()};
  }

  Log& log() { return log_; }
  // A C-STORE the network layer refused before asking on_store (net::ServerConfig::store_refused).
  void count_refused() { ++counters_.refused; }
  const Spool& spool() const { return spool_; }

 private:
  Result<pipeline::OutputInstance> process_one(const std::string& id) {
    auto bytes = read_small_file(spool_.incoming_path(id), 4ULL << 30);
    if (!bytes) return std::unexpected(bytes.error());
    const std::span<const std::uint8_t> view(reinterpret_cast<const std::uint8_t*>(bytes->data()),
                                             bytes->size());
    if (auto admitted = admit(id, view); !admitted) return std::unexpected(admitted.error());
    return pipeline_.process_instance(view, id);
  }

  // De-identifies claimed instances one by one and delivers their outputs together (one group
  // commit for up to kWorkerBatchBytes of outputs), then settles and releases them. With a
  // release route each output is held for its study's batch instead.
  void process_batch(const std::vector<std::string>& ids) {
    std::vector<std::string> pending_ids;
    std::vector<pipeline::OutputInstance> outputs;
    std::size_t pending_bytes = 0;
    const auto deliver_pending = [&] {
      if (pending_ids.empty()) return;
      std::vector<OutboxEntry> named;
      for (const auto& output : outputs) named.push_back({output.name, output.bytes});
      std::vector<Status> delivered;
      try {
        delivered = deliver(named);
      } catch (const std::exception& e) {
        // As for process_one: the worker holds these claims and must release them. Kept in
        // incoming/ for a later try (an io failure), never acknowledged twice.
        delivered.assign(pending_ids.size(),
                         fail(ErrorCode::io, std::string("internal error: ") + e.what()));
      }
      settle(pending_ids, delivered);
      for (const auto& id : pending_ids) release(id);
      pending_ids.clear();
      outputs.clear();
      pending_bytes = 0;
    };
    for (const auto& id : ids) {
      Result<pipeline::OutputInstance> output = fail(ErrorCode::internal, "not processed");
      try {
        output = process_one(id);
      } catch (const std::exception& e) {
        // A worker has no batch around it: an exception would end the gateway, and the
        // instance, still in the spool, would end it again at every restart.
        output = fail(ErrorCode::internal, std::string("internal error: ") + e.what());
      }
      if (!output) {
        settle_failure(id, output.error());
        release(id);
      } else if (release_ != nullptr) {
        handle_output(id, *output);
      } else {
        pending_bytes += output->bytes.size();
        pending_ids.push_back(id);
        outputs.push_back(std::move(*output));
        if (pending_bytes >= kWorkerBatchBytes) deliver_pending();
      }
    }
    deliver_pending();
  }

  // The consent gate, before any stage sees the instance; keeps what the ledger will need.
  // Without a release route, admits everything.
  Status admit(const std::string& id, std::span<const std::uint8_t> bytes) {
    if (release_ == nullptr) return {};
    auto file = dicom::DicomFile::open_bytes(bytes);
    if (!file) return std::unexpected(file.error());
    if (auto admitted = release_->gate.admit(*file); !admitted) return admitted;
    ReleaseMeta meta;
    meta.patient_hash = ledger::patient_hash(pipeline_.header_stage().pseudonymizer().key(),
                                             trimmed(file->string_of(tags::PatientID).value_or("")));
    meta.modality = trimmed(file->string_of(tags::Modality).value_or(""));
    std::lock_guard lock(batch_mutex_);
    meta_[id] = std::move(meta);
    return {};
  }

  void forget_release_meta(const std::string& id) {
    if (release_ == nullptr) return;
    std::lock_guard lock(batch_mutex_);
    meta_.erase(id);
  }

  // Spills a de-identified instance and adds it to its study's batch.
  Status hold_for_release(const std::string& id, const pipeline::OutputInstance& output) {
    if (output.name.empty() || output.name.is_absolute())
      return fail(ErrorCode::internal, "the pipeline gave no output name");
    HeldInstance held{id, output.name, spool_.root() / "held" / (id + ".dcm"),
                      crypto::to_hex(crypto::sha256(std::string_view(
                          reinterpret_cast<const char*>(output.bytes.data()),
                          output.bytes.size())))};
    // A spill is made again after a crash (the instance is still in incoming/): written
    // without fsync, in the owner-only spool.
    {
      std::ofstream out(held.spill, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(output.bytes.data()),
                static_cast<std::streamsize>(output.bytes.size()));
      out.close();
      if (!out) return fail(ErrorCode::io, "cannot write a held instance in the spool");
    }
    std::lock_guard lock(batch_mutex_);
    auto meta = meta_.find(id);
    if (meta == meta_.end()) return fail(ErrorCode::internal, "no consent record for an instance");
    // One batch per study and patient: a study UID two patients share (a misfiled instance)
    // gives each patient an entry of their own, never one disclosure recorded for both.
    StudyBatch& batch = batches_[output.name.begin()->string() + "|" + meta->second.patient_hash];
    batch.patient_hash = meta->second.patient_hash;
    if (!meta->second.modality.empty()) batch.modalities.insert(meta->second.modality);
    batch.held.push_back(std::move(held));
    batch.last_added = std::chrono::steady_clock::now();
    meta_.erase(meta);
    return {};
  }

  // One ledger entry for the batch; once it has committed, each instance is delivered.
  void record_and_deliver(StudyBatch& batch) {
    const std::string study_uid = batch.held.front().name.begin()->string();
    std::map<std::string, std::string> files;  // name -> sha256; a name sent twice counts once
    for (const auto& held : batch.held) files[held.name.generic_string()] = held.sha256;
    std::string manifest;
    for (const auto& [name, sha] : files) manifest += sha + "  " + name + "\n";

    ledger::Entry entry;
    entry.recipient = release_->recipient;
    entry.purpose = release_->purpose;
    entry.status = ledger::EntryStatus::released;
    const auto& stage = pipeline_.header_stage();
    entry.profile = {stage.policy().preset(), stage.policy().option_names(),
                     stage.policy().override_count(), stage.method_description(),
                     stage.pseudonymizer().key().fingerprint()};
    entry.release = "gateway " + config_.ae_title + " " + batch.held.front().id;
    entry.output_digest = crypto::to_hex(crypto::sha256(manifest));
    entry.instances = files.size();
    entry.studies = 1;
    ledger::PatientDisclosure patient;
    patient.patient_hash = batch.patient_hash;
    patient.studies.push_back(
        {study_uid, files.size(), {batch.modalities.begin(), batch.modalities.end()}});
    entry.patients.push_back(std::move(patient));

    Result<ledger::Entry> recorded = fail(ErrorCode::internal, "not recorded");
    {
      std::lock_guard lock(ledger_mutex_);
      recorded = release_->ledger.append(std::move(entry));
    }
    std::error_code ec;
    if (!recorded) {
      // Nothing delivered: the instances stay in incoming/ and are processed again.
      log_.line("a study batch of " + std::to_string(files.size()) +
                " instances could not be recorded in the ledger; kept for a later try: " +
                recorded.error().message);
      io_trouble_ = true;
      for (const auto& held : batch.held) {
        fs::remove(held.spill, ec);
        release(held.id);
      }
      return;
    }
    ++counters_.ledger_entries;
    log_.line("ledger entry " + std::to_string(recorded->sequence) + ": a study batch of " +
              std::to_string(files.size()) + " instances");
    for (const auto& held : batch.held) {
      auto bytes = read_small_file(held.spill, 4ULL << 30);
      Status delivered;
      if (!bytes) {
        delivered = std::unexpected(bytes.error());
      } else {
        delivered = deliver(held.name,
                            std::span<const std::uint8_t>(
                                reinterpret_cast<const std::uint8_t*>(bytes->data()),
                                bytes->size()));
      }
      settle(held.id, delivered);
      fs::remove(held.spill, ec);
      release(held.id);
    }
  }

  // Publishes one de-identified instance: into the outbox (--forward) or the output folder.
  Status deliver(const fs::path& name, std::span<const std::uint8_t> bytes) {
    const OutboxEntry output{name, bytes};
    return deliver(std::span<const OutboxEntry>(&output, 1)).front();
  }

  // Publishes de-identified instances with one group commit (write_files_atomically): into the
  // outbox (--forward) or the output folder. One status per instance, in order.
  std::vector<Status> deliver(std::span<const OutboxEntry> outputs) {
    std::vector<Status> statuses(outputs.size());
    std::vector<std::size_t> index;  // of each named output, in outputs
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      if (outputs[i].name.empty() || outputs[i].name.is_absolute())
        statuses[i] = fail(ErrorCode::internal, "the pipeline gave no output name");
      else
        index.push_back(i);
    }
    std::vector<Status> written;
    if (config_.forward) {
      std::vector<OutboxEntry> entries;
      for (const std::size_t i : index) entries.push_back(outputs[i]);
      written = spool_.put_outbox(entries);
    } else {
      std::vector<FileToWrite> files;
      for (const std::size_t i : index)
        files.push_back({config_.output / outputs[i].name,
                         std::string_view(reinterpret_cast<const char*>(outputs[i].bytes.data()),
                                          outputs[i].bytes.size())});
      // The same instance processed again (after a crash) gives the same bytes: nothing to do.
      // Different bytes under the same name (another object with the same instance UID) are a
      // conflict: quarantined, never replaced silently. The group commit's second flush also
      // makes the folders on the way to each file durable (new after a series' first instance).
      written = write_files_atomically(config_.output, files, kOutputPerms,
                                       PendingFile::Existing::keep_if_different);
      for (std::size_t j = 0; j < written.size(); ++j)
        if (!written[j] && written[j].error().code == ErrorCode::conflict)
          // (PendingFile's own message offers --overwrite, which the gateway does not have: it
          // never replaces a published file.)
          written[j] = fail(ErrorCode::conflict,
                            "the output folder already holds " + outputs[index[j]].name.string() +
                                " with different content (another object with the same instance "
                                "UID, or an earlier run with another key or options); not replaced");
    }
    for (std::size_t j = 0; j < written.size(); ++j) statuses[index[j]] = std::move(written[j]);
    return statuses;
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
  std::mutex outbox_mutex_;              // outbox_claimed_ and last_trouble_
  std::set<fs::path> outbox_claimed_;    // outbox items a forwarder is sending
  std::string last_trouble_;             // the forwarders' last trouble; empty: none
  pipeline::SeriesAssembler* assembler_;  // with a whole-series stage (defacing); else null
  Release* release_;                      // with a release route; else null
  std::mutex batch_mutex_;                // meta_ and batches_
  std::map<std::string, ReleaseMeta> meta_;   // by spool id, between admit and hold
  std::map<std::string, StudyBatch> batches_;  // by pseudonymous Study Instance UID | patient hash
  std::mutex ledger_mutex_;
};

// Query/retrieve answers over the output folder only, and moves nothing past a ledger.
Status check_query_retrieve(const GatewayConfig& config) {
  if (config.query_retrieve == QueryRetrieve::off) {
    if (!config.move_destinations.empty())
      return fail(ErrorCode::usage, "--move-destination needs --query-retrieve");
    return {};
  }
  if (config.output.empty())
    return fail(ErrorCode::usage,
                "--query-retrieve answers over the output folder: it needs --output DIR");
  // A release is for the one recipient its ledger names: no one else may query it.
  if (config.release)
    return fail(ErrorCode::usage,
                "--query-retrieve with a release route would disclose instances to peers no "
                "ledger entry names; release to each recipient instead");
  // Empty allow-lists admit anyone to C-STORE; a query discloses, so it fails closed.
  if (config.allowed_calling.empty() && config.allowed_hosts.empty())
    return fail(ErrorCode::usage,
                "--query-retrieve needs --allow-calling or --allow-host: it would answer anyone");
  for (const auto& peer : config.move_destinations)
    if (std::ranges::count(config.move_destinations, peer.ae_title, &net::Peer::ae_title) > 1)
      return fail(ErrorCode::usage, "--move-destination names an AE title twice");
  return {};
}

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
  if (config.forward_associations == 0 || config.forward_associations > 64)
    return fail(ErrorCode::usage, "the gateway forwards over 1 to 64 associations at once");
  if (config.forward_idle.count() < 0)
    return fail(ErrorCode::usage, "the forward association's idle time must not be negative");
  if (config.retry.first.count() <= 0 || config.retry.max < config.retry.first)
    return fail(ErrorCode::usage, "the retry delays must be positive, the longest not shorter");
  if (config.tls)
    if (auto tls = net::check_tls(*config.tls); !tls)
      return std::unexpected(with_context(tls.error(), "--tls-cert/--tls-key/--tls-trust"));
  if (config.forward && config.forward->tls)
    if (auto tls = net::check_tls(*config.forward->tls); !tls)
      return std::unexpected(with_context(tls.error(), "forward over TLS"));
  if (config.release) {
    const ReleaseRoute& r = *config.release;
    std::string missing;
    for (const auto& [value, flag] : {std::pair{&r.purpose, "--purpose"},
                                      std::pair{&r.recipient, "--recipient"},
                                      std::pair{&r.registry, "--registry"},
                                      std::pair{&r.ledger, "--ledger"}})
      if (trimmed(*value).empty()) missing += std::string(missing.empty() ? "" : ", ") + flag;
    if (!missing.empty())
      return fail(ErrorCode::usage,
                  "a release route needs --purpose, --recipient, --registry and --ledger "
                  "(or a [release] table with all four); missing: " + missing);
    if (auto settings = pipeline::check_consent_settings(r.purpose, r.consent_at); !settings)
      return std::unexpected(settings.error());
    if (config.release_batch_max == 0)
      return fail(ErrorCode::usage, "a study batch must hold at least one instance");
  }
  if (auto qr = check_query_retrieve(config); !qr) return qr;
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
  // A release route: the consent registry must exist; the ledger is created if missing and
  // must be kept with this key. Spills of instances waiting for their batch's entry are
  // made again from incoming/ (a killed run's are removed).
  std::optional<Release> release;
  if (config.release) {
    const ReleaseRoute& r = *config.release;
    auto gate = pipeline::ConsentGate::open({r.registry, r.purpose, r.consent_at});
    if (!gate) return std::unexpected(gate.error());
    auto opened = ledger::Ledger::open(r.ledger, ledger::LedgerAccess::create_if_missing);
    if (!opened) return std::unexpected(opened.error());
    if (auto same = opened->check_key(pipeline.header_stage().pseudonymizer().key().fingerprint());
        !same)
      return std::unexpected(same.error());
    std::string purpose(consent::purpose_name(gate->purpose()));
    release.emplace(
        Release{std::move(*gate), std::move(*opened), std::move(purpose), trimmed(r.recipient)});
    std::error_code ec;
    fs::remove_all(config.spool / "held", ec);
    fs::create_directories(config.spool / "held", ec);
    if (ec) return fail(ErrorCode::io, "cannot create the spool's held folder: " + ec.message());
  }
  Gateway gateway(config, pipeline, std::move(*spool), log_stream,
                  assembler ? &*assembler : nullptr, release ? &*release : nullptr);

  net::ServerConfig server_config;
  server_config.port = config.port;
  server_config.ae_title = config.ae_title;
  server_config.max_associations = config.max_associations;
  server_config.store_floor_s = config.store_floor_s;
  server_config.store_min_bytes_per_s = config.store_min_bytes_per_s;
  server_config.store_max_bytes = config.store_max_bytes;
  server_config.allowed_calling = config.allowed_calling;
  server_config.allowed_hosts = config.allowed_hosts;
  server_config.tls = config.tls;
  server_config.log = [&gateway](const std::string& line) { gateway.log().line(line); };
  server_config.store_refused = [&gateway] { gateway.count_refused(); };
  if (config.query_retrieve == QueryRetrieve::over_output)
    server_config.query = make_query_service(
        {config.output, config.ae_title, config.move_destinations, config.tls,
         std::max<std::size_t>(1, config.max_associations / 2)},
        [&gateway](const std::string& line) { gateway.log().line(line); });
  auto server = net::StoreServer::create(
      server_config, [&gateway](const net::StoreRequest& request, const net::ReceiveInto& receive) {
        return gateway.on_store(request, receive);
      });
  if (!server) return std::unexpected(server.error());

  const auto waiting = gateway.spool().status();
  gateway.log().line("listening on port " + std::to_string(config.port) +
                     (config.tls ? " (TLS only)" : "") + " as " + config.ae_title + "; " + std::to_string(waiting.incoming) +
                     " instances to process and " + std::to_string(waiting.outbox) +
                     " to forward from an earlier run");

  // One association per forwarder, kept open across its batches.
  std::vector<std::unique_ptr<net::StoreSession>> sessions;
  if (config.forward)
    for (unsigned i = 0; i < config.forward_associations; ++i) {
      auto session = net::StoreSession::create(*config.forward, config.ae_title, 60);
      if (!session) return std::unexpected(session.error());
      sessions.push_back(std::move(*session));
    }

  batch::CancelToken stop_workers;
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < config.workers; ++i)
    threads.emplace_back([&] { gateway.worker_loop(stop_workers); });
  for (auto& session : sessions)
    threads.emplace_back(
        [&gateway, &stop_workers, &session] { gateway.forward_loop(stop_workers, *session); });

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
  // A graceful stop records and delivers the study batches still held (a killed run leaves
  // them in incoming/ for the next).
  gateway.record_due_batches(true);
  if (!served) return std::unexpected(served.error());

  const GatewayTotals totals = gateway.totals();
  gateway.log().line("stopped: received " + std::to_string(totals.received) + ", refused " +
                     std::to_string(totals.refused) + ", processed " +
                     std::to_string(totals.processed) + ", quarantined " +
                     std::to_string(totals.quarantined) + ", forwarded " +
                     std::to_string(totals.forwarded) +
                     (config.forward ? ", given up " + std::to_string(totals.forward_given_up)
                                     : std::string()) +
                     (config.release ? ", ledger entries " + std::to_string(totals.ledger_entries)
                                     : std::string()));
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
  out << "failed (forwards given up, kept in failed/): " << status.failed << '\n';
  if (!status.last_failed.empty()) {
    out << "last given up:\n";
    for (const auto& entry : status.last_failed) out << "  " << entry << '\n';
  }
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
  json["failed"] = status.failed;
  json["last_failed"] = status.last_failed;
  json["last_quarantined"] = nlohmann::ordered_json::array();
  for (const auto& entry : status.last_quarantined)
    json["last_quarantined"].push_back({{"id", entry.id}, {"reason", entry.reason}});
  json["last_forward_errors"] = status.last_forward_errors;
  return json.dump(2) + "\n";
}

}  // namespace radguard::gateway
