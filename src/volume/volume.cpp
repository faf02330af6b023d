#include "volume/volume.hpp"

#include <cmath>

namespace radguard::volume {

bool axes_orthonormal(const std::array<Vec3, 3>& axes) {
  constexpr double kTolerance = 1e-3;
  for (int a = 0; a < 3; ++a) {
    for (int b = a; b < 3; ++b) {
      const double dot =
          axes[a][0] * axes[b][0] + axes[a][1] * axes[b][1] + axes[a][2] * axes[b][2];
      if (std::abs(dot - (a == b ? 1.0 : 0.0)) > kTolerance) return false;
    }
  }
  return true;
}

}  // namespace radguard::volume
