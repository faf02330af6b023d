#pragma once
// The checks every request to `radguard serve` passes before anything else runs, and the
// checks on what a user uploads. Pure functions (no HTTP library), so they are tested on
// their own. Fail closed: whatever is not recognised as safe is refused.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace radguard::serve {

// The Host header a request to a server on 127.0.0.1:`port` may carry: "127.0.0.1:PORT" or
// "localhost:PORT" (case-insensitive). Anything else (another name pointing at 127.0.0.1 by
// DNS rebinding, a missing port, a missing header) is refused.
[[nodiscard]] bool host_allowed(std::string_view host, std::uint16_t port);

// The Origin header: absent (empty) is allowed (a plain navigation or a script's request);
// when present it must be "http://127.0.0.1:PORT" or "http://localhost:PORT". "null" and any
// other site are refused (a page elsewhere posting to the local server).
[[nodiscard]] bool origin_allowed(std::string_view origin, std::uint16_t port);

// Sec-Fetch-Site as browsers send it: absent, "same-origin" or "none" (typed in the address
// bar) are allowed; "cross-site" and "same-site" are refused.
[[nodiscard]] bool fetch_site_allowed(std::string_view fetch_site);

// Compares a token given by a client with the server's in time independent of where they
// differ. An empty given token never matches.
[[nodiscard]] bool same_token(std::string_view given, std::string_view token);

// The token in "Authorization: Bearer TOKEN" ("" when absent or another scheme).
[[nodiscard]] std::string bearer_token(std::string_view authorization);
// The value of the cookie `name` in a Cookie header ("" when absent).
[[nodiscard]] std::string cookie_value(std::string_view cookie_header, std::string_view name);

// A file name as a browser sends it with an upload (a plain name, or "folder/sub/name" for a
// folder): refused when empty, absolute ("/x", "\x", "C:..."), holding a ".." component
// (with / or \ as separator), a NUL or other control byte, or longer than 1024 bytes. The
// name is never used as a path in any case; refusing it tells the sender something is odd.
[[nodiscard]] bool upload_name_allowed(std::string_view name);

// Lists a zip file's entries without extracting anything and refuses it (ErrorCode::policy)
// when an entry's name is absolute or climbs out (see upload_name_allowed), when an entry
// is a link or a device, or when the sizes its entries declare add up to more than
// `max_bytes` (a zip bomb); ErrorCode::malformed_dicom when it cannot be read. Messages never
// quote an entry's name (names of files on a CD often hold the patient's name).
[[nodiscard]] Status check_zip(const std::filesystem::path& zip, std::uint64_t max_bytes);

}  // namespace radguard::serve
