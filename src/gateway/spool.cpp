#include "gateway/spool.hpp"

#include "core/error_table.hpp"
#include "core/group_commit.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <set>
#include <cstdio>
#include <sstream>

namespace radguard::gateway {

namespace fs = std::filesystem;

namespace {

constexpr fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;
constexpr std::string_view kRetrySuffix = ".retry";

bool is_temporary(const fs::path& path) {
  return path.filename().string().starts_with(".radguard-tmp-");
}

Status make_folder(const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return fail(ErrorCode::io, "cannot create " + folder.string() + ": " + ec.message());
  fs::permissions(folder, fs::perms::owner_all, ec);
  if (ec) return fail(ErrorCode::io, "cannot restrict " + folder.string() + ": " + ec.message());
  return {};
}

std::string new_id() {
  static std::atomic<std::uint64_t> counter{0};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char text[64];
  std::snprintf(text, sizeof text, "%013lld-%d-%06llu", static_cast<long long>(ms),
                static_cast<int>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1) % 1000000));
  return text;
}

Status remove_durably(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return fail(ErrorCode::io, "cannot remove " + path.string() + ": " + ec.message());
  return sync_folder(path.parent_path());
}

std::string one_line(std::string text) {
  std::ranges::replace(text, '\n', ' ');
  std::ranges::replace(text, '\r', ' ');
  return text;
}

struct RetryRecord {
  unsigned attempts = 0;
  unsigned refusals = 0;
  std::int64_t next = 0;
  std::string last;
};

RetryRecord read_retry(const fs::path& path) {
  RetryRecord record;
  auto text = read_small_file(path, 64 * 1024);
  if (!text) return record;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "attempts")
      (void)std::from_chars(value.data(), value.data() + value.size(), record.attempts);
    else if (key == "refusals")
      (void)std::from_chars(value.data(), value.data() + value.size(), record.refusals);
    else if (key == "next")
      (void)std::from_chars(value.data(), value.data() + value.size(), record.next);
    else if (key == "last")
      record.last = value;
  }
  return record;
}

// The names under `folder` (recursively) ending in `suffix`, temporaries left out.
std::vector<fs::path> files_under(const fs::path& folder, std::string_view suffix) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || is_temporary(it->path())) continue;
    if (it->path().filename().string().ends_with(suffix)) files.push_back(it->path());
  }
  std::ranges::sort(files);
  return files;
}

}  // namespace

std::chrono::seconds retry_delay(unsigned attempts, const RetryPolicy& policy) {
  auto delay = policy.first;
  for (unsigned i = 1; i < attempts && delay < policy.max; ++i) delay *= 2;
  return std::min(delay, policy.max);
}

Result<Spool> Spool::open(const fs::path& root, std::uint64_t min_free_bytes) {
  if (root.empty()) return fail(ErrorCode::usage, "the spool needs a folder");
  // The spool holds identifiable instances: the root too is the owner's alone.
  if (auto made = make_folder(root); !made) return std::unexpected(made.error());
  for (const char* sub : {"incoming", "outbox", "quarantine", "failed"})
    if (auto made = make_folder(root / sub); !made) return std::unexpected(made.error());
  remove_stale_temporaries(root);
  return Spool(fs::absolute(root), min_free_bytes);
}

Result<PendingFile> Spool::reserve_incoming() const {
  if (min_free_bytes_ > 0) {
    struct statvfs fsinfo {};
    if (::statvfs((root_ / "incoming").c_str(), &fsinfo) != 0)
      return fail(ErrorCode::io, "cannot see the spool's free space");
    const std::uint64_t free_bytes =
        static_cast<std::uint64_t>(fsinfo.f_bavail) * static_cast<std::uint64_t>(fsinfo.f_frsize);
    if (free_bytes < min_free_bytes_)
      return fail(ErrorCode::io, "the spool's file system is full (below its free-space minimum)");
  }
  return PendingFile::create(root_ / "incoming" / (new_id() + ".dcm"));
}

Result<std::string> Spool::commit_incoming(PendingFile& pending) const {
  const std::string id = pending.destination().stem().string();
  if (auto done = pending.commit(kOwnerOnly, PendingFile::Existing::keep_if_different);
      !done)
    return std::unexpected(done.error());
  return id;
}

Result<std::string> Spool::accept(std::span<const std::uint8_t> bytes) const {
  auto pending = reserve_incoming();
  if (!pending) return std::unexpected(pending.error());
  if (auto written = pending->write_contents(
          std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
          kOwnerOnly);
      !written)
    return std::unexpected(written.error());
  return commit_incoming(*pending);
}

std::vector<std::string> Spool::incoming() const {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_ / "incoming", ec)) {
    const auto& path = entry.path();
    if (is_temporary(path) || path.extension() != ".dcm") continue;
    ids.push_back(path.stem().string());
  }
  std::ranges::sort(ids);
  return ids;
}

