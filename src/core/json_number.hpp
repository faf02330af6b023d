#pragma once
// Whole numbers read from JSON that someone else wrote (rule files, manifests, shard reports).
//
// nlohmann's get<int>() and value(key, 0u) cast whatever number they find: a float beyond the
// target's range (1e300 as an int) is undefined behaviour, which the fuzzers found, and a
// negative or too-large integer silently wraps. These return the value only where the JSON
// holds an integer that T can represent, and nothing otherwise, so that every caller turns a
// bad number into its own clear error instead of into a wrong one.
//
// Header only and templated on the JSON type, so core needs no JSON library; pure functions,
// safe from any thread.
#include <concepts>
#include <cstdint>
#include <optional>
#include <utility>

namespace radguard {

// The value, where `value` is a JSON integer (not a float, not a string) that fits T.
template <std::integral T, class Json>
[[nodiscard]] std::optional<T> json_integer(const Json& value) {
  if (value.is_number_unsigned()) {
    const auto n = value.template get<std::uint64_t>();
    if (std::in_range<T>(n)) return static_cast<T>(n);
  } else if (value.is_number_integer()) {
    const auto n = value.template get<std::int64_t>();
    if (std::in_range<T>(n)) return static_cast<T>(n);
  }
  return std::nullopt;
}

// object[key] as T: `absent` where object has no such key (or is not an object), nothing where
// the key holds anything but an integer that fits T.
template <std::integral T, class Json, class Key>
[[nodiscard]] std::optional<T> json_integer_field(const Json& object, const Key& key, T absent) {
  if (!object.is_object()) return absent;
  const auto it = object.find(key);
  if (it == object.end()) return absent;
  return json_integer<T>(*it);
}

}  // namespace radguard
