#pragma once
// The pixel stages of the commands that de-identify (deid, export), built from the PS3.15
// options the policy holds: Clean Pixel Data (burned-in text, src/redact) and Clean
// Recognizable Visual Features (faces in head CT/MR, src/deface).
#include <filesystem>
#include <vector>

#include "core/result.hpp"
#include "deid/deid_run.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

// One stage per pixel option in `stage`'s policy, in the order they must run. Without Clean
// Pixel Data and without --allow-burned-in-annotation, share::burned_in_gate() takes its
// place: images that may show burned-in text are refused, not released silently. Fails with
// ErrorCode::usage (bad --redact-mode or rule file). Defacing works on whole series: its
// stage's `prepare` looks at all the run's inputs (with progress) before the run, so its
// time is in the run's timings.
Result<std::vector<deid::PixelStage>> make_pixel_stages(const StageArgs& args,
                                                        const deid::HeaderStage& stage);

}  // namespace radguard::cli
