#include "core/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "core/group_commit.hpp"
#include "core/warning.hpp"

namespace radguard {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTempPrefix = ".radguard-tmp-";

// 8 hex digits naming this host (FNV-1a of its name), so a run can tell its own host's
// temporary files from those another machine writes into a shared folder.
const std::string& host_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) std::strcpy(name, "unknown");
    std::uint32_t hash = 2166136261U;
    for (const char* p = name; *p != '\0'; ++p) {
      hash ^= static_cast<unsigned char>(*p);
      hash *= 16777619U;
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", hash);
    return std::string(buf);
  }();
  return tag;
}

// A name no other process or thread will pick: the host, the process id (read at each call:
// a forked child must not name its files after its parent), a per-process random part and a
// counter.
std::string unique_suffix() {
  static const std::string random_part = [] {
    std::random_device device;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08x%08x", device(), device());
    return std::string(buf);
  }();
  static std::atomic<unsigned long long> counter{0};
  return host_tag() + "-" + std::to_string(::getpid()) + "-" + random_part + "-" +
         std::to_string(counter.fetch_add(1));
}

std::string errno_text() { return std::strerror(errno); }

// A fault a test puts in place of a flush (set_*_flush_fault_for_testing).
class FlushFault {
 public:
  void set(std::function<Status(const fs::path&)> fault) {
    std::lock_guard lock(mutex_);
    fault_ = std::move(fault);
  }
  // The fault's status for `path`; success when none is set.
  Status ask(const fs::path& path) {
    std::function<Status(const fs::path&)> fault;
    {
      std::lock_guard lock(mutex_);
      fault = fault_;
    }
    return fault ? fault(path) : Status{};
  }

 private:
  std::mutex mutex_;  // a test sets it while the gateway's workers flush
  std::function<Status(const fs::path&)> fault_;
};

FlushFault& folder_flush_fault() {
  static FlushFault hook;
  return hook;
}

FlushFault& file_flush_fault() {
  static FlushFault hook;
  return hook;
}

Status fsync_path(const fs::path& path, int flags, const std::string& what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::io, "cannot open " + what + ": " + errno_text());
  const int synced = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  // Some file systems cannot fsync a folder (EINVAL): nothing more can be done there.
  if (synced != 0 && !(saved == EINVAL && (flags & O_DIRECTORY) != 0))
    return fail(ErrorCode::io, "cannot flush " + what + ": " + std::strerror(saved));
  return {};
}

// A file's flush (fsync of its bytes, through a new descriptor), or the fault a test set.
Status flush_file(const fs::path& path, const std::string& what) {
  if (Status injected = file_flush_fault().ask(path); !injected) return injected;
  return fsync_path(path, O_RDONLY, what);
}

// Whether two files hold the same bytes.
bool same_content(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  const auto size_a = fs::file_size(a, ec);
  if (ec) return false;
  const auto size_b = fs::file_size(b, ec);
  if (ec || size_a != size_b) return false;
  std::ifstream in_a(a, std::ios::binary), in_b(b, std::ios::binary);
  if (!in_a || !in_b) return false;
  std::vector<char> buf_a(1 << 16), buf_b(1 << 16);
  while (in_a && in_b) {
    in_a.read(buf_a.data(), static_cast<std::streamsize>(buf_a.size()));
    in_b.read(buf_b.data(), static_cast<std::streamsize>(buf_b.size()));
    if (in_a.gcount() != in_b.gcount()) return false;
    if (std::memcmp(buf_a.data(), buf_b.data(), static_cast<std::size_t>(in_a.gcount())) != 0)
      return false;
  }
  return in_a.eof() && in_b.eof();
}

// rename() that fails with EEXIST instead of replacing.
int rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  // A file system without RENAME_NOREPLACE: link() never replaces either.
  if (::link(from.c_str(), to.c_str()) != 0) return -1;
  ::unlink(from.c_str());
  return 0;
}

