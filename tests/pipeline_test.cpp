// The pipeline library (src/pipeline): settings checked once, instances from memory giving the
// bytes a run publishes, events and cancellation.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <set>

#include "consent/consent.hpp"
#include "dicom/dicom_file.hpp"
#include "pipeline/config.hpp"
#include "pipeline/pipeline.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::make_ct;
using testing::save;
using testing::read_bytes;
using testing::TempDir;
using testing::write_key_file;

// Every regular file under `root`, relative.
std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(root, ec))
    if (e.is_regular_file()) files.insert(fs::relative(e.path(), root).generic_string());
  return files;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { write_key_file(dir_ / "k.key"); }
  pipeline::Spec spec() const {
    pipeline::Spec s;
    s.key_file = dir_ / "k.key";
    return s;
  }
  pipeline::Pipeline make(const pipeline::Spec& s) const {
    auto made = pipeline::Pipeline::create(s);
    EXPECT_TRUE(made) << made.error().message;
    return std::move(*made);
  }
  TempDir dir_;
};

TEST_F(PipelineTest, CreateChecksEverySettingBeforeAnyInput) {
  auto bad_profile = spec();
  bad_profile.profile = "nonsense";
  EXPECT_EQ(pipeline::Pipeline::create(bad_profile).error().code, ErrorCode::usage);
  auto no_key = spec();
  no_key.key_file = dir_ / "missing.key";
  EXPECT_FALSE(pipeline::Pipeline::create(no_key));
  auto bad_mode = spec();
  bad_mode.options = {"clean-pixel-data"};
  bad_mode.redact_mode = "report";
  EXPECT_EQ(pipeline::Pipeline::create(bad_mode).error().code, ErrorCode::usage);
  auto bad_rules = spec();
  bad_rules.options = {"clean-pixel-data"};
  bad_rules.redaction_rules = dir_ / "no-such-rules.json";
  EXPECT_FALSE(pipeline::Pipeline::create(bad_rules));
  auto half_signing = spec();
  half_signing.signing.key = dir_ / "sign.pem";
  const auto half = pipeline::Pipeline::create(half_signing);
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().code, ErrorCode::usage);
  EXPECT_NE(half.error().message.find("go together"), std::string::npos);
}

TEST_F(PipelineTest, PixelStagesFollowTheOptions) {
  auto names = [](const std::vector<deid::PixelStage>& stages) {
    std::vector<std::string> out;
    for (const auto& s : stages) out.push_back(s.name);
    return out;
  };
  EXPECT_EQ(names(make(spec()).pixel_stages()).size(), 1u);  // the burned-in gate
  auto allow = spec();
  allow.burned_in = pipeline::BurnedIn::allow;
  EXPECT_TRUE(make(allow).pixel_stages().empty());
  auto both = spec();
  both.options = {"clean-pixel-data", "clean-recognizable-visual-features"};
  EXPECT_EQ(names(make(both).pixel_stages()),
            (std::vector<std::string>{"clean-recognizable-visual-features", "clean-pixel-data"}));
}

TEST_F(PipelineTest, KeyReadableByOthersIsAWarning) {
  fs::permissions(dir_ / "k.key", fs::perms::group_read, fs::perm_options::add);
  const auto made = make(spec());
  ASSERT_EQ(made.warnings().size(), 1u);
  EXPECT_NE(made.warnings().front().find("chmod 600"), std::string::npos);
}

