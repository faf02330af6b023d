#pragma once
// Outputs are published by an explicit commit: written under a temporary name in the
// destination folder, then renamed into place. A crash, an error or an exception
// leaves either the old file or the new one, never half of one.
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
  static Result<PendingFile> create(const std::filesystem::path& destination);

  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&&) = delete;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~PendingFile();

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& destination() const { return destination_; }

  // Sets the permission bits when given (otherwise the file keeps those it was created
  // with) and renames the temporary file over the destination. After success the object
  // owns nothing. Fails with ErrorCode::io.
  Status commit(std::optional<std::filesystem::perms> perms = std::nullopt);

 private:
  PendingFile(std::filesystem::path temp, std::filesystem::path destination)
      : temp_(std::move(temp)), destination_(std::move(destination)) {}
  std::filesystem::path temp_;
  std::filesystem::path destination_;
};

// Writes `bytes` to `destination` atomically; the file is created with the given permissions
// (never wider: the umask may narrow them).
Status write_file_atomically(const std::filesystem::path& destination, std::string_view bytes,
                             std::filesystem::perms perms);

// Reads a whole (small) file. Fails with ErrorCode::io naming the path.
Result<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace radguard