// Whether rename_into_place flushes the file itself, or its caller already did
// (write_files_atomically's group commit: write_contents fsyncs each file).
enum class ContentSync : std::uint8_t { fsync, flushed_by_caller };

// PendingFile::commit's work up to the folder's flush: refuses a missing or empty file,
// flushes it, sets the permission bits when given, renames it onto `destination` (or, with
// keep_if_different, finds the same bytes there and removes it). On failure `temp` is left
// for its owner to remove.
Status rename_into_place(const fs::path& temp, const fs::path& destination,
                         std::optional<fs::perms> perms, PendingFile::Existing existing,
                         ContentSync content_sync) {
  std::error_code ec;
  struct stat st{};
  if (::stat(temp.c_str(), &st) != 0)
    return fail(ErrorCode::io, "cannot publish " + destination.string() +
                                   ": the written file is gone: " + errno_text());
  if (st.st_size == 0)
    return fail(ErrorCode::io,
                "cannot publish " + destination.string() + ": the written file is empty");
  if (content_sync == ContentSync::fsync)
    if (auto synced = flush_file(temp, destination.string()); !synced) return synced;
  if (perms) {
    fs::permissions(temp, *perms, fs::perm_options::replace, ec);
    if (ec)
      return fail(ErrorCode::io,
                  "cannot set permissions on " + temp.string() + ": " + ec.message());
  }
  if (existing == PendingFile::Existing::replace) {
    fs::rename(temp, destination, ec);
    if (ec)
      return fail(ErrorCode::io, "cannot publish " + destination.string() + ": " + ec.message());
  } else if (rename_no_replace(temp, destination) != 0) {
    if (errno != EEXIST)
      return fail(ErrorCode::io, "cannot publish " + destination.string() + ": " + errno_text());
    if (!same_content(temp, destination))
      return fail(ErrorCode::conflict,
                  destination.string() +
                      " already exists with different content; not replaced (give --overwrite "
                      "to replace outputs of earlier runs)");
    fs::remove(temp, ec);  // the same bytes are already published
  }
  return {};
}

}  // namespace

Result<PendingFile> PendingFile::create(const fs::path& destination) {
  std::error_code ec;
  const fs::path folder = destination.has_parent_path() ? destination.parent_path() : fs::path(".");
  fs::create_directories(folder, ec);
  if (ec)
    return fail(ErrorCode::io, "cannot create folder " + folder.string() + ": " + ec.message());
  return PendingFile(folder / (std::string(kTempPrefix) + unique_suffix()), destination);
}

PendingFile::PendingFile(PendingFile&& other) noexcept
    : temp_(std::move(other.temp_)),
      destination_(std::move(other.destination_)),
      flushed_(other.flushed_) {
  other.temp_.clear();
}

PendingFile::~PendingFile() {
  if (!temp_.empty()) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

Status sync_folder(const fs::path& folder) {
  return fsync_path(folder, O_RDONLY | O_DIRECTORY, "folder " + folder.string());
}

Status PendingFile::flush() {
  if (auto synced = flush_file(temp_, destination_.string()); !synced) return synced;
  flushed_ = true;
  return {};
}

Status PendingFile::commit(std::optional<fs::perms> perms, Existing existing,
                           FolderSync folder_sync) {
  if (auto placed = rename_into_place(temp_, destination_, perms, existing,
                                     flushed_ ? ContentSync::flushed_by_caller : ContentSync::fsync);
      !placed)
    return placed;
  temp_.clear();
  if (folder_sync == FolderSync::deferred) return {};
  return sync_folder(destination_.has_parent_path() ? destination_.parent_path() : fs::path("."));
}

bool is_stale_temporary(const fs::path& path) {
  const std::string name = path.filename().string();
  if (!name.starts_with(kTempPrefix)) return false;
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const auto age = std::chrono::system_clock::now() -
                   std::chrono::system_clock::from_time_t(st.st_mtime);
  if (age > std::chrono::hours(24)) return true;
  // <host>-<pid>-...
  const std::string_view rest = std::string_view(name).substr(kTempPrefix.size());
  if (rest.size() < 10 || rest.substr(0, 8) != host_tag() || rest[8] != '-') return false;
  const std::string_view pid_text = rest.substr(9, rest.find('-', 9) - 9);
  int pid = 0;
  const auto [end, error] = std::from_chars(pid_text.data(), pid_text.data() + pid_text.size(), pid);
  if (error != std::errc() || end != pid_text.data() + pid_text.size() || pid <= 0) return false;
  if (pid == ::getpid()) return false;
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

namespace {

// Removes the stale temporaries among the entries `it` lists (either iterator kind).
template <typename Iterator>
std::size_t remove_stale_listed(Iterator it) {
  std::size_t removed = 0;
  std::error_code ec;
  for (; it != Iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kTempPrefix) || !is_stale_temporary(it->path())) continue;
    std::error_code ignored;
    if (fs::remove(it->path(), ignored)) ++removed;
  }
  return removed;
}

}  // namespace

