#include "deid/text_scrubber.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace radguard::deid {

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
char upper(char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); }
bool is_separator(char c) {
  return c == '-' || c == '_' || c == '.' || c == '/' || c == ' ' || c == ':';
}

// Patterns for identifying content that needs no knowledge of the patient.
const std::vector<std::regex>& generic_patterns() {
  static const std::vector<std::regex> patterns = [] {
    const auto icase = std::regex::ECMAScript | std::regex::icase | std::regex::optimize;
    const auto exact = std::regex::ECMAScript | std::regex::optimize;
    const std::string month = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\\.?";
    return std::vector<std::regex>{
        // Dates: 2019-03-15, 2019/3/15, 15.03.2019, 3/15/19, 20190315
        std::regex("\\b\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2}\\b", icase),
        std::regex("\\b\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{2,4}\\b", icase),
        std::regex("\\b(?:18|19|20)\\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\\d|3[01])\\b", icase),
        // 15 March 2019, March 15, 2019, Mar 2019
        std::regex("\\b\\d{1,2}(?:st|nd|rd|th)?[ -]" + month + ",?[ -]\\d{2,4}\\b", icase),
        std::regex("\\b" + month + " \\d{1,2}(?:st|nd|rd|th)?,? \\d{2,4}\\b", icase),
        std::regex("\\b" + month + "[ -]\\d{4}\\b", icase),
        // Times: 14:32, 2:32:10 pm
        std::regex("\\b\\d{1,2}:\\d{2}(?::\\d{2})?(?:\\s*[ap]\\.?m\\.?)?", icase),
        // Phone numbers: +1 (555) 123-4567, 0161 496 0000
        std::regex("(?:\\+\\d{1,3}[ .-]?)?\\(?\\d{2,4}\\)?[ .-]\\d{3,4}[ .-]\\d{3,4}\\b", icase),
        // E-mail addresses
        std::regex("[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}", icase),
        // ID-like tokens: five or more digits, or a code mixing letters with four digits
        std::regex("\\b[A-Za-z]{0,4}[-#]?\\d{5,}[A-Za-z]{0,2}\\b", icase),
        std::regex(
            "\\b(?=[A-Za-z0-9-]*\\d{4})(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9-]{5,}\\b",
            icase),
        // DICOM-style person names: DOE^JOHN
        std::regex("[A-Za-z'-]+\\^[A-Za-z'^ -]*", icase),
        // A title followed by up to three capitalised words: Dr. Smith, Mrs Jane Doe
        std::regex("\\b(?:[Dd][Rr]|[Mm][Rr][Ss]?|[Mm][Ss]|[Mm]iss|[Pp]rof|[Pp]rofessor|[Dd]octor|"
                   "DR|MR|MRS|MS|MISS|PROF)\\.? ?(?:[A-Z][A-Za-z'-]+)(?: [A-Z][A-Za-z'-]+){0,2}",
                   exact),
    };
  }();
  return patterns;
}

void mark(std::vector<bool>& redact, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end && i < redact.size(); ++i) redact[i] = true;
}

bool word_boundary_before(std::string_view text, std::size_t pos) {
  return pos == 0 || !is_word_char(text[pos - 1]);
}
bool word_boundary_after(std::string_view text, std::size_t pos) {
  return pos >= text.size() || !is_word_char(text[pos]);
}

void mark_words(std::string_view text, std::string_view upper_text, const std::string& word,
                std::vector<bool>& redact) {
  std::size_t pos = 0;
  while ((pos = upper_text.find(word, pos)) != std::string_view::npos) {
    const std::size_t end = pos + word.size();
    if (word_boundary_before(text, pos) && word_boundary_after(text, end)) mark(redact, pos, end);
    pos += 1;
  }
}

// An identifier matches when its characters appear in order with only separators between.
void mark_identifier(std::string_view text, const std::string& id, std::vector<bool>& redact) {
  for (std::size_t start = 0; start < text.size(); ++start) {
    if (!word_boundary_before(text, start) || upper(text[start]) != id[0]) continue;
    std::size_t i = start, k = 0;
    while (i < text.size() && k < id.size()) {
      if (upper(text[i]) == id[k]) {
        ++i;
        ++k;
      } else if (k > 0 && is_separator(text[i])) {
        ++i;
      } else {
        break;
      }
    }
    if (k == id.size() && word_boundary_after(text, i)) mark(redact, start, i);
  }
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), upper);
  return out;
}

}  // namespace

void PhiValues::add_word(std::string_view word, std::size_t min_length) {
  while (!word.empty() && !is_word_char(word.front())) word.remove_prefix(1);
  while (!word.empty() && !is_word_char(word.back())) word.remove_suffix(1);
  if (word.size() < min_length) return;
  std::string w = to_upper(word);
  if (std::find(words_.begin(), words_.end(), w) == words_.end()) words_.push_back(std::move(w));
}

void PhiValues::add_person_name(std::string_view value) {
  std::string token;
  for (const char c : value) {
    if (c == '^' || c == '=' || c == '\\' || c == ' ' || c == ',') {
      add_word(token, 2);
      token.clear();
    } else {
      token += c;
    }
  }
  add_word(token, 2);
}

void PhiValues::add_identifier(std::string_view value) {
  for (std::size_t start = 0; start <= value.size();) {
    auto end = value.find('\\', start);
    if (end == std::string_view::npos) end = value.size();
    std::string id;
    for (const char c : value.substr(start, end - start))
      if (is_word_char(c)) id += upper(c);
    if (id.size() >= 3 &&
        std::find(identifiers_.begin(), identifiers_.end(), id) == identifiers_.end())
      identifiers_.push_back(id);
    start = end + 1;
  }
}

void PhiValues::add_text(std::string_view value) {
  std::string token;
  for (const char c : value) {
    if (is_word_char(c) || c == '\'' || c == '-') {
      token += c;
    } else {
      add_word(token, 3);
      token.clear();
    }
  }
  add_word(token, 3);
}

std::string scrub_text(std::string_view text, const PhiValues& phi) {
  if (text.empty()) return {};
  std::vector<bool> redact(text.size(), false);
  const std::string upper_text = to_upper(text);
  for (const auto& word : phi.words()) mark_words(text, upper_text, word, redact);
  for (const auto& id : phi.identifiers()) mark_identifier(text, id, redact);
  const std::string subject(text);
  for (const auto& pattern : generic_patterns()) {
    for (auto it = std::sregex_iterator(subject.begin(), subject.end(), pattern);
         it != std::sregex_iterator(); ++it) {
      const auto begin = static_cast<std::size_t>(it->position(0));
      mark(redact, begin, begin + static_cast<std::size_t>(it->length(0)));
    }
  }
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!redact[i]) {
      out += text[i];
    } else if (i == 0 || !redact[i - 1]) {
      out += '*';
    }
  }
  return out;
}

}  // namespace radguard::deid
