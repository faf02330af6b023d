#include "deface/dicom_series.hpp"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <numbers>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/private_folder.hpp"
#include "batch/batch.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "standard/tags.hpp"

namespace radguard::deface {

namespace fs = std::filesystem;
using volume::Vec3;

namespace {

// Enhanced (multi-frame) images keep their geometry and rescale in functional groups.

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<double> numbers_of(const std::optional<std::string>& text) {
  std::vector<double> out;
  if (!text) return out;
  std::stringstream in(*text);
  std::string part;
  while (std::getline(in, part, '\\')) {
    const auto first = part.find_first_not_of(' ');
    if (first == std::string::npos) return {};
    const auto last = part.find_last_not_of(' ');
    part = part.substr(first, last - first + 1);
    double value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (ec != std::errc() || ptr != part.data() + part.size() || !std::isfinite(value)) return {};
    out.push_back(value);
  }
  return out;
}

std::optional<double> number_of(const std::optional<std::string>& text) {
  auto values = numbers_of(text);
  if (values.size() != 1) return std::nullopt;
  return values[0];
}

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }

// What the header says about one input file (no pixel data read).
struct FileInfo {
  std::size_t index = 0;  // into the run's file list
  std::string sop_uid, series_uid, frame_uid, modality, echo, temporal;
  bool has_pixels = false;
  bool has_geometry = false;
  Vec3 row{}, col{}, position{};
  std::vector<Vec3> frame_positions;    // enhanced multi-frame: one per frame, in frame order
  bool frames_disagree = false;         // frames differ in orientation, spacing or rescale
  double spacing_x = 0, spacing_y = 0;  // between columns (along row) and between rows
  int rows = 0, columns = 0, frames = 1, samples = 1;
  std::string photometric;
  double slope = 1, intercept = 0;
  bool bad_rescale = false;
  std::string words;  // body part, anatomic region, descriptions, protocol: upper case
  bool has_body_part = false;
};

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// The geometry and rescale of an enhanced multi-frame image: Plane Position per frame; Plane
// Orientation, Pixel Measures and Pixel Value Transformation from the shared groups or, when
// given per frame, equal in every frame (a file whose frames differ there is not one volume:
// `inconsistent`). Positions are empty unless every frame has exactly one.
struct FunctionalGroups {
  std::vector<Vec3> positions;
  std::vector<double> orientation, spacing;
  std::optional<std::string> slope, intercept;
  std::vector<std::string> anatomy;  // Frame Anatomy's region code meanings
  bool inconsistent = false;
};

FunctionalGroups read_functional_groups(const dicom::DicomFile& file, int frames) {
  // One value that may sit in the shared groups or in every frame's.
  struct GroupValue {
    Tag group, tag;
    std::optional<std::string> shared, per_frame;
    int frames_with_it = 0;
  };
  enum Field : std::size_t { orientation, spacing, slope, intercept };
  std::array<GroupValue, 4> fields{
      {{tags::PlaneOrientationSequence, tags::ImageOrientationPatient, {}, {}, 0},
       {tags::PixelMeasuresSequence, tags::PixelSpacing, {}, {}, 0},
       {tags::PixelValueTransformationSequence, tags::RescaleSlope, {}, {}, 0},
       {tags::PixelValueTransformationSequence, tags::RescaleIntercept, {}, {}, 0}}};
  FunctionalGroups out;
  std::vector<Vec3> positions;
  bool bad_position = false;
  file.visit([&](const dicom::ElementView& e) {
    if (e.path.size() == 3 &&
        (e.path[0] == tags::SharedFunctionalGroupsSequence ||
         e.path[0] == tags::PerFrameFunctionalGroupsSequence) &&
        e.path[1] == tags::FrameAnatomySequence && e.path[2] == tags::AnatomicRegionSequence &&
        e.tag == tags::CodeMeaning && !e.value.empty()) {
      if (std::find(out.anatomy.begin(), out.anatomy.end(), e.value) == out.anatomy.end())
        out.anatomy.emplace_back(e.value);
      return;
    }
    if (e.path.size() != 2) return;
    const bool shared = e.path[0] == tags::SharedFunctionalGroupsSequence;
    if (!shared && e.path[0] != tags::PerFrameFunctionalGroupsSequence) return;
    if (!shared && e.path[1] == tags::PlanePositionSequence &&
        e.tag == tags::ImagePositionPatient) {
      const auto p = numbers_of(std::string(e.value));
      if (p.size() != 3) bad_position = true;
      if (p.size() == 3) positions.push_back({p[0], p[1], p[2]});
      return;
    }
    for (GroupValue& field : fields) {
      if (e.path[1] != field.group || e.tag != field.tag) continue;
      std::string_view value = e.value;
      while (!value.empty() && (value.back() == ' ' || value.back() == '\0'))
        value.remove_suffix(1);
      std::optional<std::string>& kept = shared ? field.shared : field.per_frame;
      // A per-frame value must be the same in every frame.
      if (kept && *kept != value) out.inconsistent = true;
      if (!kept) kept = std::string(value);
      field.frames_with_it += !shared;
    }
  });
  // A value given both shared and per frame must be the same; given per frame only, in all.
  for (const GroupValue& field : fields) {
    if (!field.per_frame) continue;
    if (field.shared ? *field.shared != *field.per_frame : field.frames_with_it != frames)
      out.inconsistent = true;
  }
  if (!bad_position && positions.size() == static_cast<std::size_t>(frames))
    out.positions = std::move(positions);
  auto value = [&](Field f) { return fields[f].shared ? fields[f].shared : fields[f].per_frame; };
  out.orientation = numbers_of(value(orientation));
  out.spacing = numbers_of(value(spacing));
  out.slope = value(slope);
  out.intercept = value(intercept);
  return out;
}

Result<FileInfo> read_info(const fs::path& path) {
  auto file = dicom::DicomFile::open(path);
  if (!file) return std::unexpected(file.error());
  if (file->is_dicomdir()) return fail(ErrorCode::not_dicom, "a DICOMDIR");
  FileInfo info;
  auto get = [&](Tag tag) { return file->string_of(tag).value_or(""); };
  info.sop_uid = get(tags::SOPInstanceUID);
  info.series_uid = get(tags::SeriesInstanceUID);
  info.frame_uid = get(tags::FrameOfReferenceUID);
  info.modality = upper(get(tags::Modality));
  info.echo = get(tags::EchoNumbers);
  info.temporal = get(tags::TemporalPositionIdentifier);
  info.photometric = get(tags::PhotometricInterpretation);
  bool has_pixel_data = false;
  file->visit([&](const dicom::ElementView& e) {
    if (e.path.empty() && e.tag == tags::PixelData) has_pixel_data = true;
  });
  info.rows = static_cast<int>(number_of(file->string_of(tags::Rows)).value_or(0));
  info.columns = static_cast<int>(number_of(file->string_of(tags::Columns)).value_or(0));
  info.frames = static_cast<int>(number_of(file->string_of(tags::NumberOfFrames)).value_or(1));
  info.samples = static_cast<int>(number_of(file->string_of(tags::SamplesPerPixel)).value_or(1));
  info.has_pixels = has_pixel_data && info.rows > 0 && info.columns > 0;
  auto orientation = numbers_of(file->string_of(tags::ImageOrientationPatient));
  auto position = numbers_of(file->string_of(tags::ImagePositionPatient));
  auto spacing = numbers_of(file->string_of(tags::PixelSpacing));
  std::optional<std::string> slope_text = file->string_of(tags::RescaleSlope),
                             intercept_text = file->string_of(tags::RescaleIntercept);
  // Enhanced images keep geometry (and anatomy) in functional groups, also with one frame.
  std::vector<std::string> frame_anatomy;
  if (info.frames > 1 || orientation.empty() || position.empty()) {
    const auto groups = read_functional_groups(*file, std::max(1, info.frames));
    frame_anatomy = groups.anatomy;
    orientation = groups.orientation;
    spacing = groups.spacing;
    info.frame_positions = groups.positions;
    position = info.frame_positions.empty() ? std::vector<double>{}
                                            : std::vector<double>(info.frame_positions[0].begin(),
                                                                  info.frame_positions[0].end());
    if (groups.slope || groups.intercept) {
      slope_text = groups.slope;
      intercept_text = groups.intercept;
    }
    info.frames_disagree = groups.inconsistent;
  }
  if (orientation.size() == 6 && position.size() == 3 && spacing.size() == 2 && spacing[0] > 0 &&
      spacing[1] > 0) {
    info.row = {orientation[0], orientation[1], orientation[2]};
    info.col = {orientation[3], orientation[4], orientation[5]};
    info.position = {position[0], position[1], position[2]};
    info.spacing_y = spacing[0];
    info.spacing_x = spacing[1];
    const double nr = norm(info.row), nc = norm(info.col);
    if (nr > 0.5 && nc > 0.5) {
      for (int a = 0; a < 3; ++a) {
        info.row[a] /= nr;
        info.col[a] /= nc;
      }
      info.has_geometry = std::abs(dot(info.row, info.col)) < 1e-3;
    }
  }
  if (slope_text || intercept_text) {
    const auto slope = number_of(slope_text);
    const auto intercept = number_of(intercept_text);
    info.slope = slope.value_or(1.0);
    info.intercept = intercept.value_or(0.0);
    info.bad_rescale = (slope_text && !slope) || (intercept_text && !intercept) || info.slope == 0;
  }
  const std::string body_part = get(tags::BodyPartExamined);
  info.has_body_part = !body_part.empty();
  std::string words = body_part;
  for (const auto& code : file->code_sequence_of(tags::AnatomicRegionSequence)) {
    words += " " + code.meaning;
    info.has_body_part = true;
  }
  for (const std::string& meaning : frame_anatomy) {
    words += " " + meaning;
    info.has_body_part = true;
  }
  for (Tag tag : {tags::StudyDescription, tags::SeriesDescription, tags::ProtocolName})
    words += " " + get(tag);
  info.words = upper(words);
  return info;
}

// True when `match` accepts one of the alphanumeric words of `words`.
template <typename Match>
bool any_word(const std::string& words, Match match) {
  std::size_t start = 0;
  while (start < words.size()) {
    while (start < words.size() && !std::isalnum(static_cast<unsigned char>(words[start]))) ++start;
    std::size_t end = start;
    while (end < words.size() && std::isalnum(static_cast<unsigned char>(words[end]))) ++end;
    if (end > start && match(std::string_view(words.data() + start, end - start))) return true;
    start = end;
  }
  return false;
}

// Head words as prefixes of whole words ("CRANI" takes CRANIUM, CRANIAL). English, German,
// French and Spanish forms seen in descriptions.
bool mentions_head(const std::string& words) {
  static constexpr std::string_view kPrefixes[] = {
      "HEAD",   "BRAIN",    "SKULL",   "CRANI",  "CEREB",  "FACE",   "FACIAL",       "ORBIT",
      "SINUS",  "NECK",     "NASAL",   "MAXILL", "MANDIB", "DENTAL", "TEMPORALBONE", "IAC",
      "KOPF",   "SCHAD",    "SCHAED",  "HIRN",   "CRANE",  "CABEZA", "TETE",         "CTHEAD",
      "MRHEAD", "HEADNECK", "PETROUS", "PITUIT", "SELLA",  "STROKE"};
  return any_word(words, [](std::string_view word) {
    return std::any_of(std::begin(kPrefixes), std::end(kPrefixes),
                       [&](std::string_view prefix) { return word.starts_with(prefix); });
  });
}

// Whole-body scans (PET-CT's CT, whole-body MR, trauma CT) usually include the face or part of
// it, yet name no head part. Matched on the words with spaces and punctuation removed, so
// "WHOLE BODY", "Whole-Body" and "WHOLEBODY" (the PS3.16 body part term) all count; "WB" and
// "PET" (a CT series in a PET study) only as whole words.
bool mentions_whole_body(const std::string& words) {
  std::string joined;
  for (char c : words)
    if (std::isalnum(static_cast<unsigned char>(c))) joined += c;
  // "GANZK": Ganzkoerper, Ganzkorper and Ganzkörper (whose ö is not alphanumeric ASCII).
  static constexpr std::string_view kJoined[] = {
      "WHOLEBODY", "TOTALBODY", "GANZK", "CORPSENTIER", "CUERPOENTERO", "EYESTOTHIGH", "VERTEXTO"};
  for (std::string_view term : kJoined)
    if (joined.find(term) != std::string::npos) return true;
  return any_word(words, [](std::string_view word) {
    return word == "WB" || word == "PET" || word == "PETCT" || word == "WBCT" || word == "WBMR";
  });
}

// Longer than a chest-abdomen-pelvis scan: such a series may run from the head.
constexpr double kLongerThanATorsoMm = 800.0;

// A stack: files sharing series, frame of reference, orientation, size, echo and time.
struct Stack {
  std::string key;
  std::vector<std::size_t> members;  // indices into infos
};

std::string round_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", v == 0 ? 0.0 : v);
  return buffer;
}

