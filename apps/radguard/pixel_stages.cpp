#include "pixel_stages.hpp"

#include <memory>

#include "batch/batch.hpp"
#include "deface/dicom_series.hpp"
#include "redact/redact.hpp"
#include "share/gates.hpp"

namespace radguard::cli {

namespace {

Result<deid::PixelStage> text_stage(const StageArgs& args) {
  auto mode = redact::parse_mode(args.redact_mode);
  if (!mode) return std::unexpected(mode.error());
  if (*mode == redact::Mode::report)
    return fail(ErrorCode::usage, "--redact-mode report cannot clean pixel data for release");
  auto options = std::make_shared<redact::RedactOptions>();
  options->mode = *mode;
  if (!args.redaction_rules.empty()) {
    auto rules = redact::RuleSet::load(args.redaction_rules);
    if (!rules) return std::unexpected(rules.error());
    options->rules = std::move(*rules);
  }
  return deid::PixelStage(
      [options](const std::filesystem::path&, dicom::DicomFile& file) -> Status {
        return redact::clean_for_release(file, *options);
      });
}

// Defacing works on whole series: every input is grouped and every head series defaced
// (DefaceMethod::remove) before the run; the stage then brings each file its result. Files of
// refused head series fail (nothing written), files of other series pass untouched.
Result<deid::PixelStage> face_stage(const std::vector<std::filesystem::path>& inputs) {
  deface::DefaceOptions options;
  options.method = deface::DefaceMethod::remove;
  deface::SeriesOptions series_options;
  series_options.threads = batch::default_threads(0);
  auto defacing = deface::deface_dicom_series(inputs, options, series_options);
  if (!defacing) return std::unexpected(defacing.error());
  return deid::PixelStage([defacing = std::move(*defacing)](const std::filesystem::path& input,
                                                            dicom::DicomFile& file) -> Status {
    return defacing.apply(input, file);
  });
}

}  // namespace

Result<std::vector<deid::PixelStage>> make_pixel_stages(
    const StageArgs& args, const deid::HeaderStage& stage,
    const std::vector<std::filesystem::path>& inputs) {
  std::vector<deid::PixelStage> stages;
  // Faces first: defacing reads the original pixels of whole series, and a face removed
  // before OCR cannot hide or create text.
  if (stage.policy().has(deid::PixelOption::clean_recognizable_visual_features)) {
    auto faces = face_stage(inputs);
    if (!faces) return std::unexpected(faces.error());
    stages.push_back(std::move(*faces));
  }
  if (stage.policy().has(deid::PixelOption::clean_pixel_data)) {
    auto text = text_stage(args);
    if (!text) return std::unexpected(text.error());
    stages.push_back(std::move(*text));
  } else if (!args.allow_burned_in) {
    // Nothing cleans burned-in text: whatever may show it is refused, not released silently.
    stages.push_back(share::burned_in_gate());
  }
  return stages;
}

}  // namespace radguard::cli
