// Defacing DICOM series: grouping, assembly in patient space (any file order, oblique,
// tilted, missing slices), head recognition, write-back into the files (changed slices only,
// 113102 added) and the command line, on generated phantoms and the real Cranium CT written
// as a DICOM series.
#include <gtest/gtest.h>

#include <fstream>

// Series specs are written with designated initializers naming only what differs from the
// defaults; g++ 12 warns about the members left to their defaults, which is the point here.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numbers>
#include <random>
#include <string>

#include "core/atomic_file.hpp"
#include "deface/dicom_series.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"
#include "volume/inv3.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::HeadPhantom;
using testing::PhantomContrast;
using testing::SeriesSpec;
using testing::write_series;
using volume::Vec3;

constexpr const char* kCascades = "/usr/share/opencv4/haarcascades";
constexpr const char* kCranium = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3";

// Known gap (issue 12): under the relief evidence the upright Cranium is refused (a groove
// left across its brow band reads as a pair of orbits; deface_test.cpp,
// CraniumCtIsRefusedWhileItsCutLeavesAnOrbitLikeGroove), so the write-back tests built on a
// released Cranium are skipped until it is released again; the tilted Cranium series still
// covers write-back.

// The physical values of one written slice.
std::vector<double> physical_of(const fs::path& path) {
  auto file = dicom::DicomFile::open(path);
  EXPECT_TRUE(file) << path;
  auto image = dicom::decode_pixels(*file);
  EXPECT_TRUE(image);
  const double intercept = std::stod(file->string_of(Tag{0x0028, 0x1052}).value_or("0"));
  std::vector<double> out;
  for (std::uint16_t s : image->frames[0]) out.push_back(image->value_of(s) + intercept);
  return out;
}

deface::DefaceOptions options() {
  deface::DefaceOptions o;
  o.cascade_dir = kCascades;
  return o;
}

// A block of soft tissue (40, as HU or MR value): a series that is not a head.
volume::Volume uniform_volume(const std::array<int, 3>& dims, const Vec3& spacing) {
  volume::Volume v;
  v.dims = dims;
  v.spacing = spacing;
  v.voxels.assign(v.voxel_count(), 40.0f);
  return v;
}

// Defaces every series under dir/in, with the work folder inside dir.
Result<deface::SeriesDefacing> deface_folder(const testing::TempDir& dir, unsigned threads = 1) {
  deface::SeriesOptions series_options;
  series_options.work_parent = dir.path();
  series_options.threads = threads;
  return deface::deface_dicom_series({dir / "in"}, options(), series_options);
}

const deface::SeriesReport* find_series(const deface::SeriesDefacing& d, const std::string& uid) {
  for (const auto& s : d.series())
    if (s.series_uid == uid) return &s;
  return nullptr;
}

double distance(const Vec3& a, const Vec3& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                   (a[2] - b[2]) * (a[2] - b[2]));
}

// Applies the defacing to every file of `paths` and saves them into `out` (same names).
std::vector<fs::path> apply_all(const deface::SeriesDefacing& d, const std::vector<fs::path>& paths,
                                const fs::path& out) {
  fs::create_directories(out);
  std::vector<fs::path> written;
  for (const auto& p : paths) {
    auto file = dicom::DicomFile::open(p);
    EXPECT_TRUE(file);
    auto status = d.apply(p, *file);
    EXPECT_TRUE(status) << p << ": " << status.error().message;
    if (!status) continue;
    EXPECT_TRUE(file->save(out / p.filename(), {"1.2.3", "TEST"}));
    written.push_back(out / p.filename());
  }
  return written;
}

HeadPhantom phantom(PhantomContrast contrast, const std::array<Vec3, 3>& axes) {
  std::array<int, 3> dims{};
  for (int a = 0; a < 3; ++a) {
    const Vec3& ax = axes[a];
    const double extent = std::abs(ax[0]) * 200 + std::abs(ax[1]) * 240 + std::abs(ax[2]) * 250;
    dims[a] = static_cast<int>(extent / 3.0);
  }
  return testing::make_head_phantom(contrast, dims, {3.0, 3.0, 3.0}, axes);
}

std::array<Vec3, 3> oblique(double degrees) {
  const double a = degrees * std::numbers::pi / 180.0;
  return {Vec3{1, 0, 0}, Vec3{0, std::cos(a), std::sin(a)}, Vec3{0, -std::sin(a), std::cos(a)}};
}