fs::path Spool::incoming_path(const std::string& id) const {
  return root_ / "incoming" / (id + ".dcm");
}

Status Spool::finish_incoming(const std::string& id) const {
  return finish_incoming(std::span<const std::string>(&id, 1));
}

Status Spool::finish_incoming(std::span<const std::string> ids) const {
  // Every removal is tried and the folder flushed whatever failed: the others are done.
  std::string failures;
  for (const auto& id : ids) {
    std::error_code ec;
    fs::remove(incoming_path(id), ec);
    if (ec) failures += "; cannot remove instance " + id + ": " + ec.message();
  }
  if (auto synced = sync_folder(root_ / "incoming"); !synced)
    failures += "; " + synced.error().message;
  if (failures.empty()) return {};
  return fail(ErrorCode::io, failures.substr(2));
}

Status Spool::quarantine(const std::string& id, const Error& reason) const {
  const fs::path folder = root_ / "quarantine";
  const std::string text = std::string(statuses_for(reason.code).name) + ": " +
                           one_line(reason.message) + "\n";
  if (auto written = write_file_atomically(folder / (id + ".txt"), text, kOwnerOnly); !written)
    return written;
  std::error_code ec;
  fs::rename(incoming_path(id), folder / (id + ".dcm"), ec);
  if (ec) return fail(ErrorCode::io, "cannot move instance " + id + " to quarantine: " + ec.message());
  if (auto synced = sync_folder(folder); !synced) return synced;
  return sync_folder(root_ / "incoming");
}

Status Spool::put_outbox(const fs::path& name, std::span<const std::uint8_t> bytes) const {
  const OutboxEntry entry{name, bytes};
  return put_outbox(std::span<const OutboxEntry>(&entry, 1)).front();
}

std::vector<Status> Spool::put_outbox(std::span<const OutboxEntry> entries) const {
  std::vector<Status> statuses(entries.size());
  std::vector<FileToWrite> files;
  std::vector<std::size_t> index;  // of each file, in entries
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const fs::path& name = entries[i].name;
    if (name.empty() || name.is_absolute() ||
        std::ranges::any_of(name, [](const fs::path& part) { return part == ".." || part == "."; })) {
      statuses[i] = fail(ErrorCode::usage, "an outbox name must be a plain relative path");
      continue;
    }
    const fs::path destination = root_ / "outbox" / name;
    // A retry record of an earlier copy of the same name is stale now.
    std::error_code ec;
    fs::remove(fs::path(destination.string() + std::string(kRetrySuffix)), ec);
    files.push_back({destination, std::string_view(reinterpret_cast<const char*>(entries[i].bytes.data()),
                                                   entries[i].bytes.size())});
    index.push_back(i);
  }
  const auto written = write_files_atomically(root_ / "outbox", files, kOwnerOnly,
                                              PendingFile::Existing::replace);
  for (std::size_t j = 0; j < written.size(); ++j) statuses[index[j]] = written[j];
  return statuses;
}

std::vector<OutboxItem> Spool::outbox_due(std::int64_t now, std::size_t max) const {
  std::vector<OutboxItem> due;
  const fs::path outbox = root_ / "outbox";
  for (const auto& path : files_under(outbox, ".dcm")) {
    if (due.size() >= max) break;
    // Lexical: the path was listed under `outbox`; fs::relative would resolve it on disk (a
    // readlink per component) and throw if another forwarder removed it meanwhile.
    OutboxItem item{path, path.lexically_relative(outbox), 0, 0, 0, {}};
    const fs::path retry = path.string() + std::string(kRetrySuffix);
    std::error_code ec;
    if (fs::exists(retry, ec)) {
      const RetryRecord record = read_retry(retry);
      item.attempts = record.attempts;
      item.refusals = record.refusals;
      item.next_attempt = record.next;
      item.last_error = record.last;
      if (record.next > now) continue;
    }
    due.push_back(std::move(item));
  }
  return due;
}

Status Spool::forwarded(const OutboxItem& item, PendingFile::FolderSync folder_sync) const {
  std::error_code ec;
  fs::remove(fs::path(item.path.string() + std::string(kRetrySuffix)), ec);
  if (folder_sync == PendingFile::FolderSync::now) return remove_durably(item.path);
  fs::remove(item.path, ec);
  if (ec) return fail(ErrorCode::io, "cannot remove " + item.path.string() + ": " + ec.message());
  return {};
}

Status Spool::sync_outbox(std::span<const OutboxItem> forwarded) const {
  std::set<fs::path> folders;
  for (const auto& item : forwarded) folders.insert(item.path.parent_path());
  std::string failures;
  for (const auto& folder : folders)
    if (auto synced = sync_folder(folder); !synced) failures += "; " + synced.error().message;
  if (failures.empty()) return {};
  return fail(ErrorCode::io, failures.substr(2));
}

