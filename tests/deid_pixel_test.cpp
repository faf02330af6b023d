// `deid --option clean-pixel-data`: the pixel stage runs before the header stage, so burned-in
// identifying text is covered in the released file, which records what was done; images that
// need no OCR keep their pixels; and nothing is released that the stage cannot clean.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include <opencv2/imgproc.hpp>

#include "core/error_table.hpp"
#include "core/group_commit.hpp"
#include "deid/deid_run.hpp"
#include "dicom/pixels.hpp"
#include "redact/redact.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "share/gates.hpp"
#include "volume/nifti.hpp"

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
          {},
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
  return std::move(report).value_or(deid::DeidRunReport{});
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
      << (report.problems.empty() ? "" : report.problems.all().value().front().reason);
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
  const std::string summary = deid::report_text(report, shown).value();
  EXPECT_NE(summary.find("redacted: us.dcm -> " + report.written.front().output.generic_string() +
                      ": 1 of 1 frame"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("time in pixel stages: clean-pixel-data"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("DOE"), std::string::npos);
  const auto json = nlohmann::json::parse(
      deid::report_json(report, stage_with({"clean-pixel-data"}), shown).value());
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
      {},
      {}};
  const auto report = deid_one(dir / "ct.dcm", dir / "out", {refuse}, {"clean-pixel-data"});
  EXPECT_EQ(report.count(deid::FileStatus::failed), 1u);
  EXPECT_EQ(report.exit_code(), 1);
  ASSERT_EQ(report.problems.size(), 1u);
  const auto problems = report.problems.all().value();
  EXPECT_EQ(problems.front().reason, "still shows a face");
  EXPECT_EQ(problems.front().pixels.refused_by, "face-check");
  deid::DeidRunOptions shown;
  shown.inputs = {dir / "ct.dcm"};
  const auto json =
      nlohmann::json::parse(deid::report_json(report, stage_with({"clean-pixel-data"}), shown).value());
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
      << (report.problems.empty() ? "" : report.problems.all().value().front().reason);
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

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A phantom head as a NIfTI file whose header text fields and extension carry identifying
// values, as real ones do (scanner exports put the name, birth date or MRN in descrip).
std::string identifying_nifti_bytes(const volume::Volume& v) {
  std::string header = volume::make_nifti_header(v);
  auto put = [&](std::size_t at, std::size_t size, std::string_view text) {
    header.replace(at, size, std::string(text).append(size - text.size(), '\0'));
  };
  put(148, 80, "DOE^JANE DOB 19610412 MRN 99887766");  // descrip
  put(228, 24, "MRN99887766");                           // aux_file
  put(328, 16, "DOE JANE");                              // intent_name
  put(14, 18, "DOEJANE");                                // db_name
  // One extension (ecode 6, comment) holding the name; voxels move 32 bytes on.
  const std::string extension = std::string("\x28\0\0\0\x06\0\0\0", 8) +
                                std::string("Patient: Doe^Jane 99887766").append(6, '\0');
  header.replace(348, 4, std::string("\x01\0\0\0", 4));
  const float offset = static_cast<float>(352 + extension.size());
  std::memcpy(header.data() + 108, &offset, sizeof offset);
  header.resize(352);
  header += extension;
  volume::NiftiImage image{v, header};
  auto bytes = volume::encode_nifti(image, volume::NiftiCompression::none);
  EXPECT_TRUE(bytes.has_value());
  return bytes.value_or("");
}

deid::DeidRunReport deid_volumes(const fs::path& input, const fs::path& output,
                                 std::vector<deid::PixelStage> stages,
                                 std::vector<std::string> options,
                                 deid::VolumeInputs volumes = deid::VolumeInputs::deidentify) {
  deid::DeidRunOptions run;
  run.inputs = {input};
  run.output = output;
  run.progress = batch::ProgressDisplay::never;
  run.written = deid::WrittenOutcomes::keep;
  run.pixel_stages = std::move(stages);
  run.volumes = volumes;
  auto report = deid::run_deid(run, stage_with(std::move(options)));
  EXPECT_TRUE(report.has_value());
  return std::move(report).value_or(deid::DeidRunReport{});
}

testing::HeadPhantom mr_phantom() {
  return testing::make_head_phantom(testing::PhantomContrast::mr, {66, 80, 83}, {3.0, 3.0, 3.0},
                                    {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0},
                                     volume::Vec3{0, 0, 1}});
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string gunzipped(const fs::path& path) {
  const std::string packed = read_all(path);
  std::string out;
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  char buffer[1 << 16];
  int status = Z_OK;
  while (status == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    status = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
  }
  inflateEnd(&z);
  EXPECT_EQ(status, Z_STREAM_END);
  return out;
}

TEST(DeidVolumes, NiftiHeaderTextExtensionsAndNamesDoNotSurvive) {
  TempDir dir;
  const testing::HeadPhantom ph = mr_phantom();
  const fs::path input = dir / "in" / "Doe_Jane" / "Doe_Jane_T1.nii";
  fs::create_directories(input.parent_path());
  write_all(input, identifying_nifti_bytes(ph.volume));

  const auto report = deid_volumes(dir / "in", dir / "out", {}, {});
  ASSERT_EQ(report.count(deid::FileStatus::written), 1u);
  EXPECT_EQ(report.exit_code(), 0);
  ASSERT_EQ(report.written.size(), 1u);
  const fs::path output = report.written[0].output;
  EXPECT_EQ(output.parent_path(), "volumes");
  EXPECT_TRUE(output.string().ends_with(".nii.gz")) << output;
  EXPECT_EQ(output.string().find("Doe"), std::string::npos) << output;

  const std::string bytes = gunzipped(dir / "out" / output);
  for (const char* value : {"DOE", "Doe", "99887766", "19610412", "JANE"})
    EXPECT_EQ(bytes.find(value), std::string::npos) << value;
  auto back = volume::read_nifti(dir / "out" / output);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->header.size(), 352u);  // no extension
  EXPECT_EQ(back->volume.voxels, ph.volume.voxels);  // no defacing without the option

  // The report names neither the file nor its folder.
  deid::DeidRunOptions shown;
  shown.inputs = {dir / "in"};
  const std::string json = deid::report_json(report, stage_with({}), shown).value();
  const std::string text = deid::report_text(report, shown).value();
  EXPECT_EQ(json.find("Doe"), std::string::npos) << json;
  EXPECT_EQ(text.find("Doe"), std::string::npos) << text;

  // A second copy of the same volume is a duplicate, not a second release.
  fs::copy_file(input, dir / "in" / "copy.nii");
  const auto again = deid_volumes(dir / "in", dir / "out2", {}, {});
  EXPECT_EQ(again.count(deid::FileStatus::written), 1u);
  EXPECT_EQ(again.count(deid::FileStatus::duplicate), 1u);
}

