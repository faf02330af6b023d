// Build-time generator: turns the DICOM standard data files under data/standard/
// into C++ tables, so no attribute action is ever hand-typed.
//
// usage: tablegen DATA_DIR OUTPUT.cpp [TAGS.hpp]
//        tablegen --dcmtk-dictionary OUTPUT.cpp FILE.dic...
//
// The second form turns data dictionaries in DCMTK's text format into the rows radguard gives
// DCMTK at start-up (src/dicom/dcmtk_dictionary.hpp), read the way DCMTK's own loader
// (DcmDataDictionary::loadDictionary) reads them, in file order, so that DCMTK never parses
// a text dictionary at run time.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& why) {
  std::cerr << "tablegen: " << why << "\n";
  std::exit(1);
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot open " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(cell);
      cell.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(cell);
      cell.clear();
      if (!(row.size() == 1 && row[0].empty())) rows.push_back(row);
      row.clear();
    } else {
      cell += c;
    }
  }
  if (!cell.empty() || !row.empty()) {
    row.push_back(cell);
    rows.push_back(row);
  }
  if (rows.empty()) die(path + " is empty");
  return rows;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string action_enum(const std::string& code, const std::string& where) {
  static const std::map<std::string, std::string> names = {
      {"", "none"},       {"X", "X"},          {"Z", "Z"},        {"D", "D"},     {"K", "K"},
      {"C", "C"},         {"U", "U"},          {"Z/D", "Z_D"},    {"X/Z", "X_Z"}, {"X/D", "X_D"},
      {"X/Z/D", "X_Z_D"}, {"X/Z/U*", "X_Z_U"}, {"X/Z/U", "X_Z_U"}};
  const auto it = names.find(code);
  if (it == names.end()) die("unknown action code '" + code + "' in " + where);
  return "ActionCode::" + it->second;
}

// "(gggg,eeee)" with x as wildcard digits -> value and mask.
struct TagPattern {
  unsigned group = 0, element = 0, group_mask = 0xFFFF, element_mask = 0xFFFF;
};

bool parse_pattern(const std::string& text, TagPattern& out) {
  if (text.size() != 11 || text[0] != '(' || text[5] != ',' || text[10] != ')') return false;
  auto parse4 = [](const std::string& s, unsigned& value, unsigned& mask) {
    value = 0;
    mask = 0;
    for (char c : s) {
      value <<= 4;
      mask <<= 4;
      if (c == 'x' || c == 'X') continue;
      mask |= 0xF;
      if (c >= '0' && c <= '9')
        value |= unsigned(c - '0');
      else if (c >= 'A' && c <= 'F')
        value |= unsigned(c - 'A' + 10);
      else if (c >= 'a' && c <= 'f')
        value |= unsigned(c - 'a' + 10);
      else
        return false;
    }
    return true;
  };
  return parse4(text.substr(1, 4), out.group, out.group_mask) &&
         parse4(text.substr(6, 4), out.element, out.element_mask);
}

std::string hex4(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", v & 0xFFFF);
  return buf;
}

void generate_profile(const std::string& dir, std::ostream& out) {
  const auto rows = read_csv(dir + "/ps3.15-2026d-table-E.1-1.csv");
  const std::vector<std::string> expected = {"AttributeName",
                                             "Tag",
                                             "Retired",
                                             "InStdCompIOD",
                                             "BasicProfile",
                                             "RtnSafePrivOpt",
                                             "RtnUIDsOpt",
                                             "RtnDevIdOpt",
                                             "RtnInstIdOpt",
                                             "RtnPatCharsOpt",
                                             "RtnLongFullDatesOpt",
                                             "RtnLongModifDatesOpt",
                                             "CleanDescOpt",
                                             "CleanStructContOpt",
                                             "CleanGraphOpt"};
  if (rows[0] != expected) die("unexpected header in Table E.1-1");
  out << "const std::array<ProfileRow, " << rows.size() - 1 << "> kProfileRows = {{\n";
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.size() != expected.size())
      die("Table E.1-1 row " + std::to_string(i) + " has wrong cell count");
    TagPattern p;
    bool private_row = false;
    if (!parse_pattern(r[1], p)) {
      if (r[1].find("gggg is odd") != std::string::npos) {
        private_row = true;
      } else {
        die("cannot parse tag " + r[1]);
      }
    }
    out << "  {" << hex4(p.group) << ", " << hex4(p.element) << ", " << hex4(p.group_mask) << ", "
        << hex4(p.element_mask) << ", " << (private_row ? "true" : "false") << ", " << quote(r[0])
        << ", " << (r[2] == "Y" ? "true" : "false") << ", " << action_enum(r[4], r[1]) << ", {";
    for (size_t c = 5; c < 15; ++c) out << (c > 5 ? ", " : "") << action_enum(r[c], r[1]);
    out << "}},\n";
  }
  out << "}};\n\n";
}