// A CT and an MR head (one oblique, one with a missing slice), a chest series and a head
// series too thin to assemble: each is recognised for what it is, geometry matches the
// phantom whatever the file order, and the chest is left alone.
TEST(DefaceSeries, GroupsAssemblesAndRecognisesHeads) {
  testing::TempDir dir;
  HeadPhantom ct = phantom(PhantomContrast::ct, oblique(20));
  const SeriesSpec ct_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.201"};
  auto ct_files = write_series(ct.volume, dir / "in" / "ct", ct_spec);

  HeadPhantom mr = phantom(PhantomContrast::mr, {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}});
  const SeriesSpec mr_spec{.modality = "MR",
                           .series_uid = "1.2.826.0.1.3680043.2.1125.3.202",
                           .body_part = "",
                           .description = "T1 MPRAGE brain",
                           .omit = {40}};
  auto mr_files = write_series(mr.volume, dir / "in" / "mr", mr_spec);

  const volume::Volume chest = uniform_volume({16, 16, 12}, {25, 25, 5});
  const SeriesSpec chest_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.203",
                              .body_part = "CHEST",
                              .description = "Thorax"};
  auto chest_files = write_series(chest, dir / "in" / "chest", chest_spec);

  const volume::Volume thin = uniform_volume({16, 16, 4}, {1, 1, 5});
  const SeriesSpec thin_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.204",
                             .description = "Sag face"};
  auto thin_files = write_series(thin, dir / "in" / "thin", thin_spec);

  auto result = deface_folder(dir, 2);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 4u);
  for (const auto& s : result->series())
    std::printf("  series %s: %s %s\n", s.series_uid.c_str(),
                std::string(to_string(s.outcome)).c_str(), s.reason.c_str());

  const auto* ct_report = find_series(*result, ct_spec.series_uid);
  ASSERT_NE(ct_report, nullptr);
  EXPECT_NE(ct_report->outcome, deface::SeriesOutcome::not_head) << ct_report->reason;
  EXPECT_EQ(ct_report->slices, static_cast<std::size_t>(ct.volume.dims[2]));
  EXPECT_EQ(ct_report->dims, ct.volume.dims);
  EXPECT_NEAR(ct_report->spacing[2], 3.0, 1e-3);
  EXPECT_NEAR(ct_report->tilt_degrees, 0.0, 1e-3);
  EXPECT_LT(distance(ct_report->origin, ct.volume.origin), 1e-3);
  for (int a = 0; a < 3; ++a) EXPECT_LT(distance(ct_report->axes[a], ct.volume.axes[a]), 1e-4);

  const auto* mr_report = find_series(*result, mr_spec.series_uid);
  ASSERT_NE(mr_report, nullptr);
  EXPECT_NE(mr_report->outcome, deface::SeriesOutcome::not_head) << mr_report->reason;
  EXPECT_EQ(mr_report->dims, mr.volume.dims);
  EXPECT_EQ(mr_report->missing_slices, 1u);
  EXPECT_EQ(mr_report->slices, static_cast<std::size_t>(mr.volume.dims[2] - 1));
  ASSERT_FALSE(mr_report->warnings.empty());
  EXPECT_NE(mr_report->warnings.front().find("missing"), std::string::npos);

  const auto* chest_report = find_series(*result, chest_spec.series_uid);
  ASSERT_NE(chest_report, nullptr);
  EXPECT_EQ(chest_report->outcome, deface::SeriesOutcome::not_head);
  const auto* thin_report = find_series(*result, thin_spec.series_uid);
  ASSERT_NE(thin_report, nullptr);
  EXPECT_EQ(thin_report->outcome, deface::SeriesOutcome::refused);
  EXPECT_NE(thin_report->reason.find("too few"), std::string::npos);

  // The chest is untouched by apply; the thin head series fails; unknown files are refused.
  for (const auto& p : chest_files) {
    auto file = dicom::DicomFile::open(p);
    ASSERT_TRUE(file);
    EXPECT_TRUE(result->apply(p, *file));
    EXPECT_TRUE(file->code_sequence_of(Tag{0x0012, 0x0064}).empty());
  }
  {
    auto file = dicom::DicomFile::open(thin_files.front());
    ASSERT_TRUE(file);
    auto status = result->apply(thin_files.front(), *file);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().code, ErrorCode::policy);
    EXPECT_EQ(status.error().message.find("PID12345"), std::string::npos);
    auto other = result->apply(dir / "elsewhere.dcm", *file);
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, ErrorCode::usage);
  }
  // Heads are defaced, or refused by the detector check (fail closed): then every file fails.
  for (const auto* report : {ct_report, mr_report}) {
    auto file = dicom::DicomFile::open(report->files.front());
    ASSERT_TRUE(file);
    auto status = result->apply(report->files.front(), *file);
    if (report->outcome == deface::SeriesOutcome::refused) {
      EXPECT_NE(report->reason.find("defacing refused"), std::string::npos) << report->reason;
      EXPECT_FALSE(status);
    } else {
      EXPECT_TRUE(status);
      EXPECT_GT(report->slices_changed, 0u);
    }
  }
}

