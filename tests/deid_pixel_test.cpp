// `deid --option clean-pixel-data`: the pixel stage runs before the header stage, so burned-in
// identifying text is covered in the released file, which records what was done; images that
// need no OCR keep their pixels; and nothing is released that the stage cannot clean.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <opencv2/imgproc.hpp>

#include "deid/deid_run.hpp"
#include "dicom/pixels.hpp"
#include "redact/redact.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"

namespace radguard {
namespace {

using testing::BurnedFrame;
using testing::Colour;
using testing::TempDir;

deid::HeaderStage stage_with(std::vector<std::string> options,
                             deid::BurnedInPolicy burned_in = deid::BurnedInPolicy::reject) {
  auto policy = deid::Policy::create("basic", options, std::nullopt);
  EXPECT_TRUE(policy.has_value()) << policy.error().message;
  return deid::HeaderStage(std::move(*policy), pseudonym::Pseudonymizer(testing::test_key()),
                           burned_in);
}

deid::PixelStage text_stage() {
  return {"clean-pixel-data",
          [](const std::filesystem::path&, dicom::DicomFile& file, deid::PixelWork& work) -> Status {
            redact::RedactOptions options;
            options.mode = redact::Mode::phi_text;
            auto redaction = redact::clean_for_release(file, options);
            if (!redaction) return std::unexpected(redaction.error());
            work.frames = static_cast<std::uint32_t>(redaction->frames);
            work.read_for_text = redaction->frames_ocred > 0;
            work.text_boxes = static_cast<std::uint32_t>(redaction->redactions.size());
            work.frames_redacted = redaction->redactions.empty() ? 0 : 1;
            return {};
          },
          {}};
}

// Runs deid on one file into `output` with the given pixel stages and options.
deid::DeidRunReport deid_one(const std::filesystem::path& input,
                             const std::filesystem::path& output,
                             std::vector<deid::PixelStage> pixel_stages,
                             std::vector<std::string> options) {
  deid::DeidRunOptions run;
  run.inputs = {input};
  run.output = output;
  run.progress = batch::ProgressDisplay::never;
  run.written = deid::WrittenOutcomes::keep;
  run.pixel_stages = std::move(pixel_stages);
  auto report = deid::run_deid(run, stage_with(std::move(options)));
  EXPECT_TRUE(report.has_value());
  return report.value_or(deid::DeidRunReport{});
}

BurnedFrame ultrasound_screen() {
  BurnedFrame f;
  f.width = 320;
  f.height = 240;
  f.texts = {
      {"DOE", {8, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"JOHN", {62, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"PID12345", {8, 48}, cv::FONT_HERSHEY_DUPLEX, 0.55, 1, 230, true},
      {"LIVER", {8, 200}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, false},
  };
  return f;
}

// The share of a text's ink pixels that are black in `pixels` (MONOCHROME2, 8-bit).
double blackened(const BurnedFrame& frame, const testing::BurnedText& text,
                 const std::vector<std::uint16_t>& pixels) {
  const cv::Mat ink = testing::ink_of(frame, text);
  std::size_t total = 0, black = 0;
  for (int y = 0; y < ink.rows; ++y) {
    for (int x = 0; x < ink.cols; ++x) {
      if (ink.at<std::uint8_t>(y, x) == 0) continue;
      ++total;
      if (pixels[static_cast<std::size_t>(y) * frame.width + x] == 0) ++black;
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(black) / static_cast<double>(total);
}

TEST(DeidPixelStage, OptionIsRecordedInTheMethodCodes) {
  auto policy =
      deid::Policy::create("basic", std::vector<std::string>{"clean-pixel-data"}, std::nullopt);
  ASSERT_TRUE(policy.has_value());
  EXPECT_TRUE(policy->has(deid::PixelOption::clean_pixel_data));
  EXPECT_FALSE(policy->has(deid::PixelOption::clean_recognizable_visual_features));
  std::vector<std::string> codes;
  for (const auto* code : policy->method_codes()) codes.emplace_back(code->value);
  EXPECT_EQ(codes, (std::vector<std::string>{"113100", "113101"}));
  EXPECT_EQ(policy->option_names(), std::vector<std::string>{"clean-pixel-data"});
}

TEST(DeidPixelStage, BurnedInIdentityIsCoveredBeforeRelease) {
  const TempDir dir;
  const BurnedFrame frame = ultrasound_screen();
  auto input = testing::make_burned_in({frame}, Colour::monochrome2);
  ASSERT_TRUE(input->getDataset()->putAndInsertString(DCM_BurnedInAnnotation, "YES").good());
  testing::save(*input, dir / "us.dcm");

  // Without the pixel stage, Burned In Annotation = YES is refused.
  EXPECT_EQ(deid_one(dir / "us.dcm", dir / "plain", {}, {}).count(deid::FileStatus::failed), 1u);

  const auto report = deid_one(dir / "us.dcm", dir / "out", {text_stage()}, {"clean-pixel-data"});
  ASSERT_EQ(report.written.size(), 1u)
      << (report.problems.empty() ? "" : report.problems.front().reason);
  const auto output = dir / "out" / report.written.front().output;

  auto released = testing::load(output);
  EXPECT_EQ(testing::value(*released, "BurnedInAnnotation"), "NO");
  EXPECT_EQ(testing::value(*released, "DeidentificationMethodCodeSequence[0].CodeValue"), "113100");
  EXPECT_EQ(testing::value(*released, "DeidentificationMethodCodeSequence[1].CodeValue"), "113101");
  EXPECT_NE(testing::value(*released, "PatientName"), "DOE^JOHN");

  // The reports say per file what the pixel stage did (counts, never the words).
  ASSERT_EQ(report.pixel_work.size(), 1u);
  EXPECT_TRUE(report.pixel_work.front().pixels.read_for_text);
  EXPECT_GT(report.pixel_work.front().pixels.text_boxes, 0u);
  EXPECT_EQ(report.pixel_work.front().output, report.written.front().output);
  ASSERT_EQ(report.stage_timings.size(), 1u);
  EXPECT_EQ(report.stage_timings.front().name, "clean-pixel-data");
  EXPECT_GT(report.stage_timings.front().seconds, 0.0);
  deid::DeidRunOptions shown;
  shown.inputs = {dir / "us.dcm"};
  const std::string summary = deid::report_text(report, shown);
  EXPECT_NE(summary.find("redacted: us.dcm -> " + report.written.front().output.generic_string() +
                      ": 1 of 1 frame"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("time in pixel stages: clean-pixel-data"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("DOE"), std::string::npos);
  const auto json = nlohmann::json::parse(
      deid::report_json(report, stage_with({"clean-pixel-data"}), shown));
  ASSERT_EQ(json["pixel_work"].size(), 1u);
  EXPECT_EQ(json["pixel_work"][0]["input"], "us.dcm");
  EXPECT_EQ(json["pixel_work"][0]["frames_redacted"], 1);
  EXPECT_EQ(json["pixels"]["images_redacted"], 1);
  EXPECT_EQ(json["timings"]["pixel_stages"][0]["stage"], "clean-pixel-data");

  auto file = dicom::DicomFile::open(output);
  ASSERT_TRUE(file.has_value());
  auto image = dicom::decode_pixels(*file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  for (const auto& text : frame.texts) {
    const double share = blackened(frame, text, image->frames.front());
    if (text.phi)
      EXPECT_GE(share, 0.99) << text.text << " is not covered";
    else
      EXPECT_LE(share, 0.2) << text.text << " was redacted although it identifies no one";
  }
}

TEST(DeidPixelStage, ImagesThatNeedNoOcrKeepTheirPixels) {
  const TempDir dir;
  auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.77", 64, 64, 2);
  testing::save(*ct, dir / "ct.dcm");
  const auto report = deid_one(dir / "ct.dcm", dir / "out", {text_stage()}, {"clean-pixel-data"});
  ASSERT_EQ(report.written.size(), 1u);
  auto released = testing::load(dir / "out" / report.written.front().output);
  EXPECT_EQ(testing::pixel_bytes(*released), testing::pixel_bytes(*ct));
}

TEST(DeidPixelStage, AFailingPixelStageReleasesNothing) {
  const TempDir dir;
  auto ct = testing::make_ct();
  testing::save(*ct, dir / "ct.dcm");
  const deid::PixelStage refuse{
      "face-check",
      [](const std::filesystem::path&, dicom::DicomFile&, deid::PixelWork&) -> Status {
        return fail(ErrorCode::policy, "still shows a face");
      },
      {}};
  const auto report = deid_one(dir / "ct.dcm", dir / "out", {refuse}, {"clean-pixel-data"});
  EXPECT_EQ(report.count(deid::FileStatus::failed), 1u);
  EXPECT_EQ(report.exit_code(), 1);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems.front().reason, "still shows a face");
  EXPECT_EQ(report.problems.front().pixels.refused_by, "face-check");
  deid::DeidRunOptions shown;
  shown.inputs = {dir / "ct.dcm"};
  const auto json =
      nlohmann::json::parse(deid::report_json(report, stage_with({"clean-pixel-data"}), shown));
  EXPECT_EQ(json["failures"][0]["refused_by"], "face-check");
  EXPECT_EQ(json["pixels"]["refused_by_stage"]["face-check"], 1);
  EXPECT_TRUE(std::filesystem::is_empty(dir / "out"));
}

TEST(Triage, ColourAndScreenSizedImagesAreReadWhateverTheModality) {
  redact::HeaderFacts rendering;
  rendering.has_pixel_data = true;
  rendering.modality = "CT";
  rendering.image_type = "DERIVED\\PRIMARY\\VOLUME";
  rendering.rows = rendering.columns = 512;
  rendering.samples_per_pixel = 3;
  EXPECT_EQ(redact::triage(rendering).verdict, redact::TriageVerdict::ocr);
  auto grey_screen = rendering;
  grey_screen.samples_per_pixel = 1;
  grey_screen.rows = 768;
  grey_screen.columns = 1024;
  EXPECT_EQ(redact::triage(grey_screen).verdict, redact::TriageVerdict::ocr);
  auto slice = grey_screen;
  slice.rows = slice.columns = 512;
  EXPECT_EQ(redact::triage(slice).verdict, redact::TriageVerdict::skip);
  // A radiograph is read: its label (name, ID) is often burned in.
  auto radiograph = slice;
  radiograph.modality = "DX";
  radiograph.image_type = "ORIGINAL\\PRIMARY";
  radiograph.rows = 2048;
  radiograph.columns = 1536;
  EXPECT_EQ(redact::triage(radiograph).verdict, redact::TriageVerdict::ocr);
  radiograph.burned_in_annotation = "NO";
  EXPECT_EQ(redact::triage(radiograph).verdict, redact::TriageVerdict::skip);
}

// A projection radiograph without Burned In Annotation is not released unread: its burned-in
// identity is covered like an ultrasound screen's.
TEST(DeidPixelStage, RadiographsAreReadNotWavedThrough) {
  const TempDir dir;
  const BurnedFrame frame = ultrasound_screen();
  auto input = testing::make_burned_in({frame}, Colour::monochrome2);
  ASSERT_TRUE(input->getDataset()->putAndInsertString(DCM_Modality, "CR").good());
  testing::save(*input, dir / "cr.dcm");
  const auto report = deid_one(dir / "cr.dcm", dir / "out", {text_stage()}, {"clean-pixel-data"});
  ASSERT_EQ(report.written.size(), 1u)
      << (report.problems.empty() ? "" : report.problems.front().reason);
  auto file = dicom::DicomFile::open(dir / "out" / report.written.front().output);
  ASSERT_TRUE(file.has_value());
  auto image = dicom::decode_pixels(*file);
  ASSERT_TRUE(image.has_value()) << image.error().message;
  for (const auto& text : frame.texts) {
    if (text.phi) {
      EXPECT_GE(blackened(frame, text, image->frames.front()), 0.99) << text.text;
    }
  }
}

}  // namespace
}  // namespace radguard