// An output folder named relatively with no parent ("out"): a volume's folder is one level
// shallower than a series', and the run once tried to flush the empty name above "out" and
// failed after publishing.
TEST(DeidVolumes, ARelativeOutputFolderIsFlushedNotItsEmptyParent) {
  TempDir dir;
  fs::create_directories(dir / "in");
  write_all(dir / "in" / "head.nii", identifying_nifti_bytes(mr_phantom().volume));
  const fs::path before = fs::current_path();
  fs::current_path(dir.path());
  deid::DeidRunOptions run;
  run.inputs = {"in"};
  run.output = "out";
  run.progress = batch::ProgressDisplay::never;
  run.volumes = deid::VolumeInputs::deidentify;
  auto report = deid::run_deid(run, stage_with({}));
  fs::current_path(before);
  ASSERT_TRUE(report.has_value()) << report.error().message;
  EXPECT_EQ(report->count(deid::FileStatus::written), 1u);
}

TEST(DeidVolumes, RunsThatDoNotTakeVolumesSkipThem) {
  TempDir dir;
  const fs::path input = dir / "in" / "head.nii";
  fs::create_directories(input.parent_path());
  write_all(input, identifying_nifti_bytes(mr_phantom().volume));
  const auto report = deid_volumes(dir / "in", dir / "out", {}, {}, deid::VolumeInputs::skip);
  EXPECT_EQ(report.count(deid::FileStatus::written), 0u);
  EXPECT_EQ(report.count(deid::FileStatus::skipped_not_dicom), 1u);
  EXPECT_FALSE(fs::exists(dir / "out" / "volumes"));
}

