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
#include "deface/dicom_series.hpp"
#include "dicom/dicom_file.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

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

bool is_volume_file(const fs::path& path) {
  return volume::is_nifti_name(path) || path.extension() == ".inv3";
}

// A UID that can name a file: digits and dots, at most 64 characters.
bool is_safe_uid(const std::string& uid) {
  return !uid.empty() && uid.size() <= 64 && uid.front() != '.' &&
         uid.find_first_not_of("0123456789.") == std::string::npos;
}

// Input names often carry the patient's name: outputs and previews get a neutral one
// ("volume-0001"), the first number whose output does not exist yet; the report maps each
// input to its output for the operator.
std::string neutral_stem(const fs::path& output, std::size_t& counter) {
  for (;;) {
    char name[32];
    std::snprintf(name, sizeof name, "volume-%04zu", ++counter);
    std::error_code ec;
    if (!fs::exists(output / (std::string(name) + ".nii.gz"), ec)) return name;
  }
}

// The inputs' volume files: named directly, or found in named folders (recursively, in path
// order). Everything else is for the DICOM path.
std::vector<fs::path> volume_files(const std::vector<std::string>& inputs) {
  std::vector<fs::path> out;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      // The project's one walker; a folder it cannot list reaches the user through the DICOM
      // path, which walks the same folder and fails that input.
      for (const auto& file : batch::list_files(input).files)
        if (is_volume_file(file)) out.emplace_back(file);
    } else if (is_volume_file(input)) {
      out.emplace_back(input);
    }
  }
  return out;
}

Result<volume::NiftiImage> load(const fs::path& path) {
  if (volume::is_nifti_name(path)) return volume::read_nifti(path);
  if (path.extension() == ".inv3") {
    auto v = volume::read_inv3(path);
    if (!v) return std::unexpected(v.error());
    volume::NiftiImage image;
    image.header = volume::make_nifti_header(*v);
    image.volume = std::move(*v);
    return image;
  }
  return fail(ErrorCode::unsupported,
              path.string() + ": not a NIfTI (.nii, .nii.gz) or InVesalius (.inv3) file");
}

// One entry per removal tried (deface() escalates when a face is still seen after).
nlohmann::json attempts_json(const std::vector<deface::DefaceReport::Attempt>& attempts) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& a : attempts)
    j.push_back({{"deepen_mm", a.cut.deepen_mm},
                 {"dome_fraction", a.cut.dome_fraction},
                 {"best_score_after", a.best_score}});
  return j;
}

nlohmann::json check_json(const deface::FaceCheck& check) {
  nlohmann::json j;
  j["face_found"] = check.face_found;
  j["nose_mm"] = check.nose_mm();
  j["eyes_mm"] = check.eyes_mm();
  j["relief"] = nlohmann::json::array();
  for (const auto& r : check.relief)
    j["relief"].push_back(
        {{"view", r.view}, {"nose_mm", r.nose_mm}, {"eyes_mm", r.eyes_mm}, {"face", r.face}});
  j["best_score"] = check.best_score();
  j["detections"] = nlohmann::json::array();
  for (const auto& d : check.detections)
    j["detections"].push_back({{"view", d.view},
                               {"cascade", d.cascade},
                               {"faces", d.faces},
                               {"best_score", d.best_score},
                               {"counted", d.counted}});
  return j;
}

Status write_previews(const fs::path& dir, const std::string& stem,
                      const std::vector<deface::Rendering>& before,
                      const std::vector<deface::Rendering>& after) {
  for (const auto& [phase, renderings] :
       {std::pair{"before", &before}, std::pair{"after", &after}}) {
    for (const auto& r : *renderings) {
      if (auto s = deface::write_png(dir / (stem + "_" + phase + "_" + r.view + ".png"), r.image);
          !s)
        return s;
    }
  }
  return {};
}

