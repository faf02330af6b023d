#include "dicom/dicom_file.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcostrmz.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcvrobow.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/oflog/oflog.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <span>

#include "core/unique_fd.hpp"
#include "dicom/dcmtk_dictionary.hpp"
#include "dicom/dicom_file_impl.hpp"
#include "dicom/fd_input_stream.hpp"
#include "dicom/presence.hpp"
#include "dicom/structure_check.hpp"
#include "standard/tables.hpp"

namespace radguard::dicom {

namespace fs = std::filesystem;

namespace {

// Values longer than this stay in the input file until written out.
constexpr Uint32 kMaxInMemoryValue = 4096;

Tag tag_of(const DcmObject& object) {
  const DcmTag& t = object.getTag();
  return Tag{t.getGTag(), t.getETag()};
}

DcmTagKey key_of(Tag tag) { return DcmTagKey(tag.group, tag.element); }

bool is_binary_filler_vr(std::string_view vr) {
  return vr == "OB" || vr == "OW" || vr == "OF" || vr == "OD" || vr == "OL" || vr == "OV" ||
         vr == "UN";
}

// Reads the first bytes to tell DICOM from anything else before DCMTK guesses: DCMTK will
// happily read arbitrary bytes as an implicit-VR dataset.
enum class Sniff { part10, raw_dataset, not_dicom, unreadable };

// What the first bytes (up to 132) say.
Sniff sniff_head(std::span<const unsigned char> head) {
  const std::size_t got = head.size();
  if (got >= 132 && head[128] == 'D' && head[129] == 'I' && head[130] == 'C' && head[131] == 'M')
    return Sniff::part10;
  if (got < 8) return Sniff::not_dicom;
  // A dataset without preamble: the first tag is a low group (0002, 0008 or a command /
  // identifying group) with a small element number, in either byte order.
  const unsigned little_group = head[0] | (head[1] << 8);
  const unsigned little_element = head[2] | (head[3] << 8);
  const unsigned big_group = (head[0] << 8) | head[1];
  const unsigned big_element = (head[2] << 8) | head[3];
  auto plausible = [](unsigned group, unsigned element) {
    return (group == 0x0002 || group == 0x0008) && element <= 0x0100;
  };
  if (plausible(little_group, little_element) || plausible(big_group, big_element))
    return Sniff::raw_dataset;
  return Sniff::not_dicom;
}

// What the first bytes of an open file say (one pread: the descriptor's offset stays at 0
// for the structure check that reads it next).
Sniff sniff(int fd) {
  std::array<unsigned char, 132> head{};
  std::size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::pread(fd, head.data() + got, head.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Sniff::unreadable;
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return sniff_head(std::span<const unsigned char>(head.data(), got));
}

// The creators of private blocks in one item: (gggg,00xx) -> value.
std::string creator_for(DcmItem& item, Tag tag) {
  const auto slot = tag.private_creator_slot();
  if (!slot) return {};
  OFString value;
  if (item.findAndGetOFString(key_of(*slot), value).bad()) return {};
  std::string out(value.c_str());
  while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
  return out;
}

std::string raw_string(DcmElement& element);

// A string value of one item (not searching deeper): text attributes stored as UN are read
// as the text they are, as everywhere else (DCMTK would print their bytes in hex).
std::optional<std::string> item_string(DcmItem& item, Tag tag) {
  DcmElement* element = nullptr;
  if (item.findAndGetElement(key_of(tag), element, OFFalse).bad() || element == nullptr)
    return std::nullopt;
  if (element->ident() == EVR_UN) return raw_string(*element);
  OFString value;
  if (element->getOFStringArray(value).bad()) return std::nullopt;
  return std::string(value.c_str(), value.length());
}

class DcmItemView final : public ItemView {
 public:
  explicit DcmItemView(DcmItem& item) : item_(item) {
    DcmObject* object = nullptr;
    while ((object = item_.nextInContainer(object)) != nullptr) tags_.push_back(tag_of(*object));
  }
  std::optional<std::string> string_of(Tag tag) const override { return item_string(item_, tag); }
  std::optional<std::string> nested_string_of(Tag sequence, Tag inner) const override {
    DcmItem* first = nullptr;
    if (item_.findAndGetSequenceItem(key_of(sequence), first, 0, OFFalse).bad() || !first)
      return std::nullopt;
    return item_string(*first, inner);
  }
  std::span<const Tag> tags() const override { return tags_; }

 private:
  DcmItem& item_;
  std::vector<Tag> tags_;
};

bool is_string_vr(std::string_view vr) {
  static constexpr std::string_view kStringVrs[] = {"AE", "AS", "CS", "DA", "DS", "DT",
                                                    "IS", "LO", "LT", "PN", "SH", "ST",
                                                    "TM", "UC", "UI", "UR", "UT"};
  return std::find(std::begin(kStringVrs), std::end(kStringVrs), vr) != std::end(kStringVrs);
}

std::string raw_string(DcmElement& element) {
  if (element.ident() == EVR_UN) {
    // Some writers encode standard text attributes as UN: read their bytes as the text they
    // are, so a policy cleans them like any other (a value kept stays byte-identical).
    const DcmTag& t = element.getTag();
    const auto* entry = standard::find_dictionary_entry(Tag{t.getGTag(), t.getETag()});
    if (entry == nullptr || !is_string_vr(entry->vr)) return {};
    Uint8* data = nullptr;
    if (element.getUint8Array(data).bad() || data == nullptr) return {};
    std::string text(reinterpret_cast<const char*>(data), element.getLength());
    while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
    return text;
  }
  if (!element.isaString()) return {};
  OFString value;
  if (element.getOFStringArray(value).bad()) return {};
  return std::string(value.c_str(), value.length());
}

ElementView make_view(DcmElement& element, DcmItem& item, std::span<const Tag> path,
                      std::uint8_t mode, std::string& value_storage, std::string& creator_storage,
                      std::string& vr_storage) {
  ElementView view;
  view.tag = tag_of(element);
  vr_storage = element.getTag().getVR().getValidVRName();
  view.vr = vr_storage;
  if (view.tag.is_private() && !view.tag.is_private_creator()) {
    creator_storage = creator_for(item, view.tag);
    view.private_creator = creator_storage;
  }
  view.path = path;
  view.inherited_mode = mode;
  view.is_sequence = element.ident() == EVR_SQ;
  view.length = element.getLengthField();
  value_storage = raw_string(element);
  view.value = value_storage;
  return view;
}

struct Walker {
  const ElementPolicy& policy;
  TransformStats stats;
  std::vector<Tag> path;

  Status walk_item(DcmItem& item, std::uint8_t mode) {
    struct Pending {
      DcmElement* element;
      Decision decision;
    };
    std::vector<Pending> pending;
    {
      const DcmItemView item_view(item);
      std::string value, creator, vr;
      DcmObject* object = nullptr;
      while ((object = item.nextInContainer(object)) != nullptr) {
        auto* element = dynamic_cast<DcmElement*>(object);
        if (element == nullptr) continue;
        const ElementView view = make_view(*element, item, path, mode, value, creator, vr);
        pending.push_back({element, policy.decide(view, item_view)});
      }
    }
    for (auto& [element, decision] : pending) {
      if (auto status = apply(item, *element, decision); !status) return status;
    }
    return {};
  }

  Status apply(DcmItem& item, DcmElement& element, const Decision& decision) {
    const Tag tag = tag_of(element);
    switch (decision.kind) {
      case Decision::Kind::keep: {
        ++stats.kept;
        if (element.ident() != EVR_SQ) return {};
        auto& sequence = static_cast<DcmSequenceOfItems&>(element);
        path.push_back(tag);
        // Items are visited by iteration: indexed access is linear in DCMTK's lists, and
        // enhanced multi-frame objects carry thousands of items.
        DcmObject* object = nullptr;
        while ((object = sequence.nextInContainer(object)) != nullptr) {
          auto* child = dynamic_cast<DcmItem*>(object);
          if (child == nullptr) continue;
          if (auto status = walk_item(*child, decision.child_mode); !status) {
            path.pop_back();
            return status;
          }
        }
        path.pop_back();
        return {};
      }
      case Decision::Kind::remove: {
        ++stats.removed;
        std::unique_ptr<DcmObject> removed(item.remove(&element));
        return {};
      }
      case Decision::Kind::empty: {
        ++stats.emptied;
        if (element.ident() == EVR_SQ) {
          static_cast<DcmSequenceOfItems&>(element).clear();
        } else if (element.clear().bad()) {
          return fail(ErrorCode::internal, "cannot empty " + tag.to_string());
        }
        return {};
      }
      case Decision::Kind::replace:
        ++stats.replaced;
        return replace(item, element, decision.value);
    }
    return {};
  }

  static Status replace(DcmItem& item, DcmElement& element, const std::string& value) {
    const Tag tag = tag_of(element);
    if (element.ident() == EVR_SQ) return {};  // sequences are cleaned, never replaced
    const std::string vr = element.getTag().getVR().getValidVRName();
    if (vr == "UN") {
      // Encoded without a VR: re-create the element with the dictionary's VR.
      const auto* entry = standard::find_dictionary_entry(tag);
      if (entry == nullptr || is_binary_filler_vr(entry->vr)) {
        std::unique_ptr<DcmObject> removed(item.remove(&element));
        return {};
      }
      std::unique_ptr<DcmObject> removed(item.remove(&element));
      DcmTag new_tag(key_of(tag), DcmVR(entry->vr));
      if (item.putAndInsertString(new_tag, value.c_str(), OFTrue).bad())
        return fail(ErrorCode::internal, "cannot replace " + tag.to_string());
      return {};
    }
    if (is_binary_filler_vr(vr)) {
      static constexpr Uint8 kZeros[8] = {};
      auto& binary = static_cast<DcmOtherByteOtherWord&>(element);
      const OFCondition status =
          vr == "OB" ? binary.putUint8Array(kZeros, 2)
                     : binary.putUint16Array(reinterpret_cast<const Uint16*>(kZeros), 1);
      if (status.bad()) return fail(ErrorCode::internal, "cannot replace " + tag.to_string());
      return {};
    }
    if (element.putString(value.c_str(), static_cast<Uint32>(value.size())).bad())
      return fail(ErrorCode::internal, "cannot replace " + tag.to_string());
    return {};
  }
};

// A sequence some writer stored as UN holds its items in implicit VR little endian
// (PS3.5 6.2.2). Reads them with the dictionary and calls `visit` for every element at every
// level, so the values inside (other patient IDs, issuers, names) are known to a policy. Only
// reads: anything that does not parse ends the walk quietly (the policy removes such
// sequences whole). Returns the position after what was consumed, or npos when malformed.
constexpr std::size_t kMalformed = static_cast<std::size_t>(-1);
constexpr int kMaxUnDepth = 16;

std::size_t visit_un_items(std::span<const Uint8> data, std::size_t pos, bool until_delimiter,
                           std::vector<Tag>& path, int depth,
                           const std::function<void(const ElementView&)>& visit);

std::uint32_t le32(std::span<const Uint8> d, std::size_t p) {
  return d[p] | (d[p + 1] << 8) | (d[p + 2] << 16) | (static_cast<std::uint32_t>(d[p + 3]) << 24);
}
std::uint16_t le16(std::span<const Uint8> d, std::size_t p) {
  return static_cast<std::uint16_t>(d[p] | (d[p + 1] << 8));
}

// The elements of one item, from `pos` to `end` (or to an item delimiter when undefined).
std::size_t visit_un_elements(std::span<const Uint8> data, std::size_t pos, std::size_t end,
                              bool until_delimiter, std::vector<Tag>& path, int depth,
                              const std::function<void(const ElementView&)>& visit) {
  while (pos + 8 <= end) {
    const Tag tag{le16(data, pos), le16(data, pos + 2)};
    const std::uint32_t length = le32(data, pos + 4);
    pos += 8;
    if (tag.group == 0xFFFE && tag.element == 0xE00D) return until_delimiter ? pos : kMalformed;
    if (tag.group == 0xFFFE) return kMalformed;
    const auto* entry = standard::find_dictionary_entry(tag);
    const std::string_view vr = entry != nullptr ? std::string_view(entry->vr) : "UN";
    if (length == 0xFFFFFFFF) {  // a nested sequence of undefined length
      ElementView view;
      view.tag = tag;
      view.vr = "SQ";
      view.path = path;
      view.is_sequence = true;
      view.length = length;
      visit(view);
      path.push_back(tag);
      pos = visit_un_items(data, pos, true, path, depth + 1, visit);
      path.pop_back();
      if (pos == kMalformed) return kMalformed;
      continue;
    }
    if (length > end - pos) return kMalformed;
    ElementView view;
    view.tag = tag;
    view.vr = vr;
    view.path = path;
    view.length = length;
    view.is_sequence = vr == "SQ";
    std::string text;
    if (is_string_vr(vr)) {
      text.assign(reinterpret_cast<const char*>(data.data() + pos), length);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.pop_back();
      view.value = text;
    }
    visit(view);
    if (view.is_sequence) {
      path.push_back(tag);
      const std::size_t after =
          visit_un_items(data.first(pos + length), pos, false, path, depth + 1, visit);
      path.pop_back();
      if (after == kMalformed) return kMalformed;
    }
    pos += length;
  }
  return until_delimiter ? kMalformed : end;
}

std::size_t visit_un_items(std::span<const Uint8> data, std::size_t pos, bool until_delimiter,
                           std::vector<Tag>& path, int depth,
                           const std::function<void(const ElementView&)>& visit) {
  if (depth > kMaxUnDepth) return kMalformed;
  while (pos + 8 <= data.size()) {
    const std::uint16_t group = le16(data, pos), element = le16(data, pos + 2);
    const std::uint32_t length = le32(data, pos + 4);
    pos += 8;
    if (group == 0xFFFE && element == 0xE0DD) return until_delimiter ? pos : kMalformed;
    if (group != 0xFFFE || element != 0xE000) return kMalformed;
    if (length == 0xFFFFFFFF) {
      pos = visit_un_elements(data, pos, data.size(), true, path, depth, visit);
    } else {
      if (length > data.size() - pos) return kMalformed;
      if (visit_un_elements(data, pos, pos + length, false, path, depth, visit) == kMalformed)
        return kMalformed;
      pos += length;
    }
    if (pos == kMalformed) return kMalformed;
  }
  return until_delimiter ? kMalformed : pos;
}

void visit_un_sequence(DcmElement& element, std::vector<Tag>& path,
                       const std::function<void(const ElementView&)>& visit) {
  const auto* entry = standard::find_dictionary_entry(tag_of(element));
  if (entry == nullptr || std::string_view(entry->vr) != "SQ") return;
  Uint8* data = nullptr;
  if (element.getUint8Array(data).bad() || data == nullptr) return;
  path.push_back(tag_of(element));
  visit_un_items(std::span<const Uint8>(data, element.getLength()), 0, false, path, 0, visit);
  path.pop_back();
}

void visit_item(DcmItem& item, std::vector<Tag>& path,
                const std::function<void(const ElementView&)>& visit) {
  std::string value, creator, vr;
  DcmObject* object = nullptr;
  while ((object = item.nextInContainer(object)) != nullptr) {
    auto* element = dynamic_cast<DcmElement*>(object);
    if (element == nullptr) continue;
    visit(make_view(*element, item, path, 0, value, creator, vr));
    if (element->ident() == EVR_UN) visit_un_sequence(*element, path, visit);
    if (element->ident() == EVR_SQ) {
      auto& sequence = static_cast<DcmSequenceOfItems&>(*element);
      path.push_back(tag_of(*element));
      DcmObject* child = nullptr;
      while ((child = sequence.nextInContainer(child)) != nullptr) {
        if (auto* nested = dynamic_cast<DcmItem*>(child)) visit_item(*nested, path, visit);
      }
      path.pop_back();
    }
  }
}

}  // namespace

void initialise() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    // Deflated outputs are re-compressed: the fastest level costs a few percent in size and
    // saves most of the time zlib takes at its default level.
    dcmZlibCompressionLevel.set(1);
    // Real files carry stale meta group lengths (tools that edit the meta header without
    // recounting). The meta header ends where group 0002 ends, as the structure check reads
    // it: two readers that disagreed on where the data set starts once let a crafted deflated
    // file make DCMTK allocate gigabytes.
    dcmIgnoreFileMetaInformationGroupLength.set(OFTrue);
    // After logging is off: DCMTK's dictionary from radguard's rows (dcmtk_dictionary.hpp).
    load_dictionary();
  });
}

