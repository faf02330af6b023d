#include "volume/inv3.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "volume/gzip_file.hpp"

namespace radguard::volume {

namespace {

constexpr std::uint64_t kMaxPlistBytes = std::uint64_t{1} << 20;
// The whole project as it inflates, masks and surfaces included (only read past): a bound
// on time, not on memory (Debian's example head is 44 MiB).
constexpr std::uint64_t kMaxProjectBytes = std::uint64_t{2} << 30;

// The members of a ustar archive that read_inv3 needs, kept by base name while the archive
// streams past (the project sits in one temporary folder); everything else (masks, surfaces:
// most of a project) is skipped without being held. A member cut short by the end of the
// archive is dropped.
class TarMembers {
 public:
  // `wanted` says whether a member (by base name, with the names kept so far) is kept, and
  // how large it may be (0: not kept).
  using Wanted = std::function<std::uint64_t(const std::string& name,
                                             const std::map<std::string, std::string>& kept)>;
  explicit TarMembers(Wanted wanted) : wanted_(std::move(wanted)) {}

  // Takes the next bytes of the archive; false once the archive has ended or failed.
  bool feed(std::string_view bytes) {
    while (!bytes.empty() && !ended_) {
      if (remaining_ > 0) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
        if (current_) current_->append(bytes.substr(0, n));
        remaining_ -= n;
        bytes.remove_prefix(n);
        if (remaining_ == 0) current_ = nullptr;
      } else if (padding_ > 0) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(padding_, bytes.size()));
        padding_ -= n;
        bytes.remove_prefix(n);
      } else {
        const std::size_t n = std::min(std::size_t{512} - header_.size(), bytes.size());
        header_.append(bytes.substr(0, n));
        bytes.remove_prefix(n);
        if (header_.size() == 512) start_member();
      }
    }
    return !ended_;
  }

  // The members kept; call once the archive has been fed.
  std::map<std::string, std::string> finish() {
    if (current_) kept_.erase(current_name_);  // cut short
    return std::move(kept_);
  }
  const std::string& error() const { return error_; }

 private:
  void start_member() {
    const char* h = header_.data();
    if (h[0] == '\0') {
      ended_ = true;  // the archive's end (two zero blocks; one is enough here)
      return;
    }
    const std::string name(h, strnlen(h, 100));
    std::uint64_t size = 0;
    for (const char c : std::string_view(h + 124, strnlen(h + 124, 12)))
      if (c >= '0' && c <= '7') size = size * 8 + static_cast<std::uint64_t>(c - '0');
    const char type = h[156];
    header_.clear();
    remaining_ = size;
    padding_ = (512 - size % 512) % 512;
    current_ = nullptr;
    if (type != '0' && type != '\0') return;
    const auto slash = name.rfind('/');
    current_name_ = slash == std::string::npos ? name : name.substr(slash + 1);
    const std::uint64_t limit = wanted_(current_name_, kept_);
    if (limit == 0) return;
    if (size > limit) {
      error_ = current_name_ + " is larger than radguard reads (" + std::to_string(size) + " bytes)";
      ended_ = true;
      return;
    }
    current_ = &kept_[current_name_];
    current_->clear();
    current_->reserve(static_cast<std::size_t>(size));
    if (size == 0) current_ = nullptr;
  }

  Wanted wanted_;
  std::map<std::string, std::string> kept_;
  std::string header_;
  std::string current_name_;
  std::string* current_ = nullptr;
  std::uint64_t remaining_ = 0, padding_ = 0;
  bool ended_ = false;
  std::string error_;
};

// The text after <key>name</key> up to the close of the value that follows.
std::string_view plist_value(std::string_view plist, std::string_view key) {
  const std::string tag = "<key>" + std::string(key) + "</key>";
  const auto at = plist.find(tag);
  if (at == std::string_view::npos) return {};
  const auto start = at + tag.size();
  const auto open = plist.find('<', start);
  if (open == std::string_view::npos) return {};
  const auto open_end = plist.find('>', open);
  const std::string element(plist.substr(open + 1, open_end - open - 1));
  const auto close = plist.find("</" + element + ">", open_end);
  if (close == std::string_view::npos) return {};
  return plist.substr(open_end + 1, close - open_end - 1);
}

