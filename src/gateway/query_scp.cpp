#include "gateway/query_scp.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include "core/tag.hpp"
#include "core/text.hpp"
#include "dicom/dicom_file.hpp"
#include "standard/tables.hpp"
#include "standard/tags.hpp"

namespace radguard::gateway {

namespace fs = std::filesystem;

namespace {

constexpr Tag tag_of(std::uint32_t key) {
  return Tag{static_cast<std::uint16_t>(key >> 16), static_cast<std::uint16_t>(key & 0xFFFF)};
}

// Attributes the service answers itself (counts, the Retrieve AE Title) or that describe the
// answer (the character set): never matched against an instance's value.
bool answered_by_service(Tag tag) {
  return tag == tags::SpecificCharacterSet || tag == tags::RetrieveAETitle ||
         tag == tags::ModalitiesInStudy || tag == tags::NumberOfPatientRelatedStudies ||
         tag == tags::NumberOfPatientRelatedSeries ||
         tag == tags::NumberOfPatientRelatedInstances || tag == tags::NumberOfStudyRelatedSeries ||
         tag == tags::NumberOfStudyRelatedInstances || tag == tags::NumberOfSeriesRelatedInstances;
}

Tag unique_key(net::QueryLevel level) {
  switch (level) {
    case net::QueryLevel::patient: return tags::PatientID;
    case net::QueryLevel::study: return tags::StudyInstanceUID;
    case net::QueryLevel::series: return tags::SeriesInstanceUID;
    case net::QueryLevel::image: return tags::SOPInstanceUID;
  }
  return tags::StudyInstanceUID;
}

std::vector<std::string> split_values(const std::string& text) {
  std::vector<std::string> values;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find('\\', start);
    values.push_back(trimmed(std::string_view(text).substr(start, end - start)));
    if (end == std::string::npos) return values;
    start = end + 1;
  }
}

// '*' any run of characters, '?' one character (PS3.4 C.2.2.2.4).
bool wildcard_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool one_matches(std::string_view vr, const std::string& key, const std::string& value) {
  const bool temporal = vr == "DA" || vr == "TM" || vr == "DT";
  if (const auto dash = key.find('-'); temporal && dash != std::string::npos) {
    const std::string low = key.substr(0, dash), high = key.substr(dash + 1);
    return !value.empty() && (low.empty() || value >= low) &&
           (high.empty() || value.substr(0, high.size()) <= high);
  }
  if (vr != "UI" && key.find_first_of("*?") != std::string::npos)
    return wildcard_match(key, value);
  return key == value;
}

// One instance of the released folder, with the attributes a request needs.
struct Instance {
  fs::path path;
  std::map<Tag, std::string> values;  // present attributes, padding removed
};

// A patient, study, series or instance answered: its matching instances.
struct Record {
  std::vector<const Instance*> instances;
  std::set<std::string> studies, series, modalities;
};

std::vector<Tag> tags_to_read(const net::QueryRequest& request) {
  std::set<Tag> wanted = {tags::SpecificCharacterSet, tags::PatientID,   tags::StudyInstanceUID,
                          tags::SeriesInstanceUID,    tags::SOPInstanceUID, tags::Modality};
  for (const auto& key : request.keys)
    if (!answered_by_service(tag_of(key.tag))) wanted.insert(tag_of(key.tag));
  return {wanted.begin(), wanted.end()};
}

// Every instance under the released folder (published files only: temporary files begin with
// a dot), with the header attributes read up to the last one wanted. Files that do not read
// as DICOM are passed over.
Result<std::vector<Instance>> read_released(const fs::path& released, const std::vector<Tag>& wanted) {
  std::vector<Instance> instances;
  std::error_code ec;
  if (!fs::is_directory(released, ec)) return instances;
  fs::recursive_directory_iterator it(released, fs::directory_options::skip_permission_denied, ec);
  if (ec) return fail(ErrorCode::io, "cannot list the released instances: " + ec.message());
  for (fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return fail(ErrorCode::io, "cannot list the released instances: " + ec.message());
    // Dot-named entries are temporary files or hidden folders, never published instances;
    // symbolic links could lead out of the released folder (into the spool): both passed over.
    const std::string name = it->path().filename().string();
    const bool link = it->is_symlink(ec);
    if (name.starts_with('.') || link) {
      if (it->is_directory(ec) || link) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    auto values = dicom::DicomFile::read_leading_strings(it->path(), wanted);
    if (!values) continue;
    Instance instance{it->path(), {}};
    for (std::size_t i = 0; i < wanted.size(); ++i)
      if (values->values[i]) instance.values.emplace(wanted[i], trimmed(*values->values[i]));
    instances.push_back(std::move(instance));
  }
  std::sort(instances.begin(), instances.end(),
            [](const Instance& a, const Instance& b) { return a.path < b.path; });
  return instances;
}

bool instance_matches(const Instance& instance, const net::QueryRequest& request) {
  for (const auto& key : request.keys) {
    const Tag tag = tag_of(key.tag);
    if (answered_by_service(tag) || trimmed(key.value).empty()) continue;
    const auto found = instance.values.find(tag);
    if (found == instance.values.end() || !key_matches(key.tag, key.value, found->second))
      return false;
  }
  return true;
}

// The records of the request's level whose instances match every key (Modalities in Study:
// one of the study's modalities), in the order of their first instance's path.
Result<std::pair<std::vector<Instance>, std::vector<Record>>> select_records(
    const fs::path& released, const net::QueryRequest& request) {
  auto read = read_released(released, tags_to_read(request));
  if (!read) return std::unexpected(read.error());
  std::pair<std::vector<Instance>, std::vector<Record>> result{std::move(*read), {}};
  std::map<std::string, std::size_t> index;  // record key -> position
  const Tag key_tag = unique_key(request.level);
  for (const Instance& instance : result.first) {
    const auto key = instance.values.find(key_tag);
    if (key == instance.values.end() || !instance_matches(instance, request)) continue;
    // A series or instance is named by its own UID and its study's (UIDs are unique, but the
    // record must not merge what a malformed input made collide). A patient or a study is one
    // record whatever else differs: a patient with two studies is one answer.
    std::string record_key = key->second;
    if (request.level == net::QueryLevel::series || request.level == net::QueryLevel::image) {
      const auto study = instance.values.find(tags::StudyInstanceUID);
      record_key += '|' + (study == instance.values.end() ? std::string() : study->second);
    }
    auto [at, added] = index.emplace(record_key, result.second.size());
    if (added) result.second.emplace_back();
    Record& record = result.second[at->second];
    record.instances.push_back(&instance);
    for (const auto& [tag, set] : {std::pair{tags::StudyInstanceUID, &record.studies},
                                   std::pair{tags::SeriesInstanceUID, &record.series},
                                   std::pair{tags::Modality, &record.modalities}})
      if (const auto v = instance.values.find(tag); v != instance.values.end()) set->insert(v->second);
  }
  for (const auto& key : request.keys) {
    if (tag_of(key.tag) != tags::ModalitiesInStudy || trimmed(key.value).empty()) continue;
    std::erase_if(result.second, [&](const Record& record) {
      return std::ranges::none_of(record.modalities, [&](const std::string& modality) {
        return key_matches(key.tag, key.value, modality);
      });
    });
  }
  return result;
}

std::string join(const std::set<std::string>& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : "\\") + value;
  return text;
}

// A record's value of a key: a count or the Retrieve AE Title the service answers, or the
// first instance's value ("" when it has none).
std::string answer_value(Tag tag, const Record& record, const std::string& retrieve_ae) {
  if (tag == tags::RetrieveAETitle) return retrieve_ae;
  if (tag == tags::ModalitiesInStudy) return join(record.modalities);
  if (tag == tags::NumberOfPatientRelatedStudies) return std::to_string(record.studies.size());
  if (tag == tags::NumberOfPatientRelatedSeries || tag == tags::NumberOfStudyRelatedSeries)
    return std::to_string(record.series.size());
  if (tag == tags::NumberOfPatientRelatedInstances || tag == tags::NumberOfStudyRelatedInstances ||
      tag == tags::NumberOfSeriesRelatedInstances)
    return std::to_string(record.instances.size());
  const auto& values = record.instances.front()->values;
  const auto found = values.find(tag);
  return found == values.end() ? std::string() : found->second;
}

std::string printable(std::string text) {
  for (char& c : text)
    if (c < 0x20 || c > 0x7e) c = '?';
  return text;
}

}  // namespace