testing::BurnedFrame ultrasound_screen() {
  testing::BurnedFrame f;
  f.texts = {
      {"DOE", {8, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"JOHN", {62, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"LIVER", {8, 200}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, false},
  };
  return f;
}

// The same bytes from memory as the folder run publishes, for several transfer syntaxes, a
// data set without a meta header, and an image whose burned-in text is redacted.
TEST_F(PipelineTest, InstanceFromMemoryGivesTheBytesTheRunPublishes) {
  const fs::path in = dir_ / "in";
  int n = 0;
  for (const E_TransferSyntax syntax :
       {EXS_LittleEndianExplicit, EXS_LittleEndianImplicit, EXS_BigEndianExplicit,
        EXS_JPEGProcess14SV1, EXS_RLELossless, EXS_DeflatedLittleEndianExplicit}) {
    ++n;
    auto ct = make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1." + std::to_string(n), 16, 16,
                      n == 2 ? 3u : 1u);
    save(*ct, in / ("ct" + std::to_string(n) + ".dcm"), syntax);
  }
  {
    // A data set with no preamble and no meta header.
    auto ct = make_ct("PID777", "1.2.826.0.1.3680043.2.1125.1.99");
    ASSERT_TRUE(ct->getDataset()
                    ->saveFile((in / "raw.dcm").c_str(), EXS_LittleEndianImplicit)
                    .good());
  }
  auto us = testing::make_burned_in({ultrasound_screen()}, testing::Colour::monochrome2);
  save(*us, in / "us.dcm");

  auto with_text = spec();
  with_text.options = {"clean-pixel-data"};
  for (const pipeline::Spec& s : {spec(), with_text}) {
    const pipeline::Pipeline p = make(s);
    const fs::path out = dir_ / ("out" + std::to_string(s.options.size()));
    pipeline::DeidRun run;
    run.inputs = {in};
    run.output = out;
    run.threads = 2;
    run.progress = batch::ProgressDisplay::never;
    run.written = deid::WrittenOutcomes::keep;
    const auto report = p.run_deid(run);
    ASSERT_TRUE(report) << report.error().message;
    std::size_t compared = 0;
    for (const auto& written : report->written) {
      const auto instance = p.process_instance(read_bytes(written.input), "instance-1");
      ASSERT_TRUE(instance) << written.input << ": " << instance.error().message;
      EXPECT_EQ(instance->name, written.output);
      EXPECT_TRUE(instance->bytes == read_bytes(out / written.output)) << written.input;
      EXPECT_EQ(instance->pixels.frames_redacted, written.pixels.frames_redacted);
      ++compared;
    }
    // Refused in the run (the ultrasound, by the burned-in gate) is refused from memory too.
    const auto problems = report->problems.all().value();
    for (const auto& problem : problems) {
      const auto instance = p.process_instance(read_bytes(problem.input));
      ASSERT_FALSE(instance) << problem.input;
      EXPECT_EQ(instance.error().code, problem.error);
    }
    EXPECT_EQ(compared, s.options.empty() ? 7u : 8u);
  }
}

// The 128-byte preamble of a Part 10 file can hold anything (a TIFF header, text naming the
// patient): DCMTK writes back the one it read; an output's is always zeros.
TEST_F(PipelineTest, ThePreambleOfAnInputIsNeverCopied) {
  auto ct = make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.1.55");
  save(*ct, dir_ / "in" / "ct.dcm");
  auto bytes = read_bytes(dir_ / "in" / "ct.dcm");
  const std::string text = "PATIENT DOE^JANE MRN 12345678";
  std::copy(text.begin(), text.end(), bytes.begin());
  std::ofstream(dir_ / "in" / "ct.dcm", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const pipeline::Pipeline p = make(spec());
  pipeline::DeidRun run;
  run.inputs = {dir_ / "in"};
  run.output = dir_ / "out";
  run.progress = batch::ProgressDisplay::never;
  run.written = deid::WrittenOutcomes::keep;
  const auto report = p.run_deid(run);
  ASSERT_TRUE(report);
  ASSERT_EQ(report->written.size(), 1u);
  const auto published = read_bytes(dir_ / "out" / report->written[0].output);
  const auto instance = p.process_instance(bytes);
  ASSERT_TRUE(instance);
  for (const auto* out : {&published, &instance->bytes}) {
    ASSERT_GT(out->size(), 132u);
    EXPECT_TRUE(std::all_of(out->begin(), out->begin() + 128, [](std::uint8_t b) { return b == 0; }));
    EXPECT_EQ(std::string(out->begin() + 128, out->begin() + 132), "DICM");
  }
}

TEST_F(PipelineTest, InstanceFromMemoryFailsClosed) {
  const pipeline::Pipeline p = make(spec());
  const std::string text = "not a DICOM object at all, just text";
  EXPECT_EQ(p.process_instance(std::vector<std::uint8_t>(text.begin(), text.end())).error().code,
            ErrorCode::not_dicom);
  EXPECT_EQ(p.process_instance({}).error().code, ErrorCode::not_dicom);
  auto ct = make_ct();
  save(*ct, dir_ / "ct.dcm");
  auto bytes = read_bytes(dir_ / "ct.dcm");
  bytes.resize(bytes.size() - 100);  // cut inside the pixel data
  const auto truncated = p.process_instance(bytes);
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().code, ErrorCode::malformed_dicom);
  // What needs a whole series cannot be done to one instance: refused, never skipped.
  auto deface = spec();
  deface.options = {"clean-recognizable-visual-features"};
  EXPECT_EQ(make(deface).process_instance(read_bytes(dir_ / "ct.dcm")).error().code,
            ErrorCode::unsupported);
}

// Records every event; cancels the token after `cancel_after` files.
class Recorder final : public batch::RunListener {
 public:
  Recorder(batch::CancelToken& token, std::size_t cancel_after)
      : token_(token), cancel_after_(cancel_after) {}
  void started(std::size_t total) override { total_ = total; }
  void file_done(const batch::FileEvent& event) override {
    std::lock_guard lock(mutex_);
    ids_.insert(event.id);
    statuses_.emplace_back(event.status);
    last_done_ = std::max(last_done_, event.done);
    if (event.done >= cancel_after_) token_.cancel();
  }
  void finished(std::size_t done, std::size_t total, batch::RunEnd end) override {
    finished_ = {done, total};
    end_ = end;
  }
  batch::CancelToken& token_;
  std::size_t cancel_after_;
  std::mutex mutex_;
  std::size_t total_ = 0, last_done_ = 0;
  std::set<std::size_t> ids_;
  std::vector<std::string> statuses_;
  std::pair<std::size_t, std::size_t> finished_{};
  batch::RunEnd end_ = batch::RunEnd::completed;
};

void make_cts(const fs::path& in, int count, const std::string& patient = "PID12345") {
  for (int i = 0; i < count; ++i) {
    auto ct = make_ct(patient, "1.2.826.0.1.3680043.2.1125.7." + std::to_string(i + 1));
    ASSERT_TRUE(ct->getDataset()->putAndInsertString(DCM_StudyInstanceUID, "1.2.3.4.7").good());
    save(*ct, in / ("DOE_JOHN_" + std::to_string(i) + ".dcm"));
  }
}

TEST_F(PipelineTest, CancelStopsBetweenFilesAndLeavesOnlyWholeOutputs) {
  make_cts(dir_ / "in", 8);
  const pipeline::Pipeline p = make(spec());
  batch::CancelToken token;
  Recorder recorder(token, 3);
  pipeline::DeidRun run;
  run.inputs = {dir_ / "in"};
  run.output = dir_ / "out";
  run.threads = 1;
  run.progress = batch::ProgressDisplay::never;
  run.listener = &recorder;
  run.cancel = &token;
  const auto report = p.run_deid(run);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->end, batch::RunEnd::cancelled);
  EXPECT_EQ(report->count(deid::FileStatus::written), 3u);
  EXPECT_EQ(report->files_not_started, 5u);
  EXPECT_NE(report->exit_code(), 0);
  // Three whole outputs, nothing else: no temporary, no half-written file.
  const auto outputs = files_under(dir_ / "out");
  EXPECT_EQ(outputs.size(), 3u);
  for (const auto& name : outputs) {
    EXPECT_TRUE(name.ends_with(".dcm")) << name;
    EXPECT_TRUE(dicom::DicomFile::open(dir_ / "out" / name)) << name;
  }
  // The events: 8 files announced, 3 done with neutral ids (their places in the run).
  EXPECT_EQ(recorder.total_, 8u);
  EXPECT_EQ(recorder.ids_, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(recorder.statuses_, (std::vector<std::string>{"written", "written", "written"}));
  EXPECT_EQ(recorder.finished_, (std::pair<std::size_t, std::size_t>{3, 8}));
  EXPECT_EQ(recorder.end_, batch::RunEnd::cancelled);
  const std::string text = deid::report_text(*report, p.deid_options(run)).value();
  EXPECT_NE(text.find("cancelled"), std::string::npos);
  EXPECT_EQ(text.find("DOE_JOHN"), std::string::npos);

  // Not cancelled: every file, RunEnd::completed.
  batch::CancelToken unused;
  Recorder all(unused, 100);
  run.listener = &all;
  run.cancel = &unused;
  run.output = dir_ / "out2";
  run.threads = 2;
  const auto full = p.run_deid(run);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->end, batch::RunEnd::completed);
  EXPECT_EQ(full->count(deid::FileStatus::written), 8u);
  EXPECT_EQ(all.ids_.size(), 8u);
  EXPECT_EQ(all.last_done_, 8u);
}

