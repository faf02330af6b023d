#pragma once
// The de-identification policy: a profile (Basic), its options and a recipe of per-attribute
// overrides, resolved once per run into the action the header stage takes for each tag.
#include <array>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"
#include "core/tag.hpp"
#include "standard/tables.hpp"

namespace radguard::deid {

// A resolved action: what Table E.1-1's codes mean once a combined code is resolved so the
// output stays valid whatever the attribute's type in its IOD.
enum class Action : std::uint8_t {
  keep,    // K
  remove,  // X
  empty,   // Z
  dummy,   // D: a non-empty value consistent with the VR
  clean,   // C: a value of similar meaning without identifying content
  uid,     // U: a keyed pseudonymous UID
};

std::string_view action_name(Action action);
// Parses "X", "Z", "D", "K", "C" or "U".
std::optional<Action> parse_action(std::string_view code);

// Resolves a Table E.1-1 code. Combined codes take the branch that keeps any IOD valid:
// Z/D -> D, X/Z -> Z, X/D -> D, X/Z/D -> D, X/Z/U* -> U (sequences: kept, UIDs replaced).
Action resolve(standard::ActionCode code);

// Options beyond the Table E.1-1 columns (they act on pixel data, in other stages: the
// header stage only records them in the De-identification Method Code Sequence).
enum class PixelOption : std::uint8_t { clean_pixel_data, clean_recognizable_visual_features };
inline constexpr std::size_t kPixelOptionCount = 2;

struct OptionInfo {
  std::string_view cli_name;  // e.g. "retain-safe-private"
  std::string_view code;      // CID 7050 code value
};

// CLI name and CID 7050 code of each table option, in table order.
std::span<const OptionInfo> table_option_info();

// An attribute this policy keeps although the Basic Profile alone would remove, empty,
// dummy, clean or replace it.
struct KeptAttribute {
  Tag tag;
  std::string name;                // the table's name ("Patient's Name"), or the tag for other rows
  std::string source;              // "recipe", or the CLI name of the option whose column keeps it
  bool direct_identifier = false;  // see is_direct_identifier()
};

// Patient's Name, ID, birth date and time, address, telephone and telecom, other IDs and
// names, birth and mother's birth name, Medical Record Locator: what names the patient.
bool is_direct_identifier(Tag tag);

class Policy {
 public:
  // Builds a policy from a preset ("basic", "research"), extra option names (as on the
  // command line) and an optional recipe file. Fails with ErrorCode::usage naming the bad
  // preset, option or recipe line.
  [[nodiscard]] static Result<Policy> create(std::string_view preset,
                                             std::span<const std::string> options,
                                             const std::optional<std::filesystem::path>& recipe);

  // Parses recipe text ("(0008,1030) K" or "StudyDescription K" per line, '#' comments).
  [[nodiscard]] Status add_recipe(std::string_view text, std::string_view source_name);

  bool has(standard::ProfileOption option) const {
    return options_[static_cast<std::size_t>(option)];
  }
  bool has(PixelOption option) const { return pixel_options_[static_cast<std::size_t>(option)]; }

  // The action for a public tag listed in Table E.1-1 (or overridden by the recipe);
  // nullopt when neither lists it.
  std::optional<Action> listed_action(Tag tag) const;
  // A recipe override for any tag, public or private.
  std::optional<Action> override_for(Tag tag) const;
  // The action for a Table E.3.4-1 row under this policy's options.
  Action structured_content_action(const standard::StructuredContentRow& row) const;

  const std::string& preset() const { return preset_; }
  // CLI names of the options in effect, in table order, then the pixel options.
  std::vector<std::string> option_names() const;
  // CID 7050 codes: 113100 then one per option in effect (pixel options last).
  std::vector<const standard::CodedConcept*> method_codes() const;
  std::size_t override_count() const { return overrides_.size(); }
  // Whether the recipe asks for `action` on any attribute.
  bool overrides_with(Action action) const;

  // What this policy keeps that the Basic Profile would not (recipe overrides to K first,
  // then the table rows a chosen option's column keeps), for warnings and reports.
  std::vector<KeptAttribute> kept_against_profile() const;
  // True when a direct identifier is kept: the output must not claim Patient Identity
  // Removed = YES.
  bool keeps_direct_identifier() const;

 private:
  Action resolve_row(const standard::ProfileRow& row) const;
  [[nodiscard]] Status set_option(std::string_view cli_name);

  std::string preset_;
  std::array<bool, standard::kProfileOptionCount> options_{};
  std::array<bool, kPixelOptionCount> pixel_options_{};
  std::unordered_map<Tag, Action> overrides_;
};

}  // namespace radguard::deid
