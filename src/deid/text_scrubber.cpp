#include "deid/text_scrubber.hpp"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <regex>

namespace radguard::deid {

namespace {

// ---------------------------------------------------------------------------------------
// Decoding: bytes -> characters with their byte spans and ISO 2022 designations.

struct Char {
  std::size_t begin = 0, end = 0;  // bytes of the value
  char32_t cp = 0;                 // Unicode code point (or a private stand-in)
  std::uint8_t g0 = 0, g1 = 0;     // ISO 2022: indices into Decoded::designations
};

struct Decoded {
  std::vector<Char> chars;
  // ISO 2022 escape sequences in use; index 0 is the initial state (no escape).
  std::vector<std::string> designations{""};
};

constexpr char32_t kReplacement = 0xFFFD;
constexpr char kEsc = '\x1b';


// One conversion descriptor per character set name and thread (iconv_t is not thread-safe).
std::optional<char32_t> iconv_one(const char* from, const unsigned char* bytes, std::size_t n) {
  thread_local std::map<std::string, iconv_t> handles;
  auto it = handles.find(from);
  if (it == handles.end()) it = handles.emplace(from, iconv_open("UTF-32LE", from)).first;
  iconv_t cd = it->second;
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  iconv(cd, nullptr, nullptr, nullptr, nullptr);
  char in[8];
  std::memcpy(in, bytes, std::min<std::size_t>(n, sizeof in));
  char out[16];
  char* in_ptr = in;
  char* out_ptr = out;
  std::size_t in_left = n, out_left = sizeof out;
  if (iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left) == static_cast<std::size_t>(-1) ||
      in_left != 0 || sizeof out - out_left != 4)
    return std::nullopt;
  const auto* u = reinterpret_cast<const unsigned char*>(out);
  return static_cast<char32_t>(u[0] | (u[1] << 8) | (u[2] << 16) | (u[3] << 24));
}

const char* iconv_name(Charset charset) {
  switch (charset) {
    case Charset::latin1:
      return "ISO-8859-1";
    case Charset::latin2:
      return "ISO-8859-2";
    case Charset::latin3:
      return "ISO-8859-3";
    case Charset::latin4:
      return "ISO-8859-4";
    case Charset::cyrillic:
      return "ISO-8859-5";
    case Charset::arabic:
      return "ISO-8859-6";
    case Charset::greek:
      return "ISO-8859-7";
    case Charset::hebrew:
      return "ISO-8859-8";
    case Charset::latin5:
      return "ISO-8859-9";
    case Charset::latin9:
      return "ISO-8859-15";
    case Charset::thai:
      return "TIS-620";
    case Charset::none:
    case Charset::katakana:
      break;
  }
  return nullptr;
}

// The code point of byte `b` (>= 0x80) in a single-byte set; tables built once from iconv.
char32_t single_byte_cp(Charset charset, unsigned char b) {
  if (charset == Charset::latin1) return b;
  if (charset == Charset::katakana)
    return (b >= 0xA1 && b <= 0xDF) ? static_cast<char32_t>(0xFF61 + (b - 0xA1)) : kReplacement;
  constexpr std::size_t kSets = static_cast<std::size_t>(Charset::katakana) + 1;
  static std::array<std::array<char32_t, 128>, kSets> tables;
  static std::once_flag once;
  std::call_once(once, [] {
    for (std::size_t s = 0; s < kSets; ++s) {
      const char* name = iconv_name(static_cast<Charset>(s));
      for (unsigned byte = 0x80; byte < 0x100; ++byte) {
        const auto c = static_cast<unsigned char>(byte);
        const auto cp = name ? iconv_one(name, &c, 1) : std::nullopt;
        tables[s][byte - 0x80] = cp.value_or(kReplacement);
      }
    }
  });
  return tables[static_cast<std::size_t>(charset)][b - 0x80];
}

// A stand-in code point for a double-byte character iconv cannot convert: identical bytes
// still give identical characters, so names in it are still matched.
char32_t stand_in(unsigned set, unsigned char a, unsigned char b) {
  return 0xF0000 + ((set & 0x7) << 13) + (((a & 0x7F) << 7 | (b & 0x7F)) & 0x1FFF);
}

std::optional<Decoded> decode_utf8(std::string_view text) {
  Decoded d;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t n = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    char32_t cp = b < 0x80 ? b : b >= 0xF0 ? (b & 0x07) : b >= 0xE0 ? (b & 0x0F) : (b & 0x1F);
    if (b >= 0x80 && b < 0xC0) cp = kReplacement;
    if (i + n > text.size()) n = 1, cp = kReplacement;
    for (std::size_t k = 1; k < n; ++k) {
      const auto t = static_cast<unsigned char>(text[i + k]);
      if ((t & 0xC0) != 0x80) {
        n = k;
        cp = kReplacement;
        break;
      }
      cp = (cp << 6) | (t & 0x3F);
    }
    d.chars.push_back({i, i + n, cp, 0, 0});
    i += n;
  }
  return d;
}

std::optional<Decoded> decode_gb18030(std::string_view text) {
  Decoded d;
  std::size_t i = 0;
  const auto* u = reinterpret_cast<const unsigned char*>(text.data());
  while (i < text.size()) {
    std::size_t n = 1;
    if (u[i] >= 0x80) {
      n = 2;
      if (i + 1 < text.size() && u[i + 1] >= 0x30 && u[i + 1] <= 0x39) n = 4;
      n = std::min(n, text.size() - i);
    }
    char32_t cp = u[i];
    if (n > 1) {
      cp = iconv_one("GB18030", u + i, n).value_or(stand_in(1, u[i], u[i + n - 1]));
    } else if (u[i] >= 0x80) {
      cp = kReplacement;
    }
    d.chars.push_back({i, i + n, cp, 0, 0});
    i += n;
  }
  return d;
}

std::optional<Decoded> decode_single(std::string_view text, Charset charset) {
  Decoded d;
  d.chars.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    d.chars.push_back({i, i + 1, b < 0x80 ? char32_t(b) : single_byte_cp(charset, b), 0, 0});
  }
  return d;
}

// ISO 2022 as DICOM uses it (PS3.3 C.12.1.1.2, PS3.5 6.1.2.5): G0 is ASCII, JIS X 0201
// Roman, JIS X 0208 or JIS X 0212; G1 (bytes >= 0x80) a single-byte set, JIS X 0201
// katakana, KS X 1001 or GB 2312.
enum class G0 : std::uint8_t { ascii, jis0208, jis0212 };
enum class G1 : std::uint8_t { single, ksx1001, gb2312 };