TEST_F(PipelineTest, CancelledExportReleasesNothing) {
  make_cts(dir_ / "in", 6);
  testing::permit_research(dir_ / "consent.db", "PID12345", "2025-01-01");
  const pipeline::Pipeline p = make(spec());
  batch::CancelToken token;
  Recorder recorder(token, 2);
  pipeline::ExportRun run;
  run.inputs = {dir_ / "in"};
  run.output = dir_ / "out";
  run.purpose = "research";
  run.recipient = "lab";
  run.registry = (dir_ / "consent.db").string();
  run.ledger = (dir_ / "ledger.db").string();
  run.threads = 1;
  run.progress = batch::ProgressDisplay::never;
  run.listener = &recorder;
  run.cancel = &token;
  const auto report = p.run_export(run);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->status, ledger::EntryStatus::failed);
  EXPECT_NE(report->error.find("cancelled"), std::string::npos) << report->error;
  EXPECT_TRUE(files_under(dir_ / "out").empty());  // no release, no staging folder
  EXPECT_EQ(recorder.end_, batch::RunEnd::cancelled);
}

// --audit-gate: the staged release is audited as a recipient would audit it; a head whose face
// is still there is refused (nothing published, a failed ledger entry), the same head defaced
// passes.
TEST_F(PipelineTest, AuditGateRefusesAFaceAndPassesItDefaced) {
  const auto head = testing::make_head_phantom(
      testing::PhantomContrast::ct, {66, 80, 84}, {3.0, 3.0, 3.0},
      {volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0}, volume::Vec3{0, 0, 1}});
  testing::write_series(head.volume, dir_ / "in", {});
  testing::permit_research(dir_ / "consent.db", "PID12345", "2025-01-01");
  pipeline::ExportRun run;
  run.inputs = {dir_ / "in"};
  run.purpose = "research";
  run.recipient = "lab";
  run.registry = (dir_ / "consent.db").string();
  run.ledger = (dir_ / "ledger.db").string();
  run.threads = 2;
  run.progress = batch::ProgressDisplay::never;
  run.audit_gate = audit::FailOn::high;

  run.output = dir_ / "face";
  const auto refused = make(spec()).run_export(run);
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_EQ(refused->status, ledger::EntryStatus::failed);
  EXPECT_NE(refused->error.find("release gate refused"), std::string::npos) << refused->error;
  EXPECT_NE(refused->error.find("face 1"), std::string::npos) << refused->error;
  EXPECT_TRUE(files_under(dir_ / "face").empty());

  pipeline::Spec defacing = spec();
  defacing.options = {"clean-recognizable-visual-features"};
  run.output = dir_ / "defaced";
  const auto released = make(defacing).run_export(run);
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_EQ(released->status, ledger::EntryStatus::released) << released->error;
  EXPECT_EQ(released->instances_included, 84U);
}