// Whole-body series (PET-CT's CT, whole-body MR) usually show the face without naming a head
// part: they are refused, never passed as "not a head"; their files fail in apply().
TEST(DefaceSeries, WholeBodySeriesAreRefusedNotPassed) {
  testing::TempDir dir;
  const volume::Volume body = uniform_volume({16, 16, 12}, {31.25, 31.25, 5});
  const SeriesSpec by_body_part{.series_uid = "1.2.826.0.1.3680043.2.1125.3.211",
                                .body_part = "WHOLEBODY",
                                .description = "CTAC 3.75"};
  const auto body_part_files = write_series(body, dir / "in" / "wb1", by_body_part);
  const SeriesSpec by_description{.series_uid = "1.2.826.0.1.3680043.2.1125.3.212",
                                  .body_part = "",
                                  .description = "PET/CT Whole-Body low dose"};
  write_series(body, dir / "in" / "wb2", by_description);
  const SeriesSpec by_short_word{.series_uid = "1.2.826.0.1.3680043.2.1125.3.213",
                                 .body_part = "",
                                 .description = "CT WB 3.0 B30f"};
  write_series(body, dir / "in" / "wb3", by_short_word);
  // Naming nothing, wider than a head and longer than any torso scan (1000 mm): may be a
  // whole body, refused.
  const volume::Volume long_body = uniform_volume({16, 16, 21}, {31.25, 31.25, 50});
  const SeriesSpec unnamed{
      .series_uid = "1.2.826.0.1.3680043.2.1125.3.215", .body_part = "", .description = ""};
  write_series(long_body, dir / "in" / "long", unnamed);
  // "WB" inside another word, and a chest, stay "not a head".
  const SeriesSpec chest{.series_uid = "1.2.826.0.1.3680043.2.1125.3.214",
                         .body_part = "CHEST",
                         .description = "Thorax WBC follow-up"};
  write_series(body, dir / "in" / "chest", chest);

  auto result = deface_folder(dir);
  ASSERT_TRUE(result) << result.error().message;
  for (const char* uid : {"1.2.826.0.1.3680043.2.1125.3.211", "1.2.826.0.1.3680043.2.1125.3.212",
                          "1.2.826.0.1.3680043.2.1125.3.213", "1.2.826.0.1.3680043.2.1125.3.215"}) {
    const auto* report = find_series(*result, uid);
    ASSERT_NE(report, nullptr) << uid;
    EXPECT_EQ(report->outcome, deface::SeriesOutcome::refused) << uid;
    EXPECT_NE(report->reason.find("whole"), std::string::npos) << report->reason;
  }
  const auto* chest_report = find_series(*result, chest.series_uid);
  ASSERT_NE(chest_report, nullptr);
  EXPECT_EQ(chest_report->outcome, deface::SeriesOutcome::not_head) << chest_report->reason;
  auto opened = dicom::DicomFile::open(body_part_files.front());
  ASSERT_TRUE(opened);
  EXPECT_FALSE(result->apply(body_part_files.front(), *opened));
}

// What decides "head or not" looks at the whole geometry: a sagittal reformat of a body that
// is long in-plane, an enhanced survey whose frames lie in several planes, and an enhanced image
// naming its anatomy only in the Frame Anatomy functional group.
TEST(DefaceSeries, WholeGeometryAndFrameAnatomyDecideWhatIsAHead) {
  testing::TempDir dir;
  const volume::Volume body = uniform_volume({16, 16, 12}, {31.25, 31.25, 5});

  volume::Volume reformat = body;  // 500 x 960 mm in plane, 60 mm across
  reformat.spacing = {31.25, 60, 5};
  const SeriesSpec long_in_plane{
      .series_uid = "1.2.826.0.1.3680043.2.1125.3.231", .body_part = "", .description = "SAG MPR"};
  write_series(reformat, dir / "in" / "sag", long_in_plane);

  const SeriesSpec survey{.modality = "MR",
                          .series_uid = "1.2.826.0.1.3680043.2.1125.3.232",
                          .body_part = "",
                          .description = "SURVEY"};
  fs::create_directories(dir / "in" / "survey");
  const fs::path survey_path =
      testing::write_enhanced(body, dir / "in" / "survey" / "s.dcm", survey);
  {
    auto file = testing::load(survey_path);
    DcmItem* frame = nullptr;
    ASSERT_TRUE(file->getDataset()
                    ->findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, frame, 2)
                    .good());
    DcmItem* orientation = nullptr;
    frame->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, orientation, 0);
    orientation->putAndInsertString(DCM_ImageOrientationPatient, "0\\1\\0\\0\\0\\-1");
    testing::save(*file, survey_path);
  }

  // Anatomy only in Frame Anatomy: "Head" makes it a head, "Chest" names a body part.
  std::vector<std::pair<std::string, std::string>> anatomies = {
      {"1.2.826.0.1.3680043.2.1125.3.233", "Head"}, {"1.2.826.0.1.3680043.2.1125.3.234", "Chest"}};
  for (const auto& [uid, meaning] : anatomies) {
    SeriesSpec spec;
    spec.series_uid = uid;
    spec.body_part = "";
    spec.description = "";
    fs::create_directories(dir / "in" / meaning);
    const fs::path path = testing::write_enhanced(body, dir / "in" / meaning / "e.dcm", spec);
    auto file = testing::load(path);
    DcmItem* shared = nullptr;
    file->getDataset()->findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
    DcmItem* anatomy = nullptr;
    shared->findOrCreateSequenceItem(DCM_FrameAnatomySequence, anatomy, 0);
    anatomy->putAndInsertString(DCM_FrameLaterality, "U");
    DcmItem* region = nullptr;
    anatomy->findOrCreateSequenceItem(DCM_AnatomicRegionSequence, region, 0);
    region->putAndInsertString(DCM_CodeValue, meaning == "Head" ? "69536005" : "51185008");
    region->putAndInsertString(DCM_CodingSchemeDesignator, "SCT");
    region->putAndInsertString(DCM_CodeMeaning, meaning.c_str());
    testing::save(*file, path);
  }

  auto result = deface_folder(dir);
  ASSERT_TRUE(result) << result.error().message;
  const auto* sag = find_series(*result, long_in_plane.series_uid);
  ASSERT_NE(sag, nullptr);
  EXPECT_EQ(sag->outcome, deface::SeriesOutcome::refused) << sag->reason;
  EXPECT_NE(sag->reason.find("whole body"), std::string::npos) << sag->reason;
  const auto* surveyed = find_series(*result, survey.series_uid);
  ASSERT_NE(surveyed, nullptr);
  EXPECT_EQ(surveyed->outcome, deface::SeriesOutcome::refused) << surveyed->reason;
  const auto* head = find_series(*result, "1.2.826.0.1.3680043.2.1125.3.233");
  ASSERT_NE(head, nullptr);
  EXPECT_NE(head->outcome, deface::SeriesOutcome::not_head) << head->reason;
  const auto* chest = find_series(*result, "1.2.826.0.1.3680043.2.1125.3.234");
  ASSERT_NE(chest, nullptr);
  EXPECT_EQ(chest->outcome, deface::SeriesOutcome::not_head) << chest->reason;
}

