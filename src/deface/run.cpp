#include "deface/run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "core/error_table.hpp"
#include "core/version.hpp"
#include "deface/dicom_series.hpp"
#include "dicom/dicom_file.hpp"
#include "volume/inv3.hpp"
#include "volume/nifti.hpp"

namespace radguard::deface {

namespace {

namespace fs = std::filesystem;

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
std::vector<fs::path> volume_files(const std::vector<fs::path>& inputs) {
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
nlohmann::json attempts_json(const std::vector<DefaceReport::Attempt>& attempts) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& a : attempts)
    j.push_back({{"deepen_mm", a.cut.deepen_mm},
                 {"dome_fraction", a.cut.dome_fraction},
                 {"best_score_after", a.best_score}});
  return j;
}

nlohmann::json check_json(const FaceCheck& check) {
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
                      const std::vector<Rendering>& before, const std::vector<Rendering>& after) {
  for (const auto& [phase, renderings] :
       {std::pair{"before", &before}, std::pair{"after", &after}}) {
    for (const auto& r : *renderings) {
      if (auto s = write_png(dir / (stem + "_" + phase + "_" + r.view + ".png"), r.image); !s)
        return s;
    }
  }
  return {};
}

Result<nlohmann::json> deface_one(const fs::path& input, const DefaceRunOptions& args,
                                  std::size_t& counter) {
  auto image = load(input);
  if (!image) return std::unexpected(image.error());
  const std::string stem = neutral_stem(args.output, counter);
  // Previews are written also for a refused volume: they show the operator why.
  Status previews;
  DefaceOptions with_previews = args.deface;
  if (!args.preview.empty())
    with_previews.on_renderings = [&](const auto& before, const auto& after) {
      previews = write_previews(args.preview, stem, before, after);
    };
  auto report = deface(image->volume, with_previews);
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
  j["modality"] = to_string(report->modality);
  j["verdict"] = to_string(report->verdict);
  j["turn_degrees"] = report->turn_degrees;
  j["voxels_changed"] = report->voxels_changed;
  j["face_region_voxels"] = report->face_region_voxels;
  if (report->modality == Modality::ct)
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
Result<std::size_t> write_series(const SeriesDefacing& defacing, const SeriesReport& report,
                                 const fs::path& output, PendingFile::Existing existing) {
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

nlohmann::json series_json(const SeriesReport& report) {
  nlohmann::json j;
  j["series"] = report.series_uid;
  j["outcome"] = to_string(report.outcome);
  j["modality"] = report.modality;
  j["files"] = report.files.size();
  if (!report.reason.empty()) j["reason"] = report.reason;
  if (report.outcome == SeriesOutcome::not_head) return j;
  j["slices"] = report.slices;
  j["missing_slices"] = report.missing_slices;
  j["slices_changed"] = report.slices_changed;
  j["dims"] = report.dims;
  j["spacing"] = report.spacing;
  j["tilt_degrees"] = report.tilt_degrees;
  j["warnings"] = report.warnings;
  if (report.deface) {
    j["verdict"] = to_string(report.deface->verdict);
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
bool deface_dicom(const std::vector<fs::path>& inputs, const DefaceRunOptions& args,
                  DefaceRunReport& run) {
  const auto add = [&](nlohmann::json result) {
    if (args.on_result) args.on_result(result);
    run.results.push_back(std::move(result));
  };
  const auto start = std::chrono::steady_clock::now();
  SeriesOptions series_options;
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
  series_options.progress = args.progress;
  auto defacing = deface_dicom_series(inputs, args.deface, series_options);
  if (!defacing) {
    add({{"status", "failed"},
         {"error", statuses_for(defacing.error().code).name},
         {"message", defacing.error().message}});
    return false;
  }
  bool ok = true;
  for (const auto& missing : batch::find_files(inputs).missing) {
    ok = false;
    add({{"input", missing.path.string()},
         {"status", "failed"},
         {"error", statuses_for(ErrorCode::io).name},
         {"message", missing.reason}});
  }
  for (const auto& bad : defacing->unreadable()) {
    if (is_volume_file(bad.path)) continue;  // NIfTI/InVesalius in a folder: defaced below
    const bool not_dicom = bad.code == ErrorCode::not_dicom;
    ok = ok && not_dicom;
    add({{"input", bad.path.string()},
         {"status", not_dicom ? "skipped" : "failed"},
         {"error", statuses_for(bad.code).name},
         {"message", bad.reason}});
  }
  for (const auto& report : defacing->series()) {
    nlohmann::json j = series_json(report);
    if (report.outcome == SeriesOutcome::defaced && args.headers == DicomHeaders::refuse) {
      // The headers still name the patient: never written silently.
      ok = false;
      j["status"] = "failed";
      j["error"] = statuses_for(ErrorCode::policy).name;
      j["message"] =
          "defaced but not written: its DICOM headers still identify the patient; give "
          "--keep-headers to write them as they are, or de-identify headers and face together "
          "with radguard deid --option clean-recognizable-visual-features";
    } else if (report.outcome == SeriesOutcome::defaced) {
      auto written = write_series(*defacing, report, args.output, args.existing);
      if (written) {
        j["status"] = "ok";
        j["written"] = *written;
      } else {
        ok = false;
        j["status"] = "failed";
        j["error"] = statuses_for(written.error().code).name;
        j["message"] = written.error().message;
      }
    } else if (report.outcome == SeriesOutcome::refused) {
      ok = false;
      j["status"] = "failed";
      j["error"] = statuses_for(ErrorCode::policy).name;
    } else {
      j["status"] = "skipped";
    }
    add(std::move(j));
  }
  if (!preview_error.empty()) {
    ok = false;
    add({{"status", "failed"}, {"what", "previews"}, {"error", "io"}, {"message", preview_error}});
  }
  run.dicom_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ok;
}

}  // namespace

Result<DefaceRunReport> run_deface(const DefaceRunOptions& options) {
  DefaceRunReport run;
  std::vector<fs::path> dicom_inputs;
  for (const auto& input : options.inputs)
    if (!is_volume_file(input)) dicom_inputs.emplace_back(input);
  if (!dicom_inputs.empty()) {
    if (auto s = batch::require_outside_inputs(options.output, dicom_inputs); !s)
      return std::unexpected(s.error());
    run.any_failed = !deface_dicom(dicom_inputs, options, run);
  }
  std::size_t counter = 0;
  for (const auto& input : volume_files(options.inputs)) {
    auto result = deface_one(input, options, counter);
    if (!result) {
      run.any_failed = true;
      result = nlohmann::json{{"input", input.string()},
                              {"status", "failed"},
                              {"error", statuses_for(result.error().code).name},
                              {"message", result.error().message}};
    }
    if (options.on_result) options.on_result(*result);
    run.results.push_back(std::move(*result));
  }
  return run;
}

std::string result_text(const nlohmann::json& result) {
  const auto text = [&](const char* key) {
    return result.contains(key) && result[key].is_string() ? result[key].get<std::string>()
                                                           : std::string();
  };
  char line[512];
  if (result.contains("series")) {
    std::string out = "series " + text("series") + " (" +
                      std::to_string(result.value("files", std::size_t{0})) +
                      " files): " + text("status");
    if (!text("reason").empty()) out += ", " + text("reason");
    if (!text("message").empty()) out += ", " + text("message");
    if (text("outcome") == "defaced")
      out += ", " + std::to_string(result.value("slices_changed", std::size_t{0})) + " of " +
             std::to_string(result.value("slices", std::size_t{0})) + " slices changed";
    out += "\n";
    for (const auto& w : result.value("warnings", std::vector<std::string>{}))
      out += "  warning: " + w + "\n";
    return out;
  }
  if (text("status") == "ok" && result.contains("output")) {
    std::snprintf(
        line, sizeof line,
        "%s -> %s: %s (nose relief %.1f -> %.1f mm, eye pits %.1f -> %.1f mm), %zu "
        "voxels changed, %.2f s\n",
        text("input").c_str(), fs::path(text("output")).filename().c_str(), text("verdict").c_str(),
        result["before"]["nose_mm"].get<double>(), result["after"]["nose_mm"].get<double>(),
        result["before"]["eyes_mm"].get<double>(), result["after"]["eyes_mm"].get<double>(),
        result["voxels_changed"].get<std::size_t>(), result["seconds"].get<double>());
    return line;
  }
  if (result.contains("input"))
    return text("input") + ": " + text("status") + " (" + text("message") + ")\n";
  if (text("what") == "previews") return "previews: " + text("message") + "\n";
  return "radguard: error: " + text("message") + "\n";
}

}  // namespace radguard::deface
