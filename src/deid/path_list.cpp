#include "deid/path_list.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace radguard::deid {

namespace {

// Bytes `path` shares with `head` from the start, capped to what shared_ can hold.
std::uint32_t shared_length(const std::string& head, const std::string& path) {
  const std::size_t most = std::min({head.size(), path.size(),
                                     std::size_t{std::numeric_limits<std::uint32_t>::max()}});
  const auto mismatch = std::mismatch(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(most),
                                      path.begin());
  return static_cast<std::uint32_t>(mismatch.first - head.begin());
}

}  // namespace

PathList::PathList(std::vector<std::string>&& paths) {
  // Sized first (one pass comparing each path with its block's first), so the text is
  // allocated once at its final size rather than grown by doubling.
  std::size_t total = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string& head = paths[i - i % kBlock];
    total += paths[i].size() - (i % kBlock == 0 ? 0 : shared_length(head, paths[i]));
  }
  text_.reserve(total);
  ends_.reserve(paths.size());
  shared_.reserve(paths.size());
  std::string head;  // the current block's first path, the one string held beside the list
  for (std::size_t i = 0; i < paths.size(); ++i) {
    std::string path = std::move(paths[i]);
    const std::uint32_t shared = i % kBlock == 0 ? 0 : shared_length(head, path);
    text_.append(path, shared, std::string::npos);
    ends_.push_back(text_.size());
    shared_.push_back(shared);
    if (i % kBlock == 0) head = std::move(path);
  }
  std::vector<std::string>().swap(paths);
}

std::string PathList::operator[](std::size_t i) const {
  const std::size_t first = i - i % kBlock;
  std::string path(text_, begin_of(first), shared_[i]);
  path.append(text_, begin_of(i), ends_[i] - begin_of(i));
  return path;
}

std::size_t PathList::bytes_held() const {
  return text_.capacity() + ends_.capacity() * sizeof(std::uint64_t) +
         shared_.capacity() * sizeof(std::uint32_t);
}

}  // namespace radguard::deid