std::size_t remove_stale_temporaries(const fs::path& folder, FolderScan scan) {
  std::error_code ec;
  constexpr auto options = fs::directory_options::skip_permission_denied;
  if (scan == FolderScan::this_folder) {
    fs::directory_iterator it(folder, options, ec);
    return ec ? 0 : remove_stale_listed(std::move(it));
  }
  fs::recursive_directory_iterator it(folder, options, ec);
  return ec ? 0 : remove_stale_listed(std::move(it));
}

Status PendingFile::write_contents(std::string_view bytes, fs::perms perms) {
  const int fd =
      ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(perms));
  if (fd < 0)
    return fail(ErrorCode::io,
                "cannot create " + destination_.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = n < 0 ? errno : EIO;
      ::close(fd);
      return fail(ErrorCode::io,
                  "cannot write " + destination_.string() + ": " + std::strerror(saved));
    }
    written += static_cast<std::size_t>(n);
  }
  if (auto injected = file_flush_fault().ask(temp_); !injected) {
    ::close(fd);
    return injected;
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    return fail(ErrorCode::io,
                "cannot write " + destination_.string() + ": " + std::strerror(saved));
  }
  if (::close(fd) != 0)
    return fail(ErrorCode::io, "cannot write " + destination_.string() + ": " + errno_text());
  flushed_ = true;
  return {};
}

Status write_file_atomically(const fs::path& destination, std::string_view bytes, fs::perms perms) {
  auto pending = PendingFile::create(destination);
  if (!pending) return std::unexpected(pending.error());
  if (auto written = pending->write_contents(bytes, perms); !written) return written;
  if (bytes.empty()) {
    // commit() refuses empty files as failed writes; an intended empty file goes by rename.
    std::error_code ec;
    fs::rename(pending->temp_path(), destination, ec);
    if (ec) return fail(ErrorCode::io, "cannot publish " + destination.string() + ": " + ec.message());
    return {};
  }
  return pending->commit();
}

namespace {

// The folders between `folder` and `root` (or, for a folder outside `root`, `folder` alone)
// that do not exist yet: PendingFile::create will make them, and each one's name then lives in
// its parent folder, which must be flushed too.
std::vector<fs::path> missing_folders(const fs::path& folder, const fs::path& root) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path f = folder; f != root && f.has_relative_path() && f != f.parent_path();
       f = f.parent_path()) {
    if (fs::exists(f, ec)) break;
    missing.push_back(f);
  }
  return missing;
}

// A folder's flush (fsync: it reports the error on every kernel, where syncfs before Linux
// 5.17 could hide the file system's own), or the fault a test set in its place.
Status flush_folder(const fs::path& folder) {
  if (Status injected = folder_flush_fault().ask(folder); !injected) return injected;
  return sync_folder(folder);
}

}  // namespace

