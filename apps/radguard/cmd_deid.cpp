#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/unique_fd.hpp"
#include "deid/deid_run.hpp"
#include "pipeline/pipeline.hpp"
#include "plan/plan.hpp"
#include "stage_options.hpp"

namespace radguard::cli {

namespace {

// The JSON report written to `path` as write_report_json makes it (a run's report grows with
// its problems; memory does not), then published as emit_report publishes: owner-only,
// fsynced, renamed into place. A report that cannot be produced whole (its problems not read
// back) is never published; the descriptor is closed on every way out.
using ReportProducer = std::function<Status(const std::function<void(std::string_view)>&)>;

Status write_report_file(const std::filesystem::path& path, const ReportProducer& produce) {
  auto pending = PendingFile::create(path);
  if (!pending) return std::unexpected(pending.error());
  UniqueFd fd(::open(pending->temp_path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail(ErrorCode::io, "cannot create " + path.string() + ": " + std::strerror(errno));
  std::string buffer;
  int error = 0;
  const auto drain = [&] {
    std::string_view rest = buffer;
    while (!rest.empty() && error == 0) {
      const ssize_t wrote = ::write(fd.get(), rest.data(), rest.size());
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) error = wrote < 0 ? errno : EIO;
      else rest.remove_prefix(static_cast<std::size_t>(wrote));
    }
    buffer.clear();
  };
  const Status produced = produce([&](std::string_view piece) {
    buffer += piece;
    if (buffer.size() >= 64 * 1024) drain();
  });
  if (!produced) return std::unexpected(produced.error());
  drain();
  if (const int closed = fd.close(); closed != 0 && error == 0) error = closed;
  if (error != 0)
    return fail(ErrorCode::io, "cannot write " + path.string() + ": " + std::strerror(error));
  return pending->commit(std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

struct DeidArgs {
  std::vector<std::string> inputs;
  std::string files_from;
  std::string output;
  StageArgs stage;
  std::string report;
  unsigned threads = 0;
  bool no_progress = false;
  bool json = false;
  bool full_paths = false;
  bool overwrite = false;
};

int run_deid_command(const DeidArgs& args) {
  auto inputs = command_inputs(args.inputs, args.files_from);
  if (!inputs) return report_error(inputs.error());
  auto spec = stage_spec(args.stage);
  if (!spec) return report_error(spec.error());
  auto made = make_pipeline(*spec);
  if (!made) return report_error(made.error());
  const pipeline::Pipeline& pipeline = *made;
  pipeline::DeidRun run;
  run.inputs = std::move(*inputs);
  run.output = args.output;
  run.threads = args.threads;
  run.cancel = &interrupt_token();
  run.report_paths = args.full_paths ? deid::ReportPaths::full : deid::ReportPaths::masked;
  run.existing = args.overwrite ? deid::ExistingOutputs::replace : deid::ExistingOutputs::keep;
  run.volumes = deid::VolumeInputs::deidentify;
  // A run over a list alone is a shard (radguard plan): plan merge walks the shared output
  // tree once. A run that also names folders on the command line walks it as any other.
  if (!args.files_from.empty() && args.inputs.empty())
    run.stale_temporaries = deid::StaleTemporaries::written_folders;
  if (!args.files_from.empty()) run.report_roots = plan::list_roots(args.files_from);
  run.progress = args.no_progress ? batch::ProgressDisplay::never : batch::ProgressDisplay::automatic;
  auto report = pipeline.run_deid(run);
  if (!report) return report_error(report.error());
  const deid::DeidRunOptions options = pipeline.deid_options(run);
  // The JSON is streamed, never held whole (emit_report's steps otherwise).
  const ReportProducer produce = [&](const std::function<void(std::string_view)>& sink) {
    return deid::write_report_json(*report, pipeline.header_stage(), options, sink);
  };
  if (!args.report.empty())
    if (auto written = write_report_file(args.report, produce); !written)
      return report_error(written.error());
  if (args.json) {
    if (auto printed = produce([](std::string_view piece) {
          std::cout.write(piece.data(), static_cast<std::streamsize>(piece.size()));
        });
        !printed)
      return report_error(printed.error());
  } else {
    auto text = deid::report_text(*report, options);
    if (!text) return report_error(text.error());
    std::cerr << *text;
  }
  return report->exit_code();
}

}  // namespace

void add_deid(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("deid", "de-identify DICOM files and folders (PS3.15 Annex E)");
  auto args = std::make_shared<DeidArgs>();
  cmd->add_option("INPUT", args->inputs,
                  "DICOM files, NIfTI volumes (.nii, .nii.gz) or folders (searched recursively)");
  add_files_from(*cmd, args->files_from);
  cmd->add_option("-o,--output", args->output, "output folder")->required();
  cmd->add_option("--report", args->report, "write the JSON report to this file");
  cmd->add_option("-j,--threads", args->threads, "worker threads (default: one per core)");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json,
                "print the JSON report on stdout instead of the text summary");
  cmd->add_flag("--report-full-paths", args->full_paths,
                "name inputs by their full paths in reports (default: relative to the input "
                "given, with folder and file names that hold the patient's name, ID, birth "
                "date or accession number masked as <patient>)");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace output files an earlier run left with different content (default: "
                "such an input fails and the file stays)");
  add_stage_options(*cmd, args->stage);
  cmd->callback([&action, args] { action = [args] { return run_deid_command(*args); }; });
}

}  // namespace radguard::cli
