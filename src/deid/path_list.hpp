#pragma once
// A run's sorted input list, front-coded: each path keeps only what follows the part it shares
// with the first path of its block of 16. Sorted inputs share their folders, so a path costs
// its file name and 12 bytes instead of a std::string (32 bytes and a heap block with the
// whole path): on a run of millions of files the list is a fraction of the plain one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace radguard::deid {

class PathList {
 public:
  PathList() = default;
  // Takes the paths (in any order; a sorted list compresses best), releasing each string as
  // it is copied in. The freed strings' small chunks do not serve the list's large buffers,
  // so while it is built both are held (review): the run's peak does not fall, what stays
  // for the rest of the run (after malloc_trim) does.
  explicit PathList(std::vector<std::string>&& paths);

  [[nodiscard]] std::size_t size() const { return ends_.size(); }
  [[nodiscard]] bool empty() const { return ends_.empty(); }
  // The i-th path as given. O(1): its block's first path's shared part and its own suffix.
  [[nodiscard]] std::string operator[](std::size_t i) const;
  // Bytes held (for tests and the memory figures).
  [[nodiscard]] std::size_t bytes_held() const;

 private:
  static constexpr std::size_t kBlock = 16;
  [[nodiscard]] std::size_t begin_of(std::size_t i) const { return i == 0 ? 0 : ends_[i - 1]; }
  std::string text_;                   // each path's suffix, one after another
  std::vector<std::uint64_t> ends_;    // where each path's suffix ends in text_
  std::vector<std::uint32_t> shared_;  // bytes it shares with its block's first path
};

}  // namespace radguard::deid
