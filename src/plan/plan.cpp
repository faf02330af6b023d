#include "plan/plan.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/atomic_file.hpp"
#include "core/text.hpp"
#include "crypto/crypto.hpp"
#include "dicom/dicom_file.hpp"
#include "standard/tags.hpp"

namespace radguard::plan {

namespace fs = std::filesystem;

namespace {

// Input paths often hold patient names: the lists are for the operator's account only.
constexpr fs::perms kListPerms = fs::perms::owner_read | fs::perms::owner_write;

struct Header {
  std::string study_uid, series_uid, sop_uid;
  std::uint64_t bytes = 0;
  std::optional<LeftOut> left_out;
};

Header read_header(const std::string& path) {
  Header h;
  // Only the leading attributes up to the three UIDs are read, never the pixel data: a file
  // damaged further on is still dealt out, and its shard's run reports it as one run would.
  static constexpr std::array<Tag, 3> kWanted{tags::SOPInstanceUID, tags::StudyInstanceUID,
                                              tags::SeriesInstanceUID};
  auto leading = dicom::DicomFile::read_leading_strings(path, kWanted);
  if (!leading) {
    std::error_code ec;
    h.bytes = fs::file_size(path, ec);
    h.left_out = LeftOut{path, leading.error().message};
    return h;
  }
  h.bytes = leading->file_bytes;
  h.sop_uid = trimmed(leading->values[0].value_or(""));
  h.study_uid = trimmed(leading->values[1].value_or(""));
  h.series_uid = trimmed(leading->values[2].value_or(""));
  return h;
}

// Union-find over study groups.
struct Groups {
  std::vector<std::size_t> parent;
  std::size_t add() {
    parent.push_back(parent.size());
    return parent.size() - 1;
  }
  std::size_t find(std::size_t g) {
    while (parent[g] != g) g = parent[g] = parent[parent[g]];
    return g;
  }
  void join(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

}  // namespace

Result<Plan> make_plan(const PlanOptions& options) {
  if (options.shards == 0) return fail(ErrorCode::usage, "--shards must be at least 1");
  const auto start = std::chrono::steady_clock::now();
  const batch::InputSet found = batch::find_files(options.inputs);
  std::vector<Header> headers(found.files.size());
  {
    batch::Progress progress("planning: reading headers", found.files.size(), options.progress);
    batch::run_parallel(
        found.files.size(), batch::default_threads(options.threads),
        [&](std::size_t i) {
          headers[i] = read_header(found.files[i]);
          progress.advance(headers[i].bytes);
        },
        [&](std::size_t i, const std::string& what) {
          headers[i].left_out = LeftOut{found.files[i], "cannot be read: " + what};
        });
    progress.finish();
  }

  Plan plan;
  auto random = crypto::random_bytes(8);
  if (!random) return std::unexpected(random.error());
  plan.id = crypto::to_hex(reinterpret_cast<const std::uint8_t*>(random->data()), random->size());
  plan.missing = found.missing;
  for (const auto& folder : found.folders) plan.input_folders.push_back(folder.canonical);
  Groups groups;
  std::unordered_map<std::string, std::size_t> group_of_study, group_of_series, group_of_sop;
  std::vector<std::size_t> group_of_file(found.files.size(), 0);
  for (std::size_t i = 0; i < found.files.size(); ++i) {
    const Header& h = headers[i];
    if (h.left_out) {
      // Still dealt out, alone: its shard's run reports it (not DICOM, failed) as one run
      // over all inputs would, so the merged report counts it the same.
      plan.left_out.push_back(*h.left_out);
      group_of_file[i] = groups.add();
      continue;
    }
    auto [study, new_study] = group_of_study.try_emplace(h.study_uid, 0);
    if (new_study) study->second = groups.add();
    group_of_file[i] = study->second;
    // A Series Instance UID that (wrongly) recurs in other studies: series-level stages
    // group by it in one run, so its studies go to one shard.
    if (!h.series_uid.empty()) {
      auto [series, new_series] = group_of_series.try_emplace(h.series_uid, study->second);
      if (!new_series) groups.join(series->second, study->second);
    }
    if (h.sop_uid.empty()) continue;
    auto [sop, new_sop] = group_of_sop.try_emplace(h.sop_uid, study->second);
    if (!new_sop) groups.join(sop->second, study->second);
  }
  plan.studies = group_of_study.size();

  // Each group's files (in input order) and bytes, dealt out largest first.
  std::map<std::size_t, std::vector<std::size_t>> members;
  std::map<std::size_t, std::uint64_t> group_bytes;
  std::map<std::size_t, std::size_t> group_studies;
  for (std::size_t i = 0; i < found.files.size(); ++i) {
    const std::size_t g = groups.find(group_of_file[i]);
    members[g].push_back(i);
    group_bytes[g] += headers[i].bytes;
    if (headers[i].left_out) continue;
    plan.bytes += headers[i].bytes;
    ++plan.files;
  }
  for (const auto& [study, g] : group_of_study) ++group_studies[groups.find(g)];
  std::vector<std::size_t> order;
  for (const auto& [g, files] : members) order.push_back(g);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return group_bytes[a] > group_bytes[b];
  });
  plan.shards.resize(options.shards);
  std::vector<std::vector<std::size_t>> shard_files(options.shards);
  for (const std::size_t g : order) {
    const auto lightest = std::min_element(
        plan.shards.begin(), plan.shards.end(),
        [](const Shard& a, const Shard& b) { return a.bytes < b.bytes; });
    const auto s = static_cast<std::size_t>(lightest - plan.shards.begin());
    lightest->bytes += group_bytes[g];
    lightest->studies += group_studies[g];
    for (const std::size_t i : members[g]) lightest->left_out += headers[i].left_out.has_value();
    shard_files[s].insert(shard_files[s].end(), members[g].begin(), members[g].end());
  }
  for (std::size_t s = 0; s < shard_files.size(); ++s) {
    std::sort(shard_files[s].begin(), shard_files[s].end());
    for (const std::size_t i : shard_files[s]) plan.shards[s].files.push_back(found.files[i]);
  }
  plan.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return plan;
}

Status write_plan(const Plan& plan, const fs::path& folder) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return fail(ErrorCode::io, "cannot create " + folder.string() + ": " + ec.message());
  // Lists of an earlier plan with more shards would run their files a second time.
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("shard-") && name.ends_with(".txt") && !fs::remove(entry.path(), ec))
      return fail(ErrorCode::io, "cannot remove the earlier " + name + " in " + folder.string());
  }
  if (ec) return fail(ErrorCode::io, "cannot list " + folder.string() + ": " + ec.message());
  // Nor may the shard reports of an earlier plan be merged as this plan's (radguard plan merge).
  if (fs::is_directory(folder / "reports", ec)) {
    for (const auto& entry : fs::directory_iterator(folder / "reports", ec))
      if (entry.path().extension() == ".json" && !fs::remove(entry.path(), ec))
        return fail(ErrorCode::io, "cannot remove the earlier report " + entry.path().string());
    if (ec) return fail(ErrorCode::io, "cannot list " + (folder / "reports").string());
  }
  fs::remove(folder / "report.json", ec);
  // Nor the staged shards of an earlier plan's export be published with this one's.
  if (fs::is_directory(folder / "staged", ec)) {
    for (const auto& entry : fs::directory_iterator(folder / "staged", ec))
      if (entry.path().extension() == ".json" && !fs::remove(entry.path(), ec))
        return fail(ErrorCode::io, "cannot remove the earlier part " + entry.path().string());
    if (ec) return fail(ErrorCode::io, "cannot list " + (folder / "staged").string());
  }
  // Nor the Slurm scripts of an earlier plan (their array is of the old shard count); --sbatch
  // writes them anew after this.
  for (const char* script : {"run.sbatch", "merge.sbatch", "submit.sh"}) fs::remove(folder / script, ec);
  for (std::size_t s = 0; s < plan.shards.size(); ++s) {
    std::string text;
    for (const auto& file : plan.shards[s].files) {
      const fs::path absolute = fs::absolute(file, ec);
      text += (ec ? fs::path(file) : absolute).string() + "\n";
    }
    char name[32];
    std::snprintf(name, sizeof name, "shard-%04zu.txt", s);
    if (auto written = write_file_atomically(folder / name, text, kListPerms); !written) return written;
  }
  std::string left;
  for (const auto& l : plan.left_out) left += l.path + "\t" + l.reason + "\n";
  if (auto written = write_file_atomically(folder / "left-out.txt", left, kListPerms); !written)
    return written;
  return write_file_atomically(folder / "plan.json", plan_json(plan), kListPerms);
}