bool key_matches(std::uint32_t tag, const std::string& key, const std::string& value) {
  const std::string wanted = trimmed(key);
  if (wanted.empty()) return true;
  const auto* entry = standard::find_dictionary_entry(tag_of(tag));
  const std::string_view vr = entry != nullptr && entry->vr != nullptr ? entry->vr : "";
  const auto values = split_values(value);
  // A list of values in the key matches when one of them does (PS3.4 C.2.2.2.2), and a
  // multi-valued attribute when one of its values does.
  for (const auto& alternative : split_values(wanted))
    for (const auto& one : values)
      if (one_matches(vr, alternative, one)) return true;
  return false;
}

Result<std::vector<net::QueryMatch>> find_released(const fs::path& released,
                                                   const net::QueryRequest& request,
                                                   const std::string& retrieve_ae) {
  auto selected = select_records(released, request);
  if (!selected) return std::unexpected(selected.error());
  const Tag key_tag = unique_key(request.level);
  std::vector<net::QueryMatch> matches;
  for (const Record& record : selected->second) {
    net::QueryMatch match;
    bool has_unique_key = false;
    for (const auto& key : request.keys) {
      const Tag tag = tag_of(key.tag);
      if (tag == tags::SpecificCharacterSet) continue;  // added below, once
      has_unique_key = has_unique_key || tag == key_tag;
      match.push_back({key.tag, answer_value(tag, record, retrieve_ae)});
    }
    // The answer always names its record (PS3.4 C.4.1.1.3.2).
    if (!has_unique_key) match.push_back({key_tag.key(), answer_value(key_tag, record, retrieve_ae)});
    if (auto charset = answer_value(tags::SpecificCharacterSet, record, retrieve_ae); !charset.empty())
      match.insert(match.begin(), net::QueryKey{tags::SpecificCharacterSet.key(), charset});
    matches.push_back(std::move(match));
  }
  return matches;
}

