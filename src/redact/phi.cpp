// Tolerant matching of OCR words against one patient's identifying values and against
// date- and ID-shaped tokens.
#include <algorithm>
#include <array>
#include <cctype>
#include <regex>

#include "redact/redact.hpp"

namespace radguard::redact {

namespace {

std::string upper_trimmed(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == 0xE2 && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) == 0x80) {
      // UTF-8 dashes (U+2010..U+2015) that OCR reads for '-'.
      const auto third = static_cast<unsigned char>(in[i + 2]);
      if (third >= 0x90 && third <= 0x95) {
        out += '-';
        i += 2;
        continue;
      }
    }
    if (c >= 0x80) continue;
    out += static_cast<char>(std::toupper(c));
  }
  const auto keep = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  const auto first = std::find_if(out.begin(), out.end(), keep);
  const auto last = std::find_if(out.rbegin(), out.rend(), keep).base();
  if (first >= last) return {};
  return std::string(first, last);
}

// OCR confuses these glyphs; comparing folded forms forgives it.
std::string folded(std::string_view in) {
  std::string out(in);
  for (char& c : out) {
    switch (c) {
      case 'O':
      case 'Q':
      case 'D':
        c = '0';
        break;
      case 'I':
      case 'L':
      case '|':
      case '!':
        c = '1';
        break;
      case 'S':
        c = '5';
        break;
      case 'B':
        c = '8';
        break;
      case 'Z':
        c = '2';
        break;
      case 'G':
        c = '6';
        break;
      default:
        break;
    }
  }
  return out;
}

std::string alnum_only(std::string_view in) {
  std::string out;
  for (const char c : in)
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
  if (a.size() > b.size() + limit || b.size() > a.size() + limit) return limit + 1;
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    std::size_t best = row[0];
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
      best = std::min(best, row[j]);
    }
    if (best > limit) return limit + 1;
  }
  return row[b.size()];
}

std::size_t allowed_errors(std::size_t length) { return length >= 8 ? 2 : length >= 4 ? 1 : 0; }

bool similar(std::string_view word, std::string_view token) {
  if (word == token) return true;
  const std::size_t limit = allowed_errors(token.size());
  return limit > 0 && edit_distance(word, token, limit) <= limit;
}

constexpr std::array<std::string_view, 12> kMonths = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};

