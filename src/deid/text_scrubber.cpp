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

bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }

// Bytes in the character that starts at `pos` (at least 1, never past the end).
std::size_t char_length(std::string_view text, std::size_t pos, TextEncoding encoding) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  std::size_t length = 1;
  if (lead >= 0x80) {
    if (encoding == TextEncoding::utf8) {
      length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    } else if (encoding == TextEncoding::gb18030) {
      length = 2;
      if (pos + 1 < text.size()) {
        const auto second = static_cast<unsigned char>(text[pos + 1]);
        if (second >= 0x30 && second <= 0x39) length = 4;
      }
    }
  }
  return std::min(length, text.size() - pos);
}

// The first byte of each character, then text.size().
std::vector<std::size_t> char_starts(std::string_view text, TextEncoding encoding) {
  std::vector<std::size_t> starts;
  for (std::size_t pos = 0; pos < text.size(); pos += char_length(text, pos, encoding))
    starts.push_back(pos);
  starts.push_back(text.size());
  return starts;
}

// Whether the scrubber can split the text into characters at all.
bool is_readable(std::string_view text, TextEncoding encoding) {
  if (text.find('\x1b') != std::string_view::npos) return false;
  if (encoding == TextEncoding::iso2022) return std::all_of(text.begin(), text.end(), is_ascii);
  return true;
}

// The part of a value before its first ISO 2022 escape (or, under a multi-byte ISO 2022
// set, its first non-ASCII byte): the only part whose characters can be told apart.
std::string_view readable_prefix(std::string_view value, TextEncoding encoding) {
  std::size_t end = value.find('\x1b');
  if (encoding == TextEncoding::iso2022) {
    const auto high = std::find_if(value.begin(), value.end(), [](char c) { return !is_ascii(c); });
    end = std::min(end, static_cast<std::size_t>(high - value.begin()));
  }
  return value.substr(0, std::min(end, value.size()));
}

// Calls `piece(begin, end)` for each run of characters of `value` between delimiters; a
// delimiter is a single-byte ASCII character for which `is_delimiter` holds (a trail byte
// of a multi-byte character never is).
template <typename IsDelimiter, typename Piece>
void split_characters(std::string_view value, TextEncoding encoding, IsDelimiter is_delimiter,
                      Piece piece) {
  std::size_t begin = 0, pos = 0;
  while (pos < value.size()) {
    const std::size_t length = char_length(value, pos, encoding);
    if (length == 1 && is_ascii(value[pos]) && is_delimiter(value[pos])) {
      piece(begin, pos);
      begin = pos + 1;
    }
    pos += length;
  }
  piece(begin, value.size());
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
  // Scripts such as Chinese and Japanese do not separate words: a word with non-ASCII
  // characters is removed wherever it appears.
  const bool anywhere = !std::all_of(word.begin(), word.end(), is_ascii);
  std::size_t pos = 0;
  while ((pos = upper_text.find(word, pos)) != std::string_view::npos) {
    const std::size_t end = pos + word.size();
    if (anywhere || (word_boundary_before(text, pos) && word_boundary_after(text, end)))
      mark(redact, pos, end);
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

TextEncoding encoding_for(std::string_view specific_character_set) {
  const auto has = [&](std::string_view term) {
    return specific_character_set.find(term) != std::string_view::npos;
  };
  if (has("GB18030") || has("GBK")) return TextEncoding::gb18030;
  if (has("ISO_IR 192")) return TextEncoding::utf8;
  if (has("IR 87") || has("IR 159") || has("IR 149") || has("IR 58")) return TextEncoding::iso2022;
  return TextEncoding::single_byte;
}

void PhiValues::add_word(std::string_view word, std::size_t min_length, TextEncoding encoding) {
  // Leading and trailing punctuation goes; characters outside ASCII are letters.
  auto starts = char_starts(word, encoding);
  std::size_t first = 0, last = starts.size() - 1;  // characters [first, last)
  auto is_punctuation = [&](std::size_t index) {
    const std::size_t pos = starts[index];
    return starts[index + 1] - pos == 1 && is_ascii(word[pos]) && !is_word_char(word[pos]);
  };
  while (first < last && is_punctuation(first)) ++first;
  while (last > first && is_punctuation(last - 1)) --last;
  word = word.substr(starts[first], starts[last] - starts[first]);
  if (word.size() < min_length) return;
  std::string w = to_upper(word);
  if (std::find(words_.begin(), words_.end(), w) == words_.end()) words_.push_back(std::move(w));
}

void PhiValues::add_person_name(std::string_view value, TextEncoding encoding) {
  const std::string_view readable = readable_prefix(value, encoding);
  split_characters(
      readable, encoding,
      [](char c) { return c == '^' || c == '=' || c == '\\' || c == ' ' || c == ','; },
      [&](std::size_t begin, std::size_t end) {
        add_word(readable.substr(begin, end - begin), 2, encoding);
      });
}

void PhiValues::add_identifier(std::string_view value, TextEncoding encoding) {
  const std::string_view readable = readable_prefix(value, encoding);
  split_characters(
      readable, encoding, [](char c) { return c == '\\'; },
      [&](std::size_t begin, std::size_t end) {
        std::string id;
        const std::string_view one = readable.substr(begin, end - begin);
        for (const char c : one)
          if (is_word_char(c) || !is_ascii(c)) id += upper(c);
        if (id.size() >= 3 &&
            std::find(identifiers_.begin(), identifiers_.end(), id) == identifiers_.end())
          identifiers_.push_back(id);
      });
}

void PhiValues::add_text(std::string_view value, TextEncoding encoding) {
  const std::string_view readable = readable_prefix(value, encoding);
  split_characters(
      readable, encoding, [](char c) { return !is_word_char(c) && c != '\'' && c != '-'; },
      [&](std::size_t begin, std::size_t end) {
        add_word(readable.substr(begin, end - begin), 3, encoding);
      });
}

std::string scrub_text(std::string_view text, const PhiValues& phi, TextEncoding encoding) {
  if (text.empty()) return {};
  if (!is_readable(text, encoding)) return "*";
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
  // Whole characters only: a character with any byte marked goes entirely, so the result
  // still decodes (a match may start on the trail byte of a multi-byte character).
  const auto starts = char_starts(text, encoding);
  std::string out;
  out.reserve(text.size());
  bool previous_redacted = false;
  for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
    const auto begin = redact.begin() + static_cast<std::ptrdiff_t>(starts[c]);
    const auto end = redact.begin() + static_cast<std::ptrdiff_t>(starts[c + 1]);
    const bool redacted = std::find(begin, end, true) != end;
    if (!redacted) {
      out.append(text.substr(starts[c], starts[c + 1] - starts[c]));
    } else if (!previous_redacted) {
      out += '*';
    }
    previous_redacted = redacted;
  }
  return out;
}

}  // namespace radguard::deid