// An enhanced (multi-frame) head CT fails closed with a clear reason; every file of it fails.
TEST(DefaceSeries, MultiFrameHeadIsRefused) {
  testing::TempDir dir;
  auto file = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.77", 32, 32, 20);
  file->getDataset()->putAndInsertString(DCM_BodyPartExamined, "HEAD");
  testing::save(*file, dir / "in" / "enhanced.dcm");
  auto result = deface_folder(dir);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  EXPECT_EQ(result->series().front().outcome, deface::SeriesOutcome::refused);
  EXPECT_NE(result->series().front().reason.find("multi-frame"), std::string::npos);
  auto opened = dicom::DicomFile::open(dir / "in" / "enhanced.dcm");
  ASSERT_TRUE(opened);
  auto status = result->apply(dir / "in" / "enhanced.dcm", *opened);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::policy);
}

// A multi-frame MR that names no body part could be a 3D head acquisition: its extent cannot
// be measured from the top-level header, so it is refused, never passed as "not a head".
TEST(DefaceSeries, UnmeasurableSeriesNamingNoBodyPartIsRefusedNotPassed) {
  testing::TempDir dir;
  auto file = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.78", 32, 32, 20);
  file->getDataset()->putAndInsertString(DCM_Modality, "MR");
  file->getDataset()->findAndDeleteElement(DCM_BodyPartExamined);
  file->getDataset()->putAndInsertString(DCM_SeriesDescription, "T1 MPRAGE SAG");
  testing::save(*file, dir / "in" / "enhanced.dcm");
  auto result = deface_folder(dir);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  EXPECT_EQ(result->series().front().outcome, deface::SeriesOutcome::refused);
  auto opened = dicom::DicomFile::open(dir / "in" / "enhanced.dcm");
  ASSERT_TRUE(opened);
  EXPECT_FALSE(result->apply(dir / "in" / "enhanced.dcm", *opened));
}

// Gantry tilt: slices stepping along z while the image plane is tilted 15 degrees. The step
// is not along the normal; the series is assembled on an orthogonal grid.
TEST(DefaceSeries, TiltedGantryIsAssembled) {
  testing::TempDir dir;
  const double a = 15 * std::numbers::pi / 180.0;
  // A sheared grid: i left, j along the tilted row direction, k straight up.
  const std::array<Vec3, 3> axes{Vec3{1, 0, 0}, Vec3{0, std::cos(a), std::sin(a)}, Vec3{0, 0, 1}};
  HeadPhantom ct = testing::make_head_phantom(PhantomContrast::ct, {66, 80, 84}, {3, 3, 3}, axes);
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.301"};
  auto files = write_series(ct.volume, dir / "in", spec);
  auto result = deface_folder(dir);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  const auto& report = result->series().front();
  EXPECT_NE(report.outcome, deface::SeriesOutcome::not_head);
  std::printf("  tilted series: %s %s\n", std::string(to_string(report.outcome)).c_str(),
              report.reason.c_str());
  EXPECT_NEAR(report.tilt_degrees, 15.0, 0.1);
  EXPECT_NEAR(report.spacing[2], 3.0 * std::cos(a), 1e-3);
  EXPECT_EQ(report.slices, 84u);
  if (report.outcome == deface::SeriesOutcome::defaced) {
    const auto out = apply_all(*result, files, dir / "out");
    ASSERT_EQ(out.size(), files.size());
    // The brain is never touched: slices through the top of the head keep their pixels.
    const auto top = physical_of(out.back());
    const auto top_in = physical_of(files.back());
    EXPECT_EQ(top, top_in);
  }
}

// Cranium's series (108 slices, whole head in view) assembled to its own grid and defaced,
// with some slices (the face) changed and others (the vertex) not.
void expect_cranium_defaced(const deface::SeriesReport& report, const volume::Volume& head) {
  ASSERT_EQ(report.outcome, deface::SeriesOutcome::defaced) << report.reason;
  EXPECT_EQ(report.dims, head.dims);
  EXPECT_EQ(report.slices, 108u);
  EXPECT_EQ(report.missing_slices, 0u);
  EXPECT_GT(report.slices_changed, 10u);
  EXPECT_LT(report.slices_changed, 108u);
}

