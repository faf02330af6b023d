// ProblemLog: a run's outcomes of inputs not written, held in memory up to a bound and spilled
// to an unnamed temporary file beyond it (deid_run.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "deid/deid_run.hpp"

namespace radguard::deid {

namespace fs = std::filesystem;

namespace {

// Encoded outcomes are written to the file once this much is pending, and read back in
// blocks of this size: memory for the spill is this, whatever the number of outcomes.
constexpr std::size_t kBlock = 64 * 1024;

void put_u64(std::string& out, std::uint64_t value) {
  std::array<char, 8> bytes{};
  std::memcpy(bytes.data(), &value, sizeof value);
  out.append(bytes.data(), bytes.size());
}
void put_text(std::string& out, std::string_view text) {
  put_u64(out, text.size());
  out.append(text);
}

void encode(std::string& out, const FileOutcome& o) {
  put_text(out, o.input.native());
  put_u64(out, static_cast<std::uint64_t>(o.status));
  put_u64(out, o.error ? static_cast<std::uint64_t>(*o.error) + 1 : 0);
  put_text(out, o.reason);
  put_text(out, o.output.native());
  put_u64(out, o.bytes);
  put_u64(out, o.identifying_components.size());
  for (const auto& component : o.identifying_components) put_text(out, component);
  put_text(out, o.other_input.native());
  const PixelWork& p = o.pixels;
  for (const std::uint64_t value :
       {std::uint64_t{p.frames}, std::uint64_t{p.read_for_text}, std::uint64_t{p.frames_redacted},
        std::uint64_t{p.text_boxes}, std::uint64_t{p.defaced}, std::uint64_t{p.frames_defaced}})
    put_u64(out, value);
  put_text(out, p.refused_by);
}

// Reads the file back from its start, in blocks, decoding one outcome at a time.
class Reader {
 public:
  // `size`: the bytes written; no record's length or count can exceed it (fail closed on
  // misaligned or damaged data rather than allocate what it claims).
  Reader(int fd, std::uint64_t size) : fd_(fd), size_(size) {}

  [[nodiscard]] Result<FileOutcome> next() {
    FileOutcome o;
    std::string text;
    std::uint64_t value = 0;
    if (!text_of(text)) return broken();
    o.input = std::move(text);
    if (!u64(value)) return broken();
    o.status = static_cast<FileStatus>(value);
    if (!u64(value)) return broken();
    if (value != 0) o.error = static_cast<ErrorCode>(value - 1);
    if (!text_of(o.reason) || !text_of(text)) return broken();
    o.output = std::move(text);
    if (!u64(o.bytes) || !u64(value) || value > size_ / sizeof value) return broken();
    o.identifying_components.resize(value);
    for (auto& component : o.identifying_components)
      if (!text_of(component)) return broken();
    if (!text_of(text)) return broken();
    o.other_input = std::move(text);
    std::array<std::uint64_t, 6> counts{};
    for (auto& count : counts)
      if (!u64(count)) return broken();
    PixelWork& p = o.pixels;
    p.frames = static_cast<std::uint32_t>(counts[0]);
    p.read_for_text = counts[1] != 0;
    p.frames_redacted = static_cast<std::uint32_t>(counts[2]);
    p.text_boxes = static_cast<std::uint32_t>(counts[3]);
    p.defaced = counts[4] != 0;
    p.frames_defaced = static_cast<std::uint32_t>(counts[5]);
    if (!text_of(p.refused_by)) return broken();
    return o;
  }

 private:
  static std::unexpected<Error> broken() {
    return fail(ErrorCode::io, "the run's outcomes could not be read back from its temporary file");
  }
  bool bytes(char* out, std::size_t size) {
    while (size > 0) {
      if (at_ == block_.size()) {
        block_.resize(kBlock);
        ssize_t got;
        do {
          got = ::pread(fd_, block_.data(), block_.size(), static_cast<off_t>(offset_));
        } while (got < 0 && errno == EINTR);
        if (got <= 0) return false;
        block_.resize(static_cast<std::size_t>(got));
        offset_ += static_cast<std::uint64_t>(got);
        at_ = 0;
      }
      const std::size_t take = std::min(size, block_.size() - at_);
      std::memcpy(out, block_.data() + at_, take);
      at_ += take;
      out += take;
      size -= take;
    }
    return true;
  }
  bool u64(std::uint64_t& value) { return bytes(reinterpret_cast<char*>(&value), sizeof value); }
  bool text_of(std::string& text) {
    std::uint64_t size = 0;
    if (!u64(size) || size > size_) return false;
    text.resize(size);
    return bytes(text.data(), size);
  }

