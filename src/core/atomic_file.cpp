#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace radguard {

namespace fs = std::filesystem;

namespace {

// A name no other process or thread will pick: a per-process random prefix, the process
// id, and a counter.
std::string unique_suffix() {
  static const std::string prefix = [] {
    std::random_device device;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08x%08x-%d", device(), device(), static_cast<int>(::getpid()));
    return std::string(buf);
  }();
  static std::atomic<unsigned long long> counter{0};
  return prefix + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace

Result<PendingFile> PendingFile::create(const fs::path& destination) {
  std::error_code ec;
  const fs::path folder = destination.has_parent_path() ? destination.parent_path() : fs::path(".");
  fs::create_directories(folder, ec);
  if (ec)
    return fail(ErrorCode::io, "cannot create folder " + folder.string() + ": " + ec.message());
  return PendingFile(folder / (".radguard-tmp-" + unique_suffix()), destination);
}

PendingFile::PendingFile(PendingFile&& other) noexcept
    : temp_(std::move(other.temp_)), destination_(std::move(other.destination_)) {
  other.temp_.clear();
}

PendingFile::~PendingFile() {
  if (!temp_.empty()) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
  }
}

Status PendingFile::commit(std::optional<fs::perms> perms) {
  std::error_code ec;
  if (perms) {
    fs::permissions(temp_, *perms, fs::perm_options::replace, ec);
    if (ec)
      return fail(ErrorCode::io,
                  "cannot set permissions on " + temp_.string() + ": " + ec.message());
  }
  fs::rename(temp_, destination_, ec);
  if (ec)
    return fail(ErrorCode::io, "cannot publish " + destination_.string() + ": " + ec.message());
  temp_.clear();
  return {};
}

Status write_file_atomically(const fs::path& destination, std::string_view bytes, fs::perms perms) {
  auto pending = PendingFile::create(destination);
  if (!pending) return std::unexpected(pending.error());
  const int fd = ::open(pending->temp_path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        static_cast<mode_t>(perms));
  if (fd < 0)
    return fail(ErrorCode::io,
                "cannot create " + destination.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail(ErrorCode::io,
                  "cannot write " + destination.string() + ": " + std::strerror(errno));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return fail(ErrorCode::io, "cannot write " + destination.string());
  return pending->commit();
}

Result<std::string> read_small_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::io, "cannot open " + path.string() + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::io, "cannot read " + path.string());
  return buffer.str();
}

}  // namespace radguard
