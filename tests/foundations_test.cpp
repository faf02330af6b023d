// Unit tests that mirror the foundations every capability stands on: atomic publishing
// (PendingFile), crypto and the key file, pseudonym formats, the batch machinery, the SQLite
// wrapper and the table generator. Each test states a contract of the header it exercises,
// including what happens on failure; none needs DCMTK.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch/batch.hpp"
#include "core/atomic_file.hpp"
#include "core/group_commit.hpp"
#include "core/text.hpp"
#include "core/warning.hpp"
#include "crypto/crypto.hpp"
#include "pseudonym/pseudonymizer.hpp"
#include "sqlite/sqlite.hpp"
#include "standard/tags.hpp"
#include "test_util.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void spit(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

fs::perms mode_of(const fs::path& path) { return fs::status(path).permissions() & fs::perms::mask; }

// Names in `folder` that start with the temporary prefix.
std::vector<std::string> temporaries_in(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".radguard-tmp-")) names.push_back(name);
  }
  return names;
}

// A process id that existed and no longer does (a reaped child).
int dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<int>(child);
}

// ---------------------------------------------------------------------------------------
// PendingFile: reserve, write, check, fsync, rename; failures leave nothing behind.

TEST(PendingFile, ReservesANameBesideTheDestinationWithoutCreatingTheFile) {
  ScratchDir dir;
  const fs::path destination = dir / "new" / "folder" / "out.dcm";
  auto pending = PendingFile::create(destination);
  ASSERT_TRUE(pending) << pending.error().message;
  EXPECT_TRUE(fs::is_directory(dir / "new" / "folder"));  // the folder is made
  EXPECT_EQ(pending->temp_path().parent_path(), destination.parent_path());
  EXPECT_TRUE(pending->temp_path().filename().string().starts_with(".radguard-tmp-"));
  EXPECT_FALSE(fs::exists(pending->temp_path()));  // the writer creates it
  EXPECT_EQ(pending->destination(), destination);
  auto other = PendingFile::create(destination);
  ASSERT_TRUE(other);
  EXPECT_NE(other->temp_path(), pending->temp_path());  // every reservation is unique
}

TEST(PendingFile, CommitPublishesTheBytesAndLeavesNoTemporary) {
  ScratchDir dir;
  const fs::path destination = dir / "out.bin";
  auto pending = PendingFile::create(destination);
  ASSERT_TRUE(pending);
  spit(pending->temp_path(), "payload");
  ASSERT_TRUE(pending->commit());
  EXPECT_EQ(slurp(destination), "payload");
  EXPECT_TRUE(temporaries_in(dir.path()).empty());
  EXPECT_TRUE(pending->temp_path().empty());  // the object owns nothing after success
}

TEST(PendingFile, AnUncommittedFileIsRemovedWhenTheObjectDies) {
  ScratchDir dir;
  fs::path temp;
  {
    auto pending = PendingFile::create(dir / "out.bin");
    ASSERT_TRUE(pending);
    temp = pending->temp_path();
    spit(temp, "half written");
    ASSERT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(dir / "out.bin"));
}

TEST(PendingFile, AMovedFromObjectNoLongerOwnsTheFile) {
  ScratchDir dir;
  auto pending = PendingFile::create(dir / "out.bin");
  ASSERT_TRUE(pending);
  spit(pending->temp_path(), "x");
  const fs::path temp = pending->temp_path();
  {
    PendingFile moved(std::move(*pending));
    EXPECT_EQ(moved.temp_path(), temp);
    { PendingFile dropped = std::move(*pending); }  // the emptied one must not remove it
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));  // the owner's destructor does
}

TEST(PendingFile, AnEmptyOrMissingWrittenFileIsAFailedWriteNotAnOutput) {
  ScratchDir dir;
  auto empty = PendingFile::create(dir / "empty.bin");
  ASSERT_TRUE(empty);
  spit(empty->temp_path(), "");
  const auto empty_commit = empty->commit();
  ASSERT_FALSE(empty_commit);
  EXPECT_EQ(empty_commit.error().code, ErrorCode::io);
  EXPECT_NE(empty_commit.error().message.find("empty"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "empty.bin"));

  auto missing = PendingFile::create(dir / "missing.bin");
  ASSERT_TRUE(missing);
  const auto missing_commit = missing->commit();  // the writer never created it
  ASSERT_FALSE(missing_commit);
  EXPECT_EQ(missing_commit.error().code, ErrorCode::io);
  EXPECT_FALSE(fs::exists(dir / "missing.bin"));
}

TEST(PendingFile, KeepIfDifferentAcceptsAnIdenticalRerunAndRefusesAConflict) {
  ScratchDir dir;
  const fs::path destination = dir / "out.bin";
  spit(destination, "first");
  {
    auto same = PendingFile::create(destination);
    ASSERT_TRUE(same);
    spit(same->temp_path(), "first");
    EXPECT_TRUE(same->commit(std::nullopt, PendingFile::Existing::keep_if_different));
  }
  {
    auto different = PendingFile::create(destination);
    ASSERT_TRUE(different);
    spit(different->temp_path(), "second");
    const auto status = different->commit(std::nullopt, PendingFile::Existing::keep_if_different);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().code, ErrorCode::conflict);
    // A same-sized file that differs in one byte is a conflict too.
    auto same_size = PendingFile::create(destination);
    ASSERT_TRUE(same_size);
    spit(same_size->temp_path(), "firsT");
    EXPECT_EQ(
        same_size->commit(std::nullopt, PendingFile::Existing::keep_if_different).error().code,
        ErrorCode::conflict);
  }
  EXPECT_EQ(slurp(destination), "first");           // never replaced
  EXPECT_TRUE(temporaries_in(dir.path()).empty());  // and nothing left behind
}

TEST(PendingFile, ReplaceReplacesAndPermissionsAreApplied) {
  ScratchDir dir;
  const fs::path destination = dir / "out.bin";
  spit(destination, "old");
  auto pending = PendingFile::create(destination);
  ASSERT_TRUE(pending);
  spit(pending->temp_path(), "new");
  ASSERT_TRUE(pending->commit(fs::perms::owner_read | fs::perms::owner_write));
  EXPECT_EQ(slurp(destination), "new");
  EXPECT_EQ(mode_of(destination), fs::perms::owner_read | fs::perms::owner_write);
}

TEST(PendingFile, DeferredFolderSyncStillPublishesAndSyncFolderReportsFailures) {
  ScratchDir dir;
  auto pending = PendingFile::create(dir / "out.bin");
  ASSERT_TRUE(pending);
  spit(pending->temp_path(), "x");
  ASSERT_TRUE(pending->commit(std::nullopt, PendingFile::Existing::replace,
                              PendingFile::FolderSync::deferred));
  EXPECT_TRUE(fs::exists(dir / "out.bin"));
  EXPECT_TRUE(sync_folder(dir.path()));
  const auto missing = sync_folder(dir / "no-such-folder");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::io);
}

// Counts PendingFile's flushes of file bytes (set_file_flush_fault_for_testing) while alive;
// with `fail`, each one fails instead.
class FileFlushCounter {
 public:
  enum class Outcome : std::uint8_t { succeed, fail };
  explicit FileFlushCounter(Outcome outcome = Outcome::succeed) {
    set_file_flush_fault_for_testing([this, outcome](const fs::path&) -> Status {
      count_.fetch_add(1);
      if (outcome == Outcome::fail) return fail(ErrorCode::io, "injected flush failure");
      return {};
    });
  }
  ~FileFlushCounter() { set_file_flush_fault_for_testing({}); }
  FileFlushCounter(const FileFlushCounter&) = delete;
  FileFlushCounter& operator=(const FileFlushCounter&) = delete;
  int count() const { return count_.load(); }

 private:
  std::atomic<int> count_{0};
};

