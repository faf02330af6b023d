// Writing a DicomFile's DCMTK object to disk with every write error seen: DCMTK's own file
// stream writes through stdio and ignores a failed flush at close, so on a full disk it could
// leave a short or empty file behind a "good" status. Here the bytes go through write(2)
// from one buffer, and the file is closed with every result checked; flushing it (fsync) is
// the publisher's (PendingFile), once.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <dcmtk/dcmdata/dcostrma.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcwcache.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"

#include "dicom/dicom_file_impl.hpp"

namespace radguard::dicom {

namespace {

const OFConditionConst kWriteFailed(OFM_dcmdata, 0x7F01, OF_error, "write failed");

class CheckedFileConsumer final : public DcmConsumer {
 public:
  explicit CheckedFileConsumer(const char* path)
      : fd_(::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) {
    if (fd_ < 0) error_ = errno;
    buffer_.reserve(kBuffer);
  }
  ~CheckedFileConsumer() override {
    if (fd_ >= 0) ::close(fd_);
  }
  CheckedFileConsumer(const CheckedFileConsumer&) = delete;
  CheckedFileConsumer& operator=(const CheckedFileConsumer&) = delete;

  OFBool good() const override { return error_ == 0; }
  OFCondition status() const override { return good() ? EC_Normal : OFCondition(kWriteFailed); }
  OFBool isFlushed() const override { return buffer_.empty(); }
  offile_off_t avail() const override { return good() ? OFstatic_cast(offile_off_t, kBuffer) : 0; }
  offile_off_t write(const void* buf, offile_off_t buflen) override {
    if (!good() || buf == nullptr || buflen <= 0) return 0;
    const auto* bytes = static_cast<const char*>(buf);
    buffer_.insert(buffer_.end(), bytes, bytes + buflen);
    if (buffer_.size() >= kBuffer) drain();
    return good() ? buflen : 0;
  }
  void flush() override { drain(); }

  // Writes what is buffered and closes; the errno of the first failure, 0 on success.
  int finish() {
    drain();
    if (fd_ >= 0) {
      if (::close(fd_) != 0 && error_ == 0) error_ = errno;
      fd_ = -1;
    }
    return error_;
  }
  int error() const { return error_; }

  // Appends `length` bytes of `source` from `offset` after what is buffered: the kernel
  // copies them (copy_file_range; a plain read/write loop where the file systems refuse).
  // A source that ends early is an error (EIO, and input_ended()): the output would be short.
  void append_from(int source, off_t offset, std::uint64_t length) {
    drain();
    bool kernel_copy = true;
    std::vector<char> chunk;
    while (error_ == 0 && length > 0) {
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(length, 1u << 30));
      ssize_t n = -1;
      if (kernel_copy) {
        n = ::copy_file_range(source, &offset, fd_, nullptr, want, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                      errno == EOPNOTSUPP)) {
          kernel_copy = false;
          continue;
        }
      } else {
        chunk.resize(std::min<std::size_t>(want, kBuffer));
        n = ::pread(source, chunk.data(), chunk.size(), offset);
        if (n > 0) {
          buffer_.assign(chunk.data(), chunk.data() + n);
          drain();
          offset += n;
        }
      }
      if (n == 0) input_ended_ = true;
      if (moved(n)) length -= static_cast<std::uint64_t>(n);
    }
  }
  [[nodiscard]] bool input_ended() const { return input_ended_; }

 private:
  static constexpr std::size_t kBuffer = 1 << 18;
  // The outcome of one write, read or copy: true when it moved bytes. An interrupted call
  // moved none and is retried; an error, or none moved (a full disk, an input that ended),
  // stops the consumer.
  bool moved(ssize_t n) {
    if (n > 0) return true;
    if (n < 0 && errno == EINTR) return false;
    error_ = n < 0 ? errno : EIO;
    return false;
  }
  void drain() {
    std::size_t done = 0;
    while (error_ == 0 && done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (moved(n)) done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }
  int fd_;
  int error_ = 0;
  bool input_ended_ = false;
  std::vector<char> buffer_;
};

class CheckedFileStream final : public DcmOutputStream {
 public:
  explicit CheckedFileStream(CheckedFileConsumer& consumer) : DcmOutputStream(&consumer) {}
};

// Collects what DCMTK writes in memory.
class MemoryConsumer final : public DcmConsumer {
 public:
  explicit MemoryConsumer(std::vector<std::uint8_t>& out) : out_(out) {}
  OFBool good() const override { return OFTrue; }
  OFCondition status() const override { return EC_Normal; }
  OFBool isFlushed() const override { return OFTrue; }
  offile_off_t avail() const override { return OFstatic_cast(offile_off_t, 1 << 18); }
  offile_off_t write(const void* buf, offile_off_t buflen) override {
    if (buf == nullptr || buflen <= 0) return 0;
    const auto* bytes = static_cast<const std::uint8_t*>(buf);
    out_.insert(out_.end(), bytes, bytes + buflen);
    return buflen;
  }
  void flush() override {}

