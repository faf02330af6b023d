#pragma once
// A plain reference implementation of PS3.15 Table E.1-1 (the Basic Application Level
// Confidentiality Profile and its option columns), written to be slow and obviously right:
// it reads the standard's tables as shipped (data/standard/*.csv) with its own small parser,
// finds an attribute's row by scanning every row, and says per attribute what must happen to
// it. The header stage (src/deid) is compared against it on generated data sets, as re2's
// fast engine is checked against a backtracker.
//
// It shares no code with the header stage or tools/tablegen: not the generated tables, not
// Policy::resolve, not the date arithmetic. It does use the Pseudonymizer (keyed UIDs and
// patient pseudonyms are its contract, tested on their own in foundations_test.cpp).
//
// Scope: the Basic Profile and the option columns Retain Safe Private, Retain UIDs, Retain
// Device Identity, Retain Institution Identity, Retain Patient Characteristics, Retain
// Longitudinal Full Dates / Modified Dates and Clean Descriptors, with recipe overrides.
// Clean Structured Content and Clean Graphics follow Table E.3.4-1 and the SR tree, which
// this reference does not model.
#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/tag.hpp"

namespace radguard::reference {

// The option columns of Table E.1-1, in the table's order (column 6 onwards).
enum Column : std::uint8_t {
  retain_safe_private = 0,
  retain_uids,
  retain_device_identity,
  retain_institution_identity,
  retain_patient_characteristics,
  retain_long_full_dates,
  retain_long_modified_dates,
  clean_descriptors,
  clean_structured_content,
  clean_graphics,
};
inline constexpr std::size_t kColumns = 10;

struct Row {
  std::string name;
  std::string tag_text;  // as in the table: "(0010,0010)", "(60xx,3000)", "(gggg,eeee) where..."
  std::string basic;     // the Basic Profile's code: "X", "Z/D", "X/Z/U*"...
  std::array<std::string, kColumns> options;  // "", "K" or "C"
};

// Table E.1-1 as read from its CSV file.
class ProfileTable {
 public:
  static ProfileTable load(const std::filesystem::path& csv);
  // The row for a tag: an exact row first, then a row whose x digits match (overlays,
  // curves), then the private row for odd groups. nullptr when the table does not list it.
  const Row* find(Tag tag) const;
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::vector<Row> rows_;
};

// Table E.3.10-1 (safe private attributes) as read from its CSV file.
class SafePrivateTable {
 public:
  static SafePrivateTable load(const std::filesystem::path& csv);
  // Whether (gggg,xxee) is listed for this creator (compared without trailing spaces).
  bool is_safe(Tag tag, std::string_view creator) const;

 private:
  std::set<std::tuple<std::uint16_t, std::uint8_t, std::string>> safe_;
};

// What the header stage must have done to one attribute.
enum class Outcome : std::uint8_t {
  removed,       // absent from the output
  emptied,       // present with a zero-length value (a sequence with no items)
  kept,          // unchanged (a sequence: its items judged in turn)
  dummy,         // present, non-empty, not the original (UIDs: the keyed UID)
  keyed_uid,     // every UID replaced by the Pseudonymizer's (standard 1.2.840.10008. kept)
  shifted,       // a date/time moved by the patient's offset, precision kept
  age_capped,    // an age over 89 years reads 090Y, others unchanged
  cleaned_text,  // no planted identifying word left, never longer
  cleaned_name,  // a person name that is no longer the original
  keyed_token,   // an AE title replaced by RG + 14 keyed characters
  patient_id,    // the patient's keyed pseudonym
  patient_name,  // "Anonymous^" + the keyed pseudonym
};
std::string_view outcome_name(Outcome outcome);

// How the items of a kept sequence are judged.
enum class Items : std::uint8_t {
  normal,
  dummy_content,  // inside a D sequence: unlisted free text, names, dates and ages are D too
};

struct Settings {
  std::set<Column> options;
  std::map<Tag, char> recipe;  // tag -> one of X Z D K C U
  bool has(Column c) const { return options.contains(c); }
};

// One element as the reference sees it.
struct Element {
  Tag tag;
  std::string vr;  // the element's VR (the dictionary's)
  bool is_sequence = false;
  bool top_level = false;
  bool known_to_dictionary = true;
  std::string private_creator;  // the creator of its block (private elements), else ""
  // Private creators only: whether any element of the block in the same item is listed as
  // safe for that creator.
  bool block_has_safe_element = false;
  Items items = Items::normal;    // how the enclosing sequence's items are judged
  bool is_code_sequence = false;  // its keyword ends in CodeSequence
};

struct Expectation {
  Outcome outcome;
  Items items = Items::normal;  // for kept sequences
  std::string why;              // the rule that decided, for messages
};

class Reference {
 public:
  Reference(ProfileTable table, SafePrivateTable safe_private, Settings settings)
      : table_(std::move(table)), safe_(std::move(safe_private)), settings_(std::move(settings)) {}

  Expectation expect(const Element& element) const;
  const ProfileTable& table() const { return table_; }
  const Settings& settings() const { return settings_; }
  const SafePrivateTable& safe_private() const { return safe_; }

  // The action of a row under the settings: a chosen option's K, else its C, else the Basic
  // Profile's code with a combined code resolved to the branch valid for every IOD
  // (Z/D, X/D, X/Z/D -> D; X/Z -> Z; X/Z/U* -> U).
  char action_of(const Row& row) const;

 private:
  Expectation by_action(char action, const Element& element, bool explicit_recipe) const;
  ProfileTable table_;
  SafePrivateTable safe_;
  Settings settings_;
};

}  // namespace radguard::reference
