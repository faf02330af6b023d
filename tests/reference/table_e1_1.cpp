#include "reference/table_e1_1.hpp"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace radguard::reference {

namespace {

// RFC 4180 CSV: quoted cells, doubled quotes, CRLF or LF.
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
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
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
    } else if (c != '\r') {
      cell += c;
    }
  }
  if (!cell.empty() || !rows.back().empty()) rows.back().push_back(cell);
  while (!rows.empty() &&
         (rows.back().empty() || (rows.back().size() == 1 && rows.back()[0].empty())))
    rows.pop_back();
  return rows;
}

// Whether "(gggg,eeee)" with x wildcards matches the tag, digit by digit.
bool pattern_matches(std::string_view pattern, Tag tag) {
  if (pattern.size() != 11 || pattern[0] != '(' || pattern[5] != ',' || pattern[10] != ')')
    return false;
  char hex[12];
  std::snprintf(hex, sizeof hex, "(%04X,%04X)", tag.group, tag.element);
  for (std::size_t i = 0; i < 11; ++i) {
    const char p = pattern[i];
    if (p == 'x' || p == 'X') continue;
    if (std::toupper(static_cast<unsigned char>(p)) != hex[i]) return false;
  }
  return true;
}

bool has_wildcard(std::string_view pattern) {
  return pattern.find_first_of("xX") != std::string_view::npos;
}

std::string without_trailing_spaces(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return std::string(s);
}

bool is_text(std::string_view vr) {
  return vr == "LO" || vr == "SH" || vr == "ST" || vr == "LT" || vr == "UT" || vr == "UC";
}
bool is_temporal(std::string_view vr) { return vr == "DA" || vr == "TM" || vr == "DT"; }

}  // namespace

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::removed:
      return "removed (X)";
    case Outcome::emptied:
      return "emptied (Z)";
    case Outcome::kept:
      return "kept (K)";
    case Outcome::dummy:
      return "dummy value (D)";
    case Outcome::keyed_uid:
      return "keyed UID (U)";
    case Outcome::shifted:
      return "shifted by the patient's offset";
    case Outcome::age_capped:
      return "age capped at 90Y";
    case Outcome::cleaned_text:
      return "cleaned text (C)";
    case Outcome::cleaned_name:
      return "cleaned name (C)";
    case Outcome::keyed_token:
      return "keyed AE token (C)";
    case Outcome::patient_id:
      return "patient pseudonym";
    case Outcome::patient_name:
      return "patient name pseudonym";
  }
  return "?";
}

ProfileTable ProfileTable::load(const std::filesystem::path& csv) {
  const auto cells = read_csv(csv);
  ProfileTable table;
  // AttributeName,Tag,Retired,InStdCompIOD,BasicProfile,<10 option columns>
  for (std::size_t i = 1; i < cells.size(); ++i) {
    const auto& r = cells[i];
    if (r.size() != 15)
      throw std::runtime_error("Table E.1-1 row " + std::to_string(i) + " has " +
                               std::to_string(r.size()) + " cells");
    Row row{r[0], r[1], r[4], {}};
    for (std::size_t c = 0; c < kColumns; ++c) row.options[c] = r[5 + c];
    table.rows_.push_back(std::move(row));
  }
  return table;
}

const Row* ProfileTable::find(Tag tag) const {
  for (const Row& row : rows_)
    if (!has_wildcard(row.tag_text) && pattern_matches(row.tag_text, tag)) return &row;
  for (const Row& row : rows_)
    if (has_wildcard(row.tag_text) && pattern_matches(row.tag_text, tag)) return &row;
  if (tag.group % 2 == 1) {
    for (const Row& row : rows_)
      if (row.tag_text.find("gggg is odd") != std::string::npos) return &row;
  }
  return nullptr;
}