std::string stack_key(const FileInfo& f) {
  std::string key = f.series_uid + "|" + f.frame_uid + "|" + f.echo + "|" + f.temporal + "|" +
                    std::to_string(f.rows) + "x" + std::to_string(f.columns);
  if (f.has_geometry) {
    for (double v : f.row) key += "|" + round_text(v);
    for (double v : f.col) key += "|" + round_text(v);
    key += "|" + round_text(f.spacing_x) + "|" + round_text(f.spacing_y);
  } else {
    key += "|no-geometry";
  }
  return key;
}

std::string normal_key(const fs::path& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  if (ec) canonical = fs::absolute(path, ec).lexically_normal();
  return canonical.string();
}

}  // namespace

// Per input file: what apply() does.
struct FilePlan {
  std::size_t series = 0;  // index into reports
  std::string sop_uid;
  int rows = 0, columns = 0, frames = 1;
  // Replacement frames, all of the file's in frame order (raw uint16, native order); "" when
  // no frame changed.
  std::string pixel_file;
};

struct SeriesDefacing::State {
  std::vector<SeriesReport> reports;
  std::vector<Unreadable> unreadable;
  std::unordered_map<std::string, FilePlan> plans;  // by normal_key
  std::unordered_map<std::string, std::size_t> unreadable_by_key;
  std::optional<PrivateFolder> work;
};

