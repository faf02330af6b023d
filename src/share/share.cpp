#include "share/share.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <sstream>

#include "core/atomic_file.hpp"
#include "crypto/crypto.hpp"
#include "deface/dicom_series.hpp"
#include "deid/deid_run.hpp"
#include "deid/header_stage.hpp"
#include "deid/policy.hpp"
#include "dicom/dicomdir.hpp"
#include "redact/redact.hpp"
#include "share/archive.hpp"
#include "standard/tags.hpp"
#include "volume/nifti.hpp"

namespace radguard::share {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxPreviews = 40;        // in one report
constexpr std::size_t kMaxPreviewsPerFile = 4;  // frames of one image
constexpr unsigned kPreviewWidth = 480;         // pixels, at most
// Files of the copy are meant to be read by whoever receives it.
constexpr fs::perms kShared =
    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;

std::string lowered(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_zip_name(const fs::path& path) { return lowered(path.extension().string()) == ".zip"; }

bool is_nifti_name(const fs::path& path) {
  const std::string name = lowered(path.filename().string());
  return name.ends_with(".nii") || name.ends_with(".nii.gz");
}

// Plain words for what an object is.
std::string kind_of(const redact::HeaderFacts& facts) {
  const std::string& m = facts.modality;
  if (facts.sop_class_uid.starts_with("1.2.840.10008.5.1.4.1.1.7")) return "screen capture";
  if (m == "CT") return "CT image";
  if (m == "MR") return "MR image";
  if (m == "US") return "ultrasound image";
  if (m == "PT") return "PET image";
  if (m == "NM") return "nuclear medicine image";
  if (m == "CR" || m == "DX" || m == "RF" || m == "XA") return "X-ray image";
  if (m == "MG") return "mammogram";
  if (m == "SC" || m == "OT") return "screen capture or other image";
  if (m == "DOC") return "document";
  if (m == "SR") return "report (structured)";
  if (m.empty()) return facts.has_pixel_data ? "image" : "object";
  return m + (facts.has_pixel_data ? " image" : " object");
}

// What the pixel stages learnt about one input.
struct FileLog {
  std::string modality, kind;
  PixelWork pixels;
  struct Frame {
    std::size_t frame = 0;
    int width = 0, height = 0;
    std::vector<std::uint8_t> rgb;
    std::vector<std::uint8_t> rgb_before;  // only when pictures from before are wanted
  };
  std::vector<Frame> redacted_frames;  // after redaction, boxes outlined
};

struct Logs {
  std::mutex mutex;
  std::map<std::string, FileLog> by_input;
  std::atomic<std::size_t> previews{0};
};

enum class BeforePictures : std::uint8_t { skip, keep };

// One grey frame subsampled by `step` into RGB, the boxes outlined in red.
std::vector<std::uint8_t> outlined(const std::vector<std::uint8_t>& grey,
                                   const redact::FileRedaction::Preview& p, unsigned step,
                                   int width, int height,
                                   const std::vector<redact::Redaction>& boxes) {
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const std::uint8_t v = grey[static_cast<std::size_t>(y) * step * p.width + x * step];
      for (int c = 0; c < 3; ++c) rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] = v;
    }
  auto paint = [&](int x, int y) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    auto* px = &rgb[(static_cast<std::size_t>(y) * width + x) * 3];
    px[0] = 255;
    px[1] = 40;
    px[2] = 40;
  };
  for (const auto& r : boxes) {
    if (r.frame != p.frame) continue;
    const int x0 = r.box.x / static_cast<int>(step), y0 = r.box.y / static_cast<int>(step);
    const int x1 = (r.box.x + r.box.width) / static_cast<int>(step);
    const int y1 = (r.box.y + r.box.height) / static_cast<int>(step);
    for (int x = x0 - 1; x <= x1 + 1; ++x) paint(x, y0 - 1), paint(x, y1 + 1);
    for (int y = y0 - 1; y <= y1 + 1; ++y) paint(x0 - 1, y), paint(x1 + 1, y);
  }
  return rgb;
}

