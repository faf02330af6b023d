#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace radguard {

namespace fs = std::filesystem;

Result<PendingFile> PendingFile::create(const fs::path& destination) {
  std::error_code ec;
  const fs::path folder = destination.has_parent_path() ? destination.parent_path() : fs::path(".");
  fs::create_directories(folder, ec);
  if (ec) return fail(ErrorCode::io, "cannot create folder " + folder.string() + ": " + ec.message());
  std::string pattern = (folder / ".radguard-tmp-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  const int fd = ::mkstemp(buffer.data());
  if (fd < 0) {
    return fail(ErrorCode::io, "cannot create a temporary file in " + folder.string() + ": " +
                                   std::strerror(errno));
  }
  ::close(fd);
  return PendingFile(fs::path(buffer.data()), destination);
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

Status PendingFile::commit(fs::perms perms) {
  std::error_code ec;
  fs::permissions(temp_, perms, fs::perm_options::replace, ec);
  if (ec) return fail(ErrorCode::io, "cannot set permissions on " + temp_.string() + ": " + ec.message());
  fs::rename(temp_, destination_, ec);
  if (ec) return fail(ErrorCode::io, "cannot publish " + destination_.string() + ": " + ec.message());
  temp_.clear();
  return {};
}

Status write_file_atomically(const fs::path& destination, std::string_view bytes, fs::perms perms) {
  auto pending = PendingFile::create(destination);
  if (!pending) return std::unexpected(pending.error());
  {
    std::ofstream out(pending->temp_path(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return fail(ErrorCode::io, "cannot write " + destination.string());
  }
  return pending->commit(perms);
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
