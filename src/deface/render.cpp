#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <numbers>
#include <thread>

#include "deface/deface.hpp"
#include "deface/head_grid.hpp"

namespace radguard::deface {

namespace {

using detail::HeadGrid;
using detail::DepthMap;

struct View {
  const char* name;
  double yaw_degrees;  // positive turns the camera towards the patient's left
};

// Front and turned views: the frontal cascades need the face within ~30 degrees of frontal;
// the profile cascade takes over beyond.
constexpr double kClosingMm = 5.0;

constexpr View kViews[] = {
    {"front", 0.0}, {"yaw+30", 30.0}, {"yaw-30", -30.0}, {"yaw+70", 70.0}, {"yaw-70", -70.0}};

// Trilinear sample of the binary head mask, so the 0.5 level is a smooth surface.
double sample(const HeadGrid& g, double x, double y, double z) {
  const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y)),
            z0 = static_cast<int>(std::floor(z));
  const double fx = x - x0, fy = y - y0, fz = z - z0;
  double s = 0;
  for (int c = 0; c < 8; ++c) {
    const int dx = c & 1, dy = (c >> 1) & 1, dz = (c >> 2) & 1;
    if (!g.at(x0 + dx, y0 + dy, z0 + dz)) continue;
    s += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * (dz ? fz : 1 - fz);
  }
  return s;
}

// Per grid slice, the head's bounding rectangle {x0, x1, y0, y1} (x1 < 0: empty slice): rays
// only march through it.
using SliceBoxes = std::vector<std::array<int, 4>>;

SliceBoxes slice_boxes(const HeadGrid& g) {
  SliceBoxes box(static_cast<std::size_t>(g.nz), {g.nx, -1, g.ny, -1});
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x)
        if (g.head[g.index(x, y, z)]) {
          auto& bb = box[static_cast<std::size_t>(z)];
          bb = {std::min(bb[0], x), std::max(bb[1], x), std::min(bb[2], y), std::max(bb[3], y)};
        }
  return box;
}

DepthMap trace_depth(const HeadGrid& g, const SliceBoxes& box, double yaw_degrees) {
  const double yaw = yaw_degrees * std::numbers::pi / 180.0;
  // Grid units. The camera looks along d (towards posterior at yaw 0); right is the
  // patient's left, as a viewer facing the patient sees it; up is superior.
  const double d[3] = {std::sin(yaw), std::cos(yaw), 0.0};
  const double r[3] = {std::cos(yaw), -std::sin(yaw), 0.0};
  const double centre[3] = {(g.nx - 1) / 2.0, (g.ny - 1) / 2.0, (g.nz - 1) / 2.0};
  const double radius =
      0.5 * std::sqrt(double(g.nx) * g.nx + double(g.ny) * g.ny + double(g.nz) * g.nz);
  // Pixels of 0.75 grid cells: faces come out ~150-200 px wide, well above the cascades'
  // 20-24 px windows yet small enough to scan quickly.
  constexpr double kPixel = 0.75;
  const int half_w = static_cast<int>(radius / kPixel);
  // Black margins above and below: a scan that stops at the nose or the mouth still leaves
  // the cascades room for a whole face window.
  const int pad = static_cast<int>(0.25 * g.nz / kPixel);
  const int width = 2 * half_w, height = static_cast<int>(g.nz / kPixel) + 2 * pad;
  std::vector<float> depth(static_cast<std::size_t>(width) * height, -1.0f);
  auto trace_rows = [&](int row0, int row1) {
    for (int row = row0; row < row1; ++row) {
      const double up = (height - 1 - pad - row) * kPixel - centre[2];
      const int zi = static_cast<int>(std::lround(centre[2] + up));
      if (zi < 0 || zi >= g.nz) continue;
      const auto& bb = box[static_cast<std::size_t>(zi)];
      if (bb[1] < 0) continue;
      for (int col = 0; col < width; ++col) {
        const double u = (col - half_w) * kPixel;
        const double ox = centre[0] + r[0] * u - d[0] * radius,
                     oy = centre[1] + r[1] * u - d[1] * radius, oz = centre[2] + up;
        // Slab intersection of the ray with the slice's rectangle (one cell of slack).
        double t0 = 0, t1 = 2 * radius;
        const double lo[2] = {bb[0] - 1.0, bb[2] - 1.0}, hi[2] = {bb[1] + 1.0, bb[3] + 1.0};
        const double o[2] = {ox, oy}, dir[2] = {d[0], d[1]};
        for (int a = 0; a < 2; ++a) {
          if (std::abs(dir[a]) < 1e-9) {
            if (o[a] < lo[a] || o[a] > hi[a]) t0 = t1 + 1;
            continue;
          }
          double ta = (lo[a] - o[a]) / dir[a], tb = (hi[a] - o[a]) / dir[a];
          if (ta > tb) std::swap(ta, tb);
          t0 = std::max(t0, ta);
          t1 = std::min(t1, tb);
        }
        if (t0 > t1) continue;
        double t = std::floor(t0), last = t;
        bool hit = false;
        for (; t <= t1 + 1; t += 1.0) {
          const int x = static_cast<int>(std::lround(ox + d[0] * t)),
                    y = static_cast<int>(std::lround(oy + d[1] * t));
          if (g.at(x, y, zi)) {
            hit = true;
            break;
          }
          last = t;
        }
        if (!hit) continue;
        // Refine between the last empty step and the hit on the trilinear 0.5 level.
        double a = std::max(0.0, last - 1.0), b = t;
        for (int it = 0; it < 6; ++it) {
          const double m = 0.5 * (a + b);
          if (sample(g, ox + d[0] * m, oy + d[1] * m, oz) >= 0.5)
            b = m;
          else
            a = m;
        }
        depth[static_cast<std::size_t>(row) * width + col] = static_cast<float>(b);
      }
    }
  };
  {
    std::jthread second(trace_rows, height / 2, height);
    trace_rows(0, height / 2);
  }
  DepthMap map;
  map.width = width;
  map.height = height;
  map.pixel_mm = kPixel * g.step;

  map.depth_mm.resize(depth.size());
  for (std::size_t n = 0; n < depth.size(); ++n)
    map.depth_mm[n] = depth[n] < 0 ? -1.0f : static_cast<float>(depth[n] * g.step);
  return map;
}

