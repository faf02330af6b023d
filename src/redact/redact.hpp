#pragma once
// The pixel stage of de-identification (PS3.15 Clean Pixel Data, CID 7050 code 113101): finds
// text burned into pixel data with OCR and blacks it out. No OpenCV or Tesseract type crosses
// this interface.
//
// Entry points:
//   triage()      decides from the header alone whether an image needs OCR at all;
//   redact_file() cleans one open DicomFile in memory (the step `radguard deid` can call
//                 before its header stage, while the original identifying values are there);
//   run_redact()  the batch behind `radguard redact`.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "batch/batch.hpp"
#include "core/atomic_file.hpp"
#include "core/result.hpp"
#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"

namespace radguard::redact {

enum class Mode : std::uint8_t {
  all_text,  // every word found is redacted
  phi_text,  // words matching this patient's identifying values, dates and ID-like tokens
  report,    // find and report only; nothing is written
};
Result<Mode> parse_mode(std::string_view text);
std::string_view mode_name(Mode mode);

// A rectangle in image pixels (x, y of the top-left corner).
struct Box {
  int x = 0, y = 0, width = 0, height = 0;
  bool empty() const { return width <= 0 || height <= 0; }
};

// Why a box was redacted. Reports carry this, never the words themselves.
enum class Category : std::uint8_t {
  rule,          // a region of a known screen layout (rule file)
  name,          // a name from the header (patient, physicians, operators)
  id,            // an identifier from the header (patient ID, accession number, ...)
  date,          // a date from the header, in any common format
  institution,   // institution name or address words
  date_pattern,  // anything shaped like a date
  id_pattern,    // anything shaped like an identifier
  text,          // any text (all-text mode)
  unread,        // text the detector found that could not be read with confidence (fail closed)
};
std::string_view category_name(Category category);

struct Redaction {
  std::size_t frame = 0;
  Box box;  // as filled (margin included), clipped to the image
  Category category = Category::text;
};

// ---- Triage --------------------------------------------------------------------------------

// The header attributes triage looks at (trimmed strings; empty when absent).
struct HeaderFacts {
  std::string modality, burned_in_annotation, image_type, sop_class_uid, manufacturer, model;
  unsigned rows = 0, columns = 0, samples_per_pixel = 1;
  bool has_pixel_data = false;
};
HeaderFacts header_facts(const dicom::DicomFile& file);

enum class TriageVerdict : std::uint8_t { ocr, skip };
struct Triage {
  TriageVerdict verdict = TriageVerdict::ocr;
  std::string reason;  // a fixed phrase, no attribute values beyond modality and image type
};
// Never fails; pure and thread-safe.
Triage triage(const HeaderFacts& facts);

// ---- Rules for known screen layouts ---------------------------------------------------------

// A rule file (JSON, radguard's own format):
//   {"radguard_redaction_rules": 1,
//    "rules": [{"name": "ACME US v2",
//               "match": {"manufacturer": "ACME", "model": "Sono", "rows": 480, "columns": 640,
//                         "image_type": "SECONDARY"},
//               "regions": [{"x": 0, "y": 0, "width": 640, "height": 40}]}]}
// Every key under "match" is optional; strings match case-insensitively as substrings.
struct Rule {
  std::string name, manufacturer, model, image_type;
  unsigned rows = 0, columns = 0;  // 0: any
  std::vector<Box> regions;
};
struct RuleSet {
  std::vector<Rule> rules;
  // Parses a rule file's text. Fails with ErrorCode::usage naming what is wrong.
  static Result<RuleSet> parse(std::string_view json_text);
  // Reads and parses a rule file. Fails with ErrorCode::io or ErrorCode::usage.
  static Result<RuleSet> load(const std::filesystem::path& path);
  // The regions of every rule matching `facts`.
  std::vector<Box> regions_for(const HeaderFacts& facts) const;
};

// ---- PHI matching ---------------------------------------------------------------------------

// The identifying values of one object's original header, prepared for tolerant matching of
// OCR output. Immutable after construction; thread-safe to use.
class PhiMatcher {
 public:
  static PhiMatcher from_header(const dicom::DicomFile& file);
  // For tests and tools: an explicit token list.
  void add(std::string_view value, Category category);
  // The category of the first identifying value or pattern `word` matches, allowing OCR
  // errors (edit distance 1 for tokens of 4+ characters, 2 for 8+, common glyph
  // confusions); nullopt when it matches none.
  std::optional<Category> match(std::string_view word) const;
  // For readings the OCR engine itself doubts: header values of 6+ characters match with
  // up to a third of their characters wrong.
  std::optional<Category> match_loosely(std::string_view word) const;
  // The same for short header values (3-5 characters, "DOE" read as "DOB"): one glyph wrong.
  std::optional<Category> match_short_loosely(std::string_view word) const;
  // When `word` matches only as a piece of a longer value: the value's length over the
  // word's (how much wider the value is on screen); 1 otherwise.
  double fragment_ratio(std::string_view word) const;
  // Whether `word` (3+ letters or digits) is a piece of a header value ("LIN" of LINDQVIST):
  // beside an identifying word such a reading is the rest of the value, not a label.
  bool piece_of_value(std::string_view word) const;
  // Only a whole header value, allowing OCR errors: no patterns, pieces or labels.
  std::optional<Category> match_whole(std::string_view word) const;
  // Two neighbouring words read apart: whole-value match of their join, or a value that
  // straddles the two.
  std::optional<Category> match_across(std::string_view left, std::string_view right) const;