// Each published file is flushed once: by flush() (a writer flushing outside its lock) or
// write_contents(), never again by commit(); a file nobody flushed is flushed by commit().
TEST(PendingFile, AFileIsFlushedOnceWhoeverFlushesIt) {
  ScratchDir dir;
  {
    const FileFlushCounter flushes;
    auto pending = PendingFile::create(dir / "flushed.bin");
    ASSERT_TRUE(pending);
    spit(pending->temp_path(), "payload");
    ASSERT_TRUE(pending->flush());
    EXPECT_EQ(flushes.count(), 1);
    PendingFile moved(std::move(*pending));  // the flush is the file's, wherever it goes
    ASSERT_TRUE(moved.commit());
    EXPECT_EQ(flushes.count(), 1);
    EXPECT_EQ(slurp(dir / "flushed.bin"), "payload");

    auto unflushed = PendingFile::create(dir / "unflushed.bin");
    ASSERT_TRUE(unflushed);
    spit(unflushed->temp_path(), "payload");
    ASSERT_TRUE(unflushed->commit());
    EXPECT_EQ(flushes.count(), 2);

    ASSERT_TRUE(write_file_atomically(dir / "whole.bin", "payload", fs::perms::owner_read));
    EXPECT_EQ(flushes.count(), 3);
  }
  {
    // A failed flush publishes nothing and leaves the file to be flushed again.
    const FileFlushCounter failing(FileFlushCounter::Outcome::fail);
    auto pending = PendingFile::create(dir / "failed.bin");
    ASSERT_TRUE(pending);
    spit(pending->temp_path(), "payload");
    const auto flushed = pending->flush();
    ASSERT_FALSE(flushed);
    EXPECT_EQ(flushed.error().code, ErrorCode::io);
    EXPECT_FALSE(pending->commit());
    EXPECT_EQ(failing.count(), 2);
    EXPECT_FALSE(fs::exists(dir / "failed.bin"));
  }
  auto never_written = PendingFile::create(dir / "never.bin");
  ASSERT_TRUE(never_written);
  EXPECT_FALSE(never_written->flush());  // no file to flush: an I/O error, not a success
}

TEST(PendingFile, ARenameThatFailsIsAnIoErrorAndTheTemporaryIsCleanedUp) {
  ScratchDir dir;
  const fs::path destination = dir / "taken";
  fs::create_directories(destination / "child");  // a non-empty folder cannot be replaced
  {
    auto pending = PendingFile::create(destination);
    ASSERT_TRUE(pending);
    spit(pending->temp_path(), "bytes");
    const auto replaced = pending->commit();
    ASSERT_FALSE(replaced);
    EXPECT_EQ(replaced.error().code, ErrorCode::io);
  }
  EXPECT_TRUE(fs::is_directory(destination / "child"));
  EXPECT_TRUE(temporaries_in(dir.path()).empty());
}

TEST(PendingFile, CreateFailsWhenTheFolderCannotBeMade) {
  ScratchDir dir;
  spit(dir / "file", "not a folder");
  const auto pending = PendingFile::create(dir / "file" / "out.bin");
  ASSERT_FALSE(pending);
  EXPECT_EQ(pending.error().code, ErrorCode::io);
}

// The group commit: every file of the group published whole (new folders included), each
// judged on its own (an empty one, a conflict, a folder in the way fail alone), and nothing
// temporary left behind.
TEST(PendingFile, AGroupCommitPublishesEachFileAndFailsOnlyTheBadOnes) {
  ScratchDir dir;
  spit(dir / "same.bin", "same");
  spit(dir / "other.bin", "before");
  fs::create_directories(dir / "taken" / "child");
  const std::vector<FileToWrite> files = {
      {dir / "a" / "b" / "one.bin", "one"},
      {dir / "a" / "c" / "two.bin", "two"},
      {dir / "empty.bin", ""},
      {dir / "same.bin", "same"},     // an identical rerun
      {dir / "other.bin", "after"},   // a conflict
      {dir / "taken", "in the way"},  // a folder cannot be replaced
  };
  const auto statuses = write_files_atomically(dir.path(), files, fs::perms::owner_read |
                                                                      fs::perms::owner_write,
                                               PendingFile::Existing::keep_if_different);
  ASSERT_EQ(statuses.size(), files.size());
  EXPECT_TRUE(statuses[0] && statuses[1] && statuses[3]);
  EXPECT_EQ(slurp(dir / "a" / "b" / "one.bin"), "one");
  EXPECT_EQ(slurp(dir / "a" / "c" / "two.bin"), "two");
  EXPECT_EQ(mode_of(dir / "a" / "b" / "one.bin") & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  ASSERT_FALSE(statuses[2]);
  EXPECT_EQ(statuses[2].error().code, ErrorCode::io);
  EXPECT_FALSE(fs::exists(dir / "empty.bin"));
  ASSERT_FALSE(statuses[4]);
  EXPECT_EQ(statuses[4].error().code, ErrorCode::conflict);
  EXPECT_EQ(slurp(dir / "other.bin"), "before");
  ASSERT_FALSE(statuses[5]);
  EXPECT_TRUE(fs::is_directory(dir / "taken" / "child"));
  for (const fs::path& folder : {dir.path(), dir / "a" / "b", dir / "a" / "c", dir / "taken"})
    EXPECT_TRUE(temporaries_in(folder).empty()) << folder;
  // Replace: the new bytes win. A root that does not exist fails every file.
  const std::vector<FileToWrite> again = {{dir / "other.bin", "after"}};
  EXPECT_TRUE(write_files_atomically(dir.path(), again, fs::perms::owner_read |
                                                            fs::perms::owner_write,
                                     PendingFile::Existing::replace)
                  .front());
  EXPECT_EQ(slurp(dir / "other.bin"), "after");
}

// A folder flush that fails fails every file that needed it (its own folder, or the parent of
// a folder made for it) and no other; each distinct folder is flushed once.
TEST(PendingFile, AFailedFolderFlushFailsTheFilesThatNeededIt) {
  ScratchDir dir;
  fs::create_directories(dir / "kept");
  std::vector<fs::path> flushed;
  set_folder_flush_fault_for_testing([&](const fs::path& folder) -> Status {
    flushed.push_back(folder);
    if (folder == dir / "bad") return fail(ErrorCode::io, "injected");
    return {};
  });
  const std::vector<FileToWrite> files = {
      {dir / "kept" / "one.bin", "one"},
      {dir / "kept" / "two.bin", "two"},
      {dir / "bad" / "three.bin", "three"},        // its folder's flush fails
      {dir / "bad" / "new" / "four.bin", "four"},  // its new folder's parent is bad/
  };
  const auto statuses = write_files_atomically(dir.path(), files, fs::perms::owner_read |
                                                                      fs::perms::owner_write,
                                               PendingFile::Existing::replace);
  set_folder_flush_fault_for_testing({});
  ASSERT_EQ(statuses.size(), files.size());
  EXPECT_TRUE(statuses[0] && statuses[1]);
  ASSERT_FALSE(statuses[2]);
  EXPECT_EQ(statuses[2].error().code, ErrorCode::io);
  ASSERT_FALSE(statuses[3]);
  EXPECT_EQ(statuses[3].error().code, ErrorCode::io);
  std::ranges::sort(flushed);
  const std::vector<fs::path> expected = {dir.path(), dir / "bad", dir / "bad" / "new",
                                          dir / "kept"};
  EXPECT_EQ(flushed, expected);  // once each: bad/ for three.bin and for new/; the root for bad/
  for (const fs::path& folder : {dir.path(), dir / "kept", dir / "bad", dir / "bad" / "new"})
    EXPECT_TRUE(temporaries_in(folder).empty()) << folder;
}

TEST(StaleTemporaries, OnlyThoseOfDeadProcessesOnThisHostOrOlderThanADayAreStale) {
  ScratchDir dir;
  auto own = PendingFile::create(dir / "a");
  ASSERT_TRUE(own);
  spit(own->temp_path(), "live");
  const std::string own_name = own->temp_path().filename().string();
  // .radguard-tmp-<host>-<pid>-<random>-<n>
  const std::string prefix = ".radguard-tmp-";
  const std::string host = own_name.substr(prefix.size(), 8);
  const fs::path of_dead = dir / (prefix + host + "-" + std::to_string(dead_pid()) + "-ab-0");
  const fs::path of_other_host =
      dir / (prefix + "00000000-" + std::to_string(dead_pid()) + "-ab-1");
  const fs::path old_other_host = dir / (prefix + "00000000-1-ab-2");
  const fs::path of_pid_one = dir / (prefix + host + "-1-ab-3");  // init never dies
  const fs::path garbled = dir / (prefix + host + "-notapid-ab-4");
  const fs::path unrelated = dir / "keep-me.tmp";
  for (const auto& path : {of_dead, of_other_host, old_other_host, of_pid_one, garbled, unrelated})
    spit(path, "x");
  const auto two_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(old_other_host, two_days_ago);
  fs::create_directories(dir / "sub");
  const fs::path nested_dead = dir / "sub" / of_dead.filename();
  spit(nested_dead, "x");

  EXPECT_FALSE(is_stale_temporary(own->temp_path()));  // this process is alive
  EXPECT_TRUE(is_stale_temporary(of_dead));
  EXPECT_FALSE(is_stale_temporary(of_other_host));  // another host's pid says nothing here
  EXPECT_TRUE(is_stale_temporary(old_other_host));
  EXPECT_FALSE(is_stale_temporary(of_pid_one));
  EXPECT_FALSE(is_stale_temporary(garbled));
  EXPECT_FALSE(is_stale_temporary(unrelated));

  EXPECT_EQ(remove_stale_temporaries(dir.path()), 3U);  // dead, old, nested dead
  EXPECT_TRUE(fs::exists(own->temp_path()));
  EXPECT_FALSE(fs::exists(of_dead));
  EXPECT_FALSE(fs::exists(nested_dead));
  EXPECT_FALSE(fs::exists(old_other_host));
  for (const auto& path : {of_other_host, of_pid_one, garbled, unrelated})
    EXPECT_TRUE(fs::exists(path)) << path;
  EXPECT_EQ(remove_stale_temporaries(dir / "no-such-folder"), 0U);
}

// A shard looks only in the folders its files go to (FolderScan::this_folder): not below them.
TEST(StaleTemporaries, ThisFolderLooksInTheFolderAloneNotBelowIt) {
  ScratchDir dir;
  const fs::path old_here = dir / ".radguard-tmp-00000000-1-ab-0";
  const fs::path old_below = dir / "sub" / old_here.filename();
  fs::create_directories(dir / "sub");
  for (const auto& path : {old_here, old_below}) {
    spit(path, "x");
    fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(48));
  }
  EXPECT_EQ(remove_stale_temporaries(dir.path(), FolderScan::this_folder), 1U);
  EXPECT_FALSE(fs::exists(old_here));
  EXPECT_TRUE(fs::exists(old_below));
  EXPECT_EQ(remove_stale_temporaries(dir / "no-such-folder", FolderScan::this_folder), 0U);
  EXPECT_EQ(remove_stale_temporaries(dir.path()), 1U);
  EXPECT_FALSE(fs::exists(old_below));
}