Result<nlohmann::json> deface_one(const fs::path& input, const DefaceArgs& args,
                                  const deface::DefaceOptions& options, std::size_t& counter) {
  auto image = load(input);
  if (!image) return std::unexpected(image.error());
  const std::string stem = neutral_stem(args.output, counter);
  // Previews are written also for a refused volume: they show the operator why.
  Status previews;
  deface::DefaceOptions with_previews = options;
  if (!args.preview.empty())
    with_previews.on_renderings = [&](const auto& before, const auto& after) {
      previews = write_previews(args.preview, stem, before, after);
    };
  auto report = deface::deface(image->volume, with_previews);
  if (!report) return std::unexpected(with_context(report.error(), input.string()));
  if (!previews) return std::unexpected(previews.error());
  const fs::path out = fs::path(args.output) / (stem + ".nii.gz");
  // No text of the input's header (descrip, aux_file, intent_name, db_name) and no extension
  // travels: they can hold the patient's name, birth date or record number.
  image->header = volume::clean_nifti_header(image->header);
  if (auto s = volume::write_nifti(out, *image); !s) return std::unexpected(s.error());
  nlohmann::json j;
  j["input"] = input.string();
  j["output"] = out.string();
  j["status"] = "ok";
  j["modality"] = deface::to_string(report->modality);
  j["verdict"] = deface::to_string(report->verdict);
  j["turn_degrees"] = report->turn_degrees;
  j["voxels_changed"] = report->voxels_changed;
  j["face_region_voxels"] = report->face_region_voxels;
  if (report->modality == deface::Modality::ct)
    j["intracranial_voxels_in_region"] = report->intracranial_voxels_in_region;
  j["before"] = check_json(report->before);
  j["after"] = check_json(report->after);
  j["attempts"] = attempts_json(report->attempts);
  j["seconds"] = report->seconds;
  return j;
}

// Writes every file of a defaced series as OUT/<Series Instance UID>/<SOP Instance UID>.dcm:
// the original header, the defaced pixels, 113102 added. Returns the number written.
// A different file already under an output's name stays unless `existing` says replace.
Result<std::size_t> write_series(const deface::SeriesDefacing& defacing,
                                 const deface::SeriesReport& report, const fs::path& output,
                                 PendingFile::Existing existing) {
  static const dicom::MetaIdentity meta{std::string(kImplementationClassUid),
                                        std::string(kImplementationVersionName)};
  std::size_t written = 0;
  for (const auto& input : report.files) {
    auto file = dicom::DicomFile::open(input);
    if (!file) return std::unexpected(with_context(file.error(), input.string()));
    if (auto s = defacing.apply(input, *file); !s)
      return std::unexpected(with_context(s.error(), input.string()));
    const std::string series = file->string_of(Tag{0x0020, 0x000E}).value_or("");
    const std::string instance = file->string_of(Tag{0x0008, 0x0018}).value_or("");
    if (!is_safe_uid(series) || !is_safe_uid(instance))
      return fail(
          ErrorCode::malformed_dicom,
          input.string() + ": malformed Series or SOP Instance UID, cannot name the output");
    auto pending = PendingFile::create(output / series / (instance + ".dcm"));
    if (!pending) return std::unexpected(pending.error());
    if (auto s = file->save(pending->temp_path(), meta); !s)
      return std::unexpected(with_context(s.error(), input.string()));
    if (auto s = pending->commit(std::nullopt, existing); !s)
      return std::unexpected(with_context(s.error(), input.string()));
    ++written;
  }
  return written;
}

