#include "share/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <memory>

#include "batch/batch.hpp"

namespace radguard::share {

namespace fs = std::filesystem;

bool is_zip(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  std::array<char, 4> magic{};
  in.read(magic.data(), magic.size());
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

namespace {

struct ReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};

}  // namespace

Status extract_zip(const fs::path& zip, const fs::path& folder, std::uint64_t max_bytes) {
  std::uint64_t written = 0;
  std::unique_ptr<archive, ReadCloser> reader(archive_read_new());
  if (!reader) return fail(ErrorCode::internal, "libarchive cannot start");
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_filename(reader.get(), zip.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(ErrorCode::malformed_dicom, zip.string() + ": not a readable zip file");
  std::size_t index = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return fail(ErrorCode::malformed_dicom, zip.string() + ": damaged zip file");
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    // Entries are written under numbered names in one flat folder per archive: names inside
    // the archive are never used as paths (no climbing out, no odd bytes).
    const fs::path target = folder / ("Z" + std::to_string(++index));
    std::ofstream out(target, std::ios::binary);
    if (!out) return fail(ErrorCode::io, "cannot write " + target.string());
    std::array<char, 1 << 16> buffer{};
    for (;;) {
      const la_ssize_t n = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (n < 0) return fail(ErrorCode::malformed_dicom, zip.string() + ": damaged zip entry");
      if (n == 0) break;
      written += static_cast<std::uint64_t>(n);
      if (written > max_bytes)
        return fail(ErrorCode::unsupported,
                    zip.string() + ": unpacks to more than " + std::to_string(max_bytes >> 20) +
                        " MB; refused");
      out.write(buffer.data(), n);
    }
    if (!out.flush()) return fail(ErrorCode::io, "cannot write " + target.string());
  }
  return {};
}

Status write_zip(const fs::path& folder, const fs::path& zip) {
  const auto listing = batch::list_files(folder);
  if (auto complete = batch::require_complete(listing); !complete)
    return std::unexpected(complete.error());
  std::vector<fs::path> files;
  for (const auto& file : listing.files) files.push_back(fs::relative(file, folder));
  std::sort(files.begin(), files.end());
  std::unique_ptr<archive, WriteCloser> writer(archive_write_new());
  if (!writer) return fail(ErrorCode::internal, "libarchive cannot start");
  archive_write_set_format_zip(writer.get());
  if (archive_write_open_filename(writer.get(), zip.c_str()) != ARCHIVE_OK)
    return fail(ErrorCode::io, "cannot create " + zip.string());
  for (const auto& relative : files) {
    std::ifstream in(folder / relative, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                        &archive_entry_free);
    archive_entry_set_pathname(entry.get(), relative.generic_string().c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(bytes.size()));
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK ||
        archive_write_data(writer.get(), bytes.data(), bytes.size()) !=
            static_cast<la_ssize_t>(bytes.size()))
      return fail(ErrorCode::io, "cannot write " + relative.generic_string() + " into the zip");
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK)
    return fail(ErrorCode::io, "cannot finish " + zip.string());
  return {};
}

namespace {

void put32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xFF);
}

void chunk(std::string& out, const char* type, const std::string& data) {
  put32(out, static_cast<std::uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put32(out, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                                              static_cast<uInt>(body.size()))));
}

}  // namespace

std::string encode_png(int width, int height, const std::vector<std::uint8_t>& rgb) {
  std::string raw;
  raw.reserve(static_cast<std::size_t>(height) * (static_cast<std::size_t>(width) * 3 + 1));
  for (int y = 0; y < height; ++y) {
    raw += '\0';  // filter: none
    raw.append(reinterpret_cast<const char*>(rgb.data()) + static_cast<std::size_t>(y) * width * 3,
               static_cast<std::size_t>(width) * 3);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(size, '\0');
  compress2(reinterpret_cast<Bytef*>(packed.data()), &size,
            reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 6);
  packed.resize(size);
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string header;
  put32(header, static_cast<std::uint32_t>(width));
  put32(header, static_cast<std::uint32_t>(height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, RGB, deflate, no filter, no interlace
  chunk(out, "IHDR", header);
  chunk(out, "IDAT", packed);
  chunk(out, "IEND", "");
  return out;
}

}  // namespace radguard::share
