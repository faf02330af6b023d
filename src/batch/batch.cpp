#include "batch/batch.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <thread>

namespace radguard::batch {

namespace fs = std::filesystem;

FolderListing list_files(const fs::path& folder, FileLinks links) {
  FolderListing listing;
  std::vector<fs::path> pending{folder};
  while (!pending.empty()) {
    const fs::path current = std::move(pending.back());
    pending.pop_back();
    std::error_code list_ec;
    fs::directory_iterator it(current, list_ec);
    if (list_ec) {
      listing.unlisted.push_back({current, "cannot be listed: " + list_ec.message()});
      continue;
    }
    for (; it != fs::directory_iterator(); it.increment(list_ec)) {
      if (list_ec) break;
      // The entry's type as the listing gave it (d_type): no stat per file, where a folder of
      // millions is walked by every run and every plan. Only a link (to see what it points
      // at) or a file system that gives no type is stat'ed.
      std::error_code file_ec;
      const bool link = it->is_symlink(file_ec);
      if (link && links == FileLinks::skip) continue;
      if (!link && it->is_directory(file_ec)) {
        pending.push_back(it->path());  // a link to a folder is never followed
      } else if (it->is_regular_file(file_ec)) {
        listing.files.push_back(it->path().string());
      }
    }
    if (list_ec)
      listing.unlisted.push_back({current, "cannot be listed completely: " + list_ec.message()});
  }
  std::sort(listing.files.begin(), listing.files.end());
  return listing;
}

Status require_complete(const FolderListing& listing) {
  if (listing.unlisted.empty()) return {};
  const auto& first = listing.unlisted.front();
  return fail(ErrorCode::io, "cannot list " + first.path.string() + ": " + first.reason);
}

Result<std::vector<fs::path>> read_file_list(const fs::path& list) {
  std::ifstream in(list, std::ios::binary);
  if (!in) return fail(ErrorCode::io, "cannot read the list of files " + list.string());
  std::vector<fs::path> files;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line.find('\0') != std::string::npos)
      return fail(ErrorCode::usage, list.string() + ": a line holds a NUL byte: not a list of files");
    files.emplace_back(line);
  }
  if (in.bad()) return fail(ErrorCode::io, "cannot read the list of files " + list.string());
  if (files.empty()) return fail(ErrorCode::usage, list.string() + " names no file");
  return files;
}

namespace {

// Canonical paths of files named one by one (a --files-from list of thousands), with the
// folder resolved once per run of files in the same folder rather than once per file:
// resolving a path reads every component's link (a readlink each), which made a list of
// 3,000 absolute paths cost more than walking the folder that holds them. A file that is
// itself a link is resolved whole, as before (its target may lie anywhere).
class FileCanonicaliser {
 public:
  std::string operator()(const fs::path& file, const fs::file_status& own_status) {
    std::error_code ec;
    if (fs::is_symlink(own_status) || !file.has_filename())
      return fs::weakly_canonical(file, ec).string();
    const fs::path parent = file.parent_path();
    if (!resolved_ || parent != parent_) {
      auto canonical = fs::weakly_canonical(parent.empty() ? fs::path(".") : parent, ec);
      // A folder that cannot be resolved is not remembered: the file is resolved whole, as
      // before (never a bare name, which would be looked up in the current folder).
      if (ec) return fs::weakly_canonical(file, ec).string();
      parent_ = parent;
      canonical_parent_ = std::move(canonical);
      resolved_ = true;
    }
    return (canonical_parent_ / file.filename()).string();
  }

 private:
  bool resolved_ = false;
  fs::path parent_, canonical_parent_;
};

}  // namespace

InputSet find_files(std::span<const fs::path> inputs) {
  InputSet set;
  FileCanonicaliser canonical_file;
  for (const auto& input : inputs) {
    std::error_code ec;
    // The entry itself first: one stat for a plain file, a second only for a link.
    const auto own_status = fs::symlink_status(input, ec);
    const auto status = !ec && fs::is_symlink(own_status) ? fs::status(input, ec) : own_status;
    if (ec || !fs::exists(status)) {
      set.missing.push_back({input, "does not exist"});
      continue;
    }
    if (fs::is_regular_file(status)) {
      set.files.push_back(canonical_file(input, own_status));
      continue;
    }
    if (!fs::is_directory(status)) {
      set.missing.push_back({input, "is neither a file nor a folder"});
      continue;
    }
    // Canonicalise the folder once: paths found under it are then canonical too (folder
    // links are not followed), without a round of lstat calls per file. A folder that
    // cannot be listed (permissions) is reported, never skipped in silence.
    auto listing = list_files(fs::weakly_canonical(input, ec));
    set.files.insert(set.files.end(), std::make_move_iterator(listing.files.begin()),
                     std::make_move_iterator(listing.files.end()));
    set.missing.insert(set.missing.end(), listing.unlisted.begin(), listing.unlisted.end());
  }
  // Sorted and each once, as a std::set would give them, without holding every path twice
  // (a tree node per path, then the list copied from it) at the largest moment of a run.
  std::sort(set.files.begin(), set.files.end());
  set.files.erase(std::unique(set.files.begin(), set.files.end()), set.files.end());
  set.files.shrink_to_fit();
  return set;
}

