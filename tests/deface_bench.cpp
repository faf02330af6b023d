// Timing for docs/benchmarks.md (Defacing): defaces generated head phantoms of clinical sizes
// (and any volumes named on the command line) and prints seconds per volume. Not a test;
// build with -DCMAKE_BUILD_TYPE=Release for meaningful figures.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "deface/deface.hpp"
#include "support/head_phantom.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

namespace {

using namespace radguard;

// CPU seconds of this process (user + system): on a shared machine wall time depends on
// the neighbours, CPU time does not.
double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void run(const char* name, volume::Volume v) {
  const double cpu_start = cpu_seconds();
  deface::DefaceOptions options;
  const auto start = std::chrono::steady_clock::now();
  auto report = deface::deface(v, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_start;
  if (report) {
    std::printf(
        "%-28s %4dx%4dx%4d  wall %6.2f s  cpu %6.2f s  %s  before %.2f after %.2f  changed %zu\n",
        name, v.dims[0], v.dims[1], v.dims[2], seconds, cpu,
        std::string(deface::to_string(report->verdict)).c_str(), report->before.best_score(),
        report->after.best_score(), report->voxels_changed);
  } else {
    std::printf("%-28s %4dx%4dx%4d  wall %6.2f s  cpu %6.2f s  refused: %s\n", name, v.dims[0],
                v.dims[1], v.dims[2], seconds, cpu, report.error().message.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::array<volume::Vec3, 3> axial{volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0},
                                          volume::Vec3{0, 0, 1}};
  run("CT phantom 512x512x300",
      testing::make_head_phantom(testing::PhantomContrast::ct, {512, 512, 300}, {0.49, 0.49, 0.8},
                                 axial)
          .volume);
  run("MR phantom 256^3", testing::make_head_phantom(testing::PhantomContrast::mr, {256, 256, 256},
                                                     {1.0, 1.0, 1.0}, axial)
                              .volume);
  for (int n = 1; n < argc; ++n) {
    const std::string path = argv[n];
    if (path.ends_with(".inv3")) {
      auto v = volume::read_inv3(path);
      if (v) run(path.c_str(), std::move(*v));
    } else {
      auto image = volume::read_nifti(path);
      if (image) run(path.c_str(), std::move(image->volume));
    }
  }
  return 0;
}
