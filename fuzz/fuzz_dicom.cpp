// libFuzzer target: a DICOM file through radguard's reader (structure check, DCMTK parse),
// the pixel header check and the Basic Profile header stage, then written out.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/version.hpp"
#include "crypto/crypto.hpp"
#include "deid/header_stage.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"

namespace {

namespace fs = std::filesystem;
using namespace radguard;

const fs::path& scratch() {
  static const fs::path folder = [] {
    const fs::path p = fs::temp_directory_path() / ("radguard-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return folder;
}

const deid::HeaderStage& stage() {
  static const deid::HeaderStage instance = [] {
    auto policy = deid::Policy::create("basic", {}, std::nullopt);
    auto key = crypto::SecretKey::parse(
        "radguard-key-v1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    return deid::HeaderStage(std::move(*policy), pseudonym::Pseudonymizer(std::move(*key)),
                             deid::BurnedInPolicy::reject);
  }();
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path input = scratch() / "input.dcm";
  {
    std::ofstream out(input, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto file = dicom::DicomFile::open(input);
  if (!file) return 0;
  (void)dicom::check_pixel_consistency(*file);
  if (!stage().apply(*file)) return 0;
  (void)file->save(scratch() / "output.dcm", {"1.2.3", "FUZZ"});
  return 0;
}
