#include "deface/deface.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <thread>

#include "deface/head_grid.hpp"

namespace radguard::deface {

namespace detail {

HeadGrid build_head_grid(const volume::Volume& v, double threshold) {
  HeadGrid g;
  volume::Vec3 lo{std::numeric_limits<double>::max(), std::numeric_limits<double>::max(),
                  std::numeric_limits<double>::max()};
  volume::Vec3 hi{std::numeric_limits<double>::lowest(), std::numeric_limits<double>::lowest(),
                  std::numeric_limits<double>::lowest()};
  for (int c = 0; c < 8; ++c) {
    const auto p = v.to_patient((c & 1) ? v.dims[0] - 1 : 0, (c & 2) ? v.dims[1] - 1 : 0,
                                (c & 4) ? v.dims[2] - 1 : 0);
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  // Coarser than the scan when the scan is fine: landmarks and renderings need ~1 mm, and
  // this keeps a 512x512x300 CT fast.
  g.step = std::max({1.0, std::min({v.spacing[0], v.spacing[1], v.spacing[2]})});
  const double extent = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  if (extent / g.step > 400) g.step = extent / 400;
  g.origin = lo;
  g.nx = static_cast<int>(std::floor((hi[0] - lo[0]) / g.step)) + 1;
  g.ny = static_cast<int>(std::floor((hi[1] - lo[1]) / g.step)) + 1;
  g.nz = static_cast<int>(std::floor((hi[2] - lo[2]) / g.step)) + 1;
  g.head.assign(static_cast<std::size_t>(g.nx) * g.ny * g.nz, 0);
  const auto raw_threshold = static_cast<float>((threshold - v.value_intercept) / v.value_slope);
  const bool positive_slope = v.value_slope > 0;

  auto sample_slab = [&](int z0, int z1) {
    for (int z = z0; z < z1; ++z) {
      for (int y = 0; y < g.ny; ++y) {
        const volume::Vec3 row{g.origin[0], g.origin[1] + y * g.step, g.origin[2] + z * g.step};
        const auto base = v.to_index(row);
        const auto next = v.to_index({row[0] + g.step, row[1], row[2]});
        const volume::Vec3 d{next[0] - base[0], next[1] - base[1], next[2] - base[2]};
        for (int x = 0; x < g.nx; ++x) {
          // Nearest voxel, rounding halves up as std::lround does for the indices kept (it
          // differs only for the double just below each half) without a libm call per
          // coordinate, which was a tenth of deface()'s time.
          const double fi = base[0] + d[0] * x, fj = base[1] + d[1] * x, fk = base[2] + d[2] * x;
          if (fi <= -0.5 || fj <= -0.5 || fk <= -0.5) continue;
          const long i = static_cast<long>(fi + 0.5), j = static_cast<long>(fj + 0.5),
                     k = static_cast<long>(fk + 0.5);
          if (i >= v.dims[0] || j >= v.dims[1] || k >= v.dims[2]) continue;
          const float value =
              v.voxels[v.index(static_cast<int>(i), static_cast<int>(j), static_cast<int>(k))];
          if (positive_slope ? value > raw_threshold : value < raw_threshold)
            g.head[g.index(x, y, z)] = 1;
        }
      }
    }
  };
  {
    std::jthread second(sample_slab, g.nz / 2, g.nz);
    sample_slab(0, g.nz / 2);
  }

  // Largest 6-connected part: 1 = candidate, 2 = visited, 3 = kept.
  std::vector<std::uint32_t> queue;
  auto flood = [&](std::size_t seed, std::uint8_t from, std::uint8_t to) {
    std::size_t count = 0;
    queue.clear();
    queue.push_back(static_cast<std::uint32_t>(seed));
    g.head[seed] = to;
    const std::size_t sx = 1, sy = static_cast<std::size_t>(g.nx),
                      sz = sy * static_cast<std::size_t>(g.ny);
    while (!queue.empty()) {
      const std::size_t n = queue.back();
      queue.pop_back();
      ++count;
      // 32-bit divisions (the grid has fewer than 2^32 cells): this loop visits every cell.
      const auto n32 = static_cast<std::uint32_t>(n), nx32 = static_cast<std::uint32_t>(g.nx),
                 ny32 = static_cast<std::uint32_t>(g.ny);
      const std::uint32_t column = n32 / nx32;
      const std::size_t x = n32 - column * nx32, y = column % ny32, z = column / ny32;
      auto visit = [&](std::size_t m) {
        if (g.head[m] == from) {
          g.head[m] = to;
          queue.push_back(static_cast<std::uint32_t>(m));
        }
      };
      if (x > 0) visit(n - sx);
      if (x + 1 < static_cast<std::size_t>(g.nx)) visit(n + sx);
      if (y > 0) visit(n - sy);
      if (y + 1 < static_cast<std::size_t>(g.ny)) visit(n + sy);
      if (z > 0) visit(n - sz);
      if (z + 1 < static_cast<std::size_t>(g.nz)) visit(n + sz);
    }
    return count;
  };
  // Make objects solid first: whatever the outside air cannot reach belongs to the object
  // around it. In MR the scalp and the brain are separated by dark skull and CSF, and the
  // brain alone would otherwise win the size contest below.
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const bool border =
            x == 0 || y == 0 || z == 0 || x == g.nx - 1 || y == g.ny - 1 || z == g.nz - 1;
        const std::size_t n = g.index(x, y, z);
        if (border && g.head[n] == 0) flood(n, 0, 4);
      }
  for (auto& c : g.head) c = c == 4 ? 0 : 1;
  std::size_t best = 0, best_seed = 0;
  for (std::size_t n = 0; n < g.head.size(); ++n) {
    if (g.head[n] != 1) continue;
    const std::size_t size = flood(n, 1, 2);
    if (size > best) {
      best = size;
      best_seed = n;
    }
  }
  if (best > 0) flood(best_seed, 2, 3);
  for (auto& c : g.head) c = c == 3 ? 1 : 0;
  return g;
}

}  // namespace detail

namespace {

using detail::HeadGrid;

double physical_min(const volume::Volume& v) {
  const auto [mn, mx] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  return v.value_slope > 0 ? *mn * v.value_slope + v.value_intercept
                           : *mx * v.value_slope + v.value_intercept;
}

// Otsu's threshold on a 256-bin histogram of the physical values.
double otsu(const volume::Volume& v) {
  const auto [mn_it, mx_it] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  const double lo = *mn_it, hi = *mx_it;
  if (!(hi > lo)) return lo * v.value_slope + v.value_intercept;
  std::array<double, 256> hist{};
  const double scale = 255.999 / (hi - lo);
  for (float x : v.voxels) hist[static_cast<std::size_t>((x - lo) * scale)] += 1;
  const double total = static_cast<double>(v.voxels.size());
  double sum_all = 0;
  for (std::size_t b = 0; b < 256; ++b) sum_all += static_cast<double>(b) * hist[b];
  double w0 = 0, sum0 = 0, best = -1;
  std::size_t best_bin = 0;
  for (std::size_t b = 0; b < 255; ++b) {
    w0 += hist[b];
    sum0 += static_cast<double>(b) * hist[b];
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) {
      best = between;
      best_bin = b;
    }
  }
  const double raw = lo + (static_cast<double>(best_bin) + 1.0) / scale;
  return raw * v.value_slope + v.value_intercept;
}

// The skin's threshold for images not in Hounsfield units (MR, or CT rescaled to 0-255):
// Otsu's, unless that lies above 12% of the robust range (2nd to 98th percentile; 3% over a
// masked background), where it has split soft tissue from bone (a rescaled CT: the skull
// would be taken for the skin) or from bright fat.
double skin_threshold(const volume::Volume& v) {
  const double by_otsu = otsu(v);
  const auto [mn_it, mx_it] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  const double lo = *mn_it, hi = *mx_it;
  if (!(hi > lo)) return by_otsu;
  constexpr std::size_t kBins = 4096;
  std::vector<std::size_t> hist(kBins, 0);
  const double scale = (kBins - 0.001) / (hi - lo);
  for (float x : v.voxels) ++hist[static_cast<std::size_t>((x - lo) * scale)];
  auto percentile = [&](double q) {
    const auto target = static_cast<std::size_t>(q * static_cast<double>(v.voxels.size()));
    std::size_t sum = 0;
    for (std::size_t b = 0; b < kBins; ++b) {
      sum += hist[b];
      if (sum > target) return lo + (static_cast<double>(b) + 0.5) / scale;
    }
    return hi;
  };
  // A background set to one value (masked, or a CT rescaled with air at 0) has no noise to
  // stay above: the skin's faint partial-volume edge is kept with 3% of the range.
  std::size_t at_min = 0;
  for (float x : v.voxels) at_min += x == lo;
  std::size_t near_min = 0;  // above the minimum, within 1% of the range
  for (std::size_t b = 0; b <= kBins / 100; ++b) near_min += hist[b];
  near_min -= std::min(near_min, at_min);
  const double n = static_cast<double>(v.voxels.size());
  const bool masked = static_cast<double>(at_min) >= 0.3 * n && static_cast<double>(near_min) < 0.01 * n;
  const double fraction = masked ? 0.03 : 0.12;
  const double raw = percentile(0.02) + fraction * (percentile(0.98) - percentile(0.02));
  const double physical = raw * v.value_slope + v.value_intercept;
  return v.value_slope > 0 ? std::min(by_otsu, physical) : std::max(by_otsu, physical);
}

}  // namespace

