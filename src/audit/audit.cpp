#include "audit/audit.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "batch/batch.hpp"
#include "core/text.hpp"
#include "core/version.hpp"
#include "core/html.hpp"
#include "crypto/crypto.hpp"
#include "deface/dicom_series.hpp"
#include "deid/text_scrubber.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/signature.hpp"
#include "redact/redact.hpp"
#include "standard/tables.hpp"
#include "volume/nifti.hpp"
#include "standard/tags.hpp"

namespace radguard::audit {

namespace fs = std::filesystem;
using standard::ActionCode;
using standard::ProfileOption;

std::string_view to_string(Category category) {
  switch (category) {
    case Category::header: return "header";
    case Category::private_attribute: return "private";
    case Category::free_text: return "free-text";
    case Category::uid: return "uid";
    case Category::date: return "date";
    case Category::filename: return "filename";
    case Category::pixels: return "pixels";
    case Category::face: return "face";
    case Category::quasi_identifier: return "quasi-identifier";
    case Category::integrity: return "integrity";
  }
  return "header";
}

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::low: return "low";
    case Severity::medium: return "medium";
    case Severity::high: return "high";
  }
  return "high";
}

Result<FailOn> parse_fail_on(std::string_view text) {
  if (text == "high") return FailOn::high;
  if (text == "medium") return FailOn::medium;
  if (text == "never") return FailOn::never;
  return fail(ErrorCode::usage, "--fail-on must be high, medium or never");
}

Result<Depth> parse_depth(std::string_view text) {
  if (text == "headers") return Depth::headers;
  if (text == "full") return Depth::full;
  return fail(ErrorCode::usage, "--depth must be headers or full");
}

std::size_t Report::count(Severity severity) const {
  return static_cast<std::size_t>(std::count_if(
      findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == severity; }));
}
std::size_t Report::count(Category category) const {
  return static_cast<std::size_t>(std::count_if(
      findings.begin(), findings.end(), [&](const Finding& f) { return f.category == category; }));
}

int exit_status(const Report& report, FailOn fail_on) {
  switch (fail_on) {
    case FailOn::never: return 0;
    case FailOn::high: return report.count(Severity::high) > 0 ? 1 : 0;
    case FailOn::medium:
      return report.count(Severity::high) + report.count(Severity::medium) > 0 ? 1 : 0;
  }
  return 1;
}

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int number(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool plausible_date(std::string_view d, int first_year = 1900, int last_year = 2099) {
  if (d.size() < 8 || !all_digits(d.substr(0, 8))) return false;
  const int y = number(d.substr(0, 4)), m = number(d.substr(4, 2)), day = number(d.substr(6, 2));
  return y >= first_year && y <= last_year && m >= 1 && m <= 12 && day >= 1 && day <= 31;
}

bool is_text_vr(std::string_view vr) {
  return vr == "LO" || vr == "SH" || vr == "ST" || vr == "LT" || vr == "UT" || vr == "UC";
}

// The radguard pseudonym forms: "RG" + 16 base-32 characters.
bool is_rg_token(std::string_view s) {
  if (s.size() != 18 || !s.starts_with("RG")) return false;
  return std::all_of(s.begin() + 2, s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '9');
  });
}

}  // namespace

bool looks_like_dummy(std::string_view vr, std::string_view raw) {
  const std::string value = trimmed(raw);
  if (value.empty()) return true;
  const std::string up = upper(value);
  // Only padding, separators and zeros.
  if (std::all_of(up.begin(), up.end(), [](char c) {
        return c == '*' || c == '^' || c == ' ' || c == '-' || c == '_' || c == '.' ||
               c == '0' || c == ':' || c == '\\' || c == '=' || c == 'X' || c == '/';
      }))
    return true;
  static constexpr std::string_view kWords[] = {
      "ANONYMI", "ANONYMOUS", "ANONYMISED", "ANONYMIZED", "REMOVED", "DEIDENTIFIED",
      "DE-IDENTIFIED", "REDACTED", "UNKNOWN", "NONE", "N/A", "NOT AVAILABLE", "DUMMY"};
  for (const auto w : kWords)
    if (up.find(w) != std::string::npos) return true;
  if (vr == "DA" && (up == "19000101" || up == "00010101" || up == "18991230")) return true;
  if (vr == "DT" && up.starts_with("19000101")) return true;
  if (vr == "AS" && up == "000Y") return true;
  if (vr == "UI" && up.starts_with("2.25.")) return true;
  if (is_rg_token(up)) return true;
  if (vr == "PN" && up.find("^RG") != std::string::npos) return true;
  return false;
}

std::vector<std::string> uid_embedded_dates(std::string_view uid) {
  std::vector<std::string> out;
  if (uid.starts_with("2.25.")) return out;  // a number made from a UUID or a hash
  std::size_t start = 0;
  while (start <= uid.size()) {
    std::size_t end = uid.find('.', start);
    if (end == std::string_view::npos) end = uid.size();
    const std::string_view part = uid.substr(start, end - start);
    if (part.size() >= 8 && part.size() <= 26 && all_digits(part) && plausible_date(part, 1985, 2039))
      out.emplace_back(part.substr(0, 8));
    else if (part.size() == 10 && all_digits(part)) {
      // Seconds since 1970 between 2000 and 2036.
      long long t = 0;
      std::from_chars(part.data(), part.data() + part.size(), t);
      if (t >= 946684800LL && t < 2082758400LL) {
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        long long z = t / 86400 + 719468;
        const long long era = z / 146097;
        const long long doe = z - era * 146097;
        const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const long long mp = (5 * doy + 2) / 153;
        const long long d = doy - (153 * mp + 2) / 5 + 1;
        const long long m = mp < 10 ? mp + 3 : mp - 9;
        const long long y = yoe + era * 400 + (m <= 2 ? 1 : 0);
        char text[40];
        std::snprintf(text, sizeof text, "%04lld%02lld%02lld", y, m, d);
        out.emplace_back(text);
      }
    }
    start = end + 1;
  }
  return out;
}

