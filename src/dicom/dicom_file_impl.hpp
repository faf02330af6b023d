#pragma once
// Internal to src/dicom/: the DCMTK object behind a DicomFile, shared by dicom_file.cpp and
// pixels.cpp. Never included outside this folder.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <optional>
#include <string>

#include "dicom/dicom_file.hpp"

namespace radguard::dicom {

struct DicomFile::Impl {
  DcmFileFormat file;
  // Set by the pixel module when pixel data was re-encoded in another transfer syntax;
  // save() writes in this one instead of the original.
  std::optional<E_TransferSyntax> output_xfer;
};

// Why loadFile() failed, in words an operator can act on: DCMTK's text, and for a stream
// that ends early, that the file is truncated or an element claims more bytes than the file
// holds, naming the last element read (a tag, never a value).
std::string parse_failure(DcmFileFormat& file, const OFCondition& status);

struct PixelAccess {
  static DicomFile::Impl& impl(DicomFile& file) { return *file.impl_; }
  static const DicomFile::Impl& impl(const DicomFile& file) { return *file.impl_; }
};

}  // namespace radguard::dicom