std::optional<Decoded> decode_iso2022(std::string_view text, Charset initial_g1) {
  Decoded d;
  const auto* u = reinterpret_cast<const unsigned char*>(text.data());
  G0 g0 = G0::ascii;
  G1 g1 = G1::single;
  Charset g1_set = initial_g1;
  std::uint8_t g0_index = 0, g1_index = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == kEsc) {
      std::size_t j = i + 1;
      while (j < text.size() && u[j] >= 0x20 && u[j] <= 0x2F) ++j;
      if (j >= text.size()) return std::nullopt;
      const std::string seq(text.substr(i, j + 1 - i));
      const std::string_view tail = std::string_view(seq).substr(1);
      bool is_g0 = true;
      if (tail == "(B" || tail == "(J") {
        g0 = G0::ascii;
      } else if (tail == "$B" || tail == "$@") {
        g0 = G0::jis0208;
      } else if (tail == "$(D") {
        g0 = G0::jis0212;
      } else {
        is_g0 = false;
        static const std::map<std::string_view, Charset> kG1Singles = {
            {")I", Charset::katakana}, {"-A", Charset::latin1},   {"-B", Charset::latin2},
            {"-C", Charset::latin3},   {"-D", Charset::latin4},   {"-L", Charset::cyrillic},
            {"-G", Charset::arabic},   {"-F", Charset::greek},    {"-H", Charset::hebrew},
            {"-M", Charset::latin5},   {"-b", Charset::latin9},   {"-T", Charset::thai}};
        if (tail == "$)C") {
          g1 = G1::ksx1001;
        } else if (tail == "$)A") {
          g1 = G1::gb2312;
        } else if (const auto found = kG1Singles.find(tail); found != kG1Singles.end()) {
          g1 = G1::single;
          g1_set = found->second;
        } else {
          return std::nullopt;  // a set this decoder does not know: cannot be split
        }
      }
      auto index_of = [&](const std::string& s) {
        const auto at = std::find(d.designations.begin(), d.designations.end(), s);
        if (at != d.designations.end()) return static_cast<std::uint8_t>(at - d.designations.begin());
        d.designations.push_back(s);
        return static_cast<std::uint8_t>(d.designations.size() - 1);
      };
      (is_g0 ? g0_index : g1_index) = index_of(seq);
      i = j + 1;
      continue;
    }
    const unsigned char b = u[i];
    if (b < 0x80) {
      if (g0 != G0::ascii && b >= 0x21 && b <= 0x7E) {
        if (i + 1 >= text.size() || u[i + 1] < 0x21 || u[i + 1] > 0x7E) return std::nullopt;
        unsigned char euc[3];
        std::size_t n = 0;
        if (g0 == G0::jis0212) euc[n++] = 0x8F;
        euc[n++] = static_cast<unsigned char>(b | 0x80);
        euc[n++] = static_cast<unsigned char>(u[i + 1] | 0x80);
        const char32_t cp = iconv_one("EUC-JP", euc, n)
                                .value_or(stand_in(g0 == G0::jis0212 ? 3 : 2, b, u[i + 1]));
        d.chars.push_back({i, i + 2, cp, g0_index, g1_index});
        i += 2;
        continue;
      }
      d.chars.push_back({i, i + 1, b, g0_index, g1_index});
      ++i;
      continue;
    }
    if (g1 == G1::single) {
      if (g1_set == Charset::none) return std::nullopt;
      d.chars.push_back({i, i + 1, single_byte_cp(g1_set, b), g0_index, g1_index});
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || u[i + 1] < 0xA1) return std::nullopt;
    const char* name = g1 == G1::ksx1001 ? "EUC-KR" : "EUC-CN";
    const char32_t cp =
        iconv_one(name, u + i, 2).value_or(stand_in(g1 == G1::ksx1001 ? 4 : 5, b, u[i + 1]));
    d.chars.push_back({i, i + 2, cp, g0_index, g1_index});
    i += 2;
  }
  return d;
}

std::optional<Decoded> decode(std::string_view text, TextEncoding encoding) {
  switch (encoding.form) {
    case TextEncoding::Form::utf8:
      return decode_utf8(text);
    case TextEncoding::Form::gb18030:
      return decode_gb18030(text);
    case TextEncoding::Form::iso2022:
      return decode_iso2022(text, encoding.g1);
    case TextEncoding::Form::single_byte:
      if (text.find(kEsc) != std::string_view::npos) return decode_iso2022(text, encoding.g1);
      return decode_single(text, encoding.g1);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Folding: upper case, accents stripped, Greek tonos and final sigma, Cyrillic case,
// full-width Latin. One character may fold to several (ß -> SS) or none (combining marks).

// Latin Extended-A (U+0100..U+017F), base letters in runs.
const std::array<const char*, 128>& latin_extended_a() {
  static const std::array<const char*, 128> table = [] {
    std::array<const char*, 128> t{};
    const std::pair<int, const char*> runs[] = {
        {6, "A"}, {8, "C"},  {4, "D"}, {10, "E"}, {8, "G"},  {4, "H"}, {10, "I"}, {2, "IJ"},
        {2, "J"}, {3, "K"},  {10, "L"}, {9, "N"}, {6, "O"},  {2, "OE"}, {6, "R"}, {8, "S"},
        {6, "T"}, {12, "U"}, {2, "W"}, {3, "Y"},  {6, "Z"},  {1, "S"}};
    std::size_t k = 0;
    for (const auto& [count, base] : runs)
      for (int n = 0; n < count && k < t.size(); ++n) t[k++] = base;
    return t;
  }();
  return table;
}

void fold_into(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out += static_cast<char32_t>(std::toupper(static_cast<int>(c)));
    return;
  }
  if (c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7) {
    static const char* const kLatin1 =
        "AAAAAAACEEEEIIIIDNOOOOO_OUUUUYTS"   // C0..DF (Æ, Þ, ß handled below)
        "AAAAAAACEEEEIIIIDNOOOOO_OUUUUYTY";  // E0..FF
    if (c == 0xC6 || c == 0xE6) return out.append(U"AE"), void();
    if (c == 0xDE || c == 0xFE) return out.append(U"TH"), void();
    if (c == 0xDF) return out.append(U"SS"), void();
    out += static_cast<char32_t>(kLatin1[c - 0xC0]);
    return;
  }
  if (c >= 0x100 && c <= 0x17F) {
    for (const char* p = latin_extended_a()[c - 0x100]; *p; ++p) out += static_cast<char32_t>(*p);
    return;
  }
  if (c >= 0x300 && c <= 0x36F) return;  // combining marks (decomposed accents)
  if (c >= 0x370 && c <= 0x3FF) {        // Greek
    switch (c) {
      case 0x386: case 0x3AC: return out += 0x391, void();
      case 0x388: case 0x3AD: return out += 0x395, void();
      case 0x389: case 0x3AE: return out += 0x397, void();
      case 0x38A: case 0x3AF: case 0x390: case 0x3AA: case 0x3CA: return out += 0x399, void();
      case 0x38C: case 0x3CC: return out += 0x39F, void();
      case 0x38E: case 0x3CD: case 0x3B0: case 0x3AB: case 0x3CB: return out += 0x3A5, void();
      case 0x38F: case 0x3CE: return out += 0x3A9, void();
      case 0x3C2: return out += 0x3A3, void();
      default: break;
    }
    if (c >= 0x3B1 && c <= 0x3C9) return out += c - 0x20, void();
    out += c;
    return;
  }
  if (c >= 0x400 && c <= 0x45F) {  // Cyrillic
    char32_t u = c;
    if (c >= 0x430 && c <= 0x44F) u = c - 0x20;
    else if (c >= 0x450) u = c - 0x50;
    if (u == 0x401) u = 0x415;  // Ё -> Е
    out += u;
    return;
  }
  if (c >= 0xFF01 && c <= 0xFF5E) return fold_into(c - 0xFEE0, out);  // full-width ASCII
  if (c == 0x3000) return out += U' ', void();                       // ideographic space
  out += c;
}

// Scripts written without spaces between words (Chinese, Japanese, Korean names with
// particles, Thai): their name parts are matched anywhere.
// The transcriptions people type for letters their keyboard lacks: Ä/Ö/Ü as AE/OE/UE,
// Å as AA, Ø as OE. Used for name parts only, next to the plain folding.
bool fold_transcribed(char32_t c, std::u32string& out) {
  switch (c) {
    case 0xC4: case 0xE4: out.append(U"AE"); return true;
    case 0xD6: case 0xF6: out.append(U"OE"); return true;
    case 0xDC: case 0xFC: out.append(U"UE"); return true;
    case 0xC5: case 0xE5: out.append(U"AA"); return true;
    case 0xD8: case 0xF8: out.append(U"OE"); return true;
    default: return false;
  }
}

bool is_cjk(char32_t c) {
  return (c >= 0x0E00 && c <= 0x0E7F) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x2E80 && c <= 0x2FDF) ||
         (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3130 && c <= 0x318F) ||
         (c >= 0x31F0 && c <= 0x31FF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF66 && c <= 0xFF9F) ||
         (c >= 0xF0000 && c <= 0xFFFFD) || (c >= 0x20000 && c <= 0x3FFFF);
}

