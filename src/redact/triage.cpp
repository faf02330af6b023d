// Which images need OCR, from the header alone: a CT or MR archive must not be OCR'd slice by
// slice, while screens, captures, ultrasound and documents always are. Skipping is the
// exception: only cross-sections, computed objects (dose grids, segmentations), and images
// whose header says there is no burned-in annotation, without any other sign of text; projection
// radiographs (CR, DX, MG, IO, ...), nuclear medicine and unknown modalities are read.
#include <algorithm>
#include <array>
#include <utility>

#include "dicom/presence.hpp"
#include "redact/redact.hpp"

namespace radguard::redact {

namespace {

std::string trimmed(std::optional<std::string> value) {
  std::string text = value.value_or("");
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
  while (!text.empty() && text.front() == ' ') text.erase(text.begin());
  return text;
}

unsigned number(const std::optional<std::string>& value) {
  const std::string text = trimmed(value);
  unsigned out = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return 0;
    out = out * 10 + static_cast<unsigned>(c - '0');
    if (out > 1'000'000) return 0;
  }
  return out;
}

// Modalities whose images carry burned-in text often enough to read every one.
constexpr std::array<std::string_view, 13> kTextModalities = {
    "US", "IVUS", "SC", "OT", "XC", "DOC", "ES", "GM", "OP", "SM", "XA", "RF", "ECG"};

// Cross-sectional modalities: slices come by the hundred and their annotation is an overlay
// drawn by the viewer, not pixels. Anything not listed is read.
constexpr std::array<std::string_view, 3> kCrossSectionalModalities = {"CT", "MR", "PT"};

// Objects computed by software rather than acquired: a dose grid from the planning system, a
// segmentation's label frames. No camera, screen or film ever wrote on them.
constexpr std::array<std::string_view, 2> kComputedModalities = {"RTDOSE", "SEG"};

// Display resolutions: an image of exactly this size is usually a screen capture.
constexpr std::array<std::pair<unsigned, unsigned>, 10> kScreenSizes = {{{480, 640},
                                                                         {600, 800},
                                                                         {768, 1024},
                                                                         {720, 1280},
                                                                         {800, 1280},
                                                                         {1024, 1280},
                                                                         {900, 1440},
                                                                         {1050, 1680},
                                                                         {1080, 1920},
                                                                         {1200, 1920}}};

}  // namespace

HeaderFacts header_facts(const dicom::DicomFile& file) {
  HeaderFacts facts;
  facts.modality = trimmed(file.string_of({0x0008, 0x0060}));
  facts.burned_in_annotation = trimmed(file.string_of({0x0028, 0x0301}));
  facts.image_type = trimmed(file.string_of({0x0008, 0x0008}));
  facts.sop_class_uid = trimmed(file.string_of({0x0008, 0x0016}));
  facts.manufacturer = trimmed(file.string_of({0x0008, 0x0070}));
  facts.model = trimmed(file.string_of({0x0008, 0x1090}));
  facts.rows = number(file.string_of({0x0028, 0x0010}));
  facts.columns = number(file.string_of({0x0028, 0x0011}));
  const unsigned samples = number(file.string_of({0x0028, 0x0002}));
  facts.samples_per_pixel = samples == 0 ? 1 : samples;
  // Pixel Data, Float Pixel Data, Double Float Pixel Data: decoding the float forms fails
  // closed as unsupported rather than letting them pass unread.
  facts.has_pixel_data = dicom::has_top_level(file, {0x7FE0, 0x0010}) ||
                         dicom::has_top_level(file, {0x7FE0, 0x0008}) ||
                         dicom::has_top_level(file, {0x7FE0, 0x0009});
  return facts;
}

Triage triage(const HeaderFacts& facts) {
  if (!facts.has_pixel_data) return {TriageVerdict::skip, "no pixel data"};
  if (facts.burned_in_annotation == "YES")
    return {TriageVerdict::ocr, "Burned In Annotation is YES"};
  if (std::find(kTextModalities.begin(), kTextModalities.end(), facts.modality) !=
      kTextModalities.end())
    return {TriageVerdict::ocr, "modality " + facts.modality + " often carries burned-in text"};
  // Secondary Capture and its multi-frame variants (1.2.840.10008.5.1.4.1.1.7[.n]).
  if (facts.sop_class_uid == "1.2.840.10008.5.1.4.1.1.7" ||
      facts.sop_class_uid.starts_with("1.2.840.10008.5.1.4.1.1.7."))
    return {TriageVerdict::ocr, "secondary capture"};
  for (const std::string_view marker : {"SECONDARY", "SCREEN", "DOSE", "REPORT"}) {
    if (facts.image_type.find(marker) != std::string::npos)
      return {TriageVerdict::ocr, "image type " + std::string(marker)};
  }
  // Cross-sections are grey: a colour image is a rendering, a fused view or a screen, and
  // those are labelled.
  if (facts.samples_per_pixel == 3) return {TriageVerdict::ocr, "colour image"};
  for (const auto& [rows, columns] : kScreenSizes)
    if (facts.rows == rows && facts.columns == columns)
      return {TriageVerdict::ocr, "image of a screen size"};
  if (facts.burned_in_annotation == "NO")
    return {TriageVerdict::skip, "Burned In Annotation is NO, no other sign of burned-in text"};
  if (std::find(kCrossSectionalModalities.begin(), kCrossSectionalModalities.end(),
                facts.modality) != kCrossSectionalModalities.end())
    return {TriageVerdict::skip,
            "cross-sectional modality " + facts.modality + " without signs of burned-in text"};
  if (std::find(kComputedModalities.begin(), kComputedModalities.end(), facts.modality) !=
      kComputedModalities.end())
    return {TriageVerdict::skip,
            "computed object (" + facts.modality + ") without signs of burned-in text"};
  if (facts.modality.empty()) return {TriageVerdict::ocr, "no modality: checked to be safe"};
  return {TriageVerdict::ocr, "modality " + facts.modality + " is not known to be free of text"};
}

}  // namespace radguard::redact