// The real head: Cranium.inv3 written as a CT series (108 slices, shuffled names). Its
// defacing is released; the written files must hold exactly the defaced volume, untouched
// slices must keep their pixel data bit-identical, and every file gets 113102.
TEST(DefaceSeries, CraniumSeriesIsWrittenBack) {
  if (!fs::exists(kCranium)) GTEST_SKIP() << "invesalius-examples is not installed";
  auto head = volume::read_inv3(kCranium);
  ASSERT_TRUE(head) << head.error().message;
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.401",
                        .existing_method_code = true};
  auto files = write_series(*head, dir / "in", spec);
  ASSERT_EQ(files.size(), 108u);

  auto result = deface_folder(dir, 2);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  const auto& report = result->series().front();
  ASSERT_NO_FATAL_FAILURE(expect_cranium_defaced(report, *head));

  // The same head defaced directly is the reference.
  volume::Volume reference = *head;
  ASSERT_TRUE(deface::deface(reference, options()));

  const auto out = apply_all(*result, files, dir / "out");
  ASSERT_EQ(out.size(), files.size());
  std::size_t identical = 0, changed = 0;
  const std::size_t plane = static_cast<std::size_t>(head->dims[0]) * head->dims[1];
  for (std::size_t n = 0; n < files.size(); ++n) {
    const int k = std::stoi(testing::value(*testing::load(files[n]), "InstanceNumber")) - 1;
    auto in_file = testing::load(files[n]);
    auto out_file = testing::load(out[n]);
    const bool same = testing::pixel_bytes(*in_file) == testing::pixel_bytes(*out_file);
    identical += same;
    changed += !same;
    const auto values = physical_of(out[n]);
    ASSERT_EQ(values.size(), plane);
    std::size_t differ = 0;
    for (std::size_t p = 0; p < plane; ++p) differ += values[p] != reference.voxels[plane * k + p];
    EXPECT_EQ(differ, 0u) << "slice " << k;
    // 113102 added, the existing code kept; Burned In Annotation left alone.
    EXPECT_EQ(testing::value(*out_file, "DeidentificationMethodCodeSequence[0].CodeValue"),
              "113101");
    EXPECT_EQ(testing::value(*out_file, "DeidentificationMethodCodeSequence[1].CodeValue"),
              "113102");
    EXPECT_EQ(testing::value(*out_file, "BurnedInAnnotation"), "NO");
    EXPECT_EQ(testing::value(*out_file, "SOPInstanceUID"),
              testing::value(*in_file, "SOPInstanceUID"));
  }
  EXPECT_EQ(changed, report.slices_changed);
  EXPECT_EQ(identical, 108u - report.slices_changed);
}

// Cranium as ONE enhanced multi-frame CT (geometry and rescale in functional groups, frames
// stored out of slice order): assembled from the per-frame Plane Positions, defaced exactly as
// the volume itself, and written back frame by frame: changed frames hold the defaced values,
// every other frame keeps its stored values, 113102 is added.
TEST(DefaceSeries, EnhancedMultiFrameCraniumIsWrittenBack) {
  if (!fs::exists(kCranium)) GTEST_SKIP() << "invesalius-examples is not installed";
  auto head = volume::read_inv3(kCranium);
  ASSERT_TRUE(head) << head.error().message;
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.421"};
  std::vector<int> order;
  for (int k = 0; k < head->dims[2]; ++k) order.push_back((k * 37) % head->dims[2]);
  fs::create_directories(dir / "in");
  const fs::path input = testing::write_enhanced(*head, dir / "in" / "enhanced.dcm", spec, order);

  auto result = deface_folder(dir, 2);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  const auto& report = result->series().front();
  ASSERT_NO_FATAL_FAILURE(expect_cranium_defaced(report, *head));

  volume::Volume reference = *head;
  ASSERT_TRUE(deface::deface(reference, options()));

  const auto out = apply_all(*result, {input}, dir / "out");
  ASSERT_EQ(out.size(), 1u);
  auto before = dicom::DicomFile::open(input);
  auto after = dicom::DicomFile::open(out[0]);
  ASSERT_TRUE(before && after);
  auto in_image = dicom::decode_pixels(*before);
  auto out_image = dicom::decode_pixels(*after);
  ASSERT_TRUE(in_image && out_image);
  ASSERT_EQ(out_image->frames.size(), order.size());
  const std::size_t plane = static_cast<std::size_t>(head->dims[0]) * head->dims[1];
  std::size_t changed = 0;
  for (std::size_t f = 0; f < order.size(); ++f) {
    const int k = order[f];
    const auto& frame = out_image->frames[f];
    ASSERT_EQ(frame.size(), plane);
    changed += frame != in_image->frames[f];
    std::size_t differ = 0;
    for (std::size_t p = 0; p < plane; ++p)
      differ += out_image->value_of(frame[p]) - 1024.0 != reference.voxels[plane * k + p];
    EXPECT_EQ(differ, 0u) << "frame " << f << " (slice " << k << ")";
  }
  EXPECT_EQ(changed, report.slices_changed);
  EXPECT_EQ(after->code_sequence_of(Tag{0x0012, 0x0064}).size(), 1u);
}