std::string parse_failure(DcmFileFormat& file, const OFCondition& status) {
  std::string where;
  if (DcmDataset* dataset = file.getDataset(); dataset != nullptr && dataset->card() > 0) {
    if (DcmElement* last = dataset->getElement(dataset->card() - 1); last != nullptr) {
      const DcmTagKey key = last->getTag();
      char tag[16];
      std::snprintf(tag, sizeof tag, "(%04X,%04X)", key.getGroup(), key.getElement());
      where = std::string(" (last element read: ") + tag + ")";
    }
  }
  if (status == EC_StreamNotifyClient)
    return "cannot parse: the file ends inside an element: truncated, or an element declares "
           "more bytes than the file holds" +
           where;
  if (status == EC_InvalidStream)
    return "cannot parse: invalid stream: a tag, VR or length that does not fit the bytes "
           "around it" +
           where;
  return std::string("cannot parse: ") + status.text() + where;
}

DicomFile::DicomFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DicomFile::DicomFile(DicomFile&&) noexcept = default;
DicomFile& DicomFile::operator=(DicomFile&&) noexcept = default;
DicomFile::~DicomFile() = default;

namespace {

// What DcmFileFormat::loadFile(path, EXS_Unknown, EGL_noChange, kMaxInMemoryValue,
// ERM_autoDetect) does, over the descriptor already open (FdInputStream). Raw data sets,
// which are rare, still go through loadFile.
OFCondition load_part10(DcmFileFormat& file, int fd, std::uint64_t size, const fs::path& path) {
  FdInputStream stream(fd, size, path.string());
  OFCondition status = file.clear();
  if (status.bad()) return status;
  const E_FileReadMode before = file.getReadMode();
  file.setReadMode(ERM_autoDetect);
  file.transferInit();
  status = file.readUntilTag(stream, EXS_Unknown, EGL_noChange, kMaxInMemoryValue,
                             DCM_UndefinedTagKey);
  // A failed pread ends the stream as if the file ended there; DCMTK may take that for the
  // end of the data set, so the stream's own failure is the result.
  if (status.good() && !stream.good()) status = stream.status();
  file.transferEnd();
  file.setReadMode(before);
  return status;
}

}  // namespace

