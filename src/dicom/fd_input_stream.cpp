#include "dicom/fd_input_stream.hpp"

#include <dcmtk/dcmdata/dcerror.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace radguard::dicom {

OFCondition FdProducer::status() const {
  return failed_ ? OFCondition(EC_InvalidStream) : OFCondition(EC_Normal);
}

bool FdProducer::fill() {
  const offile_off_t start = position_ - position_ % kBlock;
  const auto want = static_cast<std::size_t>(std::min(kBlock, size_ - start));
  block_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t n = ::pread(fd_, block_.data() + got, want - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // an error, or a file that shrank since its size was taken
      failed_ = true;
      block_.clear();
      return false;
    }
    got += static_cast<std::size_t>(n);
  }
  block_start_ = start;
  return true;
}

offile_off_t FdProducer::read(void* buf, offile_off_t buflen) {
  auto* out = static_cast<char*>(buf);
  offile_off_t done = 0;
  while (!failed_ && done < buflen && position_ < size_) {
    const bool in_block = position_ >= block_start_ &&
                          position_ < block_start_ + static_cast<offile_off_t>(block_.size());
    if (!in_block && !fill()) break;
    const offile_off_t offset = position_ - block_start_;
    const offile_off_t n =
        std::min(buflen - done, static_cast<offile_off_t>(block_.size()) - offset);
    std::memcpy(out + done, block_.data() + offset, static_cast<std::size_t>(n));
    done += n;
    position_ += n;
  }
  return done;
}

offile_off_t FdProducer::skip(offile_off_t skiplen) {
  const offile_off_t n = std::clamp<offile_off_t>(skiplen, 0, avail());
  position_ += n;
  return n;
}

void FdProducer::putback(offile_off_t num) {
  // DCMTK never puts back more than it read; if it did, the stream's position would be
  // wrong: fail it rather than parse from a clamped offset.
  if (num < 0 || num > position_) {
    failed_ = true;
    return;
  }
  position_ -= num;
}

DcmInputStreamFactory* FdInputStream::newFactory() const {
  if (currentProducer() != &producer_) return nullptr;
  return new DcmInputFileStreamFactory(OFFilename(path_.c_str()), tell());
}

}  // namespace radguard::dicom