TEST(AtomicWrite, WritesWithTheGivenPermissionsAndAllowsAnIntendedEmptyFile) {
  ScratchDir dir;
  ASSERT_TRUE(write_file_atomically(dir / "secret", "s3cret",
                                    fs::perms::owner_read | fs::perms::owner_write));
  EXPECT_EQ(slurp(dir / "secret"), "s3cret");
  EXPECT_EQ(mode_of(dir / "secret"), fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(write_file_atomically(dir / "secret", "again",
                                    fs::perms::owner_read | fs::perms::owner_write));
  EXPECT_EQ(slurp(dir / "secret"), "again");
  ASSERT_TRUE(write_file_atomically(dir / "empty", "", fs::perms::owner_all));
  EXPECT_TRUE(fs::exists(dir / "empty"));
  EXPECT_EQ(fs::file_size(dir / "empty"), 0U);
  EXPECT_TRUE(temporaries_in(dir.path()).empty());
  spit(dir / "file", "x");
  const auto blocked = write_file_atomically(dir / "file" / "below", "x", fs::perms::owner_all);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::io);
}

TEST(ReadSmallFile, RefusesDevicesFoldersMissingAndOversizedFiles) {
  ScratchDir dir;
  spit(dir / "ten", "0123456789");
  auto ten = read_small_file(dir / "ten");
  ASSERT_TRUE(ten);
  EXPECT_EQ(*ten, "0123456789");
  EXPECT_TRUE(read_small_file(dir / "ten", 10));
  const auto too_big = read_small_file(dir / "ten", 9);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, ErrorCode::io);
  for (const fs::path& bad : {fs::path("/dev/zero"), dir.path(), dir / "missing"}) {
    const auto refused = read_small_file(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::io);
    EXPECT_NE(refused.error().message.find(bad.string()), std::string::npos);
  }
}

