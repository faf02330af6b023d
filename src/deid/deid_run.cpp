#include "deid/deid_run.hpp"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/version.hpp"
#include "crypto/crypto.hpp"
#include "deid/path_list.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"
#include "standard/tables.hpp"
#include "volume/nifti.hpp"

namespace radguard::deid {

namespace fs = std::filesystem;

std::string_view file_status_name(FileStatus status) {
  switch (status) {
    case FileStatus::written:
      return "written";
    case FileStatus::failed:
      return "failed";
    case FileStatus::skipped_not_dicom:
      return "skipped_not_dicom";
    case FileStatus::dicomdir_dropped:
      return "dicomdir_dropped";
    case FileStatus::duplicate:
      return "duplicate";
  }
  return "failed";
}

int DeidRunReport::exit_code() const {
  // A run that found nothing to de-identify did not do what was asked (a wrong folder, a
  // CD whose images are all in an unsupported form): not a success.
  const bool any_failed = count(FileStatus::failed) > 0 || count(FileStatus::duplicate) > 0 ||
                          !missing_inputs.empty() || dicom_inputs() == 0 ||
                          end == batch::RunEnd::cancelled;
  return any_failed ? kExitSomeFailed : kExitSuccess;
}

Result<fs::path> output_name(const InstanceIdentity& identity) {
  if (identity.sop_instance_uid.empty())
    return fail(ErrorCode::malformed_dicom, "no SOP Instance UID");
  // UIDs become path components: anything but a well-formed UID (with Retain UIDs it is the
  // input's own text) could name a place outside the output folder.
  auto is_uid = [](const std::string& uid) {
    return !uid.empty() && uid.size() <= 64 && uid.front() != '.' &&
           uid.find_first_not_of("0123456789.") == std::string::npos;
  };
  for (const std::string* uid :
       {&identity.study_uid, &identity.series_uid, &identity.sop_instance_uid}) {
    if (!uid->empty() && !is_uid(*uid))
      return fail(ErrorCode::malformed_dicom,
                  "a Study, Series or SOP Instance UID is not a valid UID");
  }
  auto component = [](const std::string& uid) {
    return uid.empty() ? std::string("unknown") : uid;
  };
  return fs::path(component(identity.study_uid)) / component(identity.series_uid) /
         (identity.sop_instance_uid + ".dcm");
}

Result<fs::path> deidentify_instance(const fs::path& id, dicom::DicomFile& file,
                                     const HeaderStage& stage,
                                     std::span<const PixelStage> pixel_stages, PixelWork& work,
                                     std::span<std::atomic<std::int64_t>> stage_nanoseconds) {
  // A pixel header that disagrees with its pixel data is not released as it is.
  if (auto consistent = dicom::check_pixel_consistency(file); !consistent)
    return std::unexpected(consistent.error());
  for (std::size_t k = 0; k < pixel_stages.size(); ++k) {
    const PixelStage& pixel_stage = pixel_stages[k];
    const auto stage_start = std::chrono::steady_clock::now();
    auto cleaned = pixel_stage.run(id, file, work);
    if (k < stage_nanoseconds.size())
      stage_nanoseconds[k].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now() - stage_start)
                                         .count());
    if (!cleaned) {
      work.refused_by = pixel_stage.name;
      return std::unexpected(cleaned.error());
    }
  }
  auto identity = stage.apply(file);
  if (!identity) return std::unexpected(identity.error());
  return output_name(*identity);
}

namespace {

std::vector<std::string> components_of(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto slash = path.find('/', start);
    parts.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

// An output name as the run's claims hold it: 128 bits of its SHA-256, in place (a 16-byte
// std::string is one heap block more per file than a short string holds).
struct NameDigest {
  std::array<std::uint64_t, 2> words{};
  bool operator==(const NameDigest&) const = default;
};
struct NameDigestHash {
  std::size_t operator()(const NameDigest& digest) const noexcept { return digest.words[0]; }
};

struct Prepared {
  FileOutcome outcome;
  std::optional<PendingFile> pending;  // the finished output, not yet published
};

void add_stage_time(std::span<std::atomic<std::int64_t>> stage_nanoseconds, std::size_t k,
                    std::chrono::steady_clock::time_point start) {
  if (k < stage_nanoseconds.size())
    stage_nanoseconds[k].fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - start)
                                       .count());
}

// A NIfTI volume (VolumeInputs::deidentify): no header text, the volume stages, a keyed name.
Prepared prepare_volume(const fs::path& input, const std::string& relative,
                        const fs::path& output_root,
                        const HeaderStage& stage, std::span<const PixelStage> pixel_stages,
                        const OutputFinisher& finish,
                        std::span<std::atomic<std::int64_t>> stage_nanoseconds) {
  Prepared result;
  FileOutcome& outcome = result.outcome;
  outcome.input = input;
  std::error_code ec;
  outcome.bytes = fs::file_size(input, ec);
  // No header says whether the names of the file and its folders are the patient's: below
  // the input given, they are masked in reports always.
  for (auto& component : components_of(relative))
    if (!component.empty()) outcome.identifying_components.push_back(std::move(component));
  auto failed = [&](const Error& error) {
    // Named like a volume but not NIfTI at all: skipped, as a file that is not DICOM is.
    outcome.status = error.code == ErrorCode::not_dicom ? FileStatus::skipped_not_dicom
                                                        : FileStatus::failed;
    outcome.error = error.code;
    outcome.reason = error.message;
    return std::move(result);
  };
  if (finish)
    return failed(Error{ErrorCode::unsupported,
                        "a NIfTI volume cannot carry a DICOM signature; not written"});
  auto digest = crypto::sha256_file(input);
  if (!digest) return failed(digest.error());
  auto image = volume::read_nifti(input);
  if (!image) return failed(image.error());
  image->header = volume::clean_nifti_header(image->header);
  for (std::size_t k = 0; k < pixel_stages.size(); ++k) {
    if (!pixel_stages[k].run_volume) continue;
    const auto stage_start = std::chrono::steady_clock::now();
    auto cleaned = pixel_stages[k].run_volume(image->volume, outcome.pixels);
    add_stage_time(stage_nanoseconds, k, stage_start);
    if (!cleaned) {
      outcome.pixels.refused_by = pixel_stages[k].name;
      return failed(cleaned.error());
    }
  }
  const fs::path name =
      fs::path("volumes") /
      (stage.pseudonymizer().token("nifti-volume", crypto::to_hex(*digest), 32) + ".nii.gz");
  auto bytes = volume::encode_nifti(*image, volume::NiftiCompression::gzip);
  if (!bytes) return failed(bytes.error());
  auto pending = PendingFile::create(output_root / name);
  if (!pending) return failed(pending.error());
  using fs::perms;
  if (auto written = pending->write_contents(
          *bytes, perms::owner_read | perms::owner_write | perms::group_read | perms::others_read);
      !written)
    return failed(written.error());
  outcome.status = FileStatus::written;
  outcome.output = name;
  result.pending.emplace(std::move(*pending));
  return result;
}

