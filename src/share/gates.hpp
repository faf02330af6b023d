#pragma once
// Safety nets in front of a release: checks that refuse an input rather than let a risk
// through silently.
#include <memory>

#include "deid/deid_run.hpp"
#include "redact/redact.hpp"

namespace radguard::share {

// The pixel stage used when no pixel stage cleans burned-in text (no Clean Pixel Data) and
// the operator has not said --allow-burned-in-annotation: every image that header triage
// (redact::triage) says may carry text in its pixels (ultrasound, secondary and screen
// captures, documents, colour images, projection radiographs, unknown modalities, a
// Burned In Annotation that is not NO ...) fails with ErrorCode::policy and a reason that
// starts with deid::kBurnedInRefusal and names triage's reason (modality or image type,
// never a value that identifies). Images triage clears pass untouched. Thread-safe.
deid::PixelStage burned_in_gate();

// Clean Pixel Data ("clean-pixel-data") as deid and export run it: redact::clean_for_release
// in `options`' mode; the file's PixelWork says whether its frames were read and which were
// redacted with how many boxes. Thread-safe.
deid::PixelStage clean_pixel_data_stage(std::shared_ptr<const redact::RedactOptions> options);

// Clean Recognizable Visual Features ("clean-recognizable-visual-features"): its `prepare`
// groups the run's inputs into series and defaces every head CT/MR series (removal, with
// progress as the run shows it); `run` brings each file its result and records it in the
// file's PixelWork (defaced, frames changed). Files of refused head series fail, files of
// other series pass untouched. Thread-safe once prepared.
deid::PixelStage defacing_stage();

}  // namespace radguard::share
