#pragma once
// Defacing DICOM: files are grouped into series, each head CT or MR series is assembled into
// a 3D volume in patient space, defaced with deface::deface(), and the result is kept per
// input file so that it can be written back into that file later (by `radguard deface`, or
// by `radguard deid` as a pixel stage before the header stage, which then gives the outputs
// their pseudonymous UIDs).
//
// Assembly: slices are sorted along the normal of Image Orientation (Patient) by Image
// Position (Patient) whatever the file order; the slice spacing is the median step along the
// normal. A step more than 1.5 times the median is reported as missing slices, which are
// filled (for defacing only; nothing is written for them) from the nearest slice. Gantry tilt
// (and any other in-plane offset between slices) is handled by resampling each slice onto an
// orthogonal grid with its own in-plane shift; changes are mapped back by the same shift, so
// pixels whose neighbourhood the defacing did not touch keep their stored values exactly.
// CT values are Hounsfield units (Rescale Slope/Intercept applied per slice); written values
// are (physical - intercept) / slope, rounded and clamped to the stored range. An enhanced
// multi-frame image is a stack of its frames: Plane Position (Patient) per frame, Plane
// Orientation, Pixel Measures and Pixel Value Transformation shared or equal in every frame
// (otherwise, or when a frame has no position, the image is refused); its changed frames are
// replaced, the others keep their stored values.
//
// Which series are heads: modality CT or MR, and a head word (HEAD, BRAIN, SKULL, CRANIUM,
// FACE, ORBIT, SINUS, NECK ...) in Body Part Examined, Anatomic Region Sequence, Study or
// Series Description or Protocol Name; when none of those says anything, a field of view of
// at most 300 mm in both in-plane directions counts as a head. Other series are left alone.
// A CT/MR series that names no head part but calls itself whole-body (WHOLEBODY, WB, PET/CT
// ...) is refused: it usually shows the face; so is one that names no body part, is wider than
// a head and longer than 800 mm in any direction (longer than a chest-abdomen-pelvis scan).
// Enhanced images name their anatomy in Frame Anatomy too. A head series that cannot be defaced
// safely (fewer than `minimum_slices` slices, a multi-frame image without per-frame geometry,
// colour, duplicate positions, a refusal by deface()) is refused: every one of its files fails.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/result.hpp"
#include "deface/deface.hpp"

namespace radguard::dicom {
class DicomFile;
}

