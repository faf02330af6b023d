#pragma once
// A de-identification run over files and folders: every DICOM input is read, passed through
// the header stage and published into the output folder under names made of pseudonymous
// UIDs only (input paths often hold patient names).
#include <array>
#include <atomic>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "deid/header_stage.hpp"
#include "dicom/dicom_file.hpp"
#include "volume/volume.hpp"

namespace radguard::deid {

enum class FileStatus : std::uint8_t {
  written,            // de-identified and published
  failed,             // a DICOM input that could not be read or processed; nothing written
  skipped_not_dicom,  // not DICOM: ignored and reported
  dicomdir_dropped,   // a DICOMDIR: never copied (it lists patient names)
  duplicate,          // another input of this run has the same output name; nothing written
};

std::string_view file_status_name(FileStatus status);

// What the pixel stages did to one file, for the reports: counts only, never a word read.
struct PixelWork {
  std::uint32_t frames = 0;           // frames in the image, when a stage decoded it
  bool read_for_text = false;         // Clean Pixel Data decoded and read its frames
  std::uint32_t frames_redacted = 0;  // frames with text blacked out
  std::uint32_t text_boxes = 0;       // areas blacked out
  bool defaced = false;               // of a head series whose face was removed (code 113102)
  std::uint32_t frames_defaced = 0;   // frames given defaced pixels (0: below the face)
  std::string refused_by;             // the stage that refused the file; "" when none did

  bool changed() const { return frames_redacted > 0 || frames_defaced > 0; }
  // Worth a line in a report: a stage read, changed or refused the file.
  bool any() const { return read_for_text || defaced || changed() || !refused_by.empty(); }
};

struct FileOutcome {
  std::filesystem::path input;
  FileStatus status = FileStatus::failed;
  std::optional<ErrorCode> error;
  std::string reason;            // why it failed or was skipped; names no attribute value
  std::filesystem::path output;  // relative to the output folder, when written
  std::uint64_t bytes = 0;       // input size
  // Components of the input's path (relative to the input it was found under) that hold an
  // identifying value of the file's own header; masked in reports.
  std::vector<std::string> identifying_components;
  std::filesystem::path other_input;  // for duplicates: the input that came first
  PixelWork pixels;                   // what the pixel stages did (or which one refused it)
};

// The outcomes of a run's inputs that were not written, in input order, with memory flat in
// their number: the first `held` stay in memory, the rest go to an unnamed temporary file
// (O_TMPFILE, mode 0600: paths and reasons may name patients, and nothing is left behind when
// the process dies) in $TMPDIR (default /tmp), never the output folder (a release's staging
// folder, removable media), and are read back by for_each. Reports stream from it; export
// and share read it back with for_each into reports of their own (which are not flat).
// Move-only.
class ProblemLog {
 public:
  static constexpr std::size_t kHeldByDefault = 256;
  ProblemLog() : ProblemLog(kHeldByDefault) {}
  explicit ProblemLog(std::size_t held);
  ProblemLog(ProblemLog&& other) noexcept;
  ProblemLog& operator=(ProblemLog&& other) noexcept;
  ProblemLog(const ProblemLog&) = delete;
  ProblemLog& operator=(const ProblemLog&) = delete;
  ~ProblemLog();

  // Appends one outcome (the caller keeps input order). Fails with ErrorCode::io when the
  // temporary file cannot be made or written; the log is then incomplete and the run fails.
  [[nodiscard]] Status add(FileOutcome outcome);
  // Writes what add() still buffers, so that a full disk fails the run, not its report.
  // After any I/O error every later call returns that error (the file may be misaligned).
  [[nodiscard]] Status finish();
  std::size_t size() const { return held_.size() + spilled_; }
  bool empty() const { return size() == 0; }
  // Outcomes held in memory now: at most `held`, whatever size() is.
  std::size_t held_in_memory() const { return held_.size(); }
  // Failed inputs refused because their pixels may show burned-in text (kBurnedInRefusal).
  std::size_t burned_in_refused() const { return burned_in_; }
  // Calls `visit` on every outcome in order. Fails with ErrorCode::io when the temporary
  // file cannot be read back.
  [[nodiscard]] Status for_each(const std::function<void(const FileOutcome&)>& visit) const;
  [[nodiscard]] Result<std::vector<FileOutcome>> all() const;

