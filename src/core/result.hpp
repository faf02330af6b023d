#pragma once
// The one typed result used at every library boundary.
//
// Functions that can fail return Result<T>: a value on success, an Error on failure.
// Errors carry a category (ErrorCode) that front ends map to exit codes, DICOM
// statuses and HTTP statuses through one table (core/error_table.hpp), and a message
// for people. Messages never contain attribute values (no PHI); they may name an
// input file, which belongs to the operator running the tool.
#include <expected>
#include <string>
#include <utility>

namespace radguard {

enum class ErrorCode {
  usage,            // the caller asked for something malformed (bad option, bad recipe)
  io,               // a file could not be read, written or renamed
  not_dicom,        // the input is not a DICOM file (or, read as a volume, not NIfTI) at all
  malformed_dicom,  // the input claims to be DICOM but cannot be parsed safely
  unsupported,      // valid, but something radguard does not handle (fails closed)
  key,              // missing, unreadable or malformed secret key
  crypto,           // a cryptographic primitive failed
  policy,           // the de-identification policy refuses this input (fail closed)
  conflict,         // two inputs would produce the same output
  not_found,        // a requested record does not exist
  integrity,        // stored state has been altered or is inconsistent
  internal,         // a bug: an invariant did not hold
};

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;

// Result<void> reads better as Status at call sites.
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes context ("reading foo.dcm: ") to an error as it crosses a layer.
inline Error with_context(Error error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

}  // namespace radguard
