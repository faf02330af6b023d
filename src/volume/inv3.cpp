#include "volume/inv3.hpp"

#include <zlib.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "volume/gzip_file.hpp"

namespace radguard::volume {

namespace {

// Members of a ustar archive by base name (the project sits in one temporary folder).
std::map<std::string, std::string_view> tar_members(const std::string& tar) {
  std::map<std::string, std::string_view> members;
  std::size_t pos = 0;
  while (pos + 512 <= tar.size()) {
    const char* h = tar.data() + pos;
    if (h[0] == '\0') break;
    const std::string name(h, strnlen(h, 100));
    const std::string size_field(h + 124, strnlen(h + 124, 12));
    std::size_t size = 0;
    for (char c : size_field)
      if (c >= '0' && c <= '7') size = size * 8 + static_cast<std::size_t>(c - '0');
    pos += 512;
    if (pos + size > tar.size()) break;
    const char type = h[156];
    if (type == '0' || type == '\0') {
      const auto slash = name.rfind('/');
      members[slash == std::string::npos ? name : name.substr(slash + 1)] =
          std::string_view(tar).substr(pos, size);
    }
    pos += (size + 511) / 512 * 512;
  }
  return members;
}

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
  auto tar = read_maybe_gzipped(path);
  if (!tar) return std::unexpected(tar.error());
  const auto members = tar_members(*tar);
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

  Volume v;
  // numpy shape is (slices, rows, columns); our i is the fastest-varying (columns).
  v.dims = {static_cast<int>(shape[2]), static_cast<int>(shape[1]), static_cast<int>(shape[0])};
  v.spacing = {spacing[0], spacing[1], spacing[2]};
  for (int a = 0; a < 3; ++a)
    if (v.dims[a] < 1 || !(v.spacing[a] > 0))
      return fail(ErrorCode::usage, name + ": bad matrix geometry");
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
