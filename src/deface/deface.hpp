#pragma once
// Defacing: removes (or blurs) the face of a head CT or MR volume so that a surface
// rendering of it cannot be matched to a photograph (PS3.15 Clean Recognizable Visual
// Features, CID 7050 code 113102), while the brain and the skull around it stay untouched.
//
// The face is found from the head itself, with no atlas: the head is segmented by
// threshold (CT: skin above -300 HU; MR: Otsu), the largest connected part kept (drops a
// head holder or table), and the nose tip taken as the most anterior skin point below the
// vertex. Everything anterior to a cut surface hung from the nose tip (deep enough to take
// the nose, lips, chin, eyelids and brow, and shaped to pass in front of the frontal and
// temporal lobes) is the face. Proof is by rendering the skin surface before and after and
// running OpenCV's Haar face cascades on the renderings: a volume counts as defaced only
// when a face was seen before and none after. When one is still seen after, deface() retries
// up to twice with a stronger cut (CutVariant: deeper below the eyes, fuller dome), and fails
// closed when the last attempt still shows a face.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "volume/volume.hpp"

namespace radguard::deface {

enum class DefaceMethod : std::uint8_t { remove, blur };
enum class Modality : std::uint8_t { automatic, ct, mr };

// A grey image, row 0 at the top (superior), the patient's left on the right as a viewer
// facing the patient sees it.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // row-major
};

struct Rendering {
  std::string view;  // "front", "yaw+30" ...
  Image image;
};

// One cascade's strongest finding on one rendering.
struct Detection {
  std::string view;
  std::string cascade;    // cascade file stem, e.g. "haarcascade_frontalface_alt2"
  int faces = 0;          // detections after grouping (3 neighbours or more)
  double best_score = 0;  // highest levelWeight (last-stage margin) among them; 0 when none
  bool counted = false;   // faces > 0 and best_score reached the cascade's decision threshold
};

// The geometric face evidence on one view (front, yaw+-30) of the skin surface, measured on
// the rendering's depth buffer (millimetres): what a face has and a defaced or face-free head
// has not.
struct ReliefView {
  std::string view;
  // The nose: the strongest narrow protrusion, its tip in front of the surface 15 mm either
  // side (at the same height) over 10 mm of height. A face: 12 mm or more (a clipped nose
  // tip still 8+); a cap, a cut face, a brain or a neck: under 6 mm.
  double nose_mm = 0;
  // The eyes: two pits side by side (35-80 mm apart, within 12 mm in height), each deeper
  // than the surface 16 mm above (brow) and below (cheek), less what the surface midway
  // between them is a pit too (a nasal bridge is none; a groove across the face is).
  double eyes_mm = 0;
  bool face = false;  // nose_mm >= kNoseMm or eyes_mm >= kEyesMm
};
inline constexpr double kNoseMm = 8.0;
inline constexpr double kEyesMm = 4.0;

// What a check found. `face_found` is the geometric evidence (relief): a face is present when
// any view shows a nose or a pair of eyes. The Haar cascades' detections are reported beside
// it (they fire on defaced and face-free heads as strongly as on faces, docs/benchmarks.md
// (Defacing)), but decide nothing.
struct FaceCheck {
  bool face_found = false;
  std::vector<ReliefView> relief;     // one per frontal view (front, yaw+30, yaw-30)
  std::vector<Detection> detections;  // every (view, cascade) pair tried
  double best_score() const;          // highest best_score among counted detections; 0 when none
  double nose_mm() const;             // highest ReliefView::nose_mm
  double eyes_mm() const;             // highest ReliefView::eyes_mm
};

enum class Verdict : std::uint8_t {
  defaced,          // face seen before (relief), none after
  no_face_present,  // the intact head shows no nose and no eyes (skull-stripped, already
                    // defaced): released unchanged
};

// What to do when the intact head shows no face (no nose, no eyes on any view): release it
// unchanged (the default: a skull-stripped or already defaced head has nothing to remove), or
// refuse it.
enum class NoFaceBefore : std::uint8_t { refuse, release };

struct DefaceOptions {
  DefaceMethod method = DefaceMethod::remove;
  NoFaceBefore no_face_before = NoFaceBefore::release;
  Modality modality = Modality::automatic;
  // Folder with OpenCV's haarcascade_*.xml files.
  std::filesystem::path cascade_dir = "/usr/share/opencv4/haarcascades";
  bool keep_renderings = false;  // fill DefaceReport::renderings (for --preview)
  // Called with the renderings before and after, also when deface() then refuses, so a
  // caller can show why. May be empty.
  std::function<void(const std::vector<Rendering>& before, const std::vector<Rendering>& after)>
      on_renderings;
};

// How the cut and its cap are shaped. The default is the standard cut; deface() escalates to
// others only when a face is still detected after it.
struct CutVariant {
  // Moves the cut this much further back at and below the nose tip, ramping to nothing 20 mm
  // above it (in front of no brain); the brow-level cut never moves.
  double deepen_mm = 0;
  // The cap's dome: this fraction of the head's half-width at the cut, at most 12 mm.
  double dome_fraction = 0.2;
};