SafePrivateTable SafePrivateTable::load(const std::filesystem::path& csv) {
  const auto cells = read_csv(csv);
  SafePrivateTable table;
  // Tag ("(7053,xx00)"), Private Creator, VR, ...
  for (std::size_t i = 1; i < cells.size(); ++i) {
    const auto& r = cells[i];
    const std::string& t = r.at(0);
    if (t.size() != 11 || t.substr(6, 2) != "xx")
      throw std::runtime_error("unexpected safe private tag " + t);
    const auto group = static_cast<std::uint16_t>(std::stoul(t.substr(1, 4), nullptr, 16));
    const auto low = static_cast<std::uint8_t>(std::stoul(t.substr(8, 2), nullptr, 16));
    table.safe_.insert({group, low, without_trailing_spaces(r.at(1))});
  }
  return table;
}

bool SafePrivateTable::is_safe(Tag tag, std::string_view creator) const {
  if (tag.element < 0x1000) return false;  // creators and group lengths are not data elements
  return safe_.contains(
      {tag.group, static_cast<std::uint8_t>(tag.element & 0xFF), without_trailing_spaces(creator)});
}

char Reference::action_of(const Row& row) const {
  bool keep = false, clean = false;
  for (std::size_t c = 0; c < kColumns; ++c) {
    if (!settings_.has(static_cast<Column>(c))) continue;
    keep = keep || row.options[c] == "K";
    clean = clean || row.options[c] == "C";
  }
  if (keep) return 'K';
  if (clean) return 'C';
  const std::string& code = row.basic;
  if (code == "Z/D" || code == "X/D" || code == "X/Z/D") return 'D';
  if (code == "X/Z") return 'Z';
  if (code == "X/Z/U*" || code == "X/Z/U") return 'U';
  if (code.size() == 1) return code[0];
  throw std::runtime_error("unknown code " + code + " for " + row.name);
}

Expectation Reference::expect(const Element& e) const {
  const Tag tag = e.tag;
  // Group lengths are recomputed by the writer; the meta header is rewritten; trailing
  // padding may hold stale bytes.
  if (tag.element == 0x0000 || tag.group == 0x0002 || tag == Tag{0xFFFC, 0xFFFC})
    return {Outcome::removed, Items::normal, "group length, meta or padding"};

  if (tag.group % 2 == 1) {
    // Table E.1-1: Private Attributes X; Retain Safe Private keeps those of Table E.3.10-1.
    if (const auto it = settings_.recipe.find(tag); it != settings_.recipe.end())
      return {it->second == 'K' ? Outcome::kept : Outcome::removed, Items::normal,
              "recipe on a private element (K keeps, anything else removes)"};
    if (!settings_.has(retain_safe_private))
      return {Outcome::removed, Items::normal, "private attributes: X"};
    if (tag.element >= 0x0010 && tag.element <= 0x00FF)
      return {e.block_has_safe_element ? Outcome::kept : Outcome::removed, Items::normal,
              "a private creator stays while a safe element of its block does"};
    if (e.private_creator.empty() || !safe_.is_safe(tag, e.private_creator))
      return {Outcome::removed, Items::normal, "private, not in Table E.3.10-1 for its creator"};
    return {Outcome::kept, Items::normal, "safe private (Table E.3.10-1)"};
  }

  if (const auto it = settings_.recipe.find(tag); it != settings_.recipe.end())
    return by_action(it->second, e, /*explicit_recipe=*/true);

  // Overlays and curves: the table removes their data and comments; radguard removes the
  // whole repeating group, whose other elements describe a bitmap that is gone.
  if ((tag.group & 0xFF00) == 0x6000 || (tag.group & 0xFF00) == 0x5000)
    return {Outcome::removed, Items::normal, "overlay or curve group"};

  // The patient's identity is replaced by keyed pseudonyms, not emptied, so files of one
  // patient stay linked.
  if (e.top_level && tag == Tag{0x0010, 0x0020})
    return {Outcome::patient_id, Items::normal, "top-level Patient ID"};
  if (e.top_level && tag == Tag{0x0010, 0x0010})
    return {Outcome::patient_name, Items::normal, "top-level Patient's Name"};

  if (const Row* row = table_.find(tag); row != nullptr) {
    auto expectation = by_action(action_of(*row), e, false);
    expectation.why = row->name + " " + row->tag_text + ": " + row->basic + " -> " +
                      std::string(1, action_of(*row)) + "; " + expectation.why;
    return expectation;
  }
  // Not listed: a standard attribute the profile does not name is kept; one the dictionary
  // does not know may be anything and is removed (fail closed).
  if (!e.known_to_dictionary) return {Outcome::removed, Items::normal, "unknown public tag"};
  if (e.items == Items::dummy_content &&
      (is_text(e.vr) || e.vr == "PN" || is_temporal(e.vr) || e.vr == "AS" || e.vr == "UR"))
    return by_action('D', e, false);
  return by_action('K', e, false);
}