std::vector<double> plist_numbers(std::string_view array) {
  std::vector<double> out;
  std::size_t pos = 0;
  while ((pos = array.find('>', pos)) != std::string_view::npos) {
    ++pos;
    const auto end = array.find('<', pos);
    if (end == std::string_view::npos) break;
    const std::string text(array.substr(pos, end - pos));
    if (!text.empty() && text.find_first_not_of(" \t\r\n") != std::string::npos) {
      try {
        out.push_back(std::stod(text));
      } catch (...) {
        return {};
      }
    }
    pos = end;
  }
  return out;
}

}  // namespace

Result<Volume> read_inv3(const std::filesystem::path& path) {
  const std::string name = path.string();
  // InVesalius names the matrix matrix.dat; main.plist says so, and when it comes first
  // another name it gives is kept too.
  TarMembers tar([](const std::string& member, const std::map<std::string, std::string>& kept)
                     -> std::uint64_t {
    if (member == "main.plist") return kMaxPlistBytes;
    if (member == "matrix.dat") return kMaxVoxels * 2;
    if (const auto plist = kept.find("main.plist"); plist != kept.end()) {
      const std::string_view matrix = plist_value(plist->second, "matrix");
      if (!member.empty() && plist_value(matrix, "filename") == member) return kMaxVoxels * 2;
    }
    return 0;
  });
  auto streamed = stream_maybe_gzipped(path, kMaxProjectBytes, [&tar](std::string_view bytes) {
    return tar.feed(bytes);
  });
  if (!streamed) return std::unexpected(streamed.error());
  if (!tar.error().empty()) return fail(ErrorCode::unsupported, name + ": refused: " + tar.error());
  const auto members = tar.finish();
  const auto plist_it = members.find("main.plist");
  if (plist_it == members.end())
    return fail(ErrorCode::usage, name + ": not an InVesalius project (no main.plist)");
  const std::string_view plist = plist_it->second;
  const std::string_view matrix = plist_value(plist, "matrix");
  if (plist_value(matrix, "dtype") != "int16")
    return fail(ErrorCode::unsupported, name + ": only int16 InVesalius matrices are supported");
  const std::string filename(plist_value(matrix, "filename"));
  const auto shape = plist_numbers(plist_value(matrix, "shape"));
  const auto spacing = plist_numbers(plist_value(plist, "spacing"));
  if (shape.size() != 3 || spacing.size() != 3)
    return fail(ErrorCode::usage, name + ": main.plist lacks the matrix shape or spacing");
  const auto data_it = members.find(filename);
  if (data_it == members.end())
    return fail(ErrorCode::usage, name + ": the matrix file is missing");
  // Whole numbers a NIfTI header can carry (deface writes one), and not more voxels than
  // radguard reads; finite spacings.
  std::uint64_t voxels = 1;
  for (int a = 0; a < 3; ++a) {
    if (!(shape[a] >= 1 && shape[a] <= 32767 && shape[a] == std::floor(shape[a])) ||
        !(spacing[a] > 0 && std::isfinite(spacing[a])))
      return fail(ErrorCode::usage, name + ": bad matrix geometry");
    voxels *= static_cast<std::uint64_t>(shape[a]);
  }
  if (voxels > kMaxVoxels)
    return fail(ErrorCode::unsupported, name + ": refused: " + std::to_string(voxels) +
                                            " voxels, more than the " + std::to_string(kMaxVoxels) +
                                            " radguard reads");

  Volume v;
  // numpy shape is (slices, rows, columns); our i is the fastest-varying (columns).
  v.dims = {static_cast<int>(shape[2]), static_cast<int>(shape[1]), static_cast<int>(shape[0])};
  v.spacing = {spacing[0], spacing[1], spacing[2]};
  // Rows run posterior to anterior and columns left to right in the stored matrix (seen in
  // the packaged head: the nose is at high row numbers); keep the frame right-handed.
  v.axes = {Vec3{-1, 0, 0}, Vec3{0, -1, 0}, Vec3{0, 0, 1}};
  v.stored_type = VoxelType::int16;
  const std::string_view data = data_it->second;
  if (data.size() < v.voxel_count() * 2) return fail(ErrorCode::usage, name + ": truncated matrix");
  v.voxels.resize(v.voxel_count());
  for (std::size_t n = 0; n < v.voxels.size(); ++n) {
    std::int16_t x;
    std::memcpy(&x, data.data() + 2 * n, 2);
    v.voxels[n] = static_cast<float>(x);
  }
  return v;
}

}  // namespace radguard::volume
