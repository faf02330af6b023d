#include "signing/signing.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "batch/batch.hpp"
#include "core/error_table.hpp"

namespace radguard::signing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Job {
  fs::path input;
  fs::path relative;  // where it goes below an output folder
};

bool is_temporary(const fs::path& p) { return p.filename().string().starts_with(".radguard-tmp-"); }

// Expands inputs to files, remembering each one's place relative to the folder argument it
// was found under. Inputs that do not exist become failed outcomes.
std::vector<Job> expand(std::span<const fs::path> inputs,
                        std::vector<std::pair<fs::path, Error>>& missing) {
  std::vector<Job> jobs;
  for (const auto& input : inputs) {
    std::error_code ec;
    const auto status = fs::status(input, ec);
    if (ec || !fs::exists(status)) {
      missing.emplace_back(input, Error{ErrorCode::io, "does not exist"});
      continue;
    }
    if (fs::is_regular_file(status)) {
      jobs.push_back({input, input.filename()});
      continue;
    }
    if (!fs::is_directory(status)) {
      missing.emplace_back(input, Error{ErrorCode::io, "is neither a file nor a folder"});
      continue;
    }
    std::vector<Job> found;
    // A subfolder that cannot be listed is a failure, not a part of the input left unsigned.
    const auto listing = batch::list_files(input);
    for (const auto& unlisted : listing.unlisted)
      missing.emplace_back(unlisted.path, Error{ErrorCode::io, unlisted.reason});
    for (const auto& file : listing.files) {
      std::error_code file_ec;
      if (!is_temporary(file)) found.push_back({file, fs::relative(file, input, file_ec)});
    }
    std::sort(found.begin(), found.end(),
              [](const Job& a, const Job& b) { return a.input < b.input; });
    jobs.insert(jobs.end(), found.begin(), found.end());
  }
  return jobs;
}

json error_json(const Error& error) {
  return {{"code", statuses_for(error.code).name}, {"message", error.message}};
}

}  // namespace

Result<dicom::SignedFile> sign_file(const fs::path& input, const fs::path& output,
                                    const Signer& signer) {
  return dicom::sign_file(input, output, signer);
}

std::size_t SignBatchReport::failed() const {
  return static_cast<std::size_t>(std::count_if(
      files.begin(), files.end(), [](const SignOutcome& o) { return o.error.has_value(); }));
}

int SignBatchReport::exit_code() const { return failed() == 0 ? kExitSuccess : kExitSomeFailed; }

Result<SignBatchReport> sign_files(const SignBatchOptions& options, const Signer& signer) {
  if (options.mode == OutputMode::to_folder && options.output.empty())
    return fail(ErrorCode::usage, "give --output FOLDER or --in-place");
  std::vector<std::pair<fs::path, Error>> missing;
  const std::vector<Job> jobs = expand(options.inputs, missing);
  SignBatchReport report;
  report.files.resize(jobs.size());
  std::set<fs::path> claimed;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    SignOutcome& outcome = report.files[i];
    outcome.input = jobs[i].input;
    outcome.output =
        options.mode == OutputMode::in_place ? jobs[i].input : options.output / jobs[i].relative;
    std::error_code ec;
    const fs::path key = fs::weakly_canonical(outcome.output, ec);
    if (!claimed.insert(key).second)
      outcome.error =
          Error{ErrorCode::conflict, "another input is also written to " + outcome.output.string()};
  }
  batch::run_parallel(
      jobs.size(), batch::default_threads(options.threads),
      [&](std::size_t i) {
        SignOutcome& outcome = report.files[i];
        if (outcome.error) return;
        auto signed_file = dicom::sign_file(outcome.input, outcome.output, signer);
        if (!signed_file) {
          outcome.error = signed_file.error();
          return;
        }
        outcome.signature_uid = signed_file->signature_uid;
        outcome.bytes = signed_file->bytes_read;
      },
      [&](std::size_t i, const std::string& what) {
        report.files[i].error = Error{ErrorCode::internal, what};
      });
  for (auto& [path, error] : missing) report.files.push_back({path, {}, error, {}, 0});
  return report;
}

std::size_t VerifyBatchReport::not_valid() const {
  return static_cast<std::size_t>(
      std::count_if(files.begin(), files.end(), [](const VerifyOutcome& o) {
        return o.error.has_value() || o.result.verdict != Verdict::valid;
      }));
}

