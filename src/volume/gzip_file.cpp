#include "volume/gzip_file.hpp"

#include <zlib.h>

#include <memory>

namespace radguard::volume {

namespace {
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }
}  // namespace

Status stream_maybe_gzipped(const std::filesystem::path& path, std::uint64_t max_bytes,
                            const std::function<bool(std::string_view)>& sink) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (!file) return fail(ErrorCode::io, path.string() + ": cannot open");
  std::string chunk(1 << 20, '\0');
  std::uint64_t total = 0;
  for (;;) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) return fail(ErrorCode::io, path.string() + ": read error or corrupt gzip stream");
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > max_bytes)
      return fail(ErrorCode::unsupported, path.string() + ": refused: holds (or decompresses to) " +
                                              "more than " + mib(max_bytes));
    if (!sink(std::string_view(chunk.data(), static_cast<std::size_t>(n)))) break;
  }
  return {};
}

Result<std::string> read_maybe_gzipped(const std::filesystem::path& path,
                                       std::uint64_t max_bytes) {
  std::string bytes;
  auto read = stream_maybe_gzipped(path, max_bytes, [&bytes](std::string_view piece) {
    bytes.append(piece);
    return true;
  });
  if (!read) return std::unexpected(read.error());
  return bytes;
}

}  // namespace radguard::volume