TEST(PipelineFile, ReadsEverySetting) {
  const auto spec = pipeline::parse_spec(
      "key = \"k.key\"\nprofile = \"research\"\noptions = [\"clean-descriptors\", "
      "\"clean-pixel-data\"]\nrecipe = \"/etc/recipe.txt\"\n"
      "allow_burned_in_annotation = true\n"
      "[clean_pixel_data]\nredact_mode = \"all-text\"\nredaction_rules = \"r.json\"\n"
      "[signing]\nkey = \"s.pem\"\ncert = \"s.crt\"\nprofile = \"none\"\n"
      "[release]\npurpose = \"research\"\nrecipient = \"lab\"\nregistry = \"c.db\"\n"
      "ledger = \"file:l.db?mode=rw\"\non_failure = \"abort\"\n",
      "/srv/conf", "p.toml");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->key_file, fs::path("/srv/conf/k.key"));
  EXPECT_EQ(spec->profile, "research");
  EXPECT_EQ(spec->options, (std::vector<std::string>{"clean-descriptors", "clean-pixel-data"}));
  EXPECT_EQ(spec->recipe, fs::path("/etc/recipe.txt"));
  EXPECT_EQ(spec->burned_in, pipeline::BurnedIn::allow);
  EXPECT_EQ(spec->redact_mode, "all-text");
  EXPECT_EQ(spec->redaction_rules, fs::path("/srv/conf/r.json"));
  EXPECT_EQ(spec->signing.key, fs::path("/srv/conf/s.pem"));
  EXPECT_EQ(spec->signing.cert, fs::path("/srv/conf/s.crt"));
  EXPECT_EQ(spec->signing.profile, "none");
  EXPECT_EQ(spec->release.purpose, "research");
  EXPECT_EQ(spec->release.recipient, "lab");
  EXPECT_EQ(spec->release.registry, "/srv/conf/c.db");      // a path: from the file's folder
  EXPECT_EQ(spec->release.ledger, "file:l.db?mode=rw");     // a URI: as written
  EXPECT_TRUE(spec->release.consent_at.empty());
  EXPECT_EQ(spec->release.on_failure, "abort");
  // Nothing given: the defaults of the flags.
  const auto empty = pipeline::parse_spec("", "/srv", "empty.toml");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->profile, "basic");
  EXPECT_EQ(empty->redact_mode, "phi-text");
  EXPECT_EQ(empty->burned_in, pipeline::BurnedIn::refuse);
  // spec_text reads back as the same settings.
  const auto again = pipeline::parse_spec(pipeline::spec_text(*spec), "/elsewhere", "again");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->key_file, spec->key_file);
  EXPECT_EQ(again->options, spec->options);
  EXPECT_EQ(again->redaction_rules, spec->redaction_rules);
  EXPECT_EQ(again->signing.profile, spec->signing.profile);
  EXPECT_EQ(again->burned_in, spec->burned_in);
  EXPECT_EQ(again->release.registry, spec->release.registry);
  EXPECT_EQ(again->release.on_failure, spec->release.on_failure);
  auto odd = *spec;
  odd.recipe = "/etc/a \"b\" \\c\t.txt";
  const auto odd_again = pipeline::parse_spec(pipeline::spec_text(odd), "/", "odd");
  ASSERT_TRUE(odd_again) << odd_again.error().message;
  EXPECT_EQ(odd_again->recipe, odd.recipe);
}