bool is_word(char32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) != 0;
  if (c < 0xC0) return c == 0xAA || c == 0xB5 || c == 0xBA;
  if (c == 0xD7 || c == 0xF7) return false;
  if (c == 0x37E || c == 0x387) return false;                  // Greek punctuation
  if (c >= 0x2000 && c <= 0x2BFF) return false;                // punctuation, symbols
  if (c >= 0x3000 && c <= 0x303F) return false;                // CJK punctuation
  if (c >= 0xFF00 && c <= 0xFF0F) return false;
  if (c >= 0xFF1A && c <= 0xFF20) return false;
  if (c >= 0xFF3B && c <= 0xFF40) return false;
  if (c >= 0xFF5B && c <= 0xFF65) return false;
  if (c == kReplacement) return true;
  return true;
}

bool is_space(char32_t c) { return c == U' ' || c == U'\t' || c == 0x3000 || c == 0xA0; }

// One folded code point with the index of the character it came from.
struct Unit {
  char32_t c;
  std::uint32_t ch;
};

std::vector<Unit> fold_chars(const std::vector<Char>& chars) {
  std::vector<Unit> units;
  units.reserve(chars.size());
  std::u32string tmp;
  for (std::uint32_t k = 0; k < chars.size(); ++k) {
    tmp.clear();
    fold_into(chars[k].cp, tmp);
    for (const char32_t c : tmp) units.push_back({c, k});
  }
  return units;
}