SeriesDefacing::SeriesDefacing(std::shared_ptr<const State> state) : state_(std::move(state)) {}
const std::vector<SeriesReport>& SeriesDefacing::series() const { return state_->reports; }
const std::vector<SeriesDefacing::Unreadable>& SeriesDefacing::unreadable() const {
  return state_->unreadable;
}

std::string_view to_string(SeriesOutcome outcome) {
  switch (outcome) {
    case SeriesOutcome::defaced:
      return "defaced";
    case SeriesOutcome::not_head:
      return "not_head";
    case SeriesOutcome::refused:
      return "refused";
    case SeriesOutcome::examined:
      return "examined";
  }
  return "?";
}

namespace {

// One slice of an assembled stack.
struct Slice {
  std::size_t info = 0;               // index into infos
  int frame = 0;                      // frame of that file (enhanced multi-frame images)
  Vec3 position{};                    // Image Position (Patient) of that frame
  double along = 0;                   // position along the normal, mm
  int k = 0;                          // grid layer
  double shift_x = 0, shift_y = 0;    // in-plane offset from the first slice, pixels
  std::vector<std::uint16_t> stored;  // original stored samples (bit patterns)
  unsigned bits_stored = 16;
  dicom::PixelSign sign = dicom::PixelSign::unsigned_integer;
};

std::int32_t signed_value(std::uint16_t pattern, unsigned bits, dicom::PixelSign sign) {
  if (sign == dicom::PixelSign::unsigned_integer) return pattern;
  const std::uint32_t sign_bit = 1u << (bits - 1);
  const std::uint32_t v = pattern;
  return (v & sign_bit) ? static_cast<std::int32_t>(v) - static_cast<std::int32_t>(1u << bits)
                        : static_cast<std::int32_t>(v);
}

std::uint16_t pattern_of(double physical, double slope, double intercept, unsigned bits,
                         dicom::PixelSign sign) {
  double stored = std::nearbyint((physical - intercept) / slope);
  const double lo = sign == dicom::PixelSign::unsigned_integer ? 0.0 : -std::ldexp(1.0, bits - 1);
  const double hi = sign == dicom::PixelSign::unsigned_integer ? std::ldexp(1.0, bits) - 1
                                                               : std::ldexp(1.0, bits - 1) - 1;
  stored = std::clamp(stored, lo, hi);
  const auto value = static_cast<std::int32_t>(stored);
  return static_cast<std::uint16_t>(static_cast<std::uint32_t>(value) & ((1u << bits) - 1u));
}

class SeriesWorker {
 public:
  SeriesWorker(const std::vector<FileInfo>& infos, const std::vector<std::string>& files,
               const DefaceOptions& options, const SeriesOptions& series_options,
               SeriesDefacing::State& state)
      : infos_(infos),
        files_(files),
        options_(options),
        series_options_(series_options),
        state_(state) {}

