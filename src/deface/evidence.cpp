// The geometric face evidence: the relief of the skin surface, measured on the depth buffers
// of the frontal renderings. A face has a nose (a narrow protrusion) and a pair of orbits
// (pits below the brows, side by side); a defaced head (a smooth cap), a skull-stripped brain
// or a head whose publisher cut the face away has neither.
#include <algorithm>
#include <cmath>
#include <limits>

#include "deface/deface.hpp"
#include "deface/head_grid.hpp"

namespace radguard::deface {

namespace detail {

ReliefView measure_relief(const DepthMap& map) {
  ReliefView out;
  out.view = map.view;
  const int w = map.width, h = map.height;
  if (w <= 0 || h <= 0) return out;
  const double px = map.pixel_mm;
  const int side = std::max(1, static_cast<int>(std::lround(15.0 / px)));
  const int run = std::max(1, static_cast<int>(std::lround(5.0 / px)));  // half of 10 mm
  const int vert = std::max(1, static_cast<int>(std::lround(16.0 / px)));
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  // Nose: protrusion over the surface 15 mm either side, kept over 10 mm of height.
  std::vector<float> prot(static_cast<std::size_t>(w) * h, kNone);
  std::vector<float> pit(static_cast<std::size_t>(w) * h, kNone);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      const float d = map.at(c, r);
      if (d < 0) continue;
      const float l = map.at(c - side, r), rr = map.at(c + side, r);
      if (l >= 0 && rr >= 0) prot[static_cast<std::size_t>(r) * w + c] = std::min(l, rr) - d;
      const float up = map.at(c, r - vert), down = map.at(c, r + vert);
      if (up >= 0 && down >= 0) pit[static_cast<std::size_t>(r) * w + c] = d - std::max(up, down);
    }
  // A nose is at the front of the head: its tip lies within 25 mm of the view's nearest
  // point (a bump deep under a brain or behind the cheeks is no nose).
  float nearest = std::numeric_limits<float>::infinity();
  for (float d : map.depth_mm)
    if (d >= 0) nearest = std::min(nearest, d);
  double nose = 0;
  for (int r = run; r + run < h; ++r)
    for (int c = 0; c < w; ++c) {
      const float d = map.at(c, r);
      if (d < 0 || d > nearest + 25.0f) continue;
      float lowest = std::numeric_limits<float>::infinity();
      for (int dr = -run; dr <= run && lowest > nose; ++dr)
        lowest = std::min(lowest, prot[static_cast<std::size_t>(r + dr) * w + c]);
      if (std::isfinite(lowest) && lowest > nose) nose = lowest;
    }
  out.nose_mm = nose;
  // Eyes: pits averaged over 3 mm cells, then the best pair side by side with no pit between
  // them (a groove across the face is not a pair of orbits).
  const int cell = std::max(1, static_cast<int>(std::lround(3.0 / px)));
  const int cw = w / cell, ch = h / cell;
  std::vector<float> pooled(static_cast<std::size_t>(cw) * ch, kNone);
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x) {
      double sum = 0;
      int count = 0;
      for (int r = y * cell; r < (y + 1) * cell; ++r)
        for (int c = x * cell; c < (x + 1) * cell; ++c) {
          const float p = pit[static_cast<std::size_t>(r) * w + c];
          if (std::isfinite(p)) {
            sum += p;
            ++count;
          }
        }
      // Only cells wholly measured: the head's outline makes no pits.
      if (count == cell * cell) pooled[static_cast<std::size_t>(y) * cw + x] = static_cast<float>(sum / count);
    }
  const double cell_mm = cell * px;
  const int dx0 = static_cast<int>(std::ceil(35.0 / cell_mm)), dx1 = static_cast<int>(80.0 / cell_mm);
  const int dy = static_cast<int>(12.0 / cell_mm);
  double eyes = 0;
  for (int y = 0; y < ch; ++y)
    for (int x = 0; x < cw; ++x) {
      const float a = pooled[static_cast<std::size_t>(y) * cw + x];
      if (!(a > eyes)) continue;
      for (int y2 = std::max(0, y - dy); y2 <= std::min(ch - 1, y + dy); ++y2)
        for (int x2 = x + dx0; x2 <= std::min(cw - 1, x + dx1); ++x2) {
          const float b = pooled[static_cast<std::size_t>(y2) * cw + x2];
          if (!std::isfinite(b)) continue;
          // Two orbits, not one groove: the nasal bridge between them is no pit.
          const float mid = pooled[static_cast<std::size_t>((y + y2) / 2) * cw + (x + x2) / 2];
          const double pair = std::min(a, b);
          const double bridge = std::isfinite(mid) ? std::max(0.0f, mid) : 0.0;
          eyes = std::max(eyes, std::min(pair, pair - bridge));
        }
    }
  out.eyes_mm = eyes;

  out.face = out.nose_mm >= kNoseMm || out.eyes_mm >= kEyesMm;
  return out;
}

FaceCheck relief_of(const std::vector<DepthMap>& maps) {
  FaceCheck check;
  for (const DepthMap& m : maps) {
    if (m.view.find("70") != std::string::npos) continue;  // profiles: no frontal relief
    ReliefView r = measure_relief(m);
    check.face_found = check.face_found || r.face;
    check.relief.push_back(std::move(r));
  }
  return check;
}

}  // namespace detail

FaceCheck check_relief(const volume::Volume& volume, double threshold) {
  std::vector<detail::DepthMap> maps;
  (void)detail::render_grid(detail::build_head_grid(volume, threshold), &maps);
  return detail::relief_of(maps);
}

double FaceCheck::nose_mm() const {
  double best = 0;
  for (const auto& r : relief) best = std::max(best, r.nose_mm);
  return best;
}

double FaceCheck::eyes_mm() const {
  double best = 0;
  for (const auto& r : relief) best = std::max(best, r.eyes_mm);
  return best;
}

}  // namespace radguard::deface