TEST(SecretFile, ChecksKindSizeAndWarnsOnceAboutOpenPermissions) {
  ScratchDir dir;
  std::vector<std::string> warnings;
  std::mutex mutex;
  const auto previous = set_warning_sink([&](std::string_view message) {
    const std::lock_guard lock(mutex);
    warnings.emplace_back(message);
  });
  spit(dir / "key", "k");
  fs::permissions(dir / "key", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(check_secret_file(dir / "key", 100));
  EXPECT_TRUE(warnings.empty());
  fs::permissions(dir / "key", fs::perms::others_read, fs::perm_options::add);
  EXPECT_TRUE(check_secret_file(dir / "key", 100));
  EXPECT_TRUE(check_secret_file(dir / "key", 100));
  EXPECT_EQ(warnings.size(), 1U);  // once per file and process
  EXPECT_EQ(check_secret_file(dir / "key", 0).error().code, ErrorCode::key);
  EXPECT_EQ(check_secret_file("/dev/zero", 100).error().code, ErrorCode::key);
  EXPECT_EQ(check_secret_file(dir / "none", 100).error().code, ErrorCode::key);
  set_warning_sink(previous);
}

// ---------------------------------------------------------------------------------------
// The shared text and tag helpers.

TEST(Text, TrimmedRemovesDicomPaddingOnly) {
  EXPECT_EQ(trimmed(std::string_view(" 1.2.3 \0", 8)), "1.2.3");
  EXPECT_EQ(trimmed("DOE^JOHN  "), "DOE^JOHN");
  EXPECT_EQ(trimmed("A B"), "A B");          // inner spaces are content
  EXPECT_EQ(trimmed("\tTAB\t"), "\tTAB\t");  // tabs are not DICOM padding
  EXPECT_EQ(trimmed(std::string_view("\0X", 2)), std::string_view("\0X", 2));  // leading NUL kept
  EXPECT_EQ(trimmed("    "), "");
  EXPECT_EQ(trimmed(""), "");
}

TEST(Text, APatientIdIsNormalisedOneWayEverywhere) {
  EXPECT_EQ(normalised_patient_id("MRN\t"), "MRN");  // a tab is no part of the ID
  EXPECT_EQ(normalised_patient_id(std::string_view(" \tMRN\r\n \0", 9)), "MRN");
  EXPECT_EQ(normalised_patient_id("M R\tN"), "M R\tN");  // inner blanks are content
  EXPECT_EQ(normalised_patient_id(std::string_view("1\0X", 3)), std::string_view("1\0X", 3));
  EXPECT_EQ(normalised_patient_id(" \t "), "");
}

TEST(TagNames, GeneratedFromTheDictionaryByKeyword) {
  static_assert(tags::PatientName == Tag{0x0010, 0x0010});
  static_assert(tags::SOPInstanceUID == Tag{0x0008, 0x0018});
  static_assert(tags::PixelData == Tag{0x7FE0, 0x0010});
  static_assert(tags::DataSetTrailingPadding == Tag{0xFFFC, 0xFFFC});
  EXPECT_EQ(tags::StudyInstanceUID.to_string(), "(0020,000D)");
}

// ---------------------------------------------------------------------------------------
// Crypto: published test vectors, the key file format, domain separation.

std::string hex(const crypto::Digest& d) { return crypto::to_hex(d); }

TEST(Crypto, Sha256AndHmacMatchPublishedVectors) {
  // FIPS 180-2 appendix B.1 and the empty message.
  EXPECT_EQ(hex(crypto::sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(crypto::sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test cases 1 and 2.
  EXPECT_EQ(hex(crypto::hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hex(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, FileDigestEqualsTheDigestOfItsBytesAndAMissingFileFails) {
  ScratchDir dir;
  std::string big(200'000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 251);
  spit(dir / "big", big);  // several read buffers
  const auto digest = crypto::sha256_file(dir / "big");
  ASSERT_TRUE(digest);
  EXPECT_EQ(*digest, crypto::sha256(big));
  spit(dir / "empty", "");
  EXPECT_EQ(*crypto::sha256_file(dir / "empty"), crypto::sha256(""));
  EXPECT_EQ(crypto::sha256_file(dir / "missing").error().code, ErrorCode::io);
}

TEST(Crypto, HexAndRandomBytes) {
  const std::uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(crypto::to_hex(bytes, 4), "000fa0ff");
  EXPECT_EQ(crypto::to_hex(bytes, 0), "");
  const auto a = crypto::random_bytes(32);
  const auto b = crypto::random_bytes(32);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 32U);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(crypto::random_bytes(0)->size(), 0U);
}

constexpr std::string_view kKeyHex =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

TEST(SecretKey, ParsesTheKeyFileFormatWithCommentsBlankLinesAndCrlf) {
  const auto plain = crypto::SecretKey::parse("radguard-key-v1:" + std::string(kKeyHex) + "\n");
  ASSERT_TRUE(plain);
  std::string upper(kKeyHex);
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  const auto decorated =
      crypto::SecretKey::parse("# comment\r\n\r\nradguard-key-v1:" + upper + " \r\n# trailing\n");
  ASSERT_TRUE(decorated) << decorated.error().message;
  EXPECT_EQ(plain->fingerprint(), decorated->fingerprint());
  EXPECT_EQ(plain->fingerprint().size(), 16U);
  EXPECT_TRUE(std::regex_match(plain->fingerprint(), std::regex("[0-9a-f]{16}")));
}

TEST(SecretKey, MalformedKeyFilesAreKeyErrorsThatNeverEchoTheMaterial) {
  const std::string secret = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
  const std::vector<std::string> bad = {
      "",                                            // no key
      "# only a comment\n",                          // no key
      "radguard-key-v2:" + secret,                   // another format
      secret,                                        // no header
      "radguard-key-v1:" + secret.substr(2),         // short
      "radguard-key-v1:" + secret + "00",            // long
      "radguard-key-v1:" + secret.substr(2) + "zz",  // not hex
  };
  for (const auto& text : bad) {
    const auto key = crypto::SecretKey::parse(text);
    ASSERT_FALSE(key) << text;
    EXPECT_EQ(key.error().code, ErrorCode::key);
    EXPECT_EQ(key.error().message.find("deadbeef"), std::string::npos) << key.error().message;
  }
}

TEST(SecretKey, SaveNewWritesAPrivateFileAndNeverReplacesOne) {
  ScratchDir dir;
  const auto key = crypto::SecretKey::generate();
  ASSERT_TRUE(key);
  ASSERT_TRUE(key->save_new(dir / "site.key"));
  EXPECT_EQ(mode_of(dir / "site.key"), fs::perms::owner_read | fs::perms::owner_write);
  const auto loaded = crypto::SecretKey::load(dir / "site.key");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->fingerprint(), key->fingerprint());
  EXPECT_EQ(loaded->derive("uid", "1.2.3"), key->derive("uid", "1.2.3"));
  const std::string before = slurp(dir / "site.key");
  const auto other = crypto::SecretKey::generate();
  const auto refused = other->save_new(dir / "site.key");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::conflict);
  EXPECT_EQ(slurp(dir / "site.key"), before);
  EXPECT_EQ(crypto::SecretKey::load(dir / "missing.key").error().code, ErrorCode::key);
  spit(dir / "garbage.key", "not a key\n");
  fs::permissions(dir / "garbage.key", fs::perms::owner_read | fs::perms::owner_write);
  const auto garbage = crypto::SecretKey::load(dir / "garbage.key");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, ErrorCode::key);
  EXPECT_NE(garbage.error().message.find("garbage.key"), std::string::npos);
}

TEST(SecretKey, DerivationIsHmacOfDomainNulMessageSoDomainsNeverCollide) {
  const auto key = crypto::SecretKey::parse("radguard-key-v1:" + std::string(kKeyHex));
  ASSERT_TRUE(key);
  std::string raw;
  for (int i = 0; i < 32; ++i) raw += static_cast<char>(i);
  EXPECT_EQ(key->derive("uid", "1.2.3"), crypto::hmac_sha256(raw, std::string("uid\0"
                                                                              "1.2.3",
                                                                              9)));
  EXPECT_NE(key->derive("ab", "c"), key->derive("a", "bc"));
  EXPECT_NE(key->derive("uid", "x"), key->derive("patient-id", "x"));
  EXPECT_EQ(key->fingerprint(), crypto::to_hex(key->derive("fingerprint", "").data(), 8));
}

// ---------------------------------------------------------------------------------------
// Pseudonym formats, computed here again from the key's derivation by independent code.

crypto::SecretKey fixed_key() {
  return *crypto::SecretKey::parse("radguard-key-v1:" + std::string(kKeyHex));
}

// The first 16 bytes of a digest as a decimal number (unsigned __int128 arithmetic).
__extension__ using Uint128 = unsigned __int128;
std::string decimal_of_first_128_bits(const crypto::Digest& d) {
  Uint128 value = 0;
  for (int i = 0; i < 16; ++i) value = (value << 8) | d[static_cast<std::size_t>(i)];
  if (value == 0) return "0";
  std::string digits;
  while (value > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  return digits;
}

// RFC 4648-style base 32 over the alphabet without I, O, 0, 1, most significant bit first.
std::string base32_reference(const crypto::Digest& d, std::size_t length) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::string bits;
  for (const auto byte : d)
    for (int b = 7; b >= 0; --b) bits += ((byte >> b) & 1) != 0 ? '1' : '0';
  std::string out;
  for (std::size_t i = 0; i + 5 <= bits.size() && out.size() < length; i += 5)
    out += kAlphabet[std::stoul(bits.substr(i, 5), nullptr, 2)];
  return out;
}

TEST(PseudonymFormats, UidsAreTwoTwentyFiveDecimalsOfTheKeyedDigest) {
  const pseudonym::Pseudonymizer p(fixed_key());
  std::size_t longest = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string original = "1.2.826.0.1.3680043." + std::to_string(i);
    const std::string uid = p.uid(original);
    EXPECT_EQ(uid, "2.25." + decimal_of_first_128_bits(p.key().derive("uid", original)));
    ASSERT_TRUE(std::regex_match(uid, std::regex("2\\.25\\.[1-9][0-9]*"))) << uid;
    EXPECT_LE(uid.size(), 44U);
    longest = std::max(longest, uid.size());
  }
  EXPECT_GE(longest, 43U);  // 128-bit values: most have 38 or 39 digits
  // Padding is not part of a UID; inner content is.
  EXPECT_EQ(p.uid(" 1.2.3\0"), p.uid("1.2.3"));
  EXPECT_NE(p.uid("1.2.3"), p.uid("1.2.30"));
}

TEST(PseudonymFormats, PatientIdsNamesAndTokensUseTheUnambiguousAlphabet) {
  const pseudonym::Pseudonymizer p(fixed_key());
  const std::string key = pseudonym::patient_key("PID1", "HOSP", "DOE^JOHN", "19300102");
  const std::string id = p.patient_id(key);
  EXPECT_EQ(id, "RG" + base32_reference(p.key().derive("patient-id", key), 16));
  EXPECT_TRUE(std::regex_match(id, std::regex("RG[A-HJ-NP-Z2-9]{16}"))) << id;
  EXPECT_EQ(p.patient_name(key), "Anonymous^" + id);
  EXPECT_EQ(p.token("ae-title", "CT01", 14),
            base32_reference(p.key().derive("ae-title", "CT01"), 14));
  EXPECT_EQ(p.token("d", "v", 0), "");
  EXPECT_EQ(p.token("d", "v", 1000).size(), 51U);  // 256 bits hold 51 whole characters
  EXPECT_NE(p.token("d1", "v", 10), p.token("d2", "v", 10));
}

TEST(PseudonymFormats, PatientKeysTrimAndSeparateIssuerIdNameAndBirthDate) {
  using pseudonym::patient_key;
  EXPECT_EQ(patient_key(" PID1 ", "HOSP ", "A", "1"), patient_key("PID1", "HOSP", "B", "2"));
  EXPECT_NE(patient_key("PID1", "HOSP", "", ""), patient_key("PID1", "", "", ""));
  // The separator keeps issuer and ID apart: ("AB","C") is not ("A","BC").
  EXPECT_NE(patient_key("C", "AB", "", ""), patient_key("BC", "A", "", ""));
  // Without an ID, name and birth date identify the patient.
  EXPECT_EQ(patient_key("", "HOSP", "DOE^JOHN", "19300102"),
            patient_key("  ", "OTHER", "DOE^JOHN ", "19300102"));
  EXPECT_NE(patient_key("", "", "DOE^JOHN", "19300102"),
            patient_key("", "", "DOE^JOHN", "19300103"));
  EXPECT_NE(patient_key("DOE^JOHN", "", "", ""), patient_key("", "", "DOE^JOHN", ""));
}

TEST(PseudonymFormats, DateOffsetsAreWholeWeeksBackWithinTenYearsAndSpreadOut) {
  const pseudonym::Pseudonymizer p(fixed_key());
  std::set<int> weeks;
  for (int i = 0; i < 3000; ++i) {
    const auto offset = p.date_offset("id:\x1fP" + std::to_string(i));
    ASSERT_EQ(offset.days % 7, 0);
    ASSERT_LE(offset.days, -7);
    ASSERT_GE(offset.days, -7 * 520);
    ASSERT_GE(offset.seconds, 0);
    ASSERT_LT(offset.seconds, 86400);
    weeks.insert(offset.days / 7);
  }
  EXPECT_GT(weeks.size(), 450U);  // 3000 patients cover most of the 520 weeks
  EXPECT_EQ(p.date_offset("k").days, p.date_offset("k").days);
}

// ---------------------------------------------------------------------------------------
// Batch: finding inputs, running in parallel.

TEST(FindFiles, SortedOnceEachWithMissingInputsReported) {
  ScratchDir dir;
  fs::create_directories(dir / "in" / "b" / "deep");
  fs::create_directories(dir / "in" / "a");
  fs::create_directories(dir / "elsewhere");
  spit(dir / "in" / "b" / "deep" / "3", "x");
  spit(dir / "in" / "a" / "2", "x");
  spit(dir / "in" / "1", "x");
  spit(dir / "elsewhere" / "outside", "x");
  fs::create_directory_symlink(dir / "elsewhere", dir / "in" / "link-to-folder");
  fs::create_symlink(dir / "elsewhere" / "outside", dir / "in" / "link-to-file");
  const std::vector<fs::path> inputs = {dir / "in", dir / "in" / "a" / "2", dir / "missing",
                                        "/dev/null"};
  const auto set = batch::find_files(inputs);
  const fs::path root = fs::canonical(dir / "in");
  const std::vector<std::string> expected = {
      (root / "1").string(), (root / "a" / "2").string(), (root / "b" / "deep" / "3").string(),
      (root / "link-to-file")
          .string()};  // a link to a file is an input; one to a folder is not walked
  EXPECT_EQ(set.files, expected);
  ASSERT_EQ(set.missing.size(), 2U);
  EXPECT_EQ(set.missing[0].path, dir / "missing");
  EXPECT_EQ(set.missing[0].reason, "does not exist");
  EXPECT_EQ(set.missing[1].path, "/dev/null");
  EXPECT_EQ(batch::find_files({}).files.size(), 0U);
}

TEST(ListFiles, TheOneWalkerListsFilesSortedAndNamesFoldersItCannotList) {
  ScratchDir dir;
  fs::create_directories(dir / "b" / "c");
  fs::create_directories(dir / "a-b");
  spit(dir / "b" / "c" / "2", "x");
  spit(dir / "a-b" / "1", "x");
  spit(dir / "top", "x");
  fs::create_symlink(dir / "top", dir / "link");
  fs::create_directory_symlink(dir / "b", dir / "folder-link");
  const auto all = batch::list_files(dir.path());
  EXPECT_TRUE(all.unlisted.empty());
  const std::vector<std::string> expected = {(dir / "a-b" / "1").string(),
                                             (dir / "b" / "c" / "2").string(),
                                             (dir / "link").string(), (dir / "top").string()};
  EXPECT_EQ(all.files, expected);
  const auto without_links = batch::list_files(dir.path(), batch::FileLinks::skip);
  EXPECT_EQ(without_links.files.size(), 3U);
  const auto missing = batch::list_files(dir / "none");
  EXPECT_TRUE(missing.files.empty());
  ASSERT_EQ(missing.unlisted.size(), 1U);
  EXPECT_EQ(missing.unlisted[0].path, dir / "none");
  if (::geteuid() != 0) {  // root lists any folder
    fs::create_directories(dir / "closed" / "inner");
    spit(dir / "closed" / "inner" / "f", "x");
    fs::permissions(dir / "closed", fs::perms::none);
    const auto closed = batch::list_files(dir.path());
    fs::permissions(dir / "closed", fs::perms::owner_all);
    ASSERT_EQ(closed.unlisted.size(), 1U);
    EXPECT_EQ(closed.unlisted[0].path, dir / "closed");
  }
}

// Files named one by one (a --files-from list) resolve as the whole path would: folders
// resolved once per run of files, links in the folders and a file that is a link included.
TEST(FindFiles, FilesNamedOneByOneAreCanonicalAsTheirWholePath) {
  ScratchDir dir;
  fs::create_directories(dir / "real" / "sub");
  fs::create_directories(dir / "other");
  for (const char* name : {"a", "b", "c"}) spit(dir / "real" / "sub" / name, "x");
  spit(dir / "other" / "target", "x");
  fs::create_directory_symlink(dir / "real", dir / "via");
  fs::create_symlink(dir / "other" / "target", dir / "real" / "sub" / "link");
  const std::vector<fs::path> inputs = {dir / "via" / "sub" / "a",
                                        dir / "via" / "sub" / "b",
                                        dir / "real" / "sub" / ".." / "sub" / "c",
                                        dir / "real" / "sub" / "link",
                                        dir / "real" / "sub" / "a",
                                        dir / "via" / "sub" / "gone"};
  const auto set = batch::find_files(inputs);
  std::vector<std::string> expected;
  for (const auto& input : inputs)
    if (fs::exists(input)) expected.push_back(fs::weakly_canonical(input).string());
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  EXPECT_EQ(set.files, expected);
  EXPECT_EQ(set.files.size(), 4U);  // a, b, c and the link's target; a named twice
  EXPECT_NE(std::find(set.files.begin(), set.files.end(), fs::canonical(dir / "other" / "target").string()),
            set.files.end());
  ASSERT_EQ(set.missing.size(), 1U);
  EXPECT_EQ(set.missing[0].reason, "does not exist");
  // A relative name resolves from the current folder.
  const fs::path was = fs::current_path();
  fs::current_path(dir / "via" / "sub");
  const auto relative = batch::find_files(std::vector<fs::path>{"a", "./b"});
  fs::current_path(was);
  EXPECT_EQ(relative.files, (std::vector<std::string>{fs::canonical(dir / "real" / "sub" / "a").string(),
                                                       fs::canonical(dir / "real" / "sub" / "b").string()}));
}

// A list naming many files of one folder (a shard's) is answered from the folder's listing
// rather than an lstat per file: what each entry is (file, folder, link, missing, neither)
// and its canonical path must be what the whole path gives, in a folder named through a link
// or "..", in a folder too large to list for the few files named in it, and for a bare name.
TEST(FindFiles, AListNamingManyFilesOfAFolderFindsWhatEachIsAsTheWholePathWould) {
  ScratchDir dir;
  fs::create_directories(dir / "real" / "series" / "inner");
  fs::create_directories(dir / "real" / "big");
  fs::create_directories(dir / "other");
  for (int i = 0; i < 12; ++i) spit(dir / "real" / "series" / ("IMG" + std::to_string(i)), "x");
  for (int i = 0; i < 300; ++i) spit(dir / "real" / "big" / ("f" + std::to_string(i)), "x");
  spit(dir / "real" / "series" / "inner" / "deep", "x");
  spit(dir / "other" / "target", "x");
  fs::create_symlink(dir / "other" / "target", dir / "real" / "series" / "file-link");
  fs::create_directory_symlink(dir / "other", dir / "real" / "series" / "folder-link");
  fs::create_directory_symlink(dir / "real", dir / "via");
  ASSERT_EQ(::mkfifo((dir / "real" / "series" / "fifo").c_str(), 0600), 0);
  std::vector<fs::path> inputs;
  for (const auto& series : std::initializer_list<fs::path> {dir / "real" / "series", dir / "via" / "series",
                                dir / "real" / "big" / ".." / "series"}) {
    for (const char* name : {"gone", "file-link", "folder-link", "inner", "fifo"})
      inputs.push_back(series / name);
    for (int i = 0; i < 12; i += 2) inputs.push_back(series / ("IMG" + std::to_string(i)));
  }
  // One folder's files in two runs, another folder's between them.
  for (const char* name : {"IMG1", "IMG3", "IMG5", "IMG7"})
    inputs.push_back(dir / "real" / "series" / name);
  inputs.push_back(dir / "other" / "target");
  for (const char* name : {"IMG9", "IMG11", "IMG1", "fifo"})
    inputs.push_back(dir / "real" / "series" / name);
  for (int i = 0; i < 300; i += 50) inputs.push_back(dir / "real" / "big" / ("f" + std::to_string(i)));
  const auto set = batch::find_files(inputs);
  // The answer of the whole path, entry by entry.
  std::vector<std::string> expected;
  std::size_t missing = 0;
  for (const auto& input : inputs) {
    const auto status = fs::status(input);
    if (fs::is_regular_file(status))
      expected.push_back(fs::weakly_canonical(input).string());
    else if (fs::is_directory(status) && !fs::is_symlink(fs::symlink_status(input)))
      expected.push_back(fs::canonical(input / "deep").string());
    else if (!fs::is_directory(status))
      ++missing;  // "gone" does not exist; the FIFO is neither a file nor a folder
  }
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  EXPECT_EQ(set.files, expected);
  // IMG0..11, the link's target, deep, big's six
  EXPECT_EQ(set.files.size(), 12U + 1U + 1U + 6U);
  EXPECT_EQ(missing, 7U);
  ASSERT_EQ(set.missing.size(), 7U);
  EXPECT_EQ(std::count_if(set.missing.begin(), set.missing.end(),
                          [](const batch::MissingInput& m) { return m.reason == "does not exist"; }),
            3);
  // A bare name resolves from the current folder, as a path would.
  const fs::path was = fs::current_path();
  fs::current_path(dir / "via" / "series");
  const auto bare = batch::find_files(std::vector<fs::path>{"IMG1", "IMG3", "IMG5", "IMG7", "gone"});
  fs::current_path(was);
  ASSERT_EQ(bare.files.size(), 4U);
  EXPECT_EQ(bare.files[0], fs::canonical(dir / "real" / "series" / "IMG1").string());
  EXPECT_EQ(bare.missing.size(), 1U);
}

TEST(FindFiles, TheOrderDoesNotDependOnTheOrderOfInputs) {
  ScratchDir dir;
  for (const char* name : {"z", "m", "a"}) {
    fs::create_directories(dir / name);
    spit(dir / name / "f", "x");
  }
  const std::vector<fs::path> one = {dir / "z", dir / "a", dir / "m"};
  const std::vector<fs::path> two = {dir / "m", dir / "z", dir / "a", dir / "a"};
  EXPECT_EQ(batch::find_files(one).files, batch::find_files(two).files);
  EXPECT_EQ(batch::find_files(one).files.size(), 3U);
}

TEST(FindFiles, AnOutputInsideAnInputFolderIsAUsageError) {
  ScratchDir dir;
  fs::create_directories(dir / "in");
  const std::vector<fs::path> inputs = {dir / "in"};
  EXPECT_EQ(batch::require_outside_inputs(dir / "in" / "out", inputs).error().code,
            ErrorCode::usage);
  EXPECT_FALSE(batch::require_outside_inputs(dir / "in", inputs));
  EXPECT_FALSE(batch::require_outside_inputs(dir / "in" / ".." / "in" / "x", inputs));
  EXPECT_TRUE(batch::require_outside_inputs(dir / "out", inputs));
  EXPECT_TRUE(batch::require_outside_inputs(dir / "in-out", inputs));  // a prefix is not inside
  spit(dir / "file.dcm", "x");
  const std::vector<fs::path> file_input = {dir / "file.dcm"};
  EXPECT_TRUE(batch::require_outside_inputs(dir / "out", file_input));
  // The same answers from the folders find_files walked (a link to a folder is one of them).
  fs::create_directory_symlink(dir / "in", dir / "via");
  const std::vector<fs::path> mixed = {dir / "file.dcm", dir / "via"};
  const auto found = batch::find_files(mixed);
  ASSERT_EQ(found.folders.size(), 1U);
  EXPECT_EQ(found.folders[0].named, dir / "via");
  EXPECT_EQ(found.folders[0].canonical, fs::canonical(dir / "in").string());
  const auto inside = batch::require_outside_folders(dir / "in" / "out", found.folders);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code, ErrorCode::usage);
  EXPECT_NE(inside.error().message.find((dir / "via").string()), std::string::npos);
  EXPECT_TRUE(batch::require_outside_folders(dir / "out", found.folders));
  EXPECT_TRUE(batch::require_outside_folders(dir / "in-out", found.folders));
}

// The answers of a scan over every input (the rule the index replaced), on nested inputs, a
// file named as an input, a trailing '/', "/" and a path under none.
TEST(InputRoots, AFileIsShownRelativeToTheLongestInputItLiesUnder) {
  const std::vector<fs::path> inputs = {"/data/in", "/data/in/PAT1/", "/data/one.dcm", "rel/a"};
  const batch::InputRoots roots(inputs);
  EXPECT_EQ(roots.relative("/data/in/PAT2/IM1"), "PAT2/IM1");
  EXPECT_EQ(roots.relative("/data/in/PAT1/IM1"), "IM1");  // the longer input wins
  EXPECT_EQ(roots.relative("/data/one.dcm"), "one.dcm");  // a file input: its own name
  EXPECT_EQ(roots.relative("rel/a/b/c"), "b/c");
  EXPECT_EQ(roots.relative("/data/input/IM1"), "/data/input/IM1");  // a prefix is not a folder
  EXPECT_EQ(roots.relative("/data/in"), "in");
  EXPECT_EQ(roots.relative("/data/in/"), "/data/in/");  // nothing after the '/': under none
  EXPECT_TRUE(roots.covers("/data/in/PAT2/IM1"));
  EXPECT_TRUE(roots.covers("/data/one.dcm"));
  EXPECT_FALSE(roots.covers("/data/other/IM1"));
  EXPECT_FALSE(roots.covers("IM1"));

  const std::vector<fs::path> slash = {"/", "/data"};
  const batch::InputRoots from_slash(slash);
  EXPECT_EQ(from_slash.relative("/data/x/IM1"), "x/IM1");
  EXPECT_EQ(from_slash.relative("/etc/IM1"), "etc/IM1");
  EXPECT_TRUE(from_slash.covers("/etc/IM1"));
  EXPECT_FALSE(batch::InputRoots(std::vector<fs::path>{}).covers("/etc/IM1"));
}

// Files are found by their canonical paths: a relative input, or one through a link, matched
// none of them, and reports named files by their whole absolute paths (a new user's trial).
TEST(InputRoots, AFileIsShownRelativeToTheCanonicalFormOfARelativeOrLinkedInput) {
  ScratchDir dir;
  fs::create_directories(dir / "real" / "PAT" / "a");
  spit(dir / "real" / "PAT" / "a" / "IM1", "x");
  spit(dir / "real" / "one.dcm", "x");
  fs::create_directory_symlink(dir / "real" / "PAT", dir / "link");
  const fs::path was = fs::current_path();
  fs::current_path(dir / "real");
  const std::vector<fs::path> inputs = {"./PAT/", "one.dcm", dir / "link"};
  const auto found = batch::find_files(inputs);
  fs::current_path(was);
  ASSERT_EQ(found.files.size(), 2U);
  const std::string canonical = fs::canonical(dir / "real").string();
  ASSERT_EQ(found.canonical_inputs.size(), 3U);
  EXPECT_EQ(found.canonical_inputs[1], canonical + "/one.dcm");
  EXPECT_EQ(found.canonical_inputs[2], canonical + "/PAT");
  const batch::InputRoots roots(inputs, found.canonical_inputs);
  EXPECT_EQ(roots.relative(canonical + "/PAT/a/IM1"), "a/IM1");
  EXPECT_EQ(roots.relative(canonical + "/one.dcm"), "one.dcm");
  EXPECT_TRUE(roots.covers(canonical + "/PAT/a/IM1"));
  EXPECT_FALSE(batch::InputRoots(inputs).covers(canonical + "/PAT/a/IM1"));  // as given only
}

// A shard's run names every file as an input; its plan's folders tell apart two files of one
// name: a folder a file lies under names it before the file itself.
TEST(InputRoots, AListedFileIsShownRelativeToAFolderItLiesUnder) {
  const std::vector<fs::path> listed = {"/data/in/a/IM1", "/data/in/b/IM1", "/elsewhere/IM2"};
  const std::vector<std::string> plan_folders = {"/data/in"};
  const batch::InputRoots roots(listed, plan_folders);
  EXPECT_EQ(roots.relative("/data/in/a/IM1"), "a/IM1");
  EXPECT_EQ(roots.relative("/data/in/b/IM1"), "b/IM1");
  EXPECT_EQ(roots.relative("/elsewhere/IM2"), "IM2");
}

TEST(ReadFileList, LinesOfSpacesAreSkippedAndAListThatCannotBeReadIsAUsageErrorWithItsReason) {
  ScratchDir dir;
  spit(dir / "list.txt", "a.dcm\n   \n\t\r\n\nb c.dcm\r\n");
  const auto listed = batch::read_file_list(dir / "list.txt");
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(*listed, (std::vector<fs::path>{"a.dcm", "b c.dcm"}));
  const auto expect_usage = [&](const fs::path& list, const std::string& why) {
    const auto read = batch::read_file_list(list);
    ASSERT_FALSE(read) << list;
    EXPECT_EQ(read.error().code, ErrorCode::usage) << read.error().message;
    EXPECT_NE(read.error().message.find(list.string()), std::string::npos) << read.error().message;
    EXPECT_NE(read.error().message.find(why), std::string::npos) << read.error().message;
  };
  expect_usage(dir.path(), "it is a folder");
  expect_usage(dir / "missing.txt", "No such file or directory");
  spit(dir / "blank.txt", " \n\n\t\n");
  expect_usage(dir / "blank.txt", "names no file");
  spit(dir / "empty.txt", "");
  expect_usage(dir / "empty.txt", "names no file");
}

TEST(RunParallel, EveryIndexOnceAndExceptionsGoToTheErrorHandler) {
  for (const unsigned threads : {0U, 1U, 4U, 64U}) {
    std::vector<std::atomic<int>> calls(1000);
    std::mutex mutex;
    std::vector<std::pair<std::size_t, std::string>> errors;
    batch::run_parallel(
        calls.size(), threads,
        [&](std::size_t i) {
          calls[i].fetch_add(1);
          if (i % 100 == 7) throw std::runtime_error("boom " + std::to_string(i));
          if (i == 999) throw 42;
        },
        [&](std::size_t i, const std::string& what) {
          const std::lock_guard lock(mutex);
          errors.emplace_back(i, what);
        });
    for (std::size_t i = 0; i < calls.size(); ++i) ASSERT_EQ(calls[i].load(), 1) << i;
    std::sort(errors.begin(), errors.end());
    ASSERT_EQ(errors.size(), 11U);
    EXPECT_EQ(errors[0], (std::pair<std::size_t, std::string>{7, "boom 7"}));
    EXPECT_EQ(errors.back(), (std::pair<std::size_t, std::string>{999, "unknown exception"}));
  }
  bool called = false;
  batch::run_parallel(
      0, 8, [&](std::size_t) { called = true; }, [](std::size_t, const std::string&) {});
  EXPECT_FALSE(called);
  EXPECT_EQ(batch::default_threads(3), 3U);
  EXPECT_GE(batch::default_threads(0), 1U);
}

// ---------------------------------------------------------------------------------------
// SQLite wrapper: every failure is a Result with the right code.

TEST(Sqlite, OpenModesAndFilePermissions) {
  ScratchDir dir;
  const std::string path = (dir / "store.db").string();
  EXPECT_EQ(sqlite::Database::open(path, sqlite::OpenMode::existing).error().code,
            ErrorCode::not_found);
  EXPECT_EQ(sqlite::Database::open(path, sqlite::OpenMode::read_only).error().code,
            ErrorCode::not_found);
  {
    auto db = sqlite::Database::open(path, sqlite::OpenMode::create);
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec("CREATE TABLE t (a TEXT NOT NULL UNIQUE, b INTEGER)"));
  }
  EXPECT_EQ(mode_of(path), fs::perms::owner_read | fs::perms::owner_write);
  auto db = sqlite::Database::open(path, sqlite::OpenMode::read_only);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->name(), path);
  const auto names = db->table_names();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, std::vector<std::string>{"t"});
  const auto write = db->exec("INSERT INTO t VALUES ('x', 1)");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, ErrorCode::io);  // read-only
}