  // Fills `report` and, for a defaced stack, the plans of its files.
  void run(const Stack& stack, SeriesReport& report) {
    const FileInfo& first = infos_[stack.members.front()];
    if (!decide_head(stack, report)) return;
    if (auto s = check_supported(stack, first); !s) return refuse(report, s.error().message);
    auto assembled = assemble(stack, report);
    if (!assembled) return refuse(report, assembled.error().message);
    if (series_options_.work == SeriesWork::examine) return examine(report);
    deface_and_plan(report);
  }

 private:
  void examine(SeriesReport& report) {
    const auto start = std::chrono::steady_clock::now();
    report.evidence = face_evidence(volume_, options_.modality);
    report.outcome = SeriesOutcome::examined;
    report.deface_seconds = seconds_since(start);
    volume_ = {};
  }

  static void refuse(SeriesReport& report, std::string reason) {
    report.outcome = SeriesOutcome::refused;
    report.reason = std::move(reason);
  }

  bool decide_head(const Stack& stack, SeriesReport& report) {
    const FileInfo& f = infos_[stack.members.front()];
    report.outcome = SeriesOutcome::not_head;
    if (f.modality != "CT" && f.modality != "MR") {
      report.reason = "not a CT or MR series";
      return false;
    }
    if (!f.has_pixels) {
      report.reason = "no image pixel data";
      return false;
    }
    bool head = false, whole_body = false;
    for (std::size_t m : stack.members) {
      head = head || mentions_head(infos_[m].words);
      whole_body = whole_body || mentions_whole_body(infos_[m].words);
    }
    // Fail closed: a whole-body series may show the face, and finding a face in a body-length
    // volume is not supported, so it is refused rather than passed as "not a head".
    if (!head && whole_body) {
      refuse(report,
             "whole-body series: it may show the face, and defacing is supported for head "
             "series only");
      return false;
    }
    // Fail closed: a CT/MR series that names no body part and whose extent cannot be measured
    // (an enhanced image without a position per frame or whose frames lie in several planes,
    // a broken header) may be a head, so it goes on as one and is refused by
    // check_supported() below.
    const bool measurable = f.has_geometry && !f.frames_disagree;
    if (!head && !f.has_body_part && !measurable) return true;
    if (!head && !f.has_body_part) {
      const double across_x = f.columns * f.spacing_x, across_y = f.rows * f.spacing_y;
      head = across_x <= series_options_.head_field_of_view_mm &&
             across_y <= series_options_.head_field_of_view_mm;
      // Fail closed: a series longer than any torso scan that names no body part may run from
      // the head (a whole-body scan without its words): refused, not passed.
      if (!head &&
          std::max({across_x, across_y, length_along_normal(stack)}) > kLongerThanATorsoMm) {
        refuse(report,
               "nothing names the body part and the series is longer than a torso scan: it may "
               "include the face (whole body), and defacing is supported for head series only");
        return false;
      }
      if (!head) {
        report.reason = "nothing names a head and the field of view is wider than a head";
        return false;
      }
    } else if (!head) {
      report.reason = "body part, anatomic region and descriptions name no head part";
      return false;
    }
    return true;
  }

  // Millimetres between the stack's first and last slice along the slice normal.
  double length_along_normal(const Stack& stack) const {
    const FileInfo& f = infos_[stack.members.front()];
    const Vec3 n = cross(f.row, f.col);
    double lo = std::numeric_limits<double>::max(), hi = std::numeric_limits<double>::lowest();
    for (std::size_t m : stack.members) {
      const FileInfo& g = infos_[m];
      const auto& positions = g.frames > 1 ? g.frame_positions : std::vector<Vec3>{g.position};
      for (const Vec3& p : positions) {
        lo = std::min(lo, dot(p, n));
        hi = std::max(hi, dot(p, n));
      }
    }
    return hi > lo ? hi - lo : 0.0;
  }

  Status check_supported(const Stack& stack, const FileInfo& f) const {
    std::size_t slices = 0;
    for (std::size_t m : stack.members) {
      const FileInfo& g = infos_[m];
      slices += static_cast<std::size_t>(std::max(1, g.frames));
      if (g.frames > 1 && g.frames_disagree)
        return fail(ErrorCode::unsupported,
                    "multi-frame head image whose frames differ in orientation, pixel spacing or "
                    "rescale: not one volume");
      if (g.frames > 1 && g.frame_positions.empty())
        return fail(ErrorCode::unsupported,
                    "multi-frame head image without a Plane Position for every frame: cannot be "
                    "assembled into a volume");
      if (g.samples != 1 || (g.photometric != "MONOCHROME1" && g.photometric != "MONOCHROME2"))
        return fail(ErrorCode::unsupported, "head series that is not greyscale");
      if (g.bad_rescale) return fail(ErrorCode::unsupported, "unusable Rescale Slope/Intercept");
    }
    if (!f.has_geometry)
      return fail(ErrorCode::unsupported,
                  "head series without usable Image Position/Orientation (Patient) or Pixel "
                  "Spacing: cannot be assembled into a volume");
    if (slices < series_options_.minimum_slices)
      return fail(ErrorCode::unsupported,
                  "head series with " + std::to_string(slices) +
                      " slices, too few to assemble a volume (a thin stack can still show a "
                      "profile)");
    return {};
  }

