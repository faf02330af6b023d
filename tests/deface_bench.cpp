// Timing and scores for docs/benchmarks.md (Defacing): defaces generated head phantoms of
// clinical sizes (and any volumes named on the command line) and prints seconds per volume,
// and with --detail every detector's score per view, before and after. Not a test; build with
// -DCMAKE_BUILD_TYPE=Release for meaningful figures.
//
//   radguard_deface_bench [--detail] [--blur] [--png DIR] [--no-phantoms] [--test-phantoms]
//                         [volume.nii.gz | volume.inv3]...
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <string>

#include "deface/deface.hpp"
#include "support/head_phantom.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

namespace {

using namespace radguard;

struct Args {
  bool detail = false;
  bool phantoms = true;
  bool test_phantoms = false;
  deface::DefaceMethod method = deface::DefaceMethod::remove;
  std::string png;
};

// CPU seconds of this process (user + system): on a shared machine wall time depends on
// the neighbours, CPU time does not.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void print_check(const char* phase, const deface::FaceCheck& check) {
  for (const auto& r : check.relief)
    std::printf("    %-6s %-10s relief: nose %5.1f mm  eyes %5.1f mm  %s\n", phase, r.view.c_str(),
                r.nose_mm, r.eyes_mm, r.face ? "FACE" : "-");
  for (const auto& d : check.detections) {
    if (d.faces == 0) continue;
    std::printf("    %-6s %-10s %-34s faces %2d  best %7.2f  %s\n", phase, d.view.c_str(),
                d.cascade.c_str(), d.faces, d.best_score, d.counted ? "counted" : "-");
  }
}