 private:
  [[nodiscard]] Status flush() const;
  std::vector<FileOutcome> held_;
  std::size_t limit_;
  int fd_ = -1;
  std::size_t spilled_ = 0;
  std::size_t burned_in_ = 0;
  mutable std::string pending_;  // encoded outcomes not yet written to the file
  mutable std::uint64_t written_ = 0;        // bytes in the file: caps what read-back accepts
  mutable std::optional<Error> broken_;      // the first I/O error: the log is incomplete
};

// A last step on each finished output before it is published (e.g. signing it); it works on
// the temporary file in place. A failure fails that file, which is then never published.
// Called from worker threads concurrently: must be thread-safe.
using OutputFinisher = std::function<Status(const std::filesystem::path& temporary_output)>;

// What a pixel stage's preparation is given: the run's inputs as given (files, folders).
struct PixelStageContext {
  std::span<const std::filesystem::path> inputs;
  unsigned threads = 0;  // 0: one per core
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
};

// A step on each opened input before the header stage, while the header still holds the
// original identifying values (PS3.15 Clean Pixel Data, Clean Recognizable Visual Features):
// `run` changes the pixel data in place and says what it did in `work`. A failure fails that
// file, which is then never written: whatever a pixel stage cannot show to be clean is not
// released; the report names the stage (`name`) as the one that refused it. `run` is called
// from worker threads concurrently: it must be thread-safe. `prepare`, when set, is called
// once by run_deid before any file (a stage that works on whole series looks at every input
// first); its failure fails the run, and its time is reported as the stage's.
// `run_volume`, when set, is the stage's work on a NIfTI volume (DeidRunOptions::volumes):
// it changes the voxels in place; unset, the stage has nothing to do on volumes.
struct PixelStage {
  std::string name;  // "clean-pixel-data", "clean-recognizable-visual-features" ...
  std::function<Status(const std::filesystem::path& input, dicom::DicomFile& file,
                       PixelWork& work)>
      run;
  std::function<Status(const PixelStageContext& context)> prepare;
  std::function<Status(volume::Volume& volume, PixelWork& work)> run_volume;
};

// Time a pixel stage took in a run: its preparation, and its work on files summed over threads.
struct StageTiming {
  std::string name;
  double prepare_seconds = 0;
  double seconds = 0;
};

// Whether a run keeps an outcome for every written file (for callers that list the release,
// such as export) or only counts them (flat memory on runs of any size).
enum class WrittenOutcomes : std::uint8_t { count_only, keep };

// How reports and messages name inputs: relative to the input given, with every component
// that holds an identifying value of a file's header (name parts, IDs, birth date, accession)
// masked as <patient>, so a report can travel; or as found (--report-full-paths).
enum class ReportPaths : std::uint8_t { masked, full };

// What a run does with an output file that an earlier run left under the same name.
enum class ExistingOutputs : std::uint8_t {
  keep,     // identical: fine; different: that input fails (conflict), the file stays
  replace,  // replaced (--overwrite)
};

// What a run does with NIfTI volumes (.nii, .nii.gz) among its inputs: skips them as not
// DICOM, or de-identifies them: the header's text fields and extensions are dropped
// (volume::clean_nifti_header), the pixel stages that work on volumes run (defacing), and the
// output is volumes/<keyed token of the file's content>.nii.gz, since the input's own name
// often is the patient's. A volume has no patient identity to check consent against and
// carries no DICOM signature: runs that need either skip volumes.
enum class VolumeInputs : std::uint8_t { skip, deidentify };

// Where a run looks for the temporary files a killed run left in its output folder
// (remove_stale_temporaries). A shard of a release (--files-from) shares the output tree with
// every other shard: walking all of it would make N shards walk N times what the release
// writes. It looks only in the folders its own files went to, which hold whatever a killed
// run of the same list left; the whole tree is walked once, by radguard plan merge.
enum class StaleTemporaries : std::uint8_t {
  whole_output,     // the whole output tree, before the run
  written_folders,  // the folders this run wrote files into, after its files
};

struct DeidRunOptions {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;
  unsigned threads = 0;  // 0: one per core
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  std::vector<PixelStage> pixel_stages;  // in order, before the header stage
  OutputFinisher finish;                 // optional
  WrittenOutcomes written = WrittenOutcomes::count_only;
  ReportPaths report_paths = ReportPaths::masked;
  ExistingOutputs existing = ExistingOutputs::keep;
  // Optional: told of the run's progress and of each file's outcome (batch::RunListener), in
  // addition to the progress bar `progress` asks for. Must outlive the run.
  batch::RunListener* listener = nullptr;
  // Optional: checked between files; once cancelled no new file starts, the files begun are
  // finished and published whole (no partial file is ever left), and the report says
  // RunEnd::cancelled. Must outlive the run.
  const batch::CancelToken* cancel = nullptr;
  VolumeInputs volumes = VolumeInputs::skip;
  // Outcomes of inputs not written that the report holds in memory; the rest spill to an
  // unnamed temporary file in $TMPDIR (ProblemLog), so memory stays flat in corpus size.
  std::size_t problems_held = ProblemLog::kHeldByDefault;
  StaleTemporaries stale_temporaries = StaleTemporaries::whole_output;
  // Folders reports name inputs relative to besides `inputs` (canonical, absolute): a shard's
  // run names each file as an input, and its plan's input folders (plan::list_roots) tell
  // apart two files of one name in two folders. Never read for inputs, only for names.
  std::vector<std::string> report_roots;
};

// What a run did. Written files are only counted and the outcomes of inputs not written go
// to a ProblemLog (a bounded number in memory, the rest in a temporary file), so a run over
// millions of files keeps a small report. What still grows with the run: the sorted input
// list (front-coded, PathList: a file name and 12 bytes per input) and the output names'
// claims (duplicate detection: a 16-byte digest in a hash map per written file).
struct DeidRunReport {
  ProblemLog problems;                // every input not written, in input order
  std::vector<FileOutcome> written;   // with WrittenOutcomes::keep: every input written, in order
  // Every written input a pixel stage read or changed (PixelWork::any), in input order: kept
  // in either WrittenOutcomes mode (a few hundred bytes per such file).
  std::vector<FileOutcome> pixel_work;
  std::vector<StageTiming> stage_timings;  // one per pixel stage, in order
  std::vector<batch::MissingInput> missing_inputs;
  // Each input found, canonical (batch::InputSet::canonical_inputs) and then
  // DeidRunOptions::report_roots: what reports name inputs relative to. Held in memory only.
  std::vector<std::string> input_roots;
  std::array<std::size_t, 5> counts{};  // by FileStatus
  std::size_t files_seen = 0;
  std::uint64_t bytes_read = 0;
  double seconds = 0;
  // Path components found to hold identifying values in any file of the run (sorted); a
  // component is masked wherever it appears (a DICOMDIR or a non-DICOM file in a patient's
  // folder is masked by its DICOM neighbours). Held in memory only, never written.
  std::vector<std::string> identifying_components;
  std::size_t stale_temporaries_removed = 0;  // left in the output folder by a killed run
  batch::RunEnd end = batch::RunEnd::completed;
  std::size_t files_not_started = 0;  // cancelled: files found but never started

