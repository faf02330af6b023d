#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "batch/batch.hpp"
#include "cli.hpp"
#include "core/atomic_file.hpp"
#include "core/error_table.hpp"
#include "core/version.hpp"
#include "deface/deface.hpp"
#include "deface/run.hpp"

namespace radguard::cli {

namespace {

namespace fs = std::filesystem;

struct DefaceArgs {
  std::vector<std::string> inputs;
  std::string output;
  std::string method = "remove";
  std::string modality = "auto";
  std::string preview;
  std::string cascades = "/usr/share/opencv4/haarcascades";
  unsigned threads = 0;
  bool json = false;
  bool refuse_no_face = false;
  bool keep_headers = false;
  bool overwrite = false;
};

int run_deface_command(const DefaceArgs& args) {
  deface::DefaceRunOptions options;
  options.inputs.assign(args.inputs.begin(), args.inputs.end());
  options.output = args.output;
  options.preview = args.preview;
  options.threads = args.threads;
  options.deface.method =
      args.method == "blur" ? deface::DefaceMethod::blur : deface::DefaceMethod::remove;
  options.deface.modality = args.modality == "ct"   ? deface::Modality::ct
                            : args.modality == "mr" ? deface::Modality::mr
                                                    : deface::Modality::automatic;
  options.deface.cascade_dir = args.cascades;
  options.deface.no_face_before =
      args.refuse_no_face ? deface::NoFaceBefore::refuse : deface::NoFaceBefore::release;
  options.headers = args.keep_headers ? deface::DicomHeaders::keep : deface::DicomHeaders::refuse;
  options.existing = args.overwrite ? PendingFile::Existing::replace
                                    : PendingFile::Existing::keep_if_different;
  if (!args.json)
    options.on_result = [](const nlohmann::json& result) {
      std::fputs(deface::result_text(result).c_str(), stderr);
    };
  auto report = deface::run_deface(options);
  if (!report) return report_error(report.error());
  if (args.json)
    std::cout << nlohmann::json{{"results", report->results}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  else if (report->dicom_seconds > 0)
    std::fprintf(stderr, "DICOM: %.2f s\n", report->dicom_seconds);
  return report->any_failed ? kExitSomeFailed : kExitSuccess;
}

}  // namespace

void add_deface(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "deface", "remove the face from head CT and MR volumes (DICOM series, NIfTI, InVesalius)");
  auto args = std::make_shared<DefaceArgs>();
  cmd->add_option("INPUT", args->inputs,
                  "DICOM files or folders (grouped into series), or volumes: .nii, .nii.gz, .inv3")
      ->required();
  cmd->add_option("-o,--output", args->output,
                  "output folder: NIfTI .nii.gz per volume, <series UID>/<SOP Instance UID>.dcm "
                  "per DICOM file of a defaced head series")
      ->required();
  cmd->add_option("--threads", args->threads, "threads for reading DICOM (0: one per core)")
      ->capture_default_str();
  cmd->add_option("--method", args->method, "remove (set the face to background) or blur")
      ->check(CLI::IsMember({"remove", "blur"}))
      ->capture_default_str();
  cmd->add_option("--modality", args->modality, "auto, ct or mr (how the head is segmented)")
      ->check(CLI::IsMember({"auto", "ct", "mr"}))
      ->capture_default_str();
  cmd->add_option("--preview", args->preview,
                  "write the before/after renderings as PNG into this folder");
  cmd->add_option("--cascades", args->cascades, "folder with OpenCV's haarcascade_*.xml")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print a JSON report on stdout");
  cmd->add_flag("--refuse-no-face", args->refuse_no_face,
                "refuse a head that shows no face (no nose, no eyes) instead of releasing it "
                "unchanged");
  cmd->add_flag("--overwrite", args->overwrite,
                "replace DICOM output files that exist with different content (by default the "
                "series fails and the existing file stays; NIfTI outputs always get a new name)");
  cmd->add_flag("--keep-headers", args->keep_headers,
                "write defaced DICOM files with their original, identifying headers (without it "
                "DICOM outputs are refused: use radguard deid --option "
                "clean-recognizable-visual-features to de-identify headers and face together)");
  cmd->callback([&action, args] { action = [args] { return run_deface_command(*args); }; });
}

}  // namespace radguard::cli
