#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "standard/tables.hpp"

namespace radguard::standard {

namespace {

template <typename Row>
struct Indexed {
  std::unordered_map<std::uint32_t, const Row*> exact;
  std::vector<const Row*> patterns;
};

const Indexed<ProfileRow>& profile_index() {
  static const Indexed<ProfileRow> index = [] {
    Indexed<ProfileRow> out;
    for (const auto& row : profile_rows()) {
      if (!row.private_attributes && row.group_mask == 0xFFFF && row.element_mask == 0xFFFF)
        out.exact.emplace(Tag{row.group, row.element}.key(), &row);
      else
        out.patterns.push_back(&row);
    }
    return out;
  }();
  return index;
}

const Indexed<DictionaryRow>& dictionary_index() {
  static const Indexed<DictionaryRow> index = [] {
    Indexed<DictionaryRow> out;
    for (const auto& row : dictionary_rows()) {
      if (row.group_lo == row.group_hi && row.element_lo == row.element_hi)
        out.exact.emplace(Tag{row.group_lo, row.element_lo}.key(), &row);
      else
        out.patterns.push_back(&row);
    }
    return out;
  }();
  return index;
}

std::string trim_creator(std::string_view creator) {
  while (!creator.empty() && (creator.back() == ' ' || creator.back() == '\0'))
    creator.remove_suffix(1);
  while (!creator.empty() && creator.front() == ' ') creator.remove_prefix(1);
  return std::string(creator);
}

}  // namespace

const ProfileRow* find_profile_row(Tag tag) {
  const auto& index = profile_index();
  if (!tag.is_private()) {
    if (const auto it = index.exact.find(tag.key()); it != index.exact.end()) return it->second;
  }
  for (const ProfileRow* row : index.patterns) {
    if (row->matches(tag)) return row;
  }
  return nullptr;
}

const DictionaryRow* find_dictionary_entry(Tag tag) {
  const auto& index = dictionary_index();
  if (const auto it = index.exact.find(tag.key()); it != index.exact.end()) return it->second;
  for (const DictionaryRow* row : index.patterns) {
    if (tag.group < row->group_lo || tag.group > row->group_hi) continue;
    if (tag.element < row->element_lo || tag.element > row->element_hi) continue;
    // Repeating groups (50xx, 60xx) use even groups only.
    if (row->group_lo != row->group_hi && (tag.group & 1U)) continue;
    return row;
  }
  return nullptr;
}

bool is_safe_private(Tag tag, std::string_view creator) {
  if (!tag.is_private() || tag.element < 0x1000) return false;
  static const auto index = [] {
    std::unordered_map<std::string, std::vector<const SafePrivateRow*>> out;
    for (const auto& row : safe_private_rows()) out[trim_creator(row.creator)].push_back(&row);
    return out;
  }();
  const auto it = index.find(trim_creator(creator));
  if (it == index.end()) return false;
  const auto low = static_cast<std::uint8_t>(tag.element & 0xFF);
  return std::any_of(it->second.begin(), it->second.end(), [&](const SafePrivateRow* row) {
    return row->group == tag.group && row->element_low == low;
  });
}

const CodedConcept* find_cid7050(std::string_view code_value) {
  for (const auto& c : cid7050()) {
    if (code_value == c.value) return &c;
  }
  return nullptr;
}

const StructuredContentRow* find_structured_content(std::string_view code_value,
                                                    std::string_view scheme) {
  for (const auto& row : structured_content_rows()) {
    if (code_value == row.code_value && scheme == row.scheme) return &row;
  }
  return nullptr;
}

std::optional<Tag> time_partner_of(Tag date) {
  for (const auto& p : date_time_pairs()) {
    if (p.date == date) return p.time;
  }
  return std::nullopt;
}

std::optional<Tag> date_partner_of(Tag time) {
  for (const auto& p : date_time_pairs()) {
    if (p.time == time) return p.date;
  }
  return std::nullopt;
}

}  // namespace radguard::standard
