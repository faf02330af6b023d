#pragma once
// Generic batch machinery shared by every command that walks many files: finding inputs,
// running work on a fixed number of threads, and showing progress on a terminal.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/result.hpp"

namespace radguard::batch {

struct MissingInput {
  std::filesystem::path path;
  std::string reason;
};

// An input that is a folder (or a link to one), as named and as walked.
struct FolderInput {
  std::filesystem::path named;
  std::string canonical;
};

struct InputSet {
  // Sorted, each file once. Plain strings: std::filesystem::path keeps every component as a
  // separate path, several times the memory on runs of millions of files.
  std::vector<std::string> files;
  std::vector<MissingInput> missing;  // inputs that do not exist or cannot be listed
  std::vector<FolderInput> folders;   // the inputs that were folders, in the order named
  // The canonical form of each input found (file or folder) where it is not the path as given,
  // in the order named: files are found by their canonical paths, so with the inputs as given
  // this is what a report names them relative to (InputRoots), whether an input was given
  // relative, absolute or through a link.
  std::vector<std::string> canonical_inputs;
};

// What a link to a file is when a folder is listed.
enum class FileLinks : std::uint8_t {
  include,  // listed like the file it names
  skip,     // left out (a manifest records files, not links)
};

struct FolderListing {
  std::vector<std::string> files;      // sorted (plain string order), each once
  std::vector<MissingInput> unlisted;  // folders that could not be listed, or not completely
};

// The one folder walker: every regular file below `folder`, recursively, without following
// links to folders. A folder that cannot be listed (permissions, I/O) is named in `unlisted`,
// never skipped in silence; callers decide whether that fails them.
[[nodiscard]] FolderListing list_files(const std::filesystem::path& folder,
                                       FileLinks links = FileLinks::include);

// Fails with ErrorCode::io naming the first folder `listing` could not list; for callers that
// must see every file (manifests, archives, release checks).
[[nodiscard]] Status require_complete(const FolderListing& listing);

// Every regular file under `inputs` (files, or folders walked recursively without following
// symbolic links to folders), in a stable order that does not depend on the file system.
[[nodiscard]] InputSet find_files(std::span<const std::filesystem::path> inputs);

// The inputs a list file names (--files-from; a shard list of radguard plan): one path per
// line, relative paths from the current folder, a trailing CR removed, blank lines and lines
// of spaces and tabs only skipped. Fails with ErrorCode::usage, naming the list and why, when
// it cannot be read (a folder, no permission, an I/O error), names nothing (as a command
// line naming no input does), or holds a NUL byte.
[[nodiscard]] Result<std::vector<std::filesystem::path>> read_file_list(
    const std::filesystem::path& list);

// The inputs of a run, as given (a trailing '/' ignored) and in their canonical forms
// (InputSet::canonical_inputs: files are found by canonical paths, so an input given relative
// or through a link matches its files only so), indexed to answer "which input was this file
// found under?" in the file's path depth, not in the number of inputs: a --files-from list
// names every file as an input, and scanning them all per file made a shard's run quadratic in
// its list (16,000 listed files: 30% more CPU than the folder run). Immutable after
// construction: safe to share between threads.
class InputRoots {
 public:
  explicit InputRoots(std::span<const std::filesystem::path> inputs,
                      std::span<const std::string> canonical_inputs = {});

  // `file` relative to the longest input it lies under; else the file's own name where `file`
  // is itself an input; `file` unchanged where it is none and lies under none.
  [[nodiscard]] std::string relative(std::string_view file) const;
  // Whether `path` is an input or lies under one.
  [[nodiscard]] bool covers(std::string_view path) const;

 private:
  // The length of the longest input `path` lies under (0: none); `path` itself excluded.
  [[nodiscard]] std::size_t longest_root_of(std::string_view path) const;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> roots_;
  bool slash_root_ = false;
};

// Refuses an output folder that lies inside one of the input folders (a later run over the
// same inputs would read its own outputs). Fails with ErrorCode::usage naming both.
[[nodiscard]] Status require_outside_inputs(const std::filesystem::path& output,
                                            std::span<const std::filesystem::path> inputs);

// The same check against the folders find_files walked (InputSet::folders), for a run that
// has found its files already: no stat per input, which for a list of files named one by one
// (a shard's) was one system call per file more than a folder run makes.
[[nodiscard]] Status require_outside_folders(const std::filesystem::path& output,
                                             std::span<const FolderInput> folders);

enum class ProgressDisplay : std::uint8_t { automatic, never };

// A one-line progress bar on stderr, shown only when stderr is a terminal. Thread-safe.
class Progress {
 public:
  // `unit`: what is counted ("files", "series").
  Progress(std::string label, std::size_t total, ProgressDisplay display,
           std::string unit = "files");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t bytes);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  std::string unit_;
  std::size_t total_;
  bool enabled_;
  std::atomic<std::size_t> done_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool finished_ = false;
};

// Stops a run from another thread (a web page's cancel button, a gateway's abort). Runs check
// it between files: the files being worked on finish, no new one starts. Thread-safe.
class CancelToken {
 public:
  void cancel() noexcept { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

// How a run ended.
enum class RunEnd : std::uint8_t { completed, cancelled };

// One file done, as a run's listener hears of it. Neutral by construction: the file is named
// by its place in the run, never by its path (paths often hold patient names), and no
// attribute value or message is carried.
struct FileEvent {
  std::size_t id = 0;              // the file's index in the run's sorted input list
  std::size_t done = 0;            // files done so far, this one included
  std::size_t total = 0;           // files the run looks at
  std::string_view status;         // the outcome's name ("written", "failed", ...)
  std::optional<ErrorCode> error;  // why it was not written, when it was not
  std::uint64_t bytes = 0;         // the input's size
};

// A run's events, for a front end: the terminal's progress bar is one listener, a web page or
// a gateway another. file_done is called from worker threads, concurrently: implementations
// must be thread-safe and must not throw. started and finished come from the thread that
// called the run, before the first and after the last file_done.
class RunListener {
 public:
  virtual ~RunListener() = default;
  virtual void started(std::size_t total) { (void)total; }
  virtual void file_done(const FileEvent& event) { (void)event; }
  virtual void finished(std::size_t done, std::size_t total, RunEnd end) {
    (void)done, (void)total, (void)end;
  }
};

// The terminal's progress bar (Progress) as a listener.
class ProgressBarListener final : public RunListener {
 public:
  ProgressBarListener(std::string label, ProgressDisplay display)
      : label_(std::move(label)), display_(display) {}
  void started(std::size_t total) override { progress_.emplace(label_, total, display_); }
  void file_done(const FileEvent& event) override {
    if (progress_) progress_->advance(event.bytes);
  }
  void finished(std::size_t, std::size_t, RunEnd) override {
    if (progress_) progress_->finish();
  }

 private:
  std::string label_;
  ProgressDisplay display_;
  std::optional<Progress> progress_;
};

// Calls work(i) for every i in [0, count) on `threads` threads (at least one). Each index
// is handed out once; work must not throw (exceptions are caught and passed to on_error).
// With `cancel`, no index is handed out once it is cancelled (those already running finish).
void run_parallel(std::size_t count, unsigned threads, const std::function<void(std::size_t)>& work,
                  const std::function<void(std::size_t, const std::string&)>& on_error,
                  const CancelToken* cancel = nullptr);

// The number of threads to use when the user gave none (0): the hardware's.
unsigned default_threads(unsigned requested);

}  // namespace radguard::batch
