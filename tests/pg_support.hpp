#pragma once
// Store tests on both backends (TEST_P over store::Backend): each test gets fresh store
// targets, SQLite files in a scratch folder or schemas of their own on the PostgreSQL test
// server that tests/pg/start_server.sh starts (ctest fixture `pg`). The server is named by
// RADGUARD_TEST_PG (a libpq key=value connection string) or by the file RADGUARD_TEST_PG_FILE
// holds it in. PostgreSQL cases skip, saying why, only where no server was given or the
// fixture found no server binaries; a server that was given but cannot be reached fails.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "store/database.hpp"
#include "test_util.hpp"

namespace radguard::testing {

// The test server's connection string; nullopt with `why` when there is none.
inline std::optional<std::string> pg_conninfo(std::string& why) {
  if (const char* direct = std::getenv("RADGUARD_TEST_PG"); direct != nullptr && *direct != 0)
    return std::string(direct);
  const char* file = std::getenv("RADGUARD_TEST_PG_FILE");
  if (file == nullptr || *file == 0) {
    why =
        "no PostgreSQL test server: set RADGUARD_TEST_PG to a libpq connection string (ctest "
        "starts one with tests/pg/start_server.sh)";
    return std::nullopt;
  }
  const std::string path(file);
  const std::string skip_file = path.substr(0, path.find_last_of('/') + 1) + "skip";
  if (std::ifstream skip(skip_file); skip) {
    std::getline(skip, why);
    return std::nullopt;
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    why = "the PostgreSQL test server's connection file " + path +
          " is missing (did the fixture pg.start fail?)";
    return std::nullopt;
  }
  return line;
}

inline std::string backend_label(const ::testing::TestParamInfo<store::Backend>& info) {
  return info.param == store::Backend::sqlite ? "sqlite" : "postgresql";
}

class StoreTest : public ::testing::TestWithParam<store::Backend> {
 protected:
  void SetUp() override {
    if (GetParam() != store::Backend::postgresql) return;
    std::string why;
    auto conninfo = pg_conninfo(why);
    if (!conninfo) GTEST_SKIP() << why;
    conninfo_ = *conninfo;
  }

  void TearDown() override {
    if (schemas_.empty()) return;
    auto db = store::open("postgres:" + conninfo_, store::OpenMode::existing);
    if (!db) return;
    for (const auto& schema : schemas_)
      (void)(*db)->exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  }

  bool postgresql() const { return GetParam() == store::Backend::postgresql; }

  // A store target named `name`, the same one for the same name within a test: a file in
  // the scratch folder, or a "postgres:" target whose search_path is a fresh schema.
  std::string target(const std::string& name) {
    if (!postgresql()) return (dir_ / name).string();
    if (auto it = targets_.find(name); it != targets_.end()) return it->second;
    std::random_device rd;
    const std::string schema = "t" + std::to_string(rd()) + "_" + std::to_string(rd());
    auto db = store::open("postgres:" + conninfo_, store::OpenMode::existing);
    EXPECT_TRUE(db) << db.error().message;
    if (!db) return {};
    auto made = (*db)->exec("CREATE SCHEMA " + schema);
    EXPECT_TRUE(made) << made.error().message;
    schemas_.push_back(schema);
    const std::string t = "postgres:" + conninfo_ + " options='-c search_path=" + schema + "'";
    targets_.emplace(name, t);
    return t;
  }

  // A plain connection to a target, as an administrator (or an attacker) would use.
  std::unique_ptr<store::Database> raw(const std::string& name) {
    auto db = store::open(target(name), store::OpenMode::create);
    EXPECT_TRUE(db) << db.error().message;
    return db ? std::move(*db) : nullptr;
  }

  ScratchDir dir_;

 private:
  std::string conninfo_;
  std::vector<std::string> schemas_;
  std::map<std::string, std::string> targets_;
};

}  // namespace radguard::testing
