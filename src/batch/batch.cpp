#include "batch/batch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>
#include <unordered_map>

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
  // The list is an argument: one that cannot be read is the command's usage, named with why.
  const auto unreadable = [&](const std::string& why) {
    return fail(ErrorCode::usage, "cannot read the list of files " + list.string() + ": " + why);
  };
  std::error_code ec;
  if (fs::is_directory(list, ec)) return unreadable("it is a folder");
  std::ifstream in(list, std::ios::binary);
  if (!in) return unreadable(std::strerror(errno));
  std::vector<fs::path> files;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A line of spaces or tabs names nothing (no DICOM file is named so); it was taken for
    // a path and reported missing.
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.find('\0') != std::string::npos)
      return fail(ErrorCode::usage,
                  list.string() + ": a line holds a NUL byte: not a list of files");
    files.emplace_back(line);
  }
  // iostreams do not promise errno after a failed read: no reason is better than a stale one.
  if (in.bad()) return unreadable("a read error");
  if (files.empty())
    return fail(ErrorCode::usage,
                list.string() + " names no file (a run needs an input, as on the command line)");
  return files;
}

namespace {

// A listed entry's name, when it is one the listing of its folder can answer for: not empty
// (a trailing '/'), not "." or "..", which name folders relative to the path.
bool names_an_entry(const fs::path& path) {
  const fs::path name = path.filename();
  return !name.empty() && name != "." && name != "..";
}

// Canonical folders of files named one by one (a --files-from list of thousands). Resolving a
// path whole reads every component (an lstat each, a readlink per link), once per folder of
// the list; here a folder is its parent's canonical form (remembered) plus its own name, after
// one lstat shows that name is a folder and not a link. Anything else (a link, "..", a folder
// that cannot be resolved) is resolved whole, as std::filesystem::weakly_canonical does.
class FolderCanonicaliser {
 public:
  fs::path operator()(const fs::path& folder) {
    // Bounded: forgetting costs at most the lstats of one path's components again.
    if (known_.size() >= kMostRemembered) known_.clear();
    const fs::path start = folder.empty() ? fs::path(".") : folder;
    // Up to the nearest folder already known (or one that must be resolved whole)...
    std::vector<fs::path> unresolved;
    fs::path at = start;
    while (!known_.contains(at.native()) && names_an_entry(at) && at.has_parent_path() &&
           at.parent_path() != at) {
      unresolved.push_back(at);
      at = at.parent_path();
    }
    if (!known_.contains(at.native())) remember(at, whole(at));
    // ...then down again, one name at a time.
    for (auto it = unresolved.rbegin(); it != unresolved.rend(); ++it) {
      const fs::path parent = known_.at(it->parent_path().native());
      std::error_code ec;
      const bool plain_folder = !parent.empty() && fs::is_directory(fs::symlink_status(*it, ec));
      remember(*it, plain_folder && !ec ? parent / it->filename() : whole(*it));
    }
    return known_.at(start.native());
  }

 private:
  static fs::path whole(const fs::path& folder) {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(folder, ec);
    return ec ? fs::path() : canonical;  // empty: the file is then resolved whole
  }
  void remember(const fs::path& folder, fs::path canonical) {
    known_.insert_or_assign(folder.native(), std::move(canonical));
  }

  static constexpr std::size_t kMostRemembered = 4096;
  std::unordered_map<std::string, fs::path> known_;
};

// Canonical paths of files named one by one: the folder from FolderCanonicaliser, the name as
// given. A file that is itself a link is resolved whole (its target may lie anywhere).
class FileCanonicaliser {
 public:
  std::string operator()(const fs::path& file, const fs::file_status& own_status) {
    std::error_code ec;
    if (fs::is_symlink(own_status) || !names_an_entry(file))
      return fs::weakly_canonical(file, ec).string();
    const fs::path parent = folders_(file.parent_path());
    if (parent.empty()) return fs::weakly_canonical(file, ec).string();
    return (parent / file.filename()).string();
  }

 private:
  FolderCanonicaliser folders_;
};

// What each file a list names is (file, folder, link), read from its folder's listing where
// the list names a run of several files of one folder (a shard's list is sorted): a listing
// (open, a few getdents, close) instead of an lstat per file, which was a list run's largest
// cost over a folder run's. Only the run's names are kept, and the listing stops once they are
// all found or after a bound in the run's length, so a shard naming a few files of a folder of
// millions never reads it whole. A name the listing did not show (not reached, created since,
// or spelt otherwise on a case-insensitive file system), a type the file system does not give
// (DT_UNKNOWN) and a folder that cannot be listed or searched are left to the caller's lstat.
class ListedTypes {
 public:
  explicit ListedTypes(std::span<const fs::path> inputs) : inputs_(inputs) {}

  std::optional<fs::file_type> type_of(std::size_t index) {
    if (index >= run_end_) start_run(index);
    const auto found = types_.find(inputs_[index].filename().native());
    if (found == types_.end() || found->second == fs::file_type::unknown) return std::nullopt;
    return found->second;
  }

 private:
  static std::optional<fs::path> folder_of(const fs::path& input) {
    if (!names_an_entry(input)) return std::nullopt;
    return input.has_parent_path() ? input.parent_path() : fs::path(".");
  }

  void start_run(std::size_t first) {
    types_.clear();
    const auto folder = folder_of(inputs_[first]);
    run_end_ = first + 1;
    while (folder && run_end_ < inputs_.size() && folder_of(inputs_[run_end_]) == folder)
      ++run_end_;
    if (run_end_ - first < kFewestNamed) return;
    for (std::size_t i = first; i < run_end_; ++i)
      types_.emplace(inputs_[i].filename().native(), fs::file_type::none);
    list(*folder, kEntriesPerNamed * (run_end_ - first) + kEntriesAnyway);
    std::erase_if(types_, [](const auto& named) { return named.second == fs::file_type::none; });
  }

