#pragma once
// Safety nets in front of a release: checks that refuse an input rather than let a risk
// through silently.
#include "deid/deid_run.hpp"

namespace radguard::share {

// The pixel stage used when no pixel stage cleans burned-in text (no Clean Pixel Data) and
// the operator has not said --allow-burned-in-annotation: every image that header triage
// (redact::triage) says may carry text in its pixels (ultrasound, secondary and screen
// captures, documents, colour images, projection radiographs, unknown modalities, a
// Burned In Annotation that is not NO ...) fails with ErrorCode::policy and a reason that
// starts with deid::kBurnedInRefusal and names triage's reason (modality or image type,
// never a value that identifies). Images triage clears pass untouched. Thread-safe.
deid::PixelStage burned_in_gate();

}  // namespace radguard::share