Result<DicomFile> DicomFile::open(const fs::path& path) {
  initialise();
  // The type is checked by name before anything is opened: opening a device (a tape that
  // rewinds, a tty) has side effects, and a FIFO blocks. The descriptor is then checked to
  // be that same regular file (a rename in between is refused). One descriptor serves the
  // sniff, the structure check and DCMTK's load.
  struct stat named{};
  if (::stat(path.c_str(), &named) != 0 || !S_ISREG(named.st_mode))
    return fail(ErrorCode::io, "not a readable file");
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid())
    return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != named.st_dev ||
      st.st_ino != named.st_ino)
    return fail(ErrorCode::io, "not a readable file");
  // Non-blocking was only for the open; reads of a regular file block as usual.
  if (const int flags = ::fcntl(fd.get(), F_GETFL);
      flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0)
    return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  const Sniff kind = sniff(fd.get());
  if (kind == Sniff::unreadable)
    return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  if (kind == Sniff::not_dicom) return fail(ErrorCode::not_dicom, "not a DICOM file");
  // Hostile structure (nesting bombs, deflate bombs, floods of elements) is refused before
  // DCMTK's recursive reader sees it.
  if (auto checked = check_structure(
          fd.get(), static_cast<std::uint64_t>(st.st_size),
          kind == Sniff::part10 ? FileLayout::part10 : FileLayout::raw_dataset);
      !checked)
    return std::unexpected(checked.error());
  auto impl = std::make_unique<Impl>();
  impl->input = InputIdentity::of(st);
  const OFCondition status =
      kind == Sniff::part10
          ? load_part10(impl->file, fd.get(), static_cast<std::uint64_t>(st.st_size), path)
          : impl->file.loadFile(OFFilename(path.c_str()), EXS_Unknown, EGL_noChange,
                                kMaxInMemoryValue, ERM_dataset);
  if (status.bad()) return fail(ErrorCode::malformed_dicom, parse_failure(impl->file, status));
  DcmDataset* dataset = impl->file.getDataset();
  if (dataset == nullptr || dataset->card() == 0)
    return fail(ErrorCode::malformed_dicom, "the file holds no data set");
  return DicomFile(std::move(impl));
}