double FaceCheck::best_score() const {
  double best = 0;
  for (const auto& d : detections)
    if (d.counted) best = std::max(best, d.best_score);
  return best;
}

std::string_view to_string(Modality modality) {
  switch (modality) {
    case Modality::automatic:
      return "automatic";
    case Modality::ct:
      return "CT";
    case Modality::mr:
      return "MR";
  }
  return "?";
}

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::defaced:
      return "defaced";
    case Verdict::no_face_present:
      return "no_face_present";
  }
  return "?";
}

// The cut, in the sagittal plane: at height h (mm above the nose tip) everything more
// anterior than cut_front(h) is face. Above the nose it hangs from the forehead's most
// anterior point F (the brain is at least 18 mm behind F at brow level and 23 mm at eye
// level in the packaged MR template); below, from the nose tip, deep enough to take the
// nose, lips and chin. See docs/benchmarks.md (Defacing) for the measurements behind the numbers.
namespace {
struct Knot {
  double h;
  double depth;
};
constexpr double kTop = 80.0;
constexpr double kCapMm = 4.0;
// The cap's front is a dome across the head's width at the cut: CutVariant::dome_fraction of the
// half-width, at most kDomeMaxMm, in front of the flat cap (measured in docs/benchmarks.md
// (Defacing): flatter or fuller domes let the frontal cascades fire on some heads after).
constexpr double kDomeMaxMm = 12.0;
constexpr Knot kTipKnots[] = {{-200.0, 95.0}, {-60.0, 55.0}, {0.0, 40.0}, {30.0, 36.0}};

double tip_depth(double h) {
  if (h <= kTipKnots[0].h) return kTipKnots[0].depth;
  for (std::size_t n = 1; n < std::size(kTipKnots); ++n) {
    if (h <= kTipKnots[n].h) {
      const double t = (h - kTipKnots[n - 1].h) / (kTipKnots[n].h - kTipKnots[n - 1].h);
      return kTipKnots[n - 1].depth + t * (kTipKnots[n].depth - kTipKnots[n - 1].depth);
    }
  }
  return kTipKnots[std::size(kTipKnots) - 1].depth;
}

// Anterior coordinate (mm, larger = more anterior) of the cut at height h; +inf above kTop.
// Continuous in h: a step would leave a ledge whose shadow reads as a brow to a detector.
// deepen_mm (escalation, see deface()) moves the cut that much further back at and below the
// nose tip, ramping to nothing at kDeepenTop (below the eyes, in front of no brain).
constexpr double kDeepenTop = 20.0;
// What deface() tries, in order: the standard cut; while a face is still seen after, the cut
// 6 mm deeper below the eyes, then the standard cut under a fuller dome (measured in
// docs/benchmarks.md (Defacing): each releases a phantom the standard cut does not).
constexpr CutVariant kCutsInOrder[] = {CutVariant{},
                                       {.deepen_mm = 6.0, .dome_fraction = 0.2},
                                       {.deepen_mm = 0.0, .dome_fraction = 0.3}};
double cut_front(double h, double tip_a, double forehead_a, double deepen_mm) {
  if (h >= kTop) return std::numeric_limits<double>::infinity();
  if (h >= 60.0) return forehead_a - 10.0 + (h - 60.0);  // tapers out through the forehead skin
  if (h >= 30.0) return forehead_a - 16.0 + 6.0 * (h - 30.0) / 30.0;
  const double deeper = deepen_mm * std::clamp((kDeepenTop - h) / kDeepenTop, 0.0, 1.0);
  return std::min(forehead_a - 16.0, tip_a - tip_depth(h)) - deeper;
}
}  // namespace

Result<FaceRegion> find_face(const volume::Volume& v, Modality modality) {
  return find_face(v, modality, CutVariant{});
}

