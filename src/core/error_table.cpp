#include "core/error_table.hpp"

#include <array>

namespace radguard {
namespace {

// DIMSE statuses from PS3.7 Annex C: 0xA700 out of resources, 0xA900 data set does not
// match SOP class, 0xC000 cannot understand, 0x0122 SOP class not supported,
// 0x0110 processing failure, 0xA801 refused: move destination unknown (not found).
constexpr std::array kTable = {
    ErrorStatuses{ErrorCode::usage, "usage", kExitUsage, 0xC000, 400},
    ErrorStatuses{ErrorCode::io, "io", kExitSomeFailed, 0xA700, 500},
    ErrorStatuses{ErrorCode::not_dicom, "not_dicom", kExitSomeFailed, 0xC000, 415},
    ErrorStatuses{ErrorCode::malformed_dicom, "malformed_dicom", kExitSomeFailed, 0xA900, 422},
    ErrorStatuses{ErrorCode::unsupported, "unsupported", kExitSomeFailed, 0x0122, 422},
    ErrorStatuses{ErrorCode::key, "key", kExitUsage, 0x0110, 500},
    ErrorStatuses{ErrorCode::crypto, "crypto", kExitSomeFailed, 0x0110, 500},
    ErrorStatuses{ErrorCode::policy, "policy", kExitSomeFailed, 0xC000, 403},
    ErrorStatuses{ErrorCode::conflict, "conflict", kExitSomeFailed, 0x0110, 409},
    ErrorStatuses{ErrorCode::not_found, "not_found", kExitSomeFailed, 0xA801, 404},
    ErrorStatuses{ErrorCode::integrity, "integrity", kExitSomeFailed, 0x0110, 409},
    ErrorStatuses{ErrorCode::internal, "internal", kExitSomeFailed, 0x0110, 500},
};

}  // namespace

const ErrorStatuses& statuses_for(ErrorCode code) {
  for (const auto& row : kTable) {
    if (row.code == code) return row;
  }
  return kTable.back();  // unreachable while every ErrorCode has a row (tested)
}

}  // namespace radguard
