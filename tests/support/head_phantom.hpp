#pragma once
// Generated head phantoms for the defacing tests: an ellipsoid head with skin, skull, brain
// and face features (nose, brow, eye sockets with eyes, lips, chin), placed in patient space
// by an arbitrary voxel grid so the same head can be scanned in any orientation.
#include <array>
#include <cstdint>
#include <vector>

#include "volume/volume.hpp"

namespace radguard::testing {

enum class PhantomContrast : std::uint8_t { ct, mr };

struct HeadPhantom {
  volume::Volume volume;
  std::vector<std::uint8_t> brain;      // 1 where the voxel centre lies in the brain
  std::vector<std::uint8_t> nose;       // 1 where the voxel centre lies in the nose
  std::vector<std::uint8_t> eyes;       // 1 where the voxel centre lies in an eyeball
  std::vector<std::uint8_t> scalp_top;  // skin or skull 90 mm or more above the nose tip
};

// LPS position of the nose tip of every phantom.
inline constexpr volume::Vec3 kPhantomNoseTip{0.0, -117.0, -25.0};

// A phantom sampled on `dims` voxels of `spacing` mm along `axes`, centred on the head.
HeadPhantom make_head_phantom(PhantomContrast contrast, std::array<int, 3> dims,
                              volume::Vec3 spacing, std::array<volume::Vec3, 3> axes);

}  // namespace radguard::testing