TEST(DeidVolumes, CleanRecognizableVisualFeaturesDefacesVolumes) {
  TempDir dir;
  const testing::HeadPhantom ph = mr_phantom();
  const fs::path input = dir / "in" / "head.nii.gz";
  fs::create_directories(input.parent_path());
  volume::NiftiImage image{ph.volume, volume::make_nifti_header(ph.volume)};
  ASSERT_TRUE(volume::write_nifti(input, image));

  const auto report = deid_volumes(dir / "in", dir / "out", {share::defacing_stage()},
                                   {"clean-recognizable-visual-features"});
  ASSERT_EQ(report.count(deid::FileStatus::written), 1u) << (report.problems.empty() ? "" : report.problems.all().value().front().reason);
  ASSERT_EQ(report.pixel_work.size(), 1u);
  EXPECT_TRUE(report.pixel_work[0].pixels.defaced);
  auto back = volume::read_nifti(dir / "out" / report.written[0].output);
  ASSERT_TRUE(back.has_value());
  std::size_t nose_changed = 0, nose = 0, brain_changed = 0;
  for (std::size_t i = 0; i < ph.volume.voxels.size(); ++i) {
    const bool changed = back->volume.voxels[i] != ph.volume.voxels[i];
    if (ph.nose[i]) ++nose, nose_changed += changed;
    if (ph.brain[i]) brain_changed += changed;
  }
  EXPECT_EQ(nose_changed, nose);
  EXPECT_EQ(brain_changed, 0u);

  // Signed outputs cannot include a volume: it fails, it is not released unsigned.
  deid::DeidRunOptions run;
  run.inputs = {dir / "in"};
  run.output = dir / "signed";
  run.progress = batch::ProgressDisplay::never;
  run.volumes = deid::VolumeInputs::deidentify;
  run.finish = [](const fs::path&) -> Status { return {}; };
  auto signed_run = deid::run_deid(run, stage_with({}));
  ASSERT_TRUE(signed_run.has_value());
  EXPECT_EQ(signed_run->count(deid::FileStatus::failed), 1u);
  EXPECT_EQ(signed_run->exit_code(), 1);
}


// report_json writes its per-file arrays entry by entry (no tree of every entry): the text is
// exactly what nlohmann's dump(2) writes for the same document, with arrays empty and full,
// quotes, newlines and invalid UTF-8 in a reason, and a cancelled run's extra key.
TEST(DeidReportJson, PerFileArraysAreWhatDumpWrites) {
  using nlohmann::json;
  const auto redump = [](const std::string& text) {
    return json::parse(text).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  };
  deid::DeidRunOptions shown;
  shown.inputs = {"/in"};
  shown.output = "/out";
  deid::DeidRunReport empty;
  const std::string none = deid::report_json(empty, stage_with({}), shown).value();
  EXPECT_EQ(none, redump(none));
  EXPECT_NE(none.find("\n  \"failures\": [],\n"), std::string::npos) << none;

  deid::DeidRunReport report;
  report.files_seen = 5;
  deid::FileOutcome failed;
  failed.input = "/in/a/1.dcm";
  failed.status = deid::FileStatus::failed;
  failed.error = ErrorCode::malformed_dicom;
  failed.reason = "bad \"value\"\nnext line \xff\xfe tab\t";
  failed.pixels.refused_by = "clean-pixel-data";
  deid::FileOutcome duplicate;
  duplicate.input = "/in/a/2.dcm";
  duplicate.status = deid::FileStatus::duplicate;
  duplicate.error = ErrorCode::conflict;
  duplicate.reason = "same SOP Instance UID as an input that came first";
  duplicate.other_input = "/in/a/1.dcm";
  deid::FileOutcome skipped;
  skipped.input = "/in/notes.txt";
  skipped.status = deid::FileStatus::skipped_not_dicom;
  skipped.error = ErrorCode::not_dicom;
  skipped.reason = "not DICOM";
  for (const auto& problem : {failed, skipped, duplicate}) ASSERT_TRUE(report.problems.add(problem));
  report.missing_inputs.push_back({"/in/gone", "does not exist"});
  deid::FileOutcome worked;
  worked.input = "/in/b/3.dcm";
  worked.status = deid::FileStatus::written;
  worked.output = "1.2/3.4/5.6.dcm";
  worked.pixels.read_for_text = true;
  worked.pixels.frames = 2;
  report.pixel_work = {worked, worked};
  report.counts[static_cast<std::size_t>(deid::FileStatus::failed)] = 1;
  report.end = batch::RunEnd::cancelled;
  report.files_not_started = 1;
  const std::string text = deid::report_json(report, stage_with({}), shown).value();
  EXPECT_EQ(text, redump(text));
  const json doc = json::parse(text);
  ASSERT_EQ(doc["failures"].size(), 3u);
  EXPECT_EQ(doc["failures"][0]["input"], "a/1.dcm");
  EXPECT_EQ(doc["failures"][0]["refused_by"], "clean-pixel-data");
  EXPECT_EQ(doc["failures"][1]["first_input"], "a/1.dcm");
  EXPECT_EQ(doc["failures"][2]["status"], "missing_input");
  ASSERT_EQ(doc["skipped"].size(), 1u);
  EXPECT_EQ(doc["skipped"][0]["input"], "notes.txt");
  ASSERT_EQ(doc["pixel_work"].size(), 2u);
  EXPECT_EQ(doc["pixel_work"][1]["output"], "1.2/3.4/5.6.dcm");
  EXPECT_EQ(doc["cancelled"]["files_not_started"], 1);
}

