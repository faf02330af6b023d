#pragma once
// radguard's window onto DICOM files. DCMTK does the parsing, encoding and writing; its
// types stay behind this interface (src/dicom/ is the only folder that includes DCMTK).
//
// Values larger than a few kilobytes (pixel data above all) stay in the input file and are
// streamed from it to the output when written, so memory does not grow with image size.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/tag.hpp"

namespace radguard::dicom {

// One element as a policy sees it, before anything in its item changes.
struct ElementView {
  Tag tag;
  std::string_view vr;               // as encoded ("UN" when the file did not say)
  std::string_view private_creator;  // for private elements: their block's creator, else ""
  std::span<const Tag> path;         // enclosing sequence tags, outermost first
  std::uint8_t inherited_mode = 0;   // the mode the policy gave the enclosing sequence
  bool is_sequence = false;
  std::uint32_t length = 0;  // value length in bytes (0xFFFFFFFF: undefined)
  // The raw value of string VRs (backslash-separated values), empty for other VRs.
  std::string_view value;
};

// The other elements of the item an element sits in, with their original values.
class ItemView {
 public:
  virtual ~ItemView() = default;
  // Raw string value of a sibling element; nullopt when absent or not a string.
  virtual std::optional<std::string> string_of(Tag tag) const = 0;
  // A string inside the first item of a sibling sequence (e.g. a concept name's code).
  virtual std::optional<std::string> nested_string_of(Tag sequence, Tag inner) const = 0;
  // Every tag present in this item, ascending.
  virtual std::span<const Tag> tags() const = 0;
};

// What a policy wants done with one element.
struct Decision {
  enum class Kind : std::uint8_t {
    keep,     // unchanged; a kept sequence has each of its items walked in turn
    remove,   // the element (and a sequence's items) goes
    empty,    // zero-length value; a sequence loses all its items
    replace,  // `value` replaces the value (binary VRs get zeros of the VR's width)
  };
  Kind kind = Kind::remove;
  std::string value;
  std::uint8_t child_mode = 0;  // for kept sequences: passed to their elements' views
};

// Decides the fate of each element of a dataset, at every nesting level. Implemented by the
// de-identification stage; must be safe to call from several threads on distinct files.
class ElementPolicy {
 public:
  virtual ~ElementPolicy() = default;
  virtual Decision decide(const ElementView& element, const ItemView& item) const = 0;
};

// Counts of what a transform did.
struct TransformStats {
  std::size_t kept = 0, removed = 0, emptied = 0, replaced = 0;
};

struct CodeItem {
  std::string value, scheme, meaning;
};

// How the file meta header of an output is written.
struct MetaIdentity {
  std::string implementation_class_uid;
  std::string implementation_version_name;
};

// One DICOM file held open for reading and rewriting. Not thread-safe; distinct objects may
// be used on distinct threads.
class DicomFile {
 public:
  // Parses `path`. Fails with ErrorCode::not_dicom when the file is not DICOM at all,
  // ErrorCode::malformed_dicom when it is but cannot be parsed safely (truncation, a length
  // beyond the end of the file, a broken sequence), ErrorCode::io when it cannot be read.
  // Never allocates memory for a declared length larger than the file.
  [[nodiscard]] static Result<DicomFile> open(const std::filesystem::path& path);
  // Parses a DICOM object held in memory (bytes received from the network or an upload: a
  // Part 10 file, or a data set without a meta header), with the same sniff and structure
  // checks and the same errors as open() (never ErrorCode::io). Every value is copied, so
  // `bytes` need not outlive the call.
  [[nodiscard]] static Result<DicomFile> open_bytes(std::span<const std::uint8_t> bytes);
  // The values of a few top-level string attributes (each as string_of gives it), read from
  // the start of `path` only up to the last of `tags`: the rest of the file (the pixel data)
  // is never read. For a planner that needs a few UIDs of millions of files. The same sniff,
  // structure checks (over the part read) and errors as open(); a file damaged only after
  // that part is not noticed here (the run that opens it whole reports it).
  // Also returns the file's size as the open descriptor saw it, so a caller that needs both
  // (the planner, per file of millions) makes no second stat.
  struct LeadingStrings {
    std::vector<std::optional<std::string>> values;  // one per tag asked, in that order
    std::uint64_t file_bytes = 0;
  };
  [[nodiscard]] static Result<LeadingStrings> read_leading_strings(
      const std::filesystem::path& path, std::span<const Tag> tags);

