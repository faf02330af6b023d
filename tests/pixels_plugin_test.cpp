// The pixel plugin (src/pixels/pixels.hpp, docs/ARCHITECTURE.md "Start-up: the pixel plugin"):
// radguard starts without OpenCV or Tesseract, loads them only for pixel work, and fails closed
// when the plugin is missing.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <string>

#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/process.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::BurnedFrame;
using testing::Colour;
using testing::TempDir;

// Runs radguard with `env` before it (VAR=value ...); stdout and stderr together.
std::string run(const std::string& env, const std::string& args, int& exit_code) {
  return testing::run_shell(env + " " + std::string(RADGUARD_BINARY) + " " + args + " 2>&1",
                            exit_code);
}

BurnedFrame screen_with_a_name() {
  BurnedFrame f;
  f.texts = {{"DOE", {8, 22}, cv::FONT_HERSHEY_SIMPLEX, 0.6, 1, 255, true},
             {"PID12345", {8, 48}, cv::FONT_HERSHEY_DUPLEX, 0.55, 1, 255, true}};
  return f;
}

// The commands that never touch pixels load none of OpenCV, Tesseract or their libraries:
// the dynamic loader's own trace (LD_DEBUG=files) names every object it opens.
TEST(PixelPlugin, CommandsWithoutPixelWorkNeverLoadOpenCvOrTesseract) {
  TempDir dir;
  int code = -1;
  const std::string version = run("LD_DEBUG=files", "--version", code);
  EXPECT_EQ(code, 0) << version;
  EXPECT_EQ(version.find("libopencv"), std::string::npos) << version;
  EXPECT_EQ(version.find("libtesseract"), std::string::npos);
  EXPECT_EQ(version.find("radguard-pixels"), std::string::npos);

  auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9.61", 16, 16, 1);
  testing::save(*ct, dir / "in" / "ct.dcm");
  testing::write_key_file(dir / "key");
  const std::string deid = run("LD_DEBUG=files",
                               "deid " + (dir / "in").string() + " -o " + (dir / "out").string() +
                                   " -k " + (dir / "key").string() + " --no-progress",
                               code);
  EXPECT_EQ(code, 0) << deid;
  EXPECT_EQ(deid.find("libopencv"), std::string::npos);
  EXPECT_EQ(deid.find("libtesseract"), std::string::npos);
  EXPECT_EQ(deid.find("radguard-pixels"), std::string::npos);
}

// Pixel work with the plugin missing: the image that needs its pixels checked fails (nothing
// is released unchecked) and the error names the missing plugin; the CT, whose pixels need no
// work, is still de-identified. `radguard redact` refuses the whole run.
TEST(PixelPlugin, MissingPluginFailsClosed) {
  TempDir dir;
  auto us = testing::make_burned_in({screen_with_a_name()}, Colour::monochrome2,
                                    "1.2.826.0.1.3680043.2.1125.9.62");
  testing::save(*us, dir / "in" / "us.dcm");
  auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9.63", 16, 16, 1);
  testing::save(*ct, dir / "in" / "ct.dcm");
  testing::write_key_file(dir / "key");
  const std::string missing = "RADGUARD_PIXELS=" + (dir / "nowhere" / "radguard-pixels.so").string();
  int code = -1;
  const std::string deid =
      run(missing, "deid " + (dir / "in").string() + " -o " + (dir / "out").string() + " -k " +
                       (dir / "key").string() + " --option clean-pixel-data --no-progress --json",
          code);
  EXPECT_EQ(code, 1) << deid;
  EXPECT_NE(deid.find("pixel support (radguard-pixels.so) is not available"), std::string::npos)
      << deid;
  std::size_t released = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out")) {
    if (!entry.is_regular_file() || entry.path().extension() != ".dcm") continue;
    ++released;
    auto file = testing::load(entry.path());
    EXPECT_NE(testing::value(*file, "Modality"), "US") << "an unchecked ultrasound was released";
  }
  EXPECT_EQ(released, 1U) << "the CT needs no pixel work";

  const std::string redact = run(missing,
                                 "redact " + (dir / "in").string() + " --output " +
                                     (dir / "redacted").string() + " --no-progress",
                                 code);
  EXPECT_NE(code, 0) << redact;
  EXPECT_NE(redact.find("radguard-pixels.so"), std::string::npos) << redact;
  EXPECT_FALSE(fs::exists(dir / "redacted" / "1.2.826.0.1.3680043.2.1125.9.62.dcm"));
}