// An enhanced image whose frames do not all carry a Plane Position, or whose frames disagree
// in orientation, is not one volume: refused with the reason, never passed.
TEST(DefaceSeries, EnhancedImageWithoutPerFrameGeometryIsRefused) {
  HeadPhantom ph = phantom(PhantomContrast::mr, {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}});
  enum class Flaw { missing_position, orientation_differs };
  for (const Flaw flaw : {Flaw::missing_position, Flaw::orientation_differs}) {
    testing::TempDir dir;
    fs::create_directories(dir / "in");
    const SeriesSpec spec{.modality = "MR", .series_uid = "1.2.826.0.1.3680043.2.1125.3.422"};
    const fs::path path = testing::write_enhanced(ph.volume, dir / "in" / "mr.dcm", spec);
    {
      auto file = testing::load(path);
      DcmItem* frame = nullptr;
      ASSERT_TRUE(file->getDataset()
                      ->findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, frame, 3)
                      .good());
      if (flaw == Flaw::missing_position) {
        frame->findAndDeleteElement(DCM_PlanePositionSequence);
      } else {
        DcmItem* orientation = nullptr;
        frame->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, orientation, 0);
        orientation->putAndInsertString(DCM_ImageOrientationPatient, "0\\1\\0\\0\\0\\-1");
      }
      testing::save(*file, path);
    }
    auto result = deface_folder(dir);
    ASSERT_TRUE(result) << result.error().message;
    ASSERT_EQ(result->series().size(), 1u);
    const auto& report = result->series().front();
    EXPECT_EQ(report.outcome, deface::SeriesOutcome::refused);
    EXPECT_NE(report.reason.find(flaw == Flaw::missing_position ? "Plane Position" : "differ"),
              std::string::npos)
        << report.reason;
    auto opened = dicom::DicomFile::open(path);
    ASSERT_TRUE(opened);
    EXPECT_FALSE(result->apply(path, *opened));
  }
}

// Cranium scanned with a gantry tilt: the head resampled (nearest voxel) onto image planes
// tilted 12 degrees about the left-right axis, the table stepping straight along z. The step
// is not along the normal; the series is resampled back onto an orthogonal grid for defacing,
// changes are mapped back per slice, and slices the defacing did not reach keep their pixel
// data bit-identical.
TEST(DefaceSeries, TiltedCraniumSeriesIsWrittenBack) {
  if (!fs::exists(kCranium)) GTEST_SKIP() << "invesalius-examples is not installed";
  auto head = volume::read_inv3(kCranium);
  ASSERT_TRUE(head) << head.error().message;
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.451"};
  const double tilt = 12 * std::numbers::pi / 180.0;
  volume::Volume tilted = *head;
  tilted.axes = {Vec3{-1, 0, 0}, Vec3{0, -std::cos(tilt), std::sin(tilt)}, Vec3{0, 0, 1}};
  for (int k = 0; k < tilted.dims[2]; ++k)
    for (int j = 0; j < tilted.dims[1]; ++j)
      for (int i = 0; i < tilted.dims[0]; ++i) {
        const Vec3 at = head->to_index(tilted.to_patient(i, j, k));
        const int x = static_cast<int>(std::lround(at[0])),
                  y = static_cast<int>(std::lround(at[1])),
                  z = static_cast<int>(std::lround(at[2]));
        const bool inside = x >= 0 && y >= 0 && z >= 0 && x < head->dims[0] && y < head->dims[1] &&
                            z < head->dims[2];
        tilted.voxels[tilted.index(i, j, k)] =
            inside ? head->voxels[head->index(x, y, z)] : -1024.0f;
      }
  auto files = write_series(tilted, dir / "in", spec);
  auto result = deface_folder(dir, 2);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  const auto& report = result->series().front();
  EXPECT_NEAR(report.tilt_degrees, 12.0, 0.05);
  EXPECT_EQ(report.dims[2], head->dims[2]);
  EXPECT_GT(report.dims[1], head->dims[1]);  // widened to hold every shifted slice
  ASSERT_NE(report.outcome, deface::SeriesOutcome::not_head);
  if (report.outcome == deface::SeriesOutcome::refused) {
    // The resampled head may be refused by deface()'s own checks (detector or intracranial
    // guard): then every file fails, nothing is half-written.
    EXPECT_NE(report.reason.find("defacing refused"), std::string::npos) << report.reason;
    auto file = dicom::DicomFile::open(files.front());
    ASSERT_TRUE(file);
    auto status = result->apply(files.front(), *file);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().code, ErrorCode::policy);
    return;
  }
  EXPECT_GT(report.slices_changed, 10u);
  const auto out = apply_all(*result, files, dir / "out");
  ASSERT_EQ(out.size(), files.size());
  std::size_t identical = 0;
  const std::size_t plane = static_cast<std::size_t>(head->dims[0]) * head->dims[1];
  for (std::size_t n = 0; n < files.size(); ++n) {
    auto in_file = testing::load(files[n]);
    auto out_file = testing::load(out[n]);
    identical += testing::pixel_bytes(*in_file) == testing::pixel_bytes(*out_file);
    // Changes stay in the face: the anterior half of each slice (rows run anterior here).
    const auto before = physical_of(files[n]);
    const auto after = physical_of(out[n]);
    ASSERT_EQ(after.size(), plane);
    std::size_t posterior_changes = 0;
    for (std::size_t p = 0; p < plane; ++p)
      posterior_changes += after[p] != before[p] && p / static_cast<std::size_t>(head->dims[0]) <
                                                        static_cast<std::size_t>(head->dims[1]) / 2;
    EXPECT_EQ(posterior_changes, 0u);
  }
  EXPECT_EQ(identical, 108u - report.slices_changed);
}