TEST(Sqlite, AFileThatIsNotADatabaseIsRefusedAtOpen) {
  ScratchDir dir;
  spit(dir / "text.db", std::string(4096, 'x'));
  const auto db = sqlite::Database::open((dir / "text.db").string(), sqlite::OpenMode::existing);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::integrity);
  EXPECT_NE(db.error().message.find("text.db"), std::string::npos);
}

TEST(Sqlite, StatementsBindStepAndReadColumns) {
  auto db = sqlite::Database::open("file:foundations-rw?mode=memory", sqlite::OpenMode::create);
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(db->exec("CREATE TABLE t (a TEXT NOT NULL UNIQUE, b INTEGER, c TEXT)"));
  auto insert = db->prepare("INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)");
  ASSERT_TRUE(insert);
  ASSERT_TRUE(insert->bind(1, std::string_view("with\0nul", 8)));
  ASSERT_TRUE(insert->bind(2, std::int64_t{-5}));
  ASSERT_TRUE(insert->bind_optional(3, std::string()));  // empty: NULL
  ASSERT_TRUE(insert->run());
  EXPECT_EQ(db->last_insert_rowid(), 1);
  ASSERT_TRUE(insert->bind(1, "second"));
  ASSERT_TRUE(insert->bind_null(2));
  ASSERT_TRUE(insert->bind_optional(3, std::string("c")));
  ASSERT_TRUE(insert->run());
  // A bad parameter index is a bug, not an I/O problem.
  const auto bad_index = insert->bind(9, "x");
  ASSERT_FALSE(bad_index);
  EXPECT_EQ(bad_index.error().code, ErrorCode::internal);
  // A constraint refusing a row is an integrity error, and the statement can be reused.
  ASSERT_TRUE(insert->bind(1, "second"));
  const auto duplicate = insert->run();
  ASSERT_FALSE(duplicate);
  EXPECT_EQ(duplicate.error().code, ErrorCode::integrity);
  ASSERT_TRUE(insert->reset());
  ASSERT_TRUE(insert->bind(1, "third"));
  EXPECT_TRUE(insert->run());

  auto select = db->prepare("SELECT a, b, c FROM t ORDER BY rowid");
  ASSERT_TRUE(select);
  std::vector<std::string> rows;
  for (;;) {
    auto row = select->step();
    ASSERT_TRUE(row);
    if (!*row) break;
    rows.push_back(select->text(0) + "|" + std::to_string(select->integer(1)) + "|" +
                   (select->is_null(2) ? "NULL" : select->text(2)));
  }
  EXPECT_EQ(rows, (std::vector<std::string>{std::string("with\0nul", 8) + "|-5|NULL", "second|0|c",
                                            "third|0|NULL"}));
  EXPECT_EQ(db->prepare("SELEKT nothing").error().code, ErrorCode::io);
}

