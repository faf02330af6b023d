#pragma once
// radguard deface as one library call: DICOM series (grouped, head series defaced and written
// as <Series Instance UID>/<SOP Instance UID>.dcm) and volumes (NIfTI, InVesalius; written as
// volume-NNNN.nii.gz with a clean header) into an output folder, with one result per series,
// volume and failed input. Front ends (the CLI) only parse options and print.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/atomic_file.hpp"
#include "core/result.hpp"
#include "deface/deface.hpp"

namespace radguard::deface {

// What is done with a defaced DICOM series whose headers still identify the patient.
enum class DicomHeaders : std::uint8_t {
  refuse,  // not written (the series fails): de-identify with radguard deid instead
  keep,    // written with the original headers (--keep-headers)
};

struct DefaceRunOptions {
  std::vector<std::filesystem::path> inputs;  // files and folders
  std::filesystem::path output;
  std::filesystem::path preview;  // before/after renderings as PNG here; empty: none
  unsigned threads = 0;           // for reading DICOM; 0: one per core
  DefaceOptions deface;
  DicomHeaders headers = DicomHeaders::refuse;
  PendingFile::Existing existing = PendingFile::Existing::keep_if_different;
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  // Optional: told of each result as it is made (the CLI prints a line per result), from the
  // calling thread.
  std::function<void(const nlohmann::json& result)> on_result;
};

struct DefaceRunReport {
  // One object per series ("series"), volume ("input" and "output") or failed input, with
  // "status" ok, skipped or failed and, when failed, "error" and "message".
  nlohmann::json results = nlohmann::json::array();
  double dicom_seconds = 0;
  bool any_failed = false;
};

// Runs over every input. Never fails as a whole except with ErrorCode::usage when the output
// folder lies inside a DICOM input; every other problem is a failed result.
[[nodiscard]] Result<DefaceRunReport> run_deface(const DefaceRunOptions& options);

// One line for people per result ("series <uid> (N files): ok, ..."), as the CLI prints them.
std::string result_text(const nlohmann::json& result);

}  // namespace radguard::deface
