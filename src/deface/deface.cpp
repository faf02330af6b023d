#include "deface/deface.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
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
    case Verdict::no_face_before:
      return "no_face_before";
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
};

Result<HeadAnalysis> analyse_head(const volume::Volume& v, Modality modality) {
  if (v.voxels.empty() || v.voxels.size() != v.voxel_count())
    return fail(ErrorCode::internal, "volume has no voxels");
  HeadAnalysis head;
  if (modality == Modality::automatic)
    modality = physical_min(v) < -500.0 ? Modality::ct : Modality::mr;
  head.modality = modality;
  head.threshold = modality == Modality::ct ? -300.0 : otsu(v);
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
  double sx = 0, sz = 0, count = 0;
  for (int z = z_lo; z <= z_hi; ++z)
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
  {
    const int z0 = static_cast<int>(std::lround((head.nose_tip[2] + 60.0 - g.origin[2]) / g.step));
    const int z1 = static_cast<int>(std::lround((head.nose_tip[2] + 95.0 - g.origin[2]) / g.step));
    const int x0 = static_cast<int>(std::lround((head.nose_tip[0] - 40.0 - g.origin[0]) / g.step));
    const int x1 = static_cast<int>(std::lround((head.nose_tip[0] + 40.0 - g.origin[0]) / g.step));
    int best = g.ny;
    for (int z = std::max(0, z0); z <= std::min(g.nz - 1, z1); ++z)
      for (int x = std::max(0, x0); x <= std::min(g.nx - 1, x1); ++x)
        for (int y = 0; y < best; ++y)
          if (g.head[g.index(x, y, z)]) {
            best = y;
            break;
          }
    if (best < g.ny) forehead_a = std::min(tip_a, -(g.origin[1] + best * g.step));
  }
  head.forehead_a = forehead_a;
  return head;
}

// The face region of an analysed head for one cut shape.
FaceRegion mark_face(const volume::Volume& v, const HeadAnalysis& head, const CutVariant& cut) {
  const double deepen_mm = cut.deepen_mm;
  const double dome_fraction = cut.dome_fraction;
  const HeadGrid& g = head.grid;
  FaceRegion region;
  region.modality = head.modality;
  region.threshold = head.threshold;
  region.nose_tip = head.nose_tip;
  region.forehead_a = head.forehead_a;
  const double tip_a = -region.nose_tip[1];
  const double forehead_a = head.forehead_a;
  region.mask.assign(v.voxel_count(), 0);
  double deepest = std::numeric_limits<double>::infinity();
  for (double h = -400.0; h < kTop; h += 1.0)
    deepest = std::min(deepest, cut_front(h, tip_a, forehead_a, deepen_mm));
  deepest -= 1.0;
  // Per grid slice, the head's left-right extent on the cut surface: the cap is rounded
  // across it (a smooth dome, like the front of a featureless egg) instead of flat, so its
  // rendering shows no flat plate with straight edges inside the head's outline.
  std::vector<std::array<double, 2>> span(static_cast<std::size_t>(g.nz), {1.0, -1.0});
  for (int z = 0; z < g.nz; ++z) {
    const double h = g.origin[2] + z * g.step - region.nose_tip[2];
    const double front = cut_front(h, tip_a, forehead_a, deepen_mm);
    if (!std::isfinite(front)) continue;
    const int y = static_cast<int>(std::lround((-(front + kCapMm) - g.origin[1]) / g.step));
    int lo = g.nx, hi = -1;
    for (int x = 0; x < g.nx; ++x)
      if (g.at(x, y, z)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    if (hi > lo)
      span[static_cast<std::size_t>(z)] = {g.origin[0] + lo * g.step, g.origin[0] + hi * g.step};
  }
  auto dome = [&](double x, double z) {
    const long gz = std::lround((z - g.origin[2]) / g.step);
    if (gz < 0 || gz >= g.nz) return 0.0;
    const auto& sp = span[static_cast<std::size_t>(gz)];
    if (!(sp[1] > sp[0])) return 0.0;
    const double c = 0.5 * (sp[0] + sp[1]), w = 0.5 * (sp[1] - sp[0]);
    const double u = (x - c) / w;
    if (std::abs(u) >= 1.0) return 0.0;
    return std::min(kDomeMaxMm, dome_fraction * w) * std::sqrt(1.0 - u * u);
  };
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
          const double h = p[2] - region.nose_tip[2];
          const double front = cut_front(h, tip_a, forehead_a, deepen_mm);
          if (-p[1] <= front) continue;
          // The deepest few millimetres of the face that lie inside the head become a cap,
          // so the cut does not open the orbits and the nose's cavities to the outside: the
          // dark holes it would leave read as eyes to a detector and to a person.
          const long gx = std::lround((p[0] - g.origin[0]) / g.step),
                     gy = std::lround((p[1] - g.origin[1]) / g.step),
                     gz = std::lround((p[2] - g.origin[2]) / g.step);
          const bool inside =
              g.at(static_cast<int>(gx), static_cast<int>(gy), static_cast<int>(gz));
          // The dome also fills air (orbits, under the nose, and in front of the sloping
          // forehead where the cut tapers out): the cap's front is synthetic either way.
          const double bulge = dome(p[0], p[2]);
          const bool fill = inside || bulge > 0;
          region.mask[v.index(i, j, k)] = (fill && -p[1] <= front + kCapMm + bulge) ? 2 : 1;
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
    for (std::size_t c = 0; c < cls.size(); ++c)
      if (cls[c] == 2 && region.mask[source[c]]) ++overlap;
  }
  return overlap;
}

}  // namespace

Result<DefaceReport> deface(volume::Volume& v, const DefaceOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto head = analyse_head(v, options.modality);
  if (!head) return std::unexpected(head.error());
  FaceRegion region = mark_face(v, *head, CutVariant{});
  DefaceReport report;
  report.modality = region.modality;
  report.threshold = region.threshold;
  report.nose_tip = region.nose_tip;
  if (region.modality == Modality::ct) {
    report.intracranial_voxels_in_region = ct_intracranial_overlap(v, region);
    if (report.intracranial_voxels_in_region > 0)
      return fail(ErrorCode::policy, "the face region reaches into the intracranial space (" +
                                         std::to_string(report.intracranial_voxels_in_region) +
                                         " guard cells); refusing rather than touching the brain");
  }

  // The analysis segmented this same intact volume at this threshold: render that grid.
  auto before_views = detail::render_grid(head->grid);
  auto before = detect_faces(before_views, options.cascade_dir);
  if (!before) return std::unexpected(before.error());
  report.before = std::move(*before);

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
    after_views = render_head(v, region.threshold);
    auto after = detect_faces(after_views, options.cascade_dir);
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
  report.verdict = report.before.face_found ? Verdict::defaced : Verdict::no_face_before;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!report.before.face_found && options.no_face_before == NoFaceBefore::refuse)
    return fail(
        ErrorCode::policy,
        "no face was detected on the intact head, so removal cannot be proven (the face may be "
        "outside the field of view, or the head was not found); refusing to release");
  if (report.after.face_found)
    return fail(ErrorCode::policy, "a face is still detected after defacing (best score " +
                                       std::to_string(report.after.best_score()) + " after " +
                                       std::to_string(report.attempts.size()) +
                                       " attempts); refusing to release");
  return report;
}

}  // namespace radguard::deface
