#pragma once
// Removes identifying content from free text that a policy keeps under Clean Descriptors:
// every identifying value found in the same object's headers (names in any order, case,
// accents and script, glued or split; identifiers with or without separators, inside longer
// codes or with a check digit; addresses, institutions, issuers), plus anything that looks
// like a date, a time, a phone number, an e-mail address, an ID-like number or a name after
// a title. Clinical words (modalities, body parts, sequences, protocol words) are never
// taken for names by the title rule, so "MR FEMUR CONTRAST Dr. X" keeps "MR FEMUR CONTRAST".
//
// Text is decoded to characters by the Specific Character Set (single-byte ISO 8859 sets,
// JIS X 0201, UTF-8, GB18030, ISO 2022 with JIS X 0208/0212, KS X 1001 and GB 2312),
// matched under case folding and accent stripping (Latin, Greek with or without tonos,
// Cyrillic, full-width forms), and written back in the same character set: only whole
// characters are removed, each removed run becomes "*".
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace radguard::deid {

// The character set of the bytes >= 0x80 (G1), or of a whole ISO 2022 designation.
enum class Charset : std::uint8_t {
  none,  // no set: such bytes cannot be read (ISO 2022 without a G1 designation)
  latin1,
  latin2,
  latin3,
  latin4,
  cyrillic,
  arabic,
  greek,
  hebrew,
  latin5,
  latin9,
  thai,
  katakana,  // JIS X 0201
};

// How the bytes of a text value map to characters, from the Specific Character Set that
// governs it.
struct TextEncoding {
  enum class Form : std::uint8_t {
    single_byte,  // default repertoire, ISO 8859 sets, JIS X 0201: one byte, one character
    utf8,         // ISO_IR 192
    gb18030,      // GB18030 and GBK: one, two or four bytes (trail bytes may look like ASCII)
    iso2022,      // code extensions: escape sequences switch sets (Japanese, Korean, Chinese)
  };
  Form form = Form::single_byte;
  Charset g1 = Charset::latin1;  // what bytes >= 0x80 are before any escape sequence

  static const TextEncoding single_byte;  // default repertoire; high bytes read as Latin-1
  static const TextEncoding utf8;
  static const TextEncoding gb18030;
  static const TextEncoding iso2022;  // no G1 set until an escape designates one
  friend bool operator==(const TextEncoding&, const TextEncoding&) = default;
};
inline constexpr TextEncoding TextEncoding::single_byte{Form::single_byte, Charset::latin1};
inline constexpr TextEncoding TextEncoding::utf8{Form::utf8, Charset::none};
inline constexpr TextEncoding TextEncoding::gb18030{Form::gb18030, Charset::none};
inline constexpr TextEncoding TextEncoding::iso2022{Form::iso2022, Charset::none};

// The encoding named by a Specific Character Set value (backslash-separated terms).
TextEncoding encoding_for(std::string_view specific_character_set);

// Case-folded, accent-stripped form of text (upper case), as UTF-8, for tests and tools;
// non-letters are kept. Text that cannot be decoded gives "".
std::string fold_for_matching(std::string_view text, TextEncoding encoding);

// The identifying values of one object, gathered before it is changed. Not thread-safe to
// fill; const use is thread-safe.
class PhiValues {
 public:
  // A PN value: each component of each component group ("DOE^JOHN=..." -> DOE, JOHN) is a
  // name part, matched alone, glued to other parts (DOEJOHN, JDOE) and, for Greek and
  // Cyrillic, also in Latin transliteration. Parts in scripts without spaces (Chinese,
  // Japanese, Korean) are matched anywhere, also with spaces between their characters.
  void add_person_name(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // The patient's own name: its initials alone are identifying too ("JD", "J.D.", "DJM"),
  // unless they spell clinical vocabulary (MR for Richard Martin stays). Also a person name.
  void add_patient_name(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // An identifier: matched ignoring case and separators (12-345/678 matches 12345678),
  // inside longer codes (MRN12345678) when at least five characters long, with leading
  // zeros dropped, and with a check digit appended (12345678-9).
  void add_identifier(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // Any other identifying text (address, institution, issuer): each word of three or more
  // characters (except a few function words) is matched as a whole word.
  void add_text(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // A date (DA or the date part of DT): matched in free text in the common written forms.
  void add_date(std::string_view value);

  bool empty() const { return parts_.empty() && identifiers_.empty() && dates_.empty(); }
  // Folded name parts and words, as UTF-8 (for tests and path masking).
  std::vector<std::string> words() const;

  // Whether a path component (a file or folder name) holds any identifying value.
  bool names_in(std::string_view component) const;

  // The matching tables (folded, upper case).
  const std::unordered_set<std::u32string>& parts() const { return parts_; }
  const std::vector<std::u32string>& anywhere() const { return anywhere_; }
  const std::unordered_set<char32_t>& initials() const { return initials_; }
  const std::vector<std::u32string>& person_parts() const { return person_parts_; }
  const std::vector<std::u32string>& identifiers() const { return identifiers_; }
  const std::vector<std::string>& dates() const { return dates_; }
  const std::unordered_set<std::u32string>& patient_initials() const { return patient_initials_; }

 private:
  void add_part(std::u32string part, bool person);
  std::unordered_set<std::u32string> parts_;  // folded words matched as whole (glued) tokens
  std::vector<std::u32string> anywhere_;      // folded CJK parts, matched anywhere
  std::unordered_set<char32_t> initials_;     // first letters of person name parts
  std::vector<std::u32string> person_parts_;  // person name parts of 5+ letters
  std::vector<std::u32string> identifiers_;   // folded alphanumerics only
  std::vector<std::string> dates_;            // YYYYMMDD
  std::unordered_set<std::u32string> patient_initials_;  // JD, DJ, JMD... of the patient
  bool patient_ = false;  // while adding the patient's own name
};

// The text with each identifying span replaced by "*". Never more characters than the input,
// so the result fits the same VR (under ISO 2022 an escape sequence may be added to return
// to ASCII before a "*"). Text that cannot be decoded becomes "*" whole: fail closed, never a
// broken escape sequence or half a character. Text with nothing to remove is returned
// byte-identical.
std::string scrub_text(std::string_view text, const PhiValues& phi,
                       TextEncoding encoding = TextEncoding::single_byte);

}  // namespace radguard::deid