  std::size_t count(FileStatus status) const { return counts[static_cast<std::size_t>(status)]; }
  // Failed inputs refused because their pixels may show burned-in text (kBurnedInRefusal).
  std::size_t burned_in_refused() const { return problems.burned_in_refused(); }
  // DICOM inputs found (written, failed or duplicate; not DICOMDIR files).
  std::size_t dicom_inputs() const {
    return count(FileStatus::written) + count(FileStatus::failed) + count(FileStatus::duplicate);
  }
  // 0 when every DICOM input was written and there was at least one (and the run was not
  // cancelled), 1 otherwise.
  int exit_code() const;
};

// The output name of an object: <study>/<series>/<instance>.dcm, from pseudonymous UIDs.
// Fails with ErrorCode::malformed_dicom when the object has no SOP Instance UID.
[[nodiscard]] Result<std::filesystem::path> output_name(const InstanceIdentity& identity);

// The steps every instance goes through, wherever it came from (a file, memory): its pixel
// attributes checked against its pixel data, the pixel stages in order, the header stage.
// `id` names the instance to the stages (the input path; a neutral id for an instance held in
// memory). Returns the output name (output_name). On failure `work.refused_by` names the
// pixel stage that refused the instance, if one did. `stage_nanoseconds`, when given, adds
// each pixel stage's time. Thread-safe as the stages are.
[[nodiscard]] Result<std::filesystem::path> deidentify_instance(
    const std::filesystem::path& id, dicom::DicomFile& file, const HeaderStage& stage,
    std::span<const PixelStage> pixel_stages, PixelWork& work,
    std::span<std::atomic<std::int64_t>> stage_nanoseconds = {});

// De-identifies one file into `output_root` (pixel stages, header stage, finisher),
// publishing atomically. Never throws; the outcome says what happened. The stages' `prepare`
// is not called: the caller prepares them.
FileOutcome deidentify_file(const std::filesystem::path& input,
                            const std::filesystem::path& output_root, const HeaderStage& stage,
                            std::span<const PixelStage> pixel_stages = {},
                            const OutputFinisher& finish = {});

// Runs over every input. Thread-safe stage use; outputs are byte-identical whatever the
// thread count. Fails (ErrorCode::usage) only when the output folder lies inside an input.
[[nodiscard]] Result<DeidRunReport> run_deid(const DeidRunOptions& options,
                                             const HeaderStage& stage);

// The machine-readable report: counts, failures with reasons, options, key fingerprint.
// write_report_json gives it to `sink` piece by piece (the per-file arrays entry by entry,
// read back from the ProblemLog), so a run of any size writes it without holding it;
// report_json returns the same text. Both fail with ErrorCode::io when the problems cannot be
// read back (an I/O error on the run's own temporary file); write_report_json has then given
// `sink` part of the report, which the caller must not publish.
[[nodiscard]] Status write_report_json(const DeidRunReport& report, const HeaderStage& stage,
                                       const DeidRunOptions& options,
                                       const std::function<void(std::string_view)>& sink);
[[nodiscard]] Result<std::string> report_json(const DeidRunReport& report,
                                              const HeaderStage& stage,
                                              const DeidRunOptions& options);

// A short summary for people. `options` says how inputs are named (masked by default).
// Fails as report_json does.
[[nodiscard]] Result<std::string> report_text(const DeidRunReport& report,
                                              const DeidRunOptions& options = {});

// Lines for people, shared by deid and export: what the pixel stages did (a summary, one line
// per redacted file, one per defaced series: files grouped by their output folder) and their
// times. `name` says how an input is named. Empty when no stage read or changed anything.
std::string pixel_work_text(std::span<const FileOutcome> work,
                            std::span<const StageTiming> timings,
                            const std::function<std::string(const FileOutcome&)>& name);

// The JSON of what the pixel stages did, shared by deid, export and share: one file's work;
// counts over the files written (`work`) and the stages that refused inputs (`problems`); the
// stages' times and the run's total.
nlohmann::json pixel_work_json(const PixelWork& work);
nlohmann::json pixel_counts_json(std::span<const FileOutcome> work,
                                 std::span<const FileOutcome> problems);
nlohmann::json timings_json(std::span<const StageTiming> timings, double seconds);

// Error lines for people ("error: NAME: REASON"), shared by deid and export: inputs that fail
// in a row for the same reason (the slices of a refused series) share one line, which says
// how many more inputs it stands for.
std::string failure_text(std::span<const FileOutcome> failures,
                         const std::function<std::string(const FileOutcome&)>& name,
                         const std::function<std::string(const std::string&)>& reason);

}  // namespace radguard::deid
