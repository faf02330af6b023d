#pragma once
// A cheap pass over a DICOM file's bytes before DCMTK parses it, so that hostile structure is
// refused before the recursive reader sees it: sequences nested deeper than DCMTK's reader
// (and radguard's own walkers) can recurse on a thread's stack, more elements than memory
// allows, and deflated data sets that inflate to far more than the file (deflate bombs).
//
// The pass reads tags and lengths only; values are skipped (seeked over), except in deflated
// data sets, which are inflated as a stream and never held. It understands explicit and
// implicit VR, both byte orders, defined and undefined lengths, UN values that hold
// sequences, and encapsulated pixel data. Where it cannot follow the bytes (a structure
// DCMTK may still accept), it leaves the verdict to DCMTK unless the bytes left could still
// hold a nesting too deep, in which case the file is refused.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace radguard::dicom {

struct StructureLimits {
  // Sequences inside sequences: real objects nest a few levels (SR trees a few dozen).
  std::size_t max_sequence_depth = 128;
  // Elements and items in the whole data set: at most max(min_elements, file bytes /
  // bytes_per_element), and never more than max_elements.
  std::uint64_t min_elements = 100'000;
  std::uint64_t bytes_per_element = 2;
  std::uint64_t max_elements = 2'000'000;
  // A deflated data set may inflate to max(min_inflated, max_inflate_ratio x file bytes),
  // never more than max_inflated (DCMTK holds a deflated data set in memory whole).
  std::uint64_t min_inflated = 64ULL << 20;
  std::uint64_t max_inflate_ratio = 100;
  std::uint64_t max_inflated = 512ULL << 20;
  // A top-level tag ((group << 16) | element) at which the pass stops, for a reader that
  // stops there too (DCMTK's loadFileUntilTag stops at this tag or any higher one); 0: the
  // whole data set. What lies beyond is neither checked nor, in a deflated file, inflated.
  std::uint32_t stop_at = 0;
};

// What the pass saw (for tests and measurements).
struct StructureFacts {
  std::size_t max_sequence_depth = 0;
  std::uint64_t elements = 0;
  std::uint64_t inflated_bytes = 0;  // deflated data sets: bytes after inflation
  bool conclusive = true;            // false: the pass stopped where it could not follow
  bool stopped_at_limit = false;     // the pass ended at StructureLimits::stop_at
};

// part10: a file with its meta header, whose transfer syntax says the encoding. raw_dataset: a
// data set alone. Where no encoding DCMTK knows is declared (raw_dataset, or a meta header
// without a transfer syntax DCMTK recognises), the pass asks DCMTK's own guess from the first
// element (dcmtk_encoding.hpp), so that it walks the bytes as DCMTK will read them; a
// declared one is walked as declared, whatever the first element shows, as DCMTK does.
// raw_*: a data set alone whose encoding is known (a DIMSE identifier, read by DCMTK in the
// transfer syntax of its presentation context): the pass reads it in that encoding, never its
// own guess, and refuses a data set whose first element contradicts it, so that the structure
// checked is the structure DCMTK will read.
enum class FileLayout : std::uint8_t {
  part10,
  raw_dataset,
  raw_implicit_little,
  raw_explicit_little,
  raw_explicit_big,
};

// Values the pass reads on its way instead of skipping them, so that a reader that wants a
// few UIDs of millions of files (radguard plan) need not parse them again with DCMTK. Only
// short values of the data set itself (never of a nested item) with VR UI (or implicit VR)
// are taken; anything else marks the capture ambiguous and the caller asks DCMTK.
struct ValueCapture {
  static constexpr std::size_t kMaxLength = 256;  // a UID is at most 64 bytes
  std::vector<std::uint32_t> keys;                 // (group << 16) | element, group > 0002
  std::vector<std::optional<std::string>> values;  // as keys: the value's bytes, unpadded
  bool ambiguous = false;  // a wanted tag twice, with another VR, too long, or unreadable
};

// Fails with ErrorCode::malformed_dicom naming the limit exceeded (never a value), or
// ErrorCode::io when the file cannot be read.
[[nodiscard]] Result<StructureFacts> check_structure(const std::filesystem::path& path,
                                                     FileLayout layout,
                                                     const StructureLimits& limits = {});
// The same pass over an open file of `file_size` bytes, read from the descriptor's offset
// (which it moves; the caller's descriptor, not closed).
[[nodiscard]] Result<StructureFacts> check_structure(int fd, std::uint64_t file_size,
                                                     FileLayout layout,
                                                     const StructureLimits& limits = {});
// The same pass over an object held in memory (never fails with ErrorCode::io).
// `capture`, when given, collects the values of its keys (see ValueCapture).
[[nodiscard]] Result<StructureFacts> check_structure(std::span<const std::uint8_t> bytes,
                                                     FileLayout layout,
                                                     const StructureLimits& limits = {},
                                                     ValueCapture* capture = nullptr);

}  // namespace radguard::dicom
