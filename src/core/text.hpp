#pragma once
// Small text helpers shared by every capability, so each rule exists once.
#include <string>
#include <string_view>

namespace radguard {

// A DICOM string value without its padding: trailing spaces and NULs (PS3.5 6.2 pads values
// to even length with either), and leading spaces, which are not significant for the
// string VRs radguard compares (UIDs, IDs, codes, names).
[[nodiscard]] std::string trimmed(std::string_view value);

// A patient ID as the consent registry keys it and the ledger hashes it: spaces, tabs, CR, LF
// and NULs stripped at both ends. One rule for the registry's IDs, the IDs read from files and
// the keyed hashes of both, so that "MRN\t" in a file is the registry's "MRN" everywhere.
[[nodiscard]] std::string normalised_patient_id(std::string_view value);

}  // namespace radguard