void generate_safe_private(const std::string& dir, std::ostream& out) {
  const auto rows = read_csv(dir + "/ps3.15-2026c-table-E.3.10-1-safe-private.csv");
  std::vector<std::string> lines;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.size() < 3) die("safe private row " + std::to_string(i) + " is short");
    // "(7053,xx00)": group, then the element's low byte.
    const std::string& t = r[0];
    if (t.size() != 11 || t.substr(6, 2) != "xx") die("unexpected safe private tag " + t);
    const unsigned group = std::stoul(t.substr(1, 4), nullptr, 16);
    const unsigned low = std::stoul(t.substr(8, 2), nullptr, 16);
    lines.push_back("  {" + hex4(group) + ", " + std::to_string(low) + ", " + quote(r[1]) + ", " +
                    quote(r[2]) + "},\n");
  }
  out << "const std::array<SafePrivateRow, " << lines.size() << "> kSafePrivateRows = {{\n";
  for (const auto& l : lines) out << l;
  out << "}};\n\n";
}

void generate_cid7050(const std::string& dir, std::ostream& out) {
  const auto rows = read_csv(dir + "/ps3.16-cid-7050-deidentification-method-codes.csv");
  out << "const std::array<CodedConcept, " << rows.size() - 1 << "> kCid7050 = {{\n";
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out << "  {" << quote(r[0]) << ", " << quote(r[1]) << ", " << quote(r[2]) << "},\n";
  }
  out << "}};\n\n";
}

void generate_structured_content(const std::string& dir, std::ostream& out) {
  const auto rows =
      read_csv(dir + "/ps3.15-2026c-table-E.3.4-1-clean-structured-content-codes.csv");
  // CodeMeaning,CodeValue,CodingSchemeDesignator,ValueType,Retired,InStdTemplate,BasicProfile,
  // RtnUIDsOpt,RtnDevIdOpt,RtnInstIdOpt,RtnPatCharsOpt,RtnLongFullDatesOpt,RtnLongModifDatesOpt,CleanDescOpt
  out << "const std::array<StructuredContentRow, " << rows.size() - 1
      << "> kStructuredContentRows = {{\n";
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    if (r.size() != 14) die("Table E.3.4-1 row " + std::to_string(i) + " has wrong cell count");
    out << "  {" << quote(r[1]) << ", " << quote(r[2]) << ", " << quote(r[0]) << ", "
        << action_enum(r[6], r[1]) << ", {";
    // Order matches ProfileOption: safe private, UIDs, device, institution, patient chars,
    // full dates, modified dates, clean descriptors, structured content, graphics.
    const std::string cells[10] = {"", r[7], r[8], r[9], r[10], r[11], r[12], r[13], "", ""};
    for (int c = 0; c < 10; ++c) out << (c ? ", " : "") << action_enum(cells[c], r[1]);
    out << "}},\n";
  }
  out << "}};\n\n";
}

struct DictEntry {
  unsigned group_lo, group_hi, element_lo, element_hi;
  std::string vr, keyword, vm;
  bool retired;
};

