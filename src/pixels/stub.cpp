// radguard's side of the pixel plugin: finds and loads radguard-pixels.so on first use, and
// defines the functions of redact/ocr.hpp, redact/text_detector.hpp, redact/regions.hpp, the
// batch of redact/redact.hpp and deface's detect_faces/write_png by forwarding them to it.
#include <stdexcept>

#include "pixels/api.hpp"
#include "pixels/pixels.hpp"
#include "plugin/loader.hpp"
#include "pixels_stamp.hpp"

namespace radguard::pixels {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPluginName = "radguard-pixels.so";
constexpr plugin::Spec kSpec{"pixel", kPluginName, "RADGUARD_PIXELS", kEntryPoint, kPixelsStamp};

const plugin::Table<Api>& loaded() {
  static const plugin::Table<Api> once = plugin::load_table<Api>(kSpec);
  return once;
}

std::string missing_message() {
  return "pixel support (" + std::string(kPluginName) + ") is not available: " + loaded().error +
         "; OCR, burned-in text redaction and defacing need it";
}

// For the functions that return a Result: the error to return when the plugin is missing.
std::unexpected<Error> missing() { return fail(ErrorCode::unsupported, missing_message()); }

// For the few functions without a Result: they are only reached after one with a Result has
// loaded the plugin; if not, the file fails (the batch catches this) rather than pass unchecked.
const Api& api_or_throw() {
  if (loaded().api == nullptr) throw std::runtime_error(missing_message());
  return *loaded().api;
}

}  // namespace

std::vector<fs::path> plugin_candidates() { return plugin::candidates(kSpec); }

Status load() {
  if (loaded().api == nullptr) return missing();
  return {};
}

bool is_plugin_build() { return true; }

}  // namespace radguard::pixels

// The forwarding definitions (the declarations are the headers').
namespace radguard::redact {

using pixels::api_or_throw;
using pixels::loaded;
using pixels::missing;

Gray8 render_gray8(const dicom::PixelImage& image, std::size_t frame) {
  return api_or_throw().render_gray8(image, frame);
}
Result<std::vector<Word>> read_words(const Gray8& image) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->read_words(image);
}
std::vector<Candidate> uncovered_text_candidates(const Gray8& image, const std::vector<Word>& found,
                                                 const std::vector<Box>& redacted,
                                                 MarkContrast contrast) {
  return api_or_throw().uncovered_text_candidates(image, found, redacted, contrast);
}
Result<CandidateReading> read_candidate(const Gray8& image, const Candidate& candidate) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->read_candidate(image, candidate);
}
Result<std::vector<Word>> read_region(const Gray8& image, const Box& region, bool vertical) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->read_region(image, region, vertical);
}
std::vector<std::uint8_t> ink_mask(const Gray8& image, const Box& region) {
  return api_or_throw().ink_mask(image, region);
}
Result<std::vector<std::string>> reread(const Gray8& image, const Box& box) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->reread(image, box);
}

Result<std::filesystem::path> text_detector_model() {
  if (loaded().api == nullptr) return missing();
  return loaded().api->text_detector_model();
}
Result<std::vector<TextRegion>> detect_text(const Gray8& image, DetectPasses passes) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->detect_text(image, passes);
}
Result<std::vector<TextRegion>> confirm_small_text(const Gray8& image,
                                                   const std::vector<Box>& candidates) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->confirm_small_text(image, candidates);
}
// Called at a file's end (a destructor): with no plugin there is nothing remembered to drop.
void forget_detector_maps() {
  if (loaded().api != nullptr) loaded().api->forget_detector_maps();
}

Result<RegionVerdict> judge_region(const Gray8& image, const TextRegion& region,
                                   const PhiMatcher& matcher, Mode mode,
                                   const std::vector<Box>& filled,
                                   const std::vector<TextRegion>& neighbours) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->judge_region(image, region, matcher, mode, filled, neighbours);
}
Result<FrameFindings> find_text(const Gray8& image, const PhiMatcher& matcher, Mode mode,
                                const std::vector<Box>& skip, RegionMemo& memo, Render render) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->find_text(image, matcher, mode, skip, memo, render);
}
Result<std::size_t> text_left_behind(const Gray8& after, const PhiMatcher& matcher, Mode mode,
                                     const std::vector<Box>& filled, const std::vector<Box>& kept,
                                     Render render) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->text_left_behind(after, matcher, mode, filled, kept, render);
}
Gray8 consensus(const std::vector<Gray8>& frames) { return api_or_throw().consensus(frames); }
const RegionVerdict* RegionMemo::find(const Gray8& image, const Box& box) const {
  return api_or_throw().memo_find(*this, image, box);
}
void RegionMemo::add(const Gray8& image, const Box& box, RegionVerdict verdict) {
  api_or_throw().memo_add(*this, image, box, std::move(verdict));
}

std::string_view outcome_status_name(OutcomeStatus status) {
  return api_or_throw().outcome_status_name(status);
}
std::size_t RedactRunReport::count(OutcomeStatus status) const {
  return api_or_throw().report_count(*this, status);
}
int RedactRunReport::exit_code() const { return api_or_throw().report_exit_code(*this); }
Result<RedactRunReport> run_redact(const RedactRunOptions& options) {
  if (loaded().api == nullptr) return missing();
  return loaded().api->run_redact(options);
}
std::string report_json(const RedactRunReport& report, const RedactRunOptions& options) {
  return api_or_throw().report_json(report, options);
}
std::string report_text(const RedactRunReport& report) {
  return api_or_throw().report_text(report);
}

}  // namespace radguard::redact

namespace radguard::deface {

Result<FaceCheck> detect_faces(const std::vector<Rendering>& renderings,
                               const std::filesystem::path& cascade_dir) {
  if (pixels::loaded().api == nullptr) return pixels::missing();
  return pixels::loaded().api->detect_faces(renderings, cascade_dir);
}
Status write_png(const std::filesystem::path& path, const Image& image) {
  if (pixels::loaded().api == nullptr) return pixels::missing();
  return pixels::loaded().api->write_png(path, image);
}

}  // namespace radguard::deface
