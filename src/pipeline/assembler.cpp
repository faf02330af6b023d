#include "pipeline/assembler.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>

#include "batch/batch.hpp"
#include "core/private_folder.hpp"
#include "core/text.hpp"
#include "crypto/crypto.hpp"
#include "dicom/dicom_file.hpp"
#include "standard/tags.hpp"

namespace radguard::pipeline {

namespace fs = std::filesystem;

namespace {

struct Held {
  std::string id;
  fs::path spill;
};

struct Series {
  std::vector<Held> instances;
  SeriesAssembler::Clock::time_point last;
  std::uint64_t order = 0;  // arrival order of its first instance
};

// Names a series without naming its UIDs (which can embed a date, a device, a site).
std::string series_key(const dicom::DicomFile& file) {
  const std::string study = trimmed(file.string_of(tags::StudyInstanceUID).value_or(""));
  const std::string series = trimmed(file.string_of(tags::SeriesInstanceUID).value_or(""));
  const crypto::Digest digest = crypto::sha256(study + '\0' + series);
  return crypto::to_hex(digest.data(), 16);
}

Status write_spill(const fs::path& path, std::span<const std::uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::error_code ignored;
    fs::remove(path, ignored);
    return fail(ErrorCode::io, "cannot hold the instance in the work folder (disk full?)");
  }
  return {};
}

}  // namespace

struct SeriesAssembler::State {
  Pipeline pipeline;
  AssemblerSettings settings;
  PrivateFolder spill;
  mutable std::mutex mutex;
  std::map<std::string, Series> series;  // by series_key
  std::uint64_t next_file = 0, next_order = 0;
};

SeriesAssembler::SeriesAssembler(std::unique_ptr<State> state) : state_(std::move(state)) {}
SeriesAssembler::SeriesAssembler(SeriesAssembler&&) noexcept = default;
SeriesAssembler& SeriesAssembler::operator=(SeriesAssembler&&) noexcept = default;
SeriesAssembler::~SeriesAssembler() = default;

Result<SeriesAssembler> SeriesAssembler::create(const Pipeline& pipeline,
                                                AssemblerSettings settings) {
  auto spill = PrivateFolder::create(settings.work_parent, "radguard-series-");
  if (!spill) return std::unexpected(spill.error());
  return SeriesAssembler(std::unique_ptr<State>(
      new State{pipeline, std::move(settings), std::move(*spill), {}, {}, 0, 0}));
}

Result<std::string> SeriesAssembler::add(std::span<const std::uint8_t> bytes, std::string id,
                                         Clock::time_point now) {
  auto file = dicom::DicomFile::open_bytes(bytes);
  if (!file) return std::unexpected(with_context(file.error(), id));
  if (file->is_dicomdir())
    return fail(ErrorCode::policy, id + ": DICOMDIR not copied: it lists patient identities");
  if (state_->settings.consent)
    if (auto admitted = state_->settings.consent->admit(*file); !admitted)
      return std::unexpected(with_context(admitted.error(), id));
  const std::string key = series_key(*file);
  std::uint64_t number = 0;
  {
    const std::lock_guard lock(state_->mutex);
    number = state_->next_file++;
  }
  const fs::path spill = state_->spill.path() / (std::to_string(number) + ".dcm");
  if (auto written = write_spill(spill, bytes); !written)
    return std::unexpected(with_context(written.error(), id));
  const std::lock_guard lock(state_->mutex);
  auto [it, inserted] = state_->series.try_emplace(key);
  if (inserted) it->second.order = state_->next_order++;
  it->second.instances.push_back({std::move(id), spill});
  it->second.last = now;
  return key;
}

std::vector<std::string> SeriesAssembler::quiet_series(Clock::time_point now) const {
  std::vector<std::pair<Clock::time_point, std::string>> quiet;
  {
    const std::lock_guard lock(state_->mutex);
    for (const auto& [key, series] : state_->series)
      if (now - series.last >= state_->settings.quiet) quiet.emplace_back(series.last, key);
  }
  std::ranges::sort(quiet);
  std::vector<std::string> keys;
  for (auto& [when, key] : quiet) keys.push_back(std::move(key));
  return keys;
}

std::vector<std::string> SeriesAssembler::open_series() const {
  std::vector<std::pair<std::uint64_t, std::string>> held;
  {
    const std::lock_guard lock(state_->mutex);
    for (const auto& [key, series] : state_->series) held.emplace_back(series.order, key);
  }
  std::ranges::sort(held);
  std::vector<std::string> keys;
  for (auto& [order, key] : held) keys.push_back(std::move(key));
  return keys;
}

std::size_t SeriesAssembler::instances_held() const {
  const std::lock_guard lock(state_->mutex);
  std::size_t count = 0;
  for (const auto& [key, series] : state_->series) count += series.instances.size();
  return count;
}

std::vector<InstanceOutcome> SeriesAssembler::close(const std::string& key) {
  Series series;
  {
    const std::lock_guard lock(state_->mutex);
    auto found = state_->series.find(key);
    if (found == state_->series.end()) return {};
    series = std::move(found->second);
    state_->series.erase(found);
  }
  std::vector<fs::path> paths;
  for (const Held& held : series.instances) paths.push_back(held.spill);

  std::vector<InstanceOutcome> outcomes;
  const std::vector<deid::PixelStage> stages = state_->pipeline.pixel_stages();
  const deid::PixelStageContext context{paths, state_->settings.threads,
                                        batch::ProgressDisplay::never};
  std::optional<Error> unprepared;
  for (const deid::PixelStage& stage : stages) {
    if (!stage.prepare) continue;
    if (auto prepared = stage.prepare(context); !prepared) {
      unprepared = with_context(prepared.error(), stage.name);
      break;
    }
  }
  for (Held& held : series.instances) {
    InstanceOutcome outcome{std::move(held.id), fail(ErrorCode::internal, "not processed")};
    if (unprepared) {
      outcome.output = std::unexpected(*unprepared);
    } else if (auto file = dicom::DicomFile::open(held.spill); !file) {
      outcome.output = std::unexpected(file.error());
    } else {
      outcome.output = state_->pipeline.process_opened(held.spill, *file, stages);
    }
    std::error_code ignored;
    fs::remove(held.spill, ignored);
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

std::vector<InstanceOutcome> SeriesAssembler::close_all() {
  std::vector<InstanceOutcome> outcomes;
  for (const std::string& key : open_series())
    for (auto& outcome : close(key)) outcomes.push_back(std::move(outcome));
  return outcomes;
}

}  // namespace radguard::pipeline
