#pragma once
// Signing and verifying many DICOM files: input expansion, output placement, per-file
// outcomes that never stop a batch, and the reports (JSON for machines, text for people).
// The per-file work is dicom::sign_file / dicom::verify_file.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "dicom/signature.hpp"

namespace radguard::signing {

using dicom::SignatureProfile;
using dicom::Signer;
using dicom::TrustStore;
using dicom::Verdict;

// Signs one file for callers that release files (deid, export): reads `input`, adds
// radguard's signatures and publishes `output` atomically (output may equal input). Same
// errors as dicom::sign_file. Thread-safe.
[[nodiscard]] Result<dicom::SignedFile> sign_file(const std::filesystem::path& input,
                                                  const std::filesystem::path& output,
                                                  const Signer& signer);

enum class OutputMode : std::uint8_t { to_folder, in_place };

struct SignBatchOptions {
  std::vector<std::filesystem::path> inputs;  // files or folders (walked recursively)
  OutputMode mode = OutputMode::to_folder;
  std::filesystem::path output;  // the folder, for OutputMode::to_folder
  unsigned threads = 1;          // 0: one per core
};

struct SignOutcome {
  std::filesystem::path input, output;
  std::optional<Error> error;  // nullopt: signed
  std::string signature_uid;
  std::uint64_t bytes = 0;
};

struct SignBatchReport {
  std::vector<SignOutcome> files;
  std::size_t failed() const;
  int exit_code() const;  // kExitSuccess, or kExitSomeFailed when any file failed
};

// Signs every input file. A file that fails is reported with its reason and the batch goes
// on. In folder mode a file given directly lands at OUTPUT/name, a file found under a
// folder argument at OUTPUT/<path below that folder>. Fails (as a whole) only with
// ErrorCode::usage for an impossible request (no output folder, output inside... ).
[[nodiscard]] Result<SignBatchReport> sign_files(const SignBatchOptions& options,
                                                 const Signer& signer);

struct VerifyOutcome {
  std::filesystem::path path;
  std::optional<Error> error;  // the file could not be examined at all
  dicom::FileVerification result;
};

struct VerifyBatchReport {
  std::vector<VerifyOutcome> files;
  std::size_t not_valid() const;
  int exit_code() const;  // kExitSuccess only when every file is valid
};

// Verifies every input file (files or folders). Never stops early. Thread-safe.
VerifyBatchReport verify_files(std::span<const std::filesystem::path> inputs,
                               const TrustStore& trust, unsigned threads);

std::string sign_report_json(const SignBatchReport& report, const Signer& signer);
std::string sign_report_text(const SignBatchReport& report);
std::string verify_report_json(const VerifyBatchReport& report);
std::string verify_report_text(const VerifyBatchReport& report);

}  // namespace radguard::signing
