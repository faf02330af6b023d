#include "core/text.hpp"

namespace radguard {

std::string trimmed(std::string_view value) {
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.remove_suffix(1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return std::string(value);
}

std::string normalised_patient_id(std::string_view value) {
  constexpr std::string_view kBlank(" \t\r\n\0", 5);
  while (!value.empty() && kBlank.find(value.back()) != std::string_view::npos)
    value.remove_suffix(1);
  while (!value.empty() && kBlank.find(value.front()) != std::string_view::npos)
    value.remove_prefix(1);
  return std::string(value);
}

}  // namespace radguard