  Status assemble(const Stack& stack, SeriesReport& report) {
    const auto start = std::chrono::steady_clock::now();
    const FileInfo& f0 = infos_[stack.members.front()];
    const Vec3 r = f0.row, c = f0.col, n = cross(f0.row, f0.col);
    slices_.clear();
    for (std::size_t m : stack.members) {
      const FileInfo& fi = infos_[m];
      for (int frame = 0; frame < std::max(1, fi.frames); ++frame) {
        Slice slice;
        slice.info = m;
        slice.frame = frame;
        slice.position =
            fi.frames > 1 ? fi.frame_positions[static_cast<std::size_t>(frame)] : fi.position;
        slice.along = dot(slice.position, n);
        slices_.push_back(std::move(slice));
      }
    }
    std::sort(slices_.begin(), slices_.end(),
              [](const Slice& a, const Slice& b) { return a.along < b.along; });
    std::vector<double> steps;
    for (std::size_t s = 1; s < slices_.size(); ++s)
      steps.push_back(slices_[s].along - slices_[s - 1].along);
    std::vector<double> sorted = steps;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    const double step = sorted[sorted.size() / 2];
    std::size_t duplicates = 0;
    for (double d : steps) duplicates += d < std::max(0.01, step * 0.05);
    if (duplicates > 0 || step <= 0.01)
      return fail(ErrorCode::unsupported,
                  std::to_string(duplicates) +
                      " duplicate slice position(s) (repeated or multi-echo acquisition)");
    double worst = 0;
    for (auto& s : slices_) {
      const double k = (s.along - slices_.front().along) / step;
      s.k = static_cast<int>(std::lround(k));
      worst = std::max(worst, std::abs(k - s.k));
    }
    if (worst > 0.4)
      return fail(ErrorCode::unsupported, "slice spacing too uneven to assemble a volume");
    if (worst > 0.1)
      report.warnings.push_back("uneven slice spacing (up to " +
                                std::to_string(static_cast<int>(worst * 100)) + "% of a step)");
    const int layers = slices_.back().k + 1;
    report.missing_slices = static_cast<std::size_t>(layers) - slices_.size();
    for (std::size_t s = 1; s < slices_.size(); ++s)
      if (slices_[s].k - slices_[s - 1].k > 1)
        report.warnings.push_back(std::to_string(slices_[s].k - slices_[s - 1].k - 1) +
                                  " missing slice(s) after slice " + std::to_string(s) + " of " +
                                  std::to_string(slices_.size()) + " (gap " +
                                  round_text(slices_[s].along - slices_[s - 1].along) +
                                  " mm, median step " + round_text(step) + " mm)");
    if (report.missing_slices > slices_.size())
      return fail(ErrorCode::unsupported, "more slices missing than present");

    // In-plane offsets (gantry tilt or any shift between slices).
    const Vec3 p0 = slices_.front().position;
    double min_x = 0, max_x = 0, min_y = 0, max_y = 0;
    for (auto& s : slices_) {
      const Vec3& p = s.position;
      const double along = s.along - slices_.front().along;
      Vec3 u{};
      for (int a = 0; a < 3; ++a) u[a] = p[a] - p0[a] - along * n[a];
      s.shift_x = dot(u, r) / f0.spacing_x;
      s.shift_y = dot(u, c) / f0.spacing_y;
      if (std::abs(s.shift_x) < 1e-3) s.shift_x = 0;
      if (std::abs(s.shift_y) < 1e-3) s.shift_y = 0;
      min_x = std::min(min_x, s.shift_x);
      max_x = std::max(max_x, s.shift_x);
      min_y = std::min(min_y, s.shift_y);
      max_y = std::max(max_y, s.shift_y);
    }
    // The grid, checked in floating point before any cast: hostile positions could ask for
    // billions of voxels.
    const double grid = (f0.columns + (max_x - min_x) + 2.0) * (f0.rows + (max_y - min_y) + 2.0) *
                        static_cast<double>(layers);
    if (!(grid <= static_cast<double>(volume::kMaxVoxels)))
      return fail(ErrorCode::unsupported,
                  "series too large to deface: its grid would exceed " +
                      std::to_string(volume::kMaxVoxels) + " voxels");
    tilted_ = max_x > min_x || max_y > min_y;
    off_x_ = static_cast<int>(std::floor(min_x));
    off_y_ = static_cast<int>(std::floor(min_y));
    const int extra_x = static_cast<int>(std::ceil(max_x)) - off_x_;
    const int extra_y = static_cast<int>(std::ceil(max_y)) - off_y_;
    if (tilted_) {
      const Vec3& pl = slices_.back().position;
      Vec3 u{};
      for (int a = 0; a < 3; ++a)
        u[a] = pl[a] - p0[a] - (slices_.back().along - slices_.front().along) * n[a];
      report.tilt_degrees = std::atan2(norm(u), slices_.back().along - slices_.front().along) *
                            180.0 / std::numbers::pi;
      report.warnings.push_back("slices offset in plane (gantry tilt " +
                                round_text(report.tilt_degrees) +
                                " degrees): resampled for defacing, changes mapped back");
    }

    // Decode every file once; its frames go to their slices.
    const auto files = slices_by_file();
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string error;
    batch::run_parallel(
        files.size(), std::max(1u, series_options_.threads),
        [&](std::size_t f) {
          if (failed) return;
          const FileInfo& fi = infos_[files[f].info];
          auto fail_with = [&](const std::string& message) {
            std::lock_guard lock(error_mutex);
            if (!failed.exchange(true)) error = files_[fi.index] + ": " + message;
          };
          auto file = dicom::DicomFile::open(files_[fi.index]);
          if (!file) return fail_with(file.error().message);
          auto image = dicom::decode_pixels(*file);
          if (!image) return fail_with(image.error().message);
          if (image->frames.size() != static_cast<std::size_t>(std::max(1, fi.frames)) ||
              image->samples != 1 || static_cast<int>(image->width) != f0.columns ||
              static_cast<int>(image->height) != f0.rows)
            return fail_with("image size differs from its header");
          for (std::size_t index : files[f].slices) {
            Slice& slice = slices_[index];
            slice.stored = std::move(image->frames[static_cast<std::size_t>(slice.frame)]);
            slice.bits_stored = image->bits_stored;
            slice.sign = image->sign;
          }
        },
        [&](std::size_t, const std::string& message) {
          std::lock_guard lock(error_mutex);
          if (!failed.exchange(true)) error = message;
        });
    if (failed) return fail(ErrorCode::unsupported, "cannot read the series: " + error);

    // The grid.
    volume::Volume& v = volume_;
    v = volume::Volume{};
    v.dims = {f0.columns + extra_x, f0.rows + extra_y, layers};
    v.spacing = {f0.spacing_x, f0.spacing_y, step};
    v.axes = {r, c, n};
    for (int a = 0; a < 3; ++a)
      v.origin[a] = p0[a] + off_x_ * f0.spacing_x * r[a] + off_y_ * f0.spacing_y * c[a];
    v.stored_type = volume::VoxelType::float32;
    v.value_slope = 1;
    v.value_intercept = 0;
    background_ = std::numeric_limits<double>::max();
    for (const auto& s : slices_) {
      const FileInfo& fi = infos_[s.info];
      for (std::uint16_t p : s.stored)
        background_ =
            std::min(background_, signed_value(p, s.bits_stored, s.sign) * fi.slope + fi.intercept);
    }
    v.voxels.assign(v.voxel_count(), static_cast<float>(background_));
    const std::size_t layer_size = static_cast<std::size_t>(v.dims[0]) * v.dims[1];
    for (const auto& s : slices_) {
      float* layer = v.voxels.data() + layer_size * s.k;
      for (int j = 0; j < v.dims[1]; ++j)
        for (int i = 0; i < v.dims[0]; ++i)
          layer[static_cast<std::size_t>(j) * v.dims[0] + i] =
              static_cast<float>(original_at(s, i, j));
    }
    // Missing layers: copied from the nearest slice below (for defacing only).
    for (std::size_t s = 1; s < slices_.size(); ++s)
      for (int k = slices_[s - 1].k + 1; k < slices_[s].k; ++k) {
        const int from =
            (k - slices_[s - 1].k <= slices_[s].k - k) ? slices_[s - 1].k : slices_[s].k;
        std::copy_n(v.voxels.begin() + static_cast<std::ptrdiff_t>(layer_size * from), layer_size,
                    v.voxels.begin() + static_cast<std::ptrdiff_t>(layer_size * k));
      }
    report.slices = slices_.size();
    report.dims = v.dims;
    report.spacing = v.spacing;
    report.origin = v.origin;
    report.axes = v.axes;
    report.read_seconds = seconds_since(start);
    return {};
  }