Image shade(const DepthMap& map, double step) {
  constexpr double kPixel = 0.75;
  const int width = map.width, height = map.height;
  std::vector<float> depth(map.depth_mm.size());
  for (std::size_t n = 0; n < depth.size(); ++n)
    depth[n] = map.depth_mm[n] < 0 ? -1.0f : static_cast<float>(map.depth_mm[n] / step);
  // Lambert shading from depth gradients (after a light smoothing that hides the voxel
  // staircase); light from the viewer's upper left, as in a studio portrait, so that the
  // orbits and under the nose fall into shadow like in the photographs the cascades learnt.
  std::vector<float> smooth = depth;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<float> next = smooth;
    for (int row = 1; row + 1 < height; ++row)
      for (int col = 1; col + 1 < width; ++col) {
        const std::size_t n = static_cast<std::size_t>(row) * width + col;
        if (smooth[n] < 0) continue;
        float sum = 0, weight = 0;
        for (int dr = -1; dr <= 1; ++dr)
          for (int dc = -1; dc <= 1; ++dc) {
            const float x = smooth[n + static_cast<std::size_t>(dr * width + dc)];
            if (x >= 0) {
              sum += x;
              weight += 1;
            }
          }
        next[n] = sum / weight;
      }
    smooth.swap(next);
  }
  double light[3] = {-0.35, 0.55, 1.0};
  const double ll = std::sqrt(light[0] * light[0] + light[1] * light[1] + light[2] * light[2]);
  for (double& x : light) x /= ll;
  Image image;
  image.width = width;
  image.height = height;
  image.pixels.assign(static_cast<std::size_t>(width) * height, 0);
  for (int row = 1; row + 1 < height; ++row)
    for (int col = 1; col + 1 < width; ++col) {
      const std::size_t n = static_cast<std::size_t>(row) * width + col;
      if (smooth[n] < 0) continue;
      auto at = [&](std::size_t m) { return smooth[m] < 0 ? smooth[n] + 3.0f : smooth[m]; };
      // Depth grows away from the viewer; height above the image plane is its negative.
      const double dhdx = -(at(n + 1) - at(n - 1)) / (2 * kPixel);
      const double dhdy =
          (at(n - static_cast<std::size_t>(width)) - at(n + static_cast<std::size_t>(width))) /
          (2 * kPixel) * -1.0;
      double nx = -dhdx, ny = -dhdy, nz = 1.0;
      const double nl = std::sqrt(nx * nx + ny * ny + nz * nz);
      nx /= nl;
      ny /= nl;
      nz /= nl;
      const double lambert = std::max(0.0, nx * light[0] + ny * light[1] + nz * light[2]);
      image.pixels[n] = static_cast<std::uint8_t>(std::clamp(25.0 + 225.0 * lambert, 0.0, 255.0));
    }
  return image;
}

enum class Morphology : std::uint8_t { dilate, erode };

