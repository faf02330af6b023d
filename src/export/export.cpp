#include "export/export.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "batch/batch.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/iso_time.hpp"
#include "core/json_number.hpp"
#include "core/text.hpp"
#include "core/version.hpp"
#include "crypto/crypto.hpp"
#include "dicom/dicom_file.hpp"
#include "plan/plan.hpp"
#include "standard/tags.hpp"

namespace radguard::exporter {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Studies disclosed, by patient hash then Study Instance UID: what a ledger entry lists.
using PatientStudies = std::map<std::string, std::map<std::string, ledger::StudyDisclosure>>;

void add_patients(ledger::Entry& entry, PatientStudies&& by_patient) {
  for (auto& [hash, patient_studies] : by_patient) {
    ledger::PatientDisclosure p;
    p.patient_hash = hash;
    for (auto& [uid, study] : patient_studies) p.studies.push_back(std::move(study));
    entry.patients.push_back(std::move(p));
  }
}

// What the consent check needs from one input, read before anything is de-identified.
struct Scanned {
  enum class Kind : std::uint8_t { dicom, not_dicom, dicomdir, failed };
  Kind kind = Kind::failed;
  std::string patient_id;
  std::string study_uid;
  std::string modality;
  Error error;
  std::uint64_t bytes = 0;
};

Scanned scan(const fs::path& path) {
  Scanned s;
  std::error_code ec;
  s.bytes = fs::file_size(path, ec);
  auto file = dicom::DicomFile::open(path);
  if (!file) {
    s.kind = file.error().code == ErrorCode::not_dicom ? Scanned::Kind::not_dicom
                                                       : Scanned::Kind::failed;
    s.error = file.error();
    return s;
  }
  if (file->is_dicomdir()) {
    s.kind = Scanned::Kind::dicomdir;
    return s;
  }
  s.kind = Scanned::Kind::dicom;
  s.patient_id = normalised_patient_id(file->string_of(tags::PatientID).value_or(""));
  s.study_uid = trimmed(file->string_of(tags::StudyInstanceUID).value_or(""));
  s.modality = trimmed(file->string_of(tags::Modality).value_or(""));
  return s;
}

struct Study {
  std::set<std::string> patients;
  std::vector<std::size_t> files;
};

// "release-20261123T050102Z-1a2b3c4d": sortable by time, unique across concurrent exports.
Result<std::string> new_release_name(const std::string& now) {
  auto random = crypto::random_bytes(4);
  if (!random) return std::unexpected(random.error());
  std::string compact;
  for (const char c : now) {
    if (c != '-' && c != ':') compact += c;
  }
  return "release-" + compact + "-" +
         crypto::to_hex(reinterpret_cast<const std::uint8_t*>(random->data()), random->size());
}

constexpr std::string_view kStagingPrefix = ".staging-release-";

// The folder a release is written into before it is published: created here and held under
// an exclusive flock(2) for as long as this object lives, so that another run can tell a
// live staging folder from one a killed run left (see remove_stale_staging). Removed unless
// the release it holds was published.
class StagingFolder {
 public:
  explicit StagingFolder(fs::path path) : path_(std::move(path)) {}
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
  ~StagingFolder() {
    if (!published_) {
      std::error_code ignored;
      fs::remove_all(path_, ignored);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  // Made and locked under a name remove_stale_staging() does not look at, then renamed (the
  // lock stays with the folder): an export starting meanwhile must never find this folder
  // unlocked and take it for a killed run's.
  Status create() {
    const fs::path making = path_.parent_path() / (".making" + path_.filename().string());
    std::error_code ec;
    if (!fs::create_directory(making, ec) || ec)
      return fail(ErrorCode::io, "cannot create the staging folder: " +
                                     (ec ? ec.message() : std::string("it exists")));
    fd_ = ::open(making.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const std::string reason = std::strerror(errno);
      fs::remove(making, ec);
      return fail(ErrorCode::io, "cannot lock the staging folder: " + reason);
    }
    fs::rename(making, path_, ec);
    if (ec) {
      const std::string reason = ec.message();
      fs::remove(making, ec);
      return fail(ErrorCode::io, "cannot create the staging folder: " + reason);
    }
    return {};
  }
  const fs::path& path() const { return path_; }
  void mark_published() { published_ = true; }

 private:
  fs::path path_;
  int fd_ = -1;
  bool published_ = false;
};

}  // namespace

namespace {

// Publishes a stale staging folder whose release the ledger records as released, with the
// manifest the ledger names: the run that made it committed its entry and was killed before
// the rename. Returns whether it did.
bool roll_forward(const fs::path& staging, const std::string& name,
                  const std::map<std::string, std::string>& released) {
  const std::string release = name.substr(std::string_view(".staging-").size());
  const auto recorded = released.find(release);
  if (recorded == released.end()) return false;
  auto digest = crypto::sha256_file(staging / "manifest.json");
  if (!digest || crypto::to_hex(*digest) != recorded->second) return false;
  // Every file as the manifest lists it, and nothing else (a withheld study's file that a
  // power loss brought back is not published).
  auto problems = check_release_files(staging);
  if (!problems || !problems->empty()) return false;
  std::error_code ec;
  const fs::path final_path = staging.parent_path() / release;
  if (fs::exists(final_path, ec)) return false;
  fs::rename(staging, final_path, ec);
  if (ec) return false;
  (void)sync_folder(staging.parent_path());
  return true;
}

}  // namespace

StaleStaging remove_stale_staging(const fs::path& output, ledger::Ledger* ledger) {
  StaleStaging done;
  std::map<std::string, std::string> released;  // release name -> manifest digest
  bool ledger_read = ledger != nullptr;
  if (ledger != nullptr) {
    if (auto entries = ledger->all(); entries) {
      for (const auto& e : *entries)
        if (e.status == ledger::EntryStatus::released) released[e.release] = e.output_digest;
    } else {
      ledger_read = false;
    }
  }
  std::error_code ec;
  for (fs::directory_iterator it(output, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    // ".making" + a staging name: a staging folder between its mkdir and its lock (a few
    // microseconds), or one whose export was killed right there.
    const bool making = name.starts_with(".making" + std::string(kStagingPrefix));
    if ((!name.starts_with(kStagingPrefix) && !making) ||
        it->symlink_status(type_ec).type() != fs::file_type::directory)
      continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st{};
    const bool old_enough =
        !making || (::fstat(fd, &st) == 0 && ::time(nullptr) - st.st_mtime > 60);
    // A live export holds its staging folder locked; one that is not locked was left by a
    // run that died (kill -9, power loss). An unlocked ".making" folder may be one a live
    // export has not locked yet: removed only when a minute old. A dead run's release that
    // its ledger entry records is published (the entry is committed before the rename);
    // any other is never published.
    if (old_enough && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (!making && roll_forward(it->path(), name, released)) {
        ++done.published;
      } else if (!making && ledger != nullptr && !ledger_read) {
        // The ledger could not be read: it may record this release. Kept for a later run.
      } else if (!making && released.contains(name.substr(std::string_view(".staging-").size()))) {
        // Recorded, but not as it stands (its manifest or files differ, or the name is
        // taken): neither published nor destroyed; `ledger verify --releases` and the
        // operator decide.
        ++done.kept;
      } else {
        std::error_code ignored;
        if (fs::remove_all(it->path(), ignored) > 0) ++done.removed;
      }
    }
    ::close(fd);
  }
  return done;
}

namespace {

ledger::ProfileSummary profile_of(const deid::HeaderStage& stage) {
  return {stage.policy().preset(), stage.policy().option_names(), stage.policy().override_count(),
          stage.method_description(), stage.pseudonymizer().key().fingerprint()};
}

json profile_json(const deid::HeaderStage& stage) {
  return {{"preset", stage.policy().preset()},
          {"options", stage.policy().option_names()},
          {"recipe_overrides", stage.policy().override_count()},
          {"method", stage.method_description()}};
}

json counts_json(const ExportReport& r) {
  json by_reason = json::object();
  for (const auto& [reason, count] : r.excluded)
    by_reason[std::string(exclusion_name(reason))] = {{"studies", count.studies},
                                                      {"instances", count.instances}};
  return {{"instances", r.instances_included},
          {"studies", r.studies_included},
          {"patients", r.patients_included},
          {"excluded_studies", r.excluded_studies()},
          {"excluded_instances", r.excluded_instances()},
          {"excluded_by_reason", by_reason}};
}

}  // namespace

Result<std::vector<std::string>> check_release_files(const fs::path& release) {
  auto check = check_release(release, release / kReleaseManifest, {}, DicomSignatures::skip, 0);
  if (!check) return std::unexpected(check.error());
  return problem_lines(*check);
}

std::string_view exclusion_name(Exclusion reason) {
  switch (reason) {
    case Exclusion::consent_denied:
      return "consent_denied";
    case Exclusion::no_consent:
      return "no_consent_default_deny";
    case Exclusion::no_patient_id:
      return "no_patient_id";
    case Exclusion::conflicting_patient:
      return "conflicting_patient_ids";
    case Exclusion::no_study_uid:
      return "no_study_uid";
    case Exclusion::failed_instance:
      return "failed_instance";
  }
  return "consent_denied";
}

std::uint64_t ExportReport::excluded_studies() const {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : excluded) n += count.studies;
  return n;
}

std::uint64_t ExportReport::excluded_instances() const {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : excluded) n += count.instances;
  return n;
}

int ExportReport::exit_code() const {
  if (mode == ExportMode::dry_run) return error.empty() ? kExitSuccess : kExitSomeFailed;
  return status == ledger::EntryStatus::released && failures.empty() ? kExitSuccess
                                                                     : kExitSomeFailed;
}

deid::PixelStage consented_identity_check(
    std::shared_ptr<const std::map<std::string, ConsentedIdentity>> consented) {
  return {"consent-check",
          [consented = std::move(consented)](const fs::path& input, dicom::DicomFile& file,
                                             deid::PixelWork&) -> Status {
            const auto it = consented->find(input.string());
            if (it == consented->end())
              return fail(ErrorCode::conflict, "not among the files whose consent was checked");
            if (normalised_patient_id(file.string_of(tags::PatientID).value_or("")) !=
                    it->second.patient_id ||
                trimmed(file.string_of(tags::StudyInstanceUID).value_or("")) != it->second.study_uid)
              return fail(ErrorCode::conflict,
                          "the file's patient or study changed after its consent was checked");
            return {};
          },
          {},
          {}};
}

Result<ExportReport> run_export(const ExportOptions& options, const deid::HeaderStage& stage,
                                consent::Registry& registry, ledger::Ledger& ledger) {
  const auto start = std::chrono::steady_clock::now();
  if (trimmed(options.recipient).empty())
    return fail(ErrorCode::usage, "the recipient must be named");
  if (options.output.empty()) return fail(ErrorCode::usage, "the output folder must be given");
  if (auto outside = batch::require_outside_inputs(options.output, options.inputs); !outside)
    return std::unexpected(outside.error());
  std::error_code ec;

  ExportReport report;
  const std::string now = utc_now_iso8601();
  report.consent_time = options.consent_time.empty() ? now : options.consent_time;
  auto name = new_release_name(now);
  if (!name) return std::unexpected(name.error());
  report.release_name = *name;

  ledger::Entry entry;
  entry.recipient = trimmed(options.recipient);
  entry.purpose = std::string(consent::purpose_name(options.purpose));
  entry.profile = profile_of(stage);
  entry.release = report.release_name;

  report.mode = options.mode;
  report.signing = options.manifest_signer.has_value();
  const bool shard_mode = options.mode == ExportMode::stage_shard;
  if (shard_mode != options.shard.has_value())
    return fail(ErrorCode::usage, "a shard's export needs its plan (and only a shard's has one)");
  if (shard_mode && options.release_gate)
    return fail(ErrorCode::usage,
                "a shard runs no release gate (it would see one shard, not the release): "
                "radguard plan publish runs the shards' --audit-gate over the whole release");
  fs::path part_path;
  if (shard_mode) {
    report.release_name.clear();
    part_path = options.shard->plan_folder / shard_part_path(options.shard->index);
    // A part left by an earlier run of this shard must never stand for this one.
    fs::remove(part_path, ec);
    fs::create_directories(part_path.parent_path(), ec);
    if (!ec) fs::permissions(part_path.parent_path(), fs::perms::owner_all, ec);
    if (ec) return fail(ErrorCode::io, "cannot create " + part_path.parent_path().string() + ": " +
                                           ec.message());
  }
  // A shard's record of what it staged (or why it failed), for publish_staged.
  auto write_part = [&](const json& files) -> Status {
    json part = json::parse(report_json(report, stage, options));
    part["format"] = "radguard-staged-shard-v1";
    part["plan_id"] = options.shard->plan_id;
    part["shard"] = options.shard->index;
    part["part_status"] = report.error.empty() ? "staged" : "failed";
    part["ledger"] = options.shard->ledger;
    part["registry"] = options.shard->registry;
    part["key_file"] = options.shard->key_file.string();
    part["audit_gate"] = options.shard->audit_gate;
    part["on_failure"] = options.on_failure == OnFailure::abort ? "abort" : "withhold-study";
    // Paths as the publishing step, run elsewhere, finds them.
    std::error_code abs_ec;
    part["output"] = fs::absolute(options.output, abs_ec).lexically_normal().string();
    part["manifest_signer"] =
        options.manifest_signer
            ? json{{"key", fs::absolute(options.manifest_signer->key, abs_ec).string()},
                   {"cert", fs::absolute(options.manifest_signer->cert, abs_ec).string()}}
            : json(nullptr);
    const ledger::ProfileSummary summary = profile_of(stage);
    part["profile_summary"] = {{"preset", summary.preset},
                               {"options", summary.options},
                               {"recipe_overrides", summary.recipe_overrides},
                               {"method", summary.method},
                               {"key_fingerprint", summary.key_fingerprint}};
    part["missing_inputs"] = report.missing_inputs.size();
    json studies = json::array();
    for (const auto& p : report.plan) studies.push_back(p.study_uid);
    part["studies"] = studies;
    part["files"] = files;
    return write_file_atomically(part_path,
                                 part.dump(2, ' ', false, json::error_handler_t::replace) + "\n",
                                 fs::perms::owner_read | fs::perms::owner_write);
  };
  // Records the failure in the ledger (a dry run records nothing; a shard records it in its
  // part, and publish_staged then refuses the release); only a ledger that cannot be written
  // is an Error.
  auto failed = [&](std::string why) -> Result<ExportReport> {
    report.status = ledger::EntryStatus::failed;
    report.error = std::move(why);
    if (shard_mode) {
      report.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (auto written = write_part(json::array()); !written)
        return fail(written.error().code, "the shard failed (" + report.error +
                                              ") and its part could not be recorded: " +
                                              written.error().message);
      return report;
    }
    if (options.mode == ExportMode::dry_run) {
      report.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return report;
    }
    entry.status = ledger::EntryStatus::failed;
    entry.error = report.error;
    entry.patients.clear();
    entry.output_digest.clear();
    entry.instances = report.instances_included;
    entry.studies = report.studies_included;
    entry.excluded_studies = report.excluded_studies();
    auto stored = ledger.append(entry);
    if (!stored)
      return fail(stored.error().code,
                  "the export failed (" + report.error +
                      ") and the ledger could not record it: " + stored.error().message);
    report.ledger_sequence = stored->sequence;
    report.ledger_entry_hash = stored->entry_hash;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  };

  // 1. Read each input's patient and study, before anything is de-identified.
  const batch::InputSet inputs = batch::find_files(options.inputs);
  report.files_seen = inputs.files.size();
  report.missing_inputs = inputs.missing;
  std::vector<Scanned> scanned(inputs.files.size());
  batch::run_parallel(
      inputs.files.size(), batch::default_threads(options.threads),
      [&](std::size_t i) { scanned[i] = scan(inputs.files[i]); },
      [&](std::size_t i, const std::string& what) {
        scanned[i].kind = Scanned::Kind::failed;
        scanned[i].error = Error{ErrorCode::internal, "internal error: " + what};
      });
  std::map<std::string, Study> studies;
  std::vector<std::size_t> without_study;
  for (std::size_t i = 0; i < scanned.size(); ++i) {
    const Scanned& s = scanned[i];
    switch (s.kind) {
      case Scanned::Kind::not_dicom:
        ++report.not_dicom;
        break;
      case Scanned::Kind::dicomdir:
        ++report.dicomdir_dropped;
        break;
      case Scanned::Kind::failed: {
        deid::FileOutcome outcome;
        outcome.input = inputs.files[i];
        outcome.status = deid::FileStatus::failed;
        outcome.error = s.error.code;
        outcome.reason = s.error.message;
        outcome.bytes = s.bytes;
        report.failures.push_back(std::move(outcome));
        break;
      }
      case Scanned::Kind::dicom:
        if (s.study_uid.empty()) {
          without_study.push_back(i);
        } else {
          Study& study = studies[s.study_uid];
          study.patients.insert(s.patient_id);
          study.files.push_back(i);
        }
        break;
    }
  }
  report.studies_seen = studies.size() + without_study.size();
  if (!without_study.empty()) {
    report.excluded[Exclusion::no_study_uid].studies += without_study.size();
    report.excluded[Exclusion::no_study_uid].instances += without_study.size();
  }

  // 2. Consent: a study goes only if its one patient permits the purpose now.
  std::map<std::string, bool> permitted;  // by patient ID; never leaves this function
  std::map<std::string, consent::Basis> basis;  // by patient ID: a shard's part records it
  std::vector<std::size_t> included;
  std::map<std::string, std::string> patient_of_file;  // canonical input path -> patient ID
  auto consented = std::make_shared<std::map<std::string, ConsentedIdentity>>();
  for (const auto& [uid, study] : studies) {
    std::optional<Exclusion> exclusion;
    if (study.patients.size() > 1) {
      exclusion = Exclusion::conflicting_patient;
    } else if (study.patients.begin()->empty()) {
      exclusion = Exclusion::no_patient_id;
    } else {
      const std::string& patient = *study.patients.begin();
      auto verdict = registry.decide(patient, options.purpose, report.consent_time);
      if (!verdict)
        return failed("the consent registry could not be read: " + verdict.error().message);
      if (!verdict->permitted())
        exclusion = verdict->basis == consent::Basis::recorded ? Exclusion::consent_denied
                                                               : Exclusion::no_consent;
      permitted[patient] = verdict->permitted();
      basis[patient] = verdict->basis;
    }
    const std::string released_uid = stage.policy().has(standard::ProfileOption::retain_uids)
                                         ? uid
                                         : stage.pseudonymizer().uid(uid);
    report.plan.push_back({released_uid, study.files.size(),
                           exclusion ? std::string(exclusion_name(*exclusion)) : "release"});
    if (exclusion) {
      report.excluded[*exclusion].studies += 1;
      report.excluded[*exclusion].instances += study.files.size();
      continue;
    }
    ++report.studies_included;
    report.instances_included += study.files.size();
    for (const std::size_t i : study.files) {
      included.push_back(i);
      patient_of_file[inputs.files[i]] = *study.patients.begin();
      (*consented)[inputs.files[i]] = {*study.patients.begin(), uid};
    }
  }
  std::sort(included.begin(), included.end());
  report.patients_included = static_cast<std::uint64_t>(
      std::count_if(permitted.begin(), permitted.end(), [](const auto& p) { return p.second; }));

  if (!report.missing_inputs.empty())
    return failed(std::to_string(report.missing_inputs.size()) +
                  " input path(s) missing or unreadable");
  if (!report.failures.empty())
    return failed(std::to_string(report.failures.size()) + " DICOM input(s) could not be read");
  // A shard stages what it may: none of its studies permitted is not a failure of the
  // release (publish_staged refuses a release in which no shard staged anything).
  auto staged_nothing = [&]() -> Result<ExportReport> {
    report.status = ledger::EntryStatus::released;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (auto written = write_part(json::array()); !written) return std::unexpected(written.error());
    return report;
  };
  if (included.empty() && shard_mode) return staged_nothing();
  if (included.empty())
    return failed("no study may be released for " + entry.purpose + ": " +
                  std::to_string(report.excluded_studies()) + " excluded, none permitted");
  if (options.mode == ExportMode::dry_run) {
    // Nothing is de-identified, written or recorded.
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  }

  // 3. De-identify the permitted studies into a staging folder that is never a release.
  fs::create_directories(options.output, ec);
  if (ec) return failed("cannot create the output folder: " + ec.message());
  // A shard writes into the folder all shards of its plan share (never another export's
  // clean-up's business), and never removes it: the other shards' files are there too.
  std::optional<StagingFolder> staging_folder;
  fs::path staging_path;
  if (shard_mode) {
    staging_path = shard_staging_folder(options.output, options.shard->plan_id);
    fs::create_directories(staging_path, ec);
    if (ec) return failed("cannot create the shards' staging folder: " + ec.message());
  } else {
    const StaleStaging stale = remove_stale_staging(options.output, &ledger);
    report.stale_staging_removed = stale.removed;
    report.stale_staging_published = stale.published;
    staging_folder.emplace(options.output / (".staging-" + report.release_name));
    if (auto created = staging_folder->create(); !created) return failed(created.error().message);
    staging_path = staging_folder->path();
  }
  deid::DeidRunOptions deid_options;
  for (const std::size_t i : included) deid_options.inputs.push_back(inputs.files[i]);
  deid_options.output = staging_path;
  deid_options.threads = options.threads;
  deid_options.progress = options.progress;
  // The files are read again to de-identify them: each must still be what consent was
  // decided on.
  deid_options.pixel_stages.push_back(consented_identity_check(consented));
  if (options.pixel_stages) {
    auto stages = options.pixel_stages(deid_options.inputs);
    if (!stages) return failed("the pixel stages could not start: " + stages.error().message);
    for (auto& pixel_stage : *stages) deid_options.pixel_stages.push_back(std::move(pixel_stage));
  }
  deid_options.finish = options.finish;
  deid_options.written = deid::WrittenOutcomes::keep;
  deid_options.listener = options.listener;
  deid_options.cancel = options.cancel;
  // A shard leaves the staging folder all shards share to publish_staged, which removes all
  // that no shard listed (killed runs' temporaries too) before anything leaves.
  if (shard_mode) deid_options.stale_temporaries = deid::StaleTemporaries::written_folders;
  auto deid_report = deid::run_deid(deid_options, stage);
  if (!deid_report)
    return failed("de-identification could not start: " + deid_report.error().message);
  // A cancelled release is never published in part: the staging folder goes.
  if (deid_report->end == batch::RunEnd::cancelled)
    return failed("cancelled after " +
                  std::to_string(included.size() - deid_report->files_not_started) + " of " +
                  std::to_string(included.size()) + " file(s); nothing was released");
  if (auto read = deid_report->problems.for_each([&](const deid::FileOutcome& outcome) {
        if (outcome.status != deid::FileStatus::written) report.failures.push_back(outcome);
      });
      !read)
    return failed("the de-identification's outcomes could not be read back: " +
                  read.error().message);
  for (const auto& missing : deid_report->missing_inputs) report.missing_inputs.push_back(missing);
  if (!deid_report->missing_inputs.empty() ||
      (!report.failures.empty() && options.on_failure == OnFailure::abort))
    return failed(std::to_string(report.failures.size()) + " of " +
                  std::to_string(included.size()) +
                  " DICOM input(s) failed de-identification; nothing was released");
  // A study with a failed instance is withheld whole (never released in part); the others go.
  std::set<std::string> withheld;  // original Study Instance UIDs
  for (const auto& outcome : report.failures)
    if (const auto it = consented->find(outcome.input.string()); it != consented->end())
      withheld.insert(it->second.study_uid);
  if (!withheld.empty()) {
    std::vector<deid::FileOutcome> kept;
    for (auto& outcome : deid_report->written) {
      const auto it = consented->find(outcome.input.string());
      if (it != consented->end() && withheld.contains(it->second.study_uid)) {
        // Fails the export rather than release a withheld study's file.
        if (!fs::remove(staging_path / outcome.output, ec) || ec)
          return failed("cannot withhold a study: a file of it cannot be removed from staging");
        // Its folders too: an empty folder named by the study's pseudonymous UID would tell
        // the recipient that a withheld study exists.
        for (fs::path folder = (staging_path / outcome.output).parent_path();
             folder != staging_path && fs::is_empty(folder, ec) && !ec;
             folder = folder.parent_path())
          fs::remove(folder, ec);
        continue;
      }
      kept.push_back(std::move(outcome));
    }
    deid_report->written = std::move(kept);
    if (auto synced = sync_folder(staging_path); !synced)
      return failed("cannot withhold a study: " + synced.error().message);
    for (const auto& uid : withheld) {
      const std::uint64_t instances = studies.at(uid).files.size();
      report.excluded[Exclusion::failed_instance].studies += 1;
      report.excluded[Exclusion::failed_instance].instances += instances;
      report.studies_included -= 1;
      report.instances_included -= instances;
      for (auto& plan : report.plan)
        if (plan.study_uid == (stage.policy().has(standard::ProfileOption::retain_uids)
                                   ? uid
                                   : stage.pseudonymizer().uid(uid)))
          plan.decision = std::string(exclusion_name(Exclusion::failed_instance));
    }
    if (deid_report->written.empty() && shard_mode) return staged_nothing();
    if (deid_report->written.empty())
      return failed(
          "every permitted study has an instance that failed de-identification; "
          "nothing was released");
  }

  // What the pixel stages did to the released files (withheld studies' files are gone).
  report.stage_timings = deid_report->stage_timings;
  {
    std::set<std::string> released;
    for (const auto& outcome : deid_report->written) released.insert(outcome.input.string());
    for (const auto& outcome : deid_report->pixel_work)
      if (released.contains(outcome.input.string())) report.pixel_work.push_back(outcome);
  }

  // A shard's part: every file it staged, with its hash, size, patient (keyed hash) and
  // modality, for the one manifest and the one ledger entry publish_staged makes.
  if (shard_mode) {
    std::vector<const deid::FileOutcome*> staged;
    for (const auto& outcome : deid_report->written) staged.push_back(&outcome);
    std::sort(staged.begin(), staged.end(),
              [](const auto* a, const auto* b) { return a->output < b->output; });
    std::map<std::string, std::string> modality_of_input;
    for (const std::size_t i : included) modality_of_input[inputs.files[i]] = scanned[i].modality;
    json files = json::array();
    std::set<std::string> patients;
    for (const auto* outcome : staged) {
      auto digest = crypto::sha256_file(staging_path / outcome->output);
      if (!digest) return failed("cannot hash a staged file: " + digest.error().message);
      const auto bytes = fs::file_size(staging_path / outcome->output, ec);
      if (ec) return failed("cannot read a staged file's size: " + ec.message());
      const auto patient = patient_of_file.find(outcome->input.string());
      if (patient == patient_of_file.end())
        return failed("internal error: a staged file has no consent record");
      const std::string hash = ledger::patient_hash(stage.pseudonymizer().key(), patient->second);
      patients.insert(hash);
      files.push_back({{"path", outcome->output.generic_string()},
                       {"sha256", crypto::to_hex(*digest)},
                       {"bytes", bytes},
                       {"patient_hash", hash},
                       {"consent_basis", basis[patient->second] == consent::Basis::recorded
                                             ? "recorded"
                                             : "default"},
                       {"modality", modality_of_input[outcome->input.string()]}});
    }
    report.patients_included = patients.size();
    report.status = ledger::EntryStatus::released;  // staged
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (auto written = write_part(files); !written) return std::unexpected(written.error());
    return report;
  }

  StagingFolder& staging = *staging_folder;
  // 4. The gate (an audit of what is about to leave), the manifest, and the ledger entry's
  // account of who is in the release.
  if (options.release_gate) {
    auto verdict = options.release_gate(staging.path());
    if (!verdict) return failed("the release gate could not run: " + verdict.error().message);
    if (*verdict) return failed("the release gate refused the release: " + **verdict);
  }
  json files = json::array();
  PatientStudies by_patient;
  std::vector<const deid::FileOutcome*> written;
  for (const auto& outcome : deid_report->written) written.push_back(&outcome);
  std::sort(written.begin(), written.end(),
            [](const auto* a, const auto* b) { return a->output < b->output; });
  std::map<std::string, std::string> modality_of;
  for (const std::size_t i : included) modality_of[inputs.files[i]] = scanned[i].modality;
  for (const auto* outcome : written) {
    auto digest = crypto::sha256_file(staging.path() / outcome->output);
    if (!digest) return failed("cannot hash a released file: " + digest.error().message);
    const auto bytes = fs::file_size(staging.path() / outcome->output, ec);
    files.push_back({{"path", outcome->output.generic_string()},
                     {"sha256", crypto::to_hex(*digest)},
                     {"bytes", bytes}});
    const auto patient = patient_of_file.find(outcome->input.string());
    if (patient == patient_of_file.end())
      return failed("internal error: a released file has no consent record");
    const std::string study_uid = outcome->output.begin()->string();
    auto& study =
        by_patient[ledger::patient_hash(stage.pseudonymizer().key(), patient->second)][study_uid];
    study.study_uid = study_uid;
    study.instances += 1;
    if (const std::string& m = modality_of[outcome->input.string()];
        !m.empty() &&
        std::find(study.modalities.begin(), study.modalities.end(), m) == study.modalities.end())
      study.modalities.push_back(m);
  }
  report.patients_included = by_patient.size();  // after withheld studies
  const json manifest = {
      {"format", std::string(kReleaseManifestFormat)},
      {"tool", "radguard"},
      {"version", std::string(kVersion)},
      {"release", report.release_name},
      {"created", now},
      {"complete", true},
      {"recipient", entry.recipient},
      {"purpose", entry.purpose},
      {"profile", profile_json(stage)},
      {"key_fingerprint", entry.profile.key_fingerprint},
      {"counts", counts_json(report)},
      {"files", files},
  };
  const std::string manifest_text =
      manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (auto s = write_file_atomically(staging.path() / kReleaseManifest, manifest_text,
                                     fs::perms::owner_read | fs::perms::owner_write |
                                         fs::perms::group_read | fs::perms::others_read);
      !s)
    return failed("cannot write the manifest: " + s.error().message);
  report.manifest_digest = crypto::to_hex(crypto::sha256(manifest_text));
  // The recipient's proof of origin: a detached CMS signature over the manifest's bytes.
  if (options.manifest_signer) {
    auto signature = signing::sign_cms_detached(manifest_text, options.manifest_signer->key,
                                                options.manifest_signer->cert);
    if (!signature) return failed("cannot sign the manifest: " + signature.error().message);
    if (auto s = write_file_atomically(staging.path() / kReleaseManifestSignature, *signature,
                                       fs::perms::owner_read | fs::perms::owner_write |
                                           fs::perms::group_read | fs::perms::others_read);
        !s)
      return failed("cannot write the manifest's signature: " + s.error().message);
    report.manifest_signed = true;
  }

  entry.status = ledger::EntryStatus::released;
  entry.output_digest = report.manifest_digest;
  entry.instances = report.instances_included;
  entry.studies = report.studies_included;
  entry.excluded_studies = report.excluded_studies();
  add_patients(entry, std::move(by_patient));

  // 5. Record, then publish: the entry commits first, naming the release and its manifest's
  // digest, and only then is the staging folder renamed into place. A run killed between
  // the two leaves a staging folder its entry records; the next export on this output
  // publishes it (remove_stale_staging). Never the other way round: a release folder
  // visible to the recipient without its entry is an unaccounted disclosure.
  const fs::path final_path = options.output / report.release_name;
  auto stored = ledger.append(entry);
  if (!stored)
    return failed("the release could not be recorded, so it was not published: " +
                  stored.error().message);
  std::error_code rename_ec;
  fs::rename(staging.path(), final_path, rename_ec);
  if (!rename_ec) (void)sync_folder(options.output);
  if (rename_ec) {
    staging.mark_published();  // kept for the next run to publish, as recorded
    return fail(ErrorCode::io, "the release is recorded (ledger entry " +
                                   std::to_string(stored->sequence) + ") but could not be "
                                   "published: " + rename_ec.message() +
                                   "; the next export into " + options.output.string() +
                                   " publishes it");
  }
  staging.mark_published();
  report.status = ledger::EntryStatus::released;
  report.release = final_path;
  report.ledger_sequence = stored->sequence;
  report.ledger_entry_hash = stored->entry_hash;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::string report_json(const ExportReport& report, const deid::HeaderStage& stage,
                        const ExportOptions& options) {
  json failures = json::array();
  for (const auto& o : report.failures) {
    failures.push_back({{"input", o.input.string()},
                        {"status", deid::file_status_name(o.status)},
                        {"error", o.error ? std::string(statuses_for(*o.error).name) : ""},
                        {"reason", o.reason}});
    if (!o.pixels.refused_by.empty()) failures.back()["refused_by"] = o.pixels.refused_by;
  }
  for (const auto& m : report.missing_inputs)
    failures.push_back({{"input", m.path.string()},
                        {"status", "missing_input"},
                        {"error", "io"},
                        {"reason", m.reason}});
  json pixel_work = json::array();
  for (const auto& o : report.pixel_work) {
    json entry = deid::pixel_work_json(o.pixels);
    entry["input"] = o.input.string();
    entry["output"] = o.output.generic_string();  // in the release folder
    pixel_work.push_back(std::move(entry));
  }
  json plan = json::array();
  for (const auto& p : report.plan)
    plan.push_back(
        {{"study_uid", p.study_uid}, {"instances", p.instances}, {"decision", p.decision}});
  json counts = counts_json(report);
  counts["files_seen"] = report.files_seen;
  counts["studies_seen"] = report.studies_seen;
  counts["skipped_not_dicom"] = report.not_dicom;
  counts["dicomdir_dropped"] = report.dicomdir_dropped;
  counts["failed"] = report.failures.size() + report.missing_inputs.size();
  const json doc = {
      {"tool", "radguard"},
      {"version", std::string(kVersion)},
      {"command", "export"},
      {"status", report.mode == ExportMode::dry_run ? std::string("dry_run")
                 : report.mode == ExportMode::stage_shard
                     ? std::string(report.error.empty() ? "staged" : "failed")
                     : std::string(ledger::status_name(report.status))},
      {"plan", plan},
      {"error", report.error},
      {"purpose", std::string(consent::purpose_name(options.purpose))},
      {"recipient", trimmed(options.recipient)},
      {"consent_evaluated_at", report.consent_time},
      {"profile", profile_json(stage)},
      {"key_fingerprint", stage.pseudonymizer().key().fingerprint()},
      {"output", options.output.string()},
      {"release_name", report.release_name},
      {"release", report.release.empty() ? json(nullptr) : json(report.release.string())},
      {"manifest_sha256", report.manifest_digest},
      {"manifest_signature",
       report.manifest_signed ? json(std::string(kReleaseManifestSignature)) : json(nullptr)},
      {"signed", report.signing},
      {"ledger", {{"sequence", report.ledger_sequence}, {"entry_hash", report.ledger_entry_hash}}},
      {"stale_staging",
       {{"removed", report.stale_staging_removed}, {"published", report.stale_staging_published}}},
      {"counts", counts},
      {"pixels", deid::pixel_counts_json(report.pixel_work, report.failures)},
      {"pixel_work", pixel_work},
      {"failures", failures},
      {"seconds", report.seconds},
      {"timings", deid::timings_json(report.stage_timings, report.seconds)},
      {"exit_code", report.exit_code()},
  };
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string report_text(const ExportReport& report) {
  auto count = [](std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  std::ostringstream out;
  if (report.mode == ExportMode::dry_run) {
    out << "dry run, nothing written or recorded: would release "
        << count(report.instances_included, "instance", "instances") << " in "
        << count(report.studies_included, "study", "studies") << " (de-identification not "
        << "attempted)" << (report.error.empty() ? "" : "; would FAIL: " + report.error) << "\n";
    out << (report.signing ? "every released file and the manifest would be signed\n"
                           : "nothing would be signed (no --sign-key)\n");
    for (const auto& p : report.plan)
      out << "study " << p.study_uid << ": " << count(p.instances, "instance", "instances") << ": "
          << (p.decision == "release" ? "release" : "withhold (" + p.decision + ")") << "\n";
  } else if (report.mode == ExportMode::stage_shard && report.error.empty()) {
    out << "staged " << count(report.instances_included, "instance", "instances") << " in "
        << count(report.studies_included, "study", "studies")
        << " for the release (nothing is published before radguard plan publish)\n";
  } else if (report.mode == ExportMode::stage_shard) {
    out << "shard FAILED, the release will not be published: " << report.error << "\n";
  } else if (report.status == ledger::EntryStatus::released) {
    out << "released " << count(report.instances_included, "instance", "instances") << " in "
        << count(report.studies_included, "study", "studies") << " to " << report.release.string()
        << " (ledger entry " << report.ledger_sequence << ")"
        << (report.manifest_signed ? "; files and manifest signed (check with radguard "
                                     "verify-release)"
                                   : "")
        << "\n";
  } else {
    out << "export FAILED, nothing released: " << report.error << " (ledger entry "
        << report.ledger_sequence << ")\n";
  }
  if (report.stale_staging_published > 0)
    out << "published " << count(report.stale_staging_published, "release", "releases")
        << " that a killed export had already recorded in the ledger\n";
  out << "excluded " << count(report.excluded_studies(), "study", "studies") << " ("
      << count(report.excluded_instances(), "instance", "instances") << ")";
  for (const auto& [reason, n] : report.excluded)
    out << "; " << exclusion_name(reason) << ": " << n.studies;
  out << "; not DICOM " << report.not_dicom << ", DICOMDIR dropped " << report.dicomdir_dropped
      << "\n";
  out << deid::failure_text(
      report.failures, [](const deid::FileOutcome& o) { return o.input.string(); },
      [](const std::string& reason) { return reason; });
  for (const auto& m : report.missing_inputs)
    out << "error: " << m.path.string() << ": " << m.reason << "\n";
  out << deid::pixel_work_text(report.pixel_work, report.stage_timings,
                               [](const deid::FileOutcome& o) { return o.input.string(); });
  return out.str();
}


// ---- A release cut into shards: each shard stages, publish_staged publishes once. ----

fs::path shard_staging_folder(const fs::path& output, std::string_view plan_id) {
  return output / (".shards-" + std::string(plan_id));
}

fs::path shard_part_path(std::size_t shard) {
  char name[48];
  std::snprintf(name, sizeof name, "staged/shard-%04zu.json", shard);
  return name;
}

namespace {

Error refused(const std::string& why) {
  return Error{ErrorCode::integrity, "the release is not published, and nothing is recorded: " + why};
}

// What every part of one release must agree on.
constexpr const char* kSharedByParts[] = {"version", "output",          "purpose",
                                          "recipient", "profile",       "key_fingerprint",
                                          "signed",  "ledger",          "on_failure",
                                          "manifest_signer", "profile_summary", "plan_id",
                                          "registry", "key_file", "audit_gate"};

std::optional<Exclusion> exclusion_named(std::string_view name) {
  for (const Exclusion e : {Exclusion::consent_denied, Exclusion::no_consent,
                            Exclusion::no_patient_id, Exclusion::conflicting_patient,
                            Exclusion::no_study_uid, Exclusion::failed_instance})
    if (exclusion_name(e) == name) return e;
  return std::nullopt;
}

// Every count publish adds up is absent (0) or a whole number: value(key, 0) on a float such as
// 1e300 would be undefined behaviour, and on a negative number would wrap.
bool counts_are_whole_numbers(const json& part) {
  const auto whole = [](const json& object, std::initializer_list<const char*> keys) {
    return std::ranges::all_of(keys, [&object](const char* key) {
      return json_integer_field(object, key, std::uint64_t{0}).has_value();
    });
  };
  const json& counts = part.at("counts");
  if (!whole(part, {"missing_inputs"}) ||
      !whole(counts, {"files_seen", "skipped_not_dicom", "dicomdir_dropped", "studies_seen",
                      "studies", "instances", "failed"}))
    return false;
  if (!counts.contains("excluded_by_reason")) return true;
  for (const auto& [name, n] : counts.at("excluded_by_reason").items())
    if (!whole(n, {"studies", "instances"})) return false;
  return true;
}

Result<StagedRelease> read_staged_checked(const fs::path& plan_folder) {
  auto planned = plan::read_plan_summary(plan_folder);
  if (!planned) return std::unexpected(planned.error());
  StagedRelease staged;
  staged.plan_folder = plan_folder;
  staged.shards = planned->shard_files.size();
  std::set<std::string> paths, studies;
  for (std::size_t s = 0; s < planned->shard_files.size(); ++s) {
    if (planned->shard_files[s] == 0) continue;  // an empty list runs nothing
    const fs::path path = plan_folder / shard_part_path(s);
    const std::string shard = "shard " + std::to_string(s);
    std::error_code ec;
    if (!fs::exists(path, ec))
      return std::unexpected(refused(shard + " staged nothing (no " + shard_part_path(s).string() +
                                     "): it did not run, or did not finish"));
    auto text = read_small_file(path, 1ULL << 30);
    if (!text) return std::unexpected(text.error());
    json part = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (part.is_discarded() || !part.is_object() ||
        part.value("format", "") != "radguard-staged-shard-v1")
      return std::unexpected(refused(path.string() + " is not a shard's part record"));
    if (part.value("plan_id", "") != planned->id ||
        json_integer_field(part, "shard", SIZE_MAX) != std::optional<std::size_t>(s))
      return std::unexpected(refused(shard + "'s part belongs to another plan or shard"));
    // Publish decides consent again with these; a part without them (an older radguard's)
    // cannot be re-checked, so it cannot be published.
    if (!part.contains("registry") || !part.contains("key_file") || !part.contains("audit_gate"))
      return std::unexpected(refused(shard + "'s part does not name its consent registry and key "
                                             "(staged by an older radguard): run the shards again"));
    if (part.value("part_status", "") != "staged")
      return std::unexpected(refused(shard + " failed: " + part.value("error", std::string("?"))));
    const auto& counts = part.at("counts");
    if (!counts_are_whole_numbers(part))
      return std::unexpected(refused(shard + "'s part holds a count that is not a whole number"));
    if (counts.value("files_seen", std::uint64_t{0}) + part.value("missing_inputs", std::uint64_t{0}) !=
        planned->shard_files[s])
      return std::unexpected(refused(shard + "'s part does not account for exactly the " +
                                     std::to_string(planned->shard_files[s]) + " file(s) of its list"));
    if (!staged.parts.empty()) {
      const json& first = staged.parts.front();
      const auto field = [](const json& doc, const char* key) {
        return doc.contains(key) ? doc.at(key) : json();
      };
      for (const char* key : kSharedByParts)
        if (field(part, key) != field(first, key))
          return std::unexpected(refused(shard + " differs from shard " +
                                         std::to_string(first.value("shard", 0)) + " in " + key +
                                         ": they are not one release"));
    }
    // Every value publish_staged reads, read once here: a damaged part fails now (json
    // exceptions become a refusal in read_staged), never halfway through publishing.
    for (const char* key :
         {"recipient", "purpose", "output", "ledger", "key_fingerprint", "registry", "key_file",
          "audit_gate"})
      (void)part.at(key).get<std::string>();
    for (const char* key : {"preset", "method", "key_fingerprint"})
      (void)part.at("profile_summary").at(key).get<std::string>();
    (void)part.at("profile_summary").at("options").get<std::vector<std::string>>();
    if (!json_integer<std::uint64_t>(part.at("profile_summary").at("recipe_overrides")))
      return std::unexpected(refused(shard + "'s part is damaged"));
    for (const auto& [name, n] : counts.at("excluded_by_reason").items())
      if (!exclusion_named(name) || !n.is_object())
        return std::unexpected(refused(shard + "'s part names an unknown exclusion"));
    if (!part.at("failures").is_array() || !part.at("profile").is_object())
      return std::unexpected(refused(shard + "'s part is damaged"));
    for (const auto& file : part.at("files")) {
      (void)file.at("sha256").get<std::string>();
      (void)file.at("patient_hash").get<std::string>();
      if (!json_integer<std::uint64_t>(file.at("bytes")))
        return std::unexpected(refused(shard + "'s part is damaged"));
      if (const std::string basis = file.at("consent_basis").get<std::string>();
          basis != "recorded" && basis != "default")
        return std::unexpected(refused(shard + "'s part names an unknown consent basis"));
      const std::string p = file.at("path").get<std::string>();
      const fs::path relative(p);
      if (relative.is_absolute() || relative.lexically_normal() != relative ||
          p.starts_with("..") || p.find("/../") != std::string::npos)
        return std::unexpected(refused(shard + "'s part names a file outside the release"));
      if (!paths.insert(p).second)
        return std::unexpected(refused("two shards staged the same file: the plan was not one plan"));
    }
    for (const auto& uid : part.at("studies"))
      if (!studies.insert(uid.get<std::string>()).second)
        return std::unexpected(refused("a study was decided in two shards (its files were split "
                                       "between shards): cut the inputs with radguard plan"));
    staged.parts.push_back(std::move(part));
  }
  if (staged.parts.empty()) return std::unexpected(refused("the plan has no shard with files"));
  const json& first = staged.parts.front();
  staged.output = first.at("output").get<std::string>();
  staged.staging = shard_staging_folder(staged.output, planned->id);
  staged.ledger = first.at("ledger").get<std::string>();
  staged.registry = first.at("registry").get<std::string>();
  staged.key_file = first.at("key_file").get<std::string>();
  staged.audit_gate = first.at("audit_gate").get<std::string>();
  if (first.at("manifest_signer").is_object())
    staged.manifest_signer = signing::KeyFiles{first["manifest_signer"].at("key").get<std::string>(),
                                               first["manifest_signer"].at("cert").get<std::string>()};
  return staged;
}

}  // namespace

Result<StagedRelease> read_staged(const fs::path& plan_folder) {
  try {
    return read_staged_checked(plan_folder);
  } catch (const json::exception&) {
    return std::unexpected(refused("a part record under " + (plan_folder / "staged").string() +
                                   " is damaged"));
  }
}

namespace {

// Holds a folder under an exclusive flock(2) (the lock follows the folder through renames).
class FolderLock {
 public:
  FolderLock() = default;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status lock(const fs::path& folder) {
    fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) return fail(ErrorCode::io, std::string("cannot open it: ") + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0)
      return fail(ErrorCode::conflict, "another radguard holds it (a publish under way?)");
    return {};
  }

 private:
  int fd_ = -1;
};

// Removes from `folder` every entry that is not a listed regular file or a folder on the way
// to one (a killed run's temporaries, a withheld study's file a crash left, an earlier
// manifest), then every folder left empty. Returns how many files were removed.
Result<std::size_t> keep_only_listed(const fs::path& folder, const std::set<std::string>& listed) {
  std::size_t removed = 0;
  std::error_code ec;
  std::vector<fs::path> unlisted, folders;
  for (fs::recursive_directory_iterator it(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto type = it->symlink_status(ec).type();
    if (ec) break;
    const std::string relative = it->path().lexically_relative(folder).generic_string();
    if (type == fs::file_type::directory) {
      folders.push_back(it->path());
    } else if (type != fs::file_type::regular || !listed.contains(relative)) {
      unlisted.push_back(it->path());
    }
  }
  if (ec) return fail(ErrorCode::io, "cannot list the staging folder: " + ec.message());
  for (const auto& path : unlisted) {
    if (!fs::remove(path, ec) || ec)
      return fail(ErrorCode::io, "cannot remove a file no shard staged: " + ec.message());
    ++removed;
  }
  std::sort(folders.begin(), folders.end(), std::greater<>());  // deepest first
  for (const auto& f : folders)
    if (fs::is_empty(f, ec) && !ec) fs::remove(f, ec);
  return removed;
}

// The staged patients (keyed hashes) whose consent does not permit `purpose` at `now`, each
// with why, decided as Registry::decide decides: the patient's decision in force, else the
// default policy. The registry names patients by ID and the parts by keyed hash only, so the
// registry's decisions in force for the purpose are read and their IDs hashed here. Fail
// closed: a patient whose shard found a decision of hers (`recorded`) and for whom none is in
// force now is left out, never handed to the default policy.
Result<std::map<std::string, Exclusion>> not_permitted_now(consent::Registry& registry,
                                                           const crypto::SecretKey& key,
                                                           consent::Purpose purpose,
                                                           std::string_view now,
                                                           const std::set<std::string>& patients,
                                                           const std::set<std::string>& recorded_at_shard) {
  auto in_force = registry.current(purpose, now);
  if (!in_force) return std::unexpected(in_force.error());
  auto fallback = registry.default_for(purpose);
  if (!fallback) return std::unexpected(fallback.error());
  std::map<std::string, consent::Decision> recorded;
  for (const auto& record : *in_force)
    if (std::string hash = ledger::patient_hash(key, record.patient_id); patients.contains(hash))
      recorded[std::move(hash)] = record.decision;
  std::map<std::string, Exclusion> out;
  for (const auto& hash : patients) {
    const auto decided = recorded.find(hash);
    if (decided == recorded.end()) {
      if (recorded_at_shard.contains(hash) || *fallback != consent::Decision::permit)
        out[hash] = Exclusion::no_consent;
    } else if (decided->second != consent::Decision::permit) {
      out[hash] = Exclusion::consent_denied;
    }
  }
  return out;
}

}  // namespace

Result<PublishReport> publish_staged(const StagedRelease& staged, consent::Registry& registry,
                                     const crypto::SecretKey& key, ledger::Ledger& ledger,
                                     unsigned threads, const ReleaseGate& gate) {
  const auto start = std::chrono::steady_clock::now();
  PublishReport out;
  std::error_code ec;
  if (!fs::is_directory(staged.staging, ec))
    return std::unexpected(refused("no staging folder " + staged.staging.string() +
                                   " (published already, or never staged)"));
  FolderLock lock;
  if (auto locked = lock.lock(staged.staging); !locked)
    return std::unexpected(refused("the staging folder " + staged.staging.string() + ": " +
                                   locked.error().message));
  const json& first = staged.parts.front();
  if (key.fingerprint() != first.at("key_fingerprint").get<std::string>())
    return std::unexpected(refused("the key " + staged.key_file.string() +
                                   " is not the key the shards used"));
  const auto purpose = consent::parse_purpose(first.at("purpose").get<std::string>());
  if (!purpose) return std::unexpected(refused("the parts name an unknown purpose"));

  // The parts together: counts, exclusions, files, patients.
  ExportReport counts;
  std::uint64_t failures = 0;
  std::string earliest_consent, latest_consent;
  json failure_list = json::array();
  struct Listed {
    std::string sha256, patient_hash, modality;
    std::uint64_t bytes = 0;
  };
  std::map<std::string, Listed> files;  // by path in the release, sorted
  std::set<std::string> recorded_at_shard;  // patients whose shard found a decision of theirs
  for (const auto& part : staged.parts) {
    const json& c = part.at("counts");
    counts.files_seen += c.value("files_seen", std::uint64_t{0});
    counts.not_dicom += c.value("skipped_not_dicom", std::uint64_t{0});
    counts.dicomdir_dropped += c.value("dicomdir_dropped", std::uint64_t{0});
    counts.studies_seen += c.value("studies_seen", std::uint64_t{0});
    counts.studies_included += c.value("studies", std::uint64_t{0});
    counts.instances_included += c.value("instances", std::uint64_t{0});
    for (const auto& [name, n] : c.at("excluded_by_reason").items()) {
      const auto reason = exclusion_named(name);
      if (!reason) return std::unexpected(refused("a part names an unknown exclusion " + name));
      counts.excluded[*reason].studies += n.value("studies", std::uint64_t{0});
      counts.excluded[*reason].instances += n.value("instances", std::uint64_t{0});
    }
    failures += c.value("failed", std::uint64_t{0});
    for (const auto& f : part.at("failures")) failure_list.push_back(f);
    const std::string consent = part.value("consent_evaluated_at", "");
    if (earliest_consent.empty() || consent < earliest_consent) earliest_consent = consent;
    if (consent > latest_consent) latest_consent = consent;
    for (const auto& f : part.at("files")) {
      files[f.at("path").get<std::string>()] = {f.at("sha256").get<std::string>(),
                                                f.at("patient_hash").get<std::string>(),
                                                f.value("modality", ""), f.at("bytes").get<std::uint64_t>()};
      if (f.at("consent_basis").get<std::string>() == "recorded")
        recorded_at_shard.insert(f.at("patient_hash").get<std::string>());
    }
  }
  if (files.empty())
    return std::unexpected(refused("no shard staged a file: no study may be released for " +
                                   first.value("purpose", std::string())));

  // Nothing in the release that no shard accounted for; everything as its shard left it.
  std::set<std::string> listed;
  for (const auto& [path, f] : files) listed.insert(path);
  auto removed = keep_only_listed(staged.staging, listed);
  if (!removed) return std::unexpected(removed.error());
  out.unlisted_removed = *removed;
  std::vector<const std::pair<const std::string, Listed>*> ordered;
  for (const auto& entry : files) ordered.push_back(&entry);
  // The manifest's order, as run_export's (paths compared element by element).
  std::sort(ordered.begin(), ordered.end(),
            [](const auto* a, const auto* b) { return fs::path(a->first) < fs::path(b->first); });
  // Consent again, now, before anything is checked or removed: a patient who withdrew (or
  // whose consent expired) since her shard ran is left out, her files removed. Her files are
  // not checked either: a publish that failed after removing them (gate, ledger) can be tried
  // again, and she is left out again.
  const std::string now = utc_now_iso8601();
  std::set<std::string> patients;
  for (const auto& [path, f] : files) patients.insert(f.patient_hash);
  const auto decide_now = [&](std::string_view at) -> Result<std::map<std::string, Exclusion>> {
    auto decided = not_permitted_now(registry, key, *purpose, at, patients, recorded_at_shard);
    if (!decided)
      return std::unexpected(refused("the consent registry could not be read to decide consent "
                                     "again: " + decided.error().message));
    return decided;
  };
  auto not_permitted = decide_now(now);
  if (!not_permitted) return std::unexpected(not_permitted.error());
  if (!not_permitted->empty()) {
    // Instances by patient, then study: a study folder may hold more than one patient's files.
    std::map<Exclusion, std::map<std::pair<std::string, std::string>, std::uint64_t>> left_out;
    std::erase_if(ordered, [&](const auto* entry) {
      const auto why = not_permitted->find(entry->second.patient_hash);
      if (why == not_permitted->end()) return false;
      ++left_out[why->second][{entry->second.patient_hash, fs::path(entry->first).begin()->string()}];
      listed.erase(entry->first);
      return true;
    });
    for (const auto& [why, studies] : left_out)
      for (const auto& [study, instances] : studies) {
        counts.excluded[why].studies += 1;
        counts.excluded[why].instances += instances;
        out.withdrawn.studies += 1;
        out.withdrawn.instances += instances;
      }
    out.withdrawn_patients = not_permitted->size();
    counts.studies_included -= std::min(counts.studies_included, out.withdrawn.studies);
    counts.instances_included -= std::min(counts.instances_included, out.withdrawn.instances);
  }
  std::vector<std::string> problems(ordered.size());
  batch::run_parallel(
      ordered.size(), batch::default_threads(threads),
      [&](std::size_t i) {
        const fs::path path = staged.staging / ordered[i]->first;
        std::error_code size_ec;
        const auto bytes = fs::file_size(path, size_ec);
        if (size_ec) {
          problems[i] = "missing";
          return;
        }
        auto digest = crypto::sha256_file(path);
        if (bytes != ordered[i]->second.bytes || !digest ||
            crypto::to_hex(*digest) != ordered[i]->second.sha256)
          problems[i] = "altered";
      },
      [&](std::size_t i, const std::string&) { problems[i] = "unreadable"; });
  for (std::size_t i = 0; i < problems.size(); ++i)
    if (!problems[i].empty())
      return std::unexpected(refused("a staged file is " + problems[i] + " since its shard staged it (" +
                                     ordered[i]->first + ")"));

  if (!not_permitted->empty())
    if (auto gone = keep_only_listed(staged.staging, listed); !gone)
      return std::unexpected(gone.error());
  if (ordered.empty())
    return std::unexpected(refused("no patient's consent permits " + first.at("purpose").get<std::string>() +
                                   " any more: nothing may be released"));
  // The gate sees the whole release as it will leave, never one shard's part of it.
  if (gate) {
    auto verdict = gate(staged.staging);
    if (!verdict)
      return std::unexpected(refused("the release gate could not run: " + verdict.error().message));
    if (*verdict) return std::unexpected(refused("the release gate refused the release: " + **verdict));
  }
  // The gate can take long: a patient who withdrew while it ran is not left out silently
  // (the release it checked had her in it). Nothing is recorded; publishing again leaves her out.
  auto withdrawn_since = decide_now(utc_now_iso8601());
  if (!withdrawn_since) return std::unexpected(withdrawn_since.error());
  for (const auto& [hash, why] : *withdrawn_since)
    if (!not_permitted->contains(hash))
      return std::unexpected(refused(
          "a patient's consent was withdrawn while the release was checked: nothing was "
          "published or recorded; run plan publish again to leave her out"));

  // The manifest, as run_export writes it, and the ledger entry's account of who is in it.
  auto name = new_release_name(now);
  if (!name) return std::unexpected(name.error());
  out.release_name = *name;
  json manifest_files = json::array();
  PatientStudies by_patient;
  for (const auto* entry : ordered) {
    const auto& [path, f] = *entry;
    manifest_files.push_back({{"path", path}, {"sha256", f.sha256}, {"bytes", f.bytes}});
    const std::string study_uid = fs::path(path).begin()->string();
    auto& study = by_patient[f.patient_hash][study_uid];
    study.study_uid = study_uid;
    study.instances += 1;
    if (!f.modality.empty() &&
        std::find(study.modalities.begin(), study.modalities.end(), f.modality) ==
            study.modalities.end())
      study.modalities.push_back(f.modality);
  }
  counts.patients_included = by_patient.size();
  if (counts.instances_included != ordered.size())
    return std::unexpected(refused("the parts' counts do not agree with their files"));
  const json manifest = {
      {"format", std::string(kReleaseManifestFormat)},
      {"tool", "radguard"},
      {"version", std::string(kVersion)},
      {"release", out.release_name},
      {"created", now},
      {"complete", true},
      {"recipient", first.at("recipient")},
      {"purpose", first.at("purpose")},
      {"profile", first.at("profile")},
      {"key_fingerprint", first.at("key_fingerprint")},
      {"counts", counts_json(counts)},
      {"files", manifest_files},
  };
  const std::string manifest_text =
      manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const auto readable = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read;
  if (auto s = write_file_atomically(staged.staging / kReleaseManifest, manifest_text, readable); !s)
    return std::unexpected(s.error());
  out.manifest_digest = crypto::to_hex(crypto::sha256(manifest_text));
  if (staged.manifest_signer) {
    auto signature = signing::sign_cms_detached(manifest_text, staged.manifest_signer->key,
                                                staged.manifest_signer->cert);
    if (!signature) return std::unexpected(signature.error());
    if (auto s = write_file_atomically(staged.staging / kReleaseManifestSignature, *signature,
                                       readable);
        !s)
      return std::unexpected(s.error());
    out.manifest_signed = true;
  }

  ledger::Entry entry;
  entry.recipient = first.at("recipient").get<std::string>();
  entry.purpose = first.at("purpose").get<std::string>();
  const json& summary = first.at("profile_summary");
  entry.profile = {summary.at("preset").get<std::string>(),
                   summary.at("options").get<std::vector<std::string>>(),
                   summary.at("recipe_overrides").get<std::uint64_t>(),
                   summary.at("method").get<std::string>(),
                   summary.at("key_fingerprint").get<std::string>()};
  entry.release = out.release_name;
  entry.status = ledger::EntryStatus::released;
  entry.output_digest = out.manifest_digest;
  entry.instances = counts.instances_included;
  entry.studies = counts.studies_included;
  entry.excluded_studies = counts.excluded_studies();
  add_patients(entry, std::move(by_patient));

  // Record, then publish, as run_export does. The folder first takes a staging name of its
  // release (the lock goes with it): a publish killed after the entry committed leaves it
  // for the next export into OUTDIR to publish (remove_stale_staging), as run_export's.
  const fs::path staging_name = staged.output / (".staging-" + out.release_name);
  const fs::path final_path = staged.output / out.release_name;
  fs::rename(staged.staging, staging_name, ec);
  if (ec) return std::unexpected(refused("cannot rename the staging folder: " + ec.message()));
  auto stored = ledger.append(entry);
  if (!stored) {
    // Back under its shards' name, so that publishing can be tried again.
    std::error_code back;
    fs::rename(staging_name, staged.staging, back);
    // The next try writes its own manifest; this one's is not a file a shard staged.
    fs::remove(staged.staging / kReleaseManifest, back);
    fs::remove(staged.staging / kReleaseManifestSignature, back);
    return std::unexpected(Error{stored.error().code,
                                 "the release could not be recorded, so it was not published: " +
                                     stored.error().message});
  }
  fs::rename(staging_name, final_path, ec);
  if (ec)
    return fail(ErrorCode::io, "the release is recorded (ledger entry " +
                                   std::to_string(stored->sequence) +
                                   ") but could not be published: " + ec.message() +
                                   "; the next export into " + staged.output.string() +
                                   " publishes it");
  (void)sync_folder(staged.output);
  out.release = final_path;
  out.ledger_sequence = stored->sequence;
  out.ledger_entry_hash = stored->entry_hash;
  out.exit_code = failures == 0 && out.withdrawn.studies == 0 ? kExitSuccess : kExitSomeFailed;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  json shard_seconds = json::array();
  for (const auto& part : staged.parts) shard_seconds.push_back(part.value("seconds", 0.0));
  json report_counts = counts_json(counts);
  report_counts["files_seen"] = counts.files_seen;
  report_counts["studies_seen"] = counts.studies_seen;
  report_counts["skipped_not_dicom"] = counts.not_dicom;
  report_counts["dicomdir_dropped"] = counts.dicomdir_dropped;
  report_counts["failed"] = failures;
  out.report = {
      {"tool", "radguard"},
      {"version", std::string(kVersion)},
      {"command", "plan publish"},
      {"status", "released"},
      {"purpose", first.at("purpose")},
      {"recipient", first.at("recipient")},
      {"consent_evaluated_at",
       {{"earliest", earliest_consent}, {"latest", latest_consent}, {"publish", now}}},
      {"withdrawn_at_publish",
       {{"patients", out.withdrawn_patients},
        {"studies", out.withdrawn.studies},
        {"instances", out.withdrawn.instances}}},
      {"profile", first.at("profile")},
      {"key_fingerprint", first.at("key_fingerprint")},
      {"output", staged.output.string()},
      {"release_name", out.release_name},
      {"release", final_path.string()},
      {"manifest_sha256", out.manifest_digest},
      {"manifest_signature",
       out.manifest_signed ? json(std::string(kReleaseManifestSignature)) : json(nullptr)},
      {"ledger", {{"sequence", out.ledger_sequence}, {"entry_hash", out.ledger_entry_hash}}},
      {"shards", {{"plan", staged.shards}, {"parts", staged.parts.size()}, {"seconds", shard_seconds}}},
      {"unlisted_removed", out.unlisted_removed},
      {"counts", report_counts},
      {"failures", failure_list},
      {"seconds", seconds},
      {"exit_code", out.exit_code},
  };
  return out;
}

std::string publish_text(const PublishReport& report) {
  const auto& c = report.report.at("counts");
  std::ostringstream out;
  out << "released " << c.value("instances", std::uint64_t{0}) << " instance(s) in "
      << c.value("studies", std::uint64_t{0}) << " study(ies) from "
      << report.report.at("shards").value("parts", std::size_t{0}) << " shard(s) to "
      << report.release.string() << " (one ledger entry: " << report.ledger_sequence << ")"
      << (report.manifest_signed ? "; files and manifest signed" : "") << "\n";
  out << "excluded " << c.value("excluded_studies", std::uint64_t{0}) << " study(ies); failed "
      << c.value("failed", std::uint64_t{0}) << " input(s)";
  if (report.unlisted_removed > 0)
    out << "; removed " << report.unlisted_removed << " file(s) no shard staged";
  out << "\n";
  if (report.withdrawn.studies > 0)
    out << "LEFT OUT at publish: " << report.withdrawn.studies << " study(ies), "
        << report.withdrawn.instances << " instance(s) of " << report.withdrawn_patients
        << " patient(s) whose consent no longer permits the purpose (not released, not in the "
           "ledger entry)\n";
  for (const auto& f : report.report.at("failures"))
    out << "error: " << f.value("input", std::string()) << ": " << f.value("reason", std::string())
        << "\n";
  return out.str();
}

}  // namespace radguard::exporter
