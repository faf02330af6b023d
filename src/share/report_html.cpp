// report.html: what `radguard share` did, in plain words, for someone who is not an expert.
// It names no value from any header (no name, ID, date or UID), only kinds and counts.
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/html.hpp"
#include "share/share.hpp"

namespace radguard::share {

namespace {

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// What the header stage removes or replaces in every file, by kind (PS3.15 Basic Profile
// with Clean Descriptors, Clean Structured Content and Clean Graphics).
constexpr const char* kRemovedKinds[][2] = {
    {"Your identity",
     "name, patient ID and other IDs, birth date, address, telephone, "
     "relatives' names; your name and ID are replaced by a random code"},
    {"Dates and times",
     "of the study, series and images, and any other date: removed or "
     "replaced"},
    {"People and places",
     "names of doctors, operators and institutions, their addresses and "
     "departments"},
    {"Identifying numbers",
     "accession and study numbers, request and order numbers; "
     "the images' unique identifiers are replaced by new random ones"},
    {"Free text",
     "descriptions, comments and reports in the headers: scrubbed of names, "
     "dates and numbers, or removed"},
    {"Devices", "serial numbers, station names and other details of the equipment"},
    {"Vendor data", "private data of the equipment's maker, which can hide anything"},
    {"Annotations", "text drawn over images by the viewer (overlays, graphic annotations)"},
};

std::string pixel_words(const SharedFile& f) {
  std::string words;
  if (f.pixels.defaced) words = "face removed from the head scan";
  if (f.pixels.text_boxes > 0) {
    if (!words.empty()) words += "; ";
    words += "text blacked out: " + plural(f.pixels.text_boxes, "area", "areas") + " on " +
             plural(f.pixels.frames_redacted, "frame", "frames");
  } else if (f.pixels.read_for_text) {
    if (!words.empty()) words += "; ";
    words += "read for text: nothing identifying found";
  }
  if (words.empty()) words = "picture unchanged (a kind of image that carries no text)";
  return words;
}

}  // namespace

std::string report_html(const ShareReport& r) {
  std::ostringstream h;
  h << R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>What was removed before sharing</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.7rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.box{background:#f3f7f3;border-left:4px solid #3a7;padding:.7rem 1rem;margin:1rem 0}
.warn{background:#fbf5ea;border-left-color:#d90}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border-bottom:1px solid #e4e4e4;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#fafafa}code{font-size:.9em}
figure{display:inline-block;margin:.5rem;max-width:30rem;vertical-align:top}figure img{max-width:100%;border:1px solid #ccc}
figcaption{font-size:.85rem;color:#555}
</style></head><body>
<h1>What was removed before sharing</h1>
)";
  h << "<div class=\"box\"><strong>" << plural(r.files_shared - r.volumes.size(), "image", "images")
    << " in " << plural(r.studies.size(), "study", "studies")
    << (r.volumes.empty() ? std::string()
                          : " and " + plural(r.volumes.size(), "NIfTI volume", "NIfTI volumes"))
    << " are in this copy.</strong> Everything that names you was taken out of them first. "
       "Open the copy in any DICOM viewer through its <code>DICOMDIR</code> file.";
  if (r.files_left_out() > 0)
    h << "<br><strong>" << plural(r.files_left_out(), "file was", "files were")
      << " left out</strong> because " << (r.files_left_out() == 1 ? "it" : "they")
      << " could not be shown to be safe: see the end of this page.";
  h << "</div>\n";

  h << "<h2>What was removed from every image</h2>\n<table><tr><th>Kind of information</th>"
       "<th>What happened</th></tr>\n";
  for (const auto& [kind, what] : kRemovedKinds)
    h << "<tr><td>" << kind << "</td><td>" << what << "</td></tr>\n";
  h << "</table>\n<p>The pictures themselves were checked too:";
  h << " text burned into the picture (names, numbers and dates on ultrasound images, screen "
       "captures and scanned documents) was found with text recognition and blacked out ("
    << plural(r.images_redacted, "image", "images") << "), and the face was removed from head "
    << "CT and MR scans (" << plural(r.faces_removed, "scan", "scans")
    << "), because a face can be recognised from a 3D picture of the head.</p>\n";
  h << "<p>What stays: the pictures, and technical facts about how they were taken "
       "(kind of scanner, settings, sizes), which a doctor needs to read them. Your age, sex, "
       "height and weight were removed as well.</p>\n";

  h << "<h2>Image by image</h2>\n";
  for (const auto& study : r.studies) {
    h << "<h3>" << html_escaped(study.label) << " (" << plural(study.files.size(), "image", "images")
      << ")</h3>\n<table><tr><th>File</th><th>What it is</th><th>What was done to the "
         "picture</th></tr>\n";
    // Consecutive files of one series with the same story share a row ("IM000001 to
    // IM000108"): a head scan is a hundred slices.
    for (std::size_t i = 0; i < study.files.size();) {
      const SharedFile& first = study.files[i];
      const std::string series = first.name.substr(0, first.name.rfind('/'));
      std::size_t j = i + 1;
      while (j < study.files.size() &&
             study.files[j].name.substr(0, study.files[j].name.rfind('/')) == series &&
             study.files[j].kind == first.kind && pixel_words(study.files[j]) == pixel_words(first))
        ++j;
      h << "<tr><td><code>" << html_escaped(first.name) << "</code>";
      if (j - i > 1)
        h << " to <code>" << html_escaped(study.files[j - 1].name.substr(series.size() + 1))
          << "</code> (" << (j - i) << " files)";
      h << "</td><td>" << html_escaped(first.kind.empty() ? "image" : first.kind) << "</td><td>"
        << html_escaped(pixel_words(first)) << "</td></tr>\n";
      i = j;
    }
    h << "</table>\n";
  }

  if (!r.volumes.empty()) {
    h << "<h3>Volumes (NIfTI, " << plural(r.volumes.size(), "file", "files")
      << ")</h3>\n<table><tr><th>File</th><th>What was done</th></tr>\n";
    for (const auto& v : r.volumes)
      h << "<tr><td><code>" << html_escaped(v.name)
        << "</code></td><td>face removed; the file's header was replaced by a new one that "
           "holds only the size and position of the volume (descriptions and notes in the "
           "old one can name you)</td></tr>\n";
    h << "</table>\n";
  }

  if (!r.previews.empty()) {
    h << "<h2>Pictures that were changed</h2>\n<p>Look at these before you share the copy. "
         "Only the result is shown: the pictures from before would show what was removed.</p>\n";
    for (const auto& p : r.previews)
      h << "<figure><img src=\"" << html_escaped(p.file) << "\" alt=\"" << html_escaped(p.caption)
        << "\"><figcaption>" << html_escaped(p.caption) << "</figcaption></figure>\n";
  }

  h << "<h2>What was left out, and why</h2>\n";
  if (r.files_left_out() == 0) {
    h << "<p>No image was left out.</p>\n";
  } else {
    h << "<div class=\"box warn\">These files are <strong>not</strong> in the copy: they "
         "might still show who you are. Ask the hospital for another copy or share them in "
         "another way if they are needed.</div>\n<table><tr><th>Why</th><th>Files</th></tr>\n";
    for (const auto& [reason, count] : r.left_out)
      h << "<tr><td>" << html_escaped(reason) << "</td><td>" << count << "</td></tr>\n";
    h << "</table>\n";
  }
  if (r.dicomdirs_replaced > 0)
    h << "<p>The original index of the disc (<code>DICOMDIR</code>) was not copied, because it "
         "lists names; a new one was made for this copy.</p>\n";
  if (r.not_images > 0)
    h << "<p>" << plural(r.not_images, "other file", "other files")
      << " (viewer programs, pictures in other formats, notes) "
      << (r.not_images == 1 ? "was" : "were") << " not copied.</p>\n";
  h << "<h2>Good to know</h2>\n<ul><li>The codes that replace your name and the image "
       "identifiers were made with a random key that was thrown away: nobody, not even you, "
       "can link this copy back to you through them.</li>\n<li>No automatic tool is perfect. "
       "Look through the images in a viewer before you share them.</li></ul>\n"
       "<p style=\"color:#777;font-size:.85rem\">Made by radguard share (DICOM PS3.15 Basic "
       "Application Level Confidentiality Profile with the Clean Pixel Data, Clean "
       "Recognizable Visual Features, Clean Graphics, Clean Structured Content and Clean "
       "Descriptors options).</p>\n</body></html>\n";
  return h.str();
}

std::string report_text(const ShareReport& r) {
  std::ostringstream out;
  out << "shared " << plural(r.files_shared - r.volumes.size(), "image", "images") << " in "
      << plural(r.studies.size(), "study", "studies") << " and "
      << plural(r.volumes.size(), "NIfTI volume", "NIfTI volumes") << " into " << r.output.string()
      << " in " << r.seconds << " s (defacing " << r.defacing_seconds << " s); faces removed from "
      << plural(r.faces_removed, "head scan", "head scans") << ", text blacked out on "
      << plural(r.images_redacted, "image", "images") << "\n";
  for (const auto& [reason, count] : r.left_out)
    out << "left out " << count << ": " << reason << "\n";
  if (r.not_images > 0)
    out << "not copied: " << plural(r.not_images, "file", "files") << " that are not DICOM\n";
  for (const auto& study : r.studies)
    for (const auto& f : study.files)
      if (f.pixels.frames_redacted > 0 || f.pixels.defaced)
        out << f.name << ": " << pixel_words(f) << "\n";
  out << "read report.html in the copy before you share it\n";
  return out.str();
}

std::string report_json(const ShareReport& r) {
  using nlohmann::json;
  json files = json::array();
  std::vector<deid::FileOutcome> work;
  for (const auto& study : r.studies)
    for (const auto& f : study.files) {
      json entry = deid::pixel_work_json(f.pixels);
      entry["file"] = f.name;
      entry["study"] = study.label;
      entry["kind"] = f.kind;
      entry["modality"] = f.modality;
      files.push_back(std::move(entry));
      deid::FileOutcome o;
      o.pixels = f.pixels;
      work.push_back(std::move(o));
    }
  json volumes = json::array();
  for (const auto& v : r.volumes) volumes.push_back({{"file", v.name}, {"defaced", true}});
  json counts = deid::pixel_counts_json(work, {});
  counts.erase("refused_by_stage");
  const json doc = {
      {"tool", "radguard"},
      {"command", "share"},
      {"output", r.output.string()},
      {"files_shared", r.files_shared},
      {"studies", r.studies.size()},
      {"faces_removed", r.faces_removed},
      {"images_redacted", r.images_redacted},
      {"pixels", counts},
      {"left_out", r.left_out},
      {"files_left_out", r.files_left_out()},
      {"not_images", r.not_images},
      {"dicomdirs_replaced", r.dicomdirs_replaced},
      {"files", files},
      {"volumes", volumes},
      {"timings", {{"total_seconds", r.seconds}, {"defacing_seconds", r.defacing_seconds}}},
      {"exit_code", r.exit_code()},
  };
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace radguard::share