Expectation Reference::by_action(char action, const Element& e, bool explicit_recipe) const {
  const bool modified_dates = settings_.has(retain_long_modified_dates);
  if (e.is_sequence) {
    switch (action) {
      case 'X':
        return {Outcome::removed, Items::normal, "sequence X"};
      case 'Z':
        return {Outcome::emptied, Items::normal, "sequence Z"};
      case 'D':
        return {Outcome::kept, Items::dummy_content, "sequence D: items hold dummies"};
      case 'C':
        return {Outcome::kept, e.items, "sequence C: items judged in turn"};
      default:
        // K and U: items judged in turn; a D sequence's treatment reaches into nested
        // sequences, but not into coded concepts.
        return {Outcome::kept,
                e.items == Items::dummy_content && !e.is_code_sequence ? Items::dummy_content
                                                                       : Items::normal,
                std::string("sequence ") + action + ": items judged in turn"};
    }
  }
  const std::string_view vr = e.vr;
  switch (action) {
    case 'X':
      return {Outcome::removed, Items::normal, "X"};
    case 'Z':
      return {Outcome::emptied, Items::normal, "Z"};
    case 'K':
      if (explicit_recipe) return {Outcome::kept, Items::normal, "recipe K"};
      if (vr == "AS") return {Outcome::age_capped, Items::normal, "K, ages over 89 capped"};
      if (is_temporal(vr) && modified_dates)
        return {Outcome::shifted, Items::normal, "K under Retain Longitudinal Modified Dates"};
      return {Outcome::kept, Items::normal, "K"};
    case 'U':
      if (vr == "UI") return {Outcome::keyed_uid, Items::normal, "U"};
      return {Outcome::dummy, Items::normal, "U on a non-UID"};
    case 'D':
      if (vr == "UI") return {Outcome::keyed_uid, Items::normal, "D on a UID: a keyed UID"};
      if (is_temporal(vr))
        return {modified_dates ? Outcome::shifted : Outcome::dummy, Items::normal, "D on a date"};
      return {Outcome::dummy, Items::normal, "D"};
    case 'C':
      if (e.tag == Tag{0x0008, 0x0201})
        return {Outcome::kept, Items::normal, "C: the zone offset identifies nobody"};
      if (vr == "AE") return {Outcome::keyed_token, Items::normal, "C on an AE title"};
      if (vr == "CS") return {Outcome::kept, Items::normal, "C on a defined term"};
      if (vr == "UI") return {Outcome::keyed_uid, Items::normal, "C on a UID"};
      if (is_temporal(vr))
        return {modified_dates ? Outcome::shifted : Outcome::dummy, Items::normal, "C on a date"};
      if (vr == "AS") return {Outcome::age_capped, Items::normal, "C on an age"};
      if (vr == "PN") return {Outcome::cleaned_name, Items::normal, "C on a name"};
      if (is_text(vr)) return {Outcome::cleaned_text, Items::normal, "C on text"};
      if (vr == "OB" || vr == "OW" || vr == "UN")
        return {Outcome::removed, Items::normal, "C on opaque bytes"};
      return {Outcome::kept, Items::normal, "C on a number"};
    default:
      throw std::runtime_error(std::string("unknown action ") + action);
  }
}

}  // namespace radguard::reference