TEST(Sqlite, TransactionsRollBackUnlessCommittedAndCommitOnlyOnce) {
  auto db = sqlite::Database::open("file:foundations-tx?mode=memory", sqlite::OpenMode::create);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TABLE t (a INTEGER)"));
  auto count = [&] {
    auto s = db->prepare("SELECT count(*) FROM t");
    EXPECT_TRUE(s && s->step().value_or(false));
    return s ? s->integer(0) : -1;
  };
  {
    auto tx = sqlite::Transaction::begin(*db, sqlite::TransactionKind::immediate);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
  }  // dropped: rolled back
  EXPECT_EQ(count(), 0);
  {
    auto tx = sqlite::Transaction::begin(*db, sqlite::TransactionKind::deferred);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (1)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_EQ(tx->commit().error().code, ErrorCode::internal);
    EXPECT_TRUE(tx->rollback());  // nothing left to roll back
  }
  EXPECT_EQ(count(), 1);
  {
    auto tx = sqlite::Transaction::begin(*db, sqlite::TransactionKind::immediate);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db->exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx->rollback());
  }
  EXPECT_EQ(count(), 1);
  // A nested BEGIN is refused by SQLite and reported.
  auto outer = sqlite::Transaction::begin(*db, sqlite::TransactionKind::deferred);
  ASSERT_TRUE(outer);
  EXPECT_FALSE(sqlite::Transaction::begin(*db, sqlite::TransactionKind::deferred));
}

