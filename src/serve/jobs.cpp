#include "serve/jobs.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "batch/batch.hpp"
#include "core/private_folder.hpp"
#include "crypto/crypto.hpp"
#include "share/archive.hpp"
#include "share/share.hpp"

namespace radguard::serve {

namespace fs = std::filesystem;

namespace {

enum class JobState : std::uint8_t { receiving, waiting, working, done, failed };

const char* state_name(JobState s) {
  switch (s) {
    case JobState::receiving: return "receiving";
    case JobState::waiting: return "waiting";
    case JobState::working: return "working";
    case JobState::done: return "done";
    case JobState::failed: return "failed";
  }
  return "failed";
}

struct Job {
  std::string id;
  PrivateFolder folder;
  std::atomic<JobState> state{JobState::receiving};
  std::atomic<bool> counting{false};  // the share run has said how many files it looks at
  std::atomic<std::size_t> done{0}, total{0};
  batch::CancelToken cancel;
  mutable std::mutex mutex;  // guards what follows
  std::string error;         // plain words, no path, no value
  nlohmann::json report;     // share's report_json, without the output path
  std::vector<share::Preview> previews;

  Job(std::string id_in, PrivateFolder folder_in)
      : id(std::move(id_in)), folder(std::move(folder_in)) {}
  fs::path input() const { return folder.path() / "input"; }
  fs::path copy() const { return folder.path() / "copy"; }
  fs::path zip() const { return folder.path() / "result.zip"; }
  // Pictures from before (they show what was removed): this page only, never in the copy.
  fs::path before() const { return folder.path() / "before"; }
};

class JobListener final : public batch::RunListener {
 public:
  explicit JobListener(Job& job) : job_(job) {}
  void started(std::size_t total) override {
    job_.total = total;
    job_.counting = true;
  }
  void file_done(const batch::FileEvent& event) override { job_.done = event.done; }

 private:
  Job& job_;
};

// Plain words for why a job failed: never the library's message when it may name a path.
std::string plain_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::policy:
      return e.message;  // "nothing could be shared: ..." with plain reasons only
    case ErrorCode::malformed_dicom:
      return "a file could not be read (a damaged zip file?)";
    case ErrorCode::io:
      return "the files could not be written on this computer (is the disk full?)";
    default:
      return "the copy could not be made (an error inside radguard)";
  }
}

}  // namespace

bool valid_job_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (const char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

struct JobStore::State {
  PrivateFolder root;  // destroyed last: every job folder is inside it
  JobStoreOptions options;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, std::shared_ptr<Job>, std::less<>> jobs;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  std::thread worker;

  State(PrivateFolder root_in, JobStoreOptions options_in)
      : root(std::move(root_in)), options(std::move(options_in)) {}

  std::shared_ptr<Job> find(std::string_view id) const {
    std::lock_guard lock(mutex);
    const auto it = jobs.find(id);
    return it == jobs.end() ? nullptr : it->second;
  }

  void work() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      if (!job->cancel.cancelled()) run(*job);
      // The last reference to a deleted job goes here: its folder with it.
    }
  }

  void run(Job& job) const {
    job.state = JobState::working;
    JobListener listener(job);
    share::ShareOptions share_options;
    // Each upload on its own: share opens a zip given as an input, not one inside a folder.
    std::error_code listed;
    for (const auto& entry : fs::directory_iterator(job.input(), listed))
      share_options.inputs.push_back(entry.path());
    std::sort(share_options.inputs.begin(), share_options.inputs.end());
    share_options.max_unpacked_bytes = options.max_unpacked_bytes;
    share_options.output = job.copy();
    share_options.threads = options.threads;
    share_options.progress = batch::ProgressDisplay::never;
    share_options.listener = &listener;
    share_options.cancel = &job.cancel;
    share_options.before_previews = job.before();
    auto report = share::run_share(share_options);
    std::error_code ec;
    fs::remove_all(job.input(), ec);  // the originals are not needed any more
    if (!report) {
      std::lock_guard lock(job.mutex);
      job.error = plain_error(report.error());
      job.state = JobState::failed;
      return;
    }
    const fs::path partial = job.folder.path() / "result.zip.partial";
    if (auto s = share::write_zip(job.copy(), partial); !s) {
      std::lock_guard lock(job.mutex);
      job.error = plain_error(s.error());
      job.state = JobState::failed;
      return;
    }
    fs::rename(partial, job.zip(), ec);
    std::lock_guard lock(job.mutex);
    if (ec) {
      job.error = "the zip file could not be written on this computer";
      job.state = JobState::failed;
      return;
    }
    job.report = nlohmann::json::parse(share::report_json(*report), nullptr, false);
    if (job.report.is_object()) job.report.erase("output");  // a path of this computer
    job.previews = report->previews;
    job.state = JobState::done;
  }
};