namespace {

// ---- What one file holds ---------------------------------------------------------------------

struct Element {
  std::string path;  // "(0040,A730)[0]/(0040,A160)"
  Tag tag;
  std::string vr;
  std::string creator;  // private elements only
  std::string value;    // string VRs only
  bool nested = false;
};

// A quasi-identifier and how to read it from a file.
enum Quasi : std::uint8_t { age, sex, study_month, modality, scanner, station, institution, body_part, height, weight };
constexpr std::array<std::string_view, 10> kQuasiNames = {
    "age", "sex", "study year and month", "modality", "manufacturer and model", "station",
    "institution", "body part", "height", "weight"};

struct FileFacts {
  std::string input;     // absolute path
  std::string relative;  // relative to the input it was found under (unmasked)
  std::string error;
  bool dicom = false;
  std::vector<Element> elements;
  deid::TextEncoding encoding = deid::TextEncoding::single_byte;
  std::set<std::string> declared;  // CID 7050 codes of (0012,0064)
  std::string patient_key, study_uid, series_uid;
  std::array<std::string, 10> quasi;
  std::string pixel_hash;  // "" when no pixel data or constant pixel data
  std::string impl_uid, impl_version, manufacturer;
  std::vector<std::string> content_dates;
  bool burned_in_yes = false;
  std::optional<std::string> triage_reason;  // set when triage says OCR would be needed
  // What the text detector found (Depth::full, images triage picks).
  struct PixelText {
    bool examined = false;
    std::string error;               // a fixed phrase when the detector could not run
    std::size_t identifying = 0;     // regions read as a name, ID, date or institution
    std::size_t unread = 0;          // text regions that could not be read with confidence
    std::set<std::size_t> frames;    // frames holding either
  } pixel_text;
  bool head_series = false;
  std::optional<std::string> signature_problem;
  // Code items (their paths, "" at the top level) coded in a standard scheme: their Code
  // Meanings are the scheme's vocabulary ("Recording Observer's Name"), not free text.
  std::unordered_set<std::string> standard_code_items;
  // Image size, pixel spacing, orientation and frame of reference, rounded: what every image
  // of one acquisition shares ("" for none, localizers, multi-frame images).
  std::string geometry;
  // NIfTI volumes: the header's free-text fields and extensions, and the face evidence.
  bool nifti = false;
  std::vector<std::pair<std::string, std::string>> nifti_text;  // field name, value
  std::vector<int> nifti_extensions;                             // extension codes
  std::optional<deface::FaceCheck> nifti_face;
  std::vector<Finding> findings;
};

std::string path_string(const std::vector<std::pair<Tag, int>>& stack, Tag tag) {
  std::string out;
  for (const auto& [seq, item] : stack) out += seq.to_string() + "[" + std::to_string(item) + "]/";
  return out + tag.to_string();
}

std::vector<Element> read_elements(const dicom::DicomFile& file) {
  std::vector<Element> out;
  struct Level {
    Tag seq;
    int item;
    Tag last;
  };
  std::vector<Level> stack;
  file.visit([&](const dicom::ElementView& view) {
    const std::size_t depth = view.path.size();
    if (depth < stack.size()) stack.resize(depth);
    if (depth > stack.size()) {
      while (stack.size() < depth) stack.push_back({view.path[stack.size()], 0, view.tag});
    } else if (depth > 0) {
      if (view.tag <= stack.back().last) ++stack.back().item;
      stack.back().last = view.tag;
    }
    Element e;
    std::vector<std::pair<Tag, int>> levels;
    for (const auto& l : stack) levels.emplace_back(l.seq, l.item);
    e.path = path_string(levels, view.tag);
    e.tag = view.tag;
    const auto* entry = standard::find_dictionary_entry(view.tag);
    e.vr = (view.vr == "UN" && entry != nullptr && !view.tag.is_private()) ? std::string(entry->vr)
                                                                            : std::string(view.vr);
    e.creator = std::string(view.private_creator);
    e.value = std::string(view.value);
    e.nested = depth > 0;
    out.push_back(std::move(e));
  });
  return out;
}

// The Table E.1-1 action under the options the file declares: a declared option's cell
// wins over the basic action (K over C over the rest when several apply).
ActionCode effective_action(const standard::ProfileRow& row, const std::set<std::string>& declared) {
  static constexpr std::array<std::pair<ProfileOption, std::string_view>, 10> kCodes = {{
      {ProfileOption::retain_safe_private, "113111"},
      {ProfileOption::retain_uids, "113110"},
      {ProfileOption::retain_device_identity, "113109"},
      {ProfileOption::retain_institution_identity, "113112"},
      {ProfileOption::retain_patient_characteristics, "113108"},
      {ProfileOption::retain_long_full_dates, "113106"},
      {ProfileOption::retain_long_modified_dates, "113107"},
      {ProfileOption::clean_descriptors, "113105"},
      {ProfileOption::clean_structured_content, "113104"},
      {ProfileOption::clean_graphics, "113103"},
  }};
  ActionCode best = row.basic;
  for (const auto& [option, code] : kCodes) {
    if (!declared.contains(std::string(code))) continue;
    const ActionCode cell = row.options[static_cast<std::size_t>(option)];
    if (cell == ActionCode::none) continue;
    if (cell == ActionCode::K || (cell == ActionCode::C && best != ActionCode::K)) best = cell;
    else if (best != ActionCode::K && best != ActionCode::C) best = cell;
  }
  return best;
}

bool is_uid_action(ActionCode a) { return a == ActionCode::U || a == ActionCode::X_Z_U; }

// Attributes whose values identify the patient or the encounter (what deid's collect_phi
// gathers): person names, and text the Basic Profile removes that is not a descriptor.
enum class PhiKind : std::uint8_t { none, patient_name, person_name, identifier, text, date };

std::string keyword_of(Tag tag);
bool is_identifying_name(Tag tag) {
  const std::string kw = keyword_of(tag);
  for (const std::string_view w : {"Name", "ID", "Address", "Telephone", "Birth", "Number",
                                   "Institution", "Physician", "Operator", "Email", "Contact"})
    if (kw.find(w) != std::string::npos) return true;
  return false;
}

// A text value shaped like a DICOM person name ("FAMILY^GIVEN"), as a private block or a
// free-text field may hold one.
bool pn_shaped(std::string_view value) {
  static const std::regex re("^ *[A-Za-z'-]{2,}\\^[A-Za-z'-]{2,}(\\^[A-Za-z'. -]*)* *$");
  return value.find('^') != std::string_view::npos && std::regex_match(value.begin(), value.end(), re);
}

PhiKind phi_kind(const Element& e) {
  if (e.vr != "PN" && is_text_vr(e.vr) && pn_shaped(e.value)) return PhiKind::person_name;
  if (e.tag.is_private()) return e.vr == "PN" ? PhiKind::person_name : PhiKind::none;
  if (e.vr == "PN") return e.tag == tags::PatientName && !e.nested ? PhiKind::patient_name
                                                                   : PhiKind::person_name;
  const auto* row = standard::find_profile_row(e.tag);
  if (row == nullptr || row->private_attributes) return PhiKind::none;
  const ActionCode basic = row->basic;
  if (e.vr == "DA" && basic != ActionCode::K && basic != ActionCode::C) return PhiKind::date;
  if (!is_text_vr(e.vr)) return PhiKind::none;
  if (row->options[static_cast<std::size_t>(ProfileOption::clean_descriptors)] != ActionCode::none)
    return PhiKind::none;
  if (basic == ActionCode::K || basic == ActionCode::C || is_uid_action(basic)) return PhiKind::none;
  const auto* entry = standard::find_dictionary_entry(e.tag);
  const std::string_view keyword = entry ? entry->keyword : "";
  if (keyword.find("ID") != std::string_view::npos ||
      keyword.find("Number") != std::string_view::npos)
    return PhiKind::identifier;
  return is_identifying_name(e.tag) ? PhiKind::text : PhiKind::none;
}

void add_phi(deid::PhiValues& phi, PhiKind kind, const std::string& value, deid::TextEncoding enc) {
  switch (kind) {
    case PhiKind::patient_name: phi.add_patient_name(value, enc); break;
    case PhiKind::person_name: phi.add_person_name(value, enc); break;
    case PhiKind::identifier: phi.add_identifier(value, enc); break;
    case PhiKind::text: phi.add_text(value, enc); break;
    case PhiKind::date: phi.add_date(trimmed(value)); break;
    case PhiKind::none: break;
  }
}

std::string keyword_of(Tag tag) {
  const auto* entry = standard::find_dictionary_entry(tag);
  return entry ? std::string(entry->keyword) : std::string();
}

std::string first_value(const std::vector<Element>& elements, Tag tag) {
  for (const auto& e : elements)
    if (!e.nested && e.tag == tag) return trimmed(e.value);
  return {};
}

// Quasi-identifier values, at the granularity a release shows them.
std::string age_years(const std::vector<Element>& el) {
  const std::string as = first_value(el, tags::PatientAge);
  if (as.size() == 4 && all_digits(as.substr(0, 3)) && !looks_like_dummy("AS", as)) {
    const int n = number(as.substr(0, 3));
    switch (as[3]) {
      case 'Y': return std::to_string(n);
      case 'M': return std::to_string(n / 12);
      case 'W': return std::to_string(n / 52);
      case 'D': return std::to_string(n / 365);
      default: break;
    }
  }
  const std::string birth = first_value(el, tags::PatientBirthDate);
  const std::string study = first_value(el, tags::StudyDate);
  if (plausible_date(birth, 1800) && plausible_date(study, 1800) && !looks_like_dummy("DA", birth)) {
    int years = number(study.substr(0, 4)) - number(birth.substr(0, 4));
    if (study.substr(4, 4) < birth.substr(4, 4)) --years;
    return std::to_string(years);
  }
  return {};
}

std::string rounded(const std::string& text, double scale) {
  if (text.empty()) return {};
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || v <= 0) return {};
  return std::to_string(static_cast<long>(v * scale + 0.5));
}

void read_quasi(FileFacts& f) {
  const auto& el = f.elements;
  f.quasi[age] = age_years(el);
  f.quasi[sex] = upper(first_value(el, tags::PatientSex));
  const std::string study = first_value(el, tags::StudyDate);
  if (plausible_date(study, 1800) && !looks_like_dummy("DA", study)) f.quasi[study_month] = study.substr(0, 6);
  f.quasi[modality] = upper(first_value(el, tags::Modality));
  const std::string maker = first_value(el, tags::Manufacturer);
  const std::string model = first_value(el, tags::ManufacturerModelName);
  if (!maker.empty() || !model.empty()) f.quasi[scanner] = upper(maker) + "|" + upper(model);
  f.quasi[station] = upper(first_value(el, tags::StationName));
  f.quasi[institution] = upper(first_value(el, tags::InstitutionName));
  f.quasi[body_part] = upper(first_value(el, tags::BodyPartExamined));
  f.quasi[height] = rounded(first_value(el, tags::PatientSize), 100.0);  // metres -> cm
  f.quasi[weight] = rounded(first_value(el, tags::PatientWeight), 1.0);
  for (auto& q : f.quasi)
    if (looks_like_dummy("LO", q) && q.find('|') == std::string::npos) q.clear();
}

// SHA-256 of the bytes after the last Pixel Data tag (native or encapsulated, either byte
// order); "" when none is found or the data are constant (blank images say nothing).
std::string pixel_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size <= 0) return {};
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), size)) return {};
  static const std::string le("\xE0\x7F\x10\x00", 4), be("\x7F\xE0\x00\x10", 4);
  // The first Pixel Data tag (an icon's, if any, comes first: hashed along with the image).
  // Searched forwards: the header before it is small, the pixel data after it large.
  std::size_t pos = bytes.find(le);
  if (pos == std::string::npos) pos = bytes.find(be);
  if (pos == std::string::npos || bytes.size() - pos < 16) return {};
  const std::string_view data = std::string_view(bytes).substr(pos + 12);
  if (std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0) return {};  // constant
  return crypto::to_hex(crypto::sha256(data));
}

bool head_words(const std::string& text) {
  const std::string up = upper(text);
  for (const std::string_view w : {"HEAD", "BRAIN", "SKULL", "CRAN", "FACE", "ORBIT", "SINUS", "NEURO"})
    if (up.find(w) != std::string::npos) return true;
  return false;
}

constexpr std::string_view kScannerMakers[] = {
    "GE ", "GE_", "GENERAL ELECTRIC", "SIEMENS", "PHILIPS", "TOSHIBA", "CANON", "HITACHI", "FUJI",
    "AGFA", "CARESTREAM", "KODAK", "HOLOGIC", "SAMSUNG", "MINDRAY", "ESAOTE", "KONICA", "SHIMADZU",
    "UNITED IMAGING", "NEUSOFT", "ELSCINT", "PICKER", "MARCONI", "ACUSON", "ZEISS", "TOPCON"};