namespace {

// A plan reads the start of every file: one open and one read of this much covers the
// leading attributes of most files (a header is a few KB; reading more costs a copy of the
// pixel data). Files with large values early on (icons, vendor blobs) take the slower path.
constexpr std::size_t kLeadingBytes = 16 * 1024;

// Up to `limit` bytes from the start of an open file; nullopt on a read error.
// The first bytes of a file, not zeroed before the read (a planner reads 16 KB of each of
// millions of files; zeroing them was a tenth of its instructions).
struct LeadingBytes {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  std::span<const std::uint8_t> bytes() const { return {data.get(), size}; }
};

std::optional<LeadingBytes> read_start(int fd, std::size_t limit) {
  LeadingBytes start{std::make_unique_for_overwrite<std::uint8_t[]>(limit), 0};
  while (start.size < limit) {
    const ssize_t n = ::read(fd, start.data.get() + start.size, limit - start.size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    start.size += static_cast<std::size_t>(n);
  }
  return start;
}

// The tags a structure walk may read itself: those of the data set (the meta header is
// read apart); with any other, nothing is captured and DCMTK reads them all.
// The structure walk captures values only of tags whose VR is UI in every edition (an
// implicit-VR value has no VR of its own: a US of bytes "12" would read as the string "12").
bool uid_tag(Tag tag) {
  constexpr std::array<std::uint32_t, 5> kUidTags = {0x00080016, 0x00080018, 0x0020000D,
                                                     0x0020000E, 0x00200052};
  return std::find(kUidTags.begin(), kUidTags.end(), tag.key()) != kUidTags.end();
}

ValueCapture capture_for(std::span<const Tag> tags, FileLayout layout) {
  ValueCapture capture;
  for (const Tag tag : tags) capture.keys.push_back(tag.key());
  if (layout != FileLayout::part10 || !std::all_of(tags.begin(), tags.end(), uid_tag))
    capture.ambiguous = true;
  return capture;
}

}  // namespace

Result<DicomFile::LeadingStrings> DicomFile::read_leading_strings(const fs::path& path,
                                                                 std::span<const Tag> tags) {
  // The first tag after the last one wanted (both readers stop there); a wanted (FFFF,FFFF)
  // would leave nothing to stop at, so the whole data set is read. With no tag wanted, the
  // walk stops at the data set's first element (the file is still sniffed and sized).
  const auto last = std::max_element(tags.begin(), tags.end(),
                                     [](Tag a, Tag b) { return a.key() < b.key(); });
  const std::uint32_t stop = last == tags.end()              ? 1
                             : last->key() == 0xFFFFFFFFU ? 0
                                                          : last->key() + 1;
  const DcmTagKey stop_key = stop == 0 ? DCM_UndefinedTagKey
                                       : DcmTagKey(static_cast<Uint16>(stop >> 16),
                                                   static_cast<Uint16>(stop & 0xFFFF));
  StructureLimits limits;
  limits.stop_at = stop;
  std::uint64_t size = 0;
  auto values_of = [&](std::unique_ptr<Impl> impl) {
    // Read through string_of, as a whole-file reader would; the partial object never leaves.
    const DicomFile partial(std::move(impl));
    LeadingStrings leading{{}, size};
    leading.values.reserve(tags.size());
    for (const Tag tag : tags) leading.values.push_back(partial.string_of(tag));
    return leading;
  };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(errno));
  struct stat st{};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  size = static_cast<std::uint64_t>(regular ? st.st_size : 0);
  auto start = regular ? read_start(fd, static_cast<std::size_t>(std::min<std::uint64_t>(
                                            size, kLeadingBytes)))
                       : std::nullopt;
  const int read_errno = errno;
  ::close(fd);
  if (!regular) return fail(ErrorCode::io, "not a readable file");
  if (!start) return fail(ErrorCode::io, std::string("cannot be read: ") + std::strerror(read_errno));
  const Sniff kind = sniff_head(std::span<const unsigned char>(
      start->data.get(), std::min<std::size_t>(start->size, 132)));
  if (kind == Sniff::not_dicom) return fail(ErrorCode::not_dicom, "not a DICOM file");
  const FileLayout layout = kind == Sniff::part10 ? FileLayout::part10 : FileLayout::raw_dataset;
  const bool whole = start->size == size;