  DicomFile(DicomFile&&) noexcept;
  DicomFile& operator=(DicomFile&&) noexcept;
  ~DicomFile();

  // True for a DICOMDIR (Media Storage Directory) object.
  bool is_dicomdir() const;
  std::string transfer_syntax_uid() const;

  // A top-level string attribute's raw value (group 0002: from the file meta header);
  // nullopt when absent or empty.
  std::optional<std::string> string_of(Tag tag) const;

  // The codes of a top-level code sequence (Code Value, Coding Scheme Designator, Code
  // Meaning of each item; "" for a missing one); empty when absent.
  std::vector<CodeItem> code_sequence_of(Tag tag) const;

  // Calls `visit` for every element at every nesting level (read-only). The items of a
  // sequence stored as UN are read as implicit VR little endian with the dictionary, so
  // their values are visited too (path includes the UN sequence's tag).
  void visit(const std::function<void(const ElementView&)>& visit) const;

  // Applies `policy` to every element of the dataset (not the meta header), recursively.
  // Decisions for an item are all taken before any is applied, so a policy always sees
  // original values. Fails with ErrorCode::internal if DCMTK refuses a change.
  [[nodiscard]] Result<TransformStats> transform(const ElementPolicy& policy);

  // Sets or replaces a top-level attribute (the dictionary gives its VR).
  [[nodiscard]] Status set_string(Tag tag, std::string_view value);
  // Replaces a top-level sequence with one item per code (Code Value, Coding Scheme
  // Designator, Code Meaning).
  [[nodiscard]] Status set_code_sequence(Tag tag, std::span<const CodeItem> codes);

  // Writes the dataset to `path` in its original transfer syntax (pixel data bytes as they
  // were), with a new file meta header. Every write and the close are checked, but the file
  // is not flushed: write to a PendingFile's temporary file, whose flush() or commit() does
  // that. Fails with ErrorCode::io.
  [[nodiscard]] Status save(const std::filesystem::path& path, const MetaIdentity& meta);
  // The bytes save() would write to a file, in memory. Fails with ErrorCode::io when DCMTK
  // cannot encode the data set.
  [[nodiscard]] Result<std::vector<std::uint8_t>> save_bytes(const MetaIdentity& meta);

 private:
  struct Impl;
  // The pixel module (dicom/pixels.cpp) works on the same DCMTK object.
  friend struct PixelAccess;
  explicit DicomFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// How save() moves an untouched Pixel Data value. By default (splice_when_safe) a value DCMTK
// never loaded, in a little-endian uncompressed transfer syntax that does not change, at the
// end of the data set, is copied by the kernel from the input (copy_file_range) after DCMTK
// writes everything before it: the same bytes, without the value passing through DCMTK's
// write cache and our buffer. through_dcmtk always lets DCMTK write it (tests compare both).
enum class PixelCopy : std::uint8_t { splice_when_safe, through_dcmtk };
void set_pixel_copy_for_testing(PixelCopy mode);
// How many Pixel Data values this process has spliced (tests: the path was taken).
[[nodiscard]] std::uint64_t spliced_pixel_values();

// Configures DCMTK once per process: silences its logging (it could print attribute
// values) and makes sure its dictionary holds radguard's compiled-in rows (the PS3.6 edition
// radguard ships and DCMTK's private dictionary; see dcmtk_dictionary.hpp). Called by
// DicomFile::open and every other entry point; safe to call from several threads.
void initialise();

}  // namespace radguard::dicom