Prepared prepare(const fs::path& input, const std::string& relative, const fs::path& output_root,
                 const HeaderStage& stage, std::span<const PixelStage> pixel_stages,
                 const OutputFinisher& finish, VolumeInputs volumes,
                 std::span<std::atomic<std::int64_t>> stage_nanoseconds = {}) {
  if (volumes == VolumeInputs::deidentify && volume::is_nifti_name(input))
    return prepare_volume(input, relative, output_root, stage, pixel_stages, finish,
                          stage_nanoseconds);
  Prepared result;
  FileOutcome& outcome = result.outcome;
  outcome.input = input;
  std::error_code ec;
  outcome.bytes = fs::file_size(input, ec);
  auto failed = [&](const Error& error, FileStatus status = FileStatus::failed) {
    outcome.status = status;
    outcome.error = error.code;
    outcome.reason = error.message;
    return std::move(result);
  };

  auto file = dicom::DicomFile::open(input);
  if (!file) {
    return failed(file.error(), file.error().code == ErrorCode::not_dicom
                                    ? FileStatus::skipped_not_dicom
                                    : FileStatus::failed);
  }
  // Before anything changes the header: which parts of the path name the patient.
  if (const PhiValues identifiers = path_identifiers(*file); !identifiers.empty()) {
    for (const auto& component : components_of(relative))
      if (!component.empty() && identifiers.names_in(component))
        outcome.identifying_components.push_back(component);
  }
  if (file->is_dicomdir())
    return failed(Error{ErrorCode::policy, "DICOMDIR not copied: it lists patient identities"},
                  FileStatus::dicomdir_dropped);
  auto name =
      deidentify_instance(input, *file, stage, pixel_stages, outcome.pixels, stage_nanoseconds);
  if (!name) return failed(name.error());
  auto pending = PendingFile::create(output_root / *name);
  if (!pending) return failed(pending.error());
  if (auto saved = file->save(pending->temp_path(), {std::string(kImplementationClassUid),
                                                     std::string(kImplementationVersionName)});
      !saved)
    return failed(saved.error());
  if (finish) {
    if (auto finished = finish(pending->temp_path()); !finished) return failed(finished.error());
  }
  outcome.status = FileStatus::written;
  outcome.output = *name;
  result.pending.emplace(std::move(*pending));
  return result;
}

// Written outputs waiting for their flush, and the threads that flush and publish them. A
// flush is a wait on the disk (a journal commit, about a millisecond for an image), not work:
// on threads of their own the flushes overlap each other (concurrent fsyncs share a journal
// commit) and the workers' next files, where a worker flushing its own file leaves its core
// idle for as long. Bounded: a worker that finds the queue full waits.
class Flushers {
 public:
  using Publish = std::function<void(std::size_t, Prepared)>;
  using OnError = std::function<void(std::size_t, const std::string&)>;
  // Tuned on a 2-core machine: about two fsyncs in flight keep up with two workers at a
  // millisecond each; more absorb a slow commit. Threads that wait cost no CPU.
  static constexpr unsigned kThreads = 4;
  static constexpr std::size_t kQueued = 2 * kThreads;

  // `publish` is called on the flushers' threads; what it throws goes to `on_error`. No more
  // threads than `files` (a one-file run starts one).
  Flushers(std::size_t files, Publish publish, OnError on_error)
      : publish_(std::move(publish)), on_error_(std::move(on_error)) {
    const auto count = static_cast<unsigned>(std::clamp<std::size_t>(files, 1, kThreads));
    threads_.reserve(count);
    // A thread that cannot start (EAGAIN under a process limit) must not leave those already
    // started waiting for a close that the destructor, never run, would have given.
    try {
      for (unsigned t = 0; t < count; ++t) threads_.emplace_back([this] { drain(); });
    } catch (...) {
      finish();
      throw;
    }
  }
  ~Flushers() { finish(); }
  Flushers(const Flushers&) = delete;
  Flushers& operator=(const Flushers&) = delete;