  // The common case: the leading attributes lie in the bytes already read.
  ValueCapture capture = capture_for(tags, layout);
  auto checked = check_structure(start->bytes(), layout, limits, &capture);
  if (whole && !checked) return std::unexpected(checked.error());
  if (checked && (whole || checked->stopped_at_limit)) {
    // Plain UIDs, each once, in a walk that followed every byte: what DCMTK would return.
    // A wanted tag the walk never met is absent at the top level for DCMTK too (every top-level
    // occurrence is either captured or makes the capture ambiguous), so it stays nullopt here:
    // files without UIDs no longer cost a DCMTK parse and its dictionary (a third of plan's
    // instructions on third-party files).
    if (checked->conclusive && !capture.ambiguous)
      return LeadingStrings{std::move(capture.values), size};
    initialise();
    auto impl = std::make_unique<Impl>();
    DcmInputBufferStream stream;
    stream.setBuffer(start->data.get(), static_cast<offile_off_t>(start->size));
    stream.setEos();
    OFCondition status = EC_Normal;
    if (kind == Sniff::part10) {
      impl->file.setReadMode(ERM_autoDetect);
      impl->file.transferInit();
      status = impl->file.readUntilTag(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                       stop_key);
      impl->file.transferEnd();
    } else {
      DcmDataset& dataset = *impl->file.getDataset();
      dataset.transferInit();
      status = dataset.readUntilTag(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                    stop_key);
      dataset.transferEnd();
    }
    stream.releaseBuffer();
    if (status.bad()) return fail(ErrorCode::malformed_dicom, parse_failure(impl->file, status));
    return values_of(std::move(impl));
  }

