// Byte-identical outputs: a fixed corpus (made here, from fixed values) de-identified by the
// radguard command with a fixed key gives outputs whose SHA-256 digests match the list kept in
// tests/data/pipeline_digests.txt. The list was made on main before the pipeline moved from
// apps/radguard into src/pipeline, so the move provably changes no output byte.
//
// A change that is meant to change outputs updates the list:
//   RADGUARD_WRITE_DIGESTS=tests/data/pipeline_digests.txt build/tests/pipeline_tests
//       --gtest_filter='PipelineDigests.DeidAndExport*'
// and says why in its commit message. Outputs of commands added to the corpus later are listed
// from the build before the change (RADGUARD_DIGEST_BINARY=<that build's radguard>).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "crypto/crypto.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/head_phantom.hpp"
#include "support/series_writer.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::make_ct;
using testing::save;
using testing::TempDir;

struct CommandRun {
  int exit_code = -1;
  std::string output;
};

CommandRun run_command(const std::string& args) {
  // RADGUARD_DIGEST_BINARY runs another build (an older one, to make the list before a move).
  const char* other = std::getenv("RADGUARD_DIGEST_BINARY");
  const std::string command =
      std::string(other != nullptr ? other : RADGUARD_BINARY) + " " + args + " 2>&1";
  CommandRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) run.output += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "<run>/<path relative to root>" -> hex SHA-256, for every file under `root` whose name ends
// in `suffix`.
void add_digests(std::map<std::string, std::string>& digests, const std::string& run,
                 const fs::path& root, const std::string& suffix = "") {
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (!suffix.empty() && !name.ends_with(suffix)) continue;
    auto digest = crypto::sha256_file(entry.path());
    ASSERT_TRUE(digest.has_value());
    digests[run + "/" + fs::relative(entry.path(), root).generic_string()] =
        crypto::to_hex(*digest);
  }
}

std::map<std::string, std::string> read_list(const fs::path& path) {
  std::map<std::string, std::string> list;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() == '#') continue;
    std::istringstream fields(line);
    std::string name, digest;
    fields >> digest >> name;
    list[name] = digest;
  }
  return list;
}

std::string list_text(const std::map<std::string, std::string>& digests) {
  std::string text =
      "# SHA-256 of every output of tests/pipeline_digest_test.cpp's fixed corpus (see there).\n";
  for (const auto& [name, digest] : digests) text += digest + "  " + name + "\n";
  return text;
}

