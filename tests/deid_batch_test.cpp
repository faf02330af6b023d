// The deid command end to end: batches with bad inputs, exit statuses, the JSON report,
// output names, determinism across runs and thread counts, and validity under dciodvfy.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "support/fixtures.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::make_ct;
using testing::save;
using testing::TempDir;

struct CommandRun {
  int exit_code;
  std::string output;
};

CommandRun run_command(const std::string& args) {
  const std::string command = std::string(RADGUARD_BINARY) + " " + args + " 2>&1";
  CommandRun run{-1, {}};
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) run.output += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_all(e.path());
  return files;
}

class DeidBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run_command("keygen " + (dir_ / "k.key").string()).exit_code, 0);
    for (int i = 0; i < 6; ++i) {
      auto ct = make_ct(i < 3 ? "PID12345" : "PID777",
                        "1.2.826.0.1.3680043.2.1125.1." + std::to_string(i + 1));
      save(*ct, dir_ / "in" / (i < 3 ? "DOE_JOHN" : "ROE_RICHARD") / ("IMG" + std::to_string(i)),
           i % 2 ? EXS_LittleEndianImplicit : EXS_LittleEndianExplicit);
    }
  }
  std::string deid(const fs::path& out, const std::string& extra = "") {
    return "deid " + (dir_ / "in").string() + " --output " + out.string() + " --key " +
           (dir_ / "k.key").string() + " --profile research --no-progress " + extra;
  }
  TempDir dir_;
};

TEST_F(DeidBatch, KeygenWritesAPrivateKeyAndNeverReplacesOne) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "k.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  const CommandRun again = run_command("keygen " + (dir_ / "k.key").string());
  EXPECT_NE(again.exit_code, 0);
}

TEST_F(DeidBatch, CleanBatchExitsZeroAndNamesCarryNoPhi) {
  const CommandRun run = run_command(deid(dir_ / "out", "--report " + (dir_ / "r.json").string()));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const auto files = tree(dir_ / "out");
  EXPECT_EQ(files.size(), 6U);
  for (const auto& [name, bytes] : files) {
    EXPECT_TRUE(
        std::regex_match(name, std::regex("2\\.25\\.\\d+/2\\.25\\.\\d+/2\\.25\\.\\d+\\.dcm")))
        << name;
    for (const char* phi :
         {"DOE", "JOHN", "PID12345", "PID777", "Elsewhere", "19300102", "Acacia", "HOUSE"})
      EXPECT_EQ(bytes.find(phi), std::string::npos) << phi << " leaked into " << name;
  }
  const auto report = nlohmann::json::parse(read_all(dir_ / "r.json"));
  EXPECT_EQ(report["counts"]["written"], 6);
  EXPECT_EQ(report["profile"]["preset"], "research");
  EXPECT_EQ(report["exit_code"], 0);
}

TEST_F(DeidBatch, BadInputsAreReportedAndTheRestIsDone) {
  std::ofstream(dir_ / "in" / "DOE_JOHN" / "notes.txt")
      << "not dicom, just notes about the patient";
  const std::string good = read_all(dir_ / "in" / "DOE_JOHN" / "IMG0");
  std::ofstream(dir_ / "in" / "DOE_JOHN" / "broken.dcm", std::ios::binary)
      << good.substr(0, good.size() / 2);
  auto dicomdir = make_ct();
  dicomdir->getMetaInfo()->putAndInsertString(DCM_MediaStorageSOPClassUID,
                                              UID_MediaStorageDirectoryStorage);
  dicomdir->getDataset()->putAndInsertString(DCM_SOPClassUID, UID_MediaStorageDirectoryStorage);
  DcmItem* record = nullptr;
  dicomdir->getDataset()->findOrCreateSequenceItem(DCM_DirectoryRecordSequence, record, 0);
  record->putAndInsertString(DCM_PatientName, "DOE^JOHN");
  dicomdir->saveFile((dir_ / "in" / "DICOMDIR").c_str(), EXS_LittleEndianExplicit,
                     EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0, EWM_dontUpdateMeta);
  const CommandRun run = run_command(deid(dir_ / "out", "--json"));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  const auto json_start = run.output.find('{');
  ASSERT_NE(json_start, std::string::npos) << run.output;
  const auto report = nlohmann::json::parse(run.output.substr(json_start));
  EXPECT_EQ(report["counts"]["written"], 6);
  EXPECT_EQ(report["counts"]["failed"], 1);
  EXPECT_EQ(report["counts"]["skipped_not_dicom"], 1);
  EXPECT_EQ(report["counts"]["dicomdir_dropped"], 1);
  ASSERT_EQ(report["failures"].size(), 1U);
  EXPECT_NE(report["failures"][0]["input"].get<std::string>().find("broken.dcm"),
            std::string::npos);
  EXPECT_EQ(report["failures"][0]["error"], "malformed_dicom");
  EXPECT_EQ(tree(dir_ / "out").size(), 6U);  // the DICOMDIR and the broken file left nothing
}