namespace {

// What find_face() learns about the intact head before it places a cut: computed once per
// volume, so deface()'s escalation and its first rendering do not segment the head again.
struct HeadAnalysis {
  Modality modality = Modality::ct;
  double threshold = 0;
  HeadGrid grid;
  volume::Vec3 nose_tip{};
  double forehead_a = 0;
  // The nasion: the deepest point of the midline profile between the nose tip and the
  // forehead (the eyes lie at about its height, either side).
  double nasion_z = 0;
  double nasion_a = 0;
  // Per grid column (x, z): the anterior coordinate of the head's front (skin) there;
  // -infinity where no head lies in that column.
  std::vector<double> skin_a;
};

Result<HeadAnalysis> analyse_head(const volume::Volume& v, Modality modality) {
  if (v.voxels.empty() || v.voxels.size() != v.voxel_count())
    return fail(ErrorCode::internal, "volume has no voxels");
  HeadAnalysis head;
  if (modality == Modality::automatic)
    modality = physical_min(v) < -500.0 ? Modality::ct : Modality::mr;
  head.modality = modality;
  head.threshold = modality == Modality::ct ? -300.0 : skin_threshold(v);
  head.grid = detail::build_head_grid(v, head.threshold);
  const HeadGrid& g = head.grid;

  int top = -1;
  for (int z = g.nz - 1; z >= 0 && top < 0; --z)
    for (int y = 0; y < g.ny && top < 0; ++y)
      for (int x = 0; x < g.nx; ++x)
        if (g.head[g.index(x, y, z)]) {
          top = z;
          break;
        }
  if (top < 0) return fail(ErrorCode::unsupported, "no head found above the threshold");
  // The nose sits 60-170 mm below the vertex; looking only there keeps a chest or shoulders
  // (more anterior than the nose in a neck scan) out of the search.
  const int z_hi = top - static_cast<int>(50.0 / g.step);
  const int z_lo = std::max(0, top - static_cast<int>(170.0 / g.step));
  int best_y = g.ny;
  for (int z = z_lo; z <= z_hi; ++z)
    for (int y = 0; y < best_y; ++y)
      for (int x = 0; x < g.nx; ++x)
        if (g.head[g.index(x, y, z)]) {
          best_y = y;
          break;
        }
  if (best_y >= g.ny || z_hi <= z_lo)
    return fail(ErrorCode::unsupported, "no face found: the head is too small or cut off");
  // The tip: the lowest of the most anterior cells and those within 10 mm above it (a field
  // of view that clips the face flat, as the packaged MR template's does, touches its front
  // plane at the nose and again at the forehead: the nose is the lower).
  int first_z = z_hi;
  for (int z = z_lo; z <= z_hi && first_z == z_hi; ++z)
    for (int x = 0; x < g.nx; ++x)
      if (g.head[g.index(x, best_y, z)]) {
        first_z = z;
        break;
      }
  const int last_z = std::min(z_hi, first_z + static_cast<int>(std::lround(10.0 / g.step)));
  double sx = 0, sz = 0, count = 0;
  for (int z = first_z; z <= last_z; ++z)
    for (int x = 0; x < g.nx; ++x)
      if (g.head[g.index(x, best_y, z)]) {
        sx += x;
        sz += z;
        count += 1;
      }
  head.nose_tip = {g.origin[0] + sx / count * g.step, g.origin[1] + best_y * g.step,
                   g.origin[2] + sz / count * g.step};

  // The forehead: the most anterior point 60-95 mm above the tip, near the midline.
  const double tip_a = -head.nose_tip[1];
  double forehead_a = tip_a - 22.0;  // typical, for scans that stop below the forehead
  double forehead_z = head.nose_tip[2] + 65.0;
  {
    const int z0 = static_cast<int>(std::lround((head.nose_tip[2] + 60.0 - g.origin[2]) / g.step));
    const int z1 = static_cast<int>(std::lround((head.nose_tip[2] + 95.0 - g.origin[2]) / g.step));
    const int x0 = static_cast<int>(std::lround((head.nose_tip[0] - 40.0 - g.origin[0]) / g.step));
    const int x1 = static_cast<int>(std::lround((head.nose_tip[0] + 40.0 - g.origin[0]) / g.step));
    int best = g.ny, best_z = -1;
    for (int z = std::max(0, z0); z <= std::min(g.nz - 1, z1); ++z)
      for (int x = std::max(0, x0); x <= std::min(g.nx - 1, x1); ++x)
        for (int y = 0; y < best; ++y)
          if (g.head[g.index(x, y, z)]) {
            best = y;
            best_z = z;
            break;
          }
    if (best < g.ny) {
      forehead_a = std::min(tip_a, -(g.origin[1] + best * g.step));
      forehead_z = g.origin[2] + best_z * g.step;
    }
  }
  head.forehead_a = forehead_a;

  head.skin_a.assign(static_cast<std::size_t>(g.nx) * g.nz,
                     -std::numeric_limits<double>::infinity());
  for (int z = 0; z < g.nz; ++z)
    for (int x = 0; x < g.nx; ++x)
      for (int y = 0; y < g.ny; ++y)
        if (g.head[g.index(x, y, z)]) {
          head.skin_a[static_cast<std::size_t>(z) * g.nx + x] = -(g.origin[1] + y * g.step);
          break;
        }
  // The midline profile, 8 mm either side of the nose tip. The nasion is its point deepest
  // under the chord from the nose tip to the forehead point, from 15 mm above the tip up to
  // the forehead point (measured: it falls at the notch between the nasal dorsum and the
  // glabella where there is one, and also finds a face whose forehead recedes).
  head.nasion_z = head.nose_tip[2] + 45.0;
  head.nasion_a = std::min(tip_a, forehead_a) - 10.0;
  {
    const int xm = static_cast<int>(std::lround((head.nose_tip[0] - g.origin[0]) / g.step));
    const int half = std::max(1, static_cast<int>(std::lround(8.0 / g.step)));
    const int z0 = static_cast<int>(std::lround((head.nose_tip[2] + 15.0 - g.origin[2]) / g.step));
    const int z1 = static_cast<int>(
        std::lround((std::min(forehead_z, head.nose_tip[2] + 75.0) - g.origin[2]) / g.step));
    double best = -std::numeric_limits<double>::infinity();
    for (int z = std::max(0, z0); z <= std::min(g.nz - 1, z1); ++z) {
      double front = -std::numeric_limits<double>::infinity();
      for (int x = std::max(0, xm - half); x <= std::min(g.nx - 1, xm + half); ++x)
        front = std::max(front, head.skin_a[static_cast<std::size_t>(z) * g.nx + x]);
      if (!std::isfinite(front)) continue;
      const double zz = g.origin[2] + z * g.step;
      const double t = std::clamp(
          (zz - head.nose_tip[2]) / std::max(1.0, forehead_z - head.nose_tip[2]), 0.0, 1.0);
      const double below = tip_a + t * (forehead_a - tip_a) - front;
      if (below > best) {
        best = below;
        head.nasion_z = zz;
        head.nasion_a = front;
      }
    }
  }
  return head;
}

// The face region of an analysed head for one cut shape.
// The whole-face cut, measured on the packaged MR template (ch2 against its brain mask ch2bet,
// docs/benchmarks.md (Defacing)) and set with margins of 7.5 mm or more in front of its brain:
// - below the nasion, the cut hung from the nose tip (cut_front): nose, lips, jaw and chin;
// - through the orbits, 16-50 mm either side of the midline, from 34 mm below to 20 mm above
//   the nasion: 42 mm behind the nasion at the eyes' level (behind the eyeballs, whose front
//   lies 8-15 mm behind it; the temporal lobes start 60 mm behind it), rising to the eyelids;
//   the frontal lobes sit above the orbital roofs, 25 mm behind the nasion 13 mm above it;
// - on the midline between the orbits, 18 mm behind the nasion (the gyri recti lie 25-36 mm
//   behind it), 8 mm at the top of the band;
// - the brows and the forehead just above them: 10 mm under the skin, never deeper than 12 mm
//   behind the forehead's most anterior point (the frontal lobes lie 18-20 mm behind it),
//   tapering out through the skin 40 mm above the nasion.
double orbit_weight(double u) {
  if (u <= 8.0) return 0.0;
  if (u < 16.0) return (u - 8.0) / 8.0;
  if (u <= 50.0) return 1.0;
  if (u < 62.0) return (62.0 - u) / 12.0;
  return 0.0;
}
double orbit_depth(double hn) {
  if (hn < -34.0 || hn > 20.0) return 0.0;
  if (hn < -22.0) return 42.0 * (hn + 34.0) / 12.0;
  if (hn <= 0.0) return 42.0;
  if (hn <= 12.0) return 42.0 - 22.0 * hn / 12.0;
  return 20.0 * (20.0 - hn) / 8.0;
}
double midline_depth(double hn) {
  if (hn <= 10.0) return 18.0;
  return 18.0 - 10.0 * (hn - 10.0) / 10.0;
}
constexpr double kOrbitBottom = -34.0, kOrbitTop = 20.0, kBrowBottom = 5.0, kBrowTop = 40.0;
double brow_ramp(double hn) {
  if (hn < kBrowBottom || hn > kBrowTop) return 0.0;
  if (hn < 12.0) return (hn - kBrowBottom) / (12.0 - kBrowBottom);
  if (hn <= 25.0) return 1.0;
  return (kBrowTop - hn) / (kBrowTop - 25.0);
}
double brow_weight(double u) {
  if (u <= 50.0) return 1.0;
  if (u < 65.0) return (65.0 - u) / 15.0;
  return 0.0;
}

// Hollows the cut leaves in the face's surface: a groove where the cap meets the brows, the
// notches at the edge of a face its publisher already cut away. Seen from the front they read as
// a pair of orbits, to a person and to the relief evidence, so the cap fills them: per grid
// column of the face (the cut's columns within 62 mm of the midline, from 94 mm below the
// nasion to the top of the brows' band), the surface after the cut is closed along the vertical over
// kHollowMm (a pit whose surface 16 mm above and below is more anterior is filled at least to
// the lower of the two; under a step, the ramp of no_steeper_than()), and what lies between the surface
// and its closing becomes cap, no deeper than kHollowBehindCutMm behind the cut. Only air in
// front of the head is filled: nothing inside moves.
constexpr double kHollowMm = 20.0, kHollowBehindCutMm = 20.0;
struct HollowFill {
  std::vector<double> surface, closed;  // per grid column; -inf where nothing is filled
  double deepest = std::numeric_limits<double>::infinity();
  bool fills(std::size_t c, double anterior) const {
    return !closed.empty() && anterior > surface[c] && anterior <= closed[c];
  }
};

std::vector<double> closed_along_z(const std::vector<double>& field, int nx, int nz, int r) {
  constexpr double kNo = -std::numeric_limits<double>::infinity();
  auto sweep = [&](const std::vector<double>& in, bool dilate) {
    std::vector<double> out(in.size(), kNo);
    for (int x = 0; x < nx; ++x)
      for (int z = 0; z < nz; ++z) {
        double m = dilate ? kNo : -kNo;
        for (int t = std::max(0, z - r); t <= std::min(nz - 1, z + r); ++t) {
          const double f = in[static_cast<std::size_t>(t) * nx + x];
          m = dilate ? std::max(m, f) : std::min(m, f);
        }
        out[static_cast<std::size_t>(z) * nx + x] = m;
      }
    return out;
  };
  return sweep(sweep(field, true), false);
}

// A ledge (the resurfaced brows over the cap, the forehead over a publisher's cut) is no pit,
// but its overhang casts a dark line across the face where the eyes were: below a ledge the
// surface is brought forward to fall back no faster than kLedgeSlope mm per mm of height.
constexpr double kLedgeSlope = 1.0;
std::vector<double> no_steeper_than(std::vector<double> field, int nx, int nz, double per_cell) {
  for (int x = 0; x < nx; ++x) {
    auto at = [&](int z) -> double& { return field[static_cast<std::size_t>(z) * nx + x]; };
    for (int z = 1; z < nz; ++z)
      if (std::isfinite(at(z)) && std::isfinite(at(z - 1))) at(z) = std::max(at(z), at(z - 1) - per_cell);
    for (int z = nz - 2; z >= 0; --z)
      if (std::isfinite(at(z)) && std::isfinite(at(z + 1))) at(z) = std::max(at(z), at(z + 1) - per_cell);
  }
  return field;
}

template <typename Classify>
HollowFill fill_hollows(const HeadGrid& g, const FaceRegion& region,
                        const std::vector<double>& deep, const Classify& classify) {
  constexpr double kNo = -std::numeric_limits<double>::infinity();
  const std::size_t cells = static_cast<std::size_t>(g.nx) * g.nz;
  HollowFill out;
  out.surface.assign(cells, kNo);
  for (int z = 0; z < g.nz; ++z)
    for (int x = 0; x < g.nx; ++x) {
      const std::size_t c = static_cast<std::size_t>(z) * g.nx + x;
      for (int y = 0; y < g.ny; ++y) {
        const volume::Vec3 p{g.origin[0] + x * g.step, g.origin[1] + y * g.step,
                             g.origin[2] + z * g.step};
        const std::uint8_t cls = std::isfinite(deep[c]) ? classify(p, x, y, z, c) : std::uint8_t{0};
        if (cls == 2 || (cls == 0 && g.at(x, y, z))) {
          // The front face of the surface cell: what mark_slab puts in this cell (nearest
          // cell centre) is never in front of it, so the cell's own tissue is never filled.
          out.surface[c] = -p[1] + 0.5 * g.step;
          break;
        }
      }
    }
  const int r = std::max(1, static_cast<int>(std::lround(kHollowMm / g.step)));
  out.closed = no_steeper_than(closed_along_z(out.surface, g.nx, g.nz, r), g.nx, g.nz,
                               kLedgeSlope * g.step);
  for (int z = 0; z < g.nz; ++z) {
    const double hn = g.origin[2] + z * g.step - region.nasion[2];
    for (int x = 0; x < g.nx; ++x) {
      const std::size_t c = static_cast<std::size_t>(z) * g.nx + x;
      const double u = std::abs(g.origin[0] + x * g.step - region.nose_tip[0]);
      const bool face = std::isfinite(deep[c]) && u <= 62.0 && hn >= kOrbitBottom - 60.0 &&
                        hn <= kBrowTop;
      if (!face || !std::isfinite(out.surface[c]) || !(out.closed[c] > out.surface[c] + 1.0)) {
        out.closed[c] = kNo;
        continue;
      }
      // Only near the cut: a neck far behind the chin is not a hollow of the face.
      out.surface[c] = std::max(out.surface[c], deep[c] - kHollowBehindCutMm);
      if (!(out.closed[c] > out.surface[c] + 1.0)) {
        out.closed[c] = kNo;
        continue;
      }
      out.deepest = std::min(out.deepest, out.surface[c]);
    }
  }
  return out;
}

FaceRegion mark_face(const volume::Volume& v, const HeadAnalysis& head, const CutVariant& cut) {
  const double deepen_mm = cut.deepen_mm;
  const double dome_fraction = cut.dome_fraction;
  const HeadGrid& g = head.grid;
  FaceRegion region;
  region.modality = head.modality;
  region.threshold = head.threshold;
  region.nose_tip = head.nose_tip;
  region.forehead_a = head.forehead_a;
  region.nasion = {head.nose_tip[0], -head.nasion_a, head.nasion_z};
  const double tip_a = -region.nose_tip[1];
  const double forehead_a = head.forehead_a;
  const double nasion_a = head.nasion_a;
  const double nasion_z = head.nasion_z;
  constexpr double kNone = std::numeric_limits<double>::infinity();
  // Per grid column (x, z): `deep` is the cut (everything more anterior is face); `front`
  // the front of the cap laid over it: the cut without the orbits' deepening (so the orbits
  // are filled, not left as pits), the brows' band resurfaced 2 mm under the skin smoothed
  // over 25 mm squares (the brows' and eyelids' shape does not come back), grooves narrower
  // than 40 mm in height closed (no band across the face reads as a pair of orbits), and
  // kCapMm in front.
  const std::size_t cells = static_cast<std::size_t>(g.nx) * g.nz;
  std::vector<double> deep(cells, kNone), front(cells, kNone);
  std::vector<double> smooth = head.skin_a;
  {
    const int r = std::max(1, static_cast<int>(std::lround(12.5 / g.step)));
    std::vector<double> sum(cells), count(cells);
    auto box = [&](bool along_x) {
      for (int z = 0; z < g.nz; ++z)
        for (int x = 0; x < g.nx; ++x) {
          double total = 0, n = 0;
          const int centre = along_x ? x : z, len = along_x ? g.nx : g.nz;
          for (int t = std::max(0, centre - r); t <= std::min(len - 1, centre + r); ++t) {
            const std::size_t m = along_x ? static_cast<std::size_t>(z) * g.nx + t
                                          : static_cast<std::size_t>(t) * g.nx + x;
            if (std::isfinite(head.skin_a[m])) {
              total += smooth[m];
              n += 1;
            }
          }
          const std::size_t c = static_cast<std::size_t>(z) * g.nx + x;
          sum[c] = total;
          count[c] = n;
        }
      for (std::size_t c = 0; c < cells; ++c)
        if (std::isfinite(head.skin_a[c]) && count[c] > 0) smooth[c] = sum[c] / count[c];
    };
    box(true);
    box(false);
  }
  for (int z = 0; z < g.nz; ++z) {
    const double zz = g.origin[2] + z * g.step;
    const double h = zz - region.nose_tip[2], hn = zz - nasion_z;
    const double lower = hn <= 5.0 ? cut_front(h, tip_a, forehead_a, deepen_mm) : kNone;
    for (int x = 0; x < g.nx; ++x) {
      const std::size_t c = static_cast<std::size_t>(z) * g.nx + x;
      const double u = std::abs(g.origin[0] + x * g.step - region.nose_tip[0]);
      double d = lower, f = lower;
      if (hn >= kOrbitBottom && hn <= kOrbitTop && u < 62.0) {
        const double mid = midline_depth(hn);
        d = std::min(d, nasion_a - std::max(mid, orbit_weight(u) * orbit_depth(hn)));
        // Under the brows' band only: there the cap follows the smoothed skin instead, or it
        // would be a recess under the brow.
        if (brow_ramp(hn) <= 0) f = std::min(f, nasion_a - mid);
      }
      const double skin = head.skin_a[c];
      const double ramp = brow_ramp(hn) * brow_weight(u);
      if (ramp > 0 && std::isfinite(skin)) {
        d = std::min(d, skin - ramp * std::max(10.0, skin - (forehead_a - 12.0)));
        f = std::min(f, smooth[c] - ramp * (kCapMm + 2.0));
      }
      deep[c] = d;
      front[c] = f;
    }
  }
  {
    const int r = std::max(1, static_cast<int>(std::lround(20.0 / g.step)));
    std::vector<double> column(static_cast<std::size_t>(g.nz)), grown(column.size());
    for (int x = 0; x < g.nx; ++x) {
      for (int z = 0; z < g.nz; ++z)
        column[static_cast<std::size_t>(z)] = front[static_cast<std::size_t>(z) * g.nx + x];
      for (int z = 0; z < g.nz; ++z) {
        double m = -kNone;
        for (int t = std::max(0, z - r); t <= std::min(g.nz - 1, z + r); ++t)
          m = std::max(m, column[static_cast<std::size_t>(t)]);
        grown[static_cast<std::size_t>(z)] = m;
      }
      for (int z = 0; z < g.nz; ++z) {
        const std::size_t c = static_cast<std::size_t>(z) * g.nx + x;
        if (!std::isfinite(deep[c])) continue;
        double m = kNone;
        for (int t = std::max(0, z - r); t <= std::min(g.nz - 1, z + r); ++t)
          m = std::min(m, grown[static_cast<std::size_t>(t)]);
        front[c] = std::max(deep[c], std::max(column[static_cast<std::size_t>(z)], m)) + kCapMm;
      }
    }
  }
  region.cut_a = deep;
  region.grid_origin = g.origin;
  region.grid_step = g.step;
  region.grid_nx = g.nx;
  region.grid_nz = g.nz;
  double deepest = kNone;
  for (double d : deep) deepest = std::min(deepest, d);
  deepest -= 1.0;
  region.mask.assign(v.voxel_count(), 0);
  if (!std::isfinite(deepest)) return region;
  // Per grid slice, the head's left-right extent on the cap's surface: the cap is rounded
  // across it (a smooth dome, like the front of a featureless egg) instead of flat, so its
  // rendering shows no flat plate with straight edges inside the head's outline.
  std::vector<std::array<double, 2>> span(static_cast<std::size_t>(g.nz), {1.0, -1.0});
  const int xm = std::clamp(static_cast<int>(std::lround((region.nose_tip[0] - g.origin[0]) / g.step)),
                            0, g.nx - 1);
  for (int z = 0; z < g.nz; ++z) {
    const double surface = front[static_cast<std::size_t>(z) * g.nx + xm];
    if (!std::isfinite(surface)) continue;
    const int y = static_cast<int>(std::lround((-surface - g.origin[1]) / g.step));
    int lo = g.nx, hi = -1;
    for (int x = 0; x < g.nx; ++x)
      if (g.at(x, y, z)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    if (hi > lo)
      span[static_cast<std::size_t>(z)] = {g.origin[0] + lo * g.step, g.origin[0] + hi * g.step};
  }
  auto dome = [&](double x, long gz) {
    if (gz < 0 || gz >= g.nz) return 0.0;
    const auto& sp = span[static_cast<std::size_t>(gz)];
    if (!(sp[1] > sp[0])) return 0.0;
    const double c = 0.5 * (sp[0] + sp[1]), w = 0.5 * (sp[1] - sp[0]);
    const double u = (x - c) / w;
    if (std::abs(u) >= 1.0) return 0.0;
    return std::min(kDomeMaxMm, dome_fraction * w) * std::sqrt(1.0 - u * u);
  };
  // What the cut makes of a point (LPS mm) in grid column c, slice gz: 0 = unchanged, 1 = face
  // set to background, 2 = face that becomes the cap.
  auto classify = [&](const volume::Vec3& p, long gx, long gy, long gz, std::size_t c) {
    if (-p[1] <= deep[c]) return std::uint8_t{0};
    // The deepest part of the face that lies inside the head becomes a cap whose front
    // is smooth (the cut without the orbits' pits, a few millimetres in front of it,
    // domed): the cut does not open the orbits and the nose's cavities to the outside,
    // and what was the eyes is filled, not left as holes that read as eyes.
    const bool inside = g.at(static_cast<int>(gx), static_cast<int>(gy), static_cast<int>(gz));
    // The dome also fills air (orbits, under the nose, and in front of the sloping
    // forehead where the cut tapers out): the cap's front is synthetic either way.
    // The dome fades out over the brows' band, which is resurfaced to its smoothed skin;
    // there the hollows (the eyelids' folds, under the brows) are filled up to it.
    const double brow = brow_ramp(p[2] - nasion_z);
    const double bulge = dome(p[0], gz) * (1.0 - brow);
    const bool hollow = brow > 0 && head.skin_a[c] < smooth[c] - 1.0 &&
                        -p[1] <= smooth[c] - 2.0 &&
                        std::abs(p[0] - region.nose_tip[0]) <= 55.0;
    const bool fill = inside || bulge > 0 || hollow;
    return (fill && -p[1] <= front[c] + bulge) ? std::uint8_t{2} : std::uint8_t{1};
  };
  const HollowFill hollows = fill_hollows(g, region, deep, classify);
  deepest = std::min(deepest, hollows.deepest - 1.0);
  const double row_y[1] = {v.origin[1]};
  const double step_y[1] = {v.axes[0][1] * v.spacing[0]};
  auto mark_slab = [&](int k0, int k1) {
    for (int k = k0; k < k1; ++k)
      for (int j = 0; j < v.dims[1]; ++j)
        for (int i = 0; i < v.dims[0]; ++i) {
          // Cheap rejection first: most of a volume lies behind the deepest possible cut.
          const double y = row_y[0] + step_y[0] * i + v.axes[1][1] * v.spacing[1] * j +
                           v.axes[2][1] * v.spacing[2] * k;
          if (-y <= deepest) continue;
          const auto p = v.to_patient(i, j, k);
          const long gx = std::lround((p[0] - g.origin[0]) / g.step),
                     gy = std::lround((p[1] - g.origin[1]) / g.step),
                     gz = std::lround((p[2] - g.origin[2]) / g.step);
          const std::size_t c = static_cast<std::size_t>(std::clamp<long>(gz, 0, g.nz - 1)) * g.nx +
                                static_cast<std::size_t>(std::clamp<long>(gx, 0, g.nx - 1));
          // The fill takes air and what the cut removes, never tissue the cut keeps (a voxel
          // above the skin's threshold is tissue even where the coarser grid saw none).
          const std::size_t n = v.index(i, j, k);
          std::uint8_t cls = classify(p, gx, gy, gz, c);
          const bool air = v.voxels[n] * v.value_slope + v.value_intercept <= region.threshold;
          if (cls != 2 && (air || cls == 1) && hollows.fills(c, -p[1])) cls = 2;
          if (cls != 0) region.mask[n] = cls;
        }
  };
  {
    std::jthread second(mark_slab, v.dims[2] / 2, v.dims[2]);
    mark_slab(0, v.dims[2] / 2);
  }
  return region;
}

}  // namespace

Result<FaceRegion> find_face(const volume::Volume& v, Modality modality, const CutVariant& cut) {
  auto head = analyse_head(v, modality);
  if (!head) return std::unexpected(head.error());
  return mark_face(v, *head, cut);
}

namespace {

// Separable box blur (three passes approximate a Gaussian) of the region's bounding box.
void blur_region(volume::Volume& v, const std::vector<std::uint8_t>& mask, double radius_mm) {
  int lo[3] = {v.dims[0], v.dims[1], v.dims[2]}, hi[3] = {-1, -1, -1};
  for (int k = 0; k < v.dims[2]; ++k)
    for (int j = 0; j < v.dims[1]; ++j)
      for (int i = 0; i < v.dims[0]; ++i)
        if (mask[v.index(i, j, k)]) {
          const int c[3] = {i, j, k};
          for (int a = 0; a < 3; ++a) {
            lo[a] = std::min(lo[a], c[a]);
            hi[a] = std::max(hi[a], c[a]);
          }
        }
  if (hi[0] < 0) return;
  int r[3];
  for (int a = 0; a < 3; ++a) {
    r[a] = std::max(1, static_cast<int>(std::lround(radius_mm / v.spacing[a])));
    lo[a] = std::max(0, lo[a] - 3 * r[a]);
    hi[a] = std::min(v.dims[a] - 1, hi[a] + 3 * r[a]);
  }
  const int n[3] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
  std::vector<float> box(static_cast<std::size_t>(n[0]) * n[1] * n[2]);
  auto at = [&](int i, int j, int k) -> float& {
    return box[static_cast<std::size_t>(i) +
               static_cast<std::size_t>(n[0]) *
                   (static_cast<std::size_t>(j) +
                    static_cast<std::size_t>(n[1]) * static_cast<std::size_t>(k))];
  };
  for (int k = 0; k < n[2]; ++k)
    for (int j = 0; j < n[1]; ++j)
      for (int i = 0; i < n[0]; ++i)
        at(i, j, k) = v.voxels[v.index(lo[0] + i, lo[1] + j, lo[2] + k)];
  std::vector<float> line, out;
  for (int pass = 0; pass < 3; ++pass) {
    for (int axis = 0; axis < 3; ++axis) {
      const int len = n[axis];
      const int u_axis = (axis + 1) % 3, w_axis = (axis + 2) % 3;
      line.resize(static_cast<std::size_t>(len));
      out.resize(static_cast<std::size_t>(len));
      for (int w = 0; w < n[w_axis]; ++w)
        for (int u = 0; u < n[u_axis]; ++u) {
          int c[3];
          c[u_axis] = u;
          c[w_axis] = w;
          for (int t = 0; t < len; ++t) {
            c[axis] = t;
            line[static_cast<std::size_t>(t)] = at(c[0], c[1], c[2]);
          }
          double sum = 0;
          int count = 0;
          for (int t = 0; t <= std::min(r[axis], len - 1); ++t, ++count)
            sum += line[static_cast<std::size_t>(t)];
          for (int t = 0; t < len; ++t) {
            out[static_cast<std::size_t>(t)] = static_cast<float>(sum / count);
            const int add = t + r[axis] + 1, drop = t - r[axis];
            if (add < len) {
              sum += line[static_cast<std::size_t>(add)];
              ++count;
            }
            if (drop >= 0) {
              sum -= line[static_cast<std::size_t>(drop)];
              --count;
            }
          }
          for (int t = 0; t < len; ++t) {
            c[axis] = t;
            at(c[0], c[1], c[2]) = out[static_cast<std::size_t>(t)];
          }
        }
    }
  }
  for (int k = 0; k < n[2]; ++k)
    for (int j = 0; j < n[1]; ++j)
      for (int i = 0; i < n[0]; ++i) {
        const std::size_t idx = v.index(lo[0] + i, lo[1] + j, lo[2] + k);
        if (mask[idx]) v.voxels[idx] = std::nearbyint(at(i, j, k));
      }
}

// CT only: voxels of the face region that lie in the intracranial space, estimated per axial
// slice of a patient-aligned grid as brain-range tissue (0-100 HU) that the slice's border
// cannot reach without crossing bone (> 300 HU). Checked from the nose tip upwards: lower
// down the same test also catches the tongue inside the mandible. A guard, independent of
// how the cut was placed; deface() refuses when it is not zero.
std::size_t ct_intracranial_overlap(const volume::Volume& v, const FaceRegion& region) {
  const double step = 2.0;  // coarse: a guard, not a segmentation
  volume::Vec3 lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    const auto p = v.to_patient((c & 1) ? v.dims[0] - 1 : 0, (c & 2) ? v.dims[1] - 1 : 0,
                                (c & 4) ? v.dims[2] - 1 : 0);
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a]);
      hi[a] = std::max(hi[a], p[a]);
    }
  }
  const int nx = static_cast<int>((hi[0] - lo[0]) / step) + 1,
            ny = static_cast<int>((hi[1] - lo[1]) / step) + 1;
  const int z0 = std::max(0, static_cast<int>(std::ceil((region.nose_tip[2] - lo[2]) / step)));
  const int nz = static_cast<int>((hi[2] - lo[2]) / step) + 1;
  std::vector<std::uint8_t> cls(static_cast<std::size_t>(nx) *
                                ny);  // 0 other, 1 bone, 2 brain range, 3 reached
  std::vector<std::size_t> source(cls.size());
  std::vector<int> stack;
  std::vector<std::uint32_t> part(cls.size());
  std::vector<std::size_t> part_size;
  // An orbit's cross-section is under 12 cm^2 (about 35 x 30 mm); a slice of brain enclosed
  // there would be larger.
  constexpr double kOrbitPartMm2 = 1200.0;
  std::size_t overlap = 0;
  for (int z = z0; z < nz; ++z) {
    std::fill(cls.begin(), cls.end(), 0);
    for (int y = 0; y < ny; ++y)
      for (int x = 0; x < nx; ++x) {
        const auto idx = v.to_index({lo[0] + x * step, lo[1] + y * step, lo[2] + z * step});
        const long i = std::lround(idx[0]), j = std::lround(idx[1]), k = std::lround(idx[2]);
        if (i < 0 || j < 0 || k < 0 || i >= v.dims[0] || j >= v.dims[1] || k >= v.dims[2]) continue;
        const std::size_t n =
            v.index(static_cast<int>(i), static_cast<int>(j), static_cast<int>(k));
        const double hu = v.voxels[n] * v.value_slope + v.value_intercept;
        const std::size_t c = static_cast<std::size_t>(x + nx * y);
        cls[c] = hu > 300.0 ? 1 : (hu >= 0.0 && hu <= 100.0 ? 2 : 0);
        source[c] = n;
      }
    stack.clear();
    for (int x = 0; x < nx; ++x) {
      stack.push_back(x);
      stack.push_back(x + nx * (ny - 1));
    }
    for (int y = 0; y < ny; ++y) {
      stack.push_back(nx * y);
      stack.push_back(nx * y + nx - 1);
    }
    while (!stack.empty()) {
      const int c = stack.back();
      stack.pop_back();
      auto& cell = cls[static_cast<std::size_t>(c)];
      if (cell == 1 || cell == 3) continue;
      cell = 3;
      const int x = c % nx, y = c / nx;
      if (x > 0) stack.push_back(c - 1);
      if (x + 1 < nx) stack.push_back(c + 1);
      if (y > 0) stack.push_back(c - nx);
      if (y + 1 < ny) stack.push_back(c + nx);
    }
    // What stays enclosed, by connected part: the globes and orbital muscles behind the
    // orbital rims are enclosed by bone in an axial slice too, but are small and lie in the
    // orbits either side of the nasion, where the brain never is.
    std::fill(part.begin(), part.end(), 0u);
    part_size.assign(1, 0);
    for (std::size_t c0 = 0; c0 < cls.size(); ++c0) {
      if (cls[c0] == 1 || cls[c0] == 3 || part[c0] != 0) continue;
      const auto id = static_cast<std::uint32_t>(part_size.size());
      std::size_t size = 0;
      stack.clear();
      stack.push_back(static_cast<int>(c0));
      part[c0] = id;
      while (!stack.empty()) {
        const int c = stack.back();
        stack.pop_back();
        ++size;
        const int x = c % nx, y = c / nx;
        auto visit = [&](int m) {
          const auto mm = static_cast<std::size_t>(m);
          if (cls[mm] != 1 && cls[mm] != 3 && part[mm] == 0) {
            part[mm] = id;
            stack.push_back(m);
          }
        };
        if (x > 0) visit(c - 1);
        if (x + 1 < nx) visit(c + 1);
        if (y > 0) visit(c - nx);
        if (y + 1 < ny) visit(c + nx);
      }
      part_size.push_back(size);
    }
    const double hn = lo[2] + z * step - region.nasion[2];
    for (std::size_t c = 0; c < cls.size(); ++c)
      if (cls[c] == 2 && region.mask[source[c]]) {
        const double u = std::abs(lo[0] + static_cast<double>(c % static_cast<std::size_t>(nx)) * step -
                                  region.nasion[0]);
        const bool in_orbit = u >= 12.0 && u <= 55.0 && hn >= -32.0 && hn <= 12.0;
        if (in_orbit && static_cast<double>(part_size[part[c]]) * step * step < kOrbitPartMm2)
          continue;
        ++overlap;
      }
  }
  return overlap;
}

}  // namespace

