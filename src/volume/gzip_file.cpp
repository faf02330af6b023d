#include "volume/gzip_file.hpp"

#include <zlib.h>

#include <memory>

namespace radguard::volume {

namespace {
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
}  // namespace

Result<std::string> read_maybe_gzipped(const std::filesystem::path& path) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (!file) return fail(ErrorCode::io, path.string() + ": cannot open");
  std::string bytes;
  std::string chunk(1 << 20, '\0');
  for (;;) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) return fail(ErrorCode::io, path.string() + ": read error or corrupt gzip stream");
    if (n == 0) break;
    bytes.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return bytes;
}

}  // namespace radguard::volume