 private:
  std::vector<std::uint8_t>& out_;
};

class MemoryStream final : public DcmOutputStream {
 public:
  explicit MemoryStream(MemoryConsumer& consumer) : DcmOutputStream(&consumer) {}
};

std::atomic<PixelCopy> pixel_copy{PixelCopy::splice_when_safe};
std::atomic<std::uint64_t> spliced{0};

// The Pixel Data value save_checked can append from the input instead of through DCMTK.
struct PixelSplice {
  DcmElement* element = nullptr;     // the data set's last element, taken out while writing
  std::string source;                // the input file
  off_t offset = 0;                  // of the value in it
  std::uint32_t length = 0;
  std::vector<std::uint8_t> header;  // tag and length, as DCMTK writes them in this syntax
};

void put_le(std::vector<std::uint8_t>& out, std::uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}

// The splice, where it gives the bytes DCMTK would write; nullopt (DCMTK writes it) at any
// doubt. Only uncompressed little-endian syntaxes: there the header is tag, (VR, two zero
// bytes,) 32-bit length, and DCMTK copies the value unswapped (its byte order is the
// output's); encapsulated values, big-endian files, odd lengths and a group length that would
// count the missing element are left to DCMTK.
std::optional<PixelSplice> plan_splice(DcmFileFormat& file, E_TransferSyntax xfer) {
  if (pixel_copy.load() != PixelCopy::splice_when_safe) return std::nullopt;
  if (xfer != EXS_LittleEndianImplicit && xfer != EXS_LittleEndianExplicit) return std::nullopt;
  DcmDataset* dataset = file.getDataset();
  if (dataset == nullptr || dataset->getOriginalXfer() != xfer || dataset->card() == 0)
    return std::nullopt;
  DcmElement* last = dataset->getElement(dataset->card() - 1);
  if (last == nullptr || last->getTag() != DCM_PixelData || last->ident() != EVR_PixelData ||
      dataset->tagExists(DcmTagKey(0x7FE0, 0x0000)))
    return std::nullopt;
  const std::uint32_t length = last->getLengthField();
  if (last->valueLoaded() || length == 0 || length == DCM_UndefinedLength || length % 2 != 0)
    return std::nullopt;
  const DcmInputStreamFactory* stream = last->getInputStream();
  if (stream == nullptr || stream->ident() != DFT_DcmInputFileStreamFactory) return std::nullopt;
  const auto* from_file = static_cast<const DcmInputFileStreamFactory*>(stream);
  if (from_file->getFilename().getCharPointer() == nullptr) return std::nullopt;

  PixelSplice splice{last, from_file->getFilename().getCharPointer(), from_file->getOffset(),
                     length, {}};
  put_le(splice.header, 0x7FE0, 2);
  put_le(splice.header, 0x0010, 2);
  if (xfer == EXS_LittleEndianExplicit) {
    const DcmEVR vr = last->getTag().getEVR();
    if (vr != EVR_OB && vr != EVR_OW) return std::nullopt;
    const char* name = DcmVR(vr).getVRName();
    splice.header.push_back(static_cast<std::uint8_t>(name[0]));
    splice.header.push_back(static_cast<std::uint8_t>(name[1]));
    put_le(splice.header, 0, 2);
  }
  put_le(splice.header, length, 4);
  return splice;
}

// Takes the spliced element out of the data set while DCMTK writes the rest, and puts it
// back whatever happens (the caller's DicomFile stays whole).
class TakenOut {
 public:
  TakenOut(DcmDataset& dataset, DcmElement* element)
      : dataset_(dataset), element_(dataset.remove(element)) {}
  ~TakenOut() {
    if (element_ != nullptr && dataset_.insert(element_).bad()) delete element_;
  }
  TakenOut(const TakenOut&) = delete;
  TakenOut& operator=(const TakenOut&) = delete;
  [[nodiscard]] bool taken() const { return element_ != nullptr; }

