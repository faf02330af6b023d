#pragma once
// Test fixtures: DICOM objects built with DCMTK inside the tests, so every oddity the tests
// need (transfer syntaxes, private blocks, nested and undefined-length sequences, broken
// lengths) is made on the spot, with its provenance obvious.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/crypto.hpp"
#include "deid/deid_run.hpp"

namespace radguard::testing {

namespace fs = std::filesystem;

// A fresh empty folder under the system temp folder, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// A fixed key, so expected pseudonyms are stable across test runs.
crypto::SecretKey test_key();

// A small valid-looking CT image: patient "DOE^JOHN", ID "PID12345", study on 2019-03-15,
// `rows`x`cols` 16-bit monochrome pixels (value = index), `frames` frames.
std::unique_ptr<DcmFileFormat> make_ct(
    const std::string& patient_id = "PID12345",
    const std::string& sop_uid = "1.2.826.0.1.3680043.2.1125.1.1", unsigned rows = 16,
    unsigned cols = 16, unsigned frames = 1);

// Saves with the given transfer syntax (compressing when it is a compressed one).
void save(DcmFileFormat& file, const fs::path& path,
          E_TransferSyntax xfer = EXS_LittleEndianExplicit,
          E_EncodingType sequences = EET_UndefinedLength);

// Reads a file back for assertions (aborts the test on failure).
std::unique_ptr<DcmFileFormat> load(const fs::path& path);

// A top-level or nested string value ("" when absent). `path` uses DCMTK's path syntax,
// e.g. "ReferencedImageSequence[0].ReferencedSOPInstanceUID" or "(0010,0010)".
std::string value(DcmFileFormat& file, const std::string& path);
bool exists(DcmFileFormat& file, const std::string& path);

// The de-identified output of a single file (nullopt and `error` set on failure).
struct DeidResult {
  std::optional<fs::path> output;
  std::string error;
  deid::FileStatus status;
};
DeidResult deidentify(const fs::path& input, const fs::path& output_root, const std::string& preset,
                      std::initializer_list<std::string> options = {},
                      const std::string& recipe = "");

// The pixel data bytes as stored (encapsulated: every fragment concatenated).
std::string pixel_bytes(DcmFileFormat& file);

// A whole file's bytes (empty when it cannot be read).
std::vector<std::uint8_t> read_bytes(const fs::path& path);

// Writes the fixed test key as a key file (mode 0600), as radguard keygen would.
void write_key_file(const fs::path& path);

// Records in the consent registry at `registry` (created if missing) that `patient_id`
// permits research use from `date`. Fails the calling test (ADD_FAILURE) when it cannot.
void permit_research(const fs::path& registry, const std::string& patient_id,
                     const std::string& date = "2020-01-01");

// Real-world samples from Debian's python3-pydicom; empty path when not installed.
fs::path pydicom_sample(const std::string& name);

}  // namespace radguard::testing