nlohmann::json series_json(const deface::SeriesReport& report) {
  nlohmann::json j;
  j["series"] = report.series_uid;
  j["outcome"] = deface::to_string(report.outcome);
  j["modality"] = report.modality;
  j["files"] = report.files.size();
  if (!report.reason.empty()) j["reason"] = report.reason;
  if (report.outcome == deface::SeriesOutcome::not_head) return j;
  j["slices"] = report.slices;
  j["missing_slices"] = report.missing_slices;
  j["slices_changed"] = report.slices_changed;
  j["dims"] = report.dims;
  j["spacing"] = report.spacing;
  j["tilt_degrees"] = report.tilt_degrees;
  j["warnings"] = report.warnings;
  if (report.deface) {
    j["verdict"] = deface::to_string(report.deface->verdict);
    j["voxels_changed"] = report.deface->voxels_changed;
    j["face_region_voxels"] = report.deface->face_region_voxels;
    j["before"] = check_json(report.deface->before);
    j["after"] = check_json(report.deface->after);
    j["attempts"] = attempts_json(report.deface->attempts);
  }
  j["seconds"] = {{"read", report.read_seconds},
                  {"deface", report.deface_seconds},
                  {"prepare", report.prepare_seconds}};
  return j;
}

// DICOM inputs: grouped into series, heads defaced and written, the rest skipped.
bool deface_dicom(const std::vector<fs::path>& inputs, const DefaceArgs& args,
                  const deface::DefaceOptions& options, nlohmann::json& results) {
  const auto start = std::chrono::steady_clock::now();
  deface::SeriesOptions series_options;
  series_options.threads = batch::default_threads(args.threads);
  std::error_code ec;
  series_options.work_parent = fs::absolute(args.output, ec).parent_path();
  std::string preview_error;
  if (!args.preview.empty())
    series_options.on_renderings = [&](const std::string& series, const auto& before,
                                       const auto& after) {
      std::string stem = series;
      std::replace(stem.begin(), stem.end(), '#', '-');
      if (auto s = write_previews(args.preview, stem, before, after); !s)
        preview_error = s.error().message;
    };
  series_options.progress = batch::ProgressDisplay::automatic;  // on a terminal only
  auto defacing = deface::deface_dicom_series(inputs, options, series_options);
  if (!defacing) {
    if (!args.json) report_error(defacing.error());
    results.push_back({{"status", "failed"},
                       {"error", statuses_for(defacing.error().code).name},
                       {"message", defacing.error().message}});
    return false;
  }
  bool ok = true;
  for (const auto& missing : batch::find_files(inputs).missing) {
    ok = false;
    if (!args.json)
      std::fprintf(stderr, "%s: failed (%s)\n", missing.path.c_str(), missing.reason.c_str());
    results.push_back({{"input", missing.path.string()},
                       {"status", "failed"},
                       {"error", statuses_for(ErrorCode::io).name},
                       {"message", missing.reason}});
  }
  for (const auto& bad : defacing->unreadable()) {
    if (is_volume_file(bad.path)) continue;  // NIfTI/InVesalius in a folder: defaced below
    const bool not_dicom = bad.code == ErrorCode::not_dicom;
    ok = ok && not_dicom;
    if (!args.json)
      std::fprintf(stderr, "%s: %s (%s)\n", bad.path.c_str(), not_dicom ? "skipped" : "failed",
                   bad.reason.c_str());
    results.push_back({{"input", bad.path.string()},
                       {"status", not_dicom ? "skipped" : "failed"},
                       {"error", statuses_for(bad.code).name},
                       {"message", bad.reason}});
  }
  for (const auto& report : defacing->series()) {
    nlohmann::json j = series_json(report);
    if (report.outcome == deface::SeriesOutcome::defaced && !args.keep_headers) {
      // The headers still name the patient: never written silently.
      ok = false;
      j["status"] = "failed";
      j["error"] = statuses_for(ErrorCode::policy).name;
      j["message"] =
          "defaced but not written: its DICOM headers still identify the patient; give "
          "--keep-headers to write them as they are, or de-identify headers and face together "
          "with radguard deid --option clean-recognizable-visual-features";
    } else if (report.outcome == deface::SeriesOutcome::defaced) {
      auto written = write_series(*defacing, report, args.output,
                                  args.overwrite ? PendingFile::Existing::replace
                                                 : PendingFile::Existing::keep_if_different);
      if (written) {
        j["status"] = "ok";
        j["written"] = *written;
      } else {
        ok = false;
        j["status"] = "failed";
        j["error"] = statuses_for(written.error().code).name;
        j["message"] = written.error().message;
      }
    } else if (report.outcome == deface::SeriesOutcome::refused) {
      ok = false;
      j["status"] = "failed";
      j["error"] = statuses_for(ErrorCode::policy).name;
    } else {
      j["status"] = "skipped";
    }
    if (!args.json) {
      std::fprintf(stderr, "series %s (%zu files): %s", report.series_uid.c_str(),
                   report.files.size(), j["status"].get<std::string>().c_str());
      if (!report.reason.empty()) std::fprintf(stderr, ", %s", report.reason.c_str());
      if (j.contains("message"))
        std::fprintf(stderr, ", %s", j["message"].get<std::string>().c_str());
      if (report.outcome == deface::SeriesOutcome::defaced)
        std::fprintf(stderr, ", %zu of %zu slices changed", report.slices_changed, report.slices);
      std::fprintf(stderr, "\n");
      for (const auto& w : report.warnings) std::fprintf(stderr, "  warning: %s\n", w.c_str());
    }
    results.push_back(std::move(j));
  }
  if (!preview_error.empty()) {
    ok = false;
    if (!args.json) std::fprintf(stderr, "previews: %s\n", preview_error.c_str());
    results.push_back({{"status", "failed"}, {"error", "io"}, {"message", preview_error}});
  }
  if (!args.json)
    std::fprintf(stderr, "DICOM: %.2f s\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return ok;
}

int run_deface_command(const DefaceArgs& args) {
  deface::DefaceOptions options;
  options.method =
      args.method == "blur" ? deface::DefaceMethod::blur : deface::DefaceMethod::remove;
  options.modality = args.modality == "ct"   ? deface::Modality::ct
                     : args.modality == "mr" ? deface::Modality::mr
                                             : deface::Modality::automatic;
  options.cascade_dir = args.cascades;
  options.no_face_before =
      args.refuse_no_face ? deface::NoFaceBefore::refuse : deface::NoFaceBefore::release;
  nlohmann::json results = nlohmann::json::array();
  bool any_failed = false;
  std::vector<fs::path> dicom_inputs;
  for (const auto& input : args.inputs)
    if (!is_volume_file(input)) dicom_inputs.emplace_back(input);
  const std::vector<fs::path> volumes = volume_files(args.inputs);
  if (!dicom_inputs.empty()) {
    if (auto s = batch::require_outside_inputs(args.output, dicom_inputs); !s)
      return report_error(s.error());
    any_failed = !deface_dicom(dicom_inputs, args, options, results);
  }
  std::size_t counter = 0;
  for (const auto& input : volumes) {
    auto result = deface_one(input, args, options, counter);
    if (result) {
      if (!args.json)
        std::fprintf(stderr,
                     "%s -> %s: %s (nose relief %.1f -> %.1f mm, eye pits %.1f -> %.1f mm), %zu "
                     "voxels changed, %.2f s\n",
                     input.c_str(),
                     fs::path((*result)["output"].get<std::string>()).filename().c_str(),
                     (*result)["verdict"].get<std::string>().c_str(),
                     (*result)["before"]["nose_mm"].get<double>(),
                     (*result)["after"]["nose_mm"].get<double>(),
                     (*result)["before"]["eyes_mm"].get<double>(),
                     (*result)["after"]["eyes_mm"].get<double>(),
                     (*result)["voxels_changed"].get<std::size_t>(),
                     (*result)["seconds"].get<double>());
      results.push_back(std::move(*result));
    } else {
      any_failed = true;
      if (!args.json) report_error(result.error());
      results.push_back({{"input", input},
                         {"status", "failed"},
                         {"error", statuses_for(result.error().code).name},
                         {"message", result.error().message}});
    }
  }
  if (args.json)
    std::cout << nlohmann::json{{"results", results}}.dump(2, ' ', false,
                                                           nlohmann::json::error_handler_t::replace)
              << "\n";
  return any_failed ? kExitSomeFailed : kExitSuccess;
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
