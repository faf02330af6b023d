#include "core/private_folder.hpp"

#include <cstdlib>
#include <string>
#include <utility>

namespace radguard {

namespace fs = std::filesystem;

Result<PrivateFolder> PrivateFolder::create(const fs::path& parent_in, std::string_view prefix) {
  std::error_code ec;
  const fs::path parent = parent_in.empty() ? fs::temp_directory_path(ec) : parent_in;
  if (ec) return fail(ErrorCode::io, "no temporary folder");
  fs::create_directories(parent, ec);
  std::string pattern = (parent / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)  // mode 0700
    return fail(ErrorCode::io, "cannot create a work folder in " + parent.string());
  return PrivateFolder(fs::path(pattern));
}

PrivateFolder::PrivateFolder(PrivateFolder&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

PrivateFolder& PrivateFolder::operator=(PrivateFolder&& other) noexcept {
  if (this != &other) {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

PrivateFolder::~PrivateFolder() {
  std::error_code ignored;
  if (!path_.empty()) fs::remove_all(path_, ignored);
}

}  // namespace radguard
