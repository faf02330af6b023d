#pragma once
// The jobs of `radguard serve`: each upload is a job in its own private folder (0700, inside
// the server's private folder), shared by `radguard share` on one worker thread, its result
// kept until the user deletes the job or the server stops. No HTTP here.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace radguard::serve {

struct JobStoreOptions {
  std::filesystem::path parent;  // where the server's private folder goes ("" = system temp)
  unsigned threads = 0;          // share's worker threads (0 = one per core)
  std::size_t max_jobs = 16;     // jobs kept at once; more are refused until one is deleted
  std::uint64_t max_unpacked_bytes = 16ULL << 30;  // what one job's zips may unpack to
};

class JobStore {
 public:
  [[nodiscard]] static Result<std::unique_ptr<JobStore>> create(const JobStoreOptions& options);
  // Cancels every job, waits for the worker, removes every folder.
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // The server's private folder (every job's folder is inside it).
  const std::filesystem::path& root() const;

  // A new job receiving its files: its id (32 hex digits, random). ErrorCode::conflict when
  // max_jobs are kept already.
  [[nodiscard]] Result<std::string> create_job();
  // Where a receiving job's uploaded files go; nullopt for an unknown id or a job no longer
  // receiving.
  std::optional<std::filesystem::path> input_folder(std::string_view id) const;
  // Queues a receiving job for sharing. ErrorCode::not_found for an unknown id.
  [[nodiscard]] Status start(std::string_view id);
  // The job as JSON for the page and for scripts: state ("receiving", "waiting", "working",
  // "done", "failed"), progress, and when done share's report (counts, per file of the copy
  // what was done to its pixels, what was left out and why: no attribute value, no path of
  // the input) with the previews' addresses. nullopt for an unknown id.
  std::optional<std::string> status_json(std::string_view id) const;
  // The finished job's copy as one zip; nullopt until it is done.
  std::optional<std::filesystem::path> result_zip(std::string_view id) const;
  // A preview PNG of a finished job: in the copy ("p12.png") or from before, kept outside the
  // copy ("b12.png"); nullopt for any other name.
  std::optional<std::filesystem::path> preview(std::string_view id, std::string_view name) const;
  // Cancels and forgets a job; its folder is removed now, or as soon as the worker lets go of
  // it when it is being shared. False for an unknown id.
  bool remove(std::string_view id);

 private:
  struct State;
  explicit JobStore(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// True for a job id as create_job makes them (32 lowercase hex digits).
[[nodiscard]] bool valid_job_id(std::string_view id);

}  // namespace radguard::serve
