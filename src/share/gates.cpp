#include "share/gates.hpp"

#include "redact/redact.hpp"

namespace radguard::share {

deid::PixelStage burned_in_gate() {
  return [](const std::filesystem::path&, dicom::DicomFile& file) -> Status {
    const redact::Triage verdict = redact::triage(redact::header_facts(file));
    if (verdict.verdict == redact::TriageVerdict::skip) return {};
    return fail(ErrorCode::policy, std::string(deid::kBurnedInRefusal) + " (" + verdict.reason +
                                       "); not released without --option clean-pixel-data, or "
                                       "--allow-burned-in-annotation after checking the pixels");
  };
}

}  // namespace radguard::share
