#include "serve/guard.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

namespace radguard::serve {

namespace {

std::string lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

struct ReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

}  // namespace

bool host_allowed(std::string_view host, std::uint16_t port) {
  const std::string h = lowered(trimmed(host));
  const std::string p = ":" + std::to_string(port);
  return h == "127.0.0.1" + p || h == "localhost" + p;
}

bool origin_allowed(std::string_view origin, std::uint16_t port) {
  if (origin.empty()) return true;
  const std::string o = lowered(trimmed(origin));
  const std::string p = ":" + std::to_string(port);
  return o == "http://127.0.0.1" + p || o == "http://localhost" + p;
}

bool fetch_site_allowed(std::string_view fetch_site) {
  const std::string s = lowered(trimmed(fetch_site));
  return s.empty() || s == "same-origin" || s == "none";
}

bool same_token(std::string_view given, std::string_view token) {
  if (given.empty() || token.empty()) return false;
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

std::string bearer_token(std::string_view authorization) {
  const std::string_view a = trimmed(authorization);
  if (a.size() < 7 || lowered(a.substr(0, 7)) != "bearer ") return {};
  return std::string(trimmed(a.substr(7)));
}

std::string cookie_value(std::string_view cookie_header, std::string_view name) {
  std::string_view rest = cookie_header;
  while (!rest.empty()) {
    const std::size_t end = rest.find(';');
    const std::string_view pair = trimmed(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && trimmed(pair.substr(0, eq)) == name)
      return std::string(trimmed(pair.substr(eq + 1)));
  }
  return {};
}

bool upload_name_allowed(std::string_view name) {
  if (name.empty() || name.size() > 1024) return false;
  for (const char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  if (name.front() == '/' || name.front() == '\\') return false;
  if (name.size() >= 2 && name[1] == ':') return false;  // C:\, C:x
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find_first_of("/\\", start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

Status check_zip(const std::filesystem::path& zip, std::uint64_t max_bytes) {
  std::unique_ptr<archive, ReadCloser> reader(archive_read_new());
  if (!reader) return fail(ErrorCode::internal, "libarchive cannot start");
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_filename(reader.get(), zip.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(ErrorCode::malformed_dicom, "the zip file cannot be read");
  std::uint64_t total = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return fail(ErrorCode::malformed_dicom, "the zip file is damaged");
    const char* name = archive_entry_pathname(entry);
    if (name == nullptr || !upload_name_allowed(name))
      return fail(ErrorCode::policy,
                  "the zip file holds a file whose name points outside the zip (a trick used "
                  "to overwrite files on a computer): it was refused and nothing was done");
    const auto type = archive_entry_filetype(entry);
    if (type != AE_IFREG && type != AE_IFDIR)
      return fail(ErrorCode::policy, "the zip file holds a link to another place on the computer: it was refused");
    if (archive_entry_hardlink(entry) != nullptr)
      return fail(ErrorCode::policy, "the zip file holds a link to another file: it was refused");
    if (type == AE_IFREG) {
      const la_int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : -1;
      if (size < 0) return fail(ErrorCode::policy, "the zip file does not say how large it is");
      total += static_cast<std::uint64_t>(size);
      if (total > max_bytes)
        return fail(ErrorCode::policy, "the zip file unpacks to more than this page accepts: it was refused");
    }
    archive_read_data_skip(reader.get());
  }
  return {};
}

}  // namespace radguard::serve
