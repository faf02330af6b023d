#pragma once
// Removes identifying content from free text that a policy keeps under Clean Descriptors:
// every identifying value found in the same object's headers (names in any order and case,
// identifiers with or without separators, addresses), plus anything that looks like a date,
// a time, a phone number, an e-mail address, an ID-like number or a name after a title.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace radguard::deid {

// How the bytes of a text value map to characters, from the Specific Character Set that
// governs it. The scrubber only ever removes whole characters, so what it writes still
// decodes in that character set.
enum class TextEncoding : std::uint8_t {
  single_byte,  // default repertoire, ISO 8859 sets, JIS X 0201: one byte, one character
  utf8,         // ISO_IR 192
  gb18030,      // GB18030 and GBK: one, two or four bytes (trail bytes may look like ASCII)
  iso2022,      // code extensions with multi-byte sets (Japanese, Korean, Chinese ISO 2022)
};

// The encoding named by a Specific Character Set value (backslash-separated terms).
TextEncoding encoding_for(std::string_view specific_character_set);

// The identifying values of one object, gathered before it is changed. Not thread-safe to
// fill; const use is thread-safe.
class PhiValues {
 public:
  // A PN value: each component of each name ("DOE^JOHN^Q" -> DOE, JOHN) is removed alone.
  // Names in other scripts count (a word of non-ASCII characters is matched anywhere, as
  // scripts such as Chinese do not separate words). What follows an ISO 2022 escape
  // sequence cannot be split into characters here and is not collected: free text
  // holding escape sequences is removed whole by scrub_text.
  void add_person_name(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // An identifier: matched ignoring case and separators (12-345/678 matches 12345678).
  void add_identifier(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);
  // Any other identifying text (address, institution): the whole phrase and its words.
  void add_text(std::string_view value, TextEncoding encoding = TextEncoding::single_byte);

  bool empty() const { return words_.empty() && identifiers_.empty(); }
  const std::vector<std::string>& words() const { return words_; }
  const std::vector<std::string>& identifiers() const { return identifiers_; }

 private:
  void add_word(std::string_view word, std::size_t min_length, TextEncoding encoding);
  std::vector<std::string> words_;        // upper case
  std::vector<std::string> identifiers_;  // upper case, alphanumerics only
};

// The text with each identifying span replaced by "*". Never longer than the input, so the
// result fits the same VR. Spans are widened to whole characters of `encoding`. Text the
// scrubber cannot split into characters (an ISO 2022 escape sequence, or non-ASCII bytes
// under an ISO 2022 multi-byte set) becomes "*" whole: fail closed, never a broken
// escape sequence or half a character.
std::string scrub_text(std::string_view text, const PhiValues& phi,
                       TextEncoding encoding = TextEncoding::single_byte);

}  // namespace radguard::deid
