#pragma once
// One table from error category to the statuses each front end reports.
#include <cstdint>
#include <string_view>

#include "core/result.hpp"

namespace radguard {

struct ErrorStatuses {
  ErrorCode code;
  std::string_view name;       // stable machine-readable name, used in JSON reports
  int exit_code;               // process exit status for the CLI
  std::uint16_t dicom_status;  // DIMSE status for the network gateway
  int http_status;             // HTTP status for the web front end
};

// The statuses for an error category. Never fails: every ErrorCode has a row.
const ErrorStatuses& statuses_for(ErrorCode code);

// Exit statuses of every radguard command.
inline constexpr int kExitSuccess = 0;
inline constexpr int kExitSomeFailed = 1;  // ran, but at least one input failed
inline constexpr int kExitUsage = 2;       // bad command line; nothing was done

}  // namespace radguard
