// Timing of DICOM series defacing for docs/benchmarks.md (not run by ctest): writes an
// InVesalius or NIfTI head as a DICOM CT series (one file per slice, shuffled names), then
// times grouping + assembly + defacing + preparing the changed frames
// (deface_dicom_series), and bringing the result into every file and saving it (apply).
//   radguard_deface_series_bench HEAD.inv3|HEAD.nii.gz WORKDIR
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "deface/dicom_series.hpp"
#include "dicom/dicom_file.hpp"
#include "support/series_writer.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

int main(int argc, char** argv) {
  using namespace radguard;
  namespace fs = std::filesystem;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s HEAD.inv3|HEAD.nii.gz WORKDIR\n", argv[0]);
    return 2;
  }
  const fs::path input = argv[1], work = argv[2];
  Result<volume::Volume> head = fail(ErrorCode::usage, "not read");
  if (volume::is_nifti_name(input)) {
    auto image = volume::read_nifti(input);
    head = image ? Result<volume::Volume>(std::move(image->volume))
                 : Result<volume::Volume>(std::unexpected(image.error()));
  } else {
    head = volume::read_inv3(input);
  }
  if (!head) {
    std::fprintf(stderr, "%s\n", head.error().message.c_str());
    return 1;
  }
  fs::remove_all(work);
  testing::SeriesSpec spec;
  const auto files = testing::write_series(*head, work / "in", spec);
  const auto start = std::chrono::steady_clock::now();
  deface::DefaceOptions options;
  deface::SeriesOptions series_options;
  series_options.threads = 2;
  series_options.work_parent = work;
  auto result = deface::deface_dicom_series({work / "in"}, options, series_options);
  if (!result) {
    std::fprintf(stderr, "%s\n", result.error().message.c_str());
    return 1;
  }
  const double prepared =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& report = result->series().front();
  std::printf("%zu files, %d x %d x %d, outcome %s %s\n", files.size(), report.dims[0],
              report.dims[1], report.dims[2], std::string(to_string(report.outcome)).c_str(),
              report.reason.c_str());
  std::printf("read %.2f s, deface %.2f s, prepare %.2f s, total %.2f s, %zu slices changed\n",
              report.read_seconds, report.deface_seconds, report.prepare_seconds, prepared,
              report.slices_changed);
  const auto write_start = std::chrono::steady_clock::now();
  fs::create_directories(work / "out");
  for (const auto& f : files) {
    auto file = dicom::DicomFile::open(f);
    if (!file || !result->apply(f, *file) ||
        !file->save(work / "out" / f.filename(), {"1.2.3", "BENCH"})) {
      std::fprintf(stderr, "%s: failed\n", f.c_str());
      return 1;
    }
  }
  std::printf(
      "apply + save %zu files: %.2f s\n", files.size(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - write_start).count());
  return 0;
}