struct EditingTool {
  std::string_view uid_prefix, version_prefix, name;
};
constexpr EditingTool kEditingTools[] = {
    {"1.2.826.0.1.3680043.8.498.", "PYDICOM", "pydicom"},
    {"1.2.276.0.7230010.3.", "OFFIS_DCMTK", "DCMTK"},
    {"1.2.826.0.1.3680043.2.1143.", "GDCM", "GDCM"},
    {"1.2.40.0.13.1.", "DCM4CHE", "dcm4che"},
    {"1.3.6.1.4.1.30071.8", "FO-DICOM", "fo-dicom"},
    {"1.2.826.0.1.3680043.2.1545.", "", "Horos/OsiriX"},
    {"", "HOROS", "Horos"},
    {"", "OSIRIX", "OsiriX"},
    {"", "PYNETDICOM", "pynetdicom"},
};

// ---- Reading the inputs ------------------------------------------------------------------------

// Burned-in text as `radguard redact --mode report` finds it: the detector proposes every text
// region, the reader matches what it reads against this file's header values and the shapes
// of dates and IDs, and regions it cannot read are counted (fail closed).
void examine_pixels(FileFacts& f, dicom::DicomFile& file) {
  redact::RedactOptions options;
  options.mode = redact::Mode::report;
  auto found = redact::redact_file(file, options);
  f.pixel_text.examined = true;
  if (!found) {
    f.pixel_text.error = found.error().code == ErrorCode::unsupported
                             ? "the text detector is not installed or cannot read this image"
                             : "the pixels could not be examined";
    return;
  }
  for (const auto& r : found->redactions) {
    if (r.category == redact::Category::unread) ++f.pixel_text.unread;
    else if (r.category != redact::Category::text && r.category != redact::Category::rule)
      ++f.pixel_text.identifying;
    else continue;
    f.pixel_text.frames.insert(r.frame);
  }
  f.pixel_text.unread += found->unread_text_regions;
}

// A NIfTI-1 header's free-text fields (offset, length) and its extensions (code per
// extension: 2 a DICOM header, 4 AFNI, 6 a comment ...), which can carry what the patient's
// DICOM header held.
void read_nifti_header(FileFacts& f, const std::string& header) {
  constexpr std::array<std::tuple<std::string_view, std::size_t, std::size_t>, 5> kFields = {
      {{"db_name", 4, 18}, {"data_type", 14, 10}, {"descrip", 148, 80}, {"aux_file", 228, 24},
       {"intent_name", 328, 16}}};
  for (const auto& [name, offset, length] : kFields) {
    if (header.size() < offset + length) continue;
    std::string value = header.substr(offset, length);
    value = value.substr(0, value.find('\0'));
    if (!trimmed(value).empty()) f.nifti_text.emplace_back(name, value);
  }
  if (header.size() < 352 || header[348] == 0) return;
  std::size_t at = 352;
  while (at + 8 <= header.size()) {
    std::int32_t size = 0, code = 0;
    std::memcpy(&size, header.data() + at, 4);
    std::memcpy(&code, header.data() + at + 4, 4);
    if (size < 8) break;
    f.nifti_extensions.push_back(code);
    at += static_cast<std::size_t>(size);
  }
}

void read_nifti_file(FileFacts& f, Depth depth) {
  auto image = volume::read_nifti(f.input);
  if (!image) {
    f.error = image.error().code == ErrorCode::unsupported ? "a NIfTI form radguard cannot read"
                                                           : "malformed NIfTI";
    return;
  }
  f.nifti = true;
  f.error.clear();
  read_nifti_header(f, image->header);
  if (depth == Depth::full)
    f.nifti_face = deface::face_evidence(image->volume, deface::Modality::automatic);
}

// Numbers of a multi-valued DS attribute, rounded to `step`, as text.
std::string rounded_values(const std::optional<std::string>& raw, double step) {
  if (!raw) return "";
  std::string out;
  std::size_t start = 0;
  while (start <= raw->size()) {
    std::size_t end = raw->find('\\', start);
    if (end == std::string::npos) end = raw->size();
    const std::string one = trimmed(std::string_view(*raw).substr(start, end - start));
    char* stop = nullptr;
    const double v = std::strtod(one.c_str(), &stop);
    out += (out.empty() ? "" : "/") + std::to_string(std::llround(v / step));
    start = end + 1;
  }
  return out;
}

std::string geometry_of(const dicom::DicomFile& file) {
  const std::string type = upper(file.string_of(tags::ImageType).value_or(""));
  const std::string frames = file.string_of(Tag{0x0028, 0x0008}).value_or("1");
  if (type.find("LOCALIZER") != std::string::npos || trimmed(frames) != "1") return "";
  const auto orientation = file.string_of(Tag{0x0020, 0x0037});
  if (!orientation) return "";
  return file.string_of(Tag{0x0028, 0x0010}).value_or("") + "x" +
         file.string_of(Tag{0x0028, 0x0011}).value_or("") + "|" +
         rounded_values(file.string_of(Tag{0x0028, 0x0030}), 0.001) + "|" +
         rounded_values(orientation, 0.01) + "|" + trimmed(file.string_of(Tag{0x0020, 0x0052}).value_or(""));
}

void read_file(FileFacts& f, const dicom::TrustStore& trust, Depth depth) {
  auto opened = dicom::DicomFile::open(f.input);
  if (!opened && opened.error().code == ErrorCode::not_dicom && volume::is_nifti_name(f.input))
    return read_nifti_file(f, depth);
  if (!opened) {
    f.error = opened.error().code == ErrorCode::not_dicom ? "not DICOM"
              : opened.error().code == ErrorCode::io      ? "cannot be read"
                                                          : "malformed DICOM";
    return;
  }
  f.dicom = true;
  dicom::DicomFile& file = *opened;
  f.elements = read_elements(file);
  f.encoding = deid::encoding_for(file.string_of(tags::SpecificCharacterSet).value_or(""));
  for (const auto& code : file.code_sequence_of(tags::DeidentificationMethodCodeSequence))
    f.declared.insert(trimmed(code.value));
  f.study_uid = first_value(f.elements, tags::StudyInstanceUID);
  f.series_uid = first_value(f.elements, tags::SeriesInstanceUID);
  const std::string pid = first_value(f.elements, tags::PatientID);
  const std::string pname = first_value(f.elements, tags::PatientName);
  f.patient_key = !pid.empty() ? "id:" + pid : !pname.empty() ? "name:" + pname : "";
  read_quasi(f);
  f.impl_uid = trimmed(file.string_of(Tag{0x0002, 0x0012}).value_or(""));
  f.impl_version = upper(trimmed(file.string_of(Tag{0x0002, 0x0013}).value_or("")));
  f.manufacturer = upper(first_value(f.elements, tags::Manufacturer));
  for (const Tag t : {tags::StudyDate, tags::SeriesDate, tags::AcquisitionDate, tags::ContentDate,
                      tags::InstanceCreationDate}) {
    const std::string d = first_value(f.elements, t);
    if (plausible_date(d, 1985) && !looks_like_dummy("DA", d)) f.content_dates.push_back(d.substr(0, 8));
  }
  bool has_pixels = false, signed_file = false;
  for (const auto& e : f.elements) {
    if (!e.nested && e.tag == tags::PixelData) has_pixels = true;
    if (!e.nested && e.tag == tags::DigitalSignaturesSequence) signed_file = true;
  }
  if (has_pixels) {
    f.geometry = geometry_of(file);
    f.pixel_hash = pixel_hash(f.input);
    f.burned_in_yes = upper(first_value(f.elements, tags::BurnedInAnnotation)) == "YES";
    const redact::Triage t = redact::triage(redact::header_facts(file));
    if (t.verdict == redact::TriageVerdict::ocr) {
      f.triage_reason = t.reason;
      if (depth == Depth::full) examine_pixels(f, file);
    }
    const std::string mod = f.quasi[modality];
    if (mod == "CT" || mod == "MR") {
      for (const Tag t2 : {tags::BodyPartExamined, tags::StudyDescription, tags::SeriesDescription,
                           tags::ProtocolName})
        if (head_words(first_value(f.elements, t2))) f.head_series = true;
    }
  }
  if (signed_file) {
    const auto verified = dicom::verify_file(f.input, trust);
    if (!verified) f.signature_problem = "its signatures cannot be checked";
    else if (verified->verdict == dicom::Verdict::invalid)
      f.signature_problem = "a digital signature is present but invalid (the signed data changed)";
  }
}

// ---- Checks over one file ----------------------------------------------------------------------

