#pragma once
// Instances that arrive one at a time (a gateway's associations, a page's uploads), brought
// together into series for the stages that need a whole series (defacing), and sent through
// the pipeline when the caller closes a series or it has been quiet for a while. A folder run
// (Pipeline::run_deid) needs none of this: it has every file before it starts.
//
//   add(bytes)  parsed, checked (DICOMDIR refused, the consent gate when given), written to a
//               private spill folder, grouped by Study and Series Instance UID
//   close(key)  the series' stages prepared on its instances (defacing sees the whole
//               series), then each instance through the pixel stages, the header stage and
//               signing, to memory: the bytes Pipeline::run_deid publishes for the same files
//
// Memory: an instance is held in memory only while it is added and while it is processed;
// in between it waits in the spill folder (mode 0700, removed with the assembler).
//
// Thread safety: every member function may be called from any thread. Calls on the held
// series are atomic; close() does its work outside the lock, so instances of other series
// keep arriving while one series is defaced. A series being closed takes no new instance:
// one that arrives for it then starts the series again (and is processed with it next time).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "pipeline/consent_gate.hpp"
#include "pipeline/pipeline.hpp"

namespace radguard::pipeline {

struct AssemblerSettings {
  // How long a series must have received nothing before quiet_series() names it.
  std::chrono::milliseconds quiet = std::chrono::seconds(30);
  std::filesystem::path work_parent;  // where the spill folder is made; empty: system temp
  unsigned threads = 0;  // for a series-level stage (defacing); 0: one per core
  // Optional: instances of patients who have not permitted the purpose are refused by add()
  // and never kept.
  std::optional<ConsentGate> consent;
};

// What became of one instance when its series was processed.
struct InstanceOutcome {
  std::string id;                 // as given to add()
  Result<OutputInstance> output;  // the de-identified instance, or why it is not released
};

class SeriesAssembler {
 public:
  using Clock = std::chrono::steady_clock;

  // Makes the spill folder. The pipeline is shared (copies are cheap). Fails with
  // ErrorCode::io.
  [[nodiscard]] static Result<SeriesAssembler> create(const Pipeline& pipeline,
                                                      AssemblerSettings settings = {});

  SeriesAssembler(SeriesAssembler&&) noexcept;
  SeriesAssembler& operator=(SeriesAssembler&&) noexcept;
  ~SeriesAssembler();  // removes the spill folder and whatever is still held

  // Takes one instance; `id` names it in outcomes and messages (give a neutral id, never a
  // value read from the instance). Returns the key of its series: a digest of its Study and
  // Series Instance UIDs that names no value. Fails, keeping nothing, with
  // ErrorCode::not_dicom or malformed_dicom (cannot be parsed), ErrorCode::policy (a
  // DICOMDIR; withheld by the consent gate), ErrorCode::io (the spill folder).
  [[nodiscard]] Result<std::string> add(std::span<const std::uint8_t> bytes, std::string id,
                                        Clock::time_point now = Clock::now());

  // Series held whose last instance arrived at least `quiet` before `now`, oldest first.
  std::vector<std::string> quiet_series(Clock::time_point now = Clock::now()) const;
  // Every series held, in the order their first instance arrived.
  std::vector<std::string> open_series() const;
  std::size_t instances_held() const;

  // Processes the series `key` and forgets it (its spill files removed): one outcome per
  // instance, in arrival order. A stage's preparation that fails (defacing refusing a head
  // series is not that: its instances fail one by one) fails every instance with its error.
  // An unknown key gives no outcomes.
  std::vector<InstanceOutcome> close(const std::string& key);
  // Every series held, in the order of open_series().
  std::vector<InstanceOutcome> close_all();

 private:
  struct State;
  explicit SeriesAssembler(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace radguard::pipeline
