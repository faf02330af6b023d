#include "support/head_phantom.hpp"

#include <cmath>

namespace radguard::testing {

namespace {

// Inside the ellipsoid centred at c (LPS) with semi-axes s (L, P, S).
bool in(const volume::Vec3& p, volume::Vec3 c, volume::Vec3 s) {
  double sum = 0;
  for (int a = 0; a < 3; ++a) {
    const double d = (p[a] - c[a]) / s[a];
    sum += d * d;
  }
  return sum <= 1.0;
}

}  // namespace

HeadPhantom make_head_phantom(PhantomContrast contrast, std::array<int, 3> dims,
                              volume::Vec3 spacing, std::array<volume::Vec3, 3> axes) {
  HeadPhantom ph;
  volume::Volume& v = ph.volume;
  v.dims = dims;
  v.spacing = spacing;
  v.axes = axes;
  v.stored_type = volume::VoxelType::int16;
  // Origin so that the grid's centre is at (0, 0, -10): the head spans z -130..110.
  const volume::Vec3 centre{0.0, 0.0, -10.0};
  const auto half = v.to_patient((dims[0] - 1) / 2.0, (dims[1] - 1) / 2.0, (dims[2] - 1) / 2.0);
  for (int a = 0; a < 3; ++a) v.origin[a] = centre[a] - half[a];
  v.voxels.assign(v.voxel_count(), 0.0f);
  ph.brain.assign(v.voxel_count(), 0);
  ph.nose.assign(v.voxel_count(), 0);
  ph.eyes.assign(v.voxel_count(), 0);
  ph.scalp_top.assign(v.voxel_count(), 0);

  const bool ct = contrast == PhantomContrast::ct;
  const float air = ct ? -1000.0f : 0.0f;
  const float soft = ct ? 40.0f : 120.0f;
  const float bone = ct ? 1000.0f : 20.0f;
  const float csf = ct ? 10.0f : 40.0f;
  const float brain = ct ? 33.0f : 90.0f;
  const float eye = ct ? 15.0f : 60.0f;

  for (int k = 0; k < dims[2]; ++k)
    for (int j = 0; j < dims[1]; ++j)
      for (int i = 0; i < dims[0]; ++i) {
        const auto p = v.to_patient(i, j, k);
        const std::size_t n = v.index(i, j, k);
        float value = air;
        const bool head = in(p, {0, 0, 0}, {75, 95, 110});
        const bool neck = p[2] < -60 && p[2] > -130 && in({p[0], p[1], 0}, {0, 10, 0}, {55, 60, 1});
        const bool face_parts = in(p, {0, -100, -25}, {10, 17, 25}) ||  // nose
                                in(p, {0, -88, 20}, {45, 8, 7}) ||      // brow ridge
                                in(p, {0, -80, -60}, {25, 9, 8}) ||     // lips
                                in(p, {0, -70, -88}, {22, 12, 12});     // chin
        if (head || neck || face_parts) value = soft;
        // The cranium sits behind the face: its front is 20 mm behind the forehead skin.
        // Below 14 mm and in front of y = -40 lie the orbits, not the cranial cavity: a bone
        // roof (z 10-14) and a back wall (y -44 to -40) close it there, as the orbital roofs
        // and the sphenoid do.
        const bool outer = in(p, {0, 8, 0}, {69, 82, 104}), inner = in(p, {0, 8, 0}, {63, 76, 98});
        const bool orbit_zone = p[2] < 14 && p[1] < -40;
        if (!orbit_zone) {
          if (outer && !inner) value = bone;
          if (inner) value = csf;
        } else if (outer && (p[1] > -44 || p[2] > 10)) {
          value = bone;
        }
        // The frontal lobes sit above the orbital roofs: in front, below 14 mm, the brain
        // stops 40 mm behind the nasion's plane (the orbits are there).
        const bool is_brain = in(p, {0, 12, 20}, {58, 70, 75}) && !(p[2] < 14 && p[1] < -40);
        if (is_brain) value = brain;
        for (double side : {-32.0, 32.0}) {
          if (in(p, {side, -95, 2}, {16, 7, 12})) value = air;  // eye socket, in front of the eye
          if (in(p, {side, -82, 0}, {11, 11, 11})) {
            value = eye;
            ph.eyes[n] = 1;
          }
        }
        if (ct)
          value += static_cast<float>(((i * 7 + j * 13 + k * 29) % 11) - 5);  // a little texture
        v.voxels[n] = value;
        ph.brain[n] = is_brain;
        if (is_brain) ph.eyes[n] = 0;
        ph.nose[n] = in(p, {0, -100, -25}, {10, 17, 25}) && p[1] < -97;
        ph.scalp_top[n] = p[2] > 65 && value != air && !is_brain;
      }
  return ph;
}

}  // namespace radguard::testing
