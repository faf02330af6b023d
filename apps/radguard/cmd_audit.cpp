// radguard audit: flags -> audit::Options -> audit::audit -> report (src/audit).
#include <iostream>

#include "audit/audit.hpp"
#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"

namespace radguard::cli {

namespace {

struct AuditArgs {
  std::vector<std::string> inputs;
  std::vector<std::string> against;
  std::vector<std::string> uid_roots;
  std::string format = "text";
  std::string report;
  std::string fail_on = "high";
  std::string depth = "full";
  std::size_t k = 5;
  bool show_values = false;
  unsigned threads = 0;
};

int run_audit(const AuditArgs& a) {
  const auto fail_on = audit::parse_fail_on(a.fail_on);
  if (!fail_on) return report_error(fail_on.error());
  const auto depth = audit::parse_depth(a.depth);
  if (!depth) return report_error(depth.error());
  if (a.format != "text" && a.format != "json" && a.format != "html")
    return report_error(Error{ErrorCode::usage, "--format must be text, json or html"});
  if (a.k < 1) return report_error(Error{ErrorCode::usage, "--k must be at least 1"});
  audit::Options options;
  options.k = a.k;
  options.depth = *depth;
  options.show_values = a.show_values ? audit::ShowValues::yes : audit::ShowValues::no;
  options.uid_roots = a.uid_roots;
  options.against.assign(a.against.begin(), a.against.end());
  options.threads = a.threads;
  const std::vector<std::filesystem::path> inputs(a.inputs.begin(), a.inputs.end());
  const auto report = audit::audit(inputs, options);
  if (!report) return report_error(report.error());
  const std::string text = a.format == "json"   ? audit::report_json(*report)
                           : a.format == "html" ? audit::report_html(*report)
                                                : audit::report_text(*report);
  if (a.report.empty()) {
    std::cout << text;
  } else {
    if (auto written = write_file_atomically(a.report, text, std::filesystem::perms::owner_read |
                                                                 std::filesystem::perms::owner_write);
        !written)
      return report_error(written.error());
    std::cerr << "radguard: audit: " << report->files.size() << " files, "
              << report->count(audit::Severity::high) << " high, "
              << report->count(audit::Severity::medium) << " medium, "
              << report->count(audit::Severity::low) << " low findings; report in " << a.report
              << "\n";
  }
  return audit::exit_status(*report, *fail_on);
}

}  // namespace

void add_audit(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "audit",
      "report what could still identify a patient in a dataset (headers, private tags, free "
      "text, UIDs, dates, file names, burned-in text, faces, k-anonymity, integrity); changes "
      "nothing");
  auto args = std::make_shared<AuditArgs>();
  cmd->add_option("inputs", args->inputs, "DICOM files, NIfTI volumes or folders")->required();
  cmd->add_option("--against", args->against,
                  "the original files: every identifying value, date and UID of theirs is "
                  "looked for in the dataset");
  cmd->add_option("--format", args->format, "text, json or html (default text)");
  cmd->add_option("--report", args->report, "write the report to FILE instead of stdout");
  cmd->add_option("--fail-on", args->fail_on,
                  "exit 1 when a finding of this severity or above is found: high (default), "
                  "medium or never");
  cmd->add_option("--depth", args->depth,
                  "full (default): also look at the pixels (burned-in text with the text "
                  "detector, a face on every head series); headers: headers only, fast");
  cmd->add_option("--k", args->k, "the k of k-anonymity (default 5)");
  cmd->add_option("--uid-root", args->uid_roots,
                  "a UID root the releaser writes pseudonymous UIDs under, besides 2.25 "
                  "(repeatable)");
  cmd->add_flag("--show-values", args->show_values,
                "print the offending values (the report then holds PHI: keep it private)");
  cmd->add_option("-j,--threads", args->threads, "threads (default: one per core)");
  cmd->callback([&action, args] { action = [args] { return run_audit(*args); }; });
}

}  // namespace radguard::cli