  void push(std::size_t index, Prepared prepared) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return queue_.size() < kQueued; });
    queue_.emplace_back(index, std::move(prepared));
    ready_.notify_one();
  }
  // Publishes everything queued, then stops the threads.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
    threads_.clear();  // joins
  }

 private:
  void drain() {
    for (;;) {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return !queue_.empty() || closed_; });
      if (queue_.empty()) return;
      auto [index, prepared] = std::move(queue_.front());
      queue_.pop_front();
      room_.notify_one();
      lock.unlock();
      try {
        publish_(index, std::move(prepared));
      } catch (const std::exception& e) {
        on_error_(index, e.what());
      } catch (...) {
        on_error_(index, "unknown exception");
      }
    }
  }
  Publish publish_;
  OnError on_error_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::pair<std::size_t, Prepared>> queue_;
  bool closed_ = false;
  std::vector<std::jthread> threads_;
};

// Flushes every folder (fsync), several at a time: a run writes one folder per series, and
// each flush is a wait on the disk (the device's cache flush), which concurrent flushes share.
// The first failure in the folders' order, or success.
Status sync_folders(const std::set<std::string>& folders) {
  constexpr unsigned kFolderFlushThreads = 8;
  const std::vector<std::string> list(folders.begin(), folders.end());
  std::vector<Status> synced(list.size());
  batch::run_parallel(
      list.size(), kFolderFlushThreads, [&](std::size_t k) { synced[k] = sync_folder(list[k]); },
      [&](std::size_t k, const std::string& what) {
        synced[k] = fail(ErrorCode::internal, "internal error: " + what);
      });
  for (auto& status : synced)
    if (!status) return status;
  return {};
}

// Why an input's output is another's: a volume's name comes from its content.
std::string duplicate_reason(const fs::path& path) {
  return volume::is_nifti_name(path) ? "same volume as an input that came first"
                                     : "same SOP Instance UID as an input that came first";
}

}  // namespace

FileOutcome deidentify_file(const fs::path& input, const fs::path& output_root,
                            const HeaderStage& stage, std::span<const PixelStage> pixel_stages,
                            const OutputFinisher& finish) {
  Prepared prepared = prepare(input, input.filename().string(), output_root, stage,
                              pixel_stages, finish, VolumeInputs::skip);
  if (prepared.pending) {
    if (auto committed =
            prepared.pending->commit(std::nullopt, PendingFile::Existing::keep_if_different);
        !committed) {
      prepared.outcome.status = FileStatus::failed;
      prepared.outcome.error = committed.error().code;
      prepared.outcome.reason = committed.error().message;
      prepared.outcome.output.clear();
    }
  }
  return prepared.outcome;
}