std::vector<DictEntry> generate_dictionary(const std::string& dir, std::ostream& out) {
  std::ifstream in(dir + "/dcmtk-dicom-2026b.dic");
  if (!in) die("cannot open dictionary");
  std::vector<DictEntry> entries;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, '\t')) f.push_back(cell);
    if (f.size() < 5) die("dictionary line has too few fields: " + line);
    const std::string& t = f[0];
    // (gggg,eeee) or with ranges (gggg-GGGG,eeee) / (gggg,eeee-EEEE)
    const auto comma = t.find(',');
    if (t.front() != '(' || t.back() != ')' || comma == std::string::npos) die("bad tag " + t);
    auto parse_range = [&](const std::string& s, unsigned& lo, unsigned& hi) {
      const auto dash = s.find('-');
      // Private entries, and the "-o-" (odd) / "-u-" (any) ranges that cover private
      // creators and group lengths: radguard handles those by rule, not by dictionary.
      if (s.find('"') != std::string::npos || s.find("-o-") != std::string::npos ||
          s.find("-u-") != std::string::npos)
        return false;
      lo = std::stoul(s.substr(0, dash), nullptr, 16);
      hi = dash == std::string::npos ? lo : std::stoul(s.substr(dash + 1), nullptr, 16);
      return true;
    };
    DictEntry e{};
    if (!parse_range(t.substr(1, comma - 1), e.group_lo, e.group_hi)) continue;
    if (!parse_range(t.substr(comma + 1, t.size() - comma - 2), e.element_lo, e.element_hi))
      continue;
    e.vr = f[1];
    e.keyword = f[2];
    e.vm = f[3];
    e.retired = f[4].find("retired") != std::string::npos;
    entries.push_back(e);
  }
  std::sort(entries.begin(), entries.end(), [](const DictEntry& a, const DictEntry& b) {
    return std::tie(a.group_lo, a.element_lo) < std::tie(b.group_lo, b.element_lo);
  });
  out << "const std::array<DictionaryRow, " << entries.size() << "> kDictionaryRows = {{\n";
  for (const auto& e : entries) {
    out << "  {" << hex4(e.group_lo) << ", " << hex4(e.group_hi) << ", " << hex4(e.element_lo)
        << ", " << hex4(e.element_hi) << ", " << quote(e.vr) << ", " << quote(e.keyword) << ", "
        << quote(e.vm) << ", " << (e.retired ? "true" : "false") << "},\n";
  }
  out << "}};\n\n";

  // Date/time pairs: an attribute XxxDate (DA) whose partner XxxTime (TM) sits beside it,
  // so a shifted date carries the day overflow of its shifted time.
  std::map<std::string, const DictEntry*> by_keyword;
  for (const auto& e : entries) by_keyword[e.keyword] = &e;
  std::vector<std::pair<const DictEntry*, const DictEntry*>> pairs;
  for (const auto& e : entries) {
    if (e.vr != "DA" || e.keyword.size() < 4) continue;
    const auto pos = e.keyword.rfind("Date");
    if (pos == std::string::npos) continue;
    std::string partner = e.keyword;
    partner.replace(pos, 4, "Time");
    const auto it = by_keyword.find(partner);
    if (it != by_keyword.end() && it->second->vr == "TM" && e.group_lo == e.group_hi &&
        it->second->group_lo == it->second->group_hi)
      pairs.emplace_back(&e, it->second);
  }
  out << "const std::array<DateTimePair, " << pairs.size() << "> kDateTimePairs = {{\n";
  for (const auto& [d, t] : pairs) {
    out << "  {{" << hex4(d->group_lo) << ", " << hex4(d->element_lo) << "}, {" << hex4(t->group_lo)
        << ", " << hex4(t->element_lo) << "}},\n";
  }
  out << "}};\n\n";
  return entries;
}

// One named constant per single-tag dictionary entry (radguard::tags::PatientName), so code
// names attributes by the standard's keyword instead of keeping its own copies of tags.
std::string generate_tag_names(const std::vector<DictEntry>& entries) {
  std::ostringstream out;
  out << "#pragma once\n"
         "// Generated by tools/tablegen from data/standard/ (the PS3.6 dictionary). Do not edit.\n"
         "#include \"core/tag.hpp\"\n\n"
         "namespace radguard::tags {\n\n";
  std::set<std::string> seen;
  for (const auto& e : entries) {
    if (e.group_lo != e.group_hi || e.element_lo != e.element_hi || e.keyword.empty()) continue;
    if (!seen.insert(e.keyword).second) continue;  // a keyword reused by a retired entry
    out << "inline constexpr Tag " << e.keyword << "{" << hex4(e.group_lo) << ", "
        << hex4(e.element_lo) << "};\n";
  }
  out << "\n}  // namespace radguard::tags\n";
  return out.str();
}

