#include "deid/header_stage.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/text.hpp"
#include "deid/dates.hpp"
#include "deid/text_scrubber.hpp"
#include "standard/tables.hpp"
#include "standard/tags.hpp"

namespace radguard::deid {

namespace {

using standard::ProfileOption;
using Kind = dicom::Decision::Kind;

// How the items of a kept sequence are treated (Decision::child_mode).
enum Mode : std::uint8_t {
  normal = 0,
  dummy_content = 1,       // inside a D sequence: unlisted free text becomes dummy values
  structured_content = 2,  // Clean Structured Content: SR values follow Table E.3.4-1
  graphics = 3,            // Clean Graphics: annotation text is cleaned
  age_value = 4,           // the measured value of an SR NUM item whose concept is an age
  coded = 5,               // a code sequence inside structured content: meanings are scrubbed
};

// Whether an SR content item's concept is an age (Subject Age, Age, Age at ...).
bool is_age_concept(const dicom::ItemView& item) {
  static constexpr std::string_view kAgeCodes[] = {"121033", "30525-0", "397669002", "21612-7",
                                                   "424144002", "445518008", "29553-5"};
  const Tag name{0x0040, 0xA043};
  if (const auto code = item.nested_string_of(name, Tag{0x0008, 0x0100})) {
    std::string value(*code);
    while (!value.empty() && value.back() == ' ') value.pop_back();
    for (const auto known : kAgeCodes)
      if (value == known) return true;
  }
  if (const auto meaning = item.nested_string_of(name, Tag{0x0008, 0x0104})) {
    std::string upper;
    for (const char c : *meaning) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    // "AGE" as a word: Subject Age, Age at death, Patient age (not "Image", "Stage").
    for (std::size_t pos = upper.find("AGE"); pos != std::string::npos; pos = upper.find("AGE", pos + 1)) {
      const bool start = pos == 0 || !std::isalpha(static_cast<unsigned char>(upper[pos - 1]));
      const bool end = pos + 3 >= upper.size() || !std::isalpha(static_cast<unsigned char>(upper[pos + 3]));
      if (start && end) return true;
    }
  }
  return false;
}

// A numeric age over 89 years becomes 90 years in its own unit (UCUM a, mo, wk, d, h, min);
// a value that cannot be read is replaced by 90 years' worth too (fail closed).
std::string cap_numeric_age(std::string_view value, std::string_view units) {
  std::string unit(units);
  while (!unit.empty() && unit.back() == ' ') unit.pop_back();
  double per_year = 1;
  if (unit == "mo") per_year = 12;
  else if (unit == "wk") per_year = 52.1775;
  else if (unit == "d") per_year = 365.25;
  else if (unit == "h") per_year = 8766;
  else if (unit == "min") per_year = 525960;
  const std::string text = trimmed(value);
  char* end = nullptr;
  const double number = std::strtod(text.c_str(), &end);
  const bool readable = !text.empty() && end == text.c_str() + text.size();
  if (readable && number / per_year <= 89) return std::string(value);
  return std::to_string(static_cast<long>(90 * per_year));
}

bool is_text_vr(std::string_view vr) {
  return vr == "LO" || vr == "SH" || vr == "ST" || vr == "LT" || vr == "UT" || vr == "UC";
}
bool is_temporal_vr(std::string_view vr) { return vr == "DA" || vr == "DT" || vr == "TM"; }

std::string dummy_for(std::string_view vr) {
  if (vr == "DA") return "19000101";
  if (vr == "TM") return "000000";
  if (vr == "DT") return "19000101000000";
  if (vr == "AS") return "000Y";
  if (vr == "DS" || vr == "IS" || vr == "US" || vr == "SS" || vr == "UL" || vr == "SL" ||
      vr == "FL" || vr == "FD" || vr == "SV" || vr == "UV")
    return "0";
  if (vr == "UR") return "urn:radguard:removed";
  return "ANONYMIZED";
}

bool is_code_sequence(Tag tag) {
  const auto* entry = standard::find_dictionary_entry(tag);
  if (entry == nullptr) return false;
  return std::string_view(entry->keyword).ends_with("CodeSequence");
}

// Everything the policy needs to know about the object being changed.
struct ObjectContext {
  pseudonym::DateOffset offset;
  std::string patient_id;
  std::string patient_name;
  PhiValues phi;
  TextEncoding encoding = TextEncoding::single_byte;  // the data set's Specific Character Set
};

class HeaderPolicy final : public dicom::ElementPolicy {
 public:
  HeaderPolicy(const Policy& policy, const pseudonym::Pseudonymizer& pseudonymizer,
               const ObjectContext& object)
      : policy_(policy), pseudonymizer_(pseudonymizer), object_(object) {}