Result<DeidRunReport> run_deid(const DeidRunOptions& options, const HeaderStage& stage) {
  const auto start = std::chrono::steady_clock::now();
  // Found first: the check that the output lies outside every input folder then needs no stat
  // per input, which a shard's list of files would pay once per file.
  batch::InputSet found = batch::find_files(options.inputs);
  if (auto outside = batch::require_outside_folders(options.output, found.folders); !outside)
    return std::unexpected(outside.error());
  // The sorted list is held front-coded for the run (PathList): the plain strings are
  // released as they are copied in, and their pages handed back, so what stays per input is
  // its file name and 12 bytes, also while the pixel stages prepare below.
  std::vector<batch::MissingInput> missing_inputs = std::move(found.missing);
  std::vector<std::string> input_roots = std::move(found.canonical_inputs);
  input_roots.insert(input_roots.end(), options.report_roots.begin(), options.report_roots.end());
  const PathList files(std::move(found.files));
  found = {};
  ::malloc_trim(0);
  std::error_code ec;
  fs::create_directories(options.output, ec);
  if (ec)
    return fail(ErrorCode::io, "cannot create " + options.output.string() + ": " + ec.message());

  // Temporary files a killed run left in the output folder (see remove_stale_temporaries); a
  // shard looks only where its own files went, after them (StaleTemporaries).
  std::size_t stale = options.stale_temporaries == StaleTemporaries::whole_output
                          ? remove_stale_temporaries(options.output)
                          : 0;

  DeidRunReport report;
  // Stages that look at every input first (defacing groups and defaces whole series).
  for (const PixelStage& pixel_stage : options.pixel_stages) {
    StageTiming timing{pixel_stage.name, 0, 0};
    if (pixel_stage.prepare) {
      const auto stage_start = std::chrono::steady_clock::now();
      if (auto prepared = pixel_stage.prepare(
              PixelStageContext{options.inputs, options.threads, options.progress});
          !prepared)
        return std::unexpected(with_context(prepared.error(), pixel_stage.name));
      timing.prepare_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - stage_start).count();
    }
    report.stage_timings.push_back(std::move(timing));
  }
  std::vector<std::atomic<std::int64_t>> stage_nanoseconds(options.pixel_stages.size());

  report.missing_inputs = std::move(missing_inputs);
  report.input_roots = std::move(input_roots);
  report.files_seen = files.size();

  // The lowest input index claiming an output name wins, whatever order threads finish in.
  // Names are held as 128-bit digests so the index stays small on huge runs.
  std::mutex mutex;
  struct Claim {
    std::size_t index;
    bool committed;  // this run published the file under that name
  };
  std::unordered_map<NameDigest, Claim, NameDigestHash> claims;
  std::set<std::string> written_folders;  // flushed once each at the end of the run
  std::set<std::string> file_folders;     // the folders written files are in (a subset)
  std::vector<FileOutcome> written, pixel_work;
  std::array<std::atomic<std::size_t>, 5> counts{};
  std::atomic<std::uint64_t> bytes{0};
  auto claim_key = [](const fs::path& name) {
    const auto digest = crypto::sha256(name.native());
    NameDigest key;
    std::memcpy(key.words.data(), digest.data(), sizeof key.words);
    return key;
  };
  std::vector<std::string> identifying;
  report.problems = ProblemLog(options.problems_held);
  Status logged;  // the first failure to spill an outcome: the report would be incomplete
  // Set with `logged`: from then on no file is started (those in flight finish), so a run
  // whose report can no longer be made whole stops at once rather than at its end.
  std::atomic<bool> stopped{false};
  // Outcomes reach the report in input order, as soon as every lower index is done: only the
  // outcomes of files finished ahead of a slower one wait (every file finished while the
  // slowest in flight runs: bounded by throughput times that file's time, not by the thread
  // count), so memory does not grow with the run's length. An input is superseded (its output replaced by a duplicate's
  // with a lower index) only while a lower index is still running, so by the time it is
  // passed on, what it is is final.
  std::map<std::size_t, FileOutcome> waiting;
  // A duplicate's output name (an input refused for a name a lower index holds, or superseded
  // by one), until it is passed on: it then names the name's winner, the lowest index that
  // claimed it (every lower index is done by then), not whichever input held the name when the
  // duplicate was settled (files are published in any order).
  std::unordered_map<std::size_t, NameDigest> replaced_by, duplicate_names;
  auto first_claimant = [&](const NameDigest& key) { return files[claims.at(key).index]; };
  std::size_t next_in_order = 0;
  auto pass_on = [&](std::size_t i, FileOutcome outcome) {  // under `mutex`, in input order
    if (const auto it = replaced_by.find(i); it != replaced_by.end()) {
      outcome = FileOutcome{};
      outcome.input = files[i];
      outcome.status = FileStatus::duplicate;
      outcome.error = ErrorCode::conflict;
      outcome.reason = duplicate_reason(files[i]);
      outcome.other_input = first_claimant(it->second);
      replaced_by.erase(it);
    } else if (const auto name = duplicate_names.find(i); name != duplicate_names.end()) {
      outcome.other_input = first_claimant(name->second);
      duplicate_names.erase(name);
    }
    counts[static_cast<std::size_t>(outcome.status)].fetch_add(1);
    if (outcome.status == FileStatus::written && outcome.pixels.any()) {
      FileOutcome brief;
      brief.input = outcome.input;
      brief.output = outcome.output;
      brief.status = outcome.status;
      brief.pixels = outcome.pixels;
      pixel_work.push_back(std::move(brief));
    }
    if (outcome.status != FileStatus::written) {
      if (auto added = report.problems.add(std::move(outcome)); !added && logged) {
        logged = added;
        stopped.store(true);
      }
    } else if (options.written == WrittenOutcomes::keep) {
      written.push_back(std::move(outcome));
    }
  };
  auto record = [&](std::size_t i, FileOutcome outcome) {
    bytes.fetch_add(outcome.bytes);
    std::lock_guard lock(mutex);
    for (auto& component : outcome.identifying_components) {
      if (std::find(identifying.begin(), identifying.end(), component) == identifying.end())
        identifying.push_back(component);
    }
    if (outcome.status == FileStatus::written && options.written == WrittenOutcomes::count_only &&
        !outcome.pixels.any()) {
      outcome = FileOutcome{};  // only its status is needed from here on
      outcome.status = FileStatus::written;
    }
    waiting.emplace(i, std::move(outcome));
    while (!waiting.empty() && waiting.begin()->first == next_in_order) {
      auto node = waiting.extract(waiting.begin());
      pass_on(node.key(), std::move(node.mapped()));
      ++next_in_order;
    }
  };

  // Events: the terminal's progress bar is one listener, the caller's (if any) another.
  batch::ProgressBarListener bar("deid", options.progress);
  const std::size_t total = files.size();
  std::atomic<std::size_t> done{0};
  auto notify = [&](std::size_t i, const FileOutcome& outcome) {
    const batch::FileEvent event{i,
                                 done.fetch_add(1) + 1,
                                 total,
                                 file_status_name(outcome.status),
                                 outcome.status == FileStatus::written ? std::nullopt
                                                                       : outcome.error,
                                 outcome.bytes};
    bar.file_done(event);
    if (options.listener != nullptr) options.listener->file_done(event);
  };
  bar.started(total);
  if (options.listener != nullptr) options.listener->started(total);
  // Publishing a written file: its flush (on a flusher thread, outside the lock), then its
  // claim on the output name and its rename (under the lock: the lowest index wins), then its
  // outcome. Must not throw (the flushers catch and report as internal errors).
  auto publish = [&](std::size_t i, Prepared prepared) {
    // A file prepared ahead of its flush is not published once the run is cancelled or
    // stopped (its temporary is removed with it): it counts as not started, as the worker
    // checks between files; a cancelled export must release nothing.
    if (stopped.load() || (options.cancel != nullptr && options.cancel->cancelled())) return;
    if (prepared.pending) {
      if (auto flushed = prepared.pending->flush(); !flushed) {
        prepared.outcome.status = FileStatus::failed;
        prepared.outcome.error = flushed.error().code;
        prepared.outcome.reason = flushed.error().message;
        prepared.outcome.output.clear();
        prepared.pending.reset();
      }
    }
    if (prepared.pending) {
      std::lock_guard lock(mutex);
      const NameDigest key = claim_key(prepared.outcome.output);
      const auto [it, inserted] = claims.try_emplace(key, Claim{i, false});
      if (!inserted && it->second.index < i) {
        duplicate_names.emplace(i, key);
        prepared.outcome.status = FileStatus::duplicate;
        prepared.outcome.error = ErrorCode::conflict;
        prepared.outcome.reason = duplicate_reason(prepared.outcome.output);
        prepared.outcome.other_input = files[it->second.index];
        prepared.outcome.output.clear();
        prepared.pending.reset();
      } else {
        // A file this run published under the name may be replaced by the input that
        // comes first; a file of an earlier run only with --overwrite.
        const bool ours = !inserted && it->second.committed;
        if (!inserted) {
          replaced_by[it->second.index] = key;
          it->second = Claim{i, false};
        }
        const auto existing = ours || options.existing == ExistingOutputs::replace
                                  ? PendingFile::Existing::replace
                                  : PendingFile::Existing::keep_if_different;
        if (auto committed = prepared.pending->commit(std::nullopt, existing,
                                                      PendingFile::FolderSync::deferred);
            !committed) {
          prepared.outcome.status = FileStatus::failed;
          prepared.outcome.error = committed.error().code;
          prepared.outcome.reason = committed.error().message;
          prepared.outcome.output.clear();
        } else {
          it->second.committed = true;
          // The output root and every folder below it on the way to the file (study
          // and series, or volumes/) may name something new.
          fs::path folder = options.output;
          written_folders.insert(folder.string());
          for (const auto& part : prepared.outcome.output.parent_path()) {
            folder /= part;
            written_folders.insert(folder.string());
          }
          file_folders.insert(folder.string());
        }
      }
    }
    notify(i, prepared.outcome);
    record(i, std::move(prepared.outcome));
  };
  auto internal_error = [&](std::size_t i, const std::string& what) {
    FileOutcome outcome;
    outcome.input = files[i];
    outcome.status = FileStatus::failed;
    outcome.error = ErrorCode::internal;
    outcome.reason = "internal error: " + what;
    notify(i, outcome);
    record(i, std::move(outcome));
  };
  const batch::InputRoots roots(options.inputs, report.input_roots);
  {
    // One flusher for one worker: files are then published in the order they were begun,
    // and a cancel between files leaves exactly the files before it.
    const bool one_worker = batch::default_threads(options.threads) == 1;
    Flushers flushers(one_worker ? 1 : files.size(), publish, internal_error);
    batch::run_parallel(
        files.size(), batch::default_threads(options.threads),
        [&](std::size_t i) {
          if (stopped.load()) return;
          const std::string input = files[i];
          Prepared prepared =
              prepare(input, roots.relative(input), options.output, stage,
                      options.pixel_stages, options.finish, options.volumes, stage_nanoseconds);
          if (prepared.pending) {
            flushers.push(i, std::move(prepared));
          } else {
            notify(i, prepared.outcome);
            record(i, std::move(prepared.outcome));
          }
        },
        internal_error, options.cancel);
    flushers.finish();  // every file handed to them published (or failed) before the count
  }
  // Cancelled between files: the files begun were finished (and published, each whole), no
  // other was started.
  report.end = done.load() < total ? batch::RunEnd::cancelled : batch::RunEnd::completed;
  report.files_not_started = total - done.load();
  bar.finished(done.load(), total, report.end);
  if (options.listener != nullptr) options.listener->finished(done.load(), total, report.end);
  // A temporary file lies beside its destination, so the folders this run's files went to
  // hold whatever a killed run of the same list left there.
  if (options.stale_temporaries == StaleTemporaries::written_folders)
    for (const auto& folder : file_folders)
      stale += remove_stale_temporaries(folder, FolderScan::this_folder);
  report.stale_temporaries_removed = stale;
  // The new names reach the disk before the run reports them written (each file's data was
  // flushed before its rename). A folder that cannot be flushed fails the run.
  if (auto synced = sync_folders(written_folders); !synced) return std::unexpected(synced.error());
  // Cancelled: the files after the first one not started wait still; they are final now.
  for (auto& [index, outcome] : waiting) pass_on(index, std::move(outcome));
  waiting.clear();
  if (logged) logged = report.problems.finish();  // the last spilled outcomes reach the file
  if (!logged)
    return std::unexpected(with_context(
        logged.error(), "the run stopped after " + std::to_string(done.load()) + " of " +
                            std::to_string(total) + " inputs (every file written is whole)"));
  report.written = std::move(written);
  report.pixel_work = std::move(pixel_work);
  for (std::size_t k = 0; k < report.stage_timings.size(); ++k)
    report.stage_timings[k].seconds = static_cast<double>(stage_nanoseconds[k].load()) / 1e9;
  for (std::size_t k = 0; k < counts.size(); ++k) report.counts[k] = counts[k].load();
  report.bytes_read = bytes.load();
  std::sort(identifying.begin(), identifying.end());
  report.identifying_components = std::move(identifying);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

