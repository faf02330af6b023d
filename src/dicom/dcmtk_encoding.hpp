#pragma once
// How DCMTK will read a data set's bytes, asked of DCMTK itself, so that the structure check
// (structure_check.cpp) walks a data set in exactly the encoding DCMTK's recursive reader will
// parse it in. A walk that guessed by rules of its own could follow one encoding while DCMTK
// followed another, and nesting the walk never saw would reach DCMTK's reader.
//
// Both functions are pure (no state kept between calls), thread-safe once dicom::initialise()
// has run (they call it), and never fail: an encoding DCMTK does not know is reported as such.
#include <cstdint>
#include <span>
#include <string_view>

namespace radguard::dicom {

struct DataSetEncoding {
  bool explicit_vr = true;
  bool big_endian = false;
  bool deflated = false;
  friend bool operator==(const DataSetEncoding&, const DataSetEncoding&) = default;
};

// DCMTK's guess for a data set that declares no encoding it knows, from the data set's first
// bytes (DcmItem::checkTransferSyntax: a standard VR after the first tag means explicit VR;
// the byte order from which reading of the tag its dictionary knows). Fewer than six bytes:
// explicit VR little endian, as DCMTK.
[[nodiscard]] DataSetEncoding dcmtk_guessed_encoding(std::span<const std::uint8_t> first_bytes);

// The encoding DCMTK reads for a transfer syntax UID exactly as given (no padding removed);
// known is false for a UID DCMTK does not recognise, whose data set DCMTK then guesses. An
// empty UID is DCMTK's "virtual big endian implicit" entry, as DCMTK reads a value that
// cleans to nothing; a transfer syntax that is absent or of no length is the caller's to
// treat as undeclared (DCMTK then guesses).
struct DeclaredEncoding {
  bool known = false;
  DataSetEncoding encoding;
};
[[nodiscard]] DeclaredEncoding dcmtk_declared_encoding(std::string_view transfer_syntax_uid);

}  // namespace radguard::dicom