// Max (dilate) or min (erode) over a cube of half-width r, separably, on a dense box of cells
// (x fastest); cells outside the box are ignored, so a head cut by the field of view keeps its
// edge. Each pass sweeps whole rows of cells with one running count per row (cache-friendly
// along every axis), on two threads.
void cube_filter(std::vector<std::uint8_t>& cells, const std::array<int, 3>& n, int r,
                 Morphology op) {
  std::vector<std::uint8_t> out(cells.size());
  for (int axis = 0; axis < 3; ++axis) {
    std::size_t inner = 1, outer = 1;
    for (int a = 0; a < axis; ++a) inner *= static_cast<std::size_t>(n[a]);
    for (int a = axis + 1; a < 3; ++a) outer *= static_cast<std::size_t>(n[a]);
    const int len = n[axis];
    // Rows [i0, i1) of blocks [o0, o1).
    auto sweep = [&](std::size_t o0, std::size_t o1, std::size_t i0, std::size_t i1) {
      std::vector<std::uint16_t> count(i1 - i0);
      for (std::size_t o = o0; o < o1; ++o) {
        const std::size_t base = o * static_cast<std::size_t>(len) * inner;
        auto row = [&](int t) { return cells.data() + base + static_cast<std::size_t>(t) * inner; };
        std::fill(count.begin(), count.end(), 0);
        int size = 0;
        for (int t = 0; t <= std::min(r, len - 1); ++t, ++size)
          for (std::size_t i = i0; i < i1; ++i) count[i - i0] += row(t)[i];
        for (int t = 0; t < len; ++t) {
          std::uint8_t* o_row = out.data() + base + static_cast<std::size_t>(t) * inner;
          for (std::size_t i = i0; i < i1; ++i)
            o_row[i] = op == Morphology::dilate ? count[i - i0] > 0 : count[i - i0] == size;
          const int add = t + r + 1, drop = t - r;
          if (add < len) {
            for (std::size_t i = i0; i < i1; ++i) count[i - i0] += row(add)[i];
            ++size;
          }
          if (drop >= 0) {
            for (std::size_t i = i0; i < i1; ++i) count[i - i0] -= row(drop)[i];
            --size;
          }
        }
      }
    };
    if (outer >= 2) {
      std::jthread second(sweep, outer / 2, outer, 0, inner);
      sweep(0, outer / 2, 0, inner);
    } else {
      std::jthread second(sweep, 0, outer, inner / 2, inner);
      sweep(0, outer, 0, inner / 2);
    }
    cells.swap(out);
  }
}

}  // namespace

namespace detail {

// Computed on the head's bounding box grown by r + 1 cells: outside that box the closing is
// empty anyway, and the grown box's own border stays empty after the dilation, so the erosion
// there sees what it would see on the whole grid.
void close_head(HeadGrid& g, int r) {
  std::array<int, 3> lo{g.nx, g.ny, g.nz}, hi{-1, -1, -1};
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y) {
      const std::uint8_t* line = g.head.data() + g.index(0, y, z);
      const auto first = std::find(line, line + g.nx, 1);
      if (first == line + g.nx) continue;
      const auto last =
          std::find(std::make_reverse_iterator(line + g.nx), std::make_reverse_iterator(line), 1);
      lo = {std::min(lo[0], static_cast<int>(first - line)), std::min(lo[1], y),
            std::min(lo[2], z)};
      hi = {std::max(hi[0], static_cast<int>(last.base() - line) - 1), std::max(hi[1], y),
            std::max(hi[2], z)};
    }
  if (hi[0] < 0) return;
  const std::array<int, 3> dims{g.nx, g.ny, g.nz};
  std::array<int, 3> n{};
  for (int a = 0; a < 3; ++a) {
    lo[a] = std::max(0, lo[a] - r - 1);
    hi[a] = std::min(dims[a] - 1, hi[a] + r + 1);
    n[a] = hi[a] - lo[a] + 1;
  }
  std::vector<std::uint8_t> box(static_cast<std::size_t>(n[0]) * n[1] * n[2]);
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y)
      std::copy_n(g.head.data() + g.index(lo[0], lo[1] + y, lo[2] + z), n[0],
                  box.data() + (static_cast<std::size_t>(z) * n[1] + y) * n[0]);
  cube_filter(box, n, r, Morphology::dilate);
  cube_filter(box, n, r, Morphology::erode);
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y)
      std::copy_n(box.data() + (static_cast<std::size_t>(z) * n[1] + y) * n[0], n[0],
                  g.head.data() + g.index(lo[0], lo[1] + y, lo[2] + z));
}

std::vector<Rendering> render_grid(HeadGrid g, std::vector<DepthMap>* depths) {
  // The skin envelope: a closing bridges openings narrower than ~1 cm (nostrils, the
  // cavities a cut exposes), which are not part of what a face photograph shows.
  close_head(g, std::max(1, static_cast<int>(std::lround(kClosingMm / g.step))));
  const SliceBoxes boxes = slice_boxes(g);
  std::vector<Rendering> out;
  for (const View& view : kViews) {
    DepthMap map = trace_depth(g, boxes, view.yaw_degrees);
    map.view = view.name;
    out.push_back(Rendering{view.name, shade(map, g.step)});
    if (depths) depths->push_back(std::move(map));
  }
  return out;
}

}  // namespace detail

std::vector<Rendering> render_head(const volume::Volume& volume, double threshold) {
  return detail::render_grid(detail::build_head_grid(volume, threshold));
}

}  // namespace radguard::deface