namespace {

// How a report shows inputs, and the paths its reasons quote (see ReportPaths): relative to
// the input each lies under, identifying components masked. Built once per report, so that a
// report of a run over a list of thousands of files does not scan the list per entry.
class PathDisplay {
 public:
  PathDisplay(const DeidRunReport& report, const DeidRunOptions& options)
      : identifying_(report.identifying_components) {
    if (options.report_paths != ReportPaths::full)
      roots_.emplace(options.inputs, report.input_roots);
  }

  std::string path(const fs::path& input) const {
    if (!roots_) return input.string();
    std::string shown;
    bool first = true;
    for (const auto& component : components_of(roots_->relative(input.string()))) {
      if (!first) shown += '/';
      first = false;
      const bool identifying =
          std::binary_search(identifying_.begin(), identifying_.end(), component);
      shown += identifying && !component.empty() ? "<patient>" : component;
    }
    return shown;
  }

  // A reason may quote paths (a series refused because another file of it could not be
  // read): each word that is an input or lies under one is shown as path() shows it, then
  // identifying components left anywhere are masked.
  std::string reason(const std::string& text) const {
    if (!roots_) return text;
    std::string out;
    for (std::size_t pos = 0;;) {
      const auto end = std::min(text.find_first_of(" \t\n\"',;:()", pos), text.size());
      out += shown_word(std::string_view(text).substr(pos, end - pos));
      if (end == text.size()) break;
      out += text[end];
      pos = end + 1;
    }
    for (const auto& component : identifying_) {
      if (component.size() < 3) continue;
      for (auto pos = out.find(component); pos != std::string::npos;
           pos = out.find(component, pos + 9))
        out.replace(pos, component.size(), "<patient>");
    }
    return out;
  }

