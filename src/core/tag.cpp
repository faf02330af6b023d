#include "core/tag.hpp"

#include <cctype>
#include <cstdio>

namespace radguard {

std::string Tag::to_string() const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "(%04X,%04X)", group, element);
  return buf;
}

std::optional<Tag> Tag::parse(std::string_view text) {
  std::string hex;
  for (const char c : text) {
    if (c == '(' || c == ')' || c == ',' || c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex += c;
  }
  if (hex.size() != 8) return std::nullopt;
  const auto value = std::stoul(hex, nullptr, 16);
  return Tag{static_cast<std::uint16_t>(value >> 16), static_cast<std::uint16_t>(value & 0xFFFF)};
}

}  // namespace radguard