// What the scrubber says of a text value, which depends only on the value, its encoding and
// the (fixed) identifying values of a run: kept once per distinct value, since descriptions,
// names of devices and the like repeat in every file.
struct TextVerdict {
  bool original = false, dataset = false, pattern = false;
};
class VerdictCache {
 public:
  std::optional<TextVerdict> get(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void put(std::string key, TextVerdict verdict) {
    std::lock_guard lock(mutex_);
    if (map_.size() > 200000) map_.clear();
    map_.emplace(std::move(key), verdict);
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, TextVerdict> map_;
};

struct Context {
  VerdictCache& cache;
  const Options& options;
  const deid::PhiValues& dataset_phi;  // identifying values of the dataset's own headers
  const deid::PhiValues& original_phi;  // of --against originals
  const std::unordered_set<std::string>& original_uids;
  const std::unordered_set<std::string>& original_dates;  // "tag|YYYYMMDD"
  bool has_against;
};

void add(FileFacts& f, const Context& ctx, Category category, std::string path, Severity severity,
         std::string reason, std::string_view value = {}) {
  Finding finding;
  finding.category = category;
  finding.path = std::move(path);
  finding.severity = severity;
  finding.reason = std::move(reason);
  if (ctx.options.show_values == ShowValues::yes) finding.value = trimmed(value);
  f.findings.push_back(std::move(finding));
}

std::string named(Tag tag) {
  const std::string kw = keyword_of(tag);
  return kw.empty() ? tag.to_string() : kw;
}

bool under_releaser_root(const std::string& uid, const Options& options) {
  if (uid.starts_with("2.25.")) return true;
  for (const auto& root : options.uid_roots)
    if (!root.empty() && (uid == root || uid.starts_with(root + "."))) return true;
  return false;
}

// A text value and what the scrubber's patterns alone make of it (computed once).
struct Text {
  const std::string& value;
  deid::TextEncoding encoding;
  std::string patterns_only;
  Text(const std::string& v, deid::TextEncoding enc) : value(v), encoding(enc) {
    static const deid::PhiValues none;
    patterns_only = deid::scrub_text(v, none, enc);
  }
  // Whether `phi` (not the patterns alone) marks something.
  bool holds(const deid::PhiValues& phi) const {
    return !phi.empty() && deid::scrub_text(value, phi, encoding) != patterns_only;
  }
  bool looks_identifying() const { return patterns_only != value; }
};

// Attributes that are free text by nature but written by software, not people.
bool machine_text(Tag tag) {
  return tag == tags::DeidentificationMethod || tag == tags::SoftwareVersions ||
         tag == tags::SpecificCharacterSet || tag == tags::CodingSchemeVersion ||
         tag == tags::ContextGroupVersion || tag == tags::MappingResource ||
         tag == tags::CodeValue || tag == tags::CodingSchemeDesignator ||
         tag == tags::LongCodeValue || tag == tags::URNCodeValue || tag == tags::ContextIdentifier ||
         tag == tags::TemplateIdentifier || tag == tags::ManufacturerModelName ||
         tag == tags::Manufacturer || tag == tags::ContentLabel ||
         tag == Tag{0x0008, 0x0115} || tag == Tag{0x0008, 0x0116};  // coding scheme name, owner
}

void check_text(FileFacts& f, const Context& ctx, const Element& e, bool patterns,
                std::string_view what) {
  const std::string key = std::string(1, static_cast<char>(f.encoding.form)) +
                          static_cast<char>(f.encoding.g1) + e.value;
  TextVerdict verdict;
  if (const auto cached = ctx.cache.get(key)) {
    verdict = *cached;
  } else {
    const Text text(e.value, f.encoding);
    verdict.original = ctx.has_against && text.holds(ctx.original_phi);
    verdict.dataset = text.holds(ctx.dataset_phi);
    verdict.pattern = text.looks_identifying();
    ctx.cache.put(key, verdict);
  }
  if (verdict.original) {
    add(f, ctx, Category::free_text, e.path, Severity::high,
        std::string(what) + " holds an identifying value of the original files", e.value);
    return;
  }
  if (verdict.dataset) {
    add(f, ctx, Category::free_text, e.path, Severity::high,
        std::string(what) + " holds a name, ID, address or date found in the dataset's own headers",
        e.value);
    return;
  }
  if (!patterns) return;
  if (verdict.pattern)
    add(f, ctx, Category::free_text, e.path, Severity::medium,
        std::string(what) +
            " holds text that looks identifying (a date, time, phone number, e-mail, ID-like "
            "number, name or age over 89)",
        e.value);
}

void check_uid(FileFacts& f, const Context& ctx, const Element& e) {
  const std::string uid = trimmed(e.value);
  if (uid.empty()) return;
  for (const auto& one : [&] {
         std::vector<std::string> values;
         std::size_t s = 0;
         while (s <= uid.size()) {
           std::size_t b = uid.find('\\', s);
           if (b == std::string::npos) b = uid.size();
           if (b > s) values.push_back(uid.substr(s, b - s));
           s = b + 1;
         }
         return values;
       }()) {
    if (ctx.has_against && ctx.original_uids.contains(one)) {
      add(f, ctx, Category::uid, e.path, Severity::high,
          named(e.tag) + " is an original UID (found in the --against files)", one);
      continue;
    }
    if (under_releaser_root(one, ctx.options)) continue;
    const auto dates = uid_embedded_dates(one);
    if (!dates.empty())
      add(f, ctx, Category::uid, e.path, Severity::medium,
          named(e.tag) + " is not pseudonymous and embeds a date or time", one);
    else
      add(f, ctx, Category::uid, e.path, Severity::medium,
          named(e.tag) + " is not pseudonymous (not under 2.25 or a releaser's root)", one);
  }
}

void check_age(FileFacts& f, const Context& ctx, const Element& e) {
  const std::string as = trimmed(e.value);
  if (as.size() == 4 && all_digits(as.substr(0, 3)) && as[3] == 'Y' && number(as.substr(0, 3)) > 89)
    add(f, ctx, Category::date, e.path, Severity::medium,
        named(e.tag) + " is over 89 years (not capped)", e.value);
}

std::string item_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

bool standard_scheme(std::string_view designator) {
  static const std::set<std::string, std::less<>> kSchemes = {
      "DCM", "SCT", "SRT", "SNM3", "LN", "UCUM", "UMLS", "RADLEX", "NCIT", "FMA", "MDC",
      "I10", "I9C", "ICD10", "HL7", "ACR", "NEU", "CD2", "NDC", "ITIS_TSN", "PUBCHEM_CID", "RXNORM"};
  return kSchemes.contains(upper(trimmed(designator)));
}

// Code items whose meaning is vocabulary, not a value: coded in a standard scheme, or naming
// an SR content item's concept (Concept Name Code Sequence, whatever its scheme: the value is
// in the content item beside it, checked on its own).
void find_standard_codes(FileFacts& f) {
  for (const auto& e : f.elements) {
    if (e.tag != Tag{0x0008, 0x0102}) continue;
    const std::string item = item_of(e.path);
    const auto last = item.rfind('/');
    const bool concept_name =
        std::string_view(item).substr(last == std::string::npos ? 0 : last + 1).starts_with("(0040,A043)[");
    if (concept_name || standard_scheme(e.value)) f.standard_code_items.insert(item);
  }
}

void check_element(FileFacts& f, const Context& ctx, const Element& e) {
  const Tag tag = e.tag;
  if (tag == Tag{0x0008, 0x0104} && f.standard_code_items.contains(item_of(e.path))) return;
  if (tag.group == 0x0002 || tag.is_group_length() || tag == tags::PixelData ||
      tag == tags::DataSetTrailingPadding)
    return;
  // Originals' dates and values, wherever they are.
  if (ctx.has_against && (e.vr == "DA" || e.vr == "DT")) {
    const std::string v = trimmed(e.value);
    if (v.size() >= 8 && ctx.original_dates.contains(std::to_string(tag.key()) + "|" + v.substr(0, 8)) &&
        !looks_like_dummy(e.vr, v)) {
      const bool kept = f.declared.contains("113106");
      add(f, ctx, Category::date, e.path, kept ? Severity::low : Severity::high,
          named(tag) + (kept ? " equals the original's (dates retained as declared)"
                             : " is not shifted (equals the original's)"),
          v);
    }
  }
  if (tag.is_private()) {
    if (tag.is_private_creator() || (e.value.empty() && e.vr != "SQ")) return;
    if (e.vr == "SQ") return;  // its items are checked one by one
    if (standard::is_safe_private(tag, e.creator)) {
      if (is_text_vr(e.vr) || e.vr == "PN") check_text(f, ctx, e, false, "safe private attribute");
      return;
    }
    const bool textual = is_text_vr(e.vr) || e.vr == "PN" || e.vr == "UN";
    Severity sev = Severity::medium;
    std::string reason = "private attribute not safe-listed for its creator";
    const auto holds_phi = [&] {
      const Text text(e.value, f.encoding);
      return text.holds(ctx.dataset_phi) || (ctx.has_against && text.holds(ctx.original_phi));
    };
    if (textual && ((e.vr == "PN" && !looks_like_dummy("PN", e.value)) || holds_phi())) {
      sev = Severity::high;
      reason += ", holding a name, ID or date";
    }
    add(f, ctx, Category::private_attribute, e.path, sev, reason, e.value);
    return;
  }
  if (tag == tags::PatientAge) check_age(f, ctx, e);
  const auto* row = standard::find_profile_row(tag);
  if (row != nullptr && !row->private_attributes) {
    const ActionCode action = effective_action(*row, f.declared);
    if (is_uid_action(action) && e.vr == "UI") {
      check_uid(f, ctx, e);
      return;
    }
    if (action == ActionCode::K) {
      if (is_text_vr(e.vr) && !machine_text(tag)) check_text(f, ctx, e, false, named(tag));
      return;
    }
    if (action == ActionCode::C) {
      if ((is_text_vr(e.vr) || e.vr == "PN") && !machine_text(tag))
        check_text(f, ctx, e, true, named(tag));
      return;
    }
    // X, Z, D and their combinations: a real value should not be there.
    if (e.vr == "SQ") return;  // the items' values are what matter
    if (looks_like_dummy(e.vr, e.value)) {
      if (e.vr == "PN" || is_text_vr(e.vr)) check_text(f, ctx, e, false, named(tag));
      return;
    }
    const bool descriptor =
        row->options[static_cast<std::size_t>(ProfileOption::clean_descriptors)] != ActionCode::none;
    Severity sev = Severity::high;
    if (e.vr == "TM" || (descriptor && e.vr != "PN")) sev = Severity::medium;
    if (e.vr == "UI") sev = Severity::medium;
    if (!is_identifying_name(tag) && e.vr != "PN" && e.vr != "DA" && e.vr != "DT" &&
        sev == Severity::high)
      sev = Severity::medium;
    if (descriptor && is_text_vr(e.vr)) {
      // A description is judged by what it says.
      const std::size_t before = f.findings.size();
      check_text(f, ctx, e, true, named(tag));
      if (f.findings.size() > before) return;
    }
    const Category cat = (e.vr == "DA" || e.vr == "DT" || e.vr == "TM") ? Category::date
                         : e.vr == "UI"                                  ? Category::uid
                                                                         : Category::header;
    add(f, ctx, cat, e.path, sev,
        named(tag) + " is still present with a value (the Basic Profile removes or replaces it)",
        e.value);
    return;
  }
  // Not in Table E.1-1.
  if (e.vr == "PN" && !looks_like_dummy("PN", e.value)) {
    add(f, ctx, Category::header, e.path, Severity::high, named(tag) + " holds a person name", e.value);
    return;
  }
  if ((is_text_vr(e.vr) || e.vr == "PN") && !machine_text(tag)) check_text(f, ctx, e, true, named(tag));
}

// File and folder names: identifying values of the dataset or the originals, dates, UIDs.
std::vector<bool> check_file_name(FileFacts& f, const Context& ctx) {
  std::vector<bool> masked;
  const fs::path rel(f.relative);
  static const std::regex date_re(
      "(^|[^0-9])(19[0-9]{2}|20[0-9]{2})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12][0-9]|3[01])([^0-9]|$)");
  static const std::regex uid_re("^[0-9]+(\\.[0-9]+){4,}");
  // The file's own identifying values (a name the dataset holds for another patient says
  // nothing about this file's folder); a file that is not DICOM is judged by the dataset's.
  deid::PhiValues own;
  for (const auto& e : f.elements) {
    const PhiKind kind = phi_kind(e);
    if (kind != PhiKind::none && !looks_like_dummy(e.vr, e.value)) add_phi(own, kind, e.value, f.encoding);
  }
  const deid::PhiValues& phi = f.dicom ? own : ctx.dataset_phi;
  for (const auto& component : rel) {
    const std::string c = component.string();
    bool mask = false;
    if (phi.names_in(c) || (ctx.has_against && ctx.original_phi.names_in(c))) {
      add(f, ctx, Category::filename, "", Severity::high,
          "a file or folder name holds a name, ID or date of the patient", c);
      mask = true;
    } else if (std::regex_search(c, date_re)) {
      add(f, ctx, Category::filename, "", Severity::medium, "a file or folder name holds a date", c);
      mask = true;
    } else if (std::regex_search(c, uid_re) && !c.starts_with("2.25.")) {
      std::string uid = c;
      if (uid.ends_with(".dcm") || uid.ends_with(".DCM")) uid.resize(uid.size() - 4);
      bool pseudonymous = false;
      for (const auto& root : ctx.options.uid_roots)
        if (!root.empty() && uid.starts_with(root)) pseudonymous = true;
      if (!pseudonymous) {
        add(f, ctx, Category::filename, "",
            ctx.original_uids.contains(uid) ? Severity::high : Severity::medium,
            "a file or folder name is a UID that is not pseudonymous", c);
        mask = true;
      }
    }
    masked.push_back(mask);
  }
  return masked;
}

// The relative name with each identifying component replaced by "<masked-N>", N numbering
// the distinct masked components in the order they are met (files are sorted), so files of
// different patients stay apart in a report without naming anyone.
std::string masked_name(const std::string& relative, const std::vector<bool>& masked,
                        std::map<std::string, std::size_t>& numbers) {
  std::string out;
  std::size_t i = 0;
  for (const auto& component : fs::path(relative)) {
    if (!out.empty()) out += "/";
    if (i < masked.size() && masked[i]) {
      const auto [it, added] = numbers.try_emplace(component.string(), numbers.size() + 1);
      out += "<masked-" + std::to_string(it->second) + ">";
    } else {
      out += component.string();
    }
    ++i;
  }
  return out;
}

std::string frame_list(const std::set<std::size_t>& frames) {
  std::string out;
  std::size_t shown = 0;
  for (const auto frame : frames) {
    if (++shown > 5) return out + ", ...";
    out += (out.empty() ? "" : ", ") + std::to_string(frame + 1);
  }
  return out;
}

void check_pixels(FileFacts& f, const Context& ctx) {
  const bool cleaned = f.declared.contains("113101");
  if (f.burned_in_yes && !cleaned)
    add(f, ctx, Category::pixels, tags::BurnedInAnnotation.to_string(), Severity::high,
        "Burned In Annotation is YES and no pixel cleaning is declared");
  if (!f.triage_reason) return;
  const auto& text = f.pixel_text;
  const std::string where = " (frame " + frame_list(text.frames) + ")";
  if (text.examined && text.error.empty()) {
    if (text.identifying > 0)
      add(f, ctx, Category::pixels, "", Severity::high,
          std::to_string(text.identifying) +
              " burned-in text region(s) read as a name, ID, date or institution" + where +
              (cleaned ? " though pixel cleaning is declared" : ""));
    if (text.unread > 0)
      add(f, ctx, Category::pixels, "", Severity::medium,
          std::to_string(text.unread) + " burned-in text region(s) that could not be read" +
              where + (cleaned ? " though pixel cleaning is declared" : ""));
    return;
  }
  if (cleaned || f.burned_in_yes) {
    if (!text.error.empty())  // a declaration that could not be checked is not trusted
      add(f, ctx, Category::pixels, "", Severity::medium,
          std::string(cleaned ? "pixel cleaning is declared" : "Burned In Annotation is YES") +
              " but the pixels could not be examined: " + text.error);
    return;
  }
  add(f, ctx, Category::pixels, "", Severity::medium,
      "the image may carry burned-in text (" + *f.triage_reason +
          ") and no pixel cleaning is declared" +
          (text.error.empty() ? "" : "; " + text.error));
}

// A face has a nose: a rendering with one is a visible face (high). Eye-like pits without a
// nose are what a publisher's cut often leaves (TCIA's defaced series): worth a look, not
// proof of a face (medium).
void add_face(FileFacts& f, const Context& ctx, const deface::FaceCheck& check,
              const std::string& what, const std::string& declared) {
  char relief[96];
  std::snprintf(relief, sizeof relief, "nose %.0f mm, eyes %.0f mm", check.nose_mm(), check.eyes_mm());
  if (check.nose_mm() >= deface::kNoseMm)
    add(f, ctx, Category::face, "", Severity::high,
        "a face is visible on a rendering of " + what + ": " + relief + declared);
  else
    add(f, ctx, Category::face, "", Severity::medium,
        "eye-like pits but no nose on a rendering of " + what + " (" + relief +
            "): the face looks cut away; look at its rendering (radguard deface --preview)" +
            declared);
}

void check_nifti(FileFacts& f, const Context& ctx) {
  for (const auto& [name, value] : f.nifti_text) {
    Element e;
    e.path = "NIfTI " + name;
    e.vr = "LO";
    e.value = value;
    check_text(f, ctx, e, true, "the NIfTI header's " + name);
  }
  for (const int code : f.nifti_extensions)
    if (code == 2 || code == 6)
      add(f, ctx, Category::header, "NIfTI extension", Severity::high,
          code == 2 ? "a NIfTI extension holds a DICOM header (the patient's attributes)"
                    : "a NIfTI extension holds a free-text comment");
    else
      add(f, ctx, Category::header, "NIfTI extension", Severity::medium,
          "a NIfTI extension (code " + std::to_string(code) + ") may carry text about the patient");
  if (f.nifti_face && f.nifti_face->face_found)
    add_face(f, ctx, *f.nifti_face, "the volume's surface", "");
}

void check_file(FileFacts& f, const Context& ctx) {
  if (f.nifti) return check_nifti(f, ctx);
  // A file that claims to be DICOM but could not be audited is not a clean file: a more
  // lenient reader may still show what it holds.
  if (!f.dicom && !f.error.empty() && f.error != "not DICOM")
    add(f, ctx, Category::integrity, "", Severity::high,
        "the file could not be audited: " + f.error);
  if (!f.dicom) return;
  find_standard_codes(f);
  for (const auto& e : f.elements) check_element(f, ctx, e);
  check_pixels(f, ctx);
  // Integrity: the writer.
  if (!f.manufacturer.empty() && f.impl_uid != kImplementationClassUid) {
    bool scanner = false;
    for (const auto m : kScannerMakers)
      if (f.manufacturer.starts_with(m) || f.manufacturer == trimmed(m)) scanner = true;
    if (scanner) {
      for (const auto& tool : kEditingTools) {
        const bool by_uid = !tool.uid_prefix.empty() && f.impl_uid.starts_with(tool.uid_prefix);
        const bool by_name = !tool.version_prefix.empty() && f.impl_version.starts_with(tool.version_prefix);
        if (by_uid || by_name) {
          add(f, ctx, Category::integrity, "(0002,0012)", Severity::low,
              "suspect: written by an editing tool (" + std::string(tool.name) +
                  ") though Manufacturer names a scanner");
          break;
        }
      }
    }
  }
  // Integrity: UID timestamps against content dates.
  if (!f.content_dates.empty()) {
    for (const Tag t : {tags::StudyInstanceUID, tags::SeriesInstanceUID, tags::SOPInstanceUID}) {
      const std::string uid = first_value(f.elements, t);
      for (const auto& d : uid_embedded_dates(uid)) {
        bool near = false;
        for (const auto& c : f.content_dates) {
          const int dy = std::abs(number(d.substr(0, 4)) - number(c.substr(0, 4)));
          if (dy == 0 && std::abs(number(d.substr(4, 4)) - number(c.substr(4, 4))) <= 101) near = true;
          if (dy == 1 && (d.substr(4, 4) == "0101" || c.substr(4, 4) == "0101")) near = true;
        }
        if (!near) {
          add(f, ctx, Category::integrity, t.to_string(), Severity::low,
              "suspect: the date inside " + named(t) + " disagrees with the content dates");
          break;
        }
      }
    }
  }
  if (f.signature_problem)
    add(f, ctx, Category::integrity, tags::DigitalSignaturesSequence.to_string(), Severity::high,
        "suspect: " + *f.signature_problem);
}


// ---- Series geometry ---------------------------------------------------------------------------

// A few images of a series whose size, spacing, orientation or frame of reference differ from
// all the others': an image spliced in from another acquisition. Only a clear minority (at
// most a fifth of a series of 5 or more) is flagged, so series that mix planes by design are
// left alone (localizers are not compared at all).
void check_series_geometry(std::vector<FileFacts>& files, const Context& ctx) {
  std::map<std::string, std::vector<std::size_t>> series;
  for (std::size_t i = 0; i < files.size(); ++i)
    if (!files[i].geometry.empty() && !files[i].series_uid.empty())
      series[files[i].series_uid].push_back(i);
  for (const auto& [uid, members] : series) {
    if (members.size() < 5) continue;
    std::map<std::string, std::size_t> counts;
    for (const auto i : members) ++counts[files[i].geometry];
    if (counts.size() < 2) continue;
    const auto usual = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
      return a.second < b.second;
    });
    for (const auto i : members) {
      const std::size_t n = counts[files[i].geometry];
      if (files[i].geometry == usual->first || n * 5 > members.size()) continue;
      add(files[i], ctx, Category::integrity, "", Severity::low,
          "suspect: its image size, pixel spacing, orientation or frame of reference differs "
          "from the other " + std::to_string(usual->second) + " images of its series");
    }
  }
}

