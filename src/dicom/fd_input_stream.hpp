#pragma once
// Internal to src/dicom/: DCMTK reads an input through the descriptor DicomFile::open already
// holds (the sniff and the structure check read it first), instead of opening it again with
// stdio. DCMTK's own file stream costs an fopen, two fstats, a read of the file's last block
// (to find its size), 4 KB reads and an lseek for each of its seeks and put-backs (up to ten
// in a row at one offset); this one reads 64 KB blocks with pread and seeks in memory.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcistrma.h>

#include <cstdint>
#include <string>
#include <vector>

namespace radguard::dicom {

// The bytes of an open regular file of known size, from offset 0, by pread (the descriptor's
// own offset is not used or moved). A failed read stops the stream (status() bad), as a
// failed fread stops DCMTK's.
class FdProducer final : public DcmProducer {
 public:
  FdProducer(int fd, std::uint64_t size) : fd_(fd), size_(static_cast<offile_off_t>(size)) {}

  OFBool good() const override { return !failed_; }
  OFCondition status() const override;
  OFBool eos() override { return failed_ || position_ >= size_; }
  offile_off_t avail() override { return failed_ ? 0 : size_ - position_; }
  offile_off_t read(void* buf, offile_off_t buflen) override;
  offile_off_t skip(offile_off_t skiplen) override;
  void putback(offile_off_t num) override;

 private:
  static constexpr offile_off_t kBlock = 64 * 1024;
  [[nodiscard]] bool fill();  // the block holding position_
  int fd_;
  offile_off_t size_;
  offile_off_t position_ = 0;
  std::vector<char> block_;
  offile_off_t block_start_ = 0;  // file offset of block_[0]
  bool failed_ = false;
};

// A DCMTK input stream over FdProducer. Values left on the file (longer than the load's
// limit) are read later through DCMTK's file factory, by name and offset, as loadFile's are;
// none once a compression filter (deflate) is installed, as DCMTK's own stream does.
class FdInputStream final : public DcmInputStream {
 public:
  FdInputStream(int fd, std::uint64_t size, std::string path)
      : DcmInputStream(&producer_), producer_(fd, size), path_(std::move(path)) {}
  DcmInputStreamFactory* newFactory() const override;

 private:
  FdProducer producer_;
  std::string path_;
};

}  // namespace radguard::dicom