// The command line: a folder with the Cranium series and a chest series; outputs under
// OUT/<series UID>/<SOP Instance UID>.dcm, the chest skipped and not copied.
TEST(DefaceSeries, CommandWritesDicomSeries) {
  if (!fs::exists(kCranium)) GTEST_SKIP() << "invesalius-examples is not installed";
  auto head = volume::read_inv3(kCranium);
  ASSERT_TRUE(head);
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.501"};
  auto files = write_series(*head, dir / "in" / "head", spec);
  const volume::Volume chest = uniform_volume({16, 16, 12}, {25, 25, 5});
  const SeriesSpec chest_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.502",
                              .body_part = "CHEST",
                              .description = "Thorax"};
  write_series(chest, dir / "in" / "chest", chest_spec);

  // Without --keep-headers nothing is written: the headers still identify the patient.
  const std::string bare = std::string(RADGUARD_BINARY) + " deface " + (dir / "in").string() +
                           " --output " + (dir / "bare").string() + " --json > " +
                           (dir / "bare.json").string();
  const int bare_rc = std::system(bare.c_str());
  ASSERT_TRUE(WIFEXITED(bare_rc));
  EXPECT_EQ(WEXITSTATUS(bare_rc), 1);
  auto bare_json = read_small_file(dir / "bare.json");
  ASSERT_TRUE(bare_json);
  EXPECT_NE(bare_json->find("--keep-headers"), std::string::npos) << *bare_json;
  std::size_t bare_written = 0;
  if (fs::exists(dir / "bare"))
    for (const auto& entry : fs::recursive_directory_iterator(dir / "bare"))
      bare_written += entry.is_regular_file();
  EXPECT_EQ(bare_written, 0u);

  const std::string cmd = std::string(RADGUARD_BINARY) + " deface " + (dir / "in").string() +
                          " --output " + (dir / "out").string() + " --keep-headers --preview " +
                          (dir / "png").string() + " --json > " + (dir / "report.json").string();
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  auto json = read_small_file(dir / "report.json");
  ASSERT_TRUE(json);
  EXPECT_NE(json->find("\"not_head\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"defaced\""), std::string::npos) << *json;
  EXPECT_EQ(json->find("PID12345"), std::string::npos);
  EXPECT_EQ(json->find("DOE"), std::string::npos);
  std::size_t written = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out"))
    written += entry.is_regular_file();
  EXPECT_EQ(written, 108u);
  EXPECT_TRUE(fs::exists(dir / "out" / spec.series_uid / (spec.series_uid + ".1.dcm")));
  EXPECT_FALSE(fs::exists(dir / "out" / chest_spec.series_uid));
  EXPECT_TRUE(fs::exists(dir / "png" / (spec.series_uid + "_before_front.png")));
  auto first = testing::load(dir / "out" / spec.series_uid / (spec.series_uid + ".1.dcm"));
  EXPECT_EQ(testing::value(*first, "DeidentificationMethodCodeSequence[0].CodeValue"), "113102");
  EXPECT_EQ(testing::value(*first, "PatientID"), "PID12345");  // deface changes pixels only
}

// radguard deface writes DICOM only with --keep-headers: without it a defaced head series is
// reported and nothing is written (its headers still identify the patient).
TEST(DefaceSeries, CommandWritesDicomOnlyWithKeepHeaders) {
  const auto ph = testing::make_head_phantom(testing::PhantomContrast::mr, {66, 80, 83},
                                             {3.0, 3.0, 3.0},
                                             {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}});
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.511"};
  auto files = write_series(ph.volume, dir / "in" / "head", spec);
  ASSERT_EQ(files.size(), 83u);
  const std::string bin(RADGUARD_BINARY);
  const std::string bare = bin + " deface " + (dir / "in").string() + " --output " +
                           (dir / "bare").string() + " --json > " + (dir / "bare.json").string();
  const int bare_rc = std::system(bare.c_str());
  ASSERT_TRUE(WIFEXITED(bare_rc));
  EXPECT_EQ(WEXITSTATUS(bare_rc), 1);
  auto bare_json = read_small_file(dir / "bare.json");
  ASSERT_TRUE(bare_json);
  EXPECT_NE(bare_json->find("--keep-headers"), std::string::npos) << *bare_json;
  std::size_t bare_written = 0;
  if (fs::exists(dir / "bare"))
    for (const auto& entry : fs::recursive_directory_iterator(dir / "bare"))
      bare_written += entry.is_regular_file();
  EXPECT_EQ(bare_written, 0u);

  const std::string kept = bin + " deface " + (dir / "in").string() + " --output " +
                           (dir / "out").string() + " --keep-headers --json > " +
                           (dir / "out.json").string();
  const int rc = std::system(kept.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  std::size_t written = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out"))
    written += entry.is_regular_file();
  EXPECT_EQ(written, 83u);

  // An existing different output is never replaced silently (issue 14): the run fails and
  // names it, the file stays; --overwrite replaces it.
  const fs::path first = dir / "out" / spec.series_uid / (spec.series_uid + ".1.dcm");
  auto original = read_small_file(first);
  ASSERT_TRUE(original);
  const std::string changed = "not the defaced file";
  {
    std::ofstream(first, std::ios::binary | std::ios::trunc) << changed;
  }
  const std::string again = bin + " deface " + (dir / "in").string() + " --output " +
                            (dir / "out").string() + " --keep-headers --json > " +
                            (dir / "again.json").string();
  const int again_rc = std::system(again.c_str());
  ASSERT_TRUE(WIFEXITED(again_rc));
  EXPECT_EQ(WEXITSTATUS(again_rc), 1);
  auto again_json = read_small_file(dir / "again.json");
  ASSERT_TRUE(again_json);
  EXPECT_NE(again_json->find("already exists with different content"), std::string::npos)
      << *again_json;
  EXPECT_EQ(read_small_file(first).value_or(""), changed);
  const int overwrite_rc = std::system((again + " --overwrite").c_str());
  ASSERT_TRUE(WIFEXITED(overwrite_rc));
  EXPECT_EQ(WEXITSTATUS(overwrite_rc), 0);
  EXPECT_EQ(read_small_file(first).value_or(""), *original);
}