// ---- Faces -------------------------------------------------------------------------------------

bool declares_defacing(const std::vector<FileFacts>& files, const std::vector<std::size_t>& members) {
  return std::all_of(members.begin(), members.end(),
                     [&](std::size_t i) { return files[i].declared.contains("113102"); });
}

// What the headers say (a head series and no defacing declared): Depth::headers, and, not
// trusting a declaration, when the series could not be examined at full depth.
enum class Declarations : std::uint8_t { trusted, unverified };
void declared_faces(std::vector<FileFacts>& files, const Context& ctx, Declarations declarations) {
  std::map<std::string, std::vector<std::size_t>> series;
  for (std::size_t i = 0; i < files.size(); ++i)
    if (files[i].head_series) series[files[i].series_uid].push_back(i);
  for (const auto& [uid, members] : series) {
    const bool declared = declares_defacing(files, members);
    if (declared && declarations == Declarations::trusted) continue;
    add(files[members.front()], ctx, Category::face, "", Severity::medium,
        "head CT/MR series (" + std::to_string(members.size()) + " files): " +
            (declared ? "defacing is declared but the head could not be examined"
                      : "a face may be recognisable and no defacing is declared"));
  }
}


// Depth::full: every CT/MR image series assembled as `radguard deface` assembles it; each head
// is rendered and its surface measured for a nose and a pair of eyes (deface::face_evidence),
// whatever the headers declare: a defacing someone else did is checked, not trusted.
void examine_faces(std::vector<FileFacts>& files, const Context& ctx, unsigned threads) {
  std::vector<fs::path> candidates;
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& mod = files[i].quasi[modality];
    if (!files[i].dicom || files[i].pixel_hash.empty() || (mod != "CT" && mod != "MR")) continue;
    candidates.emplace_back(files[i].input);
    index_of[fs::path(files[i].input).lexically_normal().string()] = i;
  }
  if (candidates.empty()) return;
  deface::SeriesOptions series_options;
  series_options.work = deface::SeriesWork::examine;
  series_options.threads = threads;
  const auto examined = deface::deface_dicom_series(candidates, {}, series_options);
  if (!examined) {
    declared_faces(files, ctx, Declarations::unverified);
    return;
  }
  for (const auto& series : examined->series()) {
    std::vector<std::size_t> members;
    for (const auto& path : series.files)
      if (const auto it = index_of.find(path.lexically_normal().string()); it != index_of.end())
        members.push_back(it->second);
    if (members.empty()) continue;
    const bool declared = declares_defacing(files, members);
    const std::string count = " (" + std::to_string(members.size()) + " files)";
    if (series.outcome == deface::SeriesOutcome::examined && series.evidence &&
        series.evidence->face_found) {
      add_face(files[members.front()], ctx, *series.evidence, "the head's surface" + count,
               declared ? "; defacing is declared but did not remove it" : "; no defacing declared");
    } else if (series.outcome == deface::SeriesOutcome::refused) {
      add(files[members.front()], ctx, Category::face, "", Severity::medium,
          "CT/MR series" + count + " that may show a face and could not be examined (" +
              series.reason + ")" +
              (declared ? "; the defacing it declares could not be verified"
                        : "; no defacing declared"));
    } else if (series.outcome == deface::SeriesOutcome::examined && !declared) {
      add(files[members.front()], ctx, Category::face, "", Severity::low,
          "head CT/MR series" + count +
              ": no nose or eyes on a rendering of its surface; no defacing declared");
    }
  }
}

