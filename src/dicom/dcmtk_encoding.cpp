#include "dicom/dcmtk_encoding.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <string>

#include "dicom/dicom_file.hpp"

namespace radguard::dicom {
namespace {

// DCMTK's own detection is a protected member of every item; this data set only lends it.
class EncodingProbe : public DcmDataset {
 public:
  using DcmItem::checkTransferSyntax;
};

DataSetEncoding encoding_of(E_TransferSyntax syntax) {
  const DcmXfer xfer(syntax);
  return {xfer.isExplicitVR() == OFTrue, xfer.isBigEndian() == OFTrue,
          xfer.getStreamCompression() != ESC_none};
}

}  // namespace

DataSetEncoding dcmtk_guessed_encoding(std::span<const std::uint8_t> first_bytes) {
  initialise();  // the guess asks DCMTK's dictionary, which must be radguard's
  DcmInputBufferStream stream;
  stream.setBuffer(first_bytes.data(), static_cast<offile_off_t>(first_bytes.size()));
  stream.setEos();
  EncodingProbe probe;
  const E_TransferSyntax guessed = probe.checkTransferSyntax(stream);
  stream.releaseBuffer();
  return encoding_of(guessed);
}

DeclaredEncoding dcmtk_declared_encoding(std::string_view transfer_syntax_uid) {
  initialise();
  const DcmXfer xfer(std::string(transfer_syntax_uid).c_str());
  if (xfer.getXfer() == EXS_Unknown) return {};
  return {true, encoding_of(xfer.getXfer())};
}

}  // namespace radguard::dicom
