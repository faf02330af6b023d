#pragma once
// Internal: the head resampled onto a patient-aligned grid (x left, y posterior, z superior,
// isotropic), where landmarks and renderings are computed whatever the scan's orientation.
#include <cstdint>
#include <vector>

#include "deface/deface.hpp"
#include "volume/volume.hpp"

namespace radguard::deface::detail {

struct HeadGrid {
  int nx = 0, ny = 0, nz = 0;
  double step = 1.0;               // millimetres
  volume::Vec3 origin{};           // LPS of cell (0,0,0)
  std::vector<std::uint8_t> head;  // 1 = head (largest connected part above threshold)

  std::size_t index(int x, int y, int z) const {
    return static_cast<std::size_t>(x) +
           static_cast<std::size_t>(nx) *
               (static_cast<std::size_t>(y) +
                static_cast<std::size_t>(ny) * static_cast<std::size_t>(z));
  }
  bool at(int x, int y, int z) const {
    return x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz && head[index(x, y, z)] != 0;
  }
};

// Samples the volume (nearest neighbour) on a grid covering it, keeps voxels whose physical
// value exceeds `threshold`, and reduces them to the largest 6-connected part.
HeadGrid build_head_grid(const volume::Volume& volume, double threshold);

// Morphological closing of the head by a cube of half-width `radius` cells (dilation, then
// erosion); cells outside the grid are ignored, so a head cut by the field of view keeps its
// edge there.
void close_head(HeadGrid& grid, int radius);

// render_head() on a grid already built (taken by value: the skin closing changes it).
std::vector<Rendering> render_grid(HeadGrid grid);

}  // namespace radguard::deface::detail
