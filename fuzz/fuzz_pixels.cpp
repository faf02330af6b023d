// libFuzzer targets for pixel decoding, one per codec; FUZZ_CODEC picks the transfer syntax
// at build time: 1 JPEG baseline (lossy 8-bit, written back by blanking DCT blocks),
// 2 JPEG lossless (process 14 SV1), 3 JPEG-LS lossless, 4 JPEG 2000 (lossless syntax; lossy
// codestreams decode the same way), 5 RLE Lossless. Native and deflated data are fuzz_dicom's.
//
// The input is 8 bytes of image attributes followed by the encapsulated pixel data:
//   u16 LE Columns, u16 LE Rows (each 1..512), u8 flags (bit 0: 3 samples per pixel, bit 1:
//   16 bits allocated, bit 2: signed, bits 3-5: photometric interpretation, bit 6: planar
//   configuration 1), u8 Bits Stored (1..Bits Allocated), u8 Number of Frames (1..4), u8 spare,
// then the fragments: the rest split into Number of Frames equal parts, one fragment each
// (padded to even length). The fuzzer thus varies the codestream and the attributes that
// the decoders check it against. A decoded image gets one sample changed and is written back
// (re-encoding, or block blanking for lossy JPEG) and saved.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dicom/dicom_file.hpp"
#include "dicom/pixels.hpp"

namespace {

namespace fs = std::filesystem;

#if FUZZ_CODEC == 1
constexpr std::string_view kSyntax = "1.2.840.10008.1.2.4.50";
#elif FUZZ_CODEC == 2
constexpr std::string_view kSyntax = "1.2.840.10008.1.2.4.70";
#elif FUZZ_CODEC == 3
constexpr std::string_view kSyntax = "1.2.840.10008.1.2.4.80";
#elif FUZZ_CODEC == 4
constexpr std::string_view kSyntax = "1.2.840.10008.1.2.4.90";
#elif FUZZ_CODEC == 5
constexpr std::string_view kSyntax = "1.2.840.10008.1.2.5";
#endif

const fs::path& scratch() {
  static const fs::path folder = [] {
    const fs::path p = fs::temp_directory_path() / ("radguard-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return folder;
}

// Explicit VR Little Endian element writers.
void put16(std::string& out, unsigned v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xffff);
  put16(out, v >> 16);
}
void element(std::string& out, unsigned group, unsigned elem, std::string_view vr,
             std::string value, char pad = ' ') {
  if (value.size() % 2) value.push_back(pad);
  put16(out, group);
  put16(out, elem);
  out.append(vr);
  put16(out, static_cast<unsigned>(value.size()));
  out += value;
}
void ui(std::string& out, unsigned group, unsigned elem, std::string_view uid) {
  element(out, group, elem, "UI", std::string(uid), '\0');
}
void us(std::string& out, unsigned group, unsigned elem, unsigned v) {
  std::string value;
  put16(value, v);
  element(out, group, elem, "US", value);
}

std::string make_file(std::span<const std::uint8_t> data) {
  const unsigned columns = std::clamp(data[0] | (data[1] << 8), 1, 512);
  const unsigned rows = std::clamp(data[2] | (data[3] << 8), 1, 512);
  const unsigned flags = data[4];
  const unsigned samples = (flags & 1) ? 3 : 1;
  const unsigned bits_allocated = (flags & 2) ? 16 : 8;
  const unsigned bits_stored = std::clamp<unsigned>(data[5], 1, bits_allocated);
  const unsigned frames = std::clamp<unsigned>(data[6], 1, 4);
  static constexpr std::array<std::string_view, 2> kGrey{"MONOCHROME2", "MONOCHROME1"};
  static constexpr std::array<std::string_view, 5> kColour{"RGB", "YBR_FULL", "YBR_FULL_422",
                                                           "YBR_RCT", "YBR_ICT"};
  const unsigned which = (flags >> 3) & 7;
  const std::string_view photometric =
      samples == 1 ? kGrey[which % kGrey.size()] : kColour[which % kColour.size()];

  std::string meta;
  put16(meta, 0x0002);
  put16(meta, 0x0001);
  meta += "OB";
  put16(meta, 0);
  put32(meta, 2);
  meta += std::string("\0\1", 2);
  ui(meta, 0x0002, 0x0002, "1.2.840.10008.5.1.4.1.1.7");
  ui(meta, 0x0002, 0x0003, "1.2.3.4.5");
  ui(meta, 0x0002, 0x0010, kSyntax);

  std::string out(128, '\0');
  out += "DICM";
  put16(out, 0x0002);
  put16(out, 0x0000);
  out += "UL";
  put16(out, 4);
  put32(out, static_cast<std::uint32_t>(meta.size()));
  out += meta;
  ui(out, 0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.7");
  ui(out, 0x0008, 0x0018, "1.2.3.4.5");
  us(out, 0x0028, 0x0002, samples);
  element(out, 0x0028, 0x0004, "CS", std::string(photometric));
  if (samples == 3) us(out, 0x0028, 0x0006, (flags >> 6) & 1);
  element(out, 0x0028, 0x0008, "IS", std::to_string(frames));
  us(out, 0x0028, 0x0010, rows);
  us(out, 0x0028, 0x0011, columns);
  us(out, 0x0028, 0x0100, bits_allocated);
  us(out, 0x0028, 0x0101, bits_stored);
  us(out, 0x0028, 0x0102, bits_stored - 1);
  us(out, 0x0028, 0x0103, (flags >> 2) & 1);
  // Pixel Data, encapsulated: an empty basic offset table, then one fragment per frame.
  put16(out, 0x7fe0);
  put16(out, 0x0010);
  out += "OB";
  put16(out, 0);
  put32(out, 0xffffffff);
  auto item = [&](std::span<const std::uint8_t> bytes) {
    put16(out, 0xfffe);
    put16(out, 0xe000);
    const std::size_t padded = bytes.size() + bytes.size() % 2;
    put32(out, static_cast<std::uint32_t>(padded));
    out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (bytes.size() % 2) out.push_back('\0');
  };
  item({});
  const std::span<const std::uint8_t> rest = data.subspan(8);
  const std::size_t part = rest.size() / frames;
  for (unsigned f = 0; f < frames; ++f)
    item(rest.subspan(f * part, f + 1 == frames ? rest.size() - f * part : part));
  put16(out, 0xfffe);
  put16(out, 0xe0dd);
  put32(out, 0);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace radguard;
  if (size < 8) return 0;
  const fs::path input = scratch() / "input.dcm";
  {
    const std::string bytes = make_file({data, size});
    std::ofstream out(input, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto file = dicom::DicomFile::open(input);
  if (!file) return 0;
  if (!dicom::check_pixel_consistency(*file)) return 0;
  auto image = dicom::decode_pixels(*file);
  if (!image || image->frames.empty() || image->frames[0].empty()) return 0;
  image->frames[0][0] = static_cast<std::uint16_t>(image->frames[0][0] ^ 1);
  if (!dicom::encode_pixels(*file, *image)) return 0;
  (void)file->save(scratch() / "output.dcm", {"1.2.3", "FUZZ"});
  return 0;
}
