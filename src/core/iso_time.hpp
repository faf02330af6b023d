#pragma once
// ISO 8601 dates and times in the one canonical form radguard stores, so that stored
// values sort chronologically as plain strings.
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace radguard {

// Normalises an ISO 8601 date ("2024-05-01", or the basic form "20240501") to
// "YYYY-MM-DD", and a date-time ("2024-05-01T10:00:00+02:00", "...Z", seconds and fraction
// optional, no zone meaning UTC) to UTC "YYYY-MM-DDTHH:MM:SSZ". Both forms sort correctly
// against each other as strings (a date sorts before every time on that day). Fails with
// ErrorCode::usage; the message does not echo the input. Thread-safe.
[[nodiscard]] Result<std::string> normalize_iso8601(std::string_view text);

// The current time as "YYYY-MM-DDTHH:MM:SSZ". Thread-safe.
std::string utc_now_iso8601();

// The instant until which a normalised value counts as "not after": a date means its whole
// day ("2024-05-01" -> "2024-05-01T23:59:59Z"); a date-time is returned unchanged.
std::string end_of(std::string_view normalized);

}  // namespace radguard
