#pragma once
// Internal to src/dicom/: the DCMTK object behind a DicomFile, shared by dicom_file.cpp and
// pixels.cpp. Never included outside this folder.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dicom/dicom_file.hpp"

namespace radguard::dicom {

// Which file an input was, and its size and modification time, when it was opened: a save
// that copies from the input again (the pixel splice) requires the same, so a file renamed
// over it or rewritten since is never copied unchecked.
struct InputIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  timespec modified{};

  [[nodiscard]] static InputIdentity of(const struct stat& st) {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim};
  }
  [[nodiscard]] bool same_as(const InputIdentity& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec;
  }
};

struct DicomFile::Impl {
  DcmFileFormat file;
  // Set by the pixel module when pixel data was re-encoded in another transfer syntax;
  // save() writes in this one instead of the original.
  std::optional<E_TransferSyntax> output_xfer;
  // The input as it was opened (DicomFile::open); unset for a file built in memory.
  std::optional<InputIdentity> input;
};

// Why loadFile() failed, in words an operator can act on: DCMTK's text, and for a stream
// that ends early, that the file is truncated or an element claims more bytes than the file
// holds, naming the last element read (a tag, never a value).
std::string parse_failure(DcmFileFormat& file, const OFCondition& status);

// Writes `file` to `path` (created, or truncated when it exists) in `xfer` with sequences of undefined
// length and recalculated group lengths, as saveFile() would, but with every write error
// seen: buffered write(2) calls and the close, each checked. Not flushed (no fsync): every
// caller writes a PendingFile's temporary file, which PendingFile::flush or commit flushes
// once (a second fsync here cost a journal wait per file). Fails with ErrorCode::io (a full
// disk: "No space left on device"); the caller removes the file. With `input` (the file the
// data set was read from, as it was then), an untouched Pixel Data value may be copied from
// the input (the splice); the save fails with ErrorCode::io when the input changed since.
[[nodiscard]] Status save_checked(DcmFileFormat& file, const std::filesystem::path& path,
                                  E_TransferSyntax xfer, E_FileWriteMode mode,
                                  const std::optional<InputIdentity>& input = std::nullopt);

// Writes `file` into memory in `xfer`, as save_checked writes it to a file (the same bytes).
// Fails with ErrorCode::io when DCMTK cannot encode it.
[[nodiscard]] Result<std::vector<std::uint8_t>> write_to_memory(DcmFileFormat& file,
                                                               E_TransferSyntax xfer,
                                                               E_FileWriteMode mode);

struct PixelAccess {
  static DicomFile::Impl& impl(DicomFile& file) { return *file.impl_; }
  static const DicomFile::Impl& impl(const DicomFile& file) { return *file.impl_; }
};

}  // namespace radguard::dicom