std::u32string fold_string(const std::vector<Char>& chars, std::size_t first, std::size_t last) {
  std::u32string out;
  for (std::size_t k = first; k < last; ++k) fold_into(chars[k].cp, out);
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  for (const char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// Latin transliteration of a folded Greek or Cyrillic word (ELOT 743 / BGN-like); empty if
// the word has no such letters.
std::u32string transliterate(std::u32string_view word) {
  bool any = false;
  std::u32string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const char32_t c = word[i];
    const char* latin = nullptr;
    if (c >= 0x391 && c <= 0x3A9) {
      static const char* const kGreek[] = {"A", "V", "G", "D", "E", "Z", "I", "TH", "I",
                                           "K", "L", "M", "N", "X", "O", "P", "R", "",
                                           "S", "T", "Y", "F", "CH", "PS", "O"};
      latin = kGreek[c - 0x391];
      if (c == 0x39F && i + 1 < word.size() && word[i + 1] == 0x3A5) {  // ΟΥ -> OU
        latin = "OU";
        ++i;
      }
    } else if (c >= 0x400 && c <= 0x42F) {
      static const char* const kCyrillic[] = {
          "A", "B", "V", "G", "D", "E", "ZH", "Z", "I", "Y", "K", "L", "M", "N", "O", "P",
          "R", "S", "T", "U", "F", "KH", "TS", "CH", "SH", "SHCH", "", "Y", "", "E", "YU", "YA"};
      if (c >= 0x410) latin = kCyrillic[c - 0x410];
      else latin = c == 0x406 ? "I" : c == 0x404 ? "YE" : c == 0x407 ? "YI" : "";
    }
    if (latin == nullptr) {
      out += c;
      continue;
    }
    any = true;
    for (const char* p = latin; *p; ++p) out += static_cast<char32_t>(*p);
  }
  return any ? out : std::u32string{};
}

// ---------------------------------------------------------------------------------------
// Clinical vocabulary: words the title rule never takes for a name.

const std::unordered_set<std::string>& clinical_words() {
  static const std::unordered_set<std::string> words = [] {
    const char* const list[] = {
        // modalities and techniques
        "MR", "MRI", "MRA", "MRV", "MRS", "CT", "CTA", "PET", "SPECT", "NM", "US", "XA", "RF",
        "DX", "CR", "DR", "MG", "OT", "PT", "SC", "SR", "RT", "RTSTRUCT", "RTDOSE", "RTPLAN",
        "ECHO", "DOPPLER", "XRAY", "X-RAY", "FLUORO", "ANGIO", "ANGIOGRAPHY", "MAMMO",
        "MAMMOGRAPHY", "TOMO", "TOMOSYNTHESIS", "DEXA", "DXA", "ULTRASOUND", "SONO", "SCAN",
        "SCOUT", "LOCALIZER", "LOCALISER", "SURVEY", "TOPOGRAM", "PLAIN", "FILM", "IMAGE",
        "IMAGES", "SERIES", "STUDY", "EXAM", "EXAMINATION", "REPORT", "PROTOCOL", "ROUTINE",
        "SCREENING", "DIAGNOSTIC", "FOLLOW", "FOLLOWUP", "FU", "PRE", "POST", "OP", "POSTOP",
        "PREOP", "STAT", "URGENT", "EMERGENCY", "TRAUMA", "ONCOLOGY", "STAGING", "BIOPSY",
        "GUIDED", "INTERVENTION", "INTERVENTIONAL", "DRAINAGE", "INJECTION", "ARTHROGRAM",
        "MYELOGRAM", "VENOGRAM", "CHOLANGIOGRAM", "ENTEROGRAPHY", "UROGRAPHY", "COLONOGRAPHY",
        "PERFUSION", "DIFFUSION", "SPECTROSCOPY", "FUNCTIONAL", "CARDIAC", "CORONARY",
        "CALCIUM", "SCORE", "GATED", "TRIPLE", "RULE", "OUT", "PE", "STROKE", "CODE",
        // contrast and phases
        "CONTRAST", "WITH", "WITHOUT", "WO", "W", "IV", "ORAL", "GAD", "GADOLINIUM",
        "ENHANCED", "UNENHANCED", "NONCONTRAST", "NON", "ARTERIAL", "VENOUS", "PORTAL",
        "DELAYED", "EARLY", "LATE", "PHASE", "DYNAMIC", "NATIVE", "PLAIN", "BOLUS", "TRACKING",
        // body parts
        "HEAD", "BRAIN", "SKULL", "FACE", "FACIAL", "ORBIT", "ORBITS", "SINUS", "SINUSES",
        "TEMPORAL", "IAC", "IACS", "PITUITARY", "SELLA", "NECK", "SOFT", "TISSUE", "THYROID",
        "CHEST", "THORAX", "LUNG", "LUNGS", "HEART", "BREAST", "BREASTS", "AXILLA", "ABDOMEN",
        "ABD", "PELVIS", "PELVIC", "LIVER", "HEPATIC", "KIDNEY", "KIDNEYS", "RENAL", "BLADDER",
        "PROSTATE", "UTERUS", "OVARY", "OVARIES", "PANCREAS", "SPLEEN", "BOWEL", "COLON",
        "RECTUM", "SPINE", "SPINAL", "CERVICAL", "THORACIC", "LUMBAR", "SACRUM", "SACRAL",
        "COCCYX", "CSPINE", "TSPINE", "LSPINE", "WHOLE", "BODY", "WHOLEBODY", "EXTREMITY",
        "EXTREMITIES", "UPPER", "LOWER", "ARM", "FOREARM", "ELBOW", "WRIST", "HAND", "HANDS",
        "FINGER", "FINGERS", "THUMB", "SHOULDER", "SHOULDERS", "CLAVICLE", "SCAPULA", "HUMERUS",
        "HIP", "HIPS", "FEMUR", "THIGH", "KNEE", "KNEES", "LEG", "TIBIA", "FIBULA", "ANKLE",
        "FOOT", "FEET", "TOE", "TOES", "HEEL", "CALCANEUS", "JOINT", "JOINTS", "BONE", "BONES",
        "AORTA", "AORTIC", "CAROTID", "CAROTIDS", "CIRCLE", "WILLIS", "VESSELS", "VASCULAR",
        "RUNOFF", "PULMONARY", "MEDIASTINUM", "ADRENAL", "ADRENALS", "GALLBLADDER", "BILIARY",
        "MRCP", "ERCP", "TMJ", "DENTAL", "MANDIBLE", "MAXILLA", "TEETH", "EAR", "EARS", "EYE",
        "EYES", "NASAL", "TEMPORAL", "CEREBRAL", "CEREBELLUM", "HIPPOCAMPUS", "SCROTUM",
        "TESTES", "TESTIS", "FETAL", "OBSTETRIC", "OB", "GYN", "PEDS", "PEDIATRIC", "ADULT",
        // laterality and orientation
        "LEFT", "RIGHT", "BILATERAL", "BILAT", "LT", "RT", "L", "R", "AP", "PA", "LAT",
        "LATERAL", "OBLIQUE", "AXIAL", "AX", "SAGITTAL", "SAG", "CORONAL", "COR", "TRANSVERSE",
        "TRA", "ANTERIOR", "POSTERIOR", "SUPINE", "PRONE", "ERECT", "UPRIGHT", "DECUBITUS",
        "VIEW", "VIEWS", "PORTABLE", "MPR", "MIP", "MINIP", "VR", "3D", "2D", "RECON",
        "RECONSTRUCTION", "REFORMAT", "THIN", "THICK", "SLICE", "SLICES",
        // sequences and parameters
        "T1", "T2", "T1W", "T2W", "PD", "PDW", "FLAIR", "STIR", "DWI", "ADC", "DTI", "SWI",
        "GRE", "SE", "FSE", "TSE", "EPI", "MPRAGE", "SPGR", "FIESTA", "TRUFI", "BOLD", "ASL",
        "TOF", "PC", "VIBE", "LAVA", "DIXON", "FS", "FAT", "SAT", "WATER", "IN", "OPP",
        "INPHASE", "OPPOSED", "CINE", "TAGGING", "LGE", "HASTE", "SSFSE", "BLADE", "PROPELLER",
        "FLASH", "FISP", "SPACE", "CUBE", "MEDIC", "MERGE", "BRAVO", "FSPGR", "TRACE", "MAP",
        "MAPS", "B0", "B1000", "HIGH", "LOW", "RES", "RESOLUTION", "DOSE", "STANDARD", "SOFT",
        "SHARP", "BONE", "LUNG", "KERNEL", "WINDOW", "HELICAL", "SPIRAL", "SEQUENCE", "SEQ",
        "MM", "CM", "KV", "MA", "MAS", "SEC", "MS", "MIN",
        // other clinical words
        "NORMAL", "ABNORMAL", "FINDING", "FINDINGS", "IMPRESSION", "HISTORY", "INDICATION",
        "COMPARISON", "TECHNIQUE", "CLINICAL", "PAIN", "MASS", "LESION", "LESIONS", "NODULE",
        "TUMOR", "TUMOUR", "CANCER", "FRACTURE", "INJURY", "INFECTION", "SCLEROSIS", "MULTIPLE",
        "EVAL", "EVALUATION", "ASSESSMENT", "RULEOUT", "NO", "AND", "OF", "THE", "FOR", "TO",
        "ON", "AT", "BY", "OR", "AS", "PER", "SEE", "PROF", "DRS", "DEMYELINATING", "PLAQUE",
        "PLAQUES", "ISCHEMIA", "HEMORRHAGE", "HAEMORRHAGE", "BLEED", "SEIZURE", "EPILEPSY",
        "HEADACHE", "DEMENTIA", "CONCUSSION", "ANEURYSM", "AVM", "STENOSIS", "DISSECTION",
        "EMBOLISM", "THROMBOSIS", "DVT", "ABSCESS", "CYST", "METASTASIS", "METS", "PNEUMONIA",
        "EFFUSION", "ASCITES", "OBSTRUCTION", "HERNIA", "STONE", "STONES", "CALCULUS",
        "INFARCT", "INFARCTION", "ATROPHY", "EDEMA", "OEDEMA", "SWELLING", "TEAR", "RUPTURE",
        "MENISCUS", "LIGAMENT", "ACL", "PCL", "MCL", "LCL", "ROTATOR", "CUFF", "LABRUM",
        "CARTILAGE", "DISC", "DISK", "HERNIATION", "BASELINE", "CONTROL", "RESEARCH", "TRIAL",
        "PHANTOM", "QA", "QC", "TEST", "CALIBRATION", "TRIPLANE", "3PLANE", "COIL", "SURFACE",
        "NEURO", "MSK", "ONCO", "CARDIO", "VASC", "GI", "GU", "ENT", "HN", "IAC", "CSF", "FLOW",
        "STUDY", "PART", "ONE", "TWO", "OUTSIDE", "FILMS", "READ", "OVER", "SECOND", "OPINION",
        "VENTRICLE", "VENTRICLES", "WHITE", "MATTER", "GRAY", "GREY", "NERVE", "NERVES",
        "OPTIC", "ARTERY", "ARTERIES", "VEIN", "VEINS", "SCAPHOID", "PATELLA", "ACHILLES",
        "TENDON", "MUSCLE", "SMALL", "LARGE", "FIELD", "VIEW", "FOV", "MATRIX", "AVERAGE",
        "NEX", "TE", "TR", "TI", "FA", "ETL", "BW", "ROI", "SUV", "HU", "CTDI", "DLP", "A", "I",
        "AN", "AM", "BE", "DO", "GO", "HE", "IF", "IS", "IT", "ME", "MY", "OK", "SO", "UP", "WE",
        "ID", "PM"};
    return std::unordered_set<std::string>(std::begin(list), std::end(list));
  }();
  return words;
}

bool has_medical_suffix(const std::string& w) {
  static const char* const suffixes[] = {"GRAPHY", "GRAM", "SCOPY", "ITIS", "OMA", "ECTOMY",
                                         "OSTOMY", "PLASTY", "ATION", "OSIS", "ALGIA"};
  for (const char* s : suffixes) {
    if (w.size() > std::strlen(s) + 1 && w.ends_with(s)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Generic patterns: identifying content that needs no knowledge of the patient.

const std::vector<std::regex>& generic_patterns() {
  static const std::vector<std::regex> patterns = [] {
    const auto icase = std::regex::ECMAScript | std::regex::icase | std::regex::optimize;
    const std::string month = "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\\.?";
    return std::vector<std::regex>{
        // Dates: 2019-03-15, 2019/3/15, 15.03.2019, 3/15/19, 20190315
        std::regex("\\b\\d{4}[-/.]\\d{1,2}[-/.]\\d{1,2}\\b", icase),
        std::regex("\\b\\d{1,2}[-/.]\\d{1,2}[-/.]\\d{2,4}\\b", icase),
        std::regex("\\b(?:18|19|20)\\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\\d|3[01])\\b", icase),
        // 15 March 2019, March 15, 2019, Mar 2019, 04-Mar-1951
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
        std::regex("[A-Za-z'-]+(?:\\^+[A-Za-z'-]*)+", icase),
        // Ages over 89 (identifying under HIPAA Safe Harbor): 93 years, 91-year-old, 095Y,
        // 97 y/o, aged 102
        std::regex("\\b0?(?:9\\d|1\\d\\d)(?: ?- ?| )?(?:years?|yrs?|y/o|y\\.o\\.|yo|y)\\b(?:[ -]old)?",
                   icase),
        std::regex("\\baged? 0?(?:9\\d|1\\d\\d)\\b", icase),
        // US Social Security numbers: 123-45-6789
        std::regex("\\b\\d{3}-\\d{2}-\\d{4}\\b", icase),
    };
  }();
  return patterns;
}

// ---------------------------------------------------------------------------------------
// Marking.

struct Token {
  std::size_t first, last;  // units [first, last)
};

std::vector<Token> tokens_of(const std::vector<Unit>& units) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (i < units.size()) {
    if (!is_word(units[i].c) || is_cjk(units[i].c)) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < units.size() && is_word(units[j].c) && !is_cjk(units[j].c)) ++j;
    tokens.push_back({i, j});
    i = j;
  }
  return tokens;
}

struct Marker {
  const std::vector<Char>& chars;
  const std::vector<Unit>& units;
  std::vector<bool> marked;  // per character

  void units_range(std::size_t first, std::size_t last) {
    for (std::size_t k = first; k < last; ++k) marked[units[k].ch] = true;
  }
  bool token_marked(const Token& t) const {
    for (std::size_t k = t.first; k < t.last; ++k)
      if (marked[units[k].ch]) return true;
    return false;
  }
};

std::u32string token_text(const std::vector<Unit>& units, const Token& t) {
  std::u32string s;
  for (std::size_t k = t.first; k < t.last; ++k) s += units[k].c;
  return s;
}

// Whether `word` is a sequence of name parts and at most two initials, holding a part of
// three or more letters, or two parts, or a part and an initial (DOEJANE, JANEDOE, JDOE,
// JMDOE, LINA for LI^NA, XLI for X. LI). Clinical words are never
// taken apart this way (AXIAL is not A + X + IAL).
bool composed_of_names(std::u32string_view word, const PhiValues& phi) {
  if (word.size() < 3 || clinical_words().contains(to_utf8(word))) return false;
  // reach[i][k]: flags for position i reached using k initials (k <= 2): reached, a part of
  // three or more letters used, one part used, two parts used.
  constexpr std::uint8_t kReached = 1, kLong = 2, kOne = 4, kTwo = 8;
  std::vector<std::array<std::uint8_t, 3>> reach(word.size() + 1, {0, 0, 0});
  reach[0][0] = kReached;
  std::size_t max_part = 0;
  for (const auto& p : phi.parts()) max_part = std::max(max_part, p.size());
  for (std::size_t i = 0; i < word.size(); ++i) {
    for (std::size_t k = 0; k < 3; ++k) {
      const std::uint8_t here = reach[i][k];
      if (here == 0) continue;
      if (k < 2 && phi.initials().contains(word[i])) reach[i + 1][k + 1] |= here;
      for (std::size_t n = 2; n <= max_part && i + n <= word.size(); ++n) {
        if (phi.parts().contains(std::u32string(word.substr(i, n))))
          reach[i + n][k] |= static_cast<std::uint8_t>(here | (n >= 3 ? kLong : 0) |
                                                       ((here & kOne) ? kTwo : kOne));
      }
    }
  }
  for (std::size_t k = 0; k < 3; ++k) {
    const std::uint8_t end = reach[word.size()][k];
    if ((end & (kLong | kTwo)) || (k > 0 && (end & kOne))) return true;  // XLI for X. LI
  }
  return false;
}

void mark_names(Marker& m, const std::vector<Token>& tokens, const PhiValues& phi) {
  std::vector<bool> name_token(tokens.size(), false);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const std::u32string word = token_text(m.units, tokens[t]);
    bool hit = phi.parts().contains(word) || composed_of_names(word, phi);
    if (!hit && word.size() >= 6) {
      // A long name part inside a longer word (DOEJANEMRI, SMITHFOLLOWUP).
      for (const auto& part : phi.person_parts()) {
        if (part.size() >= 5 && word.find(part) != std::u32string::npos) {
          hit = true;
          break;
        }
      }
    }
    if (hit) {
      name_token[t] = true;
      m.units_range(tokens[t].first, tokens[t].last);
    }
  }
  // A name part written in pieces: "Xiao Dong" or "Xiao-Dong" for XIAODONG.
  for (std::size_t t = 0; t + 1 < tokens.size(); ++t) {
    std::u32string joined = token_text(m.units, tokens[t]);
    for (std::size_t n = t + 1; n < tokens.size() && n < t + 3; ++n) {
      const std::size_t gap_first = m.units[tokens[n - 1].last - 1].ch + 1;
      const std::size_t gap_last = m.units[tokens[n].first].ch;
      if (gap_last - gap_first != 1) break;
      const char32_t sep = m.chars[gap_first].cp;
      if (sep != U' ' && sep != U'-') break;
      joined += token_text(m.units, tokens[n]);
      if (joined.size() >= 4 && phi.parts().contains(joined)) {
        for (std::size_t k = t; k <= n; ++k) {
          name_token[k] = true;
          m.units_range(tokens[k].first, tokens[k].last);
        }
      }
    }
  }
  // Initials beside a name: "J. DOE", "DOE J", "J.Q. DOE".
  auto adjacent = [&](std::size_t a, std::size_t b) {  // tokens a < b, only ". ," between
    for (std::size_t k = m.units[tokens[a].last - 1].ch + 1; k < m.units[tokens[b].first].ch; ++k) {
      const char32_t c = m.chars[k].cp;
      if (c != U' ' && c != U'.' && c != U',') return false;
    }
    return true;
  };
  bool changed = true;
  while (changed) {
    changed = false;
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      if (name_token[t] || tokens[t].last - tokens[t].first != 1) continue;
      const char32_t letter = m.units[tokens[t].first].c;
      if (letter >= U'0' && letter <= U'9') continue;
      const bool before = t + 1 < tokens.size() && name_token[t + 1] && adjacent(t, t + 1);
      const bool after = t > 0 && name_token[t - 1] && adjacent(t - 1, t);
      if (before || after) {
        name_token[t] = true;
        m.units_range(tokens[t].first, tokens[t].last);
        changed = true;
      }
    }
  }
  // The patient's initials alone: "JD", "J.D.", "J. M. D."
  if (!phi.patient_initials().empty()) {
    for (std::size_t t = 0; t < tokens.size(); ++t) {
      if (phi.patient_initials().contains(token_text(m.units, tokens[t]))) {
        m.units_range(tokens[t].first, tokens[t].last);
        continue;
      }
      std::u32string letters;
      std::size_t n = t;
      while (n < tokens.size() && tokens[n].last - tokens[n].first == 1 && letters.size() < 3) {
        if (n > t) {
          const std::size_t a = m.units[tokens[n - 1].last - 1].ch + 1;
          const std::size_t b = m.units[tokens[n].first].ch;
          bool dotted = b - a >= 1 && b - a <= 2;
          for (std::size_t k = a; k < b; ++k)
            dotted = dotted && (m.chars[k].cp == U'.' || m.chars[k].cp == U' ');
          if (!dotted) break;
        }
        letters += m.units[tokens[n].first].c;
        ++n;
        if (letters.size() >= 2 && phi.patient_initials().contains(letters)) {
          m.units_range(tokens[t].first, tokens[n - 1].last);
          // the dot after the last initial goes with it
          const std::size_t after = m.units[tokens[n - 1].last - 1].ch + 1;
          if (after < m.chars.size() && m.chars[after].cp == U'.') m.marked[after] = true;
        }
      }
    }
  }
  // Parts in scripts without spaces: anywhere, also with spaces between their characters.
  for (const auto& part : phi.anywhere()) {
    for (std::size_t i = 0; i < m.units.size(); ++i) {
      if (m.units[i].c != part[0]) continue;
      std::size_t j = i, k = 0;
      while (j < m.units.size() && k < part.size()) {
        if (m.units[j].c == part[k]) {
          ++j;
          ++k;
        } else if (k > 0 && is_space(m.units[j].c)) {
          ++j;
        } else {
          break;
        }
      }
      if (k == part.size()) m.units_range(i, j);
    }
  }
}