  // Types the run's names as the listing shows them, reading at most `most` entries.
  void list(const fs::path& folder, std::size_t most) {
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(folder.c_str()), &::closedir);
    // A folder that can be read but not searched lists names that an lstat cannot reach.
    if (!dir || ::faccessat(::dirfd(dir.get()), ".", X_OK, AT_EACCESS) != 0) return;
    std::size_t wanted = types_.size();
    for (std::size_t read = 0; wanted > 0 && read < most; ++read) {
      errno = 0;
      const dirent* entry = ::readdir(dir.get());
      if (entry == nullptr) break;  // the end, or an error: names not seen go to lstat
      const auto named = types_.find(entry->d_name);
      if (named == types_.end() || named->second != fs::file_type::none) continue;
      named->second = type_of_entry(entry->d_type);
      --wanted;
    }
  }

  static fs::file_type type_of_entry(unsigned char d_type) {
    switch (d_type) {
      case DT_REG:
        return fs::file_type::regular;
      case DT_DIR:
        return fs::file_type::directory;
      case DT_LNK:
        return fs::file_type::symlink;
      case DT_FIFO:
        return fs::file_type::fifo;
      case DT_CHR:
        return fs::file_type::character;
      case DT_BLK:
        return fs::file_type::block;
      case DT_SOCK:
        return fs::file_type::socket;
      default:
        return fs::file_type::unknown;
    }
  }

  static constexpr std::size_t kFewestNamed = 4;  // below this, lstats cost less than a listing
  static constexpr std::size_t kEntriesPerNamed = 8;
  static constexpr std::size_t kEntriesAnyway = 64;
  std::span<const fs::path> inputs_;
  std::size_t run_end_ = 0;  // inputs before this belong to runs already answered
  std::unordered_map<std::string, fs::file_type> types_;  // the run's names (none: not seen)
};

}  // namespace

InputSet find_files(std::span<const fs::path> inputs) {
  InputSet set;
  FileCanonicaliser canonical_file;
  ListedTypes listed(inputs);
  for (std::size_t index = 0; index < inputs.size(); ++index) {
    const fs::path& input = inputs[index];
    std::error_code ec;
    // The entry itself first: from its folder's listing or one lstat, a stat only for a link.
    const auto listed_type = listed.type_of(index);
    const auto own_status =
        listed_type ? fs::file_status(*listed_type) : fs::symlink_status(input, ec);
    const auto status = !ec && fs::is_symlink(own_status) ? fs::status(input, ec) : own_status;
    if (ec || !fs::exists(status)) {
      set.missing.push_back({input, "does not exist"});
      continue;
    }
    if (fs::is_regular_file(status)) {
      set.files.push_back(canonical_file(input, own_status));
      // A plan's shard list names canonical paths already: nothing more to hold per file.
      if (set.files.back() != input.native()) set.canonical_inputs.push_back(set.files.back());
      continue;
    }
    if (!fs::is_directory(status)) {
      set.missing.push_back({input, "is neither a file nor a folder"});
      continue;
    }
    // Canonicalise the folder once: paths found under it are then canonical too (folder
    // links are not followed), without a round of lstat calls per file. A folder that
    // cannot be listed (permissions) is reported, never skipped in silence.
    fs::path folder = fs::weakly_canonical(input, ec);
    set.folders.push_back({input, folder.string()});
    if (folder != input) set.canonical_inputs.push_back(folder.string());
    auto listing = list_files(folder);
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

InputRoots::InputRoots(std::span<const fs::path> inputs,
                       std::span<const std::string> canonical_inputs) {
  const auto add = [this](std::string root) {
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/")
      slash_root_ = true;
    else if (!root.empty())
      roots_.insert(std::move(root));
  };
  for (const auto& input : inputs) add(input.string());
  for (const auto& input : canonical_inputs) add(input);
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
  // A folder it lies under first: a shard's run names each file as an input, and its plan's
  // folders (DeidRunOptions::report_roots) tell apart files of one name in two folders.
  const std::size_t root = longest_root_of(file);
  if (root != 0) return std::string(file.substr(root + (file[root] == '/' ? 1 : 0)));
  if (roots_.contains(file) || (slash_root_ && file == "/"))
    return fs::path(file).filename().string();
  return std::string(file);
}

bool InputRoots::covers(std::string_view path) const {
  return roots_.contains(path) || (slash_root_ && path == "/") || longest_root_of(path) > 0;
}

Status require_outside_folders(const fs::path& output, std::span<const FolderInput> folders) {
  std::error_code ec;
  const fs::path out = fs::weakly_canonical(output, ec);
  for (const auto& folder : folders) {
    const auto rel = out.lexically_relative(folder.canonical);
    if (!rel.empty() && *rel.begin() != "..")
      return fail(ErrorCode::usage, "the output folder " + output.string() +
                                        " lies inside the input " + folder.named.string());
  }
  return {};
}

Status require_outside_inputs(const fs::path& output, std::span<const fs::path> inputs) {
  std::vector<FolderInput> folders;
  for (const auto& input : inputs) {
    // Only folders can hold the output: a file input (thousands, from a list) is not resolved.
    std::error_code ec;
    if (fs::is_directory(input, ec))
      folders.push_back({input, fs::weakly_canonical(input, ec).string()});
  }
  return require_outside_folders(output, folders);
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