// radguard deid --option clean-recognizable-visual-features: the head series is defaced and
// written with the header stage's pseudonymous UIDs, the chest passes untouched, the thin head
// series fails (nothing written for it, exit 1).
TEST(DefaceSeries, DeidCleansRecognizableVisualFeatures) {
  if (!fs::exists(kCranium)) GTEST_SKIP() << "invesalius-examples is not installed";
  auto head = volume::read_inv3(kCranium);
  ASSERT_TRUE(head);
  testing::TempDir dir;
  const SeriesSpec spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.601"};
  auto files = write_series(*head, dir / "in" / "head", spec);
  const volume::Volume chest = uniform_volume({16, 16, 12}, {25, 25, 5});
  const SeriesSpec chest_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.602",
                              .body_part = "CHEST",
                              .description = "Thorax"};
  write_series(chest, dir / "in" / "chest", chest_spec);
  const volume::Volume thin = uniform_volume({16, 16, 4}, {1, 1, 5});
  const SeriesSpec thin_spec{.series_uid = "1.2.826.0.1.3680043.2.1125.3.603"};
  write_series(thin, dir / "in" / "thin", thin_spec);

  const std::string bin(RADGUARD_BINARY);
  ASSERT_EQ(std::system((bin + " keygen " + (dir / "k.key").string() + " >/dev/null").c_str()), 0);
  const std::string cmd = bin + " deid " + (dir / "in").string() + " --output " +
                          (dir / "out").string() + " --key " + (dir / "k.key").string() +
                          " --option clean-recognizable-visual-features --no-progress --json > " +
                          (dir / "report.json").string();
  const int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1);  // the thin head series failed
  auto json = read_small_file(dir / "report.json");
  ASSERT_TRUE(json);
  EXPECT_NE(json->find("too few"), std::string::npos) << *json;

  std::map<std::string, fs::path> input_by_number;
  for (const auto& f : files)
    input_by_number[testing::value(*testing::load(f), "InstanceNumber")] = f;
  std::size_t heads = 0, chests = 0, identical = 0, changed = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out")) {
    if (!entry.is_regular_file()) continue;
    auto out = testing::load(entry.path());
    EXPECT_NE(testing::value(*out, "PatientID"), "PID12345");
    bool has_113102 = false;
    for (int i = 0; i < 8; ++i)
      has_113102 =
          has_113102 || testing::value(*out, "DeidentificationMethodCodeSequence[" +
                                                 std::to_string(i) + "].CodeValue") == "113102";
    EXPECT_TRUE(has_113102);
    if (testing::value(*out, "Rows") != "256") {
      ++chests;
      continue;
    }
    ++heads;
    EXPECT_NE(testing::value(*out, "SOPInstanceUID").rfind(spec.series_uid, 0), 0u);
    const auto it = input_by_number.find(testing::value(*out, "InstanceNumber"));
    ASSERT_NE(it, input_by_number.end());
    const bool same =
        testing::pixel_bytes(*testing::load(it->second)) == testing::pixel_bytes(*out);
    identical += same;
    changed += !same;
  }
  EXPECT_EQ(heads, 108u);
  EXPECT_EQ(chests, 12u);
  EXPECT_GT(changed, 10u);
  EXPECT_GT(identical, 10u);
}

// A real MR series its publisher (TCIA, Vestibular-Schwannoma-SEG) had already defaced, from
// ../shared/heads: the notches at the edge of the publisher's cut read as a pair of orbits, and
// the series was refused. It must be released, with nothing face-like on any view after.
TEST(DefaceSeries, PublisherDefacedTciaSeriesIsReleased) {
  const fs::path archive = fs::path(RADGUARD_SHARED_HEADS) / "mr_t1_tcia_predefaced_dicom.tar.xz";
  if (!fs::exists(archive)) GTEST_SKIP() << archive << " is not here";
  testing::TempDir dir;
  fs::create_directories(dir / "in");
  const std::string untar =
      "tar -xJf '" + archive.string() + "' -C '" + (dir / "in").string() + "'";
  ASSERT_EQ(std::system(untar.c_str()), 0);
  auto result = deface_folder(dir, 2);
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_EQ(result->series().size(), 1u);
  const auto& report = result->series().front();
  EXPECT_EQ(report.slices, 120u);
  EXPECT_EQ(report.outcome, deface::SeriesOutcome::defaced) << report.reason;
  ASSERT_TRUE(report.deface.has_value()) << report.reason;
  EXPECT_FALSE(report.deface->after.face_found)
      << "nose " << report.deface->after.nose_mm() << " eyes " << report.deface->after.eyes_mm();
}

}  // namespace
}  // namespace radguard
