// Writing a DicomFile's DCMTK object to disk with every write error seen: DCMTK's own file
// stream writes through stdio and ignores a failed flush at close, so on a full disk it could
// leave a short or empty file behind a "good" status. Here the bytes go through write(2)
// from one buffer, and the file is closed with every result checked; flushing it (fsync) is
// the publisher's (PendingFile), once.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcostrma.h>
#include <dcmtk/dcmdata/dcwcache.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

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

 private:
  static constexpr std::size_t kBuffer = 1 << 18;
  void drain() {
    std::size_t done = 0;
    while (error_ == 0 && done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = errno;
      } else if (n == 0) {
        error_ = EIO;
      } else {
        done += static_cast<std::size_t>(n);
      }
    }
    buffer_.clear();
  }
  int fd_;
  int error_ = 0;
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

}  // namespace

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

Status save_checked(DcmFileFormat& file, const std::filesystem::path& path,
                    E_TransferSyntax xfer, E_FileWriteMode mode) {
  CheckedFileConsumer consumer(path.c_str());
  OFCondition status = EC_Normal;
  {
    CheckedFileStream stream(consumer);
    if (!consumer.good())
      return fail(ErrorCode::io, std::string("cannot create the output: ") +
                                     std::strerror(consumer.error()));
    DcmWriteCache cache;
    file.transferInit();
    status = file.write(stream, xfer, EET_UndefinedLength, &cache, EGL_recalcGL, EPD_noChange, 0,
                        0, 0, mode);
    file.transferEnd();
    stream.flush();
  }
  const int error = consumer.finish();
  if (error != 0)
    return fail(ErrorCode::io, std::string("cannot write the output: ") + std::strerror(error));
  if (status.bad()) return fail(ErrorCode::io, std::string("cannot write: ") + status.text());
  return {};
}

}  // namespace radguard::dicom