// Past ProblemLog's bound, the outcomes of inputs not written go to the run's temporary file
// and are read back for the reports: the JSON and the text are the same bytes as when every
// outcome is held (one thread or two), while what is held in memory stays at the bound.
TEST(DeidProblemLog, SpilledProblemsGiveTheSameReportsAndStayBounded) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  // Per patient folder (named by the patient's ID): two images, one of them again under
  // another name (a duplicate SOP Instance UID), and notes that are not DICOM.
  constexpr int kPatients = 12;
  for (int p = 0; p < kPatients; ++p) {
    const std::string id = "PID" + std::to_string(4400 + p);
    for (int k = 0; k < 2; ++k) {
      auto ct = testing::make_ct(id, "1.2.826.0.1.3680043.2.1125.7." + std::to_string(p * 10 + k));
      testing::save(*ct, in / id / ("IM" + std::to_string(k)));
      if (k == 1) testing::save(*ct, in / id / "IM1-copy");
    }
    std::ofstream(in / id / "notes.txt") << "not DICOM, reason " << p % 3;
  }
  const auto stage = stage_with({});
  struct Made {
    std::string json, text;
    std::size_t problems = 0, held = 0;
  };
  const auto run_with = [&](std::size_t held, unsigned threads) {
    deid::DeidRunOptions run;
    run.inputs = {in};
    run.output = dir.path() / "out";
    run.threads = threads;
    run.progress = batch::ProgressDisplay::never;
    run.problems_held = held;
    auto report = deid::run_deid(run, stage);
    EXPECT_TRUE(report) << report.error().message;
    if (!report) return Made{};
    report->seconds = 0;  // the only figure that differs between runs
    return Made{deid::report_json(*report, stage, run).value(), deid::report_text(*report, run).value(),
                report->problems.size(), report->problems.held_in_memory()};
  };
  const Made held = run_with(deid::ProblemLog::kHeldByDefault, 1);
  ASSERT_EQ(held.problems, 2u * kPatients);  // the notes and the copies
  EXPECT_EQ(held.held, held.problems);
  for (const unsigned threads : {1u, 2u}) {
    const Made spilled = run_with(3, threads);
    EXPECT_EQ(spilled.problems, held.problems);
    EXPECT_LE(spilled.held, 3u) << "outcomes held in memory beyond the bound";
    EXPECT_EQ(spilled.json, held.json) << threads << " thread(s)";
    EXPECT_EQ(spilled.text, held.text) << threads << " thread(s)";
  }
  // The failures read back in input order, their paths masked.
  const nlohmann::json doc = nlohmann::json::parse(held.json);
  ASSERT_EQ(doc["failures"].size(), static_cast<std::size_t>(kPatients));
  EXPECT_EQ(doc["failures"][0]["input"], "<patient>/IM1-copy");
  EXPECT_EQ(doc["failures"][0]["first_input"], "<patient>/IM1");
  EXPECT_EQ(doc["skipped"].size(), static_cast<std::size_t>(kPatients));
  EXPECT_EQ(held.json.find("PID44"), std::string::npos);
}