// ---------------------------------------------------------------------------------------
// DCMTK's data dictionary, read as DcmDataDictionary::loadDictionary reads it: tab-separated
// "tag VR name [VM [version]]", comment lines starting with '#', tags (gggg,eeee) with ranges
// (gggg-GGGG: even only; gggg-o-GGGG odd, -e- even, -u- any) and private creators
// (gggg,"CREATOR",ee). A line DCMTK would reject stops the build instead of being skipped.

std::string strip_all_space(const std::string& s) {
  std::string out;
  for (const char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

std::string strip_outer_space(const std::string& s) {
  std::size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

struct TagPart {
  unsigned lo = 0, hi = 0;
  char range = 'u';  // 'u' unspecified, 'o' odd, 'e' even (DcmDictRangeRestriction)
};

bool parse_tag_part(const std::string& s, TagPart& part) {
  char restrictor = ' ';
  if (std::sscanf(s.c_str(), "%x-%c-%x", &part.lo, &restrictor, &part.hi) == 3) {
    switch (restrictor) {
      case 'o': case 'O': part.range = 'o'; return true;
      case 'e': case 'E': part.range = 'e'; return true;
      case 'u': case 'U': part.range = 'u'; return true;
      default: return false;
    }
  }
  if (std::sscanf(s.c_str(), "%x-%x", &part.lo, &part.hi) == 2) {
    part.range = 'e';  // a plain range is even-only, as DCMTK reads it
    return true;
  }
  if (std::sscanf(s.c_str(), "%x", &part.lo) == 1) {
    part.hi = part.lo;
    part.range = 'u';
    return true;
  }
  return false;
}

bool parse_vm(const std::string& field, int& vm_min, int& vm_max) {
  const std::string s = strip_all_space(field);
  const char* v = s.c_str();
  char c = 0;
  int ignored = 0;
  if (std::sscanf(v, "%d-%d%c", &vm_min, &ignored, &c) == 3) {
    vm_max = -1;  // "2-2n" is read as "2-n"
    return c == 'n' || c == 'N';
  }
  if (std::sscanf(v, "%d-%d", &vm_min, &vm_max) == 2) return true;
  if (std::sscanf(v, "%d-%c", &vm_min, &c) == 2) {
    vm_max = -1;
    return c == 'n' || c == 'N';
  }
  if (std::sscanf(v, "%d%c", &vm_min, &c) == 2) {
    vm_max = -1;
    return c == 'n' || c == 'N';
  }
  if (std::sscanf(v, "%d", &vm_min) == 1) {
    vm_max = vm_min;
    return true;
  }
  if (std::sscanf(v, "%c", &c) == 1 && (c == 'n' || c == 'N')) {
    vm_min = 1;
    vm_max = -1;
    return true;
  }
  return false;
}

struct DcmtkRow {
  TagPart group, element;
  std::string vr, name, version, creator;
  bool has_creator = false;
  int vm_min = 1, vm_max = 1;
};

bool parse_dcmtk_tag(const std::string& field, DcmtkRow& row) {
  const std::string s = strip_outer_space(field);
  if (s.size() < 2 || s.front() != '(' || s.back() != ')' || s.find(',') == std::string::npos)
    return false;
  std::size_t i = 1;
  std::string group;
  for (; i < s.size() && s[i] != ','; ++i) group += s[i];
  if (i == s.size()) return false;
  ++i;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  if (i < s.size() && s[i] == '"') {
    ++i;
    for (; i < s.size() && s[i] != '"'; ++i) row.creator += s[i];
    if (i == s.size()) return false;
    ++i;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i == s.size() || s[i] != ',') return false;
    ++i;
    row.has_creator = !row.creator.empty();
  }
  std::string element;
  for (; i < s.size() && s[i] != ')'; ++i) element += s[i];
  return parse_tag_part(strip_all_space(group), row.group) &&
         parse_tag_part(strip_all_space(element), row.element);
}

std::vector<DcmtkRow> read_dcmtk_dictionary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot open " + path);
  std::vector<DcmtkRow> rows;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = path + ":" + std::to_string(number);
    if (line.size() > 2000) die(where + ": line longer than DCMTK reads at once");
    const std::string text = strip_outer_space(line);
    if (text.empty() || text.front() == '#') continue;
    // Trailing white space goes first (DCMTK strips the line's end before splitting).
    std::string trimmed = line;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
      trimmed.pop_back();
    std::vector<std::string> f;
    std::size_t start = 0;
    while (true) {
      const auto tab = trimmed.find('\t', start);
      f.push_back(trimmed.substr(start, tab == std::string::npos ? tab : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (f.size() < 3 || f.size() > 5) die(where + ": expected 3 to 5 tab-separated fields");
    DcmtkRow row;
    row.version = f.size() == 5 ? strip_all_space(f[4]) : "DICOM";
    if (f.size() >= 4 && !parse_vm(f[3], row.vm_min, row.vm_max)) die(where + ": bad VM");
    if (!parse_dcmtk_tag(f[0], row)) die(where + ": bad tag");
    if (row.group.lo > 0xFFFF || row.group.hi > 0xFFFF || row.element.lo > 0xFFFF ||
        row.element.hi > 0xFFFF)
      die(where + ": tag out of range");
    row.vr = strip_all_space(f[1]);
    row.name = strip_all_space(f[2]);
    if (row.vr.empty()) die(where + ": empty VR");
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string generate_dcmtk_dictionary(const std::vector<std::string>& files) {
  std::vector<DcmtkRow> rows;
  std::string sources;
  for (const auto& file : files) {
    auto more = read_dcmtk_dictionary(file);
    rows.insert(rows.end(), std::make_move_iterator(more.begin()),
                std::make_move_iterator(more.end()));
    const auto slash = file.find_last_of('/');
    sources += (sources.empty() ? "" : ", ") +
               (slash == std::string::npos ? file : file.substr(slash + 1));
  }
  std::vector<std::string> vr_names;
  std::map<std::string, std::size_t> vr_index;
  for (const auto& row : rows) {
    if (vr_index.emplace(row.vr, vr_names.size()).second) vr_names.push_back(row.vr);
  }
  if (vr_names.size() > 255) die("more VR names than a row can index");
  // Names, versions and creators live in one character pool that rows index (no pointers:
  // the table needs no relocation at load time and stays untouched until DICOM is read).
  std::string pool;
  std::map<std::string, std::size_t> pooled;
  auto offset_of = [&](const std::string& text) {
    const auto [it, inserted] = pooled.emplace(text, pool.size());
    if (inserted) {
      pool += text;
      pool += '\0';
    }
    return it->second;
  };
  std::ostringstream table;
  for (const auto& r : rows) {
    if (r.vm_min < -1 || r.vm_min > 32767 || r.vm_max < -1 || r.vm_max > 32767)
      die("VM out of range for " + r.name);
    table << "  {" << hex4(r.group.lo) << ", " << hex4(r.element.lo) << ", " << hex4(r.group.hi)
          << ", " << hex4(r.element.hi) << ", '" << r.group.range << "', '" << r.element.range
          << "', " << vr_index[r.vr] << ", " << r.vm_min << ", " << r.vm_max << ", "
          << offset_of(r.name) << ", " << offset_of(r.version) << ", "
          << (r.has_creator ? std::to_string(offset_of(r.creator)) : std::string("kNoCreator"))
          << "},\n";
  }
  if (pool.size() >= 0xFFFFFFFFU) die("string pool too large");
  std::ostringstream out;
  out << "// Generated by tools/tablegen --dcmtk-dictionary from " << sources
      << ". Do not edit.\n"
         "#include \"dicom/dcmtk_dictionary.hpp\"\n\n"
         "#include <array>\n\n"
         "namespace radguard::dicom::detail {\n\n"
         "namespace {\n\n"
         "constexpr std::array<const char*, "
      << vr_names.size() << "> kVrNames = {{";
  for (std::size_t i = 0; i < vr_names.size(); ++i) out << (i ? ", " : "") << quote(vr_names[i]);
  out << "}};\n\n"
         "constexpr char kStrings[] =\n";
  // One literal per string, each ending in an explicit NUL.
  for (std::size_t begin = 0; begin < pool.size();) {
    const std::size_t end = pool.find('\0', begin);
    std::string literal = quote(pool.substr(begin, end - begin));
    literal.insert(literal.size() - 1, "\\0");
    out << "    " << literal << "\n";
    begin = end + 1;
  }
  out << "    ;\n\n"
         "constexpr std::array<DcmtkDictionaryRow, "
      << rows.size() << "> kRows = {{\n"
      << table.str()
      << "}};\n\n"
         "}  // namespace\n\n"
         "const char* const kDcmtkDictionarySources = "
      << quote(sources)
      << ";\n\n"
         "std::span<const char* const> dcmtk_dictionary_vr_names() { return kVrNames; }\n"
         "std::span<const DcmtkDictionaryRow> dcmtk_dictionary_rows() { return kRows; }\n"
         "const char* dcmtk_dictionary_strings() { return kStrings; }\n\n"
         "}  // namespace radguard::dicom::detail\n";
  return out.str();
}

// Write then rename, so an interrupted build never leaves a half file.
void write_atomically(const std::string& target, const std::string& text) {
  const std::string temp = target + ".tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << text;
    if (!file) die("cannot write " + temp);
  }
  if (std::rename(temp.c_str(), target.c_str()) != 0) die("cannot rename to " + target);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--dcmtk-dictionary") {
    if (argc < 4) die("usage: tablegen --dcmtk-dictionary OUTPUT.cpp FILE.dic...");
    write_atomically(argv[2], generate_dcmtk_dictionary(std::vector<std::string>(argv + 3, argv + argc)));
    return 0;
  }
  if (argc != 3 && argc != 4) die("usage: tablegen DATA_DIR OUTPUT.cpp [TAGS.hpp]");
  const std::string dir = argv[1];
  std::ostringstream out;
  out << "// Generated by tools/tablegen from data/standard/. Do not edit.\n"
         "#include \"standard/tables.hpp\"\n\n"
         "namespace radguard::standard {\n\n"
         "const char* const kProfileEdition = \"PS3.15 2026d Table E.1-1\";\n"
         "const char* const kSafePrivateEdition = \"PS3.15 2026c Table E.3.10-1\";\n"
         "const char* const kStructuredContentEdition = \"PS3.15 2026c Table E.3.4-1\";\n"
         "const char* const kCid7050Edition = \"PS3.16 2026b CID 7050\";\n"
         "const char* const kDictionaryEdition = \"PS3.6 2026b (DCMTK dicom.dic)\";\n\n";
  out << "namespace {\n\n";
  generate_profile(dir, out);
  generate_safe_private(dir, out);
  generate_cid7050(dir, out);
  generate_structured_content(dir, out);
  const auto dictionary = generate_dictionary(dir, out);
  out << "}  // namespace\n\n"
         "std::span<const ProfileRow> profile_rows() { return kProfileRows; }\n"
         "std::span<const SafePrivateRow> safe_private_rows() { return kSafePrivateRows; }\n"
         "std::span<const CodedConcept> cid7050() { return kCid7050; }\n"
         "std::span<const StructuredContentRow> structured_content_rows() { return "
         "kStructuredContentRows; }\n"
         "std::span<const DictionaryRow> dictionary_rows() { return kDictionaryRows; }\n"
         "std::span<const DateTimePair> date_time_pairs() { return kDateTimePairs; }\n\n"
         "}  // namespace radguard::standard\n";
  write_atomically(argv[2], out.str());
  if (argc == 4) write_atomically(argv[3], generate_tag_names(dictionary));
  return 0;
}