bool id_separator(char32_t c) {
  return c == U'-' || c == U'_' || c == U'.' || c == U'/' || c == U' ' || c == U':' ||
         c == U'#';
}

void mark_identifiers(Marker& m, const std::vector<Token>& tokens, const PhiValues& phi) {
  if (phi.identifiers().empty()) return;
  // Token index of each unit (or npos).
  std::vector<std::size_t> token_of(m.units.size(), std::string::npos);
  for (std::size_t t = 0; t < tokens.size(); ++t)
    for (std::size_t k = tokens[t].first; k < tokens[t].last; ++k) token_of[k] = t;
  for (const auto& id : phi.identifiers()) {
    const bool anywhere = id.size() >= 5;
    for (std::size_t start = 0; start < m.units.size(); ++start) {
      if (m.units[start].c != id[0] || token_of[start] == std::string::npos) continue;
      if (!anywhere && tokens[token_of[start]].first != start) continue;
      std::size_t i = start, k = 0, gap = 0;
      while (i < m.units.size() && k < id.size()) {
        if (m.units[i].c == id[k]) {
          ++i;
          ++k;
          gap = 0;
        } else if (k > 0 && id_separator(m.units[i].c) && gap < 2) {
          ++i;
          ++gap;
        } else {
          break;
        }
      }
      if (k != id.size()) continue;
      const std::size_t end_token = token_of[i - 1];
      if (!anywhere && tokens[end_token].last != i) continue;
      std::size_t first = start, last = i;
      if (anywhere) {  // the whole codes holding it go (MRN12345678, 12345678X)
        first = tokens[token_of[start]].first;
        last = tokens[end_token].last;
      }
      // A check digit after a dash or slash: 12345678-9, 12345678/K.
      if (last + 1 < m.units.size() && (m.units[last].c == U'-' || m.units[last].c == U'/') &&
          token_of[last + 1] != std::string::npos &&
          tokens[token_of[last + 1]].last - tokens[token_of[last + 1]].first <= 2)
        last = tokens[token_of[last + 1]].last;
      m.units_range(first, last);
    }
  }
}