// ---- Quasi-identifiers -------------------------------------------------------------------------

using Record = std::array<std::string, 10>;

struct Generalisation {
  std::string_view name;
  void (*apply)(Record&);
};

std::string band(const std::string& v, int width) {
  if (v.empty() || !all_digits(v)) return v;
  const int n = number(v) / width * width;
  return std::to_string(n) + "-" + std::to_string(n + width - 1);
}

const std::vector<Generalisation>& generalisations() {
  static const std::vector<Generalisation> list = {
      {"age in 5-year bands", [](Record& r) { r[age] = band(r[age], 5); }},
      {"age in 10-year bands", [](Record& r) { r[age] = band(r[age], 10); }},
      {"study year only", [](Record& r) { r[study_month] = r[study_month].substr(0, 4); }},
      {"drop the model (manufacturer only)",
       [](Record& r) { r[scanner] = r[scanner].substr(0, r[scanner].find('|')); }},
      {"drop the station", [](Record& r) { r[station].clear(); }},
      {"drop the institution", [](Record& r) { r[institution].clear(); }},
      {"height and weight in 10-unit bands", [](Record& r) {
         r[height] = band(r[height], 10);
         r[weight] = band(r[weight], 10);
       }},
      {"drop the body part", [](Record& r) { r[body_part].clear(); }},
      {"drop the study date", [](Record& r) { r[study_month].clear(); }},
      {"drop the manufacturer", [](Record& r) { r[scanner].clear(); }},
      {"drop height and weight", [](Record& r) { r[height].clear(); r[weight].clear(); }},
      {"drop the age", [](Record& r) { r[age].clear(); }},
      {"drop the sex", [](Record& r) { r[sex].clear(); }},
      {"drop the modality", [](Record& r) { r[modality].clear(); }},
  };
  return list;
}

std::string class_key(const Record& r, int skip = -1) {
  std::string key;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (static_cast<int>(i) != skip) key += r[i];
    key += '\x1f';
  }
  return key;
}

// Class size of every record.
std::vector<std::size_t> class_sizes(const std::vector<Record>& records, int skip = -1) {
  std::unordered_map<std::string, std::size_t> counts;
  std::vector<std::string> keys;
  keys.reserve(records.size());
  for (const auto& r : records) keys.push_back(class_key(r, skip));
  for (const auto& k : keys) ++counts[k];
  std::vector<std::size_t> out;
  out.reserve(records.size());
  for (const auto& k : keys) out.push_back(counts[k]);
  return out;
}

std::size_t below(const std::vector<std::size_t>& sizes, std::size_t k) {
  return static_cast<std::size_t>(
      std::count_if(sizes.begin(), sizes.end(), [&](std::size_t s) { return s < k; }));
}

