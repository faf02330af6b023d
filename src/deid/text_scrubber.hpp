#pragma once
// Removes identifying content from free text that a policy keeps under Clean Descriptors:
// every identifying value found in the same object's headers (names in any order and case,
// identifiers with or without separators, addresses), plus anything that looks like a date,
// a time, a phone number, an e-mail address, an ID-like number or a name after a title.
#include <string>
#include <string_view>
#include <vector>

namespace radguard::deid {

// The identifying values of one object, gathered before it is changed. Not thread-safe to
// fill; const use is thread-safe.
class PhiValues {
 public:
  // A PN value: each component of each name ("DOE^JOHN^Q" -> DOE, JOHN) is removed alone.
  void add_person_name(std::string_view value);
  // An identifier: matched ignoring case and separators (12-345/678 matches 12345678).
  void add_identifier(std::string_view value);
  // Any other identifying text (address, institution): the whole phrase and its words.
  void add_text(std::string_view value);

  bool empty() const { return words_.empty() && identifiers_.empty(); }
  const std::vector<std::string>& words() const { return words_; }
  const std::vector<std::string>& identifiers() const { return identifiers_; }

 private:
  void add_word(std::string_view word, std::size_t min_length);
  std::vector<std::string> words_;        // upper case
  std::vector<std::string> identifiers_;  // upper case, alphanumerics only
};

// The text with each identifying span replaced by "*". Never longer than the input, so the
// result fits the same VR.
std::string scrub_text(std::string_view text, const PhiValues& phi);

}  // namespace radguard::deid
