#pragma once
// The gateway's spool: the durable state of a radguard gateway, in one folder.
//
//   SPOOL/incoming/<id>.dcm         received and acknowledged, not yet de-identified
//   SPOOL/outbox/<study>/<series>/<instance>.dcm
//                                   de-identified, waiting to be forwarded (named as deid
//                                   names outputs: keyed pseudonymous UIDs)
//   SPOOL/outbox/....dcm.retry      when a forward failed: attempts, next attempt, last error
//   SPOOL/failed/<study>/<series>/<instance>.dcm (and .retry)
//                                   forwards given up (RetryPolicy: refused by the destination
//                                   max_refusals times, or max_attempts failures): kept, never
//                                   retried until moved back into outbox/ (with its .retry
//                                   record removed)
//   SPOOL/quarantine/<id>.dcm       refused by the pipeline (the received object, never
//   SPOOL/quarantine/<id>.txt       forwarded) and the reason (error name and message)
//
// Every state change is a durable rename (core/atomic_file.hpp: written, fsynced, renamed,
// folder fsynced; or, for a batch of instances, each written and fsynced, renamed, then each
// distinct folder fsynced once: write_files_atomically), so after a crash at any moment each acknowledged instance is in exactly
// one place: incoming (it is processed again: the same pseudonymous name, so a forward is
// never duplicated under another name), the outbox, the output or quarantine. Temporary files
// a crash leaves are never listed and are removed when the spool is opened.
//
// <id> is made of the arrival time, the process and a counter: ids sort in arrival order and
// carry nothing of the instance. Spool files are owner-only (0600): they hold patient data.
//
// Thread safety: distinct instances may be handled from distinct threads at once; the caller
// must not handle one id from two threads.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/result.hpp"

namespace radguard::gateway {

// When a failed forward is tried again: first after `first`, doubling up to `max`.
struct RetryPolicy {
  std::chrono::seconds first{1};
  std::chrono::seconds max{300};
  // When a forward is given up (moved to failed/): after this many failed attempts of any
  // kind (0: never; a destination down for hours is waited for), or after this many answers
  // of a failure status from the destination (it refused the instance; 0: never).
  unsigned max_attempts = 0;
  unsigned max_refusals = 3;
};

// Why a forward failed.
enum class ForwardFailure : std::uint8_t {
  unreachable,  // no association, or it broke: nothing is known to have arrived
  refused,      // the destination answered a failure status for the instance
};

// What forward_failed did.
enum class ForwardFate : std::uint8_t { retrying, given_up };

// One de-identified instance waiting in the outbox.
struct OutboxItem {
  std::filesystem::path path;  // absolute
  std::filesystem::path name;  // relative to the outbox: <study>/<series>/<instance>.dcm
  unsigned attempts = 0;       // failed forwards so far
  unsigned refusals = 0;       // of them, answered with a failure status
  std::int64_t next_attempt = 0;  // Unix seconds; 0: at once
  std::string last_error;
};

// A de-identified instance for the outbox: its name (a relative path of pseudonymous UIDs)
// and its bytes.
struct OutboxEntry {
  std::filesystem::path name;
  std::span<const std::uint8_t> bytes;
};

struct QuarantineEntry {
  std::string id;
  std::string reason;  // the error's name and message (no attribute value)
};

struct SpoolStatus {
  std::size_t incoming = 0;
  std::size_t outbox = 0;
  std::size_t outbox_retrying = 0;  // of the outbox, those that failed at least once
  std::size_t quarantined = 0;
  std::size_t failed = 0;  // forwards given up (in failed/)
  std::vector<QuarantineEntry> last_quarantined;  // the newest, at most 10
  std::vector<std::string> last_forward_errors;   // the newest, at most 10
  std::vector<std::string> last_failed;           // given up: name and last error, newest 10
};

class Spool {
 public:
  // Opens (creating when missing) the spool folder and its sub-folders (owner-only) and
  // removes temporary files a killed run left. `min_free_bytes`: a received instance is
  // refused (out of resources) while the file system has less free space than this. Fails
  // with ErrorCode::io.
  [[nodiscard]] static Result<Spool> open(const std::filesystem::path& root,
                                          std::uint64_t min_free_bytes = 0);

