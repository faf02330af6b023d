#pragma once
// radguard audit: measures what could still identify a patient in a dataset, changing
// nothing. Reads every DICOM file under the inputs (headers; the pixel data only to hash
// it), and reports one finding per problem:
//
//   header            an attribute the Basic Profile removes or replaces (under the options
//                     the dataset declares in De-identification Method Code Sequence) still
//                     holding a real value; a person name anywhere
//   private           a private attribute not safe-listed (Table E.3.10-1) for its creator
//   free-text         free text holding names, IDs, dates, phone numbers, e-mail or street
//                     addresses: by pattern (the scrubber of src/deid), and by the identifying
//                     values of the dataset's own headers or of --against originals
//   uid               UIDs that are not pseudonymous (not under 2.25 or a releaser's root),
//                     UIDs that embed a date or time, original UIDs (--against)
//   date              dates equal to the originals' (--against), ages over 89
//   filename          file or folder names holding identifying values or dates
//   pixels            images that may carry burned-in text: header triage of src/redact, then
//                     (Depth::full) its text detector and reader, as `radguard redact --mode
//                     report` sees them: text that reads as a name, ID or date, text that
//                     cannot be read
//   face              head CT/MR series: (Depth::full) a face on a rendering of the head's
//                     surface (the geometric evidence of src/deface: a nose, a pair of eyes),
//                     whether or not defacing is declared; (Depth::headers) no defacing declared
//   quasi-identifier  patients whose combination of age, sex, study month, modality,
//                     scanner, station, institution, body part, height and weight is shared
//                     by fewer than k patients
//   integrity         "suspect" flags: an editing tool's meta header on a scanner's image,
//                     UID timestamps disagreeing with content dates, identical pixel data
//                     under different patients or studies, signatures present but invalid
//
// NIfTI-1 volumes (.nii, .nii.gz) are audited too: the header's free-text fields (descrip,
// aux_file, intent_name, db_name, data_type) as free text, extensions (a DICOM header or a
// comment: high), and (Depth::full) a face on the volume's surface.
//
// Values are never part of a finding unless ShowValues::yes: reports can travel. File names
// in findings are relative to the input they were found under, with every component that
// holds an identifying value masked as "<masked-N>" (unless ShowValues::yes).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace radguard::audit {

enum class Category : std::uint8_t {
  header,
  private_attribute,
  free_text,
  uid,
  date,
  filename,
  pixels,
  face,
  quasi_identifier,
  integrity,
};
inline constexpr std::size_t kCategoryCount = 10;
// "header", "private", "free-text", "uid", "date", "filename", "pixels", "face",
// "quasi-identifier", "integrity".
std::string_view to_string(Category category);

enum class Severity : std::uint8_t { low, medium, high };
std::string_view to_string(Severity severity);

enum class ShowValues : std::uint8_t { no, yes };

// How far the audit looks. `headers` reads headers only (the speed of `radguard deid`); `full`
// (the default) also examines the pixels: burned-in text with the text detector on images the
// header triage picks, and a face on every head CT/MR series.
enum class Depth : std::uint8_t { headers, full };
[[nodiscard]] Result<Depth> parse_depth(std::string_view text);

// When the audit's exit status says "failed".
enum class FailOn : std::uint8_t { high, medium, never };
[[nodiscard]] Result<FailOn> parse_fail_on(std::string_view text);

struct Finding {
  std::string file;  // relative to the audited input, identifying components masked
  Category category = Category::header;
  std::string path;  // attribute path, e.g. "(0040,A730)[0]/(0040,A160)"; "" for none
  Severity severity = Severity::medium;
  std::string reason;  // fixed phrases and attribute names only, never a value
  std::string value;   // the offending value: filled only with ShowValues::yes
};

struct Options {
  std::size_t k = 5;
  Depth depth = Depth::full;
  ShowValues show_values = ShowValues::no;
  // UID roots a releaser writes under besides 2.25 (e.g. "1.2.826.0.1.3680043.10.999").
  std::vector<std::string> uid_roots;
  // Originals the dataset was made from: every identifying value, date and UID of theirs
  // found in the dataset is a high-severity finding.
  std::vector<std::filesystem::path> against;
  unsigned threads = 0;  // 0: one per core
};

// The equivalence classes of the patients over the quasi-identifiers.
struct KAnonymity {
  std::vector<std::string> attributes;  // the quasi-identifiers present in the dataset
  std::size_t patients = 0;
  std::size_t smallest_k = 0;  // 0 when there are no patients
  std::size_t unique = 0;      // patients alone in their class
  std::size_t below_k = 0;     // patients in classes smaller than k
  std::size_t k = 5;
  // Per attribute: how many of the patients below k would reach k with it left out.
  std::map<std::string, std::size_t> lifted_without;
  // Class size -> number of classes of that size.
  std::map<std::size_t, std::size_t> class_sizes;
  // Generalisations, in the order to apply them, and the patients still below k after each.
  std::vector<std::pair<std::string, std::size_t>> suggestion;
};

struct FileSummary {
  std::string file;
  std::size_t high = 0, medium = 0, low = 0;
  std::string error;  // set when the file could not be read as DICOM
};

struct Report {
  std::vector<Finding> findings;  // sorted by file, then category, then path
  std::vector<FileSummary> files;
  KAnonymity k_anonymity;
  std::size_t dicom_files = 0;
  std::size_t nifti_files = 0;  // NIfTI-1 volumes (header text fields, extensions, face)
  std::size_t other_files = 0;  // neither (listed in `files` with an error)
  std::size_t against_files = 0;
  ShowValues show_values = ShowValues::no;  // whether findings carry values
  Depth depth = Depth::full;  // Depth::headers: faces and burned-in text were not examined
  std::size_t count(Severity severity) const;
  std::size_t count(Category category) const;
};

// Audits every file under `inputs` (files or folders). Fails only for an impossible request
// (no inputs: ErrorCode::usage; an --against folder that cannot be read: ErrorCode::io);
// a file that cannot be read is reported in the file summaries. Thread-safe.
[[nodiscard]] Result<Report> audit(std::span<const std::filesystem::path> inputs,
                                   const Options& options);

std::string report_json(const Report& report);
std::string report_text(const Report& report);
// A self-contained HTML page (no external assets): summary, charts, findings.
std::string report_html(const Report& report);

// 0 when nothing at or above the threshold was found, 1 otherwise (FailOn::never: always 0).
int exit_status(const Report& report, FailOn fail_on);

// ---- Pieces, exposed for tests ---------------------------------------------------------------

// Whether a value looks like a stand-in rather than a real value (empty, ANONYMIZED,
// 19000101, zeros, radguard's RG pseudonyms, 2.25 UIDs...). `vr` is the element's VR.
bool looks_like_dummy(std::string_view vr, std::string_view value);
// Dates (YYYYMMDD) and Unix times embedded in a UID's components; empty when none.
std::vector<std::string> uid_embedded_dates(std::string_view uid);

}  // namespace radguard::audit