 private:
  // A word may carry something before its path ("file=/in/x"): the path is looked for from
  // the word's start, then from each '/' in it, leftmost first.
  std::string shown_word(std::string_view word) const {
    for (std::size_t from = 0; from != std::string_view::npos; from = word.find('/', from + 1)) {
      if (roots_->covers(word.substr(from)))
        return std::string(word.substr(0, from)) + path(fs::path(std::string(word.substr(from))));
      if (from + 1 >= word.size()) break;
    }
    return std::string(word);
  }

  const std::vector<std::string>& identifying_;
  std::optional<batch::InputRoots> roots_;
};

}  // namespace

nlohmann::json pixel_work_json(const PixelWork& p) {
  nlohmann::json entry = {{"frames", p.frames},
                          {"read_for_text", p.read_for_text},
                          {"frames_redacted", p.frames_redacted},
                          {"text_boxes", p.text_boxes},
                          {"defaced", p.defaced},
                          {"frames_defaced", p.frames_defaced}};
  return entry;
}

namespace {

// A refusal by a pixel stage, counted by stage name for pixel_counts_json.
void count_refusal(nlohmann::json& refused, const FileOutcome& o) {
  if (!o.pixels.refused_by.empty())
    refused[o.pixels.refused_by] = refused.value(o.pixels.refused_by, 0) + 1;
}

nlohmann::json pixel_counts_with(std::span<const FileOutcome> work, nlohmann::json refused) {
  std::size_t redacted = 0, read = 0, frames = 0, boxes = 0, defaced = 0, defaced_frames = 0;
  for (const auto& o : work) {
    read += o.pixels.read_for_text;
    redacted += o.pixels.frames_redacted > 0;
    frames += o.pixels.frames_redacted;
    boxes += o.pixels.text_boxes;
    defaced += o.pixels.defaced;
    defaced_frames += o.pixels.frames_defaced;
  }
  return {{"images_read_for_text", read}, {"images_redacted", redacted},
          {"frames_redacted", frames},    {"text_boxes", boxes},
          {"files_defaced", defaced},     {"frames_defaced", defaced_frames},
          {"refused_by_stage", std::move(refused)}};
}

// The problems of a run, read back; a failure to read them is an I/O error on the run's own
// temporary file, which no report can be made without: the caller fails with it.
[[nodiscard]] Status read_problems(const DeidRunReport& report,
                                   const std::function<void(const FileOutcome&)>& visit) {
  return report.problems.for_each(visit);
}

}  // namespace

nlohmann::json pixel_counts_json(std::span<const FileOutcome> work,
                                 std::span<const FileOutcome> problems) {
  nlohmann::json refused = nlohmann::json::object();
  for (const auto& o : problems) count_refusal(refused, o);
  return pixel_counts_with(work, std::move(refused));
}

nlohmann::json timings_json(std::span<const StageTiming> timings, double seconds) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& t : timings)
    stages.push_back({{"stage", t.name},
                      {"prepare_seconds", t.prepare_seconds},
                      {"file_seconds_summed_over_threads", t.seconds}});
  return {{"total_seconds", seconds}, {"pixel_stages", stages}};
}

namespace {

constexpr auto kReplaceInvalid = nlohmann::json::error_handler_t::replace;

// One array of per-file entries of report_json's document, written to the sink as the
// document's dump(2) writes it, entry by entry: these arrays are the bulk of a large run's
// report, and neither a tree of every entry nor their text is held.
class ReportArray {
 public:
  explicit ReportArray(const std::function<void(std::string_view)>& sink) : sink_(sink) {}
  void add(const nlohmann::json& entry) {
    // An element of a top-level key's array sits 4 spaces in. dump escapes control
    // characters inside strings, so each newline it writes starts a line of the entry.
    const std::string dumped = entry.dump(2, ' ', false, kReplaceInvalid);
    std::string text = any_ ? ",\n    " : "[\n    ";
    any_ = true;
    for (const char c : dumped) {
      text += c;
      if (c == '\n') text += "    ";
    }
    sink_(text);
  }
  // Closes the array as dump(2) writes it at the top level ("[]" when empty).
  void finish() { sink_(any_ ? "\n  ]" : "[]"); }

 private:
  const std::function<void(std::string_view)>& sink_;
  bool any_ = false;
};

// Where the empty array of the top-level `key` of `document` (a dump(2) of an object) starts.
// The marker starts with a newline and two spaces: no string value holds a raw newline, so
// only the top-level key matches.
std::size_t array_place(const std::string& document, std::string_view key) {
  const std::string marker = "\n  \"" + std::string(key) + "\": []";
  const auto at = document.find(marker);
  if (at == std::string::npos) throw std::logic_error("report_json: no array for " + marker);
  return at + marker.size() - 2;
}

// Lines of failure_text, given one failure at a time: failures in a row with the same reason
// share one line, so only the first of a run of them is held.
class FailureLines {
 public:
  FailureLines(std::ostream& out, const std::function<std::string(const FileOutcome&)>& name,
               const std::function<std::string(const std::string&)>& reason)
      : out_(out), name_(name), reason_(reason) {}
  void add(const FileOutcome& o) {
    if (first_ && first_->reason == o.reason) {
      ++more_;
      return;
    }
    finish();
    first_ = o;
  }
  void finish() {
    if (!first_) return;
    out_ << "error: " << name_(*first_) << ": " << reason_(first_->reason);
    if (more_ > 0)
      out_ << " (and " << more_ << " more input" << (more_ == 1 ? "" : "s")
           << " for the same reason)";
    out_ << "\n";
    first_.reset();
    more_ = 0;
  }