Result<std::vector<fs::path>> released_files(const fs::path& released,
                                             const net::QueryRequest& request) {
  auto selected = select_records(released, request);
  if (!selected) return std::unexpected(selected.error());
  std::vector<fs::path> files;
  for (const Record& record : selected->second)
    for (const Instance* instance : record.instances) files.push_back(instance->path);
  std::sort(files.begin(), files.end());
  return files;
}

std::shared_ptr<const net::QueryService> make_query_service(
    QueryRetrieveConfig given, std::function<void(const std::string&)> log) {
  auto config = std::make_shared<const QueryRetrieveConfig>(std::move(given));
  auto note = [log = std::move(log)](const std::string& line) {
    if (log) log(line);
  };
  auto service = std::make_shared<net::QueryService>();
  service->ae_title = config->ae_title;
  service->max_concurrent = config->max_concurrent;
  service->find = [config, note](const net::QueryRequest& request)
      -> Result<std::vector<net::QueryMatch>> {
    auto found = find_released(config->released, request, config->ae_title);
    note("C-FIND from " + request.calling_ae + " at " + net::level_name(request.level) + " level: " +
         (found ? std::to_string(found->size()) + " matches" : "failed: " + found.error().message));
    return found;
  };
  service->move = [config, note](const net::QueryRequest& request,
                                 const std::string& destination) -> Result<net::MovePlan> {
    const auto known = std::ranges::find(config->destinations, destination, &net::Peer::ae_title);
    if (known == config->destinations.end()) {
      note("refused a C-MOVE from " + request.calling_ae + ": destination " +
           printable(destination) + " is not configured (--move-destination)");
      return fail(ErrorCode::not_found, "unknown C-MOVE destination");
    }
    auto files = released_files(config->released, request);
    if (!files) {
      note("C-MOVE from " + request.calling_ae + " failed: " + files.error().message);
      return std::unexpected(files.error());
    }
    // Moves use TLS exactly when the listener does, with the listener's files (documented at
    // --move-destination): a destination's own TLS settings are never used.
    net::MovePlan plan{*known, std::move(*files)};
    plan.destination.tls = config->tls;
    note("C-MOVE from " + request.calling_ae + " to " + destination + " at " +
         net::level_name(request.level) + " level: " + std::to_string(plan.files.size()) +
         " instances");
    return plan;
  };
  return service;
}

}  // namespace radguard::gateway