// A title followed by a name: "Dr. X", "Mrs Jane Doe", "DR. SMITH". All-capital MR, MS, DR
// without a period are modality codes and abbreviations as often as titles: they count only
// before a word that is not clinical vocabulary.
void mark_titles(Marker& m, const std::vector<Token>& tokens) {
  static const std::unordered_set<std::string> kTitles = {
      "DR", "MR", "MRS", "MS", "MISS", "MX", "PROF", "PROFESSOR", "DOCTOR", "SIR", "DAME",
      "HERR", "FRAU", "DRA", "SR", "SRA", "SRTA", "MME", "MLLE", "DOTT", "SIG", "SIGRA"};
  static const std::unordered_set<std::string> kAmbiguous = {"DR", "MR", "MS", "SR", "MRS"};
  auto original = [&](const Token& t) {  // the token's ASCII text as written ("" if not ASCII)
    std::string s;
    for (std::size_t k = m.units[t.first].ch; k <= m.units[t.last - 1].ch; ++k) {
      if (m.chars[k].cp >= 0x80) return std::string();
      s += static_cast<char>(m.chars[k].cp);
    }
    return s;
  };
  auto upper = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  auto between = [&](const Token& a, const Token& b) {
    std::u32string s;
    for (std::size_t k = m.units[a.last - 1].ch + 1; k < m.units[b.first].ch; ++k)
      s += m.chars[k].cp;
    return s;
  };
  for (std::size_t t = 0; t + 1 < tokens.size(); ++t) {
    const std::string written = original(tokens[t]);
    const std::string title = upper(written);
    if (!kTitles.contains(title)) continue;
    const std::u32string gap = between(tokens[t], tokens[t + 1]);
    if (gap != U" " && gap != U". " && gap != U"." && gap != U".  " && gap != U"  ") continue;
    const bool period = gap.starts_with(U".");
    const bool all_caps = written == title;
    const bool ambiguous = all_caps && !period && kAmbiguous.contains(title);
    std::size_t n = t + 1;
    std::size_t taken = 0;
    while (n < tokens.size() && taken < 3) {
      if (taken > 0) {
        const std::u32string g = between(tokens[n - 1], tokens[n]);
        if (g != U" " && g != U". " && g != U"-") break;
      }
      const std::string word = original(tokens[n]);
      if (word.empty()) {  // a name in another script after a title
        m.units_range(tokens[n].first, tokens[n].last);
        ++taken;
        ++n;
        continue;
      }
      const bool capitalised = std::isupper(static_cast<unsigned char>(word[0])) != 0;
      const bool alphabetic = std::all_of(word.begin(), word.end(), [](char c) {
        return std::isalpha(static_cast<unsigned char>(c)) || c == '\'';
      });
      if (!capitalised || !alphabetic) break;
      const std::string w = upper(word);
      if (ambiguous || taken > 0) {
        // Ambiguous titles, and words after the first name: only words that are not
        // clinical vocabulary (MR FEMUR, Dr. X FEMUR).
        if (clinical_words().contains(w) || has_medical_suffix(w)) break;
        if (ambiguous && w.size() < 2) break;
        if (taken > 0 && !(std::islower(static_cast<unsigned char>(word.back())) ||
                           word.size() == 1 || all_caps))
          break;
      }
      m.units_range(tokens[n].first, tokens[n].last);
      ++taken;
      ++n;
    }
  }
}