struct DefaceReport {
  Modality modality = Modality::ct;
  Verdict verdict = Verdict::defaced;
  double threshold = 0;     // physical value separating head from background
  volume::Vec3 nose_tip{};  // LPS millimetres
  volume::Vec3 nasion{};    // LPS millimetres (the eyes lie either side of it)
  // How far the head was found turned about the superior axis (yaw, degrees; 0 when under 8
  // or unknown): the face was analysed, cut and checked turned back to look forward.
  double turn_degrees = 0;
  std::size_t voxels_changed = 0;
  std::size_t face_region_voxels = 0;
  // CT: 2 mm guard cells of the intracranial space (above the nose tip) inside the face
  // region; always 0 in a returned report (deface() refuses otherwise). MR: not computed.
  std::size_t intracranial_voxels_in_region = 0;
  FaceCheck before;
  FaceCheck after;  // of the last attempt
  // One per removal tried: when a face is still seen after, deface() undoes it, cuts again
  // with the next CutVariant and proves again, up to three attempts in all.
  struct Attempt {
    CutVariant cut;         // the first attempt uses the default (standard) cut
    double best_score = 0;  // after.best_score() of that attempt; 0 when no face was counted
  };
  std::vector<Attempt> attempts;
  std::vector<Rendering> renderings_before;
  std::vector<Rendering> renderings_after;
  double seconds = 0;
};

// The region that deface() changes, as a mask over the volume's voxels (1 = face), together
// with the facts used to place it. Fails with ErrorCode::unsupported when no head or no
// nose can be found. Thread-safe (no shared state).
struct FaceRegion {
  std::vector<std::uint8_t> mask;  // 0 = keep, 1 = face (to background), 2 = face, becomes the cap
  Modality modality = Modality::ct;
  double threshold = 0;
  volume::Vec3 nose_tip{};
  double forehead_a = 0;  // anterior coordinate (-y, mm) of the forehead's most anterior point
  volume::Vec3 nasion{};  // LPS millimetres: the midline profile's deepest point above the tip
  // The cut surface on the head grid (patient-aligned, grid_step mm cells, x left, z superior):
  // per column (x, z), the anterior coordinate (-y) in front of which everything is face;
  // +infinity where nothing is cut. The geometric proof checks the defaced head against it.
  std::vector<double> cut_a;
  volume::Vec3 grid_origin{};
  double grid_step = 1.0;
  int grid_nx = 0, grid_nz = 0;
};
[[nodiscard]] Result<FaceRegion> find_face(const volume::Volume& volume, Modality modality);
// The same with another cut shape: what deface() escalates to when a face is still seen after.
[[nodiscard]] Result<FaceRegion> find_face(const volume::Volume& volume, Modality modality,
                                           const CutVariant& cut);

// Renders the skin surface (voxels above `threshold`, largest connected part) from the
// front and from the sides. Never fails on a valid volume; an empty head renders black.
std::vector<Rendering> render_head(const volume::Volume& volume, double threshold);

// The geometric evidence: renders the skin surface (voxels above `threshold`) and measures
// each frontal view's relief. Never fails on a valid volume.
FaceCheck check_relief(const volume::Volume& volume, double threshold);

// The face evidence of an intact head, changing nothing: check_relief() at the skin threshold
// of the volume's modality (CT -300 HU; MR from the histogram; `automatic` tells them apart by
// the lowest value). What `radguard audit` asks of a head someone else released. Never fails
// on a valid volume (an empty one shows no face). Thread-safe.
FaceCheck face_evidence(const volume::Volume& volume, Modality modality);

// Runs the frontal and profile Haar cascades on the renderings. Fails with ErrorCode::io when
// a cascade cannot be loaded, ::internal when OpenCV throws. Thread-safe.
[[nodiscard]] Result<FaceCheck> detect_faces(const std::vector<Rendering>& renderings,
                                             const std::filesystem::path& cascade_dir);

// Writes an image as PNG (atomically). Fails with ErrorCode::io or ::internal.
[[nodiscard]] Status write_png(const std::filesystem::path& path, const Image& image);

// Finds and removes/blurs the face of `volume` in place, and proves it by detection.
// On success the volume is defaced (or, with Verdict::no_face_before, the face region was
// still removed but no detector fired before). Fails closed with ErrorCode::policy when a
// face is still detected after, or none was detected before (unless options allow it), or (CT) when
// the face region reaches what looks like intracranial space (brain-range tissue enclosed by bone,
// above the nose tip); ::unsupported when no head/face can be located; ::io when the cascades
// cannot be loaded. On failure the volume may have been modified: callers must not release it.
// Thread-safe for distinct volumes (cascades are loaded per call).
[[nodiscard]] Result<DefaceReport> deface(volume::Volume& volume, const DefaceOptions& options);

std::string_view to_string(Modality modality);
std::string_view to_string(Verdict verdict);

}  // namespace radguard::deface