InputRoots::InputRoots(std::span<const fs::path> inputs) {
  for (const auto& input : inputs) {
    std::string root = input.string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/")
      slash_root_ = true;
    else if (!root.empty())
      roots_.insert(std::move(root));
  }
}

std::size_t InputRoots::longest_root_of(std::string_view path) const {
  // Ancestors from the longest down; a root must leave at least one character after its '/'.
  for (auto slash = path.rfind('/'); slash != std::string_view::npos && slash > 0;
       slash = path.rfind('/', slash - 1)) {
    if (slash + 1 < path.size() && roots_.contains(path.substr(0, slash))) return slash;
  }
  return slash_root_ && path.size() > 1 && path.front() == '/' ? 1 : 0;
}

std::string InputRoots::relative(std::string_view file) const {
  if (roots_.contains(file) || (slash_root_ && file == "/"))
    return fs::path(file).filename().string();
  const std::size_t root = longest_root_of(file);
  if (root == 0) return std::string(file);
  return std::string(file.substr(root + (file[root] == '/' ? 1 : 0)));
}

bool InputRoots::covers(std::string_view path) const {
  return roots_.contains(path) || (slash_root_ && path == "/") || longest_root_of(path) > 0;
}

Status require_outside_inputs(const fs::path& output, std::span<const fs::path> inputs) {
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(output, ec);
  for (const auto& input : inputs) {
    // Only folders can hold the output: a file input (thousands, from a list) is not resolved.
    if (!fs::is_directory(input, ec)) continue;
    const fs::path in = fs::weakly_canonical(input, ec);
    const auto rel = out.lexically_relative(in);
    if (!rel.empty() && *rel.begin() != "..")
      return fail(ErrorCode::usage, "the output folder " + output.string() +
                                        " lies inside the input " + input.string());
  }
  return {};
}

Progress::Progress(std::string label, std::size_t total, ProgressDisplay display, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(display == ProgressDisplay::automatic && ::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(std::uint64_t bytes) {
  done_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (!enabled_) return;
  std::lock_guard lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  const std::size_t done = done_.load();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int width = 30;
  const int filled = total_ == 0 ? width : static_cast<int>(width * done / total_);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(width, '.');
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const double mb = static_cast<double>(bytes_.load()) / 1e6;
  if (unit_ == "files")
    std::fprintf(stderr, "\r%s [%s] %zu/%zu files, %.0f files/s, %.1f MB%s", label_.c_str(),
                 bar.c_str(), done, total_, rate, mb, final ? "\n" : "");
  else
    std::fprintf(stderr, "\r%s [%s] %zu/%zu %s, %.0f s%s", label_.c_str(), bar.c_str(), done,
                 total_, unit_.c_str(), seconds, final ? "\n" : "");
  std::fflush(stderr);
}

void run_parallel(std::size_t count, unsigned threads, const std::function<void(std::size_t)>& work,
                  const std::function<void(std::size_t, const std::string&)>& on_error,
                  const CancelToken* cancel) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (;;) {
      if (cancel != nullptr && cancel->cancelled()) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        work(i);
      } catch (const std::exception& e) {
        on_error(i, e.what());
      } catch (...) {
        on_error(i, "unknown exception");
      }
    }
  };
  const unsigned n = std::max(
      1U, std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(count, 1))));
  std::vector<std::jthread> pool;
  pool.reserve(n - 1);
  for (unsigned t = 1; t < n; ++t) pool.emplace_back(worker);
  worker();
}

unsigned default_threads(unsigned requested) {
  if (requested > 0) return requested;
  return std::max(1U, std::thread::hardware_concurrency());
}

}  // namespace radguard::batch