// Grey frame (after, and before when asked) -> RGB no wider than kPreviewWidth, the redacted
// boxes outlined in red.
FileLog::Frame preview_frame(const redact::FileRedaction::Preview& p,
                             const std::vector<redact::Redaction>& boxes, BeforePictures before) {
  const unsigned step = std::max(1U, (p.width + kPreviewWidth - 1) / kPreviewWidth);
  FileLog::Frame out;
  out.frame = p.frame;
  out.width = static_cast<int>(p.width / step);
  out.height = static_cast<int>(p.height / step);
  out.rgb = outlined(p.after, p, step, out.width, out.height, boxes);
  if (before == BeforePictures::keep && p.before.size() == p.after.size())
    out.rgb_before = outlined(p.before, p, step, out.width, out.height, boxes);
  return out;
}

// Clean Pixel Data as deid runs it (redact::clean_for_release's judgement), keeping what was
// done for the report.
deid::PixelStage text_stage(std::shared_ptr<Logs> logs, BeforePictures before) {
  auto options = std::make_shared<redact::RedactOptions>();
  return {"clean-pixel-data", [logs, options, before](const fs::path& input,
                                                      dicom::DicomFile& file,
                                                      deid::PixelWork& work) -> Status {
    FileLog log;
    const redact::HeaderFacts facts = redact::header_facts(file);
    log.modality = facts.modality;
    log.kind = kind_of(facts);
    auto r = redact::redact_file(file, *options, redact::PreviewImages::keep);
    if (!r) return std::unexpected(r.error());
    log.pixels.frames = static_cast<std::uint32_t>(r->frames);
    switch (r->verdict) {
      case redact::FileVerdict::not_needed:
        break;
      case redact::FileVerdict::cleaned:
        log.pixels.read_for_text = true;
        break;
      case redact::FileVerdict::no_text_found:
        if (r->frames_ocred < r->frames)
          return fail(ErrorCode::internal, "not every frame of the image was read");
        log.pixels.read_for_text = true;
        if (auto s = file.set_string(tags::BurnedInAnnotation, "NO"); !s) return s;
        break;
      case redact::FileVerdict::residual_phi:
        return fail(ErrorCode::policy,
                    r->unread_text_regions > 0
                        ? "too many text-like regions in the pixel data to read them all"
                        : "identifying text is still found in the pixel data after redaction");
      case redact::FileVerdict::reported:
        return fail(ErrorCode::internal, "unexpected redaction verdict");
    }
    log.pixels.text_boxes = static_cast<std::uint32_t>(r->redactions.size());
    std::set<std::size_t> frames;
    for (const auto& box : r->redactions) frames.insert(box.frame);
    log.pixels.frames_redacted = static_cast<std::uint32_t>(frames.size());
    work.frames = log.pixels.frames;
    work.read_for_text = log.pixels.read_for_text;
    work.text_boxes = log.pixels.text_boxes;
    work.frames_redacted = log.pixels.frames_redacted;
    for (const auto& p : r->previews) {
      if (!frames.contains(p.frame) || log.redacted_frames.size() >= kMaxPreviewsPerFile) continue;
      if (logs->previews.fetch_add(1) >= kMaxPreviews) break;
      log.redacted_frames.push_back(preview_frame(p, r->redactions, before));
    }
    std::lock_guard lock(logs->mutex);
    logs->by_input[input.string()] = std::move(log);
    return {};
  }, {}, {}};
}