 private:
  DcmDataset& dataset_;
  DcmElement* element_;
};

}  // namespace

void set_pixel_copy_for_testing(PixelCopy mode) { pixel_copy.store(mode); }
std::uint64_t spliced_pixel_values() { return spliced.load(); }

Result<std::vector<std::uint8_t>> write_to_memory(DcmFileFormat& file, E_TransferSyntax xfer,
                                                  E_FileWriteMode mode) {
  std::vector<std::uint8_t> bytes;
  MemoryConsumer consumer(bytes);
  OFCondition status = EC_Normal;
  {
    MemoryStream stream(consumer);
    DcmWriteCache cache;
    file.transferInit();
    status = file.write(stream, xfer, EET_UndefinedLength, &cache, EGL_recalcGL, EPD_noChange, 0,
                        0, 0, mode);
    file.transferEnd();
    stream.flush();
  }
  if (status.bad()) return fail(ErrorCode::io, std::string("cannot write: ") + status.text());
  return bytes;
}

// The input opened again for the splice, checked to be the file that was read (same file,
// size and modification time): a file renamed over it or rewritten since is refused, and a
// FIFO swapped in is never waited on.
Result<UniqueFd> reopen_input(const std::string& source, const InputIdentity& input) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  struct stat st{};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      !InputIdentity::of(st).same_as(input))
    return fail(ErrorCode::io, "the input changed after it was read; nothing was written");
  return fd;
}

Status save_checked(DcmFileFormat& file, const std::filesystem::path& path,
                    E_TransferSyntax xfer, E_FileWriteMode mode,
                    const std::optional<InputIdentity>& input) {
  // Without the input's identity the splice cannot check its source: DCMTK writes it all.
  std::optional<PixelSplice> splice = input ? plan_splice(file, xfer) : std::nullopt;
  // Opened and checked before the output is created: an input that is gone or changed since
  // it was read fails the save, and nothing is written.
  UniqueFd source;
  if (splice) {
    auto reopened = reopen_input(splice->source, *input);
    if (!reopened) return std::unexpected(reopened.error());
    source = std::move(*reopened);
  }
  CheckedFileConsumer consumer(path.c_str());
  OFCondition status = EC_Normal;
  {
    CheckedFileStream stream(consumer);
    if (!consumer.good())
      return fail(ErrorCode::io, std::string("cannot create the output: ") +
                                     std::strerror(consumer.error()));
    std::optional<TakenOut> taken;
    if (splice) {
      taken.emplace(*file.getDataset(), splice->element);
      if (!taken->taken()) return fail(ErrorCode::internal, "cannot take out the pixel data");
    }
    DcmWriteCache cache;
    file.transferInit();
    status = file.write(stream, xfer, EET_UndefinedLength, &cache, EGL_recalcGL, EPD_noChange, 0,
                        0, 0, mode);
    file.transferEnd();
    stream.flush();
  }
  if (splice && status.good() && consumer.good()) {
    consumer.write(splice->header.data(), static_cast<offile_off_t>(splice->header.size()));
    consumer.append_from(source.get(), splice->offset, splice->length);
  }
  const int error = consumer.finish();
  Status result;
  if (consumer.input_ended())
    result = fail(ErrorCode::io, "the input ended before its pixel data was copied");
  else if (error != 0)
    result = fail(ErrorCode::io, std::string("cannot write the output: ") + std::strerror(error));
  else if (status.bad())
    result = fail(ErrorCode::io, std::string("cannot write: ") + status.text());
  // A failed save leaves no partial output behind, whoever calls it.
  if (!result) {
    ::unlink(path.c_str());
    return result;
  }
  // Counted once the output is whole and closed.
  if (splice) spliced.fetch_add(1);
  return result;
}

}  // namespace radguard::dicom