  // The slices of each input file (one, or an enhanced image's frames), in frame order.
  struct FileSlices {
    std::size_t info = 0;
    std::vector<std::size_t> slices;  // indices into slices_
  };
  std::vector<FileSlices> slices_by_file() const {
    std::map<std::size_t, std::vector<std::size_t>> by_info;
    for (std::size_t index = 0; index < slices_.size(); ++index)
      by_info[slices_[index].info].push_back(index);
    std::vector<FileSlices> out;
    for (auto& [info, indices] : by_info) {
      std::sort(indices.begin(), indices.end(),
                [&](std::size_t a, std::size_t b) { return slices_[a].frame < slices_[b].frame; });
      out.push_back({info, std::move(indices)});
    }
    return out;
  }

  // The physical value of an original pixel, background outside the image.
  double pixel(const Slice& s, int x, int y) const {
    const FileInfo& fi = infos_[s.info];
    if (x < 0 || y < 0 || x >= fi.columns || y >= fi.rows) return background_;
    const std::uint16_t p = s.stored[static_cast<std::size_t>(y) * fi.columns + x];
    return signed_value(p, s.bits_stored, s.sign) * fi.slope + fi.intercept;
  }

  // Grid voxel (i, j) of slice s's layer before defacing: the slice shifted (bilinear).
  double original_at(const Slice& s, int i, int j) const {
    const double x = i + off_x_ - s.shift_x, y = j + off_y_ - s.shift_y;
    if (!tilted_) return pixel(s, static_cast<int>(x), static_cast<int>(y));
    const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
    const double fx = x - x0, fy = y - y0;
    return (1 - fx) * (1 - fy) * pixel(s, x0, y0) + fx * (1 - fy) * pixel(s, x0 + 1, y0) +
           (1 - fx) * fy * pixel(s, x0, y0 + 1) + fx * fy * pixel(s, x0 + 1, y0 + 1);
  }

