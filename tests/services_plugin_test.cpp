// The services plugin (src/services/services.hpp; docs/ARCHITECTURE.md, "Start-up: the
// services plugin"):
// radguard starts without libpq or DCMTK's network and TLS libraries, loads them only for a
// PostgreSQL store or DICOM networking, and fails closed when the plugin is missing.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "support/fixtures.hpp"
#include "support/process.hpp"

namespace radguard {
namespace {

using testing::TempDir;

// Runs radguard with `env` before it (VAR=value ...); stdout and stderr together.
std::string run(const std::string& env, const std::string& args, int& exit_code) {
  return testing::run_shell(env + " " + std::string(RADGUARD_BINARY) + " " + args + " 2>&1",
                            exit_code);
}

// What the dynamic loader's trace (LD_DEBUG=files) shows being opened, for the libraries
// that belong in the plugin.
void expect_no_service_library(const std::string& trace) {
  for (const char* name : {"libpq", "libkrb5", "libldap", "libdcmnet", "libdcmtls",
                           "radguard-services"}) {
    EXPECT_EQ(trace.find(name), std::string::npos) << name << " loaded:\n" << trace;
  }
}

// No PostgreSQL store, no network: neither the plugin nor libpq, Kerberos, LDAP or DCMTK's
// network libraries are opened.
TEST(ServicesPlugin, CommandsWithoutServicesNeverLoadThem) {
  TempDir dir;
  int code = -1;
  const std::string version = run("LD_DEBUG=files", "--version", code);
  EXPECT_EQ(code, 0) << version;
  expect_no_service_library(version);

  auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.9.71", 16, 16, 1);
  testing::save(*ct, dir / "in" / "ct.dcm");
  testing::write_key_file(dir / "key");
  const std::string deid = run("LD_DEBUG=files",
                               "deid " + (dir / "in").string() + " -o " + (dir / "out").string() +
                                   " -k " + (dir / "key").string() + " --no-progress",
                               code);
  EXPECT_EQ(code, 0) << deid;
  expect_no_service_library(deid);
}

// A PostgreSQL ledger loads the plugin (every symbol it needs resolves: RTLD_NOW) and reaches
// libpq: the failure is the server's (nothing listens on port 1), not a missing plugin.
TEST(ServicesPlugin, PostgresqlStoreLoadsThePlugin) {
  int code = -1;
  const std::string out =
      run("LD_DEBUG=files",
          "ledger verify --ledger 'postgresql://127.0.0.1:1/none?connect_timeout=5'", code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("radguard-services.so"), std::string::npos) << out;
  EXPECT_NE(out.find("libpq"), std::string::npos) << out;
  EXPECT_EQ(out.find("is not available"), std::string::npos) << out;
}

// The plugin missing: a PostgreSQL ledger and a gateway are refused with a message that names
// the plugin; nothing crashes.
TEST(ServicesPlugin, MissingPluginFailsClosed) {
  TempDir dir;
  const std::string missing = "RADGUARD_SERVICES=" + (dir / "nowhere.so").string();
  int code = -1;
  const std::string ledger =
      run(missing, "ledger verify --ledger 'postgresql://127.0.0.1:1/none'", code);
  EXPECT_NE(code, 0) << ledger;
  EXPECT_LT(code, 128) << ledger;  // an error, not a signal
  EXPECT_NE(ledger.find("(radguard-services.so) is not available"), std::string::npos) << ledger;

  testing::write_key_file(dir / "key");
  // timeout: should the gateway ever start without the plugin, the test fails, not hangs.
  const std::string gateway =
      run("timeout 60 env " + missing,
          "gateway --listen 47113 --ae-title RGTEST --forward PACS@127.0.0.1:47114 --spool " +
              (dir / "spool").string() + " --output " + (dir / "out").string() + " -k " +
              (dir / "key").string(),
          code);
  EXPECT_NE(code, 0) << gateway;
  EXPECT_LT(code, 128) << gateway;
  EXPECT_NE(gateway.find("(radguard-services.so) is not available"), std::string::npos)
      << gateway;
}

}  // namespace
}  // namespace radguard
