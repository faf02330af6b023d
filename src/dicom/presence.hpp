#pragma once
// Whether a data set holds an element, without visiting the others or reading any value. For
// checks made on every file of a batch: the burned-in gate's triage asked whether Pixel Data
// was there by visiting every element, each value made a string on the way, which cost about
// a sixth of de-identifying a file (callgrind, docs/benchmarks.md, issue 21).
#include "dicom/dicom_file.hpp"

namespace radguard::dicom {

// True when the data set (not the file meta header) holds `tag` at its top level, with a
// value or empty. Loads no value left on the file. Safe to call on a file no other thread is
// using, like every read of a DicomFile.
[[nodiscard]] bool has_top_level(const DicomFile& file, Tag tag);

}  // namespace radguard::dicom