  void deface_and_plan(SeriesReport& report) {
    auto start = std::chrono::steady_clock::now();
    DefaceOptions options = options_;
    if (series_options_.on_renderings) {
      const std::string label = report.series_uid;
      const auto& callback = series_options_.on_renderings;
      options.on_renderings = [&callback, label](const std::vector<Rendering>& before,
                                                 const std::vector<Rendering>& after) {
        callback(label, before, after);
      };
    }
    auto result = deface(volume_, options);
    report.deface_seconds = seconds_since(start);
    if (!result) {
      volume_ = {};
      return refuse(report, "defacing refused: " + result.error().message);
    }
    report.deface = std::move(*result);
    report.deface->renderings_before.clear();  // previews went through on_renderings
    report.deface->renderings_after.clear();
    start = std::chrono::steady_clock::now();

    // Per file: the new stored values of all its frames, or none when nothing changed.
    const std::size_t series_index = &report - state_.reports.data();
    const auto files = slices_by_file();
    std::vector<FilePlan> plans(files.size());
    std::atomic<bool> failed{false};
    std::atomic<std::size_t> changed{0};
    batch::run_parallel(
        files.size(), std::max(1u, series_options_.threads),
        [&](std::size_t f) {
          const FileInfo& fi = infos_[files[f].info];
          FilePlan& plan = plans[f];
          plan.series = series_index;
          plan.sop_uid = fi.sop_uid;
          plan.rows = fi.rows;
          plan.columns = fi.columns;
          plan.frames = std::max(1, fi.frames);
          std::vector<std::uint16_t> all;
          std::size_t frames_changed = 0;
          for (std::size_t index : files[f].slices) {
            const Slice& s = slices_[index];
            std::vector<std::uint16_t> out = s.stored;
            bool any = false;
            for (int y = 0; y < fi.rows; ++y)
              for (int x = 0; x < fi.columns; ++x) {
                const std::size_t p = static_cast<std::size_t>(y) * fi.columns + x;
                const auto now = new_value(s, x, y);
                if (!now) continue;
                const std::uint16_t q =
                    pattern_of(*now, fi.slope, fi.intercept, s.bits_stored, s.sign);
                if (q != out[p]) {
                  out[p] = q;
                  any = true;
                }
              }
            frames_changed += any;
            all.insert(all.end(), out.begin(), out.end());
          }
          if (frames_changed == 0) return;
          changed.fetch_add(frames_changed);
          plan.pixel_file = (state_.work->path() / (std::to_string(fi.index) + ".px")).string();
          std::ofstream file(plan.pixel_file, std::ios::binary);
          file.write(reinterpret_cast<const char*>(all.data()),
                     static_cast<std::streamsize>(all.size() * sizeof(std::uint16_t)));
          if (!file.good()) failed = true;
        },
        [&](std::size_t, const std::string&) { failed = true; });
    volume_ = {};
    if (failed) return refuse(report, "cannot keep the defaced pixels in the work folder");
    std::lock_guard lock(plans_mutex_);
    for (std::size_t f = 0; f < files.size(); ++f)
      state_.plans[normal_key(files_[infos_[files[f].info].index])] = std::move(plans[f]);
    slices_.clear();
    report.slices_changed = changed;
    report.outcome = SeriesOutcome::defaced;
    report.prepare_seconds = seconds_since(start);
  }

  // The defaced physical value of pixel (x, y) of slice s, nullopt when unchanged.
  std::optional<double> new_value(const Slice& s, int x, int y) const {
    const volume::Volume& v = volume_;
    const std::size_t layer = static_cast<std::size_t>(v.dims[0]) * v.dims[1] * s.k;
    if (!tilted_) {
      const int i = x - off_x_, j = y - off_y_;
      const float now = v.voxels[layer + static_cast<std::size_t>(j) * v.dims[0] + i];
      if (now == static_cast<float>(pixel(s, x, y))) return std::nullopt;
      return now;
    }
    const double gi = x - off_x_ + s.shift_x, gj = y - off_y_ + s.shift_y;
    const int i0 = static_cast<int>(std::floor(gi)), j0 = static_cast<int>(std::floor(gj));
    const double fx = gi - i0, fy = gj - j0;
    double delta = 0;
    bool touched = false;
    for (int dj = 0; dj < 2; ++dj)
      for (int di = 0; di < 2; ++di) {
        const double w = (di ? fx : 1 - fx) * (dj ? fy : 1 - fy);
        const int i = i0 + di, j = j0 + dj;
        if (w <= 0 || i < 0 || j < 0 || i >= v.dims[0] || j >= v.dims[1]) continue;
        const double before = static_cast<float>(original_at(s, i, j));
        const double after = v.voxels[layer + static_cast<std::size_t>(j) * v.dims[0] + i];
        if (after != before) {
          touched = true;
          delta += w * (after - before);
        }
      }
    if (!touched) return std::nullopt;
    return pixel(s, x, y) + delta;
  }

  const std::vector<FileInfo>& infos_;
  const std::vector<std::string>& files_;
  const DefaceOptions& options_;
  const SeriesOptions& series_options_;
  SeriesDefacing::State& state_;
  std::mutex plans_mutex_;
  std::vector<Slice> slices_;
  volume::Volume volume_;
  bool tilted_ = false;
  int off_x_ = 0, off_y_ = 0;
  double background_ = 0;
};

}  // namespace

