#include "deid/policy.hpp"

#include <algorithm>
#include <array>
#include <sstream>

#include "core/atomic_file.hpp"

namespace radguard::deid {

namespace {

using standard::ActionCode;
using standard::ProfileOption;

constexpr std::array<OptionInfo, standard::kProfileOptionCount> kOptionInfo = {{
    {"retain-safe-private", "113111"},
    {"retain-uids", "113110"},
    {"retain-device-identity", "113109"},
    {"retain-institution-identity", "113112"},
    {"retain-patient-characteristics", "113108"},
    {"retain-long-full-dates", "113106"},
    {"retain-long-modified-dates", "113107"},
    {"clean-descriptors", "113105"},
    {"clean-structured-content", "113104"},
    {"clean-graphics", "113103"},
}};

// In PixelOption order.
constexpr std::array<OptionInfo, kPixelOptionCount> kPixelOptionInfo = {{
    {"clean-pixel-data", "113101"},
    {"clean-recognizable-visual-features", "113102"},
}};

struct Preset {
  std::string_view name;
  std::vector<ProfileOption> options;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> list = {
      {"basic", {}},
      // TCIA-like research release: safe private tags, patient characteristics, dates
      // shifted per patient, descriptions cleaned.
      {"research",
       {ProfileOption::retain_safe_private, ProfileOption::retain_patient_characteristics,
        ProfileOption::retain_long_modified_dates, ProfileOption::clean_descriptors}},
  };
  return list;
}

}  // namespace

std::string_view action_name(Action action) {
  switch (action) {
    case Action::keep:
      return "K";
    case Action::remove:
      return "X";
    case Action::empty:
      return "Z";
    case Action::dummy:
      return "D";
    case Action::clean:
      return "C";
    case Action::uid:
      return "U";
  }
  return "X";
}

std::optional<Action> parse_action(std::string_view code) {
  if (code == "K") return Action::keep;
  if (code == "X") return Action::remove;
  if (code == "Z") return Action::empty;
  if (code == "D") return Action::dummy;
  if (code == "C") return Action::clean;
  if (code == "U") return Action::uid;
  return std::nullopt;
}

Action resolve(ActionCode code) {
  switch (code) {
    case ActionCode::K:
      return Action::keep;
    case ActionCode::X:
      return Action::remove;
    case ActionCode::Z:
    case ActionCode::X_Z:
      return Action::empty;
    case ActionCode::D:
    case ActionCode::Z_D:
    case ActionCode::X_D:
    case ActionCode::X_Z_D:
      return Action::dummy;
    case ActionCode::C:
      return Action::clean;
    case ActionCode::U:
    case ActionCode::X_Z_U:
      return Action::uid;
    case ActionCode::none:
      return Action::remove;
  }
  return Action::remove;
}

std::span<const OptionInfo> table_option_info() { return kOptionInfo; }

Status Policy::set_option(std::string_view cli_name) {
  for (std::size_t i = 0; i < kOptionInfo.size(); ++i) {
    if (kOptionInfo[i].cli_name == cli_name) {
      options_[i] = true;
      return {};
    }
  }
  for (std::size_t i = 0; i < kPixelOptionInfo.size(); ++i) {
    if (kPixelOptionInfo[i].cli_name == cli_name) {
      pixel_options_[i] = true;
      return {};
    }
  }
  std::string known;
  // append(), not `" " + std::string(...)`: g++ 12 at -O3 sees a false -Wrestrict in the latter.
  for (const auto& info : kOptionInfo) known.append(" ").append(info.cli_name);
  for (const auto& info : kPixelOptionInfo) known.append(" ").append(info.cli_name);
  return fail(ErrorCode::usage, "unknown option '" + std::string(cli_name) + "'; known:" + known);
}

Result<Policy> Policy::create(std::string_view preset, std::span<const std::string> options,
                              const std::optional<std::filesystem::path>& recipe) {
  Policy policy;
  const auto it = std::find_if(presets().begin(), presets().end(),
                               [&](const Preset& p) { return p.name == preset; });
  if (it == presets().end())
    return fail(ErrorCode::usage,
                "unknown profile '" + std::string(preset) + "'; known: basic research");
  policy.preset_ = std::string(preset);
  for (const auto option : it->options) policy.options_[static_cast<std::size_t>(option)] = true;
  for (const auto& name : options) {
    if (auto status = policy.set_option(name); !status) return std::unexpected(status.error());
  }
  if (policy.has(ProfileOption::retain_long_full_dates) &&
      policy.has(ProfileOption::retain_long_modified_dates))
    return fail(ErrorCode::usage,
                "retain-long-full-dates and retain-long-modified-dates exclude each other");
  if (recipe) {
    auto text = read_small_file(*recipe);
    if (!text) return fail(ErrorCode::usage, text.error().message);
    if (auto status = policy.add_recipe(*text, recipe->string()); !status)
      return std::unexpected(status.error());
  }
  return policy;
}

Status Policy::add_recipe(std::string_view text, std::string_view source_name) {
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string target, code, extra;
    if (!(fields >> target)) continue;
    const std::string where = std::string(source_name) + " line " + std::to_string(number);
    if (!(fields >> code) || (fields >> extra))
      return fail(ErrorCode::usage, where + ": expected '<tag or keyword> <action>'");
    const auto action = parse_action(code);
    if (!action)
      return fail(ErrorCode::usage, where + ": unknown action '" + code + "' (use X Z D K C U)");
    std::optional<Tag> tag = Tag::parse(target);
    if (!tag) {
      for (const auto& row : standard::dictionary_rows()) {
        if (target == row.keyword && row.group_lo == row.group_hi &&
            row.element_lo == row.element_hi) {
          tag = Tag{row.group_lo, row.element_lo};
          break;
        }
      }
    }
    if (!tag) return fail(ErrorCode::usage, where + ": unknown attribute '" + target + "'");
    overrides_[*tag] = *action;
  }
  return {};
}

