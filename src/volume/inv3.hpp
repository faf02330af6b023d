#pragma once
// InVesalius 3 project files (.inv3): a gzip-compressed tar holding main.plist (geometry)
// and matrix.dat (the image as raw little-endian voxels, slice-major). Read only, for the
// real head CT packaged in Debian's invesalius-examples.
#include <filesystem>

#include "core/result.hpp"
#include "volume/volume.hpp"

namespace radguard::volume {

// Reads the image of an .inv3 project as an int16 HU volume. InVesalius keeps no patient
// orientation, so the volume is placed as the axial stack InVesalius displays: i to the
// patient's left, j posterior, k superior (checked against the packaged head).
// Fails with ErrorCode::io (unreadable), ::usage (not an InVesalius project) or
// ::unsupported (voxel type other than int16). Thread-safe.
[[nodiscard]] Result<Volume> read_inv3(const std::filesystem::path& path);

}  // namespace radguard::volume