int VerifyBatchReport::exit_code() const {
  return not_valid() == 0 ? kExitSuccess : kExitSomeFailed;
}

VerifyBatchReport verify_files(std::span<const fs::path> inputs, const TrustStore& trust,
                               unsigned threads) {
  std::vector<std::pair<fs::path, Error>> missing;
  const std::vector<Job> jobs = expand(inputs, missing);
  VerifyBatchReport report;
  report.files.resize(jobs.size());
  batch::run_parallel(
      jobs.size(), batch::default_threads(threads),
      [&](std::size_t i) {
        VerifyOutcome& outcome = report.files[i];
        outcome.path = jobs[i].input;
        auto verified = dicom::verify_file(outcome.path, trust);
        if (!verified)
          outcome.error = verified.error();
        else
          outcome.result = std::move(*verified);
      },
      [&](std::size_t i, const std::string& what) {
        report.files[i].error = Error{ErrorCode::internal, what};
      });
  for (auto& [path, error] : missing) {
    VerifyOutcome outcome;
    outcome.path = path;
    outcome.error = error;
    report.files.push_back(std::move(outcome));
  }
  return report;
}

std::string sign_report_json(const SignBatchReport& report, const Signer& signer) {
  json files = json::array();
  for (const auto& o : report.files) {
    json item = {{"input", o.input.string()}, {"status", o.error ? "failed" : "signed"}};
    if (!o.output.empty()) item["output"] = o.output.string();
    if (o.error)
      item["error"] = error_json(*o.error);
    else
      item["signature_uid"] = o.signature_uid;
    files.push_back(item);
  }
  json out = {{"command", "sign"},
              {"profile", dicom::to_string(signer.profile())},
              {"signer", signer.subject()},
              {"mac", "SHA256"},
              {"signed", report.files.size() - report.failed()},
              {"failed", report.failed()},
              {"files", files}};
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string sign_report_text(const SignBatchReport& report) {
  std::ostringstream out;
  for (const auto& o : report.files)
    if (o.error) out << "radguard: " << o.input.string() << ": " << o.error->message << "\n";
  out << (report.files.size() - report.failed()) << " signed, " << report.failed() << " failed\n";
  return out.str();
}

std::string verify_report_json(const VerifyBatchReport& report) {
  json files = json::array();
  std::map<std::string, std::size_t> counts;
  for (const auto& o : report.files) {
    json item = {{"path", o.path.string()}};
    if (o.error) {
      item["verdict"] = "error";
      item["error"] = error_json(*o.error);
      ++counts["error"];
    } else {
      const std::string verdict(dicom::to_string(o.result.verdict));
      item["verdict"] = verdict;
      ++counts[verdict];
      item["changes"] = o.result.changes;
      json signatures = json::array();
      for (const auto& s : o.result.signatures) {
        json sig = {{"uid", s.uid},           {"verdict", dicom::to_string(s.verdict)},
                    {"signer", s.signer},     {"signed_at", s.signed_at},
                    {"mac", s.mac_algorithm}, {"covers_pixel_data", s.covers_pixel_data}};
        sig["pixel_data_only"] = s.pixel_data_only;
        if (!s.location.empty()) sig["location"] = s.location;
        if (!s.reason.empty()) sig["reason"] = s.reason;
        signatures.push_back(sig);
      }
      item["signatures"] = signatures;
    }
    files.push_back(item);
  }
  json out = {{"command", "verify"},
              {"files_checked", report.files.size()},
              {"not_valid", report.not_valid()},
              {"counts", counts},
              {"files", files}};
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string verify_report_text(const VerifyBatchReport& report) {
  std::ostringstream out;
  for (const auto& o : report.files) {
    out << o.path.string() << ": ";
    if (o.error) {
      out << "error: " << o.error->message << "\n";
      continue;
    }
    out << dicom::to_string(o.result.verdict);
    std::string reason;
    for (const auto& s : o.result.signatures)
      if (s.verdict == o.result.verdict && !s.reason.empty()) {
        reason = s.reason;
        break;
      }
    if (!reason.empty()) out << " (" << reason << ")";
    if (!o.result.changes.empty()) {
      out << "; changed:";
      for (const auto& c : o.result.changes)
        out << " " << c << (&c == &o.result.changes.back() ? "" : ",");
    }
    out << "\n";
  }
  out << (report.files.size() - report.not_valid()) << " valid, " << report.not_valid()
      << " not valid\n";
  return out.str();
}

}  // namespace radguard::signing
