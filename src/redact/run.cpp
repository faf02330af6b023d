// The batch behind `radguard redact`: every input through redact_file, published atomically
// into the output folder, or into the quarantine folder when it fails closed.
#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/version.hpp"
#include "redact/redact.hpp"

namespace radguard::redact {

namespace fs = std::filesystem;

namespace {

constexpr Tag kSopInstanceUid{0x0008, 0x0018};
constexpr Tag kMediaStorageSopInstanceUid{0x0002, 0x0003};

const dicom::MetaIdentity& meta_identity() {
  static const dicom::MetaIdentity identity{std::string(kImplementationClassUid),
                                            std::string(kImplementationVersionName)};
  return identity;
}

// Output names come from the SOP Instance UID: input paths often hold patient names.
Result<std::string> output_stem(const dicom::DicomFile& file) {
  auto uid = file.string_of(kSopInstanceUid);
  if (!uid) uid = file.string_of(kMediaStorageSopInstanceUid);
  if (!uid) return fail(ErrorCode::malformed_dicom, "no SOP Instance UID to name the output");
  std::string text = *uid;
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  if (text.empty() || text.size() > 64 || !std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || c == '.';
      }))
    return fail(ErrorCode::malformed_dicom, "SOP Instance UID is not a valid UID");
  return text;
}

// An existing file of that name is kept when it differs (a conflict the outcome reports),
// unless the run was told to overwrite; an identical one is a rerun.
Status save_atomically(dicom::DicomFile& file, const fs::path& destination,
                       PendingFile::Existing existing) {
  auto pending = PendingFile::create(destination);
  if (!pending) return std::unexpected(pending.error());
  if (auto saved = file.save(pending->temp_path(), meta_identity()); !saved) return saved;
  return pending->commit(std::nullopt, existing);
}

Status write_previews(const FileRedaction& redaction, const fs::path& folder,
                      const std::string& stem) {
  try {
    for (const auto& preview : redaction.previews) {
      for (const bool after : {false, true}) {
        const auto& pixels = after ? preview.after : preview.before;
        const cv::Mat grey(static_cast<int>(preview.height), static_cast<int>(preview.width),
                           CV_8UC1, const_cast<std::uint8_t*>(pixels.data()));
        cv::Mat colour;
        cv::cvtColor(grey, colour, cv::COLOR_GRAY2BGR);
        const cv::Scalar outline = after ? cv::Scalar(0, 200, 0) : cv::Scalar(0, 0, 255);
        for (const Redaction& r : redaction.redactions) {
          if (r.frame != preview.frame) continue;
          cv::rectangle(colour, cv::Rect(r.box.x, r.box.y, r.box.width, r.box.height), outline, 1);
        }
        std::vector<unsigned char> png;
        if (!cv::imencode(".png", colour, png))
          return fail(ErrorCode::io, "cannot encode preview PNG");
        const std::string name =
            stem + "_f" + std::to_string(preview.frame) + (after ? "_after.png" : "_before.png");
        // The "before" image shows the identifying text: owner-only, like the report.
        if (auto written = write_file_atomically(
                folder / name,
                std::string_view(reinterpret_cast<const char*>(png.data()), png.size()),
                fs::perms::owner_read | fs::perms::owner_write);
            !written)
          return written;
      }
    }
  } catch (const std::exception& e) {
    return fail(ErrorCode::io, std::string("cannot write preview: ") + e.what());
  }
  return {};
}

// The output names one run has given out. Two inputs with one SOP Instance UID would write
// one output name: the second failed as "already exists", or, with --overwrite, silently
// replaced the first (a new user's trial). Now the first input to reach the name keeps it,
// whatever then becomes of it; which input that is depends on the threads' order.
class ClaimedNames {
 public:
  [[nodiscard]] bool claim(const std::string& name) {
    const std::lock_guard lock(mutex_);
    return names_.insert(name).second;
  }

 private:
  std::mutex mutex_;
  std::set<std::string> names_;
};