TEST(Sqlite, AWriterWaitsForTheLockThenFailsWithIo) {
  ScratchDir dir;
  const std::string path = (dir / "busy.db").string();
  auto first = sqlite::Database::open(path, sqlite::OpenMode::create);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->exec("CREATE TABLE t (a INTEGER)"));
  auto second =
      sqlite::Database::open(path, sqlite::OpenMode::existing, std::chrono::milliseconds(50));
  ASSERT_TRUE(second);
  auto held = sqlite::Transaction::begin(*first, sqlite::TransactionKind::immediate);
  ASSERT_TRUE(held);
  const auto start = std::chrono::steady_clock::now();
  const auto blocked = sqlite::Transaction::begin(*second, sqlite::TransactionKind::immediate);
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::io);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
}

// ---------------------------------------------------------------------------------------
// tablegen: the generator refuses what it does not understand, so no table is half-read.

class Tablegen : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "data");
    for (const auto& entry : fs::directory_iterator(RADGUARD_STANDARD_DATA))
      fs::copy_file(entry.path(), dir_ / "data" / entry.path().filename());
  }
  // Runs tablegen on the copy; returns its exit status and fills `output`, `messages`.
  int run() {
    const fs::path out = dir_ / "tables.cpp";
    const std::string command = std::string(RADGUARD_TABLEGEN) + " '" + (dir_ / "data").string() +
                                "' '" + out.string() + "' 2>'" + (dir_ / "stderr").string() + "'";
    const int status = std::system(command.c_str());
    output = fs::exists(out) ? slurp(out) : "";
    messages = slurp(dir_ / "stderr");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void replace_in(const std::string& file, const std::string& from, const std::string& to) {
    std::string text = slurp(dir_ / "data" / file);
    const auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    text.replace(pos, from.size(), to);
    spit(dir_ / "data" / file, text);
  }
  ScratchDir dir_;
  std::string output, messages;
};

