#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/error_table.hpp"
#include "deface/deface.hpp"
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
  bool json = false;
  bool allow_no_face_before = false;
};

// "head.nii.gz" -> "head"; the output keeps the input's name so batches stay traceable.
std::string stem_of(const fs::path& path) {
  std::string name = path.filename().string();
  for (std::string_view suffix : {".nii.gz", ".nii", ".inv3"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix))
      return name.substr(0, name.size() - suffix.size());
  }
  return path.stem().string();
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

nlohmann::json check_json(const deface::FaceCheck& check) {
  nlohmann::json j;
  j["face_found"] = check.face_found;
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
                                  const deface::DefaceOptions& options) {
  auto image = load(input);
  if (!image) return std::unexpected(image.error());
  const std::string stem = stem_of(input);
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
  if (auto s = volume::write_nifti(out, *image); !s) return std::unexpected(s.error());
  nlohmann::json j;
  j["input"] = input.string();
  j["output"] = out.string();
  j["status"] = "ok";
  j["modality"] = deface::to_string(report->modality);
  j["verdict"] = deface::to_string(report->verdict);
  j["voxels_changed"] = report->voxels_changed;
  j["face_region_voxels"] = report->face_region_voxels;
  if (report->modality == deface::Modality::ct)
    j["intracranial_voxels_in_region"] = report->intracranial_voxels_in_region;
  j["before"] = check_json(report->before);
  j["after"] = check_json(report->after);
  j["seconds"] = report->seconds;
  return j;
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
      args.allow_no_face_before ? deface::NoFaceBefore::release : deface::NoFaceBefore::refuse;
  nlohmann::json results = nlohmann::json::array();
  bool any_failed = false;
  for (const auto& input : args.inputs) {
    auto result = deface_one(input, args, options);
    if (result) {
      if (!args.json)
        std::fprintf(
            stderr,
            "%s: %s (best face score before %.2f, after %.2f), %zu voxels changed, %.2f s\n",
            input.c_str(), (*result)["verdict"].get<std::string>().c_str(),
            (*result)["before"]["best_score"].get<double>(),
            (*result)["after"]["best_score"].get<double>(),
            (*result)["voxels_changed"].get<std::size_t>(), (*result)["seconds"].get<double>());
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
  if (args.json) std::cout << nlohmann::json{{"results", results}}.dump(2) << "\n";
  return any_failed ? kExitSomeFailed : kExitSuccess;
}

}  // namespace

void add_deface(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("deface",
                                 "remove the face from head CT and MR volumes (NIfTI, InVesalius)");
  auto args = std::make_shared<DefaceArgs>();
  cmd->add_option("INPUT", args->inputs, "volumes: .nii, .nii.gz, .inv3")->required();
  cmd->add_option("-o,--output", args->output, "output folder (NIfTI .nii.gz per input)")
      ->required();
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
  cmd->add_flag("--allow-no-face-before", args->allow_no_face_before,
                "release a volume even when no face was detected on it before defacing (unproven)");
  cmd->callback([&action, args] { action = [args] { return run_deface_command(*args); }; });
}

}  // namespace radguard::cli