TEST_F(DeidBatch, OutputsAreByteIdenticalAcrossRunsAndThreadCounts) {
  ASSERT_EQ(run_command(deid(dir_ / "a", "--threads 1")).exit_code, 0);
  ASSERT_EQ(run_command(deid(dir_ / "b", "--threads 2")).exit_code, 0);
  ASSERT_EQ(run_command(deid(dir_ / "c", "--threads 8")).exit_code, 0);
  const auto a = tree(dir_ / "a");
  EXPECT_EQ(a.size(), 6U);
  EXPECT_TRUE(a == tree(dir_ / "b"));
  EXPECT_TRUE(a == tree(dir_ / "c"));
  // A rerun into the same folder replaces each file with the same bytes.
  ASSERT_EQ(run_command(deid(dir_ / "a", "--threads 2")).exit_code, 0);
  EXPECT_TRUE(a == tree(dir_ / "a"));
}

TEST_F(DeidBatch, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_command("deid " + (dir_ / "in").string() + " --output " + (dir_ / "o").string())
                .exit_code,
            2);
  EXPECT_EQ(run_command(deid(dir_ / "o", "--option retain-everything")).exit_code, 2);
  EXPECT_EQ(run_command(deid(dir_ / "o", "--profile nonsense")).exit_code, 2);
  EXPECT_EQ(run_command("deid " + (dir_ / "in").string() + " --output " +
                        (dir_ / "in" / "o").string() + " --key " + (dir_ / "k.key").string())
                .exit_code,
            2);
  EXPECT_FALSE(fs::exists(dir_ / "in" / "o"));  // refused before anything is created
  EXPECT_EQ(run_command("frobnicate").exit_code, 2);
}

// dciodvfy's complaints, with the attribute values and positions taken out, so the same
// problem reads the same before and after de-identification.
std::set<std::string> dciodvfy_errors(const fs::path& file) {
  const std::string command = "dciodvfy " + file.string() + " 2>&1";
  std::set<std::string> errors;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) {
    std::string line(buffer);
    if (line.rfind("Error", 0) != 0) continue;
    line = std::regex_replace(line, std::regex("<[^>]*>"), "<>");
    line = std::regex_replace(line, std::regex("\"[^\"]*\""), "\"\"");
    line = std::regex_replace(line, std::regex("[0-9]+(\\.[0-9]+){2,}"), "<uid>");
    errors.insert(line);
  }
  pclose(pipe);
  return errors;
}

TEST_F(DeidBatch, OutputsIntroduceNoNewDciodvfyErrors) {
  if (std::system("command -v dciodvfy >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "dicom3tools not installed";
  TempDir samples;
  std::vector<fs::path> inputs;
  for (const char* name : {"CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm",
                           "test-SR.dcm", "waveform_ecg.dcm"}) {
    const auto p = testing::pydicom_sample(name);
    if (!p.empty()) {
      fs::copy_file(p, samples / name);
      inputs.push_back(samples / name);
    }
  }
  auto ct = make_ct();
  save(*ct, samples / "generated_ct.dcm");
  inputs.push_back(samples / "generated_ct.dcm");
  for (const char* preset : {"basic", "research"}) {
    const CommandRun run = run_command(
        "deid " + samples.path().string() + " --output " + (dir_ / preset).string() + " --key " +
        (dir_ / "k.key").string() + " --profile " + preset +
        // MR_small is DERIVED\\SECONDARY, which may show burned-in text: this test is about
        // header validity, so it is released as the operator would after checking it.
        " --allow-burned-in-annotation --no-progress --json");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const auto report = nlohmann::json::parse(run.output.substr(run.output.find('{')));
    ASSERT_EQ(report["counts"]["written"], inputs.size());
    std::set<std::string> before;
    for (const auto& in : inputs)
      for (const auto& e : dciodvfy_errors(in)) before.insert(e);
    for (const auto& [name, bytes] : tree(dir_ / preset)) {
      for (const auto& e : dciodvfy_errors(dir_ / preset / name))
        EXPECT_TRUE(before.count(e)) << preset << " output " << name << " has a new error: " << e;
    }
  }
}

}  // namespace
}  // namespace radguard

namespace radguard {
namespace {

TEST_F(DeidBatch, SignsWhatItReleasesSoTamperingIsDetected) {
  const std::string key = (dir_ / "sign.pem").string(), cert = (dir_ / "cert.pem").string();
  ASSERT_EQ(run_command("keys new --key " + key + " --cert " + cert).exit_code, 0);
  const CommandRun run =
      run_command(deid(dir_ / "signed", "--sign-key " + key + " --sign-cert " + cert));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const CommandRun verified =
      run_command("verify " + (dir_ / "signed").string() + " --trust " + cert);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  // Half a signing pair is a usage error, and nothing is written.
  EXPECT_EQ(run_command(deid(dir_ / "half", "--sign-key " + key)).exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "half") && !std::filesystem::is_empty(dir_ / "half"));
}

}  // namespace
}  // namespace radguard