// The spill lives in $TMPDIR, never in the output folder (a release's staging folder, a USB
// stick): a run that spills every problem leaves there the same names as one that spills none.
TEST(DeidProblemLog, SpillNeverTouchesTheOutputFolder) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  for (int k = 0; k < 3; ++k) {
    auto ct = testing::make_ct("PID5500", "1.2.826.0.1.3680043.2.1125.8." + std::to_string(k));
    testing::save(*ct, in / ("IM" + std::to_string(k)));
    std::ofstream(in / ("notes" + std::to_string(k) + ".txt")) << "not DICOM";
  }
  const auto stage = stage_with({});
  const auto names_after = [&](std::size_t held, const fs::path& out) {
    deid::DeidRunOptions run;
    run.inputs = {in};
    run.output = out;
    run.threads = 1;
    run.progress = batch::ProgressDisplay::never;
    run.problems_held = held;
    auto report = deid::run_deid(run, stage);
    EXPECT_TRUE(report) << report.error().message;
    if (report) {
      EXPECT_EQ(report->problems.held_in_memory(), held == 0 ? 0u : 3u);
    }
    std::set<std::string> names;
    for (const auto& entry : fs::recursive_directory_iterator(out))
      names.insert(fs::relative(entry.path(), out).string());
    return names;
  };
  const auto held = names_after(deid::ProblemLog::kHeldByDefault, dir.path() / "held");
  const auto spilled = names_after(0, dir.path() / "spilled");
  EXPECT_FALSE(held.empty());
  EXPECT_EQ(spilled, held);
}

// Where the spill cannot be made ($TMPDIR missing), a run that must spill fails closed with
// an I/O error (its report would be incomplete); one whose problems fit in memory is unaffected.
TEST(DeidProblemLog, SpillThatCannotBeMadeFailsTheRun) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  auto ct = testing::make_ct("PID5600", "1.2.826.0.1.3680043.2.1125.9.1");
  testing::save(*ct, in / "IM0");
  std::ofstream(in / "notes.txt") << "not DICOM";
  const auto stage = stage_with({});
  const char* before = std::getenv("TMPDIR");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("TMPDIR", (dir.path() / "missing").c_str(), 1);
  const auto run_with = [&](std::size_t held, const char* out) {
    deid::DeidRunOptions run;
    run.inputs = {in};
    run.output = dir.path() / out;
    run.threads = 1;
    run.progress = batch::ProgressDisplay::never;
    run.problems_held = held;
    return deid::run_deid(run, stage);
  };
  const auto spilled = run_with(0, "spilled");
  const auto held = run_with(deid::ProblemLog::kHeldByDefault, "held");
  if (before != nullptr) ::setenv("TMPDIR", saved.c_str(), 1);
  else ::unsetenv("TMPDIR");
  ASSERT_FALSE(spilled);
  EXPECT_EQ(spilled.error().code, ErrorCode::io);
  EXPECT_NE(spilled.error().message.find("temporary file"), std::string::npos);
  EXPECT_TRUE(held) << held.error().message;
}

// $TMPDIR set for one scope (fault injection: a spill folder that does not exist), restored
// on every way out.
class TmpdirFor {
 public:
  explicit TmpdirFor(const fs::path& folder) {
    const char* before = std::getenv("TMPDIR");
    if (before != nullptr) saved_ = before;
    ::setenv("TMPDIR", folder.c_str(), 1);
  }
  TmpdirFor(const TmpdirFor&) = delete;
  TmpdirFor& operator=(const TmpdirFor&) = delete;
  ~TmpdirFor() {
    if (saved_) ::setenv("TMPDIR", saved_->c_str(), 1);
    else ::unsetenv("TMPDIR");
  }