void set_folder_flush_fault_for_testing(std::function<Status(const fs::path&)> fault) {
  folder_flush_fault().set(std::move(fault));
}

void set_file_flush_fault_for_testing(std::function<Status(const fs::path&)> fault) {
  file_flush_fault().set(std::move(fault));
}

std::vector<Status> write_files_atomically(const fs::path& root, std::span<const FileToWrite> files,
                                           fs::perms perms, PendingFile::Existing existing) {
  std::vector<Status> statuses(files.size());
  // The folders each renamed file needs flushed: its own, and the parent of each folder made
  // for it. Each distinct folder is flushed once, after every rename.
  std::vector<std::vector<fs::path>> needs(files.size());
  std::map<fs::path, Status> flushes;
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (files[i].bytes.empty()) {
      statuses[i] = fail(ErrorCode::io, "cannot publish " + files[i].destination.string() +
                                            ": nothing to write");
      continue;
    }
    const fs::path folder = files[i].destination.has_parent_path()
                                ? files[i].destination.parent_path()
                                : fs::path(".");
    const auto made_folders = missing_folders(folder, root);
    auto made = PendingFile::create(files[i].destination);
    if (!made) {
      statuses[i] = std::unexpected(made.error());
      continue;
    }
    // write_contents fsyncs the file and reports its error: no flush of the contents is left.
    if (auto written = made->write_contents(files[i].bytes, perms); !written) {
      statuses[i] = written;
      continue;
    }
    statuses[i] = rename_into_place(made->temp_path(), made->destination(), std::nullopt,
                                    existing, ContentSync::flushed_by_caller);
    // On failure the PendingFile removes its temporary; once renamed, it finds nothing left.
    if (!statuses[i]) continue;
    needs[i].push_back(folder);
    for (const auto& new_folder : made_folders) needs[i].push_back(new_folder.parent_path());
    for (const auto& f : needs[i]) flushes.emplace(f, Status{});
  }
  for (auto& [folder, flushed] : flushes) flushed = flush_folder(folder);
  for (std::size_t i = 0; i < files.size(); ++i)
    for (const auto& f : needs[i])
      if (const Status& flushed = flushes.at(f); !flushed) {
        statuses[i] = flushed;
        break;
      }
  return statuses;
}

Result<std::string> read_small_file(const fs::path& path, std::uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(ErrorCode::io, "cannot open " + path.string() + ": " + errno_text());
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(ErrorCode::io, "cannot read " + path.string() + ": not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return fail(ErrorCode::io, "cannot read " + path.string() + ": larger than " +
                                   std::to_string(max_bytes) + " bytes");
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() + 4096);  // it grew since fstat
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_text();
      ::close(fd);
      return fail(ErrorCode::io, "cannot read " + path.string() + ": " + why);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got > max_bytes) {
      ::close(fd);
      return fail(ErrorCode::io, "cannot read " + path.string() + ": larger than " +
                                     std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  out.resize(got);
  return out;
}

Status check_secret_file(const fs::path& path, std::uint64_t max_bytes) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    return fail(ErrorCode::key, "cannot read key file " + path.string() + ": " + errno_text());
  if (!S_ISREG(st.st_mode))
    return fail(ErrorCode::key, "key file " + path.string() + " is not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return fail(ErrorCode::key, "key file " + path.string() + " is larger than a key file can be (" +
                                    std::to_string(st.st_size) + " bytes, at most " +
                                    std::to_string(max_bytes) + ")");
  static std::mutex mutex;
  static std::set<std::string> warned;  // once per file and process, not per thread
  const std::lock_guard lock(mutex);
  if ((st.st_mode & 077) != 0 && warned.insert(path.string()).second) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    warn(std::string("UNPROTECTED KEY FILE: permissions ") + mode + " for '" + path.string() +
         "' are too open; other users may read or change it. It is used, but restrict it: "
         "chmod 600 '" + path.string() + "'");
  }
  return {};
}

}  // namespace radguard