TEST(PipelineFile, RefusesWhatItDoesNotKnow) {
  auto error_of = [](const std::string& text) {
    const auto spec = pipeline::parse_spec(text, "/srv", "p.toml");
    EXPECT_FALSE(spec) << text;
    if (spec) return std::string();
    EXPECT_EQ(spec.error().code, ErrorCode::usage);
    return spec.error().message;
  };
  EXPECT_EQ(error_of("profile = \"basic\"\nprofle = \"research\"\n"),
            "p.toml:2: unknown key 'profle'");
  EXPECT_EQ(error_of("[signing]\nkey = \"a\"\npassword = \"x\"\n"),
            "p.toml:3: unknown key 'signing.password'");
  EXPECT_EQ(error_of("[redaction]\nmode = \"all-text\"\n"), "p.toml:1: unknown key 'redaction'");
  EXPECT_EQ(error_of("options = \"clean-descriptors\"\n"),
            "p.toml:1: 'options' must be a list of strings");
  EXPECT_EQ(error_of("options = [\"a\", 3]\n"), "p.toml:1: 'options' must be a list of strings");
  EXPECT_EQ(error_of("allow_burned_in_annotation = \"yes\"\n"),
            "p.toml:1: 'allow_burned_in_annotation' must be true or false");
  EXPECT_EQ(error_of("key = 7\n"), "p.toml:1: 'key' must be a string");
  EXPECT_EQ(error_of("key = \"\"\n"), "p.toml:1: 'key' is empty");
  EXPECT_EQ(error_of("signing = 1\n"), "p.toml:1: 'signing' must be a table ([signing])");
  EXPECT_NE(error_of("key = \n").find("p.toml:1: "), std::string::npos);  // not TOML
  EXPECT_EQ(pipeline::read_spec("/no/such/pipeline.toml").error().code, ErrorCode::io);
  // Values are checked here, naming the key and its line (not later, by the flag a run blames).
  EXPECT_EQ(error_of("[release]\npurpose = \"reserch\"\n"),
            "p.toml:2: 'release.purpose' must be one of clinical-care, research, ai-training, "
            "commercial-ai, cloud-processing, cross-border");
  EXPECT_EQ(error_of("[release]\non_failure = \"skip\"\n"),
            "p.toml:2: 'release.on_failure' must be one of withhold-study, abort");
  EXPECT_EQ(error_of("[release]\naudit_gate = \"low\"\n"),
            "p.toml:2: 'release.audit_gate' must be one of high, medium, never");
  EXPECT_EQ(error_of("[clean_pixel_data]\nredact_mode = \"phi\"\n"),
            "p.toml:2: 'clean_pixel_data.redact_mode' must be one of phi-text, all-text");
}

TEST(PipelineFile, TheShippedExampleIsValid) {
  const auto spec = pipeline::read_spec(RADGUARD_EXAMPLE_PIPELINE);
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->key_file.filename(), "radguard.key");
  EXPECT_FALSE(spec->options.empty());
}

}  // namespace
}  // namespace radguard