 private:
  std::optional<std::string> saved_;
};

// A spill that fails stops the run when it happens, not at its end: no input after it is
// started (the DICOM files sorted after the failing outcome are never written), and the
// run's error says how far it got.
TEST(DeidProblemLog, SpillFailureStopsTheRunWhenItHappens) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  fs::create_directories(in);
  std::ofstream(in / "a0.txt") << "not DICOM";  // held (the bound is 1)
  std::ofstream(in / "a1.txt") << "not DICOM";  // must spill: the spill cannot be made
  for (int k = 0; k < 4; ++k) {
    auto ct = testing::make_ct("PID5700", "1.2.826.0.1.3680043.2.1125.10." + std::to_string(k));
    testing::save(*ct, in / ("b" + std::to_string(k)));
  }
  deid::DeidRunOptions run;
  run.inputs = {in};
  run.output = dir.path() / "out";
  run.threads = 1;
  run.progress = batch::ProgressDisplay::never;
  run.problems_held = 1;
  const auto stage = stage_with({});
  const TmpdirFor missing(dir.path() / "missing");
  const auto report = deid::run_deid(run, stage);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::io);
  EXPECT_NE(report.error().message.find("stopped after 2 of 6 inputs"), std::string::npos)
      << report.error().message;
  std::size_t written = 0;
  if (fs::exists(run.output))
    for (const auto& entry : fs::recursive_directory_iterator(run.output))
      written += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(written, 0u) << "inputs after the failed spill were still de-identified";
}

// Each output of a run is flushed once before it is published (the writer does not flush it
// and commit does not flush it again), on any thread count; a flush that fails fails its file,
// which is then not published.
TEST(DeidDurability, EachOutputIsFlushedOnceAndAFailedFlushPublishesNothing) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  fs::create_directories(in);
  for (int k = 0; k < 6; ++k) {
    auto ct = testing::make_ct("PID5800", "1.2.826.0.1.3680043.2.1125.11." + std::to_string(k));
    testing::save(*ct, in / ("c" + std::to_string(k)));
  }
  const auto stage = stage_with({});
  const auto outputs_in = [](const fs::path& root) {
    std::size_t files = 0;
    if (fs::exists(root))
      for (const auto& entry : fs::recursive_directory_iterator(root))
        files += entry.is_regular_file() ? 1 : 0;
    return files;
  };
  for (const unsigned threads : {1U, 2U}) {
    std::atomic<int> flushes{0};
    set_file_flush_fault_for_testing([&](const fs::path&) -> Status {
      flushes.fetch_add(1);
      return {};
    });
    deid::DeidRunOptions run;
    run.inputs = {in};
    run.output = dir.path() / ("out" + std::to_string(threads));
    run.threads = threads;
    run.progress = batch::ProgressDisplay::never;
    const auto report = deid::run_deid(run, stage);
    set_file_flush_fault_for_testing({});
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->count(deid::FileStatus::written), 6u);
    EXPECT_EQ(flushes.load(), 6) << "threads " << threads;
    EXPECT_EQ(outputs_in(run.output), 6u);
  }
  set_file_flush_fault_for_testing(
      [](const fs::path&) -> Status { return fail(ErrorCode::io, "injected flush failure"); });
  deid::DeidRunOptions run;
  run.inputs = {in};
  run.output = dir.path() / "failed";
  run.threads = 2;
  run.progress = batch::ProgressDisplay::never;
  const auto report = deid::run_deid(run, stage);
  set_file_flush_fault_for_testing({});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->count(deid::FileStatus::written), 0u);
  EXPECT_EQ(report->count(deid::FileStatus::failed), 6u);
  EXPECT_EQ(report->exit_code(), kExitSomeFailed);
  EXPECT_EQ(outputs_in(run.output), 0u) << "an unflushed output was published";
}