  // Large values before the last tag wanted: the file itself, checked and read up to the stop.
  initialise();
  if (auto on_disk = check_structure(path, layout, limits); !on_disk)
    return std::unexpected(on_disk.error());
  auto impl = std::make_unique<Impl>();
  const OFCondition status = impl->file.loadFileUntilTag(
      OFFilename(path.c_str()), EXS_Unknown, EGL_noChange, kMaxInMemoryValue,
      kind == Sniff::part10 ? ERM_autoDetect : ERM_dataset, stop_key);
  if (status.bad()) return fail(ErrorCode::malformed_dicom, parse_failure(impl->file, status));
  return values_of(std::move(impl));
}

Result<DicomFile> DicomFile::open_bytes(std::span<const std::uint8_t> bytes) {
  initialise();
  const Sniff kind = sniff_head(std::span<const unsigned char>(
      bytes.data(), std::min<std::size_t>(bytes.size(), 132)));
  if (kind == Sniff::not_dicom) return fail(ErrorCode::not_dicom, "not a DICOM object");
  if (auto checked = check_structure(
          bytes, kind == Sniff::part10 ? FileLayout::part10 : FileLayout::raw_dataset);
      !checked)
    return std::unexpected(checked.error());
  auto impl = std::make_unique<Impl>();
  // As loadFile reads a file, from a stream over the caller's bytes; every value is copied
  // into DCMTK's object (a buffer stream cannot be re-read later), so the bytes need not
  // outlive the call.
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();
  OFCondition status = EC_Normal;
  if (kind == Sniff::part10) {
    impl->file.setReadMode(ERM_autoDetect);
    impl->file.transferInit();
    status = impl->file.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
    impl->file.transferEnd();
  } else {
    DcmDataset& dataset = *impl->file.getDataset();
    dataset.transferInit();
    status = dataset.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
    dataset.transferEnd();
  }
  stream.releaseBuffer();
  if (status.bad()) return fail(ErrorCode::malformed_dicom, parse_failure(impl->file, status));
  DcmDataset* dataset = impl->file.getDataset();
  if (dataset == nullptr || dataset->card() == 0)
    return fail(ErrorCode::malformed_dicom, "the object holds no data set");
  return DicomFile(std::move(impl));
}

