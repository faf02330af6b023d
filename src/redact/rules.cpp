// Rule files: regions of known screen layouts, redacted whatever OCR finds.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/json_number.hpp"
#include "redact/redact.hpp"

namespace radguard::redact {

namespace {

constexpr int kMaxSide = 65535;

bool contains_ignoring_case(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) return true;
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [](char a, char b) {
                                return std::toupper(static_cast<unsigned char>(a)) ==
                                       std::toupper(static_cast<unsigned char>(b));
                              });
  return it != haystack.end();
}

}  // namespace

Result<RuleSet> RuleSet::parse(std::string_view json_text) {
  using nlohmann::json;
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return fail(ErrorCode::usage, "rule file: not a JSON object");
  if (!doc.contains("radguard_redaction_rules") || doc["radguard_redaction_rules"] != 1)
    return fail(ErrorCode::usage, "rule file: \"radguard_redaction_rules\": 1 is missing");
  if (!doc.contains("rules") || !doc["rules"].is_array())
    return fail(ErrorCode::usage, "rule file: \"rules\" must be an array");
  RuleSet set;
  std::size_t index = 0;
  for (const json& entry : doc["rules"]) {
    const std::string where = "rule file: rule " + std::to_string(index++);
    if (!entry.is_object()) return fail(ErrorCode::usage, where + " is not an object");
    Rule rule;
    if (entry.contains("name") && !entry["name"].is_string())
      return fail(ErrorCode::usage, where + ": \"name\" must be a string");
    rule.name = entry.value("name", "");
    if (entry.contains("match")) {
      const json& match = entry["match"];
      if (!match.is_object())
        return fail(ErrorCode::usage, where + ": \"match\" must be an object");
      const auto rows = json_integer_field(match, "rows", 0u);
      const auto columns = json_integer_field(match, "columns", 0u);
      if (!rows || !columns)
        return fail(ErrorCode::usage,
                    where + ": \"rows\" and \"columns\" must be whole numbers from 0");
      rule.rows = *rows;
      rule.columns = *columns;
      try {
        rule.manufacturer = match.value("manufacturer", "");
        rule.model = match.value("model", "");
        rule.image_type = match.value("image_type", "");
      } catch (const json::exception&) {
        return fail(ErrorCode::usage, where + ": a \"match\" value has the wrong type");
      }
    }
    if (!entry.contains("regions") || !entry["regions"].is_array() || entry["regions"].empty())
      return fail(ErrorCode::usage, where + ": \"regions\" must be a non-empty array");
    for (const json& region : entry["regions"]) {
      const auto number = [&region](const char* key) {
        return region.is_object() && region.contains(key) ? json_integer<int>(region[key])
                                                          : std::nullopt;
      };
      const auto x = number("x"), y = number("y"), width = number("width"),
                 height = number("height");
      if (!x || !y || !width || !height)
        return fail(ErrorCode::usage, where + ": a region needs integer x, y, width, height");
      const Box box{*x, *y, *width, *height};
      if (box.empty() || box.x < 0 || box.y < 0)
        return fail(ErrorCode::usage, where + ": a region is empty or negative");
      // Images have at most 65535 rows and columns (US values), and keeping every box
      // within that keeps x + width and y + height far from overflowing an int later.
      if (box.x > kMaxSide || box.y > kMaxSide || box.width > kMaxSide || box.height > kMaxSide)
        return fail(ErrorCode::usage, where + ": a region lies beyond 65535 pixels");
      rule.regions.push_back(box);
    }
    set.rules.push_back(std::move(rule));
  }
  return set;
}

Result<RuleSet> RuleSet::load(const std::filesystem::path& path) {
  auto text = read_small_file(path);
  if (!text) return std::unexpected(text.error());
  auto set = parse(*text);
  if (!set) return std::unexpected(with_context(set.error(), path.string()));
  return set;
}

std::vector<Box> RuleSet::regions_for(const HeaderFacts& facts) const {
  std::vector<Box> out;
  for (const Rule& rule : rules) {
    if (!contains_ignoring_case(facts.manufacturer, rule.manufacturer)) continue;
    if (!contains_ignoring_case(facts.model, rule.model)) continue;
    if (!contains_ignoring_case(facts.image_type, rule.image_type)) continue;
    if (rule.rows != 0 && rule.rows != facts.rows) continue;
    if (rule.columns != 0 && rule.columns != facts.columns) continue;
    out.insert(out.end(), rule.regions.begin(), rule.regions.end());
  }
  return out;
}

}  // namespace radguard::redact