void mark_generic(Marker& m, std::string_view text) {
  // Cheap tests first: every pattern needs digits, an '@' or a '^' (std::regex is slow, and
  // most descriptions hold none of them in the amounts the patterns need).
  const auto digits = std::count_if(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  const bool at = text.find('@') != std::string_view::npos;
  const bool caret = text.find('^') != std::string_view::npos;
  if (digits < 2 && !at && !caret) return;
  const std::string subject(text);
  std::vector<bool> bytes(text.size(), false);
  const auto& patterns = generic_patterns();
  for (std::size_t index = 0; index < patterns.size(); ++index) {
    const auto& pattern = patterns[index];
    // Patterns 0-7 need three digits or more, 8 an '@', 9-10 four digits, 11 a '^', the age
    // patterns two digits.
    if (index <= 7 && digits < 3) continue;
    if (index == 8 && !at) continue;
    if ((index == 9 || index == 10) && digits < 4) continue;
    if (index == 11 && !caret) continue;
    if (index >= 12 && digits < 2) continue;
    for (auto it = std::sregex_iterator(subject.begin(), subject.end(), pattern);
         it != std::sregex_iterator(); ++it) {
      const auto begin = static_cast<std::size_t>(it->position(0));
      const auto end = begin + static_cast<std::size_t>(it->length(0));
      for (std::size_t b = begin; b < end; ++b) bytes[b] = true;
    }
  }
  for (std::size_t k = 0; k < m.chars.size(); ++k)
    for (std::size_t b = m.chars[k].begin; b < m.chars[k].end; ++b)
      if (bytes[b]) m.marked[k] = true;
}

std::string canonical(const std::string& designation) {
  return designation.empty() ? std::string("\x1b(B") : designation;
}

bool ascii_compatible(const std::string& designation) {
  return designation.empty() || designation == "\x1b(B" || designation == "\x1b(J";
}

std::string rebuild(std::string_view text, const Decoded& d, const std::vector<bool>& marked) {
  std::string out;
  out.reserve(text.size());
  std::uint8_t g0 = 0, g1 = 0;  // what the output has designated so far
  bool previous = false;
  for (std::size_t k = 0; k < d.chars.size(); ++k) {
    const Char& c = d.chars[k];
    if (marked[k]) {
      if (!previous) {
        if (!ascii_compatible(d.designations[g0])) {
          out += "\x1b(B";
          g0 = 0;
          for (std::uint8_t i = 0; i < d.designations.size(); ++i)
            if (d.designations[i] == "\x1b(B") g0 = i;
        }
        out += '*';
      }
      previous = true;
      continue;
    }
    previous = false;
    if (canonical(d.designations[c.g0]) != canonical(d.designations[g0])) {
      out += canonical(d.designations[c.g0]);
      g0 = c.g0;
    }
    if (c.g1 != g1 && static_cast<unsigned char>(text[c.begin]) >= 0x80) {
      out += d.designations[c.g1];
      g1 = c.g1;
    }
    out.append(text.substr(c.begin, c.end - c.begin));
  }
  if (!ascii_compatible(d.designations[g0])) out += "\x1b(B";
  return out;
}

// Marks what the object's own values identify (names, identifiers), then, with
// `generic`, dates, numbers, addresses and names after titles.
std::vector<bool> mark_all(std::string_view text, const Decoded& d, const PhiValues& phi,
                           bool generic) {
  const std::vector<Unit> units = fold_chars(d.chars);
  Marker m{d.chars, units, std::vector<bool>(d.chars.size(), false)};
  const std::vector<Token> tokens = tokens_of(units);
  mark_names(m, tokens, phi);
  mark_identifiers(m, tokens, phi);
  if (generic) {
    mark_titles(m, tokens);
    mark_generic(m, text);
  } else {
    // Dates of the object in the forms a folder name uses: 19510304, 1951-03-04, 04.03.1951.
    std::u32string digits;
    std::vector<std::size_t> at;
    for (std::size_t k = 0; k < units.size(); ++k) {
      if (units[k].c >= U'0' && units[k].c <= U'9') {
        digits += units[k].c;
        at.push_back(k);
      }
    }
    for (const auto& date : phi.dates()) {
      const std::string y = date.substr(0, 4), mo = date.substr(4, 2), da = date.substr(6, 2);
      for (const std::string& form : {y + mo + da, da + mo + y, mo + da + y}) {
        const std::u32string f(form.begin(), form.end());
        for (auto pos = digits.find(f); pos != std::u32string::npos; pos = digits.find(f, pos + 1))
          m.units_range(at[pos], at[pos + f.size() - 1] + 1);
      }
    }
  }
  // Combining marks go with the letter they sit on; separators between two removed spans
  // go with them ("DOE, JANE" -> "*", not "*, *": the number of names is not left behind).
  auto& marked = m.marked;
  for (std::size_t k = 1; k < d.chars.size(); ++k) {
    const char32_t c = d.chars[k].cp;
    if (c >= 0x300 && c <= 0x36F && marked[k - 1]) marked[k] = true;
  }
  auto joins = [](char32_t c) {
    return c == U' ' || c == U',' || c == U'.' || c == U'-' || c == U'_' || c == U'^' ||
           c == 0x3000 || c == U'\'';
  };
  for (std::size_t k = 1; k < d.chars.size(); ++k) {
    if (marked[k] || !marked[k - 1] || !joins(d.chars[k].cp)) continue;
    std::size_t j = k;
    while (j < d.chars.size() && j - k < 3 && !marked[j] && joins(d.chars[j].cp)) ++j;
    if (j < d.chars.size() && marked[j])
      for (std::size_t x = k; x < j; ++x) marked[x] = true;
  }
  return m.marked;
}

}  // namespace

TextEncoding encoding_for(std::string_view specific_character_set) {
  const auto has = [&](std::string_view term) {
    return specific_character_set.find(term) != std::string_view::npos;
  };
  if (has("GB18030") || has("GBK")) return TextEncoding::gb18030;
  if (has("ISO_IR 192")) return TextEncoding::utf8;
  // The first value names the set bytes >= 0x80 belong to before any escape sequence.
  const std::string_view first = specific_character_set.substr(
      0, std::min(specific_character_set.find('\\'), specific_character_set.size()));
  Charset g1 = Charset::latin1;
  static const std::pair<std::string_view, Charset> kSets[] = {
      {"IR 100", Charset::latin1},  {"IR 101", Charset::latin2}, {"IR 109", Charset::latin3},
      {"IR 110", Charset::latin4},  {"IR 144", Charset::cyrillic}, {"IR 127", Charset::arabic},
      {"IR 126", Charset::greek},   {"IR 138", Charset::hebrew}, {"IR 148", Charset::latin5},
      {"IR 203", Charset::latin9},  {"IR 166", Charset::thai},   {"IR 13", Charset::katakana}};
  bool named = false;
  for (const auto& [term, set] : kSets) {
    if (first.find(term) != std::string_view::npos &&
        (first.size() == first.find(term) + term.size() ||
         !std::isdigit(static_cast<unsigned char>(first[first.find(term) + term.size()])))) {
      g1 = set;
      named = true;
    }
  }
  if (has("ISO 2022") || has("IR 87") || has("IR 159") || has("IR 149") || has("IR 58"))
    return TextEncoding{TextEncoding::Form::iso2022, named ? g1 : Charset::none};
  return TextEncoding{TextEncoding::Form::single_byte, g1};
}

