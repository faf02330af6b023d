// libFuzzer targets for what `radguard verify` and `radguard manifest verify` read;
// FUZZ_FORMAT picks one at build time: 1 a DICOM file's digital signatures (every signature,
// MACs, certificates, dates), 2 a folder manifest (JSON, Merkle root, detached signature)
// checked against a small fixed folder. The certificate that made the seeds is trusted
// (FUZZ_TRUST), so intact signatures take the whole path to a valid verdict.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "dicom/signature.hpp"
#include "signing/manifest.hpp"

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

const std::vector<fs::path>& trusted() {
  static const std::vector<fs::path> files{FUZZ_TRUST};
  return files;
}

void write(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace radguard;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
#if FUZZ_FORMAT == 1
  static const auto trust = dicom::TrustStore::load(trusted());
  if (!trust) return 0;
  const fs::path input = scratch() / "input.dcm";
  write(input, bytes);
  (void)dicom::verify_file(input, *trust);
#else
  // The folder the seed manifests were made of (fuzz/corpus/README.md).
  static const fs::path folder = [] {
    const fs::path p = scratch() / "folder";
    fs::create_directories(p / "sub");
    write(p / "a.txt", "alpha\n");
    write(p / "sub" / "b.txt", "beta\n");
    write(p / "sub" / "c.txt", "gamma\n");
    return p;
  }();
  (void)signing::verify_manifest(folder, bytes, trusted(), {}, 1);
#endif
  return 0;
}