 private:
  struct Token {
    std::string text;    // normalised
    std::string folded;  // with look-alike glyphs folded (O->0, I->1, ...)
    Category category;
  };
  std::vector<Token> tokens_;
};

// ---- One file -------------------------------------------------------------------------------

// How text is found. `detector` (the default) finds every text region with a CNN text
// detector before reading it, so text OCR cannot read is still redacted (phi-text mode) and
// the check after filling looks with the detector again. `ocr` is the earlier engine (text
// found by Tesseract reading the whole frame), kept for comparison in bench/.
enum class TextFinder : std::uint8_t { detector, ocr };
Result<TextFinder> parse_text_finder(std::string_view text);

struct RedactOptions {
  Mode mode = Mode::phi_text;
  TextFinder finder = TextFinder::detector;
  RuleSet rules;
  int margin = 3;  // pixels added around every word box
  // Text-like lines the full-frame OCR pass found no word in, read again one by one: at most
  // this many per frame. Lines beyond it are not skipped: all-text mode covers them whole,
  // phi-text mode fails the file closed (residual_phi, unread_text_regions).
  std::size_t max_text_candidates = 128;
};

enum class FileVerdict : std::uint8_t {
  cleaned,        // text was redacted and the second OCR pass found no PHI
  no_text_found,  // OCR'd, nothing to redact
  not_needed,     // triage: no OCR needed; pixels untouched
  residual_phi,   // PHI still found after redaction, or text left unread: fail closed
  reported,       // report mode: found, nothing changed
};
std::string_view verdict_name(FileVerdict verdict);

struct FileRedaction {
  FileVerdict verdict = FileVerdict::not_needed;
  Triage triage;
  std::size_t frames = 0, frames_ocred = 0;
  std::vector<Redaction> redactions;
  std::size_t residual_phi_words = 0;  // found by the verification pass
  // Text-like lines beyond max_text_candidates left unread (phi-text mode, or after
  // redaction): nothing can say they are safe, so the verdict is residual_phi.
  std::size_t unread_text_regions = 0;
  std::optional<dicom::PixelWriteOutcome> written;  // set when pixel data was replaced
  // For previews: the frames before and after, rendered 8-bit (only when asked for).
  struct Preview {
    std::size_t frame = 0;
    unsigned width = 0, height = 0;
    std::vector<std::uint8_t> before, after;  // grey, row-major
  };
  std::vector<Preview> previews;
};

enum class PreviewImages : std::uint8_t { skip, keep };

// Cleans `file` in memory: triage, decode, OCR every frame, fill the boxes with the image's
// black, OCR again, re-encode (dicom::encode_pixels) and, when clean, set Burned In
// Annotation to NO and add code 113101 to the De-identification Method Code Sequence. Call
// it while the header still holds the original identifying values. Fails with
// ErrorCode::unsupported (e.g. the text detector's model is not installed),
// ErrorCode::malformed_dicom, or ErrorCode::internal when OCR cannot start. A residual_phi
// verdict is not an error: the caller must quarantine the file. Thread-safe on distinct
// files: each thread uses its own OCR engine.
Result<FileRedaction> redact_file(dicom::DicomFile& file, const RedactOptions& options,
                                  PreviewImages previews = PreviewImages::skip);

// The pixel stage of `radguard deid --option clean-pixel-data`: redact_file() in `options`'
// mode, judged for release. Succeeds when the image needs no OCR (triage), or every frame
// was read and no identifying text remains (then Burned In Annotation becomes NO: the
// image no longer carries annotation that identifies the patient). Fails with
// ErrorCode::policy when identifying text is still found after redaction (the file must
// not be released), ErrorCode::usage in report mode, or redact_file()'s errors.
// Returns the redaction it judged (boxes, frames read). Thread-safe on distinct files.
Result<FileRedaction> clean_for_release(dicom::DicomFile& file, const RedactOptions& options,
                                        PreviewImages previews = PreviewImages::skip);

// ---- Batch ----------------------------------------------------------------------------------

enum class OutcomeStatus : std::uint8_t {
  written,      // published in the output folder
  quarantined,  // written to the quarantine folder only (PHI may remain)
  reported,     // report mode
  skipped_not_dicom,
  failed,
};
std::string_view outcome_status_name(OutcomeStatus status);

struct RedactOutcome {
  std::filesystem::path input;
  OutcomeStatus status = OutcomeStatus::failed;
  std::optional<ErrorCode> error;
  std::string reason;            // no attribute values
  std::filesystem::path output;  // where it went (output or quarantine folder)
  std::optional<FileRedaction> redaction;
};

struct RedactRunOptions {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path output;
  std::filesystem::path quarantine;              // default: "<output>-quarantine"
  std::optional<std::filesystem::path> preview;  // before/after PNGs
  RedactOptions redact;
  unsigned threads = 0;
  batch::ProgressDisplay progress = batch::ProgressDisplay::automatic;
  // A different file already under an output's name: kept and that input fails (conflict),
  // or replaced (--overwrite). An identical one is a rerun either way.
  PendingFile::Existing existing = PendingFile::Existing::keep_if_different;
};

struct RedactRunReport {
  std::vector<RedactOutcome> outcomes;  // in input order
  std::vector<batch::MissingInput> missing_inputs;
  double seconds = 0;
  std::size_t count(OutcomeStatus status) const;
  // True when the run found no DICOM file at all (none given, or only other files).
  bool no_dicom_input() const;
  // 0 when every DICOM input was written or reported, 1 otherwise (quarantine included, and a
  // run that found no DICOM input).
  int exit_code() const;
};

// Runs over every input; outputs are named <SOP Instance UID>.dcm and published atomically.
// Fails (ErrorCode::usage) only when an output folder lies inside an input.
Result<RedactRunReport> run_redact(const RedactRunOptions& options);

// JSON report: per file its status, triage, and every box per frame with its category.
std::string report_json(const RedactRunReport& report, const RedactRunOptions& options);
std::string report_text(const RedactRunReport& report);

}  // namespace radguard::redact