std::string plan_json(const Plan& plan) {
  nlohmann::json shards = nlohmann::json::array();
  for (std::size_t s = 0; s < plan.shards.size(); ++s) {
    char name[32];
    std::snprintf(name, sizeof name, "shard-%04zu.txt", s);
    shards.push_back({{"list", name},
                      {"files", plan.shards[s].files.size()},
                      {"left_out", plan.shards[s].left_out},
                      {"studies", plan.shards[s].studies},
                      {"bytes", plan.shards[s].bytes}});
  }
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& m : plan.missing) missing.push_back({{"input", m.path.string()}, {"reason", m.reason}});
  const nlohmann::json doc = {{"command", "plan"},
                              {"id", plan.id},
                              {"files", plan.files},
                              {"studies", plan.studies},
                              {"bytes", plan.bytes},
                              {"left_out", plan.left_out.size()},
                              {"missing_inputs", missing},
                              {"input_folders", plan.input_folders},
                              {"shards", shards},
                              {"seconds", plan.seconds}};
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string shard_list_name(std::size_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%04zu.txt", shard);
  return name;
}

std::optional<std::size_t> shard_index_of(const std::string& list_name) {
  if (!list_name.starts_with("shard-") || !list_name.ends_with(".txt")) return std::nullopt;
  const std::string digits = list_name.substr(6, list_name.size() - 10);
  if (digits.size() < 4 || digits.size() > 6 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return static_cast<std::size_t>(std::stoul(digits));
}

Result<PlanSummary> read_plan_summary(const fs::path& folder) {
  auto text = read_small_file(folder / "plan.json");
  if (!text) return std::unexpected(text.error());
  const auto doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  PlanSummary summary;
  const auto bad = [&] {
    return fail(ErrorCode::integrity, (folder / "plan.json").string() +
                                          " is not a plan with an id (plan again with this "
                                          "version of radguard plan)");
  };
  if (doc.is_discarded() || !doc.is_object() || doc.value("command", "") != "plan" ||
      !doc.contains("id") || !doc["id"].is_string() || !doc.contains("shards") ||
      !doc["shards"].is_array())
    return bad();
  summary.id = doc["id"].get<std::string>();
  if (summary.id.empty()) return bad();
  for (const auto& shard : doc["shards"]) {
    if (!shard.is_object() || !shard.contains("files") || !shard["files"].is_number_unsigned())
      return bad();
    summary.shard_files.push_back(shard["files"].get<std::size_t>());
  }
  return summary;
}

std::vector<std::string> list_roots(const fs::path& list) {
  if (!shard_index_of(list.filename().string())) return {};
  auto text = read_small_file(list.parent_path() / "plan.json");
  if (!text) return {};
  const auto doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("command", "") != "plan" ||
      !doc.contains("input_folders") || !doc["input_folders"].is_array())
    return {};
  std::vector<std::string> roots;
  for (const auto& folder : doc["input_folders"])
    // "/" would make every absolute path look relative (a plan.json that is not this list's,
    // or a hostile one): only a folder below it names files.
    if (folder.is_string() && folder.get<std::string>().starts_with('/') &&
        folder.get<std::string>().find_first_not_of('/') != std::string::npos)
      roots.push_back(folder.get<std::string>());
  return roots;
}

std::string plan_text(const Plan& plan) {
  std::ostringstream out;
  out << "planned " << plan.files << " files in " << plan.studies << " studies ("
      << plan.bytes / 1'000'000 << " MB) into " << plan.shards.size() << " shards, "
      << plan.left_out.size()
      << " not DICOM or unreadable (left-out.txt; each in a shard, whose run reports it)\n";
  for (std::size_t s = 0; s < plan.shards.size(); ++s)
    out << "  shard " << s << ": " << plan.shards[s].files.size() << " files, "
        << plan.shards[s].studies << " studies, " << plan.shards[s].bytes / 1'000'000 << " MB\n";
  out << missing_text(plan);
  return out.str();
}

bool nothing_planned(const Plan& plan) { return plan.files == 0 && plan.left_out.empty(); }

std::string missing_text(const Plan& plan) {
  std::string out;
  for (const auto& m : plan.missing) out += "error: " + m.path.string() + ": " + m.reason + "\n";
  return out;
}

}  // namespace radguard::plan