Action Policy::resolve_row(const standard::ProfileRow& row) const {
  // Among the selected options' cells, a retain (K) wins over a clean (C), and either wins
  // over the Basic Profile's action: the operator asked for that information explicitly.
  bool keep = false, clean = false;
  for (std::size_t i = 0; i < standard::kProfileOptionCount; ++i) {
    if (!options_[i]) continue;
    const ActionCode cell = row.options[i];
    if (cell == ActionCode::K) keep = true;
    if (cell == ActionCode::C) clean = true;
  }
  if (keep) return Action::keep;
  if (clean) return Action::clean;
  return resolve(row.basic);
}

std::optional<Action> Policy::override_for(Tag tag) const {
  if (const auto it = overrides_.find(tag); it != overrides_.end()) return it->second;
  return std::nullopt;
}

std::optional<Action> Policy::listed_action(Tag tag) const {
  if (auto o = override_for(tag)) return o;
  const standard::ProfileRow* row = standard::find_profile_row(tag);
  if (row == nullptr || row->private_attributes) return std::nullopt;
  return resolve_row(*row);
}

Action Policy::structured_content_action(const standard::StructuredContentRow& row) const {
  bool keep = false, clean = false;
  for (std::size_t i = 0; i < standard::kProfileOptionCount; ++i) {
    if (!options_[i]) continue;
    if (row.options[i] == ActionCode::K) keep = true;
    if (row.options[i] == ActionCode::C) clean = true;
  }
  if (keep) return Action::keep;
  if (clean) return Action::clean;
  return resolve(row.basic);
}

std::vector<std::string> Policy::option_names() const {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < kOptionInfo.size(); ++i)
    if (options_[i]) out.emplace_back(kOptionInfo[i].cli_name);
  for (std::size_t i = 0; i < kPixelOptionInfo.size(); ++i)
    if (pixel_options_[i]) out.emplace_back(kPixelOptionInfo[i].cli_name);
  return out;
}

std::vector<const standard::CodedConcept*> Policy::method_codes() const {
  std::vector<const standard::CodedConcept*> out{standard::find_cid7050("113100")};
  for (std::size_t i = 0; i < kOptionInfo.size(); ++i)
    if (options_[i]) out.push_back(standard::find_cid7050(kOptionInfo[i].code));
  for (std::size_t i = 0; i < kPixelOptionInfo.size(); ++i)
    if (pixel_options_[i]) out.push_back(standard::find_cid7050(kPixelOptionInfo[i].code));
  return out;
}

}  // namespace radguard::deid
