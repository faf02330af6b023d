#include "pixel_stages.hpp"

#include <memory>

#include "batch/batch.hpp"
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
  return share::clean_pixel_data_stage(std::move(options));
}

}  // namespace

Result<std::vector<deid::PixelStage>> make_pixel_stages(const StageArgs& args,
                                                        const deid::HeaderStage& stage) {
  std::vector<deid::PixelStage> stages;
  // Faces first: defacing reads the original pixels of whole series, and a face removed
  // before OCR cannot hide or create text.
  if (stage.policy().has(deid::PixelOption::clean_recognizable_visual_features)) {
    stages.push_back(share::defacing_stage());
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
