#pragma once
// A wake-up call between the gateway's threads: the workers are woken when an instance
// arrives, the forwarders when the outbox grows, everyone when the run stops.
//
// A waiter reads generation() before it looks for work and waits from that generation, so a
// notice given while it looked (after it found nothing, before it began to wait) is not lost.
// Waiting from the generation current at the wait instead loses it, and the waiter sleeps
// its whole timeout with work waiting: the forwarder, woken once per worker batch, lost up
// to half a second each time it caught up with the workers, and at the end of every load.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace radguard::gateway {

class Signal {
 public:
  void notify() {
    {
      std::lock_guard lock(mutex_);
      ++generation_;
    }
    cv_.notify_all();
  }
  [[nodiscard]] std::uint64_t generation() {
    std::lock_guard lock(mutex_);
    return generation_;
  }
  // Returns at once when notify() was called since `seen` was read; otherwise at the first
  // notice or after `timeout`.
  void wait_for(std::uint64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return generation_ != seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t generation_ = 0;
};

}  // namespace radguard::gateway