namespace {

// The geometric evidence (decides) with the Haar cascades' detections beside it (reported).
Result<FaceCheck> check_views(const std::vector<Rendering>& views,
                              const std::vector<detail::DepthMap>& maps,
                              const std::filesystem::path& cascade_dir) {
  FaceCheck check = detail::relief_of(maps);
  auto haar = detect_faces(views, cascade_dir);
  if (!haar) return std::unexpected(haar.error());
  check.detections = std::move(haar->detections);
  return check;
}

}  // namespace

namespace {

// A head lying turned in the scanner (yaw, about the superior axis). The analysis, the cut
// and the renderings assume a face looking along -y (anterior); a face turned 20 degrees kept
// its nose and was refused (ch2 and ct_pitch_face turned by their affines, 2026-12-05). The
// turn is read from the head's axial outline 30-90 mm below its top, above the ears and the
// face, where a head is longer front to back than it is wide: the angle of that outline's long
// axis from the anterior-posterior axis. Unknown (nullopt) when the outline is too round or
// too small to say.
// Turns under this are left alone: the analysis copes with them (mr_t2w_face turned 10 degrees,
// estimated 7.6, is defaced unturned), and the outline's estimate wanders by up to 6 degrees on
// heads that are not turned but nodded or tilted 20 degrees, or carry a coil or marker beside
// the head (the TCIA series: -3.5; turned by that, it was refused).
constexpr double kLeastTurnDegrees = 8.0;

struct Turn {
  double degrees = 0;
  volume::Vec3 centre{};
};

std::optional<Turn> head_turn(const volume::Volume& v, Modality modality) {
  if (modality == Modality::automatic)
    modality = physical_min(v) < -500.0 ? Modality::ct : Modality::mr;
  const double threshold = modality == Modality::ct ? -300.0 : skin_threshold(v);
  std::array<int, 3> stride{};
  for (int a = 0; a < 3; ++a)
    stride[a] = std::max(1, static_cast<int>(std::lround(2.0 / v.spacing[a])));
  std::vector<volume::Vec3> points;
  for (int k = 0; k < v.dims[2]; k += stride[2])
    for (int j = 0; j < v.dims[1]; j += stride[1])
      for (int i = 0; i < v.dims[0]; i += stride[0])
        if (v.voxels[v.index(i, j, k)] * v.value_slope + v.value_intercept > threshold)
          points.push_back(v.to_patient(i, j, k));
  if (points.size() < 1000) return std::nullopt;
  std::vector<double> heights;
  heights.reserve(points.size());
  for (const auto& p : points) heights.push_back(p[2]);
  // The top: a high percentile, so a few bright voxels above the head do not move it.
  const auto top_at = heights.begin() + static_cast<std::ptrdiff_t>(heights.size() * 995 / 1000);
  std::nth_element(heights.begin(), top_at, heights.end());
  const double top = *top_at;
  double n = 0, mx = 0, my = 0, mz = 0;
  for (const auto& p : points)
    if (p[2] <= top - 30.0 && p[2] >= top - 90.0) n += 1, mx += p[0], my += p[1], mz += p[2];
  if (n < 500) return std::nullopt;
  mx /= n, my /= n, mz /= n;
  double cxx = 0, cyy = 0, cxy = 0;
  for (const auto& p : points)
    if (p[2] <= top - 30.0 && p[2] >= top - 90.0) {
      cxx += (p[0] - mx) * (p[0] - mx);
      cyy += (p[1] - my) * (p[1] - my);
      cxy += (p[0] - mx) * (p[1] - my);
    }
  const double mean = (cxx + cyy) / 2, spread = std::hypot((cxx - cyy) / 2, cxy);
  // Long over short axis (variances): a head's outline is about 1.25 times longer than wide
  // (1.56 in variance); under 1.15 the direction is noise.
  if (mean - spread <= 0 || (mean + spread) / (mean - spread) < 1.15) return std::nullopt;
  const double long_axis = 0.5 * std::atan2(2 * cxy, cxx - cyy);  // from +x, radians
  double degrees = long_axis * 180.0 / std::numbers::pi - 90.0;    // from +y
  while (degrees <= -90.0) degrees += 180.0;
  while (degrees > 90.0) degrees -= 180.0;
  if (std::abs(degrees) > 60.0) return std::nullopt;  // wider than long: not a head's outline
  return Turn{degrees, {mx, my, mz}};
}

// `v`'s geometry turned by `degrees` about the superior axis through `centre`: the voxels are
// not touched, only the map from voxel to patient position.
void turn_geometry(volume::Volume& v, double degrees, const volume::Vec3& centre) {
  const double a = degrees * std::numbers::pi / 180.0, c = std::cos(a), s = std::sin(a);
  auto turn = [&](const volume::Vec3& d) {
    return volume::Vec3{c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]};
  };
  for (auto& axis : v.axes) axis = turn(axis);
  const auto o = turn({v.origin[0] - centre[0], v.origin[1] - centre[1], v.origin[2] - centre[2]});
  v.origin = {o[0] + centre[0], o[1] + centre[1], o[2] + centre[2]};
}