RedactOutcome process(const fs::path& input, const RedactRunOptions& options,
                      ClaimedNames& claimed) {
  RedactOutcome outcome;
  outcome.input = input;
  auto failed = [&](const Error& error, OutcomeStatus status = OutcomeStatus::failed) {
    outcome.status = status;
    outcome.error = error.code;
    outcome.reason = error.message;
    return outcome;
  };
  auto file = dicom::DicomFile::open(input);
  if (!file)
    return failed(file.error(), file.error().code == ErrorCode::not_dicom
                                    ? OutcomeStatus::skipped_not_dicom
                                    : OutcomeStatus::failed);
  if (file->is_dicomdir()) return failed(Error{ErrorCode::policy, "DICOMDIR not processed"});
  auto stem = output_stem(*file);
  if (!stem) return failed(stem.error());
  const std::string name = *stem + ".dcm";
  if (options.redact.mode != Mode::report && !claimed.claim(name))
    return failed(Error{ErrorCode::conflict,
                        "another input of this run, taken first, has the same SOP Instance "
                        "UID; this one is not redacted"});

  auto redaction = redact_file(*file, options.redact,
                               options.preview ? PreviewImages::keep : PreviewImages::skip);
  if (!redaction) {
    if (redaction.error().code == ErrorCode::unsupported && options.redact.mode != Mode::report) {
      // Pixels that cannot be checked must not be released: keep the input for review.
      std::error_code ec;
      fs::create_directories(options.quarantine, ec);
      const fs::path target = options.quarantine / name;
      auto bytes = read_small_file(input);
      if (bytes) {
        if (auto written = write_file_atomically(target, *bytes,
                                                 fs::perms::owner_read | fs::perms::owner_write);
            written)
          outcome.output = target;
      }
      return failed(redaction.error(), OutcomeStatus::quarantined);
    }
    return failed(redaction.error());
  }
  if (options.preview) {
    if (auto written = write_previews(*redaction, *options.preview, *stem); !written)
      return failed(written.error());
    redaction->previews.clear();
  }
  outcome.redaction = std::move(*redaction);
  const FileRedaction& r = *outcome.redaction;
  // Report mode finds and tells; it never writes DICOM, whatever triage decided.
  if (r.verdict == FileVerdict::reported || options.redact.mode == Mode::report) {
    outcome.status = OutcomeStatus::reported;
    return outcome;
  }
  if (r.verdict == FileVerdict::residual_phi) {
    const fs::path target = options.quarantine / name;
    if (auto saved = save_atomically(*file, target, options.existing); !saved)
      return failed(saved.error());
    outcome.output = target;
    outcome.status = OutcomeStatus::quarantined;
    outcome.error = ErrorCode::policy;
    outcome.reason = r.unread_text_regions > 0
                         ? "too many text-like regions to read; not known to be free of "
                           "identifying text"
                         : "identifying text still found after redaction";
    return outcome;
  }
  const fs::path target = options.output / name;
  if (auto saved = save_atomically(*file, target, options.existing); !saved)
      return failed(saved.error());
  outcome.output = target;
  outcome.status = OutcomeStatus::written;
  return outcome;
}

bool inside(const fs::path& child, const fs::path& parent) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(child, ec);
  const fs::path p = fs::weakly_canonical(parent, ec);
  auto [pi, ci] = std::mismatch(p.begin(), p.end(), c.begin(), c.end());
  return pi == p.end();
}

}  // namespace

std::string_view outcome_status_name(OutcomeStatus status) {
  switch (status) {
    case OutcomeStatus::written:
      return "written";
    case OutcomeStatus::quarantined:
      return "quarantined";
    case OutcomeStatus::reported:
      return "reported";
    case OutcomeStatus::skipped_not_dicom:
      return "skipped_not_dicom";
    case OutcomeStatus::failed:
      return "failed";
  }
  return "";
}

std::size_t RedactRunReport::count(OutcomeStatus status) const {
  return static_cast<std::size_t>(
      std::count_if(outcomes.begin(), outcomes.end(),
                    [&](const RedactOutcome& o) { return o.status == status; }));
}

// A wrong folder is a mistake, not a success with nothing to do (deid says the same).
bool RedactRunReport::no_dicom_input() const {
  return count(OutcomeStatus::skipped_not_dicom) == outcomes.size();
}

int RedactRunReport::exit_code() const {
  const bool bad = std::any_of(outcomes.begin(), outcomes.end(), [](const RedactOutcome& o) {
    return o.status == OutcomeStatus::failed || o.status == OutcomeStatus::quarantined;
  });
  return bad || !missing_inputs.empty() || no_dicom_input() ? kExitSomeFailed : kExitSuccess;
}

