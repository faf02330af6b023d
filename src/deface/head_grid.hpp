#pragma once
// Internal: the head resampled onto a patient-aligned grid (x left, y posterior, z superior,
// isotropic), where landmarks and renderings are computed whatever the scan's orientation.
#include <cstdint>
#include <string>
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

// One view's depth buffer: per pixel (row 0 superior), the distance in mm from the camera
// plane to the skin surface, -1 where the ray misses the head.
struct DepthMap {
  std::string view;
  int width = 0, height = 0;
  double pixel_mm = 1.0;
  std::vector<float> depth_mm;
  float at(int col, int row) const {
    if (col < 0 || row < 0 || col >= width || row >= height) return -1.0f;
    return depth_mm[static_cast<std::size_t>(row) * width + col];
  }
};

// render_head() on a grid already built (taken by value: the skin closing changes it); fills
// `depths` (when given) with each view's depth buffer.
std::vector<Rendering> render_grid(HeadGrid grid, std::vector<DepthMap>* depths = nullptr);

// The relief found on one view's depth buffer (the geometric face evidence), and on every
// frontal view of a set (face_found set from it; no detections).
ReliefView measure_relief(const DepthMap& map);
FaceCheck relief_of(const std::vector<DepthMap>& maps);

}  // namespace radguard::deface::detail
