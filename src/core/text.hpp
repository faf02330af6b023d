#pragma once
// Small text helpers shared by every capability, so each rule exists once.
#include <string>
#include <string_view>

namespace radguard {

// A DICOM string value without its padding: trailing spaces and NULs (PS3.5 6.2 pads values
// to even length with either), and leading spaces, which are not significant for the
// string VRs radguard compares (UIDs, IDs, codes, names).
[[nodiscard]] std::string trimmed(std::string_view value);

}  // namespace radguard