KAnonymity k_anonymity(const std::vector<Record>& records, std::size_t k,
                       std::vector<std::size_t>& sizes_out) {
  KAnonymity out;
  out.k = k;
  out.patients = records.size();
  for (std::size_t a = 0; a < kQuasiNames.size(); ++a)
    if (std::any_of(records.begin(), records.end(), [&](const Record& r) { return !r[a].empty(); }))
      out.attributes.emplace_back(kQuasiNames[a]);
  sizes_out = class_sizes(records);
  if (records.empty()) return out;
  out.smallest_k = *std::min_element(sizes_out.begin(), sizes_out.end());
  out.unique = static_cast<std::size_t>(std::count(sizes_out.begin(), sizes_out.end(), 1U));
  out.below_k = below(sizes_out, k);
  {
    std::unordered_map<std::string, std::size_t> counts;
    for (const auto& r : records) ++counts[class_key(r)];
    for (const auto& [key, n] : counts) ++out.class_sizes[n];
  }
  if (out.below_k == 0) return out;
  for (std::size_t a = 0; a < kQuasiNames.size(); ++a) {
    const auto without = class_sizes(records, static_cast<int>(a));
    std::size_t lifted = 0;
    for (std::size_t i = 0; i < records.size(); ++i)
      if (sizes_out[i] < k && without[i] >= k) ++lifted;
    if (lifted > 0) out.lifted_without[std::string(kQuasiNames[a])] = lifted;
  }
  // Greedy: the generalisation that leaves the fewest patients below k, until none are.
  std::vector<Record> current = records;
  std::vector<bool> used(generalisations().size(), false);
  std::size_t now = out.below_k;
  const auto classes = [](const std::vector<Record>& rs) {
    std::unordered_set<std::string> keys;
    for (const auto& r : rs) keys.insert(class_key(r));
    return keys.size();
  };
  std::size_t now_classes = classes(current);
  while (now > 0) {
    // The step leaving the fewest patients below k; when none lowers that count (merging
    // may take several steps), the one that merges the most classes.
    std::size_t best = generalisations().size(), best_below = now, best_classes = now_classes;
    for (std::size_t g = 0; g < generalisations().size(); ++g) {
      if (used[g]) continue;
      auto trial = current;
      for (auto& r : trial) generalisations()[g].apply(r);
      if (trial == current) continue;
      const std::size_t b = below(class_sizes(trial), k);
      const std::size_t c = classes(trial);
      if (b < best_below || (b == best_below && c < best_classes)) {
        best_below = b;
        best_classes = c;
        best = g;
      }
    }
    now_classes = best_classes;
    if (best == generalisations().size()) break;
    used[best] = true;
    for (auto& r : current) generalisations()[best].apply(r);
    now = best_below;
    out.suggestion.emplace_back(std::string(generalisations()[best].name), now);
  }
  return out;
}

// ---- The originals (--against) -----------------------------------------------------------------

struct Originals {
  deid::PhiValues phi;
  std::unordered_set<std::string> uids;
  std::unordered_set<std::string> dates;
  std::size_t files = 0;
};

Result<Originals> read_originals(std::span<const fs::path> against) {
  Originals out;
  const batch::InputSet found = batch::find_files(against);
  if (!found.missing.empty())
    return fail(ErrorCode::io, "--against: cannot read " + found.missing.front().path.string());
  for (const auto& path : found.files) {
    auto file = dicom::DicomFile::open(path);
    if (!file) continue;
    ++out.files;
    const auto enc = deid::encoding_for(file->string_of(tags::SpecificCharacterSet).value_or(""));
    for (const auto& e : read_elements(*file)) {
      const std::string v = trimmed(e.value);
      if (v.empty()) continue;
      if (e.vr == "UI" && !v.starts_with("1.2.840.10008.")) {
        const auto* row = standard::find_profile_row(e.tag);
        if (row == nullptr || is_uid_action(row->basic) || e.tag.is_private()) {
          std::size_t s = 0;
          while (s <= v.size()) {
            std::size_t b = v.find('\\', s);
            if (b == std::string::npos) b = v.size();
            if (b > s) out.uids.insert(v.substr(s, b - s));
            s = b + 1;
          }
        }
        continue;
      }
      if ((e.vr == "DA" || e.vr == "DT") && v.size() >= 8 && !looks_like_dummy(e.vr, v)) {
        out.dates.insert(std::to_string(e.tag.key()) + "|" + v.substr(0, 8));
        if (e.vr == "DA" && (e.tag == tags::PatientBirthDate || e.tag == tags::StudyDate))
          out.phi.add_date(v.substr(0, 8));
        continue;
      }
      if (looks_like_dummy(e.vr, v)) continue;
      add_phi(out.phi, phi_kind(e), e.value, enc);
    }
  }
  return out;
}

}  // namespace

// ---- The run -----------------------------------------------------------------------------------

Result<Report> audit(std::span<const fs::path> inputs, const Options& options) {
  if (inputs.empty()) return fail(ErrorCode::usage, "nothing to audit");
  Originals originals;
  if (!options.against.empty()) {
    auto read = read_originals(options.against);
    if (!read) return std::unexpected(read.error());
    originals = std::move(*read);
  }
  const auto trust = dicom::TrustStore::load({});
  if (!trust) return std::unexpected(trust.error());

  // Every file, named relative to the input it was found under.
  std::vector<FileFacts> files;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (!fs::exists(input, ec)) return fail(ErrorCode::io, "cannot read " + input.string());
    const fs::path one[] = {input};
    const batch::InputSet found = batch::find_files(one);
    if (!found.missing.empty())
      return fail(ErrorCode::io, "cannot read " + found.missing.front().path.string());
    const bool folder = fs::is_directory(input, ec);
    for (const auto& path : found.files) {
      FileFacts f;
      f.input = path;
      f.relative = folder ? fs::path(path).lexically_relative(fs::absolute(input).lexically_normal()).string()
                          : fs::path(path).filename().string();
      if (f.relative.empty() || f.relative.starts_with(".."))
        f.relative = fs::path(path).filename().string();
      files.push_back(std::move(f));
    }
  }
  // Nothing to audit is not a clean dataset: a mistyped folder must not pass a release check.
  if (files.empty()) return fail(ErrorCode::not_found, "no file to audit under the inputs given");
  const unsigned threads = batch::default_threads(options.threads);
  batch::run_parallel(
      files.size(), threads, [&](std::size_t i) { read_file(files[i], *trust, options.depth); },
      [&](std::size_t i, const std::string&) { files[i].error = "cannot be read"; });

  // The dataset's own identifying values (real ones only).
  deid::PhiValues dataset_phi;
  for (const auto& f : files)
    for (const auto& e : f.elements) {
      const PhiKind kind = phi_kind(e);
      if (kind == PhiKind::none || looks_like_dummy(e.vr, e.value)) continue;
      add_phi(dataset_phi, kind, e.value, f.encoding);
    }
  VerdictCache cache;
  const Context ctx{cache, options, dataset_phi, originals.phi, originals.uids, originals.dates,
                    !options.against.empty()};
  std::vector<std::vector<bool>> masks(files.size());
  batch::run_parallel(
      files.size(), threads,
      [&](std::size_t i) {
        masks[i] = check_file_name(files[i], ctx);
        check_file(files[i], ctx);
      },
      [&](std::size_t i, const std::string&) { files[i].error = "cannot be checked"; });

  // Dataset-level: faces, identical pixel data, quasi-identifiers.
  if (options.depth == Depth::full) examine_faces(files, ctx, threads);
  else declared_faces(files, ctx, Declarations::trusted);
  check_series_geometry(files, ctx);
  {
    std::map<std::string, std::vector<std::size_t>> by_hash;
    for (std::size_t i = 0; i < files.size(); ++i)
      if (!files[i].pixel_hash.empty()) by_hash[files[i].pixel_hash].push_back(i);
    for (const auto& [hash, members] : by_hash) {
      if (members.size() < 2) continue;
      std::set<std::string> patients, studies;
      for (const auto i : members) {
        patients.insert(files[i].patient_key);
        studies.insert(files[i].study_uid);
      }
      if (patients.size() < 2 && studies.size() < 2) continue;
      for (const auto i : members)
        add(files[i], ctx, Category::integrity, tags::PixelData.to_string(), Severity::medium,
            "suspect: identical pixel data in " + std::to_string(members.size() - 1) +
                " other file(s) under " +
                (patients.size() > 1 ? "another patient" : "another study"));
    }
  }
  Report report;
  {
    std::map<std::string, std::size_t> first_of_patient;
    std::vector<Record> records;
    std::vector<std::size_t> owner;
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (!files[i].dicom || files[i].elements.empty()) continue;
      std::string key = files[i].patient_key;
      if (key.empty()) key = "study:" + files[i].study_uid;
      if (key == "study:") key = "file:" + files[i].input;
      if (first_of_patient.contains(key)) continue;
      first_of_patient[key] = i;
      records.push_back(files[i].quasi);
      owner.push_back(i);
    }
    std::vector<std::size_t> sizes;
    report.k_anonymity = k_anonymity(records, options.k, sizes);
    std::string attributes;
    for (const auto& a : report.k_anonymity.attributes) attributes += (attributes.empty() ? "" : ", ") + a;
    for (std::size_t p = 0; p < records.size(); ++p) {
      if (sizes[p] >= options.k) continue;
      add(files[owner[p]], ctx, Category::quasi_identifier, "",
          sizes[p] == 1 ? Severity::medium : Severity::low,
          "the patient's combination of " + attributes + " is shared by " +
              std::to_string(sizes[p]) + " patient(s) of the dataset (below k=" +
              std::to_string(options.k) + ")");
    }
  }

  report.against_files = originals.files;
  report.depth = options.depth;
  report.show_values = options.show_values;
  std::map<std::string, std::size_t> mask_numbers;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto& f = files[i];
    const std::string name =
        options.show_values == ShowValues::yes ? f.relative
                                               : masked_name(f.relative, masks[i], mask_numbers);
    FileSummary summary;
    summary.file = name;
    summary.error = f.error;
    if (f.dicom) ++report.dicom_files;
    else if (f.nifti) ++report.nifti_files;
    else ++report.other_files;
    for (auto& finding : f.findings) {
      finding.file = name;
      if (finding.severity == Severity::high) ++summary.high;
      else if (finding.severity == Severity::medium) ++summary.medium;
      else ++summary.low;
      report.findings.push_back(std::move(finding));
    }
    report.files.push_back(std::move(summary));
  }
  std::stable_sort(report.findings.begin(), report.findings.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.file, a.category, a.path) < std::tie(b.file, b.category, b.path);
  });
  return report;
}

// ---- Reports -----------------------------------------------------------------------------------