// The spellings of a DICOM date (YYYYMMDD) seen on screens.
std::vector<std::string> date_spellings(std::string_view da) {
  std::string digits = alnum_only(da);
  if (digits.size() < 8) return {};
  digits.resize(8);
  if (!std::all_of(digits.begin(), digits.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return {};
  const std::string y = digits.substr(0, 4), m = digits.substr(4, 2), d = digits.substr(6, 2),
                    yy = y.substr(2);
  const int month = std::stoi(m);
  const std::string mon =
      month >= 1 && month <= 12 ? std::string(kMonths[static_cast<std::size_t>(month - 1)]) : "";
  std::vector<std::string> out = {y + m + d, d + m + y, m + d + y, d + m + yy, m + d + yy};
  for (const char* sep : {"-", "/", "."}) {
    out.push_back(y + sep + m + sep + d);
    out.push_back(d + sep + m + sep + y);
    out.push_back(m + sep + d + sep + y);
    out.push_back(d + sep + m + sep + yy);
    out.push_back(m + sep + d + sep + yy);
    if (!mon.empty()) out.push_back(d + sep + mon + sep + y);
  }
  if (!mon.empty()) {
    out.push_back(d + mon + y);
    // Month first, and days without their zero ("Dec 13, 1986", "5 Mar 1961"), as screens
    // spell them in words (matched on their letters and digits, read apart or together).
    const std::string day = d.front() == '0' ? d.substr(1) : d;
    for (const std::string& one_day : {d, day}) {
      out.push_back(mon + "-" + one_day + "-" + y);
      out.push_back(one_day + "-" + mon + "-" + y);
    }
  }
  return out;
}

bool looks_like_date(const std::string& word) {
  static const std::regex numeric(R"(\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4})");
  static const std::regex named(
      R"(\d{1,2}[/.\-]?(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*[/.\-]?\d{2,4})");
  static const std::regex compact(R"((19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]))");
  return std::regex_match(word, numeric) || std::regex_match(word, named) ||
         std::regex_match(word, compact);
}

bool looks_like_id(const std::string& word) {
  const std::string core = alnum_only(word);
  const auto digits = std::count_if(
      core.begin(), core.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  // Measurements (12.5MHZ, 16CM, 1024X768) have few digits or units; MRNs and accession
  // numbers are long runs of digits, often behind a short prefix.
  return (core.size() >= 6 && digits >= 5) ||
         (core.size() >= 7 && digits >= 4 && digits * 2 >= static_cast<long>(core.size()));
}

// Institution words that carry no meaning of their own. "HOSPITAL" or "CLINIC" is matched:
// left beside a blacked-out name it still says which kind of place, and a reader sees a
// half-redacted institution as a clue.
bool is_generic_word(std::string_view word) {
  static constexpr std::string_view kGeneric[] = {"THE", "OF", "AND", "FOR"};
  return std::find(std::begin(kGeneric), std::end(kGeneric), word) != std::end(kGeneric);
}

std::vector<std::string> split_words(std::string_view value) {
  std::vector<std::string> out;
  std::string current;
  for (const char c : value) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      current += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    } else if (!current.empty()) {
      out.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

constexpr Tag kNames[] = {{0x0010, 0x0010}, {0x0010, 0x1001}, {0x0010, 0x1005},
                          {0x0010, 0x1060}, {0x0008, 0x0090}, {0x0008, 0x1050},
                          {0x0008, 0x1070}, {0x0008, 0x1060}, {0x0032, 0x1032}};
constexpr Tag kIds[] = {{0x0010, 0x0020}, {0x0010, 0x1000}, {0x0008, 0x0050}, {0x0020, 0x0010},
                        {0x0010, 0x1002}, {0x0038, 0x0010}, {0x0010, 0x2154}};
constexpr Tag kDates[] = {{0x0010, 0x0030}, {0x0008, 0x0020}, {0x0008, 0x0021},
                          {0x0008, 0x0022}, {0x0008, 0x0023}, {0x0008, 0x0012}};
constexpr Tag kInstitution[] = {
    {0x0008, 0x0080}, {0x0008, 0x0081}, {0x0008, 0x1040}, {0x0010, 0x1040}};

}  // namespace

void PhiMatcher::add(std::string_view value, Category category) {
  const std::string text = upper_trimmed(value);
  if (text.empty()) return;
  if (std::any_of(tokens_.begin(), tokens_.end(), [&](const Token& t) { return t.text == text; }))
    return;
  tokens_.push_back({text, folded(alnum_only(text)), category});
}

PhiMatcher PhiMatcher::from_header(const dicom::DicomFile& file) {
  PhiMatcher matcher;
  for (const Tag tag : kNames) {
    const auto value = file.string_of(tag);
    if (!value) continue;
    for (const auto& word : split_words(*value))
      if (word.size() >= 2) matcher.add(word, Category::name);
  }
  for (const Tag tag : kIds) {
    const auto value = file.string_of(tag);
    if (!value) continue;
    // Multi-valued IDs (Other Patient IDs) are backslash-separated.
    std::size_t start = 0;
    while (start <= value->size()) {
      const std::size_t end = std::min(value->find('\\', start), value->size());
      const std::string one = value->substr(start, end - start);
      if (alnum_only(one).size() >= 3) matcher.add(one, Category::id);
      for (const auto& part : split_words(one))
        if (part.size() >= 4) matcher.add(part, Category::id);
      start = end + 1;
    }
  }
  for (const Tag tag : kDates) {
    const auto value = file.string_of(tag);
    if (!value) continue;
    for (const auto& spelling : date_spellings(*value)) matcher.add(spelling, Category::date);
  }
  for (const Tag tag : kInstitution) {
    const auto value = file.string_of(tag);
    if (!value) continue;
    for (const auto& word : split_words(*value))
      // Two letters too: "ST" of "St Barnabas" left beside a blacked-out name still points
      // to the place (short tokens only match exactly).
      if (word.size() >= 2 && !is_generic_word(word)) matcher.add(word, Category::institution);
  }
  return matcher;
}

std::optional<Category> PhiMatcher::match(std::string_view raw) const {
  const std::string word = upper_trimmed(raw);
  if (word.empty()) return std::nullopt;
  // The word as read, then each of its alphanumeric parts ("DOE,JOHN", "ID:PID123").
  std::vector<std::string> candidates = {word};
  for (auto& part : split_words(word))
    if (part != word) candidates.push_back(std::move(part));
  for (const Token& token : tokens_) {
    for (const auto& candidate : candidates) {
      const std::string compact = alnum_only(candidate);
      if (compact.empty()) continue;
      if (candidate == token.text) return token.category;
      if (token.text.size() < 4) continue;  // short tokens only match exactly
      if (similar(candidate, token.text)) return token.category;
      const std::string fold = folded(compact);
      if (token.folded.size() >= 4 && similar(fold, token.folded)) return token.category;
      // An identifier glued to a label ("MRN123456").
      if (token.folded.size() >= 5 && fold.find(token.folded) != std::string::npos)
        return token.category;
      // A piece of a long identifier or date the OCR split in two ("PID1" "2345").
      if (token.folded.size() >= 6 && fold.size() >= 4 &&
          token.folded.find(fold) != std::string::npos)
        return token.category;
    }
  }
  if (looks_like_date(word)) return Category::date_pattern;
  for (const auto& candidate : candidates) {
    if (looks_like_date(candidate)) return Category::date_pattern;
    if (looks_like_id(candidate)) return Category::id_pattern;
  }
  return std::nullopt;
}

std::optional<Category> PhiMatcher::match_whole(std::string_view raw) const {
  const std::string word = upper_trimmed(raw);
  const std::string fold = folded(alnum_only(word));
  if (fold.size() < 4) return std::nullopt;
  for (const Token& token : tokens_) {
    if (token.text.size() < 4) continue;
    if (similar(word, token.text) || (token.folded.size() >= 4 && similar(fold, token.folded)))
      return token.category;
  }
  return std::nullopt;
}

std::optional<Category> PhiMatcher::match_across(std::string_view left,
                                                 std::string_view right) const {
  if (auto whole = match_whole(std::string(left) + std::string(right))) return whole;
  const std::string a = folded(alnum_only(upper_trimmed(left)));
  const std::string joined = a + folded(alnum_only(upper_trimmed(right)));
  for (const Token& token : tokens_) {
    if (token.folded.size() < 5) continue;
    for (auto pos = joined.find(token.folded); pos != std::string::npos;
         pos = joined.find(token.folded, pos + 1))
      if (pos < a.size() && pos + token.folded.size() > a.size()) return token.category;
  }
  return std::nullopt;
}

double PhiMatcher::fragment_ratio(std::string_view raw) const {
  const std::string word = upper_trimmed(raw);
  const std::string fold = folded(alnum_only(word));
  if (fold.size() < 4) return 1.0;
  double ratio = 1.0;
  for (const Token& token : tokens_) {
    if (token.folded.size() < 6 || token.folded.size() <= fold.size()) continue;
    if (token.folded.find(fold) == std::string::npos) continue;
    // Full text length (separators included) over what was read.
    ratio =
        std::max(ratio, static_cast<double>(token.text.size()) / static_cast<double>(word.size()));
  }
  return ratio;
}

bool PhiMatcher::piece_of_value(std::string_view raw) const {
  const std::string word = alnum_only(upper_trimmed(raw));
  if (word.size() < 3) return false;
  return std::any_of(tokens_.begin(), tokens_.end(), [&](const Token& token) {
    const std::string value = alnum_only(token.text);
    return value.size() > word.size() && value.find(word) != std::string::npos;
  });
}

std::optional<Category> PhiMatcher::match_loosely(std::string_view raw) const {
  const std::string word = folded(alnum_only(upper_trimmed(raw)));
  if (word.size() < 5) return std::nullopt;
  for (const Token& token : tokens_) {
    if (token.folded.size() < 6) continue;
    const std::size_t limit = token.folded.size() / 3;
    if (edit_distance(word, token.folded, limit) <= limit) return token.category;
  }
  return std::nullopt;
}

std::optional<Category> PhiMatcher::match_short_loosely(std::string_view raw) const {
  const std::string word = folded(alnum_only(upper_trimmed(raw)));
  if (word.size() < 3 || word.size() > 6) return std::nullopt;
  for (const Token& token : tokens_) {
    if (token.folded.size() < 3 || token.folded.size() > 5) continue;
    if (edit_distance(word, token.folded, 1) <= 1) return token.category;
  }
  return std::nullopt;
}

}  // namespace radguard::redact
