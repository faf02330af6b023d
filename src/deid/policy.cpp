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

bool Policy::overrides_with(Action action) const {
  return std::any_of(overrides_.begin(), overrides_.end(),
                     [&](const auto& entry) { return entry.second == action; });
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

bool is_direct_identifier(Tag tag) {
  if (tag.group != 0x0010) return false;
  switch (tag.element) {
    case 0x0010:  // Patient's Name
    case 0x0020:  // Patient ID
    case 0x0030:  // Patient's Birth Date
    case 0x0032:  // Patient's Birth Time
    case 0x1000:  // Other Patient IDs
    case 0x1001:  // Other Patient Names
    case 0x1002:  // Other Patient IDs Sequence
    case 0x1005:  // Patient's Birth Name
    case 0x1040:  // Patient's Address
    case 0x1060:  // Patient's Mother's Birth Name
    case 0x1090:  // Medical Record Locator
    case 0x2154:  // Patient's Telephone Numbers
    case 0x2155:  // Patient's Telecom Information
      return true;
    default:
      return false;
  }
}

std::vector<KeptAttribute> Policy::kept_against_profile() const {
  std::vector<KeptAttribute> kept;
  std::vector<std::pair<Tag, Action>> overrides(overrides_.begin(), overrides_.end());
  std::sort(overrides.begin(), overrides.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [tag, action] : overrides) {
    if (action != Action::keep) continue;
    const standard::ProfileRow* row = standard::find_profile_row(tag);
    // Not in Table E.1-1: the profile keeps public attributes it does not list (private
    // ones fall under its private-attributes row, X).
    if (row == nullptr && !tag.is_private()) continue;
    if (row != nullptr && resolve(row->basic) == Action::keep) continue;
    kept.push_back(
        {tag, row != nullptr && !row->private_attributes ? std::string(row->name) : tag.to_string(),
         "recipe", is_direct_identifier(tag)});
  }
  for (const standard::ProfileRow& row : standard::profile_rows()) {
    if (resolve(row.basic) == Action::keep) continue;
    const Tag tag{row.group, row.element};
    if (!row.private_attributes && row.group_mask == 0xFFFF && row.element_mask == 0xFFFF &&
        overrides_.contains(tag))
      continue;  // the recipe decides this one
    for (std::size_t i = 0; i < standard::kProfileOptionCount; ++i) {
      if (!options_[i] || row.options[i] != ActionCode::K) continue;
      kept.push_back({tag, row.name, std::string(kOptionInfo[i].cli_name),
                      !row.private_attributes && is_direct_identifier(tag)});
      break;
    }
  }
  return kept;
}

bool Policy::keeps_direct_identifier() const {
  const auto kept = kept_against_profile();
  return std::any_of(kept.begin(), kept.end(),
                     [](const KeptAttribute& k) { return k.direct_identifier; });
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