 private:
  std::ostream& out_;
  const std::function<std::string(const FileOutcome&)>& name_;
  const std::function<std::string(const std::string&)>& reason_;
  std::optional<FileOutcome> first_;
  std::size_t more_ = 0;
};

}  // namespace

Status write_report_json(const DeidRunReport& report, const HeaderStage& stage,
                         const DeidRunOptions& options,
                         const std::function<void(std::string_view)>& sink) {
  using nlohmann::json;
  const PathDisplay shown(report, options);
  json kept = json::array();
  for (const auto& k : stage.policy().kept_against_profile())
    kept.push_back({{"tag", k.tag.to_string()},
                    {"name", k.name},
                    {"kept_by", k.source},
                    {"direct_identifier", k.direct_identifier}});
  json refused = json::object();
  if (auto read = read_problems(report, [&](const FileOutcome& o) { count_refusal(refused, o); });
      !read)
    return read;
  json doc = {
      {"tool", "radguard"},
      {"version", std::string(kVersion)},
      {"command", "deid"},
      {"kept_against_profile", std::move(kept)},
      {"patient_identity_removed", !stage.policy().keeps_direct_identifier()},
      {"profile",
       {{"preset", stage.policy().preset()},
        {"options", stage.policy().option_names()},
        {"recipe_overrides", stage.policy().override_count()},
        {"table", standard::kProfileEdition},
        {"method", stage.method_description()}}},
      {"key_fingerprint", stage.pseudonymizer().key().fingerprint()},
      {"output", options.output.string()},
      {"input_paths", options.report_paths == ReportPaths::full
                          ? "full"
                          : "relative to the input given; components naming the patient "
                            "masked as <patient>"},
      {"counts",
       {{"files_seen", report.files_seen},
        {"written", report.count(FileStatus::written)},
        {"failed", report.count(FileStatus::failed)},
        {"refused_burned_in_text", report.burned_in_refused()},
        {"duplicates", report.count(FileStatus::duplicate)},
        {"skipped_not_dicom", report.count(FileStatus::skipped_not_dicom)},
        {"dicomdir_dropped", report.count(FileStatus::dicomdir_dropped)},
        {"missing_inputs", report.missing_inputs.size()},
        {"dicom_inputs", report.dicom_inputs()}}},
      {"pixels", pixel_counts_with(report.pixel_work, std::move(refused))},
      {"bytes_read", report.bytes_read},
      {"seconds", report.seconds},
      {"timings", timings_json(report.stage_timings, report.seconds)},
      {"pixel_work", json::array()},  // streamed in their places below
      {"failures", json::array()},
      {"skipped", json::array()},
      {"exit_code", report.exit_code()},
  };
  if (report.end == batch::RunEnd::cancelled)
    doc["cancelled"] = {{"files_not_started", report.files_not_started}};
  const std::string text = doc.dump(2, ' ', false, kReplaceInvalid);
  doc = nullptr;

  const auto problem_entry = [&](const FileOutcome& o) {
    json entry = {{"input", shown.path(o.input)},
                  {"status", file_status_name(o.status)},
                  {"error", o.error ? std::string(statuses_for(*o.error).name) : ""},
                  {"reason", shown.reason(o.reason)}};
    if (!o.other_input.empty()) entry["first_input"] = shown.path(o.other_input);
    if (!o.pixels.refused_by.empty()) entry["refused_by"] = o.pixels.refused_by;
    return entry;
  };
  const auto is_failure = [](const FileOutcome& o) {
    return o.status == FileStatus::failed || o.status == FileStatus::duplicate;
  };
  const std::function<Status(ReportArray&)> write_failures = [&](ReportArray& array) {
    if (auto read = read_problems(report, [&](const FileOutcome& o) {
          if (is_failure(o)) array.add(problem_entry(o));
        });
        !read)
      return read;
    for (const auto& m : report.missing_inputs)
      array.add({{"input", shown.path(m.path)},
                 {"status", "missing_input"},
                 {"error", "io"},
                 {"reason", shown.reason(m.reason)}});
    return Status{};
  };
  const std::function<Status(ReportArray&)> write_skipped = [&](ReportArray& array) {
    return read_problems(report, [&](const FileOutcome& o) {
      if (!is_failure(o)) array.add(problem_entry(o));
    });
  };
  const std::function<Status(ReportArray&)> write_pixel_work = [&](ReportArray& array) {
    for (const auto& o : report.pixel_work) {
      json entry = pixel_work_json(o.pixels);
      entry["input"] = shown.path(o.input);
      entry["output"] = o.output.generic_string();
      array.add(entry);
    }
    return Status{};
  };
  // The document's text up to each array's place, then the array, in the text's order.
  std::vector<std::pair<std::size_t, const std::function<Status(ReportArray&)>*>> places = {
      {array_place(text, "pixel_work"), &write_pixel_work},
      {array_place(text, "failures"), &write_failures},
      {array_place(text, "skipped"), &write_skipped}};
  std::sort(places.begin(), places.end());
  std::size_t from = 0;
  for (const auto& [at, write] : places) {
    sink(std::string_view(text).substr(from, at - from));
    ReportArray array(sink);
    if (auto written = (*write)(array); !written) return written;
    array.finish();
    from = at + 2;  // past the "[]" the array replaces
  }
  sink(std::string_view(text).substr(from));
  sink("\n");
  return {};
}