Result<ForwardFate> Spool::forward_failed(const OutboxItem& item, const std::string& error,
                                          std::int64_t now, const RetryPolicy& policy,
                                          ForwardFailure kind) const {
  const unsigned attempts = item.attempts + 1;
  const unsigned refusals = item.refusals + (kind == ForwardFailure::refused ? 1 : 0);
  const std::int64_t next = now + retry_delay(attempts, policy).count();
  const std::string text = "attempts=" + std::to_string(attempts) +
                           "\nrefusals=" + std::to_string(refusals) + "\nnext=" +
                           std::to_string(next) + "\nlast=" + one_line(error) + "\n";
  const fs::path record = item.path.string() + std::string(kRetrySuffix);
  if (auto written = write_file_atomically(record, text, kOwnerOnly); !written)
    return std::unexpected(written.error());
  const bool give_up = (policy.max_attempts > 0 && attempts >= policy.max_attempts) ||
                       (policy.max_refusals > 0 && refusals >= policy.max_refusals);
  if (!give_up) return ForwardFate::retrying;
  // The instance first, then its record: a crash between leaves an instance in failed/
  // without a record (shown as given up) and a stray record in the outbox (never listed).
  const fs::path destination = root_ / "failed" / item.name;
  std::error_code ec;
  fs::create_directories(destination.parent_path(), ec);
  if (ec) return fail(ErrorCode::io, "cannot create a folder in failed/: " + ec.message());
  for (fs::path folder = destination.parent_path(); folder != root_ / "failed";
       folder = folder.parent_path())
    if (auto synced = sync_folder(folder.parent_path()); !synced)
      return std::unexpected(synced.error());
  fs::rename(item.path, destination, ec);
  if (ec) return fail(ErrorCode::io, "cannot move a forward to failed/: " + ec.message());
  if (auto synced = sync_folder(destination.parent_path()); !synced)
    return std::unexpected(synced.error());
  if (auto synced = sync_folder(item.path.parent_path()); !synced)
    return std::unexpected(synced.error());
  fs::rename(record, destination.string() + std::string(kRetrySuffix), ec);
  if (ec) return fail(ErrorCode::io, "cannot move a retry record to failed/: " + ec.message());
  if (auto synced = sync_folder(destination.parent_path()); !synced)
    return std::unexpected(synced.error());
  return ForwardFate::given_up;
}

SpoolStatus Spool::status() const {
  SpoolStatus status;
  status.incoming = incoming().size();
  const auto outbox = files_under(root_ / "outbox", ".dcm");
  status.outbox = outbox.size();
  std::vector<std::pair<fs::file_time_type, std::string>> errors;
  for (const auto& retry : files_under(root_ / "outbox", kRetrySuffix)) {
    std::error_code ec;
    if (!fs::exists(retry.parent_path() / retry.stem(), ec)) continue;
    ++status.outbox_retrying;
    const RetryRecord record = read_retry(retry);
    errors.emplace_back(fs::last_write_time(retry, ec),
                        "attempt " + std::to_string(record.attempts) + ": " + record.last);
  }
  std::ranges::sort(errors, std::greater<>{}, &decltype(errors)::value_type::first);
  for (std::size_t i = 0; i < errors.size() && i < 10; ++i)
    status.last_forward_errors.push_back(errors[i].second);
  std::vector<std::pair<fs::file_time_type, std::string>> given_up;
  for (const auto& path : files_under(root_ / "failed", ".dcm")) {
    ++status.failed;
    std::error_code ec;
    const fs::path retry = path.string() + std::string(kRetrySuffix);
    const RetryRecord record = read_retry(retry);
    given_up.emplace_back(fs::last_write_time(path, ec),
                          path.lexically_relative(root_ / "failed").generic_string() + "  after " +
                              std::to_string(record.attempts) + " attempts: " + record.last);
  }
  std::ranges::sort(given_up, std::greater<>{}, &decltype(given_up)::value_type::first);
  for (std::size_t i = 0; i < given_up.size() && i < 10; ++i)
    status.last_failed.push_back(given_up[i].second);
  auto reasons = files_under(root_ / "quarantine", ".txt");
  status.quarantined = reasons.size();
  std::ranges::reverse(reasons);  // ids sort by arrival: newest first
  for (std::size_t i = 0; i < reasons.size() && i < 10; ++i) {
    auto text = read_small_file(reasons[i], 64 * 1024);
    std::string reason = text ? *text : std::string("(unreadable)");
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    status.last_quarantined.push_back({reasons[i].stem().string(), reason});
  }
  return status;
}

}  // namespace radguard::gateway
