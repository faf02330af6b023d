#pragma once
// Zip files in and out (libarchive), for `radguard share`.
#include <filesystem>
#include <vector>

#include "core/result.hpp"

namespace radguard::share {

// True when `path` is a regular file starting with a zip signature.
bool is_zip(const std::filesystem::path& path);

// Extracts the regular files of a zip into `folder` (which must exist), refusing entries
// that climb out of it (absolute paths, "..", links). Stops with ErrorCode::unsupported once
// more than `max_bytes` have been written in all (what an entry declares is not trusted: a
// zip bomb lies). Fails with ErrorCode::malformed_dicom (sic: an unreadable archive is an
// unreadable input) or ErrorCode::io.
[[nodiscard]] Status extract_zip(const std::filesystem::path& zip,
                                 const std::filesystem::path& folder, std::uint64_t max_bytes);

// Writes every regular file under `folder` (relative names, sorted) into a new zip at `zip`.
[[nodiscard]] Status write_zip(const std::filesystem::path& folder,
                               const std::filesystem::path& zip);

// A PNG (8-bit RGB, rows top to bottom) as bytes.
std::string encode_png(int width, int height, const std::vector<std::uint8_t>& rgb);

}  // namespace radguard::share