  const std::filesystem::path& root() const { return root_; }

  // --- receiving
  // Reserves a new incoming file: the caller writes it at the result's temp_path() and then
  // calls commit_incoming. Fails with ErrorCode::io (no space left beyond the minimum, the
  // folder cannot be written).
  [[nodiscard]] Result<PendingFile> reserve_incoming() const;
  // Makes a reserved file durable under its id (fsync, rename, folder fsync): only then may
  // the sender be told it arrived. Returns the id. Fails with ErrorCode::io.
  [[nodiscard]] Result<std::string> commit_incoming(PendingFile& pending) const;
  // Both at once, for bytes held in memory.
  [[nodiscard]] Result<std::string> accept(std::span<const std::uint8_t> bytes) const;

  // --- processing
  // The ids waiting in incoming, oldest first (temporary files are never listed).
  std::vector<std::string> incoming() const;
  std::filesystem::path incoming_path(const std::string& id) const;
  // The instance is done (its outputs are durable): removes it from incoming, durably.
  [[nodiscard]] Status finish_incoming(const std::string& id) const;
  // Several at once: each removal tried, then the folder flushed once for all; a failure
  // names every instance (and the flush) that failed.
  [[nodiscard]] Status finish_incoming(std::span<const std::string> ids) const;
  // Moves the instance to quarantine with its reason (the reason first, then the instance).
  [[nodiscard]] Status quarantine(const std::string& id, const Error& reason) const;

  // --- forwarding
  // Puts a de-identified instance in the outbox under `name` (a relative path of
  // pseudonymous UIDs), replacing one of the same name. Fails with ErrorCode::io or
  // ErrorCode::usage (a name that is absolute or climbs out).
  [[nodiscard]] Status put_outbox(const std::filesystem::path& name,
                                  std::span<const std::uint8_t> bytes) const;
  // Several at once, with one group commit (write_files_atomically); one status per entry,
  // in order.
  [[nodiscard]] std::vector<Status> put_outbox(std::span<const OutboxEntry> entries) const;
  // Outbox items whose next attempt is due at `now` (Unix seconds), oldest name first, at
  // most `max`.
  std::vector<OutboxItem> outbox_due(std::int64_t now, std::size_t max) const;
  // The item arrived: removes it and its retry record. With FolderSync::deferred the removal
  // is not flushed here: the caller calls sync_outbox once for many (a process killed
  // meanwhile loses nothing; after a power loss an item forwarded since the last flush may be
  // forwarded again, under the same name).
  [[nodiscard]] Status forwarded(const OutboxItem& item,
                                 PendingFile::FolderSync folder_sync = PendingFile::FolderSync::now) const;
  // Flushes the removals of these items (forwarded with FolderSync::deferred): each distinct
  // folder once. Fails with ErrorCode::io, naming each folder that failed.
  [[nodiscard]] Status sync_outbox(std::span<const OutboxItem> forwarded) const;
  // The item did not arrive: records one more attempt and when to try again, or, past the
  // policy's limits, moves it (and its record) to failed/.
  [[nodiscard]] Result<ForwardFate> forward_failed(const OutboxItem& item,
                                                   const std::string& error, std::int64_t now,
                                                   const RetryPolicy& policy,
                                                   ForwardFailure kind = ForwardFailure::unreachable) const;

  // Counts and the newest failures, read from the folders (a running gateway's spool too).
  SpoolStatus status() const;

 private:
  Spool(std::filesystem::path root, std::uint64_t min_free_bytes)
      : root_(std::move(root)), min_free_bytes_(min_free_bytes) {}
  std::filesystem::path root_;
  std::uint64_t min_free_bytes_ = 0;
};

// Seconds until the next attempt after `attempts` failures.
std::chrono::seconds retry_delay(unsigned attempts, const RetryPolicy& policy);

}  // namespace radguard::gateway