testing::BurnedFrame ultrasound_screen() {
  testing::BurnedFrame f;
  f.texts = {
      {"DOE", {8, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"JOHN", {62, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, true},
      {"PID12345", {8, 48}, cv::FONT_HERSHEY_DUPLEX, 0.55, 1, 230, true},
      {"LIVER", {8, 200}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 230, false},
  };
  return f;
}

// The corpus: CT images of two patients in several transfer syntaxes, one with private and
// nested content, and an ultrasound screen with burned-in name and ID. Everything from fixed
// values, so the inputs are the same bytes on every run.
void make_corpus(const fs::path& in) {
  const std::vector<std::pair<E_TransferSyntax, std::string>> syntaxes = {
      {EXS_LittleEndianExplicit, "explicit"}, {EXS_LittleEndianImplicit, "implicit"},
      {EXS_BigEndianExplicit, "big"},         {EXS_JPEGProcess14SV1, "jpegll"},
      {EXS_RLELossless, "rle"},               {EXS_DeflatedLittleEndianExplicit, "deflated"},
  };
  int index = 0;
  for (const auto& [syntax, name] : syntaxes) {
    ++index;
    auto ct = make_ct(index % 2 ? "PID12345" : "PID777",
                      "1.2.826.0.1.3680043.2.1125.1." + std::to_string(index), 16, 16,
                      index == 3 ? 2u : 1u);
    DcmDataset& data = *ct->getDataset();
    if (index % 2 == 0) {  // the second patient's own study
      ASSERT_TRUE(
          data.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.2.777").good());
    }
    if (index == 2) {
      // Free text, a private block and a nested sequence that names the patient.
      ASSERT_TRUE(data.putAndInsertString(DCM_StudyDescription, "CT HEAD DOE JOHN").good());
      ASSERT_TRUE(data.putAndInsertString(DCM_ImageComments, "seen by Dr Roe on 2019-03-15").good());
      ASSERT_TRUE(data.putAndInsertString(DcmTag(0x0009, 0x0010, EVR_LO), "ACME 1.0").good());
      ASSERT_TRUE(data.putAndInsertString(DcmTag(0x0009, 0x1001, EVR_LO), "PID12345").good());
      DcmItem* item = nullptr;
      ASSERT_TRUE(data.findOrCreateSequenceItem(DCM_ReferencedPatientSequence, item, -2).good());
      ASSERT_TRUE(item->putAndInsertString(DCM_ReferencedSOPInstanceUID, "1.2.3.4.5").good());
      ASSERT_TRUE(item->putAndInsertString(DCM_ReferencedSOPClassUID, "1.2.840.10008.3.1.2.1.1")
                      .good());
    }
    save(*ct, in / (index % 2 ? "DOE_JOHN" : "ROE_RICHARD") / (name + ".dcm"), syntax);
  }
  auto us = testing::make_burned_in({ultrasound_screen()}, testing::Colour::monochrome2);
  ASSERT_TRUE(us->getDataset()->putAndInsertString(DCM_BurnedInAnnotation, "YES").good());
  save(*us, in / "DOE_JOHN" / "us.dcm");
}

void make_head_series(const fs::path& in) {
  const std::array<volume::Vec3, 3> axes{volume::Vec3{1, 0, 0}, volume::Vec3{0, 1, 0},
                                         volume::Vec3{0, 0, 1}};
  testing::HeadPhantom ct =
      testing::make_head_phantom(testing::PhantomContrast::ct, {66, 80, 84}, {3, 3, 3}, axes);
  testing::SeriesSpec spec;
  spec.series_uid = "1.2.826.0.1.3680043.2.1125.3.301";
  testing::write_series(ct.volume, in, spec);
}

class PipelineDigests : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_key_file(dir_ / "k.key");
    make_corpus(dir_ / "in");
  }

  // Runs `radguard deid` with `flags` into dir/out/<run> and adds the outputs' digests.
  CommandRun deid(const std::string& run, const std::string& inputs, const std::string& flags,
                  int expected_exit) {
    const CommandRun result = run_command("deid " + inputs + " -o " + (dir_ / "out" / run).string() +
                                          " -k " + (dir_ / "k.key").string() + " -j 2 --no-progress " +
                                          flags);
    EXPECT_EQ(result.exit_code, expected_exit) << run << ": " << result.output;
    add_digests(digests_, run, dir_ / "out" / run);
    return result;
  }

  TempDir dir_;
  std::map<std::string, std::string> digests_;
};

TEST_F(PipelineDigests, DeidAndExportOutputsMatchTheKeptList) {
  const std::string in = (dir_ / "in").string();
  // The Basic Profile; the ultrasound is refused by the burned-in gate (exit 1).
  deid("basic", in, "", 1);
  // Research preset with options and a recipe, burned-in text allowed.
  write_text(dir_ / "recipe.txt", "StudyDescription K\n(0008,1030) K\nImageComments C\n");
  deid("options", in,
       "-p research --option retain-safe-private --option retain-long-modified-dates "
       "--option clean-descriptors --option retain-device-identity --recipe " +
           (dir_ / "recipe.txt").string() + " --allow-burned-in-annotation",
       0);
  // Clean Pixel Data: the ultrasound's name and ID are redacted.
  deid("pixels", in, "--option clean-pixel-data", 0);
  deid("pixels-all-text", (dir_ / "in" / "DOE_JOHN" / "us.dcm").string(),
       "--option clean-pixel-data --redact-mode all-text", 0);
  // Clean Recognizable Visual Features on a head CT series.
  make_head_series(dir_ / "head");
  const CommandRun defaced = deid("deface", (dir_ / "head").string(),
                                  "--option clean-recognizable-visual-features --option "
                                  "clean-pixel-data",
                                  0);
  // The face was removed: the digests guard defacing, not a pass-through.
  EXPECT_NE(defaced.output.find("faces removed from 1 head series"), std::string::npos)
      << defaced.output;

  // The redact and deface commands on their own (their library calls moved out of
  // apps/radguard after these digests were first kept).
  const CommandRun redacted =
      run_command("redact " + (dir_ / "in" / "DOE_JOHN" / "us.dcm").string() + " -o " +
                  (dir_ / "out" / "redact-cmd").string() + " -j 2 --no-progress");
  EXPECT_EQ(redacted.exit_code, 0) << redacted.output;
  add_digests(digests_, "redact-cmd", dir_ / "out" / "redact-cmd", ".dcm");
  const CommandRun deface_cmd = run_command("deface " + (dir_ / "head").string() + " -o " +
                                            (dir_ / "out" / "deface-cmd").string() +
                                            " --keep-headers --threads 2");
  EXPECT_EQ(deface_cmd.exit_code, 0) << deface_cmd.output;
  add_digests(digests_, "deface-cmd", dir_ / "out" / "deface-cmd", ".dcm");

  // export: the consented patient's studies are released (DICOM files only: the manifest
  // holds times and the release name is random).
  write_text(dir_ / "consents.csv",
             "patient_id,purpose,decision,date,source,expires\n"
             "PID12345,research,permit,2025-01-10,portal,\n");
  const CommandRun imported = run_command("consent import " + (dir_ / "consents.csv").string() +
                                          " --registry " + (dir_ / "reg.db").string());
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  const CommandRun exported = run_command(
      "export " + in + " -o " + (dir_ / "release").string() + " --purpose research --recipient lab" +
      " --registry " + (dir_ / "reg.db").string() + " --ledger " + (dir_ / "ledger.db").string() +
      " -k " + (dir_ / "k.key").string() +
      " --consent-at 2026-01-01T00:00:00Z -j 2 --no-progress --allow-burned-in-annotation");
  EXPECT_EQ(exported.exit_code, 0) << exported.output;
  for (const auto& entry : fs::directory_iterator(dir_ / "release"))
    if (entry.path().filename().string().starts_with("release-"))
      add_digests(digests_, "export", entry.path(), ".dcm");

  ASSERT_GT(digests_.size(), 50u);
  if (const char* write = std::getenv("RADGUARD_WRITE_DIGESTS"); write != nullptr) {
    write_text(write, list_text(digests_));
    GTEST_SKIP() << "wrote " << digests_.size() << " digests to " << write;
  }
  const auto expected = read_list(RADGUARD_DIGEST_LIST);
  ASSERT_FALSE(expected.empty()) << "no list at " << RADGUARD_DIGEST_LIST;
  for (const auto& [name, digest] : expected) {
    const auto found = digests_.find(name);
    if (found == digests_.end())
      ADD_FAILURE() << "missing output " << name;
    else
      EXPECT_EQ(found->second, digest) << "output changed: " << name;
  }
  for (const auto& [name, digest] : digests_)
    EXPECT_TRUE(expected.contains(name)) << "new output " << name;
}

std::map<std::string, std::string> tree_digests(const fs::path& root) {
  std::map<std::string, std::string> digests;
  add_digests(digests, "", root);
  return digests;
}

// A run given by a pipeline file equals the same run given by flags; flags override the file.
TEST_F(PipelineDigests, ConfigRunEqualsFlagsRun) {
  const std::string in = (dir_ / "in").string();
  write_text(dir_ / "recipe.txt", "StudyDescription K\n");
  const std::string flags = "-k " + (dir_ / "k.key").string() +
                            " -p research --option clean-descriptors --option "
                            "retain-device-identity --recipe " +
                            (dir_ / "recipe.txt").string() +
                            " --option clean-pixel-data --redact-mode all-text";
  const std::string common = " -j 2 --no-progress";
  const CommandRun by_flags =
      run_command("deid " + in + " -o " + (dir_ / "flags").string() + " " + flags + common);
  ASSERT_EQ(by_flags.exit_code, 0) << by_flags.output;

  // Relative paths are relative to the file's folder.
  write_text(dir_ / "conf" / "pipeline.toml",
             "# the same run as a file\n"
             "key = \"../k.key\"\n"
             "profile = \"research\"\n"
             "options = [\"clean-descriptors\", \"retain-device-identity\", "
             "\"clean-pixel-data\"]\n"
             "recipe = \"" + (dir_ / "recipe.txt").string() + "\"\n"
             "[clean_pixel_data]\nredact_mode = \"all-text\"\n");
  const std::string config = " --config " + (dir_ / "conf" / "pipeline.toml").string();
  const CommandRun by_file =
      run_command("deid " + in + " -o " + (dir_ / "file").string() + config + common);
  ASSERT_EQ(by_file.exit_code, 0) << by_file.output;
  const auto flag_outputs = tree_digests(dir_ / "flags");
  EXPECT_GT(flag_outputs.size(), 5u);
  EXPECT_EQ(tree_digests(dir_ / "file"), flag_outputs);

  // Flags override the file: the file's research preset and options against -p basic and
  // one --option, the same as those flags with the file's recipe (not overridden).
  const CommandRun overridden =
      run_command("deid " + in + " -o " + (dir_ / "overridden").string() + config +
                  " -p basic --option clean-pixel-data --redact-mode phi-text" + common);
  ASSERT_EQ(overridden.exit_code, 0) << overridden.output;
  const CommandRun plain = run_command("deid " + in + " -o " + (dir_ / "plain").string() + " -k " +
                                       (dir_ / "k.key").string() +
                                       " -p basic --option clean-pixel-data --recipe " +
                                       (dir_ / "recipe.txt").string() + common);
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(tree_digests(dir_ / "overridden"), tree_digests(dir_ / "plain"));
  EXPECT_NE(tree_digests(dir_ / "plain"), flag_outputs);

  // A misspelt key is an error naming it, before anything is read or written.
  write_text(dir_ / "conf" / "bad.toml", "key = \"../k.key\"\n[clean_pixel_data]\nredact_mod = \"all-text\"\n");
  const CommandRun bad = run_command("deid " + in + " -o " + (dir_ / "bad").string() +
                                     " --config " + (dir_ / "conf" / "bad.toml").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("unknown key 'clean_pixel_data.redact_mod'"), std::string::npos)
      << bad.output;
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
  // radguard config check: the resolved settings, or the error.
  const CommandRun checked =
      run_command("config check " + (dir_ / "conf" / "pipeline.toml").string() + " 2>/dev/null");
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("profile = \"research\""), std::string::npos) << checked.output;
  EXPECT_NE(checked.output.find((dir_ / "k.key").string()), std::string::npos) << checked.output;
  EXPECT_EQ(run_command("config check " + (dir_ / "conf" / "bad.toml").string()).exit_code, 2);
  // No key from either.
  write_text(dir_ / "conf" / "nokey.toml", "profile = \"basic\"\n");
  const CommandRun nokey = run_command("deid " + in + " -o " + (dir_ / "nokey").string() +
                                       " --config " + (dir_ / "conf" / "nokey.toml").string());
  EXPECT_EQ(nokey.exit_code, 2) << nokey.output;
  EXPECT_NE(nokey.output.find("no secret key"), std::string::npos) << nokey.output;
}