constexpr const char* kProfileCsv = "ps3.15-2026d-table-E.1-1.csv";

TEST_F(Tablegen, TheShippedDataGeneratesTablesWithEditionsAndWildcards) {
  ASSERT_EQ(run(), 0) << messages;
  EXPECT_NE(output.find("kProfileEdition = \"PS3.15 2026d Table E.1-1\""), std::string::npos);
  EXPECT_NE(output.find("std::array<ProfileRow, 657> kProfileRows"), std::string::npos);
  // "(60xx,3000)" Overlay Data: the x digits become a mask.
  EXPECT_NE(output.find("{0x6000, 0x3000, 0xFF00, 0xFFFF, false, \"Overlay Data\""),
            std::string::npos);
  EXPECT_NE(output.find("{0x0000, 0x0000, 0xFFFF, 0xFFFF, true, \"Private Attributes\""),
            std::string::npos);
  EXPECT_NE(output.find("{0x0008, 0x0050, 0xFFFF, 0xFFFF, false, \"Accession Number\", false, "
                        "ActionCode::Z"),
            std::string::npos);
  EXPECT_TRUE(temporaries_in(dir_.path()).empty());
  EXPECT_FALSE(fs::exists(dir_ / "tables.cpp.tmp"));
}

TEST_F(Tablegen, QuotedCellsKeepCommasAndQuotesAndCodeIsEscaped) {
  replace_in(kProfileCsv, "Accession Number,", "\"Accession, \"\"Number\"\" \\\\\",");
  ASSERT_EQ(run(), 0) << messages;
  EXPECT_NE(output.find(R"("Accession, \"Number\" \\\\")"), std::string::npos)
      << output.substr(0, 2000);
}

TEST_F(Tablegen, AnUnknownActionCodeFailsTheBuild) {
  replace_in(kProfileCsv, "Accession Number,\"(0008,0050)\",N,Y,Z,",
             "Accession Number,\"(0008,0050)\",N,Y,Q,");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("unknown action code 'Q'"), std::string::npos) << messages;
  EXPECT_FALSE(fs::exists(dir_ / "tables.cpp"));  // no half table
}

TEST_F(Tablegen, AChangedHeaderFails) {
  replace_in(kProfileCsv, "BasicProfile", "Basic");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("unexpected header"), std::string::npos) << messages;
}

TEST_F(Tablegen, ARaggedRowFails) {
  replace_in(kProfileCsv, "Accession Number,\"(0008,0050)\",N,Y,Z,",
             "Accession Number,\"(0008,0050)\",N,Y,Z,,");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("wrong cell count"), std::string::npos) << messages;
}

TEST_F(Tablegen, AnUnparsableTagFails) {
  replace_in(kProfileCsv, "\"(0008,0050)\"", "\"(0008,005G)\"");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("cannot parse tag (0008,005G)"), std::string::npos) << messages;
}

TEST_F(Tablegen, AMissingDataFileFails) {
  fs::remove(dir_ / "data" / "dcmtk-dicom-2026b.dic");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("cannot open dictionary"), std::string::npos) << messages;
}

TEST_F(Tablegen, ABadSafePrivateTagFails) {
  replace_in("ps3.15-2026c-table-E.3.10-1-safe-private.csv", "(7053,xx00)", "(7053,0000)");
  EXPECT_EQ(run(), 1);
  EXPECT_NE(messages.find("unexpected safe private tag"), std::string::npos) << messages;
}


// --dcmtk-dictionary: DCMTK's text format read as DCMTK reads it; a line DCMTK would skip
// stops the build instead.
int run_dcmtk_dictionary(const fs::path& dir, const std::string& text, std::string& output,
                         std::string& messages) {
  spit(dir / "in.dic", text);
  const fs::path out = dir / "rows.cpp";
  const std::string command = std::string(RADGUARD_TABLEGEN) + " --dcmtk-dictionary '" +
                              out.string() + "' '" + (dir / "in.dic").string() + "' 2>'" +
                              (dir / "stderr").string() + "'";
  const int status = std::system(command.c_str());
  output = fs::exists(out) ? slurp(out) : "";
  messages = slurp(dir / "stderr");
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(TablegenDcmtkDictionary, ReadsRangesCreatorsAndVmsAsDcmtkDoes) {
  ScratchDir dir;
  std::string output, messages;
  ASSERT_EQ(run_dcmtk_dictionary(dir.path(),
                                 "# comment\n"
                                 "\n"
                                 "(0010,0010)\tPN\tPatientName\t1\tDICOM\n"
                                 "(0000-u-FFFF,0000)\tUL\tGenericGroupLength\t1\tGENERIC\n"
                                 "(6000-60FF,3000)\tox\tOverlayData\t1\tDICOM\n"
                                 "(7001-o-70ff,\"DLX_ANNOT_01\",04)\tSQ\tX\t2-2n\tPrivateTag\n"
                                 "(0028,0106)\txs\tSmallest \n",
                                 output, messages),
            0)
      << messages;
  EXPECT_NE(output.find("{0x0010, 0x0010, 0x0010, 0x0010, 'u', 'u', 0, 1, 1,"), std::string::npos)
      << output;
  EXPECT_NE(output.find("{0x0000, 0x0000, 0xFFFF, 0x0000, 'u', 'u', 1, 1, 1,"), std::string::npos);
  // A plain range is even-only; "-o-" odd; "2-2n" is 2-n; three fields: VM 1, version DICOM.
  EXPECT_NE(output.find("{0x6000, 0x3000, 0x60FF, 0x3000, 'e', 'u', 2, 1, 1,"), std::string::npos);
  EXPECT_NE(output.find("{0x7001, 0x0004, 0x70FF, 0x0004, 'o', 'u', 3, 2, -1,"), std::string::npos);
  EXPECT_NE(output.find("{0x0028, 0x0106, 0x0028, 0x0106, 'u', 'u', 4, 1, 1,"), std::string::npos);
  EXPECT_NE(output.find("\"DLX_ANNOT_01\\0\""), std::string::npos);
  EXPECT_EQ(output.find("nullptr"), std::string::npos);  // strings are offsets, never pointers
}

TEST(TablegenDcmtkDictionary, ALineDcmtkWouldSkipFailsTheBuild) {
  for (const char* line :
       {"(0010,0010)\tPN\n", "(0010,0010\tPN\tPatientName\n", "(0010,0010)\tPN\tName\tx\n",
        "(0010-q-0011,0010)\tPN\tName\n", "(0010,\"OPEN,10)\tPN\tName\n",
        "(0010,0010)\tPN\tName\t1\tDICOM\textra\n", "(10010,0010)\tPN\tName\n",
        "(0010,0010)\t\tName\n"}) {
    ScratchDir dir;
    std::string output, messages;
    EXPECT_EQ(run_dcmtk_dictionary(dir.path(), line, output, messages), 1) << line;
    EXPECT_FALSE(fs::exists(dir.path() / "rows.cpp")) << line;
  }
}

}  // namespace
}  // namespace radguard