void run(const Args& args, const std::string& name, volume::Volume v) {
  deface::DefaceOptions options;
  options.method = args.method;
  options.keep_renderings = true;
  deface::FaceCheck before, after;
  std::vector<deface::Rendering> shown_before, shown_after;
  options.on_renderings = [&](const auto& b, const auto& a) {
    shown_before = b;
    shown_after = a;
  };
  deface::FaceRegion intact;
  if (auto region = deface::find_face(v, deface::Modality::automatic)) intact = std::move(*region);
  const double cpu_start = cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  auto report = deface::deface(v, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  if (report) {
    std::printf(
        "%-28s %4dx%4dx%4d  wall %6.2f s  cpu %6.2f s  %s  nose %.1f->%.1f eyes %.1f->%.1f  "
        "haar %.2f->%.2f  changed %zu  attempts",
        name.c_str(), v.dims[0], v.dims[1], v.dims[2], seconds, cpu,
        std::string(deface::to_string(report->verdict)).c_str(), report->before.nose_mm(),
        report->after.nose_mm(), report->before.eyes_mm(), report->after.eyes_mm(),
        report->before.best_score(), report->after.best_score(), report->voxels_changed);
    for (const auto& a : report->attempts) std::printf(" %.2f", a.best_score);
    std::printf("\n    threshold %.1f  tip (%.0f %.0f %.0f)  nasion (%.0f %.0f %.0f)\n", report->threshold,
                report->nose_tip[0], report->nose_tip[1], report->nose_tip[2], report->nasion[0],
                report->nasion[1], report->nasion[2]);
  } else {
    std::printf("%-28s %4dx%4dx%4d  wall %6.2f s  cpu %6.2f s  refused: %s\n", name.c_str(),
                v.dims[0], v.dims[1], v.dims[2], seconds, cpu, report.error().message.c_str());
    std::printf("    threshold %.1f  tip (%.0f %.0f %.0f)  nasion (%.0f %.0f %.0f) (intact)\n",
                intact.threshold, intact.nose_tip[0], intact.nose_tip[1], intact.nose_tip[2],
                intact.nasion[0], intact.nasion[1], intact.nasion[2]);
  }
  if (args.detail && report) {
    print_check("before", report->before);
    print_check("after", report->after);
  }
  std::fflush(stdout);
  if (!args.png.empty()) {
    std::string stem = std::filesystem::path(name).filename().string();
    for (char& c : stem)
      if (c == ' ' || c == '^') c = '_';
    std::filesystem::create_directories(args.png);
    for (const auto& r : shown_before)
      (void)deface::write_png(
          std::filesystem::path(args.png) / (stem + "_before_" + r.view + ".png"), r.image);
    for (const auto& r : shown_after)
      (void)deface::write_png(
          std::filesystem::path(args.png) / (stem + "_after_" + r.view + ".png"), r.image);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::vector<std::string> paths;
  for (int n = 1; n < argc; ++n) {
    const std::string a = argv[n];
    if (a == "--detail") {
      args.detail = true;
    } else if (a == "--blur") {
      args.method = deface::DefaceMethod::blur;
    } else if (a == "--no-phantoms") {
      args.phantoms = false;
    } else if (a == "--test-phantoms") {
      args.test_phantoms = true;
    } else if (a == "--png" && n + 1 < argc) {
      args.png = argv[++n];
    } else {
      paths.push_back(a);
    }
  }
  const std::array<volume::Vec3, 3> axial{volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0},
                                          volume::Vec3{0, 0, 1}};
  if (args.phantoms) {
    run(args, "CT phantom 512x512x300",
        testing::make_head_phantom(testing::PhantomContrast::ct, {512, 512, 300}, {0.49, 0.49, 0.8},
                                   axial)
            .volume);
    run(args, "MR phantom 256^3",
        testing::make_head_phantom(testing::PhantomContrast::mr, {256, 256, 256}, {1.0, 1.0, 1.0},
                                   axial)
            .volume);
  }
  if (args.test_phantoms) {
    // The unit tests' phantoms: 3 mm voxels, several orientations.
    const double a = 15.0 * std::numbers::pi / 180.0;
    const std::array<volume::Vec3, 3> flipped{volume::Vec3{-1, 0, 0}, volume::Vec3{0, -1, 0},
                                              volume::Vec3{0, 0, 1}};
    const std::array<volume::Vec3, 3> sagittal{volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, -1},
                                               volume::Vec3{1, 0, 0}};
    const std::array<volume::Vec3, 3> oblique{volume::Vec3{1, 0, 0},
                                              volume::Vec3{0, std::cos(a), std::sin(a)},
                                              volume::Vec3{0, -std::sin(a), std::cos(a)}};
    struct Case {
      const char* name;
      testing::PhantomContrast contrast;
      std::array<volume::Vec3, 3> axes;
    };
    for (const Case& c : {Case{"ct_axial_3mm", testing::PhantomContrast::ct, axial},
                          Case{"ct_flipped_3mm", testing::PhantomContrast::ct, flipped},
                          Case{"ct_oblique15_3mm", testing::PhantomContrast::ct, oblique},
                          Case{"mr_axial_3mm", testing::PhantomContrast::mr, axial},
                          Case{"mr_sagittal_3mm", testing::PhantomContrast::mr, sagittal}}) {
      std::array<int, 3> dims{};
      for (int ax = 0; ax < 3; ++ax) {
        const auto& d = c.axes[static_cast<std::size_t>(ax)];
        dims[static_cast<std::size_t>(ax)] = static_cast<int>(
            (std::abs(d[0]) * 200 + std::abs(d[1]) * 240 + std::abs(d[2]) * 250) / 3.0);
      }
      run(args, c.name,
          testing::make_head_phantom(c.contrast, dims, {3.0, 3.0, 3.0}, c.axes).volume);
    }
  }
  for (const std::string& path : paths) {
    if (path.ends_with(".inv3")) {
      auto v = volume::read_inv3(path);
      if (v) run(args, path, std::move(*v));
    } else {
      auto image = volume::read_nifti(path);
      if (image) run(args, path, std::move(image->volume));
    }
  }
  return 0;
}
