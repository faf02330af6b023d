// libFuzzer targets for the volume readers of `radguard deface`; FUZZ_FORMAT picks one at
// build time: 1 NIfTI-1 (.nii, gzip-compressed or not: the reader inflates what starts as
// gzip), 2 InVesalius projects (.inv3: a gzip-compressed tar of main.plist and matrix.dat).
// A NIfTI file read is also cleaned and written back, as deface writes its output.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

namespace {

namespace fs = std::filesystem;

const fs::path& scratch() {
  static const fs::path folder = [] {
    const fs::path p = fs::temp_directory_path() / ("radguard-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return folder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace radguard;
#if FUZZ_FORMAT == 1
  const fs::path input = scratch() / "input.nii";
#else
  const fs::path input = scratch() / "input.inv3";
#endif
  {
    std::ofstream out(input, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
#if FUZZ_FORMAT == 1
  auto image = volume::read_nifti(input);
  if (!image) return 0;
  image->header = volume::clean_nifti_header(image->header);
  (void)volume::write_nifti(scratch() / "output.nii", *image);
#else
  auto v = volume::read_inv3(input);
  if (!v) return 0;
  volume::NiftiImage image;
  image.header = volume::make_nifti_header(*v);
  image.volume = std::move(*v);
  (void)volume::write_nifti(scratch() / "output.nii", image);
#endif
  return 0;
}
