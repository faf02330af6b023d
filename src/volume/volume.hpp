#pragma once
// A 3D scalar volume placed in patient space, the common currency of the volume readers and
// the defacing stage. Coordinates follow DICOM: LPS (x to the patient's left, y posterior,
// z superior), millimetres.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace radguard::volume {

// How voxel values were stored on disk; writers convert back to it. Every listed type
// round-trips exactly through float (int32 only within +-2^24, checked by the readers).
enum class VoxelType : std::uint8_t { uint8, int16, uint16, int32, float32 };

using Vec3 = std::array<double, 3>;

// The most voxels a volume may have: 64 Mi (a 512 x 512 x 256 CT). Defacing holds the
// voxels as float plus masks and renderings, so this keeps a whole deface run under 1 GB
// whatever a file declares (docs/reliability.md). The readers and the DICOM series assembly
// refuse larger volumes.
inline constexpr std::uint64_t kMaxVoxels = std::uint64_t{64} << 20;

struct Volume {
  std::array<int, 3> dims{0, 0, 0};  // voxels along i (fastest), j, k
  Vec3 spacing{1.0, 1.0, 1.0};       // millimetres between voxel centres along i, j, k
  std::array<Vec3, 3> axes{Vec3{1, 0, 0}, Vec3{0, 1, 0},
                           Vec3{0, 0, 1}};  // unit LPS direction of i, j, k
  Vec3 origin{0.0, 0.0, 0.0};               // LPS position of voxel (0,0,0)'s centre
  VoxelType stored_type = VoxelType::int16;
  // Stored values; physical value = stored * value_slope + value_intercept (HU for CT).
  double value_slope = 1.0;
  double value_intercept = 0.0;
  std::vector<float> voxels;  // i fastest, then j, then k

  std::size_t voxel_count() const {
    return static_cast<std::size_t>(dims[0]) * static_cast<std::size_t>(dims[1]) *
           static_cast<std::size_t>(dims[2]);
  }
  std::size_t index(int i, int j, int k) const {
    return static_cast<std::size_t>(i) +
           static_cast<std::size_t>(dims[0]) *
               (static_cast<std::size_t>(j) +
                static_cast<std::size_t>(dims[1]) * static_cast<std::size_t>(k));
  }
  // LPS position of a (possibly fractional) voxel index.
  Vec3 to_patient(double i, double j, double k) const {
    Vec3 p = origin;
    for (int c = 0; c < 3; ++c)
      p[c] +=
          axes[0][c] * spacing[0] * i + axes[1][c] * spacing[1] * j + axes[2][c] * spacing[2] * k;
    return p;
  }
  // Fractional voxel index of an LPS position (inverse of to_patient). Assumes the axes are
  // orthonormal, which the readers check.
  Vec3 to_index(const Vec3& p) const {
    Vec3 d{p[0] - origin[0], p[1] - origin[1], p[2] - origin[2]};
    Vec3 r{};
    for (int a = 0; a < 3; ++a)
      r[a] = (axes[a][0] * d[0] + axes[a][1] * d[1] + axes[a][2] * d[2]) / spacing[a];
    return r;
  }
};

// True when the axes are unit length and mutually orthogonal (within a small tolerance).
bool axes_orthonormal(const std::array<Vec3, 3>& axes);

}  // namespace radguard::volume