  dicom::Decision decide(const dicom::ElementView& view,
                         const dicom::ItemView& item) const override {
    const Tag tag = view.tag;
    // Group lengths are recomputed on writing; trailing padding may hold stale bytes.
    if (tag.is_group_length() || tag.group == 0x0002 || tag == tags::DataSetTrailingPadding)
      return remove();
    if (tag.is_private()) return decide_private(view, item);
    // Marks of an earlier de-identification are rewritten at the top level afterwards.
    if (view.path.empty() &&
        (tag == tags::PatientIdentityRemoved || tag == tags::DeidentificationMethod ||
         tag == tags::DeidentificationMethodCodeSequence ||
         tag == tags::LongitudinalTemporalInformationModified))
      return remove();

    const auto* entry = standard::find_dictionary_entry(tag);
    const std::string_view vr =
        (view.vr == "UN" && entry != nullptr) ? std::string_view(entry->vr) : view.vr;
    // A sequence stored as opaque UN bytes cannot be walked, so its items cannot be cleaned.
    if (vr == "SQ" && !view.is_sequence) return remove();
    const std::optional<Action> override = policy_.override_for(tag);
    if (override) return apply(*override, view, vr, item, /*explicit_keep=*/true);

    // Overlay and curve groups: their bitmaps and text cannot be cleaned, so the whole
    // repeating group goes with them.
    if ((tag.group & 0xFF00) == 0x6000 || (tag.group & 0xFF00) == 0x5000) return remove();

    if (view.inherited_mode == structured_content && is_sr_value(tag))
      return apply(structured_action(item), view, vr, item, false);
    // SR NUM items whose concept is an age: the value is capped like Patient's Age.
    if (view.inherited_mode == structured_content && tag == tags::MeasuredValueSequence &&
        view.is_sequence) {
      // A NUM item's value follows Table E.3.4-1 by its concept like the other value types.
      const Action action = structured_action(item);
      if (action == Action::remove) return remove();
      if (action == Action::empty || action == Action::dummy) return {Kind::empty, {}, 0};
      return keep(is_age_concept(item) ? age_value : structured_content);
    }
    if (view.inherited_mode == age_value) {
      if (tag == tags::NumericValue) {
        const auto unit =
            item.nested_string_of(tags::MeasurementUnitsCodeSequence, tags::CodeValue);
        return replace(cap_numeric_age(view.value, unit.value_or("a")));
      }
      if (tag == tags::FloatingPointValue || tag == tags::RationalNumeratorValue ||
          tag == tags::RationalDenominatorValue)
        return remove();  // binary copies of the value; Numeric Value carries it
    }
    // Code meanings in structured content (CODE values, concept names) are free text.
    if (view.inherited_mode == coded && tag == tags::CodeMeaning && !view.value.empty())
      return replace(scrub_text(view.value, object_.phi, encoding_of(item)));
    if (view.inherited_mode == graphics && tag == tags::UnformattedTextValue)
      return apply(Action::clean, view, vr, item, false);

    if (view.path.empty() && tag == tags::PatientID) return replace(object_.patient_id);
    if (view.path.empty() && tag == tags::PatientName) return replace(object_.patient_name);

    if (auto listed = policy_.listed_action(tag)) return apply(*listed, view, vr, item, false);
    if (entry == nullptr) return remove();  // unknown to the dictionary: fail closed
    if (view.inherited_mode == dummy_content &&
        (is_text_vr(vr) || vr == "PN" || is_temporal_vr(vr) || vr == "AS" || vr == "UR"))
      return apply(Action::dummy, view, vr, item, false);
    return apply(Action::keep, view, vr, item, false);
  }

