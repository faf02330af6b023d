#include "pixel_stages.hpp"

#include <memory>

#include "redact/redact.hpp"

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

Result<deid::PixelStage> face_stage(const std::vector<std::filesystem::path>&) {
  return fail(ErrorCode::usage,
              "option 'clean-recognizable-visual-features' is not available in deid yet; "
              "use radguard deface");
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
  }
  return stages;
}

}  // namespace radguard::cli