// An export given by a pipeline file's [release] releases the same files as the same export
// given by flags (the kept "export" digests), and a required setting missing from both is a
// usage error naming the flag and the key.
TEST_F(PipelineDigests, ExportByConfigEqualsExportByFlags) {
  write_text(dir_ / "consents.csv",
             "patient_id,purpose,decision,date,source,expires\n"
             "PID12345,research,permit,2025-01-10,portal,\n");
  ASSERT_EQ(run_command("consent import " + (dir_ / "consents.csv").string() + " --registry " +
                        (dir_ / "reg.db").string())
                .exit_code,
            0);
  write_text(dir_ / "conf" / "release.toml",
             "key = \"../k.key\"\n"
             "allow_burned_in_annotation = true\n"
             "[release]\npurpose = \"research\"\nrecipient = \"lab\"\n"
             "registry = \"../reg.db\"\nledger = \"../ledger.db\"\n");
  const std::string config = " --config " + (dir_ / "conf" / "release.toml").string();
  const CommandRun exported = run_command("export " + (dir_ / "in").string() + " -o " +
                                          (dir_ / "release").string() + config +
                                          " --consent-at 2026-01-01T00:00:00Z -j 2 --no-progress");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  std::map<std::string, std::string> released;
  for (const auto& entry : fs::directory_iterator(dir_ / "release"))
    if (entry.path().filename().string().starts_with("release-"))
      add_digests(released, "export", entry.path(), ".dcm");
  std::size_t matched = 0;
  for (const auto& [name, digest] : read_list(RADGUARD_DIGEST_LIST)) {
    if (!name.starts_with("export/")) continue;
    EXPECT_EQ(released[name], digest) << name;
    ++matched;
  }
  EXPECT_GT(matched, 0u);
  EXPECT_EQ(released.size(), matched);

  write_text(dir_ / "conf" / "norecipient.toml",
             "key = \"../k.key\"\n[release]\npurpose = \"research\"\n");
  const CommandRun missing = run_command(
      "export " + (dir_ / "in").string() + " -o " + (dir_ / "release2").string() + " --config " +
      (dir_ / "conf" / "norecipient.toml").string() + " --registry " +
      (dir_ / "reg.db").string() + " --ledger " + (dir_ / "ledger.db").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no recipient: give --recipient"), std::string::npos)
      << missing.output;
  EXPECT_FALSE(fs::exists(dir_ / "release2"));

  // A consent time in the file is refused, naming the key.
  write_text(dir_ / "conf" / "standing.toml",
             "key = \"../k.key\"\n[release]\nconsent_at = \"2026-01-01\"\n");
  const CommandRun standing = run_command(
      "config check " + (dir_ / "conf" / "standing.toml").string());
  EXPECT_EQ(standing.exit_code, 2) << standing.output;
  EXPECT_NE(standing.output.find("release.consent_at"), std::string::npos) << standing.output;
}

// A release cut into shards by radguard plan and run shard by shard into one output folder
// (radguard deid --files-from) gives exactly the outputs of one run over all inputs, also
// with defacing, which needs each head series whole in one shard; radguard plan merge makes
// of the shards' reports one equal to the single run's in counts and failures.
TEST_F(PipelineDigests, ShardsRunSeparatelyEqualOneRun) {
  make_head_series(dir_ / "in" / "head");
  // Not DICOM: left out of the plan's reading, yet run (and skipped) in a shard as in one run.
  write_text(dir_ / "in" / "notes.txt", "not an image\n");
  const std::string in = (dir_ / "in").string();
  const std::string flags = " -k " + (dir_ / "k.key").string() +
                            " --option clean-recognizable-visual-features --option "
                            "clean-pixel-data -j 2 --no-progress --report-full-paths";
  // The corpus's small multi-frame and single CTs count as heads that cannot be defaced: they
  // fail in the single run (exit 1) and must fail the same way in the shards.
  const auto failed_count = [](const std::string& output) {
    const auto at = output.find("; failed ");
    return at == std::string::npos ? -1 : std::stoi(output.substr(at + 9));
  };
  const CommandRun single = run_command("deid " + in + " -o " + (dir_ / "single").string() +
                                        flags + " --report " + (dir_ / "single.json").string());
  ASSERT_EQ(single.exit_code, 1) << single.output;
  int failed_in_shards = 0;

  constexpr int kShards = 4;
  const CommandRun planned = run_command("plan " + in + " --shards 4 -o " +
                                         (dir_ / "plan").string() + " --json --no-progress");
  ASSERT_EQ(planned.exit_code, 0) << planned.output;
  EXPECT_NE(planned.output.find("\"shards\""), std::string::npos) << planned.output;
  std::size_t listed = 0;
  fs::create_directories(dir_ / "plan" / "reports");
  for (int s = 0; s < kShards; ++s) {
    const std::string name = "shard-000" + std::to_string(s);
    const fs::path list = dir_ / "plan" / (name + ".txt");
    ASSERT_TRUE(fs::exists(list)) << list;
    std::ifstream lines(list);
    for (std::string line; std::getline(lines, line);) ++listed;
    if (fs::file_size(list) == 0) continue;
    const CommandRun shard = run_command(
        "deid --files-from " + list.string() + " -o " + (dir_ / "shards").string() + flags +
        " --report " + (dir_ / "plan" / "reports" / (name + ".json")).string());
    EXPECT_LE(shard.exit_code, 1) << list << ": " << shard.output;
    failed_in_shards += failed_count(shard.output);
  }
  EXPECT_EQ(failed_in_shards, failed_count(single.output));
  // The corpus's files and the head series, each in exactly one shard.
  std::size_t inputs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "in")) inputs += e.is_regular_file();
  EXPECT_EQ(listed, inputs);
  const auto expected = tree_digests(dir_ / "single");
  EXPECT_GT(expected.size(), 80u);
  EXPECT_EQ(tree_digests(dir_ / "shards"), expected);

  // Merged: the single run's counts and failures (in input order there, sorted by input in
  // the merge), and its exit status.
  const std::string plan_dir = (dir_ / "plan").string();
  const CommandRun merged = run_command("plan merge " + plan_dir);
  EXPECT_EQ(merged.exit_code, 1) << merged.output;
  EXPECT_EQ(failed_count(merged.output), failed_count(single.output)) << merged.output;
  const auto one = nlohmann::json::parse(read_text(dir_ / "single.json"));
  const auto all = nlohmann::json::parse(read_text(dir_ / "plan" / "report.json"));
  EXPECT_EQ(all["counts"], one["counts"]);
  EXPECT_EQ(one["counts"]["skipped_not_dicom"], 1);
  EXPECT_GT(one["counts"]["failed"].get<int>(), 0);
  const auto sorted_problems = [](const nlohmann::json& report, const char* key) {
    std::vector<std::string> rows;
    for (const auto& e : report[key])
      rows.push_back(e.value("input", "") + "|" + e.value("status", "") + "|" +
                     e.value("error", "") + "|" + e.value("reason", "") + "|" +
                     e.value("refused_by", ""));
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  EXPECT_EQ(sorted_problems(all, "failures"), sorted_problems(one, "failures"));
  EXPECT_EQ(sorted_problems(all, "skipped"), sorted_problems(one, "skipped"));
  EXPECT_EQ(all["pixels"], one["pixels"]);
  EXPECT_EQ(all["exit_code"], one["exit_code"]);
  EXPECT_EQ(all["key_fingerprint"], one["key_fingerprint"]);
  EXPECT_EQ(all["merged"]["shards"], kShards);

  // Fails closed: a shard's report missing, or one that does not account for its list.
  const fs::path report0 = dir_ / "plan" / "reports" / "shard-0000.json";
  const std::string kept = read_text(report0);
  fs::remove(report0);
  const CommandRun missing = run_command("plan merge " + plan_dir);
  EXPECT_NE(missing.exit_code, 0) << missing.output;
  EXPECT_FALSE(fs::exists(dir_ / "plan" / "report.json"));
  EXPECT_NE(missing.output.find("shard 0"), std::string::npos) << missing.output;
  auto altered = nlohmann::json::parse(kept);
  altered["counts"]["files_seen"] = altered["counts"]["files_seen"].get<int>() - 1;
  write_text(report0, altered.dump());
  const CommandRun short_report = run_command("plan merge " + plan_dir);
  EXPECT_NE(short_report.exit_code, 0) << short_report.output;
  EXPECT_FALSE(fs::exists(dir_ / "plan" / "report.json"));
  EXPECT_NE(short_report.output.find("accounts for"), std::string::npos) << short_report.output;
  altered = nlohmann::json::parse(kept);
  altered["key_fingerprint"] = "another key";
  write_text(report0, altered.dump());
  const CommandRun other_key = run_command("plan merge " + plan_dir);
  EXPECT_NE(other_key.exit_code, 0) << other_key.output;
  EXPECT_FALSE(fs::exists(dir_ / "plan" / "report.json"));
  EXPECT_NE(other_key.output.find("key_fingerprint"), std::string::npos) << other_key.output;

  // Planned again with fewer shards: no list or report of the earlier plan is left to run or
  // merge twice.
  ASSERT_EQ(run_command("plan " + in + " --shards 2 -o " + plan_dir + " --no-progress").exit_code, 0);
  EXPECT_TRUE(fs::exists(dir_ / "plan" / "shard-0001.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "plan" / "shard-0002.txt"));
  EXPECT_FALSE(fs::exists(report0));
  EXPECT_FALSE(fs::exists(dir_ / "plan" / "report.json"));

  // A list that names nothing, or no input at all, is a usage error.
  write_text(dir_ / "empty.txt", "\n\n");
  EXPECT_EQ(run_command("deid --files-from " + (dir_ / "empty.txt").string() + " -o " +
                        (dir_ / "x").string() + flags)
                .exit_code,
            2);
  EXPECT_EQ(run_command("deid -o " + (dir_ / "x").string() + flags).exit_code, 2);
}

// radguard plan --sbatch writes a job array over the shards, a merge job and submit.sh, with
// every path absolute and quoted (a folder name with a space and a quote), and refuses a
// command other than deid or one that sets what each task sets.
TEST_F(PipelineDigests, PlanSbatchWritesQuotedScripts) {
  const fs::path plan = dir_ / "it's a plan";
  const std::string quoted_plan = "'" + (dir_ / "it'\\''s a plan").string() + "'";
  const CommandRun planned = run_command(
      "plan " + (dir_ / "in").string() + " --shards 3 -o \"" + plan.string() +
      "\" --no-progress --sbatch --cpus-per-task 4 --mem 2048 --partition batch -- deid -o "
      "\"" + (dir_ / "out dir").string() + "\" -k " + (dir_ / "k.key").string());
  ASSERT_EQ(planned.exit_code, 0) << planned.output;
  const std::string run = read_text(plan / "run.sbatch");
  EXPECT_NE(run.find("#SBATCH --array=0-2\n"), std::string::npos) << run;
  EXPECT_NE(run.find("#SBATCH --cpus-per-task=4\n"), std::string::npos) << run;
  EXPECT_NE(run.find("#SBATCH --mem=2048\n"), std::string::npos) << run;
  EXPECT_NE(run.find("#SBATCH --partition=batch\n"), std::string::npos) << run;
  EXPECT_NE(run.find("plan=" + quoted_plan + "\n"), std::string::npos) << run;
  EXPECT_NE(run.find(" 'deid' '-o' '" + (dir_ / "out dir").string() + "'"), std::string::npos) << run;
  EXPECT_NE(run.find("--files-from \"$list\" --report \"$report\""), std::string::npos) << run;
  const std::string merge = read_text(plan / "merge.sbatch");
  EXPECT_NE(merge.find(" plan merge " + quoted_plan), std::string::npos) << merge;
  const std::string submit = read_text(plan / "submit.sh");
  EXPECT_NE(submit.find("--dependency=\"afterok:$array\""), std::string::npos) << submit;
  EXPECT_TRUE((fs::status(plan / "submit.sh").permissions() & fs::perms::owner_exec) != fs::perms::none);
  // Each script is valid bash.
  for (const char* script : {"run.sbatch", "merge.sbatch", "submit.sh"})
    EXPECT_EQ(std::system(("bash -n \"" + (plan / script).string() + "\"").c_str()), 0) << script;

  // Without a SLURM_ARRAY_TASK_ID the task script refuses to run.
  EXPECT_NE(std::system(("env -u SLURM_ARRAY_TASK_ID bash \"" + (plan / "run.sbatch").string() +
                         "\" >/dev/null 2>&1").c_str()),
            0);
  // Each task run by hand as Slurm would: a shard with files is de-identified and its report
  // written; an empty shard succeeds with nothing to do.
  std::size_t with_reports = 0;
  for (int task = 0; task < 3; ++task) {
    const std::string name = "shard-000" + std::to_string(task);
    EXPECT_EQ(std::system(("cd \"" + dir_.path().string() + "\" && SLURM_ARRAY_TASK_ID=" +
                           std::to_string(task) + " bash \"" + (plan / "run.sbatch").string() +
                           "\" >/dev/null 2>&1").c_str()),
              0)
        << task;
    const bool listed = fs::file_size(plan / (name + ".txt")) > 0;
    EXPECT_EQ(fs::exists(plan / "reports" / (name + ".json")), listed) << task;
    with_reports += listed;
  }
  EXPECT_GT(with_reports, 0u);
  // The merge script merges them (the corpus has failures: exit 1).
  EXPECT_EQ(WEXITSTATUS(std::system(("bash \"" + (plan / "merge.sbatch").string() + "\" >/dev/null 2>&1").c_str())), 1);
  EXPECT_TRUE(fs::exists(plan / "report.json"));

  // export is accepted (its shards stage one release: tests/shard_export_test.sh), but not
  // with --shard or --dry-run; commands other than deid and export are refused.
  for (const std::string bad : {"-- redact -o x", "-- export -o x --dry-run",
                                "-- export -o x --shard s.txt", "-- deid -o x --report r.json",
                                "-- deid -o x --files-from l.txt", "", "--partition 'a b' -- deid -o x",
                                "-- deid -k k.key"}) {
    const CommandRun refused = run_command("plan " + (dir_ / "in").string() + " --shards 2 -o " +
                                           (dir_ / "p2").string() + " --no-progress --sbatch " + bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
  }
  // A plan without --sbatch into the folder leaves no script of the earlier one behind.
  ASSERT_EQ(run_command("plan " + (dir_ / "in").string() + " --shards 3 -o \"" + plan.string() +
                        "\" --no-progress")
                .exit_code,
            0);
  EXPECT_FALSE(fs::exists(plan / "run.sbatch"));
  EXPECT_FALSE(fs::exists(plan / "submit.sh"));
  // A command after -- without --sbatch is refused too.
  EXPECT_EQ(run_command("plan " + (dir_ / "in").string() + " --shards 2 -o " +
                        (dir_ / "p3").string() + " --no-progress -- deid -o x")
                .exit_code,
            2);
}

}  // namespace
}  // namespace radguard
