// Lossy JPEG redaction: blanking blocks in the compressed data (dicom::jpeg::blank_blocks)
// against decoding and recompressing the frame. One synthetic 640x480 frame, grey and colour
// 4:2:0, quality 90, a 200x30 box set to black. Prints time per frame, sizes and how many
// samples outside the blanked blocks changed. Run: ./build/bench/jpeg_blocks_bench
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

// clang-format off
#include <jpeglib.h>  // after <cstdio>
// clang-format on

#include "dicom/jpeg_blocks.hpp"

namespace {

using radguard::dicom::jpeg::BlankRequest;
using radguard::dicom::jpeg::FillSpace;

constexpr unsigned kWidth = 640, kHeight = 480;

std::vector<std::uint8_t> encode(const std::vector<std::uint16_t>& frame, int components,
                                 int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = kWidth;
  cinfo.image_height = kHeight;
  cinfo.input_components = components;
  cinfo.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);  // colour: libjpeg's default 4:2:0
  std::vector<JSAMPLE> row(static_cast<std::size_t>(kWidth) * static_cast<unsigned>(components));
  while (cinfo.next_scanline < cinfo.image_height) {
    const std::size_t start = static_cast<std::size_t>(cinfo.next_scanline) * row.size();
    for (std::size_t i = 0; i < row.size(); ++i) row[i] = static_cast<JSAMPLE>(frame[start + i]);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

std::vector<std::uint16_t> decode(const std::vector<std::uint8_t>& jpeg, int components) {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_start_decompress(&cinfo);
  std::vector<std::uint16_t> out;
  std::vector<JSAMPLE> row(static_cast<std::size_t>(cinfo.output_width) *
                           static_cast<unsigned>(components));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    out.insert(out.end(), row.begin(), row.end());
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

}  // namespace

int main() {
  constexpr unsigned x0 = 37, y0 = 21, x1 = 237, y1 = 51;  // the box
  constexpr int kRuns = 30;
  for (const int components : {1, 3}) {
    const auto c = static_cast<unsigned>(components);
    std::mt19937 random(1);
    std::uniform_int_distribution<int> noise(-10, 10);
    std::vector<std::uint16_t> frame(static_cast<std::size_t>(kWidth) * kHeight * c);
    for (unsigned y = 0; y < kHeight; ++y)
      for (unsigned x = 0; x < kWidth; ++x)
        for (unsigned s = 0; s < c; ++s)
          frame[(static_cast<std::size_t>(y) * kWidth + x) * c + s] = static_cast<std::uint16_t>(
              std::clamp(128.0 + 60.0 * std::sin(x / 23.0 + s) * std::cos(y / 17.0) + noise(random),
                         0.0, 255.0));
    const auto jpeg = encode(frame, components, 90);
    const auto before = decode(jpeg, components);
    auto after = before;
    for (unsigned y = y0; y < y1; ++y)
      for (unsigned x = x0; x < x1; ++x)
        for (unsigned s = 0; s < c; ++s)
          after[(static_cast<std::size_t>(y) * kWidth + x) * c + s] = 0;
    BlankRequest request;
    request.width = kWidth;
    request.height = kHeight;
    request.samples = c;
    request.before = before;
    request.after = after;
    request.space = components == 3 ? FillSpace::ycbcr_from_rgb : FillSpace::as_decoded;

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::uint8_t> blanked;
    for (int i = 0; i < kRuns; ++i) {
      auto result = radguard::dicom::jpeg::blank_blocks(jpeg, request);
      if (!result) {
        std::fprintf(stderr, "blank_blocks: %s\n", result.error().message.c_str());
        return 1;
      }
      blanked = std::move(result->jpeg);
    }
    const auto t1 = std::chrono::steady_clock::now();
    std::vector<std::uint8_t> recompressed;
    for (int i = 0; i < kRuns; ++i) {
      const auto decoded = decode(jpeg, components);
      recompressed = encode(after, components, 90);
    }
    const auto t2 = std::chrono::steady_clock::now();

    // Samples outside the blanked MCUs (and the one-pixel chroma blend around them).
    const unsigned mcu = components == 3 ? 16 : 8;
    auto changed_outside = [&](const std::vector<std::uint16_t>& back) {
      std::size_t changed = 0, total = 0;
      for (unsigned y = 0; y < kHeight; ++y)
        for (unsigned x = 0; x < kWidth; ++x) {
          const bool near = x + 1 >= x0 / mcu * mcu && x <= (x1 + mcu - 1) / mcu * mcu &&
                            y + 1 >= y0 / mcu * mcu && y <= (y1 + mcu - 1) / mcu * mcu;
          if (near) continue;
          for (unsigned s = 0; s < c; ++s) {
            const std::size_t i = (static_cast<std::size_t>(y) * kWidth + x) * c + s;
            ++total;
            if (back[i] != before[i]) ++changed;
          }
        }
      return 100.0 * static_cast<double>(changed) / static_cast<double>(total);
    };
    const double ms_blank = std::chrono::duration<double, std::milli>(t1 - t0).count() / kRuns;
    const double ms_recompress = std::chrono::duration<double, std::milli>(t2 - t1).count() / kRuns;
    std::printf(
        "%-12s blank %6.2f ms  decode+recompress %6.2f ms  bytes %zu -> %zu (blank) / %zu "
        "(recompress)  samples changed outside the blocks: blank %.2f%%, recompress %.2f%%\n",
        components == 3 ? "colour 4:2:0" : "grey", ms_blank, ms_recompress, jpeg.size(),
        blanked.size(), recompressed.size(), changed_outside(decode(blanked, components)),
        changed_outside(decode(recompressed, components)));
  }
  return 0;
}
