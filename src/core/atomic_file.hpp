#pragma once
// Outputs are published by an explicit commit: written under a temporary name in the
// destination folder, then renamed into place. A crash, an error or an exception
// leaves either the old file or the new one, never half of one.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "core/result.hpp"

namespace radguard {

// A reserved temporary file beside `destination`. Not thread-safe per object; distinct
// objects may be used from distinct threads.
class PendingFile {
 public:
  // Reserves a unique temporary name in destination's folder (creating the folder if
  // needed); the caller creates the file under that name. The file is not created here: a
  // file created, closed and then reopened with O_TRUNC makes ext4 flush it on close, which
  // costs more than the write. Fails with ErrorCode::io.
  [[nodiscard]] static Result<PendingFile> create(const std::filesystem::path& destination);

  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&&) = delete;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~PendingFile();

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& destination() const { return destination_; }

  // Creates the temporary file with `bytes` and the given permissions (never wider: the
  // umask may narrow them), checking every write and the close, and flushes it (fsync), so
  // commit() does not flush it again. Fails with ErrorCode::io; the temporary file is then
  // removed by the destructor. Call once, before commit().
  [[nodiscard]] Status write_contents(std::string_view bytes, std::filesystem::perms perms);

  // Flushes the temporary file a caller wrote itself (fsync), once it is final: commit() then
  // does not flush it again. A caller that publishes under a lock flushes here, before taking
  // it, so that the disk's wait is not serialised. Writing the file after this is a bug: its
  // new bytes would be published unflushed. Fails with ErrorCode::io (a write error the
  // kernel saw late).
  [[nodiscard]] Status flush();

  // What commit() does when the destination already exists.
  enum class Existing : std::uint8_t {
    replace,            // the new file replaces it (reports, manifests, a file signed in place)
    keep_if_different,  // identical content: nothing to do; different: refused (conflict)
  };

  // Makes the temporary file durable and publishes it: fsync of the file unless
  // write_contents() or flush() did (a write error the kernel saw late fails here), refusal of an empty file (no radguard output is empty:
  // a writer that failed silently), the permission bits when given (otherwise the file keeps
  // those it was created with), the rename, then fsync of the folder so the new name
  // survives a crash. After success the object owns nothing. Fails with ErrorCode::io, or
  // ErrorCode::conflict when `existing` is keep_if_different and a different file is there.
  // With FolderSync::deferred the folder is not flushed here: the caller flushes it later
  // (sync_folder), once for many files (a batch flushes each output folder at its end).
  enum class FolderSync : std::uint8_t { now, deferred };
  [[nodiscard]] Status commit(std::optional<std::filesystem::perms> perms = std::nullopt,
                              Existing existing = Existing::replace,
                              FolderSync folder_sync = FolderSync::now);

 private:
  PendingFile(std::filesystem::path temp, std::filesystem::path destination)
      : temp_(std::move(temp)), destination_(std::move(destination)) {}
  std::filesystem::path temp_;
  std::filesystem::path destination_;
  bool flushed_ = false;  // the temporary file's bytes reached the disk (fsync succeeded)
};

// Flushes a folder's entries (fsync), so names renamed into it survive a crash. Fails with
// ErrorCode::io.
[[nodiscard]] Status sync_folder(const std::filesystem::path& folder);

// Temporary files are named ".radguard-tmp-<host>-<pid>-<random>-<n>" (host: 8 hex digits
// of a hash of the host name). Removes those under `folder` that a killed run left: made on
// this host by a process that no longer exists, or older than a day whatever made them
// (another host's run never takes that long to publish a file). Files of live processes and
// anything not of this naming are left alone. Returns how many were removed.
// A temporary lies in its destination's folder (PendingFile::create), so a run that knows
// the folders its outputs go to may look in those alone (FolderScan::this_folder, one
// listing each) instead of the whole tree below (FolderScan::recursive): a shard of a large
// release does, and the whole tree is walked once when the shards are brought together.
enum class FolderScan : std::uint8_t { recursive, this_folder };
std::size_t remove_stale_temporaries(const std::filesystem::path& folder,
                                     FolderScan scan = FolderScan::recursive);

// Whether a temporary file name of the form above is stale (see remove_stale_temporaries).
bool is_stale_temporary(const std::filesystem::path& path);

// Writes `bytes` to `destination` atomically; the file is created with the given permissions
// (never wider: the umask may narrow them).
[[nodiscard]] Status write_file_atomically(const std::filesystem::path& destination,
                                           std::string_view bytes, std::filesystem::perms perms);

// Reads a whole (small) file. It must be a regular file of at most `max_bytes` (a device such
// as /dev/zero, a FIFO or a huge file is refused at once). Fails with ErrorCode::io naming
// the path.
[[nodiscard]] Result<std::string> read_small_file(const std::filesystem::path& path,
                                                  std::uint64_t max_bytes = 256ULL << 20);

// Checks a file holding a secret (a pseudonym key, a signing key) before it is read: it must
// be a regular file of at most `max_bytes`; a file that users other than its owner may read
// or write gets a warning (like ssh's). Fails with ErrorCode::key naming the path.
[[nodiscard]] Status check_secret_file(const std::filesystem::path& path, std::uint64_t max_bytes);

}  // namespace radguard
