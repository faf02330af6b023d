#pragma once
// Tables generated at build time from data/standard/ (see tools/tablegen), and lookups
// over them. The editions are recorded in the k*Edition strings.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/tag.hpp"

namespace radguard::standard {

// Action codes of PS3.15 Table E.1-1a. `none` marks an empty option cell.
enum class ActionCode : std::uint8_t { none, X, Z, D, K, C, U, Z_D, X_Z, X_D, X_Z_D, X_Z_U };

// The option columns of Table E.1-1, in the table's order.
enum class ProfileOption : std::uint8_t {
  retain_safe_private,
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
inline constexpr std::size_t kProfileOptionCount = 10;

struct ProfileRow {
  std::uint16_t group, element, group_mask, element_mask;
  bool private_attributes;  // the "(gggg,eeee) where gggg is odd" row
  const char* name;
  bool retired;
  ActionCode basic;
  std::array<ActionCode, kProfileOptionCount> options;

  constexpr bool matches(Tag t) const {
    if (private_attributes) return t.is_private();
    return (t.group & group_mask) == group && (t.element & element_mask) == element;
  }
};

struct SafePrivateRow {
  std::uint16_t group;
  std::uint8_t element_low;  // the element's low byte; the high byte is the block
  const char* creator;
  const char* vr;
};

struct CodedConcept {
  const char* value;
  const char* scheme;
  const char* meaning;
};

struct StructuredContentRow {
  const char* code_value;
  const char* scheme;
  const char* meaning;
  ActionCode basic;
  std::array<ActionCode, kProfileOptionCount> options;
};

struct DictionaryRow {
  std::uint16_t group_lo, group_hi, element_lo, element_hi;
  const char* vr;
  const char* keyword;
  const char* vm;
  bool retired;
};

struct DateTimePair {
  Tag date;
  Tag time;
};

extern const char* const kProfileEdition;
extern const char* const kSafePrivateEdition;
extern const char* const kStructuredContentEdition;
extern const char* const kCid7050Edition;
extern const char* const kDictionaryEdition;

std::span<const ProfileRow> profile_rows();
std::span<const SafePrivateRow> safe_private_rows();
std::span<const CodedConcept> cid7050();
std::span<const StructuredContentRow> structured_content_rows();
std::span<const DictionaryRow> dictionary_rows();
std::span<const DateTimePair> date_time_pairs();

// The Table E.1-1 row for a public tag, or the wildcard row (overlays, curves) that covers
// it; nullptr when the table does not list it. Private tags return the private row.
const ProfileRow* find_profile_row(Tag tag);

// The PS3.6 entry for a public tag, including repeating-group ranges; nullptr if unknown.
const DictionaryRow* find_dictionary_entry(Tag tag);

// True when Table E.3.10-1 lists this private element for this creator.
bool is_safe_private(Tag tag, std::string_view creator);

// The CID 7050 code with this value (e.g. "113100"); nullptr if none.
const CodedConcept* find_cid7050(std::string_view code_value);

// The Table E.3.4-1 row for an SR concept name; nullptr if the table does not list it.
const StructuredContentRow* find_structured_content(std::string_view code_value,
                                                    std::string_view scheme);

// The TM partner of a DA attribute (Study Date -> Study Time), if the dictionary has one.
std::optional<Tag> time_partner_of(Tag date);
std::optional<Tag> date_partner_of(Tag time);

}  // namespace radguard::standard