Result<std::string> report_json(const DeidRunReport& report, const HeaderStage& stage,
                                const DeidRunOptions& options) {
  std::string text;
  if (auto written =
          write_report_json(report, stage, options, [&](std::string_view piece) { text += piece; });
      !written)
    return std::unexpected(written.error());
  return text;
}

Result<std::string> report_text(const DeidRunReport& report, const DeidRunOptions& options) {
  const PathDisplay shown(report, options);
  std::ostringstream out;
  out << "de-identified " << report.count(FileStatus::written) << " of " << report.files_seen
      << " files in " << report.seconds << " s";
  out << "; failed " << report.count(FileStatus::failed);
  if (const std::size_t refused = report.burned_in_refused(); refused > 0)
    out << " (" << refused << " refused: may show burned-in text)";
  out << ", duplicates " << report.count(FileStatus::duplicate) << ", not DICOM "
      << report.count(FileStatus::skipped_not_dicom) << ", DICOMDIR dropped "
      << report.count(FileStatus::dicomdir_dropped) << "\n";
  const std::function<std::string(const FileOutcome&)> name = [&](const FileOutcome& o) {
    return shown.path(o.input) +
           (o.other_input.empty() ? "" : " (" + shown.path(o.other_input) + ")");
  };
  const std::function<std::string(const std::string&)> reason = [&](const std::string& text) {
    return shown.reason(text);
  };
  FailureLines lines(out, name, reason);
  if (auto read = read_problems(report, [&](const FileOutcome& o) {
        if (o.status == FileStatus::failed || o.status == FileStatus::duplicate) lines.add(o);
      });
      !read)
    return std::unexpected(read.error());
  lines.finish();
  for (const auto& m : report.missing_inputs)
    out << "error: " << shown.path(m.path) << ": "
        << shown.reason(m.reason) << "\n";
  if (report.dicom_inputs() == 0)
    out << "error: no DICOM input found (" << report.files_seen
        << " files looked at); nothing was de-identified\n";
  if (report.end == batch::RunEnd::cancelled)
    out << "error: cancelled: " << report.files_not_started
        << " file(s) not started; every file written is whole\n";
  out << pixel_work_text(report.pixel_work, report.stage_timings, [&](const FileOutcome& o) {
    return shown.path(o.input);
  });
  return out.str();
}

std::string failure_text(std::span<const FileOutcome> failures,
                         const std::function<std::string(const FileOutcome&)>& name,
                         const std::function<std::string(const std::string&)>& reason) {
  std::ostringstream out;
  FailureLines lines(out, name, reason);
  for (const auto& o : failures) lines.add(o);
  lines.finish();
  return out.str();
}

std::string pixel_work_text(std::span<const FileOutcome> work,
                            std::span<const StageTiming> timings,
                            const std::function<std::string(const FileOutcome&)>& name) {
  std::ostringstream out;
  std::size_t redacted = 0, read_only = 0, frames = 0, boxes = 0, defaced_files = 0,
              defaced_frames = 0;
  // A defaced series is reported once: its files share their output folder.
  std::map<std::string, std::pair<std::size_t, std::size_t>> series;  // files, frames changed
  for (const auto& o : work) {
    const PixelWork& p = o.pixels;
    if (p.frames_redacted > 0) {
      ++redacted;
      frames += p.frames_redacted;
      boxes += p.text_boxes;
    } else if (p.read_for_text) {
      ++read_only;
    }
    if (p.defaced) {
      ++defaced_files;
      defaced_frames += p.frames_defaced;
      // A NIfTI volume is a head of its own; DICOM series share their output folder.
      auto& s = series[volume::is_nifti_name(o.output) ? o.output.generic_string()
                                                        : o.output.parent_path().generic_string() + "/"];
      s.first += 1;
      s.second += p.frames_defaced;
    }
  }
  if (!work.empty())
    out << "pixels: text blacked out in " << redacted << " image" << (redacted == 1 ? "" : "s")
        << " (" << frames << " frame" << (frames == 1 ? "" : "s") << ", " << boxes << " area"
        << (boxes == 1 ? "" : "s") << "), " << read_only
        << " more read with no text to black out; faces removed from " << series.size()
        << " head series or volumes (" << defaced_files << " file" << (defaced_files == 1 ? "" : "s")
        << ", " << defaced_frames << " frame" << (defaced_frames == 1 ? "" : "s")
        << " changed)\n";
  for (const auto& o : work) {
    const PixelWork& p = o.pixels;
    if (p.frames_redacted == 0) continue;
    out << "redacted: " << name(o) << " -> " << o.output.generic_string() << ": "
        << p.frames_redacted << " of " << p.frames << " frame" << (p.frames == 1 ? "" : "s")
        << ", " << p.text_boxes << " area" << (p.text_boxes == 1 ? "" : "s") << "\n";
  }
  for (const auto& [output, counts] : series) {
    if (volume::is_nifti_name(output)) {
      out << "defaced: volume " << output << "\n";
      continue;
    }
    out << "defaced: series " << output << ": " << counts.first << " file"
        << (counts.first == 1 ? "" : "s") << ", " << counts.second << " frame"
        << (counts.second == 1 ? "" : "s") << " changed\n";
  }
  bool any_time = false;
  for (const auto& t : timings) any_time = any_time || t.prepare_seconds > 0 || t.seconds > 0;
  if (any_time) {
    out << "time in pixel stages:";
    for (const auto& t : timings) {
      out << " " << t.name << " " << std::fixed << std::setprecision(1)
          << t.prepare_seconds + t.seconds << " s";
      if (t.prepare_seconds > 0) out << " (" << t.prepare_seconds << " s before the files)";
      out << (&t == &timings.back() ? "" : ";");
    }
    out << " (file work summed over threads)\n";
  }
  return out.str();
}

}  // namespace radguard::deid