// A private work folder beside the output, removed with everything in it.
class WorkFolder {
 public:
  static Result<WorkFolder> create(const fs::path& parent) {
    auto random = crypto::random_bytes(6);
    if (!random) return std::unexpected(random.error());
    const fs::path path =
        parent /
        (".radguard-share-" +
         crypto::to_hex(reinterpret_cast<const std::uint8_t*>(random->data()), random->size()));
    std::error_code ec;
    if (!fs::create_directory(path, ec) || ec)
      return fail(ErrorCode::io, "cannot create a work folder in " + parent.string());
    fs::permissions(path, fs::perms::owner_all, ec);
    return WorkFolder(path);
  }
  WorkFolder(WorkFolder&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  WorkFolder& operator=(WorkFolder&&) = delete;
  ~WorkFolder() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit WorkFolder(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

// Plain words for why an input was left out; never its path or a value.
std::string left_out_reason(const deid::FileOutcome& o) {
  if (o.status == deid::FileStatus::duplicate) return "a second copy of an image already shared";
  const std::string& why = o.reason;
  if (why.find("Clean Recognizable Visual Features") != std::string::npos)
    return "part of a head scan whose face could not be removed safely";
  if (why.find("identifying text is still found") != std::string::npos)
    return "an image that still showed identifying text after blacking it out";
  if (why.find("too many text-like regions") != std::string::npos)
    return "an image with more text than could be read";
  switch (o.error.value_or(ErrorCode::internal)) {
    case ErrorCode::unsupported:
      return "an image stored in a form that cannot be checked";
    case ErrorCode::malformed_dicom:
      return "a damaged or incomplete DICOM file";
    case ErrorCode::io:
      return "a file that could not be read";
    case ErrorCode::policy:
      return "an object that could not be cleaned";
    default:
      return "an object that could not be checked";
  }
}

// A view among renderings ("front", "yaw+70": the side); nullptr when absent.
const deface::Image* view_of(const std::vector<deface::Rendering>& renderings,
                             std::string_view view) {
  for (const auto& r : renderings)
    if (r.view == view && !r.image.pixels.empty()) return &r.image;
  return nullptr;
}

// A head's renderings shown in the report: front and side, after (and before, for a page on
// this computer only).
struct HeadViews {
  struct View {
    const char* words;  // "from the front"
    deface::Image after, before;
  };
  std::vector<View> views;
};

HeadViews head_views(const std::vector<deface::Rendering>& before,
                     const std::vector<deface::Rendering>& after) {
  HeadViews out;
  for (const auto& [view, words] : {std::pair{"front", "from the front"},
                                    std::pair{"yaw+70", "from the side"}}) {
    const auto* a = view_of(after, view);
    if (!a) continue;
    const auto* b = view_of(before, view);
    out.views.push_back({words, *a, b ? *b : deface::Image{}});
  }
  return out;
}

std::vector<std::uint8_t> rgb_of(const deface::Image& image) {
  std::vector<std::uint8_t> rgb;
  rgb.reserve(image.pixels.size() * 3);
  for (const auto v : image.pixels) rgb.insert(rgb.end(), {v, v, v});
  return rgb;
}

std::string numbered(const char* prefix, std::size_t n) {
  std::string digits = std::to_string(n);
  const std::size_t width = 8 - std::string_view(prefix).size();
  return prefix + std::string(width > digits.size() ? width - digits.size() : 0, '0') + digits;
}

}  // namespace

const std::vector<std::string>& share_options() {
  static const std::vector<std::string> options = {"clean-descriptors", "clean-structured-content",
                                                   "clean-graphics", "clean-pixel-data",
                                                   "clean-recognizable-visual-features"};
  return options;
}

std::size_t ShareReport::files_left_out() const {
  std::size_t n = 0;
  for (const auto& [reason, count] : left_out) n += count;
  return n;
}

int ShareReport::exit_code() const { return files_shared > 0 && files_left_out() == 0 ? 0 : 1; }

Result<ShareReport> run_share(const ShareOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.inputs.empty()) return fail(ErrorCode::usage, "nothing to share: give an input");
  if (options.output.empty()) return fail(ErrorCode::usage, "give --output (a folder or a .zip)");
  std::error_code ec;
  for (const auto& input : options.inputs)
    if (!fs::exists(input, ec)) return fail(ErrorCode::usage, input.string() + " does not exist");
  if (auto outside = batch::require_outside_inputs(options.output, options.inputs); !outside)
    return std::unexpected(outside.error());
  const bool to_zip = is_zip_name(options.output);
  const fs::path output = fs::absolute(options.output, ec);
  if (to_zip
          ? fs::exists(output, ec)
          : fs::exists(output, ec) && !(fs::is_directory(output, ec) && fs::is_empty(output, ec)))
    return fail(ErrorCode::usage, output.string() + " exists and is not empty: nothing replaced");
  fs::create_directories(output.parent_path(), ec);
  auto work = WorkFolder::create(output.parent_path());
  if (!work) return std::unexpected(work.error());

  // Zip files are unpacked into the private work folder and read from there.
  std::vector<fs::path> inputs;
  std::size_t zips = 0;
  std::uint64_t unpacked = 0;
  for (const auto& input : options.inputs) {
    if (is_zip(input)) {
      const fs::path folder = work->path() / ("zip" + std::to_string(++zips));
      fs::create_directory(folder, ec);
      const std::uint64_t budget =
          options.max_unpacked_bytes > unpacked ? options.max_unpacked_bytes - unpacked : 0;
      if (auto s = extract_zip(input, folder, budget); !s) return std::unexpected(s.error());
      for (const auto& e : fs::recursive_directory_iterator(folder, ec))
        if (e.is_regular_file(ec)) unpacked += e.file_size(ec);
      inputs.push_back(folder);
    } else {
      inputs.push_back(input);
    }
  }

  // NIfTI volumes: a fresh header (nothing of the input's but the geometry) and the face
  // removed, or left out.
  struct NiftiDone {
    HeadViews views;
    fs::path staged;
  };
  std::vector<NiftiDone> niftis;
  std::set<std::string> nifti_inputs;
  std::map<std::string, std::size_t> nifti_left_out;
  for (const auto& path : batch::find_files(inputs).files) {
    if (!is_nifti_name(path)) continue;
    nifti_inputs.insert(path);
    auto image = volume::read_nifti(path);
    if (!image) {
      ++nifti_left_out["a NIfTI volume that could not be read"];
      continue;
    }
    deface::DefaceOptions volume_options;
    volume_options.method = deface::DefaceMethod::remove;
    volume_options.keep_renderings = true;
    auto defaced = deface::deface(image->volume, volume_options);
    if (!defaced || defaced->verdict != deface::Verdict::defaced) {
      ++nifti_left_out["a NIfTI volume whose face could not be removed safely"];
      continue;
    }
    image->header = volume::make_nifti_header(image->volume);
    NiftiDone done;
    done.staged = work->path() / ("vol" + std::to_string(niftis.size() + 1) + ".nii.gz");
    if (auto s = volume::write_nifti(done.staged, *image); !s) return std::unexpected(s.error());
    done.views = head_views(defaced->renderings_before, defaced->renderings_after);
    niftis.push_back(std::move(done));
  }

  // A random key for this run only: pseudonyms stay consistent inside the copy, and nobody,
  // the sender included, can recompute or reverse them.
  auto key = crypto::SecretKey::generate();
  if (!key) return std::unexpected(key.error());
  auto policy = deid::Policy::create("basic", share_options(), std::nullopt);
  if (!policy) return std::unexpected(policy.error());
  const deid::HeaderStage stage(std::move(*policy), pseudonym::Pseudonymizer(std::move(*key)),
                                deid::BurnedInPolicy::reject);

  // Faces first (whole series), then text, as deid orders them.
  std::map<std::string, HeadViews> renderings;  // by series
  std::mutex renderings_mutex;                  // series may be defaced in parallel
  deface::DefaceOptions deface_options;
  deface_options.method = deface::DefaceMethod::remove;
  deface::SeriesOptions series_options;
  series_options.threads = batch::default_threads(options.threads);
  series_options.work_parent = work->path();
  series_options.progress = options.progress;
  series_options.on_renderings = [&renderings, &renderings_mutex](
                                     const std::string& series,
                                     const std::vector<deface::Rendering>& before,
                                     const std::vector<deface::Rendering>& after) {
    std::lock_guard lock(renderings_mutex);
    renderings[series] = head_views(before, after);
  };
  const auto defacing_start = std::chrono::steady_clock::now();
  auto defacing = deface::deface_dicom_series(inputs, deface_options, series_options);
  if (!defacing) return std::unexpected(defacing.error());
  const double defacing_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - defacing_start).count();
  auto logs = std::make_shared<Logs>();
  deid::DeidRunOptions run;
  run.inputs = inputs;
  run.output = work->path() / "out";
  run.threads = options.threads;
  run.progress = options.progress;
  run.written = deid::WrittenOutcomes::keep;
  run.listener = options.listener;
  run.cancel = options.cancel;
  run.pixel_stages.push_back(
      {"clean-recognizable-visual-features",
       [faces = *defacing](const fs::path& input, dicom::DicomFile& file,
                           deid::PixelWork& pixel_work) -> Status {
         auto applied = faces.apply(input, file);
         if (!applied) return std::unexpected(applied.error());
         pixel_work.defaced = applied->defaced;
         pixel_work.frames_defaced = static_cast<std::uint32_t>(applied->frames_changed);
         return {};
       },
       {},
       {}});
  run.pixel_stages.push_back(text_stage(
      logs, options.before_previews.empty() ? BeforePictures::skip : BeforePictures::keep));
  auto result = deid::run_deid(run, stage);
  if (!result) return std::unexpected(result.error());

