// radguard serve's guards on their own (src/serve/guard.*): Host, Origin, token, upload names
// and zip entries. The server itself is tested over HTTP by serve_api_test.sh and in a real
// browser by serve_e2e_test.sh.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "serve/guard.hpp"
#include "serve/jobs.hpp"
#include "support/fixtures.hpp"

namespace radguard::serve {
namespace {

namespace fs = std::filesystem;

TEST(ServeGuard, HostOnlyLoopbackNamesWithThePort) {
  EXPECT_TRUE(host_allowed("127.0.0.1:8080", 8080));
  EXPECT_TRUE(host_allowed("localhost:8080", 8080));
  EXPECT_TRUE(host_allowed("LocalHost:8080", 8080));
  EXPECT_FALSE(host_allowed("127.0.0.1:8081", 8080));
  EXPECT_FALSE(host_allowed("127.0.0.1", 8080));
  EXPECT_FALSE(host_allowed("", 8080));
  EXPECT_FALSE(host_allowed("evil.example:8080", 8080));  // DNS rebinding
  EXPECT_FALSE(host_allowed("localhost.evil.example:8080", 8080));
  EXPECT_FALSE(host_allowed("[::1]:8080", 8080));
  EXPECT_FALSE(host_allowed("0.0.0.0:8080", 8080));
}

TEST(ServeGuard, OriginAbsentOrThisServer) {
  EXPECT_TRUE(origin_allowed("", 8080));
  EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", 8080));
  EXPECT_TRUE(origin_allowed("http://localhost:8080", 8080));
  EXPECT_FALSE(origin_allowed("null", 8080));
  EXPECT_FALSE(origin_allowed("https://127.0.0.1:8080", 8080));
  EXPECT_FALSE(origin_allowed("http://127.0.0.1:9999", 8080));
  EXPECT_FALSE(origin_allowed("http://evil.example", 8080));
  EXPECT_TRUE(fetch_site_allowed(""));
  EXPECT_TRUE(fetch_site_allowed("same-origin"));
  EXPECT_TRUE(fetch_site_allowed("none"));
  EXPECT_FALSE(fetch_site_allowed("cross-site"));
  EXPECT_FALSE(fetch_site_allowed("same-site"));
}

TEST(ServeGuard, Token) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(same_token(token, token));
  EXPECT_FALSE(same_token("", token));
  EXPECT_FALSE(same_token(token.substr(0, 31), token));
  EXPECT_FALSE(same_token(token + "0", token));
  EXPECT_FALSE(same_token("1123456789abcdef0123456789abcdef", token));
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(cookie_value("a=1; radguard_token=xyz; b=2", "radguard_token"), "xyz");
  EXPECT_EQ(cookie_value("radguard_token_x=1", "radguard_token"), "");
  EXPECT_EQ(cookie_value("", "radguard_token"), "");
}

TEST(ServeGuard, UploadNames) {
  EXPECT_TRUE(upload_name_allowed("IM0001"));
  EXPECT_TRUE(upload_name_allowed("CD/DICOM/S1/I1"));
  EXPECT_TRUE(upload_name_allowed("a..b/c"));
  for (const char* bad : {"", "/etc/passwd", "\\x", "C:\\x", "c:x", "..", "../x", "a/../b",
                          "a\\..\\b", "a/..", "x\ny"})
    EXPECT_FALSE(upload_name_allowed(bad)) << bad;
  EXPECT_FALSE(upload_name_allowed(std::string(2000, 'a')));
}

struct WriteCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};

// A zip with the given entries (name, content); a negative content size marks a symlink.
void make_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& files,
              const std::string& symlink = {}) {
  std::unique_ptr<archive, WriteCloser> w(archive_write_new());
  archive_write_set_format_zip(w.get());
  ASSERT_EQ(archive_write_open_filename(w.get(), path.c_str()), ARCHIVE_OK);
  auto add = [&](const std::string& name, const std::string& content, bool link) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    if (link) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, "/etc/passwd");
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    }
    archive_entry_set_perm(e, 0644);
    archive_write_header(w.get(), e);
    if (!link) archive_write_data(w.get(), content.data(), content.size());
    archive_entry_free(e);
  };
  for (const auto& [name, content] : files) add(name, content, false);
  if (!symlink.empty()) add(symlink, "", true);
  archive_write_close(w.get());
}

TEST(ServeGuard, ZipEntriesThatClimbOutLinksAndBombsAreRefused) {
  testing::TempDir dir;
  make_zip(dir / "ok.zip", {{"CD/DICOM/I1", "x"}, {"README.TXT", "y"}});
  EXPECT_TRUE(check_zip(dir / "ok.zip", 100));
  make_zip(dir / "up.zip", {{"ok", "x"}, {"../../evil", "y"}});
  auto up = check_zip(dir / "up.zip", 100);
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code, ErrorCode::policy);
  EXPECT_EQ(up.error().message.find("evil"), std::string::npos) << "a name is quoted";
  make_zip(dir / "abs.zip", {{"/tmp/evil", "y"}});
  EXPECT_FALSE(check_zip(dir / "abs.zip", 100));
  make_zip(dir / "link.zip", {{"ok", "x"}}, "link");
  EXPECT_FALSE(check_zip(dir / "link.zip", 100));
  make_zip(dir / "big.zip", {{"a", std::string(80, 'a')}, {"b", std::string(80, 'b')}});
  EXPECT_FALSE(check_zip(dir / "big.zip", 100));
  EXPECT_TRUE(check_zip(dir / "big.zip", 200));
  std::ofstream(dir / "junk.zip") << "PK\x03\x04 not really";
  EXPECT_FALSE(check_zip(dir / "junk.zip", 100));
}

TEST(ServeJobs, FoldersArePrivateAndGoWithTheJobAndTheStore) {
  testing::TempDir dir;
  fs::path root;
  {
    JobStoreOptions options;
    options.parent = dir.path();
    options.max_jobs = 2;
    auto store = JobStore::create(options);
    ASSERT_TRUE(store);
    root = (*store)->root();
    EXPECT_EQ(fs::status(root).permissions() & fs::perms::all, fs::perms::owner_all);
    auto a = (*store)->create_job();
    auto b = (*store)->create_job();
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(valid_job_id(*a));
    EXPECT_NE(*a, *b);
    EXPECT_FALSE((*store)->create_job()) << "more than max_jobs";
    const auto input = (*store)->input_folder(*a);
    ASSERT_TRUE(input);
    EXPECT_EQ(fs::status(input->parent_path()).permissions() & fs::perms::all,
              fs::perms::owner_all);
    std::ofstream(*input / "f000001") << "not DICOM";
    ASSERT_TRUE((*store)->start(*a));
    EXPECT_FALSE((*store)->input_folder(*a)) << "no more files once started";
    EXPECT_TRUE((*store)->remove(*b));
    EXPECT_FALSE((*store)->remove(*b));
    EXPECT_FALSE((*store)->status_json(*b));
    EXPECT_FALSE((*store)->result_zip(*a));  // not done (or failed: nothing to share)
    EXPECT_FALSE((*store)->preview(*a, "../../etc/passwd"));
  }
  EXPECT_FALSE(fs::exists(root)) << "the store's folder outlived it";
}

}  // namespace
}  // namespace radguard::serve