bool DicomFile::is_dicomdir() const {
  OFString sop_class;
  impl_->file.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop_class);
  if (sop_class == UID_MediaStorageDirectoryStorage) return true;
  return impl_->file.getDataset()->tagExists(DCM_DirectoryRecordSequence);
}

std::string DicomFile::transfer_syntax_uid() const {
  const DcmXfer xfer(impl_->file.getDataset()->getOriginalXfer());
  return xfer.getXferID();
}

bool has_top_level(const DicomFile& file, Tag tag) {
  // DCMTK's search is not declared const but only reads: it walks the element list and loads
  // no value.
  DcmDataset* dataset = const_cast<DcmFileFormat&>(PixelAccess::impl(file).file).getDataset();
  return dataset != nullptr && dataset->tagExists(key_of(tag), OFFalse);
}

std::optional<std::string> DicomFile::string_of(Tag tag) const {
  DcmItem* item = impl_->file.getDataset();
  if (tag.group == 0x0002) item = impl_->file.getMetaInfo();
  DcmElement* element = nullptr;
  if (item->findAndGetElement(key_of(tag), element, OFFalse).bad() || element == nullptr)
    return std::nullopt;
  // raw_string reads text attributes stored as UN as the text they are (DCMTK would print
  // their bytes in hex, and "59\\45\\53" is never "YES").
  std::string value;
  if (element->ident() == EVR_UN) {
    value = raw_string(*element);
  } else {
    OFString text;  // also the decimal form of binary numbers (Rows, Columns...)
    if (element->getOFStringArray(text).bad()) return std::nullopt;
    value.assign(text.c_str(), text.length());
  }
  if (value.empty()) return std::nullopt;
  return value;
}

std::vector<CodeItem> DicomFile::code_sequence_of(Tag tag) const {
  std::vector<CodeItem> codes;
  DcmSequenceOfItems* sequence = nullptr;
  if (impl_->file.getDataset()->findAndGetSequence(key_of(tag), sequence).bad() ||
      sequence == nullptr)
    return codes;
  for (unsigned long i = 0; i < sequence->card(); ++i) {
    DcmItem* item = sequence->getItem(i);
    if (item == nullptr) continue;
    OFString value, scheme, meaning;
    item->findAndGetOFString(DCM_CodeValue, value);
    item->findAndGetOFString(DCM_CodingSchemeDesignator, scheme);
    item->findAndGetOFString(DCM_CodeMeaning, meaning);
    codes.push_back({value.c_str(), scheme.c_str(), meaning.c_str()});
  }
  return codes;
}

