#pragma once
#include <string_view>

namespace radguard {

inline constexpr std::string_view kVersion = "0.1.0";
// radguard's own Implementation Class UID (a UUID-derived 2.25 UID, made once for radguard)
// and Version Name (at most 16 characters), written into every output's file meta header.
inline constexpr std::string_view kImplementationClassUid =
    "2.25.219952426024474442509714448267538890953";
inline constexpr std::string_view kImplementationVersionName = "RADGUARD_0.1.0";

}  // namespace radguard