  int fd_;
  std::uint64_t size_;
  std::string block_;
  std::size_t at_ = 0;
  std::uint64_t offset_ = 0;
};

// The spill's private folder: $TMPDIR, else /tmp. Never the run's output folder: that is a
// release's staging folder or removable media, and the outcomes' paths may name patients.
fs::path spill_folder() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? fs::path(tmpdir) : fs::path("/tmp");
}

// An unnamed file in the private folder (O_TMPFILE); where the file system has none, a named
// one removed at once (a failed removal fails: it would outlive the process).
Result<int> open_spill() {
  const fs::path where = spill_folder();
  int fd = ::open(where.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string name = (where / ".radguard-tmp-XXXXXX").string();
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0)
    return fail(ErrorCode::io, "cannot make a temporary file for the run's outcomes in " +
                                   where.string() + ": " + std::strerror(errno));
  if (::unlink(name.c_str()) != 0) {
    const int error = errno;
    ::close(fd);
    return fail(ErrorCode::io, "cannot remove the run's temporary file in " + where.string() +
                                   ": " + std::strerror(error));
  }
  return fd;
}

}  // namespace

ProblemLog::ProblemLog(std::size_t held) : limit_(held) {}

ProblemLog::ProblemLog(ProblemLog&& other) noexcept
    : held_(std::move(other.held_)),
      limit_(other.limit_),
      fd_(std::exchange(other.fd_, -1)),
      spilled_(std::exchange(other.spilled_, 0)),
      burned_in_(std::exchange(other.burned_in_, 0)),
      pending_(std::move(other.pending_)),
      written_(std::exchange(other.written_, 0)),
      broken_(std::move(other.broken_)) {}

ProblemLog& ProblemLog::operator=(ProblemLog&& other) noexcept {
  if (this == &other) return *this;
  if (fd_ >= 0) ::close(fd_);
  held_ = std::move(other.held_);
  limit_ = other.limit_;
  fd_ = std::exchange(other.fd_, -1);
  spilled_ = std::exchange(other.spilled_, 0);
  burned_in_ = std::exchange(other.burned_in_, 0);
  pending_ = std::move(other.pending_);
  written_ = std::exchange(other.written_, 0);
  broken_ = std::move(other.broken_);
  return *this;
}

ProblemLog::~ProblemLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status ProblemLog::add(FileOutcome outcome) {
  if (broken_) return std::unexpected(*broken_);
  if (outcome.status == FileStatus::failed && outcome.error == ErrorCode::policy &&
      outcome.reason.starts_with(kBurnedInRefusal))
    ++burned_in_;
  if (held_.size() < limit_ && spilled_ == 0) {
    held_.push_back(std::move(outcome));
    return {};
  }
  if (fd_ < 0) {
    auto fd = open_spill();
    if (!fd) {
      broken_ = fd.error();
      return std::unexpected(fd.error());
    }
    fd_ = *fd;
  }
  encode(pending_, outcome);
  ++spilled_;
  return pending_.size() >= kBlock ? flush() : Status{};
}

// After any I/O error the log is broken for good: what reached the file is trimmed from
// pending_, but the file may hold part of a record, so nothing later could be read back right.
Status ProblemLog::flush() const {
  if (broken_) return std::unexpected(*broken_);
  std::size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t wrote = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      const int error = wrote < 0 ? errno : EIO;
      pending_.erase(0, done);
      written_ += done;
      broken_ = Error{ErrorCode::io, std::string("cannot write the run's outcomes to its "
                                                 "temporary file: ") + std::strerror(error)};
      return std::unexpected(*broken_);
    }
    done += static_cast<std::size_t>(wrote);
  }
  written_ += done;
  pending_.clear();
  return {};
}

Status ProblemLog::finish() { return flush(); }

// A broken log fails before visiting anything: some outcome never reached it, so no reader
// may take what it holds for every problem of the run.
Status ProblemLog::for_each(const std::function<void(const FileOutcome&)>& visit) const {
  if (broken_) return std::unexpected(*broken_);
  for (const auto& outcome : held_) visit(outcome);
  if (spilled_ == 0) return {};
  if (auto flushed = flush(); !flushed) return flushed;
  Reader reader(fd_, written_);
  for (std::size_t i = 0; i < spilled_; ++i) {
    auto outcome = reader.next();
    if (!outcome) return std::unexpected(outcome.error());
    visit(*outcome);
  }
  return {};
}

Result<std::vector<FileOutcome>> ProblemLog::all() const {
  std::vector<FileOutcome> outcomes;
  outcomes.reserve(size());
  auto read = for_each([&](const FileOutcome& o) { outcomes.push_back(o); });
  if (!read) return std::unexpected(read.error());
  return outcomes;
}

}  // namespace radguard::deid
