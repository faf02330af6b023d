#pragma once
// Reading a whole file that may be gzip-compressed (volumes arrive as .nii, .nii.gz, .inv3).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "volume/volume.hpp"

namespace radguard::volume {

// The most bytes read_maybe_gzipped returns by default: the largest voxel data a reader
// accepts (kMaxVoxels at 4 bytes) plus 16 MiB of header and NIfTI extensions.
inline constexpr std::uint64_t kMaxVolumeFileBytes = kMaxVoxels * 4 + (std::uint64_t{16} << 20);

// The file's bytes, decompressed when it is gzip (gzread passes other files through
// unchanged). Reading stops as soon as more than `max_bytes` would be returned (a small
// .gz can inflate to gigabytes). Fails with ErrorCode::io naming the file (unreadable,
// corrupt compression), ErrorCode::unsupported when it holds more than `max_bytes`.
// Thread-safe.
[[nodiscard]] Result<std::string> read_maybe_gzipped(const std::filesystem::path& path,
                                                     std::uint64_t max_bytes = kMaxVolumeFileBytes);

// Reads the file like read_maybe_gzipped but hands the bytes to `sink` in pieces (at most
// 1 MiB each) without keeping them; stops when `sink` returns false or after `max_bytes`
// (then fails with ErrorCode::unsupported). Fails with ErrorCode::io as above.
[[nodiscard]] Status stream_maybe_gzipped(const std::filesystem::path& path, std::uint64_t max_bytes,
                            const std::function<bool(std::string_view)>& sink);

}  // namespace radguard::volume
