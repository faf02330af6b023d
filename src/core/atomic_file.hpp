#pragma once
// Outputs are published by an explicit commit: written under a temporary name in the
// destination folder, then renamed into place. A crash, an error or an exception
// leaves either the old file or the new one, never half of one.
#include <filesystem>
#include <string_view>

#include "core/result.hpp"

namespace radguard {

// A reserved temporary file beside `destination`. Not thread-safe per object; distinct
// objects may be used from distinct threads.
class PendingFile {
 public:
  // Reserves a new, empty temporary file (mode 0600) in destination's folder, creating
  // the folder if needed. Fails with ErrorCode::io.
  static Result<PendingFile> create(const std::filesystem::path& destination);

  PendingFile(PendingFile&& other) noexcept;
  PendingFile& operator=(PendingFile&&) = delete;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  // Removes the temporary file unless commit() succeeded.
  ~PendingFile();

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& destination() const { return destination_; }

  // Sets the final permission bits (default 0644) and renames the temporary file over the
  // destination. After success the object owns nothing. Fails with ErrorCode::io.
  Status commit(std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                std::filesystem::perms::owner_write |
                                                std::filesystem::perms::group_read |
                                                std::filesystem::perms::others_read);

 private:
  PendingFile(std::filesystem::path temp, std::filesystem::path destination)
      : temp_(std::move(temp)), destination_(std::move(destination)) {}
  std::filesystem::path temp_;
  std::filesystem::path destination_;
};

// Writes `bytes` to `destination` atomically with the given permissions.
Status write_file_atomically(const std::filesystem::path& destination, std::string_view bytes,
                             std::filesystem::perms perms);

// Reads a whole (small) file. Fails with ErrorCode::io naming the path.
Result<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace radguard
