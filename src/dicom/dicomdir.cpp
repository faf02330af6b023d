#include "dicom/dicomdir.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcddirif.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include "dicom/dicom_file.hpp"

namespace radguard::dicom {

namespace fs = std::filesystem;

bool is_dicomdir_name(const fs::path& relative) {
  if (relative.empty() || relative.is_absolute()) return false;
  std::size_t depth = 0;
  for (const auto& component : relative) {
    const std::string text = component.string();
    if (text.empty() || text.size() > 8) return false;
    for (const char c : text)
      if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    if (++depth > 8) return false;
  }
  return true;
}

namespace {

// Whether the file's pixel data is in a transfer syntax STD-GEN-CD allows.
bool uncompressed_little_endian(const fs::path& path) {
  DcmFileFormat file;
  if (file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 4096, ERM_fileOnly).bad())
    return false;
  const E_TransferSyntax syntax = file.getDataset()->getOriginalXfer();
  return syntax == EXS_LittleEndianExplicit || syntax == EXS_LittleEndianImplicit;
}

}  // namespace

Status write_dicomdir(const fs::path& root, const std::vector<fs::path>& files,
                      const std::string& file_set_id) {
  initialise();
  if (files.empty()) return fail(ErrorCode::usage, "a DICOMDIR needs at least one file");
  bool all_uncompressed = true;
  for (const auto& relative : files) {
    if (!is_dicomdir_name(relative))
      return fail(ErrorCode::usage,
                  relative.generic_string() + " is not a name a DICOMDIR can reference (ISO 9660)");
    all_uncompressed = all_uncompressed && uncompressed_little_endian(root / relative);
  }
  const fs::path dicomdir = root / "DICOMDIR";
  std::error_code ec;
  if (fs::exists(dicomdir, ec)) return fail(ErrorCode::conflict, dicomdir.string() + " exists");

  DicomDirInterface builder;
  builder.enableInventMode(OFTrue);
  builder.enableInventPatientIDMode(OFTrue);
  // Values the directory records need are copied from the files, which are de-identified:
  // nothing else goes into the DICOMDIR.
  const auto profile = all_uncompressed ? DicomDirInterface::AP_GeneralPurpose
                                        : DicomDirInterface::AP_GeneralPurposeMIME;
  // STD-GEN-MIME admits every transfer syntax; DCMTK's check knows only the older lists.
  if (!all_uncompressed) builder.disableTransferSyntaxCheck(OFTrue);
  OFCondition status = builder.createNewDicomDir(profile, dicomdir.c_str(), file_set_id.c_str());
  if (status.bad())
    return fail(ErrorCode::io, "cannot create the DICOMDIR: " + std::string(status.text()));
  for (const auto& relative : files) {
    // DicomDirInterface reads the file relative to the source folder and records the
    // reference with backslashes.
    status = builder.addDicomFile(relative.generic_string().c_str(), root.c_str());
    if (status.bad())
      return fail(ErrorCode::malformed_dicom, "the DICOMDIR cannot list " +
                                                  relative.generic_string() + ": " +
                                                  std::string(status.text()));
  }
  status = builder.writeDicomDir();
  if (status.bad())
    return fail(ErrorCode::io, "cannot write the DICOMDIR: " + std::string(status.text()));
  return {};
}

}  // namespace radguard::dicom