volume::Vec3 turned(const volume::Vec3& p, double degrees, const volume::Vec3& centre) {
  const double a = degrees * std::numbers::pi / 180.0, c = std::cos(a), s = std::sin(a);
  const volume::Vec3 d{p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]};
  return {c * d[0] - s * d[1] + centre[0], s * d[0] + c * d[1] + centre[1], p[2]};
}

Result<DefaceReport> deface_facing_forward(volume::Volume& v, const DefaceOptions& options);

}  // namespace

FaceCheck face_evidence(const volume::Volume& v, Modality modality) {
  if (modality == Modality::automatic)
    modality = physical_min(v) < -500.0 ? Modality::ct : Modality::mr;
  return check_relief(v, modality == Modality::ct ? -300.0 : skin_threshold(v));
}

Result<DefaceReport> deface(volume::Volume& v, const DefaceOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const std::optional<Turn> turn = head_turn(v, options.modality);
  if (!turn || std::abs(turn->degrees) < kLeastTurnDegrees) {
    auto report = deface_facing_forward(v, options);
    if (report)
      report->seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }
  // Turned back so the face looks forward; restored whatever happens (the voxels the cut
  // changes are the same either way: only their positions are described differently).
  const auto axes = v.axes;
  const auto origin = v.origin;
  turn_geometry(v, -turn->degrees, turn->centre);
  auto report = deface_facing_forward(v, options);
  v.axes = axes;
  v.origin = origin;
  if (!report) return report;
  report->turn_degrees = turn->degrees;
  report->nose_tip = turned(report->nose_tip, turn->degrees, turn->centre);
  report->nasion = turned(report->nasion, turn->degrees, turn->centre);
  report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

namespace {

Result<DefaceReport> deface_facing_forward(volume::Volume& v, const DefaceOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto head = analyse_head(v, options.modality);
  if (!head) return std::unexpected(head.error());
  DefaceReport report;
  report.modality = head->modality;
  report.threshold = head->threshold;
  report.nose_tip = head->nose_tip;
  report.nasion = {head->nose_tip[0], -head->nasion_a, head->nasion_z};

  // The analysis segmented this same intact volume at this threshold: render that grid.
  std::vector<detail::DepthMap> before_maps;
  auto before_views = detail::render_grid(head->grid, &before_maps);
  auto before = check_views(before_views, before_maps, options.cascade_dir);
  if (!before) return std::unexpected(before.error());
  report.before = std::move(*before);
  if (!report.before.face_found) {
    // No nose and no eyes on any view: nothing to remove (a skull-stripped brain, a head its
    // publisher already defaced). Released unchanged, or refused when the caller asks.
    report.verdict = Verdict::no_face_present;
    report.after = report.before;
    if (options.on_renderings) options.on_renderings(before_views, before_views);
    if (options.keep_renderings) {
      report.renderings_before = before_views;
      report.renderings_after = std::move(before_views);
    }
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.no_face_before == NoFaceBefore::refuse)
      return fail(ErrorCode::policy,
                  "no face was found on the intact head (no nose, no eyes on any view); "
                  "refusing as asked");
    return report;
  }

  FaceRegion region = mark_face(v, *head, CutVariant{});
  if (region.modality == Modality::ct) {
    report.intracranial_voxels_in_region = ct_intracranial_overlap(v, region);
    if (report.intracranial_voxels_in_region > 0)
      return fail(ErrorCode::policy, "the face region reaches into the intracranial space (" +
                                         std::to_string(report.intracranial_voxels_in_region) +
                                         " guard cells); refusing rather than touching the brain");
  }

  const auto [min_it, max_it] = std::minmax_element(v.voxels.begin(), v.voxels.end());
  const double min_raw = *min_it, max_raw = *max_it;
  const float background = static_cast<float>(v.value_slope > 0 ? min_raw : max_raw);
  float cap = 0;
  if (region.modality == Modality::ct) {
    cap = static_cast<float>(
        std::nearbyint((40.0 - v.value_intercept) / v.value_slope));  // soft tissue
  } else {
    const auto raw_threshold = (region.threshold - v.value_intercept) / v.value_slope;
    double sum = 0, count = 0;
    for (float x : v.voxels)
      if (x > raw_threshold) {
        sum += x;
        count += 1;
      }
    cap = static_cast<float>(std::nearbyint(count > 0 ? sum / count : raw_threshold));
  }

  // Only face voxels can change; keep their old values to count what did, and to undo an
  // attempt before a deeper one.
  std::vector<float> saved;
  auto apply = [&](const FaceRegion& r) {
    saved.clear();
    report.voxels_changed = 0;
    if (options.method == DefaceMethod::blur) {
      for (std::size_t n = 0; n < v.voxels.size(); ++n)
        if (r.mask[n]) saved.push_back(v.voxels[n]);
      blur_region(v, r.mask, 12.0);
      for (std::size_t n = 0, m = 0; n < v.voxels.size(); ++n)
        if (r.mask[n]) report.voxels_changed += v.voxels[n] != saved[m++];
    } else {
      // One pass over the volume: keep, replace, count.
      for (std::size_t n = 0; n < v.voxels.size(); ++n) {
        if (!r.mask[n]) continue;
        const float now = r.mask[n] == 2 ? cap : background;
        saved.push_back(v.voxels[n]);
        report.voxels_changed += v.voxels[n] != now;
        v.voxels[n] = now;
      }
    }
    report.face_region_voxels = saved.size();
  };
  auto undo = [&](const FaceRegion& r) {
    for (std::size_t n = 0, m = 0; n < v.voxels.size(); ++n)
      if (r.mask[n]) v.voxels[n] = saved[m++];
  };

  // Each attempt removes, renders and looks for a face again. Escalation: when a face is still
  // seen, undo and cut again with the next variant (deeper only below the eyes, where no brain
  // lies in front of the cut; or a fuller dome). The brow-level cut never moves, and (CT) the
  // intracranial guard is checked again.
  std::vector<Rendering> after_views;
  for (std::size_t attempt = 0; attempt < std::size(kCutsInOrder); ++attempt) {
    const CutVariant& cut = kCutsInOrder[attempt];
    if (attempt > 0) {
      undo(region);
      // The undo restored the intact volume exactly, so its analysis still holds.
      FaceRegion next = mark_face(v, *head, cut);
      if (next.modality == Modality::ct && ct_intracranial_overlap(v, next) > 0) {
        apply(region);  // back to the accepted region; the refusal below stands
        break;
      }
      region = std::move(next);
    }
    apply(region);
    std::vector<detail::DepthMap> after_maps;
    after_views = detail::render_grid(detail::build_head_grid(v, region.threshold), &after_maps);
    auto after = check_views(after_views, after_maps, options.cascade_dir);
    if (!after) return std::unexpected(after.error());
    report.after = std::move(*after);
    report.attempts.push_back({cut, report.after.best_score()});
    if (!report.after.face_found) break;
  }
  if (options.on_renderings) options.on_renderings(before_views, after_views);
  if (options.keep_renderings) {
    report.renderings_before = std::move(before_views);
    report.renderings_after = std::move(after_views);
  }
  report.verdict = Verdict::defaced;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (report.after.face_found) {
    char figures[96];
    std::snprintf(figures, sizeof figures, "nose relief %.1f mm, eye pits %.1f mm",
                  report.after.nose_mm(), report.after.eyes_mm());
    return fail(ErrorCode::policy, "a face is still found after defacing (" +
                                       std::string(figures) + " after " +
                                       std::to_string(report.attempts.size()) +
                                       " attempts); refusing to release");
  }
  return report;
}

}  // namespace

}  // namespace radguard::deface
