// Instances that arrive one at a time (src/pipeline/assembler.hpp): the whole pipeline over
// instances held in memory (consent gate, header stage, redaction, defacing of a series that
// arrives instance by instance, signing), published to memory, with no input file on disk.
#include "pipeline/assembler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>
#include <random>

#include "consent/consent.hpp"
#include "dicom/signature.hpp"
#include "pipeline/pipeline.hpp"
#include "signing/keys.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;
using testing::read_bytes;
using testing::TempDir;

void write_bytes(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

bool contains(const Bytes& bytes, std::string_view text) {
  return std::search(bytes.begin(), bytes.end(), text.begin(), text.end()) != bytes.end();
}

// A head CT series (the phantom, patient PID12345), an ultrasound frame with the patient's
// name burned in (PID12345) and a CT of a patient who has not consented (PID-NO), as files.
std::vector<fs::path> write_inputs(const fs::path& in) {
  const auto head = testing::make_head_phantom(
      testing::PhantomContrast::ct, {66, 80, 84}, {3.0, 3.0, 3.0},
      {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, 1}});
  auto files = testing::write_series(head.volume, in / "head", {});
  testing::BurnedFrame frame;
  frame.texts = {{"DOE", {8, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
                 {"JOHN", {62, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true}};
  auto us = testing::make_burned_in({frame}, testing::Colour::monochrome2);
  testing::save(*us, in / "us.dcm");
  files.push_back(in / "us.dcm");
  auto other = testing::make_ct("PID-NO", "1.2.826.0.1.3680043.2.1125.5.1");
  testing::save(*other, in / "no.dcm");
  files.push_back(in / "no.dcm");
  return files;
}

class AssemblerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_key_file(dir_ / "k.key");
    testing::permit_research(dir_ / "consent.db", "PID12345");
  }
  pipeline::Spec spec() const {
    pipeline::Spec s;
    s.key_file = dir_ / "k.key";
    s.options = {"clean-pixel-data", "clean-recognizable-visual-features"};
    return s;
  }
  TempDir dir_;
};

TEST_F(AssemblerTest, WholePipelineOverInstancesInMemoryWithNoInputFileOnDisk) {
  ASSERT_TRUE(signing::write_test_identity(dir_ / "sign.pem", dir_ / "sign.crt", {}));
  auto s = spec();
  s.signing = {dir_ / "sign.pem", dir_ / "sign.crt", ""};
  auto made = pipeline::Pipeline::create(s);
  ASSERT_TRUE(made) << made.error().message;
  ASSERT_TRUE(made->needs_whole_series());

  // Every input is read into memory and its file removed before the run starts.
  std::vector<Bytes> instances;
  for (const fs::path& file : write_inputs(dir_ / "in")) instances.push_back(read_bytes(file));
  fs::remove_all(dir_ / "in");
  std::shuffle(instances.begin(), instances.end(), std::mt19937(3));

  auto gate = pipeline::ConsentGate::open({(dir_ / "consent.db").string(), "research", ""});
  ASSERT_TRUE(gate) << gate.error().message;
  pipeline::AssemblerSettings settings;
  settings.quiet = std::chrono::seconds(30);
  settings.work_parent = dir_ / "work";
  settings.consent = std::move(*gate);
  auto assembler = pipeline::SeriesAssembler::create(*made, settings);
  ASSERT_TRUE(assembler) << assembler.error().message;

  const auto start = pipeline::SeriesAssembler::Clock::now();
  std::size_t withheld = 0;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const auto added = assembler->add(instances[i], "upload-" + std::to_string(i), start);
    if (!added) {
      // Only the patient without consent is refused, on arrival, saying so without the ID.
      EXPECT_EQ(added.error().code, ErrorCode::policy);
      EXPECT_NE(added.error().message.find("withheld"), std::string::npos);
      EXPECT_EQ(added.error().message.find("PID-NO"), std::string::npos);
      ++withheld;
    }
  }
  EXPECT_EQ(withheld, 1u);
  EXPECT_EQ(assembler->open_series().size(), 2u);  // the head series and the ultrasound
  EXPECT_EQ(assembler->instances_held(), instances.size() - 1);
  // Nothing is quiet until the quiet time has passed.
  EXPECT_TRUE(assembler->quiet_series(start + std::chrono::seconds(10)).empty());
  const auto quiet = assembler->quiet_series(start + std::chrono::seconds(31));
  ASSERT_EQ(quiet.size(), 2u);

  auto trust = dicom::TrustStore::load(std::vector<fs::path>{dir_ / "sign.crt"});
  ASSERT_TRUE(trust);
  std::size_t defaced = 0, redacted = 0, released = 0;
  for (const std::string& key : quiet) {
    for (const auto& outcome : assembler->close(key)) {
      ASSERT_TRUE(outcome.output) << outcome.id << ": " << outcome.output.error().message;
      const pipeline::OutputInstance& out = *outcome.output;
      ++released;
      defaced += out.pixels.defaced ? 1 : 0;
      redacted += out.pixels.frames_redacted;
      EXPECT_FALSE(contains(out.bytes, "PID12345")) << outcome.id;
      EXPECT_FALSE(contains(out.bytes, "DOE^JOHN")) << outcome.id;
      // Published to memory: written here only to verify the signature with the library.
      const fs::path written = dir_ / "out" / out.name;
      write_bytes(written, out.bytes);
      const auto verified = dicom::verify_file(written, *trust);
      ASSERT_TRUE(verified) << verified.error().message;
      EXPECT_EQ(verified->verdict, dicom::Verdict::valid) << outcome.id;
    }
  }
  EXPECT_EQ(released, instances.size() - 1);
  EXPECT_EQ(defaced, 84u);  // every slice of the head series carries code 113102
  EXPECT_GE(redacted, 1u);  // the ultrasound's burned-in name
  EXPECT_EQ(assembler->instances_held(), 0u);
  EXPECT_TRUE(
      fs::is_empty(dir_ / "work" / fs::directory_iterator(dir_ / "work")->path().filename()));
}