  ShareReport report;
  report.defacing_seconds = defacing_seconds;
  std::map<std::string, deid::PixelWork> work_of;  // by input
  for (const auto& o : result->pixel_work) work_of[o.input.string()] = o.pixels;
  std::set<std::string> defaced_inputs;
  for (const auto& series : defacing->series()) {
    if (series.outcome != deface::SeriesOutcome::defaced) continue;
    ++report.faces_removed;
    for (const auto& f : series.files) defaced_inputs.insert(f.string());
  }
  if (auto read = result->problems.for_each([&](const deid::FileOutcome& o) {
        switch (o.status) {
          case deid::FileStatus::skipped_not_dicom:
            if (!nifti_inputs.contains(o.input.string())) ++report.not_images;
            break;
          case deid::FileStatus::dicomdir_dropped:
            ++report.dicomdirs_replaced;
            break;
          default:
            ++report.left_out[left_out_reason(o)];
        }
      });
      !read)
    return std::unexpected(read.error());
  for (const auto& [reason, count] : nifti_left_out) report.left_out[reason] += count;
  if (result->written.empty() && niftis.empty()) {
    std::string why;
    for (const auto& [reason, count] : report.left_out)
      why += "; left out " + std::to_string(count) + ": " + reason;
    return fail(ErrorCode::policy,
                "nothing could be shared: " +
                    (why.empty() ? std::string("no DICOM image was found") : why.substr(2)));
  }