namespace {

nlohmann::json k_json(const KAnonymity& k) {
  nlohmann::json j{{"k", k.k},
                   {"attributes", k.attributes},
                   {"patients", k.patients},
                   {"smallest_k", k.smallest_k},
                   {"unique", k.unique},
                   {"below_k", k.below_k}};
  j["lifted_without"] = nlohmann::json::object();
  for (const auto& [a, n] : k.lifted_without) j["lifted_without"][a] = n;
  j["class_sizes"] = nlohmann::json::object();
  for (const auto& [size, n] : k.class_sizes) j["class_sizes"][std::to_string(size)] = n;
  j["suggestion"] = nlohmann::json::array();
  for (const auto& [step, left] : k.suggestion)
    j["suggestion"].push_back({{"generalise", step}, {"patients_below_k_after", left}});
  return j;
}

}  // namespace

std::string report_json(const Report& report) {
  nlohmann::json j;
  j["radguard_audit"] = 1;
  j["radguard_version"] = std::string(kVersion);
  nlohmann::json summary{{"files", report.files.size()},
                         {"depth", report.depth == Depth::headers ? "headers" : "full"},
                         {"dicom_files", report.dicom_files},
                         {"nifti_files", report.nifti_files},
                         {"other_files", report.other_files},
                         {"against_files", report.against_files},
                         {"findings", report.findings.size()},
                         {"high", report.count(Severity::high)},
                         {"medium", report.count(Severity::medium)},
                         {"low", report.count(Severity::low)}};
  nlohmann::json by_category = nlohmann::json::object();
  for (std::size_t c = 0; c < kCategoryCount; ++c)
    by_category[std::string(to_string(static_cast<Category>(c)))] = report.count(static_cast<Category>(c));
  summary["by_category"] = by_category;
  j["summary"] = summary;
  j["k_anonymity"] = k_json(report.k_anonymity);
  j["files"] = nlohmann::json::array();
  for (const auto& f : report.files) {
    nlohmann::json one{{"file", f.file}, {"high", f.high}, {"medium", f.medium}, {"low", f.low}};
    if (!f.error.empty()) one["error"] = f.error;
    j["files"].push_back(one);
  }
  j["findings"] = nlohmann::json::array();
  for (const auto& f : report.findings) {
    nlohmann::json one{{"file", f.file},
                       {"category", std::string(to_string(f.category))},
                       {"path", f.path},
                       {"severity", std::string(to_string(f.severity))},
                       {"reason", f.reason}};
    if (!f.value.empty()) one["value"] = f.value;
    j["findings"].push_back(one);
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string report_text(const Report& report) {
  std::ostringstream out;
  out << "audit: " << report.files.size() << " files (" << report.dicom_files << " DICOM, "
      << report.nifti_files << " NIfTI, "
      << report.other_files << " other): " << report.count(Severity::high) << " high, "
      << report.count(Severity::medium) << " medium, " << report.count(Severity::low)
      << " low findings\n";
  if (report.depth == Depth::headers)
    out << "headers only (--depth headers): faces and burned-in text were not examined\n";
  for (std::size_t c = 0; c < kCategoryCount; ++c) {
    const auto n = report.count(static_cast<Category>(c));
    if (n > 0) out << "  " << to_string(static_cast<Category>(c)) << ": " << n << "\n";
  }
  const auto& k = report.k_anonymity;
  out << "k-anonymity over " << k.patients << " patients";
  if (!k.attributes.empty()) {
    out << " (";
    for (std::size_t i = 0; i < k.attributes.size(); ++i) out << (i ? ", " : "") << k.attributes[i];
    out << ")";
  }
  out << ": smallest k " << k.smallest_k << ", " << k.unique << " unique, " << k.below_k
      << " below k=" << k.k << "\n";
  for (const auto& [a, n] : k.lifted_without)
    out << "  without " << a << ": " << n << " of them reach k\n";
  for (const auto& [step, left] : k.suggestion)
    out << "  suggest: " << step << " -> " << left << " below k\n";
  for (const auto& f : report.findings) {
    out << f.file << ": " << to_string(f.severity) << " " << to_string(f.category);
    if (!f.path.empty()) out << " " << f.path;
    out << ": " << f.reason;
    if (!f.value.empty()) out << " [" << f.value << "]";
    out << "\n";
  }
  for (const auto& f : report.files)
    if (!f.error.empty()) out << f.file << ": not audited (" << f.error << ")\n";
  return out.str();
}

std::string report_html(const Report& report) {
  std::ostringstream h;
  const auto bar = [&](std::string_view label, std::size_t n, std::size_t max, std::string_view colour) {
    const double width = max == 0 ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(max);
    h << "<tr><td>" << html_escaped(label) << "</td><td class=bar><div style=\"width:" << width
      << "%;background:" << colour << "\"></div></td><td class=n>" << n << "</td></tr>\n";
  };
  h << "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>radguard audit</title>\n"
       "<style>body{font:14px/1.4 sans-serif;margin:2em;color:#222;max-width:70em}"
       "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}"
       "table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;vertical-align:top}"
       "table.list td,table.list th{border-bottom:1px solid #ddd}"
       "td.bar{width:22em}td.bar div{height:1em;min-width:1px}td.n{text-align:right}"
       ".high{color:#fff;background:#b00020;padding:0 .4em;border-radius:3px}"
       ".medium{color:#000;background:#f4b400;padding:0 .4em;border-radius:3px}"
       ".low{color:#fff;background:#607d8b;padding:0 .4em;border-radius:3px}"
       ".cards{display:flex;gap:1em}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1.2em}"
       ".card b{display:block;font-size:1.6em}code{font-size:.95em;white-space:nowrap}</style></head><body>\n";
  h << "<h1>radguard audit</h1>\n<p>" << report.files.size() << " files read ("
    << report.dicom_files << " DICOM, " << report.nifti_files << " NIfTI, " << report.other_files
    << " other). "
    << (report.depth == Depth::headers
            ? "<b>Headers only: faces and burned-in text were not examined.</b> "
            : "")
    << (report.show_values == ShowValues::yes
            ? "<b>This report shows identifying values: keep it private.</b>"
            : "Values are not shown in this report.")
    << "</p>\n";
  h << "<div class=cards><div class=card><b>" << report.count(Severity::high)
    << "</b><span class=high>high</span></div><div class=card><b>" << report.count(Severity::medium)
    << "</b><span class=medium>medium</span></div><div class=card><b>" << report.count(Severity::low)
    << "</b><span class=low>low</span></div><div class=card><b>" << report.k_anonymity.smallest_k
    << "</b>smallest k</div></div>\n";
  h << "<h2>Findings by category</h2><table>\n";
  std::size_t max = 0;
  for (std::size_t c = 0; c < kCategoryCount; ++c) max = std::max(max, report.count(static_cast<Category>(c)));
  for (std::size_t c = 0; c < kCategoryCount; ++c)
    bar(to_string(static_cast<Category>(c)), report.count(static_cast<Category>(c)), max, "#3f51b5");
  h << "</table>\n";
  const auto& k = report.k_anonymity;
  h << "<h2>Quasi-identifiers (k-anonymity)</h2>\n<p>" << k.patients << " patients over ";
  for (std::size_t i = 0; i < k.attributes.size(); ++i) h << (i ? ", " : "") << html_escaped(k.attributes[i]);
  if (k.attributes.empty()) h << "no quasi-identifier";
  h << ": smallest k <b>" << k.smallest_k << "</b>, " << k.unique << " unique, " << k.below_k
    << " below k=" << k.k << ".</p>\n<table><tr><th>class size</th><th>classes</th><th></th></tr>\n";
  std::size_t max_classes = 0;
  for (const auto& [size, n] : k.class_sizes) max_classes = std::max(max_classes, n);
  for (const auto& [size, n] : k.class_sizes)
    bar(std::to_string(size), n, max_classes, size < k.k ? "#b00020" : "#2e7d32");
  h << "</table>\n";
  if (!k.suggestion.empty()) {
    h << "<p>Suggested generalisation, in order:</p><ol>\n";
    for (const auto& [step, left] : k.suggestion)
      h << "<li>" << html_escaped(step) << " (then " << left << " patients below k)</li>\n";
    h << "</ol>\n";
  }
  h << "<h2>Files</h2><table class=list><tr><th>file</th><th>high</th><th>medium</th><th>low</th><th></th></tr>\n";
  for (const auto& f : report.files) {
    if (f.high + f.medium + f.low == 0 && f.error.empty()) continue;
    h << "<tr><td><code>" << html_escaped(f.file) << "</code></td><td>" << f.high << "</td><td>"
      << f.medium << "</td><td>" << f.low << "</td><td>" << html_escaped(f.error) << "</td></tr>\n";
  }
  h << "</table>\n<h2>Findings</h2><table class=list><tr><th>file</th><th>severity</th><th>category</th>"
       "<th>attribute</th><th>reason</th></tr>\n";
  for (const auto& f : report.findings) {
    h << "<tr><td><code>" << html_escaped(f.file) << "</code></td><td><span class="
      << to_string(f.severity) << ">" << to_string(f.severity) << "</span></td><td>"
      << to_string(f.category) << "</td><td><code>" << html_escaped(f.path) << "</code></td><td>"
      << html_escaped(f.reason);
    if (!f.value.empty()) h << " <code>" << html_escaped(f.value) << "</code>";
    h << "</td></tr>\n";
  }
  h << "</table>\n</body></html>\n";
  return h.str();
}

}  // namespace radguard::audit