// Inputs sharing one SOP Instance UID are published in whatever order the flushers finish;
// every duplicate still names the first input of them, on every run and thread count.
TEST(DeidDurability, EveryDuplicateNamesTheFirstInputWhateverOrderFilesArePublishedIn) {
  const TempDir dir;
  const fs::path in = dir.path() / "in";
  fs::create_directories(in);
  for (int k = 0; k < 12; ++k) {  // d00..d03 share one UID, and so do d04..d07, d08..d11
    auto ct = testing::make_ct("PID5900", "1.2.826.0.1.3680043.2.1125.12." + std::to_string(k / 4));
    testing::save(*ct, in / ((k < 10 ? "d0" : "d") + std::to_string(k)));
  }
  const auto stage = stage_with({});
  for (int round = 0; round < 6; ++round) {
    deid::DeidRunOptions run;
    run.inputs = {in};
    run.output = dir.path() / ("out" + std::to_string(round));
    run.threads = 1 + round % 2;
    run.progress = batch::ProgressDisplay::never;
    const auto report = deid::run_deid(run, stage);
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->count(deid::FileStatus::written), 3u);
    EXPECT_EQ(report->count(deid::FileStatus::duplicate), 9u);
    ASSERT_TRUE(report->problems.for_each([&](const deid::FileOutcome& o) {
      const std::string name = o.input.filename().string();
      const int k = std::stoi(name.substr(1));
      const int first = k / 4 * 4;
      EXPECT_EQ(o.other_input.filename().string(),
                (first < 10 ? "d0" : "d") + std::to_string(first))
          << name << ", round " << round;
    }));
  }
}

// A log whose spill failed gives typed I/O errors to every report made from it, never an
// exception, and never a report that leaves its problems out.
TEST(DeidProblemLog, ReportsOfABrokenLogFailWithATypedError) {
  const TempDir dir;
  deid::DeidRunReport report;
  report.problems = deid::ProblemLog(0);
  {
    const TmpdirFor missing(dir.path() / "missing");
    deid::FileOutcome outcome;
    outcome.input = dir.path() / "notes.txt";
    outcome.status = deid::FileStatus::skipped_not_dicom;
    ASSERT_FALSE(report.problems.add(std::move(outcome)));
  }
  const deid::DeidRunOptions options;
  const auto stage = stage_with({});
  const auto json = deid::report_json(report, stage, options);
  ASSERT_FALSE(json);
  EXPECT_EQ(json.error().code, ErrorCode::io);
  const auto text = deid::report_text(report, options);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, ErrorCode::io);
  std::size_t pieces = 0;
  const auto streamed =
      deid::write_report_json(report, stage, options, [&](std::string_view) { ++pieces; });
  ASSERT_FALSE(streamed);
  EXPECT_EQ(streamed.error().code, ErrorCode::io);
  EXPECT_EQ(pieces, 0u) << "part of a report given out before its problems were read back";
}

// Every problem spilled, over 64 KiB of them (long paths): add() writes whole blocks and the
// read-back crosses block boundaries inside records; the report is the same bytes as when
// every problem is held.
TEST(DeidProblemLog, SpillPastOneBlockReadsBackTheSame) {
  const TempDir dir;
  const std::string long_name(200, 'n');
  const fs::path in = dir.path() / "in" / long_name / long_name / long_name;
  fs::create_directories(in);
  constexpr int kNotes = 200;  // about 1 KB encoded each
  for (int k = 0; k < kNotes; ++k)
    std::ofstream(in / (std::to_string(k) + long_name)) << "not DICOM";
  const auto stage = stage_with({});
  const auto run_with = [&](std::size_t held) {
    deid::DeidRunOptions run;
    run.inputs = {dir.path() / "in"};
    run.output = dir.path() / "out";  // nothing is written: every input is a problem
    run.threads = 2;
    run.progress = batch::ProgressDisplay::never;
    run.problems_held = held;
    auto report = deid::run_deid(run, stage);
    EXPECT_TRUE(report) << report.error().message;
    if (!report) return std::string{};
    EXPECT_EQ(report->problems.size(), static_cast<std::size_t>(kNotes));
    report->seconds = 0;
    return deid::report_json(*report, stage, run).value() + deid::report_text(*report, run).value();
  };
  const std::string held = run_with(deid::ProblemLog::kHeldByDefault);
  EXPECT_GT(held.size(), 64u * 1024u);
  EXPECT_EQ(run_with(0), held);
}

}  // namespace
}  // namespace radguard