// The gateway, whose workers have no batch around them: an image that needs pixel work is
// quarantined with the plugin's reason and the gateway goes on (an exception from deep inside
// the redactor once ended it, and again at every restart, the instance still in its spool).
TEST(PixelPlugin, MissingPluginQuarantinesInTheGatewayWhichGoesOn) {
  TempDir dir;
  auto us = testing::make_burned_in({screen_with_a_name()}, Colour::monochrome2,
                                    "1.2.826.0.1.3680043.2.1125.9.65");
  testing::save(*us, dir / "in" / "us.dcm");
  auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9.66", 16, 16, 1);
  testing::save(*ct, dir / "in" / "ct.dcm");
  testing::write_key_file(dir / "key");
  const std::string d = dir.path().string();
  const std::string script =
      "cd " + d + " && port=$(python3 -c 'import socket; s=socket.socket(); "
      "s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])') && "
      "(RADGUARD_PIXELS=" + d + "/nowhere.so " + RADGUARD_BINARY +
      " gateway --listen $port --ae-title RGTEST --spool spool --output out -k key "
      "--option clean-pixel-data >gw.log 2>&1 & echo $! >gw.pid) && "
      "for i in $(seq 100); do echoscu -aec RGTEST 127.0.0.1 $port >/dev/null 2>&1 && break; "
      "sleep 0.2; done; TCP_NODELAY=1 storescu -aec RGTEST 127.0.0.1 $port in/us.dcm in/ct.dcm; "
      "for i in $(seq 300); do [ -n \"$(find out -name '*.dcm' 2>/dev/null)\" ] && "
      "[ -n \"$(find spool/quarantine -name '*.txt' 2>/dev/null)\" ] && break; sleep 0.2; done; "
      "sleep 1; kill -0 $(cat gw.pid) && echo GATEWAY-ALIVE; kill $(cat gw.pid); "
      "cat spool/quarantine/*.txt";
  {
    std::ofstream(dir / "run.sh") << script << "\n";
  }
  FILE* pipe = popen(("bash " + (dir / "run.sh").string() + " 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string log;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) log.append(buffer, n);
  pclose(pipe);
  EXPECT_NE(log.find("GATEWAY-ALIVE"), std::string::npos) << log;
  EXPECT_NE(log.find("pixel support (radguard-pixels.so) is not available"), std::string::npos)
      << log;
  std::size_t released = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "out")) {
    if (!entry.is_regular_file() || entry.path().extension() != ".dcm") continue;
    ++released;
    EXPECT_NE(testing::value(*testing::load(entry.path()), "Modality"), "US") << log;
  }
  EXPECT_EQ(released, 1U) << log;
}

// A file that is not a radguard plugin (or one of another build) is refused the same way.
TEST(PixelPlugin, AForeignLibraryIsNotLoadedAsThePlugin) {
  TempDir dir;
  auto us = testing::make_burned_in({screen_with_a_name()}, Colour::monochrome2,
                                    "1.2.826.0.1.3680043.2.1125.9.64");
  testing::save(*us, dir / "in" / "us.dcm");
  // libz is a real shared library without the plugin's entry point.
  const fs::path foreign = "/lib/x86_64-linux-gnu/libz.so.1";
  if (!fs::exists(foreign)) GTEST_SKIP() << foreign << " not found on this machine";
  int code = -1;
  const std::string redact = run("RADGUARD_PIXELS=" + foreign.string(),
                                 "redact " + (dir / "in").string() + " --output " +
                                     (dir / "redacted").string() + " --no-progress",
                                 code);
  EXPECT_NE(code, 0) << redact;
  EXPECT_NE(redact.find("is not a radguard pixel plugin"), std::string::npos) << redact;
}

}  // namespace
}  // namespace radguard