Result<SeriesDefacing> deface_dicom_series(const std::vector<fs::path>& inputs,
                                           const DefaceOptions& options,
                                           const SeriesOptions& series_options) {
  // Inputs that do not exist are the caller's to report (deid lists them in its report).
  const batch::InputSet found = batch::find_files(inputs);
  auto state = std::make_shared<SeriesDefacing::State>();
  auto work = PrivateFolder::create(series_options.work_parent, "radguard-deface-");
  if (!work) return std::unexpected(work.error());
  state->work = std::move(*work);

  // Headers, in parallel.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::optional<Result<FileInfo>>> read(found.files.size());
  {
    batch::Progress reading("defacing: reading", found.files.size(), series_options.progress);
    batch::run_parallel(
        found.files.size(), std::max(1u, series_options.threads),
        [&](std::size_t i) {
          auto info = read_info(found.files[i]);
          if (info) info->index = i;
          read[i] = std::move(info);
          reading.advance(0);
        },
        [&](std::size_t i, const std::string& message) {
          read[i] = Result<FileInfo>(fail(ErrorCode::internal, message));
          reading.advance(0);
        });
  }
  std::vector<FileInfo> infos;
  for (std::size_t i = 0; i < read.size(); ++i) {
    if (read[i] && *read[i]) {
      infos.push_back(std::move(**read[i]));
      continue;
    }
    SeriesDefacing::Unreadable u;
    u.path = found.files[i];
    u.code = read[i] ? (*read[i]).error().code : ErrorCode::internal;
    u.reason = read[i] ? (*read[i]).error().message : "not read";
    state->unreadable_by_key[normal_key(u.path)] = state->unreadable.size();
    state->unreadable.push_back(std::move(u));
  }
  const double header_seconds = seconds_since(start);

  // Stacks, in order of their first file.
  std::vector<Stack> stacks;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const std::string key = stack_key(infos[i]);
    auto [it, inserted] = by_key.emplace(key, stacks.size());
    if (inserted) stacks.push_back({key, {}});
    stacks[it->second].members.push_back(i);
  }
  std::map<std::string, int> parts;  // series UID -> stacks seen
  state->reports.resize(stacks.size());
  SeriesWorker worker(infos, found.files, options, series_options, *state);
  batch::Progress defacing("defacing", stacks.size(), series_options.progress, "series");
  for (std::size_t s = 0; s < stacks.size(); ++s) {
    SeriesReport& report = state->reports[s];
    const FileInfo& first = infos[stacks[s].members.front()];
    const int part = ++parts[first.series_uid];
    report.series_uid = first.series_uid;
    if (part > 1) report.series_uid += "#" + std::to_string(part);
    report.modality = first.modality;
    for (std::size_t m : stacks[s].members) report.files.push_back(found.files[infos[m].index]);
    worker.run(stacks[s], report);
    if (s == 0) report.read_seconds += header_seconds;
    if (report.outcome != SeriesOutcome::defaced) {
      FilePlan plan;
      plan.series = s;
      for (std::size_t m : stacks[s].members)
        state->plans.emplace(normal_key(found.files[infos[m].index]), plan);
    }
    defacing.advance(0);
  }
  defacing.finish();
  return SeriesDefacing(std::move(state));
}

Result<AppliedDefacing> SeriesDefacing::apply(const fs::path& input,
                                              dicom::DicomFile& file) const {
  const std::string key = normal_key(input);
  const auto it = state_->plans.find(key);
  if (it == state_->plans.end()) {
    if (const auto u = state_->unreadable_by_key.find(key); u != state_->unreadable_by_key.end()) {
      const Unreadable& bad = state_->unreadable[u->second];
      return fail(bad.code, bad.reason);
    }
    return fail(ErrorCode::usage, "not among the inputs of the defacing run");
  }
  const FilePlan& plan = it->second;
  const SeriesReport& report = state_->reports[plan.series];
  switch (report.outcome) {
    case SeriesOutcome::not_head:
      return {};
    case SeriesOutcome::refused:
      return fail(ErrorCode::policy, "Clean Recognizable Visual Features: " + report.reason);
    case SeriesOutcome::examined:
      return fail(ErrorCode::usage, "the series was examined for a face, not defaced");
    case SeriesOutcome::defaced:
      break;
  }
  if (file.string_of(tags::SOPInstanceUID).value_or("") != plan.sop_uid)
    return fail(ErrorCode::integrity, "not the file that was defaced (SOP Instance UID differs)");
  AppliedDefacing applied;
  applied.defaced = true;
  if (!plan.pixel_file.empty()) {
    auto image = dicom::decode_pixels(file);
    if (!image) return std::unexpected(image.error());
    if (image->frames.size() != static_cast<std::size_t>(plan.frames) ||
        static_cast<int>(image->width) != plan.columns ||
        static_cast<int>(image->height) != plan.rows || image->samples != 1)
      return fail(ErrorCode::integrity, "not the image that was defaced (size differs)");
    std::ifstream in(plan.pixel_file, std::ios::binary);
    std::vector<std::uint16_t> replacement;
    for (std::vector<std::uint16_t>& frame : image->frames) {
      replacement.resize(frame.size());
      in.read(reinterpret_cast<char*>(replacement.data()),
              static_cast<std::streamsize>(replacement.size() * sizeof(std::uint16_t)));
      if (!in.good() || in.gcount() != static_cast<std::streamsize>(replacement.size() * 2))
        return fail(ErrorCode::io, "cannot read the defaced pixels from the work folder");
      if (replacement != frame) ++applied.frames_changed;
      frame.swap(replacement);
    }
    auto written = dicom::encode_pixels(file, *image);
    if (!written) return std::unexpected(written.error());
  }
  auto codes = file.code_sequence_of(tags::DeidentificationMethodCodeSequence);
  const bool present = std::any_of(codes.begin(), codes.end(), [](const dicom::CodeItem& c) {
    return c.value == kCleanRecognizableVisualFeatures && c.scheme == "DCM";
  });
  if (!present) {
    codes.push_back(
        {kCleanRecognizableVisualFeatures, "DCM", "Clean Recognizable Visual Features Option"});
    if (auto s = file.set_code_sequence(tags::DeidentificationMethodCodeSequence, codes); !s)
      return std::unexpected(s.error());
  }
  return applied;
}

}  // namespace radguard::deface
