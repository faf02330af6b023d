#include "dicom/structure_check.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "dicom/dcmtk_encoding.hpp"

namespace radguard::dicom {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kUndefined = 0xFFFFFFFFULL;
constexpr std::uint64_t kNoEnd = ~0ULL;

// Bytes from somewhere, read through a buffer, with peeking and skipping.
class Source {
 public:
  virtual ~Source() = default;
  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // The next n bytes without consuming them; nullptr when fewer remain.
  const std::uint8_t* peek(std::size_t n) {
    while (end_ - begin_ < n) {
      if (begin_ > 0) {
        std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (capacity_ < std::max(n, kChunk)) grow(std::max(n, kChunk));
      const std::size_t got = produce(buffer_.get() + end_, capacity_ - end_);
      if (got == 0) return nullptr;
      end_ += got;
    }
    return buffer_.get() + begin_;
  }
  bool read(std::uint8_t* out, std::size_t n) {
    const std::uint8_t* p = peek(n);
    if (p == nullptr) return false;
    std::memcpy(out, p, n);
    begin_ += n;
    position_ += n;
    return true;
  }
  bool skip(std::uint64_t n) {
    const std::uint64_t buffered = end_ - begin_;
    if (n <= buffered) {
      begin_ += static_cast<std::size_t>(n);
      position_ += n;
      return true;
    }
    begin_ = end_ = 0;
    position_ += buffered;
    n -= buffered;
    if (!discard(n)) return false;
    position_ += n;
    return true;
  }
  // Up to `max` bytes, buffered ones first; 0 at the end.
  std::size_t read_some(std::uint8_t* out, std::size_t max) {
    if (end_ == begin_) {
      if (peek(1) == nullptr) return 0;
    }
    const std::size_t n = std::min(max, end_ - begin_);
    std::memcpy(out, buffer_.get() + begin_, n);
    begin_ += n;
    position_ += n;
    return n;
  }
  std::uint64_t position() const { return position_; }

 protected:
  static constexpr std::size_t kChunk = 64 * 1024;
  // Fills out with up to cap bytes; 0 at the end (or on an error the source records).
  virtual std::size_t produce(std::uint8_t* out, std::size_t cap) = 0;
  // Drops n bytes not yet buffered; false when fewer remain.
  virtual bool discard(std::uint64_t n) {
    // Only an inflated source skips this way (the others seek), a step at a time; not
    // zeroed, since only what produce() wrote is read.
    std::array<std::uint8_t, 4 * 1024> scratch;
    while (n > 0) {
      const std::size_t got = produce(
          scratch.data(), static_cast<std::size_t>(std::min<std::uint64_t>(n, scratch.size())));
      if (got == 0) return false;
      n -= got;
    }
    return true;
  }

 private:
  // Grows to `size`, keeping the bytes buffered; the rest is left unzeroed (it is written by
  // produce() before it is read).
  void grow(std::size_t size) {
    auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(size);
    if (end_ > 0) std::memcpy(bigger.get(), buffer_.get(), end_);
    buffer_ = std::move(bigger);
    capacity_ = size;
  }

  std::unique_ptr<std::uint8_t[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0, end_ = 0;
  std::uint64_t position_ = 0;
};

class FileSource final : public Source {
 public:
  FileSource(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  bool failed() const { return failed_; }

 protected:
  std::size_t produce(std::uint8_t* out, std::size_t cap) override {
    for (;;) {
      const ssize_t n = ::read(fd_, out, cap);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        failed_ = true;
        return 0;
      }
      offset_ += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }
  bool discard(std::uint64_t n) override {
    if (offset_ + n > size_) return false;
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) {
      failed_ = true;
      return false;
    }
    offset_ += n;
    return true;
  }

 private:
  int fd_;
  std::uint64_t size_;
  std::uint64_t offset_ = 0;
  bool failed_ = false;
};

// Bytes already in memory (an instance received from the network or an upload).
class MemorySource final : public Source {
 public:
  explicit MemorySource(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  bool failed() const { return false; }

 protected:
  std::size_t produce(std::uint8_t* out, std::size_t cap) override {
    const std::size_t n = std::min(cap, bytes_.size() - offset_);
    if (n > 0) std::memcpy(out, bytes_.data() + offset_, n);
    offset_ += n;
    return n;
  }
  bool discard(std::uint64_t n) override {
    if (n > bytes_.size() - offset_) return false;
    offset_ += static_cast<std::size_t>(n);
    return true;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t offset_ = 0;
};

// The raw deflate stream of a deflated data set (transfer syntax 1.2.840.10008.1.2.1.99),
// inflated on the fly; stops (as at an end) once more than `cap` bytes came out.
class InflateSource final : public Source {
 public:
  InflateSource(Source& raw, std::uint64_t cap) : raw_(raw), cap_(cap) {
    stream_.zalloc = Z_NULL;
    stream_.zfree = Z_NULL;
    stream_.opaque = Z_NULL;
    ok_ = inflateInit2(&stream_, -MAX_WBITS) == Z_OK;
  }
  ~InflateSource() override {
    if (ok_) inflateEnd(&stream_);
  }
  bool over_cap() const { return over_cap_; }
  bool corrupt() const { return corrupt_; }
  std::uint64_t produced() const { return produced_; }

 protected:
  std::size_t produce(std::uint8_t* out, std::size_t cap) override {
    if (!ok_ || finished_ || over_cap_) return 0;
    // A step at a time: a walk that stops at a tag (the planner's) inflates at most a step
    // past it, where filling the whole buffer inflated 64 KB of pixel data per file.
    cap = std::min(cap, kStep);
    stream_.next_out = out;
    stream_.avail_out = static_cast<uInt>(cap);
    while (stream_.avail_out == cap) {
      if (stream_.avail_in == 0 && !input_ended_) {
        const std::size_t got = raw_.read_some(input_.data(), input_.size());
        input_ended_ = got == 0;
        stream_.next_in = input_.data();
        stream_.avail_in = static_cast<uInt>(got);
      }
      // Called even once the input has ended: the last symbols' bits may already be in
      // zlib's hands, their output still owed (zlib.h: "there might be more output pending").
      const int status = inflate(&stream_, Z_NO_FLUSH);
      if (status == Z_STREAM_END) {
        finished_ = true;
        break;
      }
      if (status == Z_BUF_ERROR && input_ended_) {
        finished_ = true;  // nothing more to give and no end marker: truncated
        break;
      }
      if (status != Z_OK && status != Z_BUF_ERROR) {
        corrupt_ = true;
        finished_ = true;
        break;
      }
    }
    const std::size_t n = cap - stream_.avail_out;
    produced_ += n;
    if (produced_ > cap_) over_cap_ = true;
    return n;
  }

 private:
  Source& raw_;
  std::uint64_t cap_;
  z_stream stream_{};
  static constexpr std::size_t kStep = 4 * 1024;
  std::array<std::uint8_t, 64 * 1024> input_;  // written by raw_.read_some before it is read
  bool ok_ = false, finished_ = false, over_cap_ = false, corrupt_ = false;
  bool input_ended_ = false;
  std::uint64_t produced_ = 0;
};

struct Encoding {
  bool explicit_vr = true;
  bool big_endian = false;
};

std::uint16_t u16(const std::uint8_t* p, bool big) {
  return big ? static_cast<std::uint16_t>((p[0] << 8) | p[1])
             : static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t u32(const std::uint8_t* p, bool big) {
  return big ? (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
                   (static_cast<std::uint32_t>(p[2]) << 8) | p[3]
             : p[0] | (static_cast<std::uint32_t>(p[1]) << 8) |
                   (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

bool is_upper(std::uint8_t c) { return c >= 'A' && c <= 'Z'; }

// VRs with a 2-byte reserved field and a 4-byte length in explicit VR, as DCMTK reads them:
// the standard's, and any other pair of upper-case letters (a future VR).
bool extended_length(const std::uint8_t* vr) {
  static constexpr std::string_view kShort[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL",
                                                "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS",
                                                "ST", "TM", "UI", "UL", "US"};
  const std::string_view name(reinterpret_cast<const char*>(vr), 2);
  if (!is_upper(vr[0]) || !is_upper(vr[1])) return false;  // DCMTK: an illegal VR, 2-byte length
  return std::find(std::begin(kShort), std::end(kShort), name) == std::end(kShort);
}

bool is_item_tag_le(const std::uint8_t* p) {
  return p[0] == 0xFE && p[1] == 0xFF && p[2] == 0x00 && p[3] == 0xE0;
}

struct Frame {
  enum class Kind : std::uint8_t { dataset, item, sequence, pixel_sequence };
  Kind kind;
  std::uint64_t end;  // kNoEnd: ends at a delimiter (or, for the data set, the end of data)
  Encoding encoding;
  bool speculative;  // a defined-length value read as a sequence because it looks like one
};

enum class Step : std::uint8_t { ok, done, lost };

class Scanner {
 public:
  Scanner(Source& in, const StructureLimits& limits, std::uint64_t max_elements,
          ValueCapture* capture)
      : in_(in), limits_(limits), max_elements_(max_elements), capture_(capture) {}

  // Ok(true) when the whole data set was followed, Ok(false) when the scanner got lost.
  Result<bool> run(Encoding encoding) {
    stack_.push_back({Frame::Kind::dataset, kNoEnd, encoding, false});
    for (;;) {
      auto step = next();
      if (!step) return std::unexpected(step.error());
      if (*step == Step::done) return true;
      if (*step == Step::lost) {
        // Inside a value that only looked like a sequence: skip it whole and go on.
        auto speculative = std::find_if(stack_.rbegin(), stack_.rend(),
                                        [](const Frame& f) { return f.speculative; });
        if (speculative == stack_.rend()) return false;
        const std::uint64_t end = speculative->end;
        stack_.erase(std::prev(speculative.base()), stack_.end());
        if (in_.position() > end || !in_.skip(end - in_.position())) return false;
        depth_ = static_cast<std::size_t>(std::count_if(
            stack_.begin(), stack_.end(), [](const Frame& f) {
              return f.kind == Frame::Kind::sequence || f.kind == Frame::Kind::pixel_sequence;
            }));
      }
    }
  }
  std::size_t max_depth() const { return max_depth_; }
  // The furthest byte any defined length read so far reaches.
  std::uint64_t furthest_declared_end() const { return furthest_end_; }
  std::size_t depth() const { return depth_; }
  std::uint64_t elements() const { return elements_; }
  bool stopped_early() const { return stopped_early_; }

 private:
  Status push(Frame frame) {
    stack_.push_back(frame);
    if (frame.kind == Frame::Kind::sequence || frame.kind == Frame::Kind::pixel_sequence) {
      ++depth_;
      max_depth_ = std::max(max_depth_, depth_);
      if (depth_ > limits_.max_sequence_depth)
        return fail(ErrorCode::malformed_dicom,
                    "refused: sequences nested more than " +
                        std::to_string(limits_.max_sequence_depth) +
                        " levels deep (radguard's limit; real objects nest a few levels)");
    }
    return {};
  }
  void pop() {
    const Frame::Kind kind = stack_.back().kind;
    if (kind == Frame::Kind::sequence || kind == Frame::Kind::pixel_sequence) --depth_;
    stack_.pop_back();
  }
  Status count_element() {
    if (++elements_ > max_elements_)
      return fail(ErrorCode::malformed_dicom,
                  "refused: more than " + std::to_string(max_elements_) +
                      " elements for a file of this size (radguard's limit)");
    return {};
  }

  Result<Step> next() {
    // Close every frame whose defined length ends here.
    while (stack_.size() > 1 && stack_.back().end != kNoEnd) {
      if (in_.position() > stack_.back().end) return Step::lost;
      if (in_.position() < stack_.back().end) break;
      pop();
    }
    Frame& frame = stack_.back();
    const bool big = frame.encoding.big_endian;
    std::uint8_t head[8];
    if (frame.kind == Frame::Kind::dataset && in_.peek(1) == nullptr) return Step::done;
    if (!in_.read(head, 4)) return Step::lost;
    const std::uint16_t group = u16(head, big);
    const std::uint16_t element = u16(head + 2, big);
    if (frame.kind == Frame::Kind::dataset && limits_.stop_at != 0 &&
        ((std::uint32_t{group} << 16) | element) >= limits_.stop_at) {
      stopped_early_ = true;
      return Step::done;
    }

    if (group == 0xFFFE) {
      if (!in_.read(head + 4, 4)) return Step::lost;
      const std::uint64_t length = u32(head + 4, big);
      const bool in_sequence =
          frame.kind == Frame::Kind::sequence || frame.kind == Frame::Kind::pixel_sequence;
      if (element == 0xE0DD && in_sequence && frame.end == kNoEnd) {
        pop();
        return Step::ok;
      }
      if (element == 0xE00D && frame.kind == Frame::Kind::item && frame.end == kNoEnd) {
        pop();
        return Step::ok;
      }
      if (element != 0xE000 || !in_sequence) return Step::lost;
      if (auto counted = count_element(); !counted) return std::unexpected(counted.error());
      if (length != kUndefined) declared(length);
      if (frame.kind == Frame::Kind::pixel_sequence) {
        if (length == kUndefined) return Step::lost;
        if (!fits(length) || !in_.skip(length)) return Step::lost;
        return Step::ok;
      }
      if (length != kUndefined && !fits(length)) return Step::lost;
      const Frame item{Frame::Kind::item, length == kUndefined ? kNoEnd : in_.position() + length,
                       frame.encoding, false};
      if (auto pushed = push(item); !pushed) return std::unexpected(pushed.error());
      return Step::ok;
    }
    if (frame.kind == Frame::Kind::sequence || frame.kind == Frame::Kind::pixel_sequence)
      return Step::lost;  // only items and the delimiter belong in a sequence

    std::uint8_t vr[2] = {'U', 'N'};
    std::uint64_t length = 0;
    bool explicit_vr = frame.encoding.explicit_vr;
    if (explicit_vr) {
      if (!in_.read(vr, 2)) return Step::lost;
      if (extended_length(vr)) {
        if (!in_.read(head + 4, 2) || !in_.read(head + 4, 4)) return Step::lost;
        length = u32(head + 4, big);
      } else {
        if (!in_.read(head + 4, 2)) return Step::lost;
        length = u16(head + 4, big);
      }
    } else {
      if (!in_.read(head + 4, 4)) return Step::lost;
      length = u32(head + 4, big);
    }
    if (auto counted = count_element(); !counted) return std::unexpected(counted.error());
    if (length != kUndefined) declared(length);
    if (capture_ != nullptr && stack_.size() == 1 &&
        captured((std::uint32_t{group} << 16) | element, explicit_vr ? vr : nullptr, length))
      return Step::ok;
    const bool un = !explicit_vr || (vr[0] == 'U' && vr[1] == 'N');
    const bool sq = explicit_vr && vr[0] == 'S' && vr[1] == 'Q';
    if (length == kUndefined) {
      if (group == 0x7FE0 && element == 0x0010) {
        auto pushed = push({Frame::Kind::pixel_sequence, kNoEnd, frame.encoding, false});
        if (!pushed) return std::unexpected(pushed.error());
        return Step::ok;
      }
      // SQ, or anything else of undefined length: read as a sequence (UN: in implicit VR
      // little endian, PS3.5 6.2.2).
      const Encoding inner = un && explicit_vr ? Encoding{false, false} : frame.encoding;
      auto pushed = push({Frame::Kind::sequence, kNoEnd, inner, false});
      if (!pushed) return std::unexpected(pushed.error());
      return Step::ok;
    }
    if (!fits(length)) return Step::lost;
    if (sq) {
      auto pushed = push({Frame::Kind::sequence, in_.position() + length, frame.encoding, false});
      if (!pushed) return std::unexpected(pushed.error());
      return Step::ok;
    }
    if (un && length >= 8) {
      // An implicit-VR or UN value that starts like an item may be a sequence DCMTK reads as
      // one (by the dictionary, or as a private sequence): follow it, and skip it whole if it
      // turns out not to be one.
      const std::uint8_t* p = in_.peek(4);
      const bool item_first = p != nullptr && (frame.encoding.big_endian && explicit_vr
                                                   ? (p[0] == 0xFF && p[1] == 0xFE &&
                                                      p[2] == 0xE0 && p[3] == 0x00)
                                                   : is_item_tag_le(p));
      if (item_first) {
        const Encoding inner = explicit_vr ? Encoding{false, false} : frame.encoding;
        auto pushed = push({Frame::Kind::sequence, in_.position() + length, inner, true});
        if (!pushed) return std::unexpected(pushed.error());
        return Step::ok;
      }
    }
    if (!in_.skip(length)) return Step::lost;
    return Step::ok;
  }

  // Reads a wanted top-level value (true: consumed); anything unusual about it leaves the
  // bytes to the walk and the capture to DCMTK.
  bool captured(std::uint32_t key, const std::uint8_t* vr, std::uint64_t length) {
    const auto wanted = std::find(capture_->keys.begin(), capture_->keys.end(), key);
    if (wanted == capture_->keys.end()) return false;
    auto& value = capture_->values[static_cast<std::size_t>(wanted - capture_->keys.begin())];
    const bool ui = vr == nullptr || (vr[0] == 'U' && vr[1] == 'I');
    const std::uint8_t* bytes = length <= ValueCapture::kMaxLength && fits(length)
                                    ? in_.peek(static_cast<std::size_t>(length))
                                    : nullptr;
    if (value || !ui || length == 0 || bytes == nullptr) {
      capture_->ambiguous = true;
      return false;
    }
    std::string text(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(length));
    if (text.back() == '\0') text.pop_back();  // UI's padding
    // Digits and dots only: what DCMTK returns unchanged, and never the start of an item
    // (so the walk past it is the one it would have been).
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) {
          return (c >= '0' && c <= '9') || c == '.';
        })) {
      capture_->ambiguous = true;
      return false;
    }
    value = std::move(text);
    return in_.skip(length);
  }

  void declared(std::uint64_t length) {
    furthest_end_ = std::max(furthest_end_, in_.position() + length);
  }

  bool fits(std::uint64_t length) const {
    for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
      if (it->end != kNoEnd) return in_.position() + length <= it->end;
    }
    return true;
  }

  Source& in_;
  const StructureLimits& limits_;
  std::uint64_t max_elements_;
  ValueCapture* capture_;
  std::vector<Frame> stack_;
  std::size_t depth_ = 0, max_depth_ = 0;
  bool stopped_early_ = false;
  std::uint64_t elements_ = 0;
  std::uint64_t furthest_end_ = 0;
};

// The encoding DCMTK reads a data set in: the declared one where DCMTK knows it (DCMTK then
// never looks at the bytes: a declared explicit VR data set whose first element has no VR is
// read as explicit VR all the same), else DCMTK's own guess from the first element.
Encoding detect(Source& in, Encoding declared, bool declared_known) {
  if (declared_known) return declared;
  const std::uint8_t* p = in.peek(6);
  if (p == nullptr) return declared;  // DCMTK: explicit VR little endian, as `declared`
  const DataSetEncoding guessed = dcmtk_guessed_encoding(std::span<const std::uint8_t>(p, 6));
  return {guessed.explicit_vr, guessed.big_endian};
}

// A data set sent in a known encoding (a DIMSE identifier) whose first element says otherwise:
// explicit VR declared, no VR letters after the first tag.
bool contradicts(Source& in, Encoding declared) {
  const std::uint8_t* p = in.peek(6);
  return p != nullptr && declared.explicit_vr && !(is_upper(p[4]) && is_upper(p[5]));
}

// detect(), where values are captured: the capture trusts only an encoding the file declared
// and its first element confirms. Elsewhere DCMTK guesses by rules of its own, and what plan
// reads must be what deid will read (review of the UID capture).
Encoding detect_for_capture(Source& in, Encoding declared, bool declared_known,
                            ValueCapture* capture) {
  const Encoding e = detect(in, declared, declared_known);
  if (capture != nullptr && (!declared_known || e.explicit_vr != declared.explicit_vr ||
                             e.big_endian != declared.big_endian))
    capture->ambiguous = true;
  return e;
}

struct Declared {
  bool known = false;  // false: DCMTK guesses the data set's encoding from its first bytes
  Encoding encoding;
  bool deflated = false;
};

Declared declared_by(const DeclaredEncoding& d) {
  return {d.known, {d.encoding.explicit_vr, d.encoding.big_endian}, d.encoding.deflated};
}

// How DCMTK reads the data set after a meta header whose transfer syntax value is `value`
// (its bytes as stored, `present` whether the element is there at all; `in` at the data set).
// DCMTK (3.6.7, checked with dcmdump) guesses where there is no value; otherwise it removes
// every white-space character, reads up to the first NUL and looks that up (an empty result
// is its "virtual big endian implicit" entry). A value that this cleaning changes beyond its
// trailing NULs is read only where the UID's encoding and DCMTK's guess agree, and never when
// the UID is the deflated one: that DCMTK behaviour is observed, not promised (nullopt:
// refuse).
std::optional<Declared> declared_syntax(bool present, std::string_view value, Source& in) {
  if (!present || value.empty()) return Declared{};
  std::string cleaned;
  for (const char c : value) {
    if (c == '\0') break;
    if (std::isspace(static_cast<unsigned char>(c)) == 0) cleaned += c;
  }
  std::string_view unpadded = value;
  while (!unpadded.empty() && unpadded.back() == '\0') unpadded.remove_suffix(1);
  const Declared declared = declared_by(dcmtk_declared_encoding(cleaned));
  if (cleaned == unpadded) return declared;
  if (!declared.known) return Declared{};
  if (declared.deflated) return std::nullopt;
  const Encoding guessed = detect(in, Encoding{}, false);
  if (guessed.explicit_vr != declared.encoding.explicit_vr ||
      guessed.big_endian != declared.encoding.big_endian)
    return std::nullopt;
  return declared;
}

}  // namespace

namespace {

// The pass over `file` (`file_size` bytes), from a file or from memory.
template <class Input>
Result<StructureFacts> check_source(Input& file, std::uint64_t file_size, FileLayout layout,
                                    const StructureLimits& limits, ValueCapture* capture) {
  const std::uint64_t max_elements =
      std::min(limits.max_elements,
               std::max(limits.min_elements, file_size / std::max<std::uint64_t>(
                                                             limits.bytes_per_element, 1)));
  StructureFacts facts;

  Encoding encoding;  // explicit VR little endian unless said otherwise
  bool known = false, deflated = false;
  const bool declared_raw = layout != FileLayout::part10 && layout != FileLayout::raw_dataset;
  if (declared_raw) {
    known = true;
    encoding = {layout != FileLayout::raw_implicit_little, layout == FileLayout::raw_explicit_big};
  }
  if (layout == FileLayout::part10) {
    if (!file.skip(132)) return facts;  // DCMTK reports the truncation
    // The meta header: group 0002, explicit VR little endian. It ends at the first element of
    // another group, whatever its group length says: initialise() tells DCMTK to do the same,
    // so both readers start the data set (and a deflated stream) at the same byte. Wherever the
    // two could still part (DCMTK reads on at bytes 00 02 too, keeps the first of two transfer
    // syntaxes, and judges a header it cannot follow in its own way), the file is refused.
    auto broken = [] {
      return fail(ErrorCode::malformed_dicom,
                  "cannot parse: the file meta information is broken or ambiguous");
    };
    std::string syntax;
    bool syntax_seen = false;
    // DCMTK reads the whole meta header in one encoding: its own guess from the first element
    // after "DICM" (DcmMetaInfo, asked with EXS_Unknown). A big endian one is refused.
    const std::uint8_t* first = file.peek(6);
    const DataSetEncoding meta = first != nullptr
                                     ? dcmtk_guessed_encoding(std::span<const std::uint8_t>(first, 6))
                                     : DataSetEncoding{};
    if (meta.big_endian) return broken();
    for (;;) {
      const std::uint8_t* g = file.peek(2);
      if (g == nullptr) break;  // nothing after the meta header
      if (u16(g, false) == 0x0200) return broken();  // DCMTK's nextTagIsMeta reads on
      if (u16(g, false) != 0x0002) break;
      const std::uint8_t* p = file.peek(8);
      if (p == nullptr) return broken();
      const std::uint16_t element = u16(p + 2, false);
      std::uint8_t head[12];
      std::uint64_t length = 0;
      if (meta.explicit_vr) {
        // DCMTK would read a sequence here (the check only skips meta values), and take no
        // transfer syntax from a value that is not a UI.
        if (p[4] == 'S' && p[5] == 'Q') return broken();
        if (element == 0x0010 && !(p[4] == 'U' && p[5] == 'I')) return broken();
        if (extended_length(p + 4)) {
          if (!file.read(head, 12)) return broken();
          length = u32(head + 8, false);
        } else {  // a short VR, or an illegal one (DCMTK: a 2-byte length)
          if (!file.read(head, 8)) return broken();
          length = u16(head + 6, false);
        }
      } else {
        if (!file.read(head, 8)) return broken();
        length = u32(head + 4, false);
      }
      if (length == kUndefined) return broken();
      if (element == 0x0010) {
        if (syntax_seen || length > 1024) return broken();
        syntax_seen = true;
        std::string value(static_cast<std::size_t>(length), '\0');
        if (!file.read(reinterpret_cast<std::uint8_t*>(value.data()), value.size()))
          return broken();
        syntax = std::move(value);
      } else if (!file.skip(length)) {
        return broken();
      }
    }
    const auto declared = declared_syntax(syntax_seen, syntax, file);
    if (!declared)
      return fail(ErrorCode::malformed_dicom,
                  "cannot parse: the transfer syntax is padded so that its data set could be "
                  "read two ways");
    known = declared->known;
    encoding = declared->encoding;
    deflated = declared->deflated;
  }

  auto depth_left_unchecked = [&](std::size_t depth, std::uint64_t bytes_left) {
    // Each level of nesting takes at least a sequence header and an item header (16 bytes).
    return depth + bytes_left / 16 > limits.max_sequence_depth;
  };

  if (deflated) {
    const std::uint64_t cap =
        std::min(limits.max_inflated,
                 std::max(limits.min_inflated, limits.max_inflate_ratio * file_size));
    InflateSource inflated(file, cap);
    auto over = [&] {
      return fail(ErrorCode::malformed_dicom,
                  "refused: the deflated data set inflates to more than " +
                      std::to_string(cap >> 20) + " MiB (radguard's limit for a file of " +
                      std::to_string(file_size) + " bytes; a deflate bomb?)");
    };
    Scanner scanner(inflated, limits, max_elements, capture);
    auto followed = scanner.run(detect_for_capture(inflated, encoding, known, capture));
    if (!followed) return std::unexpected(followed.error());
    facts.max_sequence_depth = scanner.max_depth();
    facts.elements = scanner.elements();
    if (scanner.stopped_early()) {
      // Every value before the stop was inflated and fits; the rest is never read.
      facts.stopped_at_limit = true;
      facts.inflated_bytes = inflated.produced();
      if (file.failed()) return fail(ErrorCode::io, "cannot be read: read error");
      return facts;
    }
    const std::uint64_t stopped_at = inflated.position();
    // Inflate the rest, if any, to learn the whole size (never held).
    while (!inflated.over_cap() && inflated.skip(1 << 20)) {
    }
    if (inflated.over_cap()) return over();
    // What does not inflate cleanly was not checked: DCMTK must not parse it either.
    if (inflated.corrupt())
      return fail(ErrorCode::malformed_dicom, "cannot parse: the deflated data set is corrupt");
    facts.inflated_bytes = inflated.produced();
    // DCMTK allocates a declared length before reading the value; in a deflated stream it
    // cannot compare it with the file's size, so a few bytes could make it ask for 4 GB.
    if (scanner.furthest_declared_end() > facts.inflated_bytes)
      return fail(ErrorCode::malformed_dicom,
                  "cannot parse: an element declares more bytes than the inflated data set "
                  "holds (truncated, or a hostile length)");
    facts.conclusive = *followed;
    if (!*followed && depth_left_unchecked(scanner.depth(), facts.inflated_bytes - stopped_at))
      return fail(ErrorCode::malformed_dicom,
                  "refused: the deflated data set cannot be followed far enough to rule out "
                  "sequences nested too deep");
    if (file.failed()) return fail(ErrorCode::io, "cannot be read: read error");
    return facts;
  }

  Scanner scanner(file, limits, max_elements, capture);
  const Encoding seen = detect_for_capture(file, encoding, known, capture);
  if (declared_raw && contradicts(file, encoding))
    return fail(ErrorCode::malformed_dicom,
                "cannot parse: the data set's first element is not in the encoding it was sent "
                "in");
  auto followed = scanner.run(seen);
  if (!followed) return std::unexpected(followed.error());
  if (file.failed()) return fail(ErrorCode::io, "cannot be read: read error");
  facts.max_sequence_depth = scanner.max_depth();
  facts.elements = scanner.elements();
  facts.conclusive = *followed;
  facts.stopped_at_limit = scanner.stopped_early();
  if (!*followed) {
    const std::uint64_t left = file_size > file.position() ? file_size - file.position() : 0;
    if (depth_left_unchecked(scanner.depth(), left))
      return fail(ErrorCode::malformed_dicom,
                  "refused: the data set's structure cannot be followed far enough to rule out "
                  "sequences nested too deep (near byte " +
                      std::to_string(file.position()) + ")");
  }
  return facts;
}

}  // namespace

Result<StructureFacts> check_structure(const fs::path& path, FileLayout layout,
                                       const StructureLimits& limits) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0)
    return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  return check_structure(fd.get(), static_cast<std::uint64_t>(st.st_size), layout, limits);
}

Result<StructureFacts> check_structure(int fd, std::uint64_t file_size, FileLayout layout,
                                       const StructureLimits& limits) {
  FileSource file(fd, file_size);
  return check_source(file, file_size, layout, limits, nullptr);
}

Result<StructureFacts> check_structure(std::span<const std::uint8_t> bytes, FileLayout layout,
                                       const StructureLimits& limits, ValueCapture* capture) {
  if (capture != nullptr) capture->values.assign(capture->keys.size(), std::nullopt);
  MemorySource source(bytes);
  return check_source(source, bytes.size(), layout, limits, capture);
}

}  // namespace radguard::dicom