JobStore::JobStore(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::unique_ptr<JobStore>> JobStore::create(const JobStoreOptions& options) {
  auto root = PrivateFolder::create(options.parent, "radguard-serve-");
  if (!root) return std::unexpected(root.error());
  auto state = std::make_unique<State>(std::move(*root), options);
  State* s = state.get();
  s->worker = std::thread([s] { s->work(); });
  return std::unique_ptr<JobStore>(new JobStore(std::move(state)));
}

JobStore::~JobStore() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    for (auto& [id, job] : state_->jobs) job->cancel.cancel();
  }
  state_->wake.notify_all();
  if (state_->worker.joinable()) state_->worker.join();
  std::lock_guard lock(state_->mutex);
  state_->queue.clear();
  state_->jobs.clear();
}

const fs::path& JobStore::root() const { return state_->root.path(); }

Result<std::string> JobStore::create_job() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->jobs.size() >= state_->options.max_jobs)
      return fail(ErrorCode::conflict, "too many copies are kept: delete one first");
  }
  auto random = crypto::random_bytes(16);
  if (!random) return std::unexpected(random.error());
  const std::string id =
      crypto::to_hex(reinterpret_cast<const std::uint8_t*>(random->data()), random->size());
  auto folder = PrivateFolder::create(state_->root.path(), "job-");
  if (!folder) return std::unexpected(folder.error());
  auto job = std::make_shared<Job>(id, std::move(*folder));
  std::error_code ec;
  if (!fs::create_directory(job->input(), ec) || ec)
    return fail(ErrorCode::io, "cannot create a folder for the upload");
  std::lock_guard lock(state_->mutex);
  state_->jobs.emplace(id, std::move(job));
  return id;
}

std::optional<fs::path> JobStore::input_folder(std::string_view id) const {
  const auto job = state_->find(id);
  if (!job || job->state != JobState::receiving) return std::nullopt;
  return job->input();
}

Status JobStore::start(std::string_view id) {
  std::lock_guard lock(state_->mutex);
  const auto it = state_->jobs.find(id);
  if (it == state_->jobs.end() || it->second->state != JobState::receiving)
    return fail(ErrorCode::not_found, "no such job");
  it->second->state = JobState::waiting;
  state_->queue.push_back(it->second);
  state_->wake.notify_one();
  return {};
}

std::optional<std::string> JobStore::status_json(std::string_view id) const {
  const auto job = state_->find(id);
  if (!job) return std::nullopt;
  using nlohmann::json;
  const JobState state = job->state;
  json doc = {{"id", job->id}, {"state", state_name(state)}};
  if (state == JobState::working) {
    doc["phase"] = job->counting ? "cleaning" : "looking at the files and for faces in head scans";
    doc["done"] = job->done.load();
    doc["total"] = job->total.load();
  }
  std::lock_guard lock(job->mutex);
  if (state == JobState::failed) doc["error"] = job->error;
  if (state == JobState::done) {
    doc["report"] = job->report;
    json previews = json::array();
    for (const auto& p : job->previews) {
      json preview = {{"url", "/api/jobs/" + job->id + "/" + p.file}, {"caption", p.caption}};
      if (!p.before.empty()) preview["before"] = "/api/jobs/" + job->id + "/previews/" + p.before;
      previews.push_back(std::move(preview));
    }
    doc["previews"] = std::move(previews);
    doc["download"] = "/api/jobs/" + job->id + "/result.zip";
  }
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

std::optional<fs::path> JobStore::result_zip(std::string_view id) const {
  const auto job = state_->find(id);
  if (!job || job->state != JobState::done) return std::nullopt;
  return job->zip();
}

std::optional<fs::path> JobStore::preview(std::string_view id, std::string_view name) const {
  const auto job = state_->find(id);
  if (!job || job->state != JobState::done) return std::nullopt;
  std::lock_guard lock(job->mutex);
  for (const auto& p : job->previews) {
    if (p.file == "previews/" + std::string(name)) return job->copy() / p.file;
    if (!p.before.empty() && p.before == name) return job->before() / p.before;
  }
  return std::nullopt;
}

bool JobStore::remove(std::string_view id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(state_->mutex);
    const auto it = state_->jobs.find(id);
    if (it == state_->jobs.end()) return false;
    job = std::move(it->second);
    state_->jobs.erase(it);
    std::erase(state_->queue, job);
  }
  job->cancel.cancel();
  return true;  // `job` goes here, or when the worker lets go of it
}

}  // namespace radguard::serve
