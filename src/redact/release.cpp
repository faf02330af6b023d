#include "core/tag.hpp"
#include "redact/redact.hpp"

namespace radguard::redact {

namespace {
constexpr Tag kBurnedInAnnotation{0x0028, 0x0301};
}  // namespace

Result<FileRedaction> clean_for_release(dicom::DicomFile& file, const RedactOptions& options,
                                        PreviewImages previews) {
  if (options.mode == Mode::report)
    return fail(ErrorCode::usage, "report mode finds text but cannot clean pixel data");
  auto redaction = redact_file(file, options, previews);
  if (!redaction) return std::unexpected(redaction.error());
  switch (redaction->verdict) {
    case FileVerdict::not_needed:
      // Triage skips only cross-sections and images whose header says they carry no
      // burned-in annotation, and only without any other sign of text.
    case FileVerdict::cleaned:
      return redaction;
    case FileVerdict::no_text_found:
      // Every frame was read and nothing called for redaction: the image was checked.
      if (redaction->frames_ocred < redaction->frames)
        return fail(ErrorCode::internal, "not every frame of the image was read");
      if (auto s = file.set_string(kBurnedInAnnotation, "NO"); !s)
        return std::unexpected(s.error());
      return redaction;
    case FileVerdict::residual_phi:
      if (redaction->unread_text_regions > 0)
        return fail(ErrorCode::policy,
                    "too many text-like regions in the pixel data to read them all; not "
                    "released (inspect with `radguard redact --preview`)");
      return fail(ErrorCode::policy,
                  "identifying text is still found in the pixel data after redaction; not "
                  "released (inspect with `radguard redact --preview`)");
    case FileVerdict::reported:
      break;
  }
  return fail(ErrorCode::internal, "unexpected redaction verdict");
}

}  // namespace radguard::redact
