#pragma once
// A DICOM attribute tag as a plain value: (group, element).
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace radguard {

struct Tag {
  std::uint16_t group = 0;
  std::uint16_t element = 0;

  constexpr std::uint32_t key() const { return (std::uint32_t{group} << 16) | element; }
  constexpr bool is_private() const { return (group & 1U) != 0; }
  // (gggg,0010)-(gggg,00FF) in an odd group: the element that names a private block's creator.
  constexpr bool is_private_creator() const {
    return is_private() && element >= 0x0010 && element <= 0x00FF;
  }
  // The creator slot (gggg,00xx) that reserves this private element's block, if any.
  constexpr std::optional<Tag> private_creator_slot() const {
    if (!is_private() || element < 0x1000) return std::nullopt;
    return Tag{group, static_cast<std::uint16_t>(element >> 8)};
  }
  constexpr bool is_group_length() const { return element == 0x0000; }

  friend constexpr auto operator<=>(const Tag&, const Tag&) = default;

  // "(0010,0020)"
  std::string to_string() const;
  // Accepts "(0010,0020)", "0010,0020" and "00100020"; nullopt otherwise.
  static std::optional<Tag> parse(std::string_view text);
};

}  // namespace radguard

template <>
struct std::hash<radguard::Tag> {
  std::size_t operator()(const radguard::Tag& t) const noexcept { return t.key(); }
};