Result<RedactRunReport> run_redact(const RedactRunOptions& given) {
  const auto start = std::chrono::steady_clock::now();
  RedactRunOptions options = given;
  if (options.quarantine.empty()) {
    fs::path out = options.output;
    if (!out.has_filename()) out = out.parent_path();
    options.quarantine = out.string() + "-quarantine";
  }
  for (const fs::path* folder : {&options.output, &options.quarantine}) {
    if (auto outside = batch::require_outside_inputs(*folder, options.inputs); !outside)
      return std::unexpected(outside.error());
  }
  if (inside(options.quarantine, options.output))
    return fail(ErrorCode::usage, "the quarantine folder must not lie inside the output folder");
  const batch::InputSet inputs = batch::find_files(options.inputs);
  RedactRunReport report;
  report.missing_inputs = inputs.missing;
  report.outcomes.resize(inputs.files.size());
  batch::Progress progress("redact", inputs.files.size(), options.progress);
  ClaimedNames claimed;
  batch::run_parallel(
      inputs.files.size(), batch::default_threads(options.threads),
      [&](std::size_t i) {
        report.outcomes[i] = process(inputs.files[i], options, claimed);
        std::error_code ec;
        progress.advance(fs::file_size(inputs.files[i], ec));
      },
      [&](std::size_t i, const std::string& what) {
        RedactOutcome& o = report.outcomes[i];
        o.input = inputs.files[i];
        o.status = OutcomeStatus::failed;
        o.error = ErrorCode::internal;
        o.reason = what;
      });
  progress.finish();
  // The report travels: each input is named relative to the input given (as deid's are),
  // never by the folders above it, which can name the patient (a new user's trial).
  const batch::InputRoots roots(options.inputs, inputs.canonical_inputs);
  for (RedactOutcome& o : report.outcomes) o.input = roots.relative(o.input.string());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::string report_json(const RedactRunReport& report, const RedactRunOptions& options) {
  using nlohmann::json;
  json files = json::array();
  std::size_t boxes = 0;
  for (const auto& o : report.outcomes) {
    json entry = {{"input", o.input.string()}, {"status", outcome_status_name(o.status)}};
    if (!o.output.empty()) entry["output"] = o.output.string();
    if (o.error) {
      entry["error"] = statuses_for(*o.error).name;
      entry["reason"] = o.reason;
    }
    if (o.redaction) {
      const FileRedaction& r = *o.redaction;
      entry["verdict"] = verdict_name(r.verdict);
      entry["triage"] = {{"ocr", r.triage.verdict == TriageVerdict::ocr},
                         {"reason", r.triage.reason}};
      entry["frames"] = r.frames;
      entry["frames_ocr"] = r.frames_ocred;
      entry["residual_phi_words"] = r.residual_phi_words;
      entry["unread_text_regions"] = r.unread_text_regions;
      if (r.written) {
        entry["transfer_syntax"] = r.written->transfer_syntax_uid;
        entry["transcoded"] = r.written->syntax == dicom::WrittenSyntax::explicit_little_fallback;
      }
      json list = json::array();
      for (const auto& box : r.redactions) {
        list.push_back({{"frame", box.frame},
                        {"x", box.box.x},
                        {"y", box.box.y},
                        {"width", box.box.width},
                        {"height", box.box.height},
                        {"category", category_name(box.category)}});
      }
      boxes += r.redactions.size();
      entry["redactions"] = std::move(list);
    }
    files.push_back(std::move(entry));
  }
  for (const auto& m : report.missing_inputs)
    files.push_back({{"input", m.path.string()},
                     {"status", "missing_input"},
                     {"error", "io"},
                     {"reason", m.reason}});
  const json doc = {{"radguard", kVersion},
                    {"command", "redact"},
                    {"mode", mode_name(options.redact.mode)},
                    {"seconds", report.seconds},
                    {"summary",
                     {{"files", report.outcomes.size()},
                      {"written", report.count(OutcomeStatus::written)},
                      {"quarantined", report.count(OutcomeStatus::quarantined)},
                      {"reported", report.count(OutcomeStatus::reported)},
                      {"failed", report.count(OutcomeStatus::failed)},
                      {"skipped_not_dicom", report.count(OutcomeStatus::skipped_not_dicom)},
                      {"missing_inputs", report.missing_inputs.size()},
                      {"boxes", boxes}}},
                    {"files", files}};
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string report_text(const RedactRunReport& report) {
  std::ostringstream out;
  std::size_t boxes = 0;
  for (const auto& o : report.outcomes)
    if (o.redaction) boxes += o.redaction->redactions.size();
  out << "redact: " << report.outcomes.size() << " files, " << report.count(OutcomeStatus::written)
      << " written, " << report.count(OutcomeStatus::quarantined) << " quarantined, "
      << report.count(OutcomeStatus::reported) << " reported, "
      << report.count(OutcomeStatus::failed) << " failed, " << boxes << " boxes";
  out << " (" << report.seconds << " s)\n";
  for (const auto& o : report.outcomes) {
    if (o.status == OutcomeStatus::failed || o.status == OutcomeStatus::quarantined)
      out << (o.status == OutcomeStatus::failed ? "error: " : "quarantined: ") << o.input.string()
          << ": " << o.reason << "\n";
  }
  for (const auto& m : report.missing_inputs)
    out << "error: " << m.path.string() << ": " << m.reason << "\n";
  if (report.no_dicom_input()) out << "error: no DICOM input found; nothing was redacted\n";
  return out.str();
}

}  // namespace radguard::redact
