#pragma once
// `radguard share`: one step for a patient or a clinician who wants to share scans (a CD as it
// comes, folders, zip files). No key file (a random key lives in memory for the run and is
// never stored, so the copy cannot be linked back by anyone), every protection on, a copy a
// viewer opens (a rebuilt DICOMDIR) and a report.html a non-expert understands. Fails
// closed: whatever cannot be shown to be clean is left out and the report says why.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "deid/deid_run.hpp"

namespace radguard::share {

// The PS3.15 options `share` always uses, on top of the Basic Profile.
const std::vector<std::string>& share_options();

struct ShareOptions {
  std::vector<std::filesystem::path> inputs;  // files, folders, .zip files
  // A path ending in .zip (case-insensitive): a zip file; otherwise a folder that does not
  // exist or is empty. Never replaced when it holds something.
  std::filesystem::path output;
  unsigned threads = 0;
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  // What the zips among the inputs may unpack to, all together (bytes actually written).
  std::uint64_t max_unpacked_bytes = 64ULL << 30;
  // Optional, for a front end that shows progress or stops a run (radguard serve): handed to
  // the de-identification run (its events and cancel, see deid::DeidRunOptions). Must
  // outlive the run.
  batch::RunListener* listener = nullptr;
  const batch::CancelToken* cancel = nullptr;
  // Optional, for a page on this computer only (radguard serve): a folder, outside the copy,
  // that receives the pictures from before (each blacked-out frame before, with the boxes
  // outlined; each head's front and side renderings before its face was removed). They show
  // what was removed, so they never go into the copy or its report. Empty: none made.
  std::filesystem::path before_previews;
};

// What happened to the pixels of one shared file (as deid and export report it).
using PixelWork = deid::PixelWork;

struct SharedFile {
  std::string name;      // "DICOM/ST000001/SE000001/IM000001"
  std::string modality;  // e.g. "MR"; "" when absent
  std::string kind;      // plain words: "MR image", "screen capture" ...
  PixelWork pixels;
};

struct SharedStudy {
  std::string label;  // "Study 1"
  std::vector<SharedFile> files;
};

// An image (a frame, or a defaced head's rendering) shown in the report, as a PNG.
struct Preview {
  std::string file;     // "previews/p001.png", relative to the release
  std::string caption;  // plain words
  // The same picture before ("b3.png" in ShareOptions::before_previews); "" when none.
  std::string before;
};

// A NIfTI volume: shared as NIFTI/VOLnnnnn.nii.gz with a fresh header (geometry only: no
// description, intent name, auxiliary file or extension from the input) and its face removed.
struct SharedVolume {
  std::string name;  // "NIFTI/VOL00001.nii.gz"
};

struct ShareReport {
  std::vector<SharedStudy> studies;
  std::vector<SharedVolume> volumes;
  std::size_t files_shared = 0;
  // Inputs not shared, by plain reason (never a path or a value).
  std::map<std::string, std::size_t> left_out;
  std::size_t not_images = 0;          // other files on the medium (viewer programs ...)
  std::size_t dicomdirs_replaced = 0;  // input DICOMDIRs (they list names): rebuilt instead
  std::size_t faces_removed = 0;       // head series defaced
  std::size_t images_redacted = 0;     // images with text blacked out
  std::vector<Preview> previews;
  std::filesystem::path output;
  double seconds = 0;
  double defacing_seconds = 0;  // of `seconds`: grouping and defacing head series

  std::size_t files_left_out() const;
  // 0 when something was shared and nothing was left out, 1 otherwise.
  int exit_code() const;
};

// Runs a share. Fails (nothing written) with ErrorCode::usage for a bad output, ErrorCode::io,
// or ErrorCode::policy when nothing at all could be shared.
[[nodiscard]] Result<ShareReport> run_share(const ShareOptions& options);

// The report.html written into the release: plain words, no value from any header.
std::string report_html(const ShareReport& report);
// A few lines for the terminal.
std::string report_text(const ShareReport& report);
// The same as JSON (--json): counts, per file of the copy what was done to its pixels, what
// was left out and why (plain reasons, counted), timings. No path of the input, no value.
std::string report_json(const ShareReport& report);

}  // namespace radguard::share