void DicomFile::visit(const std::function<void(const ElementView&)>& visit) const {
  std::vector<Tag> path;
  visit_item(*impl_->file.getDataset(), path, visit);
}

Result<TransformStats> DicomFile::transform(const ElementPolicy& policy) {
  Walker walker{policy, {}, {}};
  if (auto status = walker.walk_item(*impl_->file.getDataset(), 0); !status)
    return std::unexpected(status.error());
  return walker.stats;
}

Status DicomFile::set_string(Tag tag, std::string_view value) {
  const std::string text(value);
  if (impl_->file.getDataset()->putAndInsertString(key_of(tag), text.c_str(), OFTrue).bad())
    return fail(ErrorCode::internal, "cannot set " + tag.to_string());
  return {};
}

Status DicomFile::set_code_sequence(Tag tag, std::span<const CodeItem> codes) {
  DcmDataset& dataset = *impl_->file.getDataset();
  std::unique_ptr<DcmObject> old(dataset.remove(key_of(tag)));
  for (std::size_t i = 0; i < codes.size(); ++i) {
    DcmItem* item = nullptr;
    if (dataset.findOrCreateSequenceItem(key_of(tag), item, static_cast<long>(i)).bad() || !item)
      return fail(ErrorCode::internal, "cannot create " + tag.to_string());
    if (item->putAndInsertString(DCM_CodeValue, codes[i].value.c_str()).bad() ||
        item->putAndInsertString(DCM_CodingSchemeDesignator, codes[i].scheme.c_str()).bad() ||
        item->putAndInsertString(DCM_CodeMeaning, codes[i].meaning.c_str()).bad())
      return fail(ErrorCode::internal, "cannot fill " + tag.to_string());
  }
  return {};
}

namespace {

// Gives `file` a fresh meta header for writing; returns the transfer syntax to write in.
E_TransferSyntax new_meta_header(DicomFile& file, const MetaIdentity& identity) {
  auto& impl = PixelAccess::impl(file);
  DcmDataset& dataset = *impl.file.getDataset();
  E_TransferSyntax xfer = impl.output_xfer.value_or(dataset.getOriginalXfer());
  if (xfer == EXS_Unknown) xfer = EXS_LittleEndianImplicit;
  // Through string_of: a UID some writer stored as UN is read as the text it is, where
  // DCMTK would print its bytes in hex ("31\\2e\\32..." read as the UID "31").
  const std::string sop_class = file.string_of(Tag{0x0008, 0x0016}).value_or("");
  const std::string sop_instance = file.string_of(Tag{0x0008, 0x0018}).value_or("");

  // A fresh meta header: nothing of the input's survives (it may name the source system),
  // its 128-byte preamble included: DCMTK keeps the input's and writes it back, and a
  // preamble can hold anything (a TIFF header, text naming the patient). Assigning a new
  // DcmMetaInfo zeroes it.
  DcmMetaInfo& meta = *impl.file.getMetaInfo();
  meta = DcmMetaInfo();
  meta.clear();
  static constexpr Uint8 kVersion[2] = {0x00, 0x01};
  meta.putAndInsertUint8Array(DCM_FileMetaInformationVersion, kVersion, 2);
  meta.putAndInsertString(DCM_MediaStorageSOPClassUID, sop_class.c_str());
  meta.putAndInsertString(DCM_MediaStorageSOPInstanceUID, sop_instance.c_str());
  meta.putAndInsertString(DCM_TransferSyntaxUID, DcmXfer(xfer).getXferID());
  meta.putAndInsertString(DCM_ImplementationClassUID, identity.implementation_class_uid.c_str());
  meta.putAndInsertString(DCM_ImplementationVersionName,
                          identity.implementation_version_name.c_str());
  meta.putAndInsertUint32(DCM_FileMetaInformationGroupLength, 0);
  meta.computeGroupLengthAndPadding(EGL_withGL, EPD_noChange, EXS_LittleEndianExplicit,
                                    EET_ExplicitLength);

  return xfer;
}

}  // namespace

Status DicomFile::save(const fs::path& path, const MetaIdentity& identity) {
  const E_TransferSyntax xfer = new_meta_header(*this, identity);
  return save_checked(impl_->file, path, xfer, EWM_dontUpdateMeta, impl_->input);
}

Result<std::vector<std::uint8_t>> DicomFile::save_bytes(const MetaIdentity& identity) {
  const E_TransferSyntax xfer = new_meta_header(*this, identity);
  return write_to_memory(impl_->file, xfer, EWM_dontUpdateMeta);
}

}  // namespace radguard::dicom