std::string fold_for_matching(std::string_view text, TextEncoding encoding) {
  const auto d = decode(text, encoding);
  if (!d) return {};
  return to_utf8(fold_string(d->chars, 0, d->chars.size()));
}

void PhiValues::add_part(std::u32string part, bool person) {
  if (part.empty()) return;
  const bool cjk = std::any_of(part.begin(), part.end(), is_cjk);
  if (cjk) {
    if (std::find(anywhere_.begin(), anywhere_.end(), part) == anywhere_.end())
      anywhere_.push_back(part);
    return;
  }
  // Clinical vocabulary is never a name part of an institution, address or issuer, nor a
  // short name part (an operator written as "RT" or "MR" must not take those words from
  // every description); a patient named Head still loses "HEAD".
  if (!patient_ && clinical_words().contains(to_utf8(part)) && (!person || part.size() <= 3))
    return;
  if (person) initials_.insert(part[0]);
  if (part.size() < 2) return;
  if (person && part.size() >= 5) person_parts_.push_back(part);
  if (!person && part.size() < 3) return;
  if (auto latin = transliterate(part); !latin.empty() && latin.size() >= 2) {
    parts_.insert(latin);
    if (person) initials_.insert(latin[0]);
  }
  parts_.insert(std::move(part));
}

void PhiValues::add_person_name(std::string_view value, TextEncoding encoding) {
  const auto d = decode(value, encoding);
  if (!d) return;
  std::u32string part, transcribed, folded;
  auto flush = [&] {
    if (transcribed != part) add_part(transcribed, true);
    add_part(std::move(part), true);
    part.clear();
    transcribed.clear();
  };
  for (const Char& c : d->chars) {
    folded.clear();
    fold_into(c.cp, folded);
    if (c.cp == U'^' || c.cp == U'=' || c.cp == U'\\' || c.cp == kReplacement ||
        (!folded.empty() && !is_word(folded[0]))) {
      flush();
      continue;
    }
    part += folded;
    if (!fold_transcribed(c.cp, transcribed)) transcribed += folded;
  }
  flush();
}

void PhiValues::add_patient_name(std::string_view value, TextEncoding encoding) {
  // The patient's own name parts count even when they are clinical words (MA, HE, LI).
  patient_ = true;
  add_person_name(value, encoding);
  patient_ = false;
  const auto d = decode(value, encoding);
  if (!d) return;
  // Initials of the first component group (family^given^middle), in the orders people
  // write them: given middle family, family given middle, given family, family given.
  std::vector<char32_t> first;  // first letter of family, given, middle
  std::u32string folded;
  bool at_start = true;
  for (const Char& c : d->chars) {
    if (c.cp == U'=') break;
    if (c.cp == U'^') {
      if (at_start) first.push_back(0);
      at_start = true;
      continue;
    }
    folded.clear();
    fold_into(c.cp, folded);
    if (at_start && !folded.empty() && folded[0] < 0x80 && std::isalpha(static_cast<int>(folded[0]))) {
      first.push_back(folded[0]);
      at_start = false;
    } else if (at_start && !folded.empty()) {
      at_start = false;
      first.push_back(0);
    }
  }
  first.resize(3, 0);
  const char32_t f = first[0], g = first[1], m = first[2];
  if (f == 0 || g == 0) return;
  std::vector<std::u32string> forms = {{g, f}, {f, g}};
  if (m != 0) forms.insert(forms.end(), {{g, m, f}, {f, g, m}});
  for (auto& form : forms)
    if (!clinical_words().contains(to_utf8(form))) patient_initials_.insert(form);
}

void PhiValues::add_identifier(std::string_view value, TextEncoding encoding) {
  const auto d = decode(value, encoding);
  if (!d) return;
  std::u32string id;
  auto flush = [&] {
    std::u32string variants[2] = {id, {}};
    const auto nonzero = id.find_first_not_of(U'0');
    if (nonzero != 0 && nonzero != std::u32string::npos && id.size() - nonzero >= 4)
      variants[1] = id.substr(nonzero);
    for (auto& v : variants) {
      if (v.size() >= 3 && std::find(identifiers_.begin(), identifiers_.end(), v) == identifiers_.end())
        identifiers_.push_back(v);
    }
    id.clear();
  };
  for (const auto& u : fold_chars(d->chars)) {
    if (u.c == U'\\') {
      flush();
    } else if (is_word(u.c)) {
      id += u.c;
    }
  }
  flush();
}

void PhiValues::add_text(std::string_view value, TextEncoding encoding) {
  static const std::unordered_set<std::u32string> kFunctionWords = {
      U"THE", U"AND", U"FOR", U"VON", U"VAN", U"DER", U"DEN", U"DES", U"DEL", U"DIE", U"LES",
      U"LOS", U"LAS", U"UND", U"WITH"};
  const auto d = decode(value, encoding);
  if (!d) return;
  std::u32string word;
  auto flush = [&] {
    if (!kFunctionWords.contains(word)) add_part(word, false);
    word.clear();
  };
  for (const auto& u : fold_chars(d->chars)) {
    if (is_word(u.c)) {
      word += u.c;
    } else {
      flush();
    }
  }
  flush();
}

void PhiValues::add_date(std::string_view value) {
  std::string digits;
  for (const char c : value) {
    if (std::isdigit(static_cast<unsigned char>(c))) digits += c;
    if (digits.size() == 8) break;
  }
  if (digits.size() == 8 && std::find(dates_.begin(), dates_.end(), digits) == dates_.end())
    dates_.push_back(digits);
}

std::vector<std::string> PhiValues::words() const {
  std::vector<std::string> out;
  for (const auto& p : parts_) out.push_back(to_utf8(p));
  for (const auto& p : anywhere_) out.push_back(to_utf8(p));
  std::sort(out.begin(), out.end());
  return out;
}

bool PhiValues::names_in(std::string_view component) const {
  const auto d = decode(component, TextEncoding::utf8);
  if (!d) return true;
  const auto marked = mark_all(component, *d, *this, /*generic=*/false);
  return std::find(marked.begin(), marked.end(), true) != marked.end();
}

std::string scrub_text(std::string_view text, const PhiValues& phi, TextEncoding encoding) {
  if (text.empty()) return {};
  const auto d = decode(text, encoding);
  if (!d) return "*";
  const std::vector<bool> marked = mark_all(text, *d, phi, /*generic=*/true);
  if (std::find(marked.begin(), marked.end(), true) == marked.end()) return std::string(text);
  return rebuild(text, *d, marked);
}

}  // namespace radguard::deid
