#pragma once
// Writing a DICOMDIR (PS3.10 Basic Directory) for a folder of DICOM files, through DCMTK's
// DicomDirInterface (dcmmkdir's engine), so a viewer can open the folder as a DICOM medium.
#include <filesystem>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace radguard::dicom {

// Writes `root`/DICOMDIR listing `files` (paths relative to `root` in the ISO 9660 form
// PS3.12 requires: at most 8 components, each 1 to 8 characters of A-Z, 0-9 and _; no
// extension). The General Purpose profile (STD-GEN-CD) is used when every file is
// uncompressed little endian, else STD-GEN-MIME; missing type 1 directory values are
// invented (dcmmkdir --invent). Fails with ErrorCode::usage for a name that is not ISO 9660,
// ErrorCode::malformed_dicom when DCMTK refuses a file (the message names it), ErrorCode::io.
[[nodiscard]] Status write_dicomdir(const std::filesystem::path& root,
                                    const std::vector<std::filesystem::path>& files,
                                    const std::string& file_set_id);

// True for a relative path DICOMDIR can reference (see write_dicomdir).
bool is_dicomdir_name(const std::filesystem::path& relative);

}  // namespace radguard::dicom
