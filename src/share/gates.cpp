#include "share/gates.hpp"

#include <optional>
#include <set>

#include "deface/dicom_series.hpp"
#include "redact/redact.hpp"

namespace radguard::share {

deid::PixelStage burned_in_gate() {
  return {"burned-in-gate", [](const std::filesystem::path&, dicom::DicomFile& file,
                              deid::PixelWork&) -> Status {
    const redact::Triage verdict = redact::triage(redact::header_facts(file));
    if (verdict.verdict == redact::TriageVerdict::skip) return {};
    return fail(ErrorCode::policy, std::string(deid::kBurnedInRefusal) + " (" + verdict.reason +
                                       "); not released without --option clean-pixel-data, or "
                                       "--allow-burned-in-annotation after checking the pixels");
  }, {}, {}};
}

deid::PixelStage clean_pixel_data_stage(std::shared_ptr<const redact::RedactOptions> options) {
  return {"clean-pixel-data",
          [options = std::move(options)](const std::filesystem::path&, dicom::DicomFile& file,
                                         deid::PixelWork& work) -> Status {
            auto redaction = redact::clean_for_release(file, *options);
            if (!redaction) return std::unexpected(redaction.error());
            work.frames = static_cast<std::uint32_t>(redaction->frames);
            work.read_for_text = redaction->frames_ocred > 0;
            work.text_boxes = static_cast<std::uint32_t>(redaction->redactions.size());
            std::set<std::size_t> frames;
            for (const auto& box : redaction->redactions) frames.insert(box.frame);
            work.frames_redacted = static_cast<std::uint32_t>(frames.size());
            return {};
          },
          {},
          {}};
}

deid::PixelStage defacing_stage() {
  auto defacing = std::make_shared<std::optional<deface::SeriesDefacing>>();
  return {"clean-recognizable-visual-features",
          [defacing](const std::filesystem::path& input, dicom::DicomFile& file,
                     deid::PixelWork& work) -> Status {
            if (!defacing->has_value())
              return fail(ErrorCode::internal, "defacing was not prepared");
            auto applied = (*defacing)->apply(input, file);
            if (!applied) return std::unexpected(applied.error());
            work.defaced = applied->defaced;
            work.frames_defaced = static_cast<std::uint32_t>(applied->frames_changed);
            return {};
          },
          [defacing](const deid::PixelStageContext& context) -> Status {
            deface::DefaceOptions options;
            options.method = deface::DefaceMethod::remove;
            deface::SeriesOptions series_options;
            series_options.threads = batch::default_threads(context.threads);
            series_options.progress = context.progress;
            const std::vector<std::filesystem::path> inputs(context.inputs.begin(),
                                                            context.inputs.end());
            auto done = deface::deface_dicom_series(inputs, options, series_options);
            if (!done) return std::unexpected(done.error());
            defacing->emplace(std::move(*done));
            return {};
          },
          [](volume::Volume& volume, deid::PixelWork& work) -> Status {
            deface::DefaceOptions options;
            options.method = deface::DefaceMethod::remove;
            auto report = deface::deface(volume, options);
            if (!report) return std::unexpected(report.error());
            work.defaced = report->verdict == deface::Verdict::defaced;
            return {};
          }};
}

}  // namespace radguard::share
