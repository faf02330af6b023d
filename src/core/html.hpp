#pragma once
// Text made safe to place in HTML (element content and quoted attribute values): the one
// escape every HTML report of radguard uses. Never fails; thread-safe.
#include <string>
#include <string_view>

namespace radguard {

[[nodiscard]] std::string html_escaped(std::string_view text);

}  // namespace radguard