namespace radguard::deface {

// What happens to a series (and to each of its files).
enum class SeriesOutcome : std::uint8_t {
  defaced,   // head series, defaced: changed slices get new pixels, every file gets 113102
  not_head,  // not a head CT/MR image series: untouched
  refused,   // a head series that could not be defaced safely: every file fails
  examined,  // SeriesWork::examine: a head series looked at for a face, nothing changed
};

// What is done to a head series once assembled.
enum class SeriesWork : std::uint8_t {
  deface,   // defaced, for apply() to write back
  examine,  // only face_evidence(): SeriesReport::evidence (radguard audit); apply() refuses
};

std::string_view to_string(SeriesOutcome outcome);

// One assembled stack. A Series Instance UID splits further by Frame of Reference, image
// orientation, size and echo/temporal position when they differ.
struct SeriesReport {
  std::string series_uid;  // the original Series Instance UID (a UID, no patient data)
  std::string modality;    // Modality (0008,0060) as found, "" when absent
  SeriesOutcome outcome = SeriesOutcome::not_head;
  std::string reason;  // why not_head or refused; never an attribute value
  std::vector<std::filesystem::path> files;
  std::size_t slices = 0;          // slices assembled (single-frame files and enhanced frames)
  std::size_t missing_slices = 0;  // positions filled by interpolation
  std::size_t slices_changed = 0;  // defaced: slices whose pixels changed
  std::array<int, 3> dims{0, 0, 0};
  volume::Vec3 spacing{0, 0, 0};
  volume::Vec3 origin{0, 0, 0};  // the assembled grid (LPS), as deface() saw it
  std::array<volume::Vec3, 3> axes{};
  double tilt_degrees = 0;             // angle between the slice step and the normal
  std::vector<std::string> warnings;   // missing slices, uneven spacing, tilt
  std::optional<DefaceReport> deface;  // when deface() ran (defaced, or refused by it)
  std::optional<FaceCheck> evidence;   // SeriesWork::examine: what face_evidence() found
  double read_seconds = 0, deface_seconds = 0, prepare_seconds = 0;
};

struct SeriesOptions {
  SeriesWork work = SeriesWork::deface;
  unsigned threads = 1;  // header reading and pixel decoding
  std::size_t minimum_slices = 10;
  double head_field_of_view_mm = 300;  // in-plane extent that counts as a head, when nothing says
  // Where replacement pixels wait until apply(): a private folder (mode 0700) is made inside
  // it and removed with the SeriesDefacing. Empty: the system temporary folder.
  std::filesystem::path work_parent;
  // A progress bar on stderr (on a terminal): headers read, then series defaced.
  batch::ProgressDisplay progress = batch::ProgressDisplay::never;
  // Called per series with its renderings (also when refused); `series` is the label used in
  // reports (the Series Instance UID, with a suffix when a series was split).
  std::function<void(const std::string& series, const std::vector<Rendering>& before,
                     const std::vector<Rendering>& after)>
      on_renderings;
};

// What apply() did to one file.
struct AppliedDefacing {
  bool defaced = false;            // of a defaced head series (code 113102 added)
  std::size_t frames_changed = 0;  // frames given new pixels
};

// The outcome of defacing every series among some inputs. Immutable once built; apply() is
// thread-safe. Copies share the same state (and its work folder).
class SeriesDefacing {
 public:
  // Brings the defacing to an already-open `file` read from `input` (a path as given to
  // deface_dicom_series or found under one of its folders): replaces the pixel data of
  // changed slices (a single-frame file whose slice did not change keeps its pixel data
  // bit-identical; in an enhanced file with a changed frame, the others keep their values,
  // and their bytes where encode_pixels keeps them) and adds code 113102
  // to the De-identification Method Code Sequence of every file of a defaced series (existing
  // codes are kept). Files of series that are not heads are left untouched. Fails with
  // ErrorCode::policy for a file of a refused series (the reason says why), ::usage for a
  // file that was not among the inputs, ::integrity when the file is not the one read
  // (another SOP Instance UID or image size), ::io when the stored pixels cannot be read.
  [[nodiscard]] Result<AppliedDefacing> apply(const std::filesystem::path& input, dicom::DicomFile& file) const;

  const std::vector<SeriesReport>& series() const;
  // Inputs that could not be read as DICOM images while grouping (not DICOM, malformed):
  // never part of a series; apply() on them fails with the reason.
  struct Unreadable {
    std::filesystem::path path;
    ErrorCode code = ErrorCode::io;
    std::string reason;
  };
  const std::vector<Unreadable>& unreadable() const;

  struct State;
  explicit SeriesDefacing(std::shared_ptr<const State> state);

 private:
  std::shared_ptr<const State> state_;
};

// Groups the DICOM files among `inputs` (files and folders, walked with batch::find_files)
// into series, defaces every head series and keeps the result for apply(). Never fails for a
// single series or file (their outcomes say what happened; inputs that do not exist are
// ignored, for the caller to report); fails with ErrorCode::io when the work folder cannot be
// made.
[[nodiscard]] Result<SeriesDefacing> deface_dicom_series(
    const std::vector<std::filesystem::path>& inputs, const DefaceOptions& options,
    const SeriesOptions& series_options = {});

// The CID 7050 code added to every output of a defaced series.
inline constexpr const char* kCleanRecognizableVisualFeatures = "113102";

}  // namespace radguard::deface