 private:
  static dicom::Decision remove() { return {Kind::remove, {}, 0}; }
  static dicom::Decision keep(std::uint8_t child_mode = normal) {
    return {Kind::keep, {}, child_mode};
  }
  static dicom::Decision replace(std::string value) { return {Kind::replace, std::move(value), 0}; }

  static bool is_sr_value(Tag tag) {
    return tag == tags::TextValue || tag == tags::PersonName || tag == tags::DateTime ||
           tag == tags::Date || tag == tags::Time || tag == tags::UID;
  }

  Action structured_action(const dicom::ItemView& item) const {
    const auto code = item.nested_string_of(tags::ConceptNameCodeSequence, tags::CodeValue);
    const auto scheme =
        item.nested_string_of(tags::ConceptNameCodeSequence, tags::CodingSchemeDesignator);
    if (code && scheme) {
      if (const auto* row = standard::find_structured_content(trimmed(*code), trimmed(*scheme)))
        return policy_.structured_content_action(*row);
    }
    return Action::clean;  // a concept the table does not list: its value is cleaned
  }

  dicom::Decision decide_private(const dicom::ElementView& view,
                                 const dicom::ItemView& item) const {
    const Tag tag = view.tag;
    if (const auto override = policy_.override_for(tag)) {
      return *override == Action::keep ? keep() : remove();
    }
    if (!policy_.has(ProfileOption::retain_safe_private)) return remove();
    if (tag.is_private_creator()) {
      // Keep a creator only while some element of its block survives.
      const std::string creator = trimmed(view.value);
      for (const Tag sibling : item.tags()) {
        const auto slot = sibling.private_creator_slot();
        if (slot && *slot == tag && standard::is_safe_private(sibling, creator)) return keep();
      }
      return remove();
    }
    if (view.private_creator.empty() || !standard::is_safe_private(tag, view.private_creator))
      return remove();
    return view.is_sequence ? keep(normal) : keep();
  }

  std::string map_uids(std::string_view value) const {
    std::string out;
    std::size_t start = 0;
    for (;;) {
      const auto end = value.find('\\', start);
      const std::string uid = trimmed(value.substr(
          start, end == std::string_view::npos ? std::string_view::npos : end - start));
      if (!uid.empty()) {
        // Standard UIDs (transfer syntaxes, SOP classes, coding schemes) identify nobody.
        out += uid.starts_with("1.2.840.10008.") ? uid : pseudonymizer_.uid(uid);
      }
      if (end == std::string_view::npos) break;
      out += '\\';
      start = end + 1;
    }
    return out;
  }

  // Shift or dummy for DA/DT/TM, depending on Retain Longitudinal Modified Dates.
  dicom::Decision temporal(const dicom::ElementView& view, std::string_view vr,
                           const dicom::ItemView& item) const {
    if (!policy_.has(ProfileOption::retain_long_modified_dates)) return replace(dummy_for(vr));
    std::optional<std::string> shifted;
    if (vr == "DA") {
      int carry = 0;
      if (const auto partner = standard::time_partner_of(view.tag)) {
        if (const auto time = item.string_of(*partner))
          carry = time_carry_days(*time, object_.offset);
      }
      shifted = shift_date(view.value, object_.offset, carry);
    } else if (vr == "TM") {
      shifted = shift_time(view.value, object_.offset);
    } else {
      shifted = shift_datetime(view.value, object_.offset);
    }
    // A value that cannot be parsed cannot be shifted safely: it goes.
    if (!shifted) return replace(dummy_for(vr));
    return replace(*shifted);
  }

  // Whether the table's cell for `option` on this attribute is C and the option is in use.
  bool cleaned_by(Tag tag, ProfileOption option) const {
    if (!policy_.has(option)) return false;
    const auto* row = standard::find_profile_row(tag);
    return row != nullptr &&
           row->options[static_cast<std::size_t>(option)] == standard::ActionCode::C;
  }