  // The copy: DICOM/STnnnnnn/SEnnnnnn/IMnnnnnn, as a DICOMDIR needs, in study and series order.
  std::vector<const deid::FileOutcome*> written;
  for (const auto& o : result->written) written.push_back(&o);
  std::sort(written.begin(), written.end(),
            [](const auto* a, const auto* b) { return a->output < b->output; });
  const fs::path release = work->path() / "release";
  // A picture of the report: into the copy's previews/, and the same picture from before, when
  // asked for, into the folder outside the copy (owner-only: it shows what was removed).
  auto add_preview = [&](int width, int height, const std::vector<std::uint8_t>& rgb,
                         const std::vector<std::uint8_t>& rgb_before,
                         std::string caption) -> Status {
    const std::string n = std::to_string(report.previews.size() + 1);
    Preview preview{"previews/p" + n + ".png", std::move(caption), {}};
    fs::create_directories(release / "previews", ec);
    if (auto s = write_file_atomically(release / preview.file, encode_png(width, height, rgb),
                                       kShared);
        !s)
      return s;
    if (!options.before_previews.empty() && rgb_before.size() == rgb.size()) {
      preview.before = "b" + n + ".png";
      fs::create_directories(options.before_previews, ec);
      if (auto s = write_file_atomically(options.before_previews / preview.before,
                                         encode_png(width, height, rgb_before),
                                         fs::perms::owner_read | fs::perms::owner_write);
          !s)
        return s;
    }
    report.previews.push_back(std::move(preview));
    return {};
  };
  auto add_head_preview = [&](const HeadViews::View& view, const std::string& what) -> Status {
    return add_preview(view.after.width, view.after.height, rgb_of(view.after),
                       view.before.pixels.size() == view.after.pixels.size()
                           ? rgb_of(view.before)
                           : std::vector<std::uint8_t>{},
                       what + " after its face was removed: the skin surface seen " + view.words);
  };
  std::vector<fs::path> names;
  std::string last_study, last_series;
  std::size_t study_n = 0, series_n = 0, image_n = 0;
  for (const auto* o : written) {
    auto it = o->output.begin();
    const std::string study = it->string();
    const std::string series = (++it)->string();
    if (study != last_study) {
      ++study_n;
      series_n = 0;
      last_study = study;
      last_series.clear();
      report.studies.push_back({"Study " + std::to_string(study_n), {}});
    }
    if (series != last_series) {
      ++series_n;
      image_n = 0;
      last_series = series;
    }
    ++image_n;
    const fs::path name = fs::path("DICOM") / numbered("ST", study_n) / numbered("SE", series_n) /
                          numbered("IM", image_n);
    fs::create_directories(release / name.parent_path(), ec);
    fs::rename(run.output / o->output, release / name, ec);
    if (ec) return fail(ErrorCode::io, "cannot arrange the copy: " + ec.message());
    names.push_back(name);
    SharedFile shared;
    shared.name = name.generic_string();
    if (const auto log = logs->by_input.find(o->input.string()); log != logs->by_input.end()) {
      shared.modality = log->second.modality;
      shared.kind = log->second.kind;
      shared.pixels = log->second.pixels;
      if (shared.pixels.text_boxes > 0) ++report.images_redacted;
      for (const auto& frame : log->second.redacted_frames) {
        if (auto s = add_preview(frame.width, frame.height, frame.rgb, frame.rgb_before,
                                 shared.name +
                                     (shared.pixels.frames > 1
                                          ? ", frame " + std::to_string(frame.frame + 1)
                                          : std::string()) +
                                     ": after blacking out (red frames mark what was covered)");
            !s)
          return std::unexpected(s.error());
      }
    }
    if (const auto w = work_of.find(o->input.string()); w != work_of.end()) {
      shared.pixels.defaced = w->second.defaced;
      shared.pixels.frames_defaced = w->second.frames_defaced;
    }
    shared.pixels.defaced = shared.pixels.defaced || defaced_inputs.contains(o->input.string());
    report.studies.back().files.push_back(std::move(shared));
    ++report.files_shared;
  }
  // Renderings of each defaced head's skin surface after the face was removed, from the front
  // and from the side.
  for (const auto& series : defacing->series()) {
    if (series.outcome != deface::SeriesOutcome::defaced) continue;
    const auto r = renderings.find(series.series_uid);
    if (r == renderings.end()) continue;
    for (const auto& view : r->second.views)
      if (auto s = add_head_preview(view, "a head scan (" + std::to_string(series.files.size()) +
                                              " images)");
          !s)
        return std::unexpected(s.error());
  }
  for (std::size_t i = 0; i < niftis.size(); ++i) {
    const std::string name = "NIFTI/" + numbered("VOL", i + 1) + ".nii.gz";
    fs::create_directories(release / "NIFTI", ec);
    fs::rename(niftis[i].staged, release / name, ec);
    if (ec) return fail(ErrorCode::io, "cannot arrange the copy: " + ec.message());
    report.volumes.push_back({name});
    ++report.faces_removed;
    ++report.files_shared;
    for (const auto& view : niftis[i].views.views)
      if (auto s = add_head_preview(view, name); !s) return std::unexpected(s.error());
  }
  if (!names.empty()) {
    if (auto s = dicom::write_dicomdir(release, names, "SHARED_SCANS"); !s)
      return std::unexpected(s.error());
  }

  report.output = output;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (auto s = write_file_atomically(release / "report.html", report_html(report), kShared); !s)
    return std::unexpected(s.error());

  if (to_zip) {
    const fs::path partial = work->path() / "copy.zip";
    if (auto s = write_zip(release, partial); !s) return std::unexpected(s.error());
    fs::rename(partial, output, ec);
  } else {
    if (fs::exists(output)) fs::remove(output, ec);  // an empty folder
    fs::rename(release, output, ec);
  }
  if (ec) return fail(ErrorCode::io, "cannot publish " + output.string() + ": " + ec.message());
  return report;
}

}  // namespace radguard::share