// The same pipeline without signing gives, instance by instance, exactly the bytes the folder
// run publishes for the same files, the defaced head series included.
TEST_F(AssemblerTest, AssembledSeriesGiveTheBytesTheFolderRunPublishes) {
  auto made = pipeline::Pipeline::create(spec());
  ASSERT_TRUE(made) << made.error().message;
  const auto files = write_inputs(dir_ / "in");
  pipeline::DeidRun run;
  run.inputs = {dir_ / "in"};
  run.output = dir_ / "out";
  run.threads = 2;
  run.progress = batch::ProgressDisplay::never;
  const auto report = made->run_deid(run);
  ASSERT_TRUE(report);

  auto assembler = pipeline::SeriesAssembler::create(*made, {});
  ASSERT_TRUE(assembler);
  for (std::size_t i = 0; i < files.size(); ++i)
    ASSERT_TRUE(assembler->add(read_bytes(files[i]), "n" + std::to_string(i)));
  std::size_t compared = 0, failed = 0;
  for (const auto& outcome : assembler->close_all()) {
    if (!outcome.output) {
      ++failed;  // as in the folder run (the lone small CT is a head series too thin to deface)
      continue;
    }
    EXPECT_TRUE(outcome.output->bytes == read_bytes(dir_ / "out" / outcome.output->name))
        << outcome.id;
    ++compared;
  }
  EXPECT_EQ(compared, report->count(deid::FileStatus::written));
  EXPECT_EQ(failed, report->count(deid::FileStatus::failed));
  EXPECT_EQ(compared, files.size() - 1);
}

// A series that is closed starts again when another of its instances arrives later, and a
// stage that refuses a series (a head series too thin to deface) fails its instances one by
// one, never releasing them.
TEST_F(AssemblerTest, LateInstancesStartTheSeriesAgainAndRefusedSeriesFailClosed) {
  auto made = pipeline::Pipeline::create(spec());
  ASSERT_TRUE(made);
  const auto head = testing::make_head_phantom(
      testing::PhantomContrast::ct, {66, 80, 4}, {3.0, 3.0, 3.0},
      {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, 1}});
  const auto files = testing::write_series(head.volume, dir_ / "thin", {});
  auto assembler = pipeline::SeriesAssembler::create(*made, {});
  ASSERT_TRUE(assembler);
  const auto key = assembler->add(read_bytes(files[0]), "a");
  ASSERT_TRUE(key);
  ASSERT_TRUE(assembler->add(read_bytes(files[1]), "b"));
  const auto first = assembler->close(*key);
  ASSERT_EQ(first.size(), 2u);
  for (const auto& outcome : first) {
    ASSERT_FALSE(outcome.output) << outcome.id;
    EXPECT_EQ(outcome.output.error().code, ErrorCode::policy) << outcome.output.error().message;
  }
  EXPECT_TRUE(assembler->close(*key).empty());
  const auto again = assembler->add(read_bytes(files[2]), "c");
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *key);
  EXPECT_EQ(assembler->open_series(), std::vector<std::string>{*key});
  // Bad input is refused on arrival and nothing is held for it.
  EXPECT_EQ(assembler->add(Bytes{1, 2, 3}, "junk").error().code, ErrorCode::not_dicom);
  EXPECT_EQ(assembler->instances_held(), 1u);
}

}  // namespace
}  // namespace radguard