  std::uint8_t child_mode_for(Tag tag, Action action, std::uint8_t current) const {
    if (action == Action::clean) {
      if (cleaned_by(tag, ProfileOption::clean_structured_content)) return structured_content;
      if (cleaned_by(tag, ProfileOption::clean_graphics)) return graphics;
      return current == dummy_content ? dummy_content : normal;
    }
    if (action == Action::dummy) return dummy_content;
    // Unlisted sequences inherit their parent's treatment, except coded concepts, whose
    // meanings are scrubbed inside structured content.
    if ((current == structured_content || current == coded) && is_code_sequence(tag))
      return coded;
    if (current == age_value) return normal;
    if (current != normal && !is_code_sequence(tag)) return current;
    return normal;
  }

  dicom::Decision apply(Action action, const dicom::ElementView& view, std::string_view vr,
                        const dicom::ItemView& item, bool explicit_keep) const {
    if (view.is_sequence) {
      switch (action) {
        case Action::remove:
          return remove();
        case Action::empty:
          return {Kind::empty, {}, 0};
        default:
          return keep(child_mode_for(view.tag, action, view.inherited_mode));
      }
    }
    switch (action) {
      case Action::remove:
        return remove();
      case Action::empty:
        return {Kind::empty, {}, 0};
      case Action::keep:
        if (explicit_keep) return keep();
        if (vr == "AS") return replace(cap_age(view.value));
        if (is_temporal_vr(vr) && policy_.has(ProfileOption::retain_long_modified_dates) &&
            !view.value.empty())
          return temporal(view, vr, item);
        return keep();
      case Action::uid:
        if (vr == "UI") return replace(map_uids(view.value));
        return replace(dummy_for(vr));
      case Action::dummy:
        if (vr == "UI") return replace(map_uids(view.value));
        if (is_temporal_vr(vr)) return temporal(view, vr, item);
        if (vr == "AT") return {Kind::empty, {}, 0};
        return replace(dummy_for(vr));
      case Action::clean:
        // The offset of local time from UTC is kept, as the zones of shifted DT values are.
        if (view.tag == tags::TimezoneOffsetFromUTC) return keep();
        // AE titles name devices and places: a keyed token keeps them linkable, not readable.
        if (vr == "AE")
          return replace("RG" + pseudonymizer_.token("ae-title", trimmed(view.value), 14));
        if (vr == "CS") return keep();
        if (vr == "UI") return replace(map_uids(view.value));
        if (is_temporal_vr(vr)) return temporal(view, vr, item);
        if (vr == "AS") return replace(cap_age(view.value));
        if (vr == "PN") return replace(dummy_for(vr));
        if (is_text_vr(vr)) return replace(scrub_text(view.value, object_.phi, encoding_of(item)));
        if (vr == "OB" || vr == "OW" || vr == "UN") return remove();
        return keep();
    }
    return remove();
  }

  // An item may declare its own Specific Character Set; otherwise the data set's applies.
  TextEncoding encoding_of(const dicom::ItemView& item) const {
    if (const auto charset = item.string_of(tags::SpecificCharacterSet))
      return encoding_for(*charset);
    return object_.encoding;
  }

  const Policy& policy_;
  const pseudonym::Pseudonymizer& pseudonymizer_;
  const ObjectContext& object_;
};

// Whether this policy cleans (C) anything: cleaning free text removes the object's
// identifying values from it, so they must be gathered first. Not only Clean Descriptors has
// C cells: Retain Device Identity and Retain Patient Characteristics clean some attributes
// (Allergies, Patient State, Special Needs...), and a recipe may ask for C on any attribute.
bool needs_phi(const Policy& policy) {
  if (policy.has(ProfileOption::clean_descriptors) ||
      policy.has(ProfileOption::clean_structured_content) ||
      policy.has(ProfileOption::clean_graphics) || policy.overrides_with(Action::clean))
    return true;
  for (const standard::ProfileRow& row : standard::profile_rows()) {
    if (row.private_attributes || row.group_mask != 0xFFFF || row.element_mask != 0xFFFF) continue;
    if (policy.listed_action(Tag{row.group, row.element}) == Action::clean) return true;
  }
  return false;
}

// Gathers, from the whole object, the values the Basic Profile would remove (names, IDs,
// addresses, institutions): any of them appearing inside kept free text is removed too.
PhiValues collect_phi(const dicom::DicomFile& file, TextEncoding encoding) {
  PhiValues phi;
  file.visit([&](const dicom::ElementView& view) {
    if (view.value.empty()) return;
    // A private element that says it holds a person name is one.
    if (view.tag.is_private()) {
      if (view.vr == "PN") phi.add_person_name(view.value, encoding);
      return;
    }
    const auto* entry = standard::find_dictionary_entry(view.tag);
    const std::string_view vr =
        (view.vr == "UN" && entry != nullptr) ? std::string_view(entry->vr) : view.vr;
    if (vr == "PN") {
      if (view.tag == tags::PatientName && view.path.empty())
        phi.add_patient_name(view.value, encoding);
      else
        phi.add_person_name(view.value, encoding);
      return;
    }
    if (!is_text_vr(vr)) return;
    const auto* row = standard::find_profile_row(view.tag);
    if (row == nullptr || row->private_attributes) return;
    const auto clean_cell =
        row->options[static_cast<std::size_t>(ProfileOption::clean_descriptors)];
    if (clean_cell != standard::ActionCode::none) return;  // a descriptor, not an identifier
    const Action basic = resolve(row->basic);
    if (basic == Action::keep || basic == Action::uid || basic == Action::clean) return;
    const std::string_view keyword = entry ? entry->keyword : "";
    // An issuer is both: quoted whole as a code, or word by word in a sentence.
    if (keyword.find("Issuer") != std::string_view::npos) phi.add_text(view.value, encoding);
    if (keyword.find("ID") != std::string_view::npos ||
        keyword.find("Number") != std::string_view::npos)
      phi.add_identifier(view.value, encoding);
    else
      phi.add_text(view.value, encoding);
  });
  return phi;
}

}  // namespace

PhiValues path_identifiers(const dicom::DicomFile& file) {
  PhiValues phi;
  const TextEncoding encoding =
      encoding_for(file.string_of(tags::SpecificCharacterSet).value_or(""));
  auto add = [&](Tag tag, std::string_view vr, const std::string& value) {
    if (value.empty()) return;
    if (vr == "PN") {
      phi.add_person_name(value, encoding);
    } else if (vr == "DA") {
      phi.add_date(value);
    } else {
      phi.add_identifier(value, encoding);
      if (tag == tags::IssuerOfPatientID) phi.add_text(value, encoding);
    }
  };
  const std::pair<Tag, std::string_view> kTags[] = {{tags::PatientName, "PN"},
                                                    {tags::OtherPatientNames, "PN"},
                                                    {tags::PatientBirthName, "PN"},
                                                    {tags::PatientID, "LO"},
                                                    {tags::RETIRED_OtherPatientIDs, "LO"},
                                                    {tags::IssuerOfPatientID, "LO"},
                                                    {tags::PatientBirthDate, "DA"},
                                                    {tags::AccessionNumber, "SH"}};
  if (!file.is_dicomdir()) {
    for (const auto& [tag, vr] : kTags) add(tag, vr, file.string_of(tag).value_or(""));
    return phi;
  }
  // A DICOMDIR lists every patient of the media in its records.
  file.visit([&](const dicom::ElementView& view) {
    for (const auto& [tag, vr] : kTags)
      if (view.tag == tag) add(tag, vr, std::string(view.value));
  });
  return phi;
}

HeaderStage::HeaderStage(Policy policy, pseudonym::Pseudonymizer pseudonymizer,
                         BurnedInPolicy burned_in)
    : policy_(std::move(policy)),
      pseudonymizer_(std::move(pseudonymizer)),
      burned_in_(burned_in),
      identity_removed_(!policy_.keeps_direct_identifier()),
      needs_phi_(needs_phi(policy_)) {}

std::string HeaderStage::method_description() const {
  std::string text = "radguard PS3.15 2026d Basic Profile";
  for (const auto& name : policy_.option_names()) text += "\\" + name;
  if (policy_.override_count() > 0)
    text += "\\recipe overrides: " + std::to_string(policy_.override_count());
  return text;
}

Result<InstanceIdentity> HeaderStage::apply(dicom::DicomFile& file) const {
  if (burned_in_ == BurnedInPolicy::reject) {
    if (const auto burned = file.string_of(tags::BurnedInAnnotation);
        burned && trimmed(*burned) == "YES")
      return fail(ErrorCode::policy,
                  std::string(kBurnedInRefusal) +
                      " (Burned In Annotation is YES) and no pixel stage cleaned the image (use "
                      "--option clean-pixel-data, or --allow-burned-in-annotation only after "
                      "checking the pixels)");
  }
  const std::string key =
      pseudonym::patient_key(file.string_of(tags::PatientID).value_or(""),
                             file.string_of(tags::IssuerOfPatientID).value_or(""),
                             file.string_of(tags::PatientName).value_or(""),
                             file.string_of(tags::PatientBirthDate).value_or(""));

  ObjectContext object;
  object.offset = pseudonymizer_.date_offset(key);
  object.patient_id = pseudonymizer_.patient_id(key);
  object.patient_name = pseudonymizer_.patient_name(key);
  object.encoding = encoding_for(file.string_of(tags::SpecificCharacterSet).value_or(""));
  if (needs_phi_) object.phi = collect_phi(file, object.encoding);

  const HeaderPolicy element_policy(policy_, pseudonymizer_, object);
  if (auto stats = file.transform(element_policy); !stats) return std::unexpected(stats.error());

  // Patient identity is always present afterwards, as keyed pseudonyms, unless a recipe
  // keeps the originals.
  if (policy_.override_for(tags::PatientID) != Action::keep) {
    if (auto s = file.set_string(tags::PatientID, object.patient_id); !s)
      return std::unexpected(s.error());
  }
  if (policy_.override_for(tags::PatientName) != Action::keep) {
    if (auto s = file.set_string(tags::PatientName, object.patient_name); !s)
      return std::unexpected(s.error());
  }
  std::vector<dicom::CodeItem> codes;
  for (const auto* code : policy_.method_codes())
    codes.push_back({code->value, code->scheme, code->meaning});
  const char* longitudinal = policy_.has(ProfileOption::retain_long_full_dates)       ? "UNMODIFIED"
                             : policy_.has(ProfileOption::retain_long_modified_dates) ? "MODIFIED"
                                                                                      : "REMOVED";
  for (auto status :
       {file.set_string(tags::PatientIdentityRemoved, identity_removed_ ? "YES" : "NO"),
        file.set_string(tags::DeidentificationMethod, method_description()),
        file.set_code_sequence(tags::DeidentificationMethodCodeSequence, codes),
        file.set_string(tags::LongitudinalTemporalInformationModified, longitudinal)}) {
    if (!status) return std::unexpected(status.error());
  }

  InstanceIdentity identity;
  identity.study_uid = file.string_of(tags::StudyInstanceUID).value_or("");
  identity.series_uid = file.string_of(tags::SeriesInstanceUID).value_or("");
  identity.sop_instance_uid = file.string_of(tags::SOPInstanceUID).value_or("");
  if (identity.sop_instance_uid.empty()) {
    // Some writers put the instance UID only in the meta header: name the output after it.
    if (const auto meta_uid = file.string_of(tags::MediaStorageSOPInstanceUID)) {
      identity.sop_instance_uid = policy_.has(ProfileOption::retain_uids)
                                      ? trimmed(*meta_uid)
                                      : pseudonymizer_.uid(*meta_uid);
    }
  }
  identity.patient_pseudonym = object.patient_id;
  return identity;
}

}  // namespace radguard::deid
