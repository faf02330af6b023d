#include "dicom/jpeg_blocks.hpp"

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

namespace radguard::dicom::jpeg {

namespace {

// libjpeg's default error handler prints and calls exit(); this one records the message and
// jumps back into transcode(), which turns it into a Result.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* manager = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, manager->message);
  std::longjmp(manager->jump, 1);
}
void no_output(j_common_ptr) {}

// Which MCUs to make uniform, and with which value per component (component space, 0-255).
struct Plan {
  unsigned mcu_width = 8, mcu_height = 8, mcus_across = 0, mcus_down = 0;
  std::vector<int> fill;  // per MCU and component; -1 where the MCU is kept
  std::size_t count = 0;
};

Plan make_plan(const BlankRequest& request, unsigned mcu_width, unsigned mcu_height,
               unsigned components) {
  Plan plan;
  plan.mcu_width = mcu_width;
  plan.mcu_height = mcu_height;
  plan.mcus_across = (request.width + mcu_width - 1) / mcu_width;
  plan.mcus_down = (request.height + mcu_height - 1) / mcu_height;
  const std::size_t mcus = static_cast<std::size_t>(plan.mcus_across) * plan.mcus_down;
  std::vector<double> sums(mcus * components, 0.0);
  std::vector<std::size_t> counts(mcus, 0);
  const unsigned s = request.samples;
  for (unsigned y = 0; y < request.height; ++y) {
    for (unsigned x = 0; x < request.width; ++x) {
      const std::size_t p = (static_cast<std::size_t>(y) * request.width + x) * s;
      bool differs = false;
      for (unsigned c = 0; c < s; ++c) differs |= request.before[p + c] != request.after[p + c];
      if (!differs) continue;
      const std::size_t m =
          static_cast<std::size_t>(y / mcu_height) * plan.mcus_across + x / mcu_width;
      ++counts[m];
      double values[3] = {0, 0, 0};
      for (unsigned c = 0; c < s; ++c) values[c] = request.after[p + c];
      if (request.space == FillSpace::ycbcr_from_rgb && s == 3) {
        const double r = values[0], g = values[1], b = values[2];
        values[0] = 0.299 * r + 0.587 * g + 0.114 * b;
        values[1] = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0;
        values[2] = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0;
      }
      for (unsigned c = 0; c < components; ++c) sums[m * components + c] += values[c];
    }
  }
  plan.fill.assign(mcus * components, -1);
  for (std::size_t m = 0; m < mcus; ++m) {
    if (counts[m] == 0) continue;
    ++plan.count;
    for (unsigned c = 0; c < components; ++c) {
      const double mean = sums[m * components + c] / static_cast<double>(counts[m]);
      plan.fill[m * components + c] = std::clamp(static_cast<int>(mean + 0.5), 0, 255);
    }
  }
  return plan;
}

// The quantised DC coefficient of a uniform block of `value` (0-255): a flat block's DC is
// 8 x (value - 128) before quantisation. Rounded towards the range's end for 0 and 255, so
// black and white come out exact (the decoder clamps).
JCOEF dc_for(int value, unsigned quantum) {
  const double dc = 8.0 * (value - 128) / static_cast<double>(quantum);
  if (value == 0) return static_cast<JCOEF>(std::floor(dc));
  if (value == 255) return static_cast<JCOEF>(std::ceil(dc));
  return static_cast<JCOEF>(std::lround(dc));
}

// The buffer jpeg_mem_dest allocates (with malloc) and grows; libjpeg writes the pointer and
// size through `data` and `size`, this object frees it.
struct MemoryDestination {
  unsigned char* data = nullptr;
  unsigned long size = 0;
  MemoryDestination() = default;
  MemoryDestination(const MemoryDestination&) = delete;
  MemoryDestination& operator=(const MemoryDestination&) = delete;
  ~MemoryDestination() { std::free(data); }  // NOLINT(cppcoreguidelines-no-malloc): libjpeg's
};

// Everything libjpeg touches lives here, allocated before setjmp, so the jump skips no
// destructor.
struct Context {
  ErrorManager error;
  jpeg_decompress_struct source;
  jpeg_compress_struct target;
  bool source_created = false, target_created = false;
  MemoryDestination output;
  const BlankRequest* request = nullptr;
  Plan plan;
  std::string failure;  // set before any jump
  ErrorCode failure_code = ErrorCode::malformed_dicom;
  unsigned largest_dc_quantum = 1;

  ~Context() {
    if (target_created) jpeg_destroy_compress(&target);
    if (source_created) jpeg_destroy_decompress(&source);
  }
};

// Returns false (with context.failure set) on any libjpeg error.
bool transcode(Context& context, std::span<const std::uint8_t> jpeg) {
  if (setjmp(context.error.jump) != 0) {
    context.failure = std::string("JPEG: ") + context.error.message;
    return false;
  }
  jpeg_decompress_struct& src = context.source;
  jpeg_compress_struct& dst = context.target;
  // Destroying a zeroed, never created object is a no-op, so the flags go first.
  context.source_created = true;
  jpeg_create_decompress(&src);
  context.target_created = true;
  jpeg_create_compress(&dst);
  jpeg_mem_src(&src, jpeg.data(), static_cast<unsigned long>(jpeg.size()));
  jpeg_save_markers(&src, JPEG_COM, 0xFFFF);
  for (int m = 0; m < 16; ++m) jpeg_save_markers(&src, JPEG_APP0 + m, 0xFFFF);
  jpeg_read_header(&src, TRUE);
  const BlankRequest& request = *context.request;
  if (src.image_width != request.width || src.image_height != request.height ||
      src.num_components != static_cast<int>(request.samples) || src.data_precision != 8) {
    context.failure = "JPEG: frame geometry differs from the image attributes";
    context.failure_code = ErrorCode::unsupported;
    return false;
  }
  // The geometry equals the request's, whose buffers the caller already holds: the
  // coefficient arrays allocated here are bounded by them.
  jvirt_barray_ptr* coefficients = jpeg_read_coefficients(&src);
  // libjpeg only warns about corrupt or truncated entropy-coded data (it pads a truncated
  // frame with a fake EOI); blanking such a frame could keep data the request removed.
  if (context.error.pub.num_warnings > 0) {
    context.failure = "JPEG: corrupt or truncated frame";
    return false;
  }
  const unsigned mcu_width = 8u * static_cast<unsigned>(src.max_h_samp_factor);
  const unsigned mcu_height = 8u * static_cast<unsigned>(src.max_v_samp_factor);
  context.plan =
      make_plan(request, mcu_width, mcu_height, static_cast<unsigned>(src.num_components));
  const Plan& plan = context.plan;
  const auto components = static_cast<unsigned>(src.num_components);
  for (unsigned c = 0; c < components; ++c) {
    jpeg_component_info& comp = src.comp_info[c];
    const JQUANT_TBL* table =
        comp.quant_table != nullptr ? comp.quant_table : src.quant_tbl_ptrs[comp.quant_tbl_no];
    if (table == nullptr || table->quantval[0] == 0) {
      context.failure = "JPEG: component without a quantisation table";
      return false;
    }
    context.largest_dc_quantum = std::max(context.largest_dc_quantum, unsigned{table->quantval[0]});
    const auto h = static_cast<unsigned>(comp.h_samp_factor);
    const auto v = static_cast<unsigned>(comp.v_samp_factor);
    for (unsigned my = 0; my < plan.mcus_down; ++my) {
      for (unsigned mx = 0; mx < plan.mcus_across; ++mx) {
        const int value =
            plan.fill[(static_cast<std::size_t>(my) * plan.mcus_across + mx) * components + c];
        if (value < 0) continue;
        const JCOEF dc = dc_for(value, table->quantval[0]);
        for (unsigned by = my * v; by < (my + 1) * v && by < comp.height_in_blocks; ++by) {
          JBLOCKARRAY row = (*src.mem->access_virt_barray)(reinterpret_cast<j_common_ptr>(&src),
                                                           coefficients[c], by, 1, TRUE);
          for (unsigned bx = mx * h; bx < (mx + 1) * h && bx < comp.width_in_blocks; ++bx) {
            JCOEF* block = row[0][bx];
            block[0] = dc;
            for (int k = 1; k < DCTSIZE2; ++k) block[k] = 0;
          }
        }
      }
    }
  }

  jpeg_copy_critical_parameters(&src, &dst);
  dst.optimize_coding = TRUE;
  dst.write_JFIF_header = src.saw_JFIF_marker;
  dst.write_Adobe_marker = src.saw_Adobe_marker;
  jpeg_mem_dest(&dst, &context.output.data, &context.output.size);
  jpeg_write_coefficients(&dst, coefficients);
  for (jpeg_saved_marker_ptr m = src.marker_list; m != nullptr; m = m->next) {
    const bool jfif =
        m->marker == JPEG_APP0 && m->data_length >= 5 && std::memcmp(m->data, "JFIF", 5) == 0;
    const bool adobe =
        m->marker == JPEG_APP0 + 14 && m->data_length >= 5 && std::memcmp(m->data, "Adobe", 5) == 0;
    if ((jfif && dst.write_JFIF_header) || (adobe && dst.write_Adobe_marker)) continue;
    jpeg_write_marker(&dst, m->marker, m->data, m->data_length);
  }
  jpeg_finish_compress(&dst);
  jpeg_finish_decompress(&src);
  if (context.error.pub.num_warnings > 0) {
    context.failure = "JPEG: corrupt or truncated frame";
    return false;
  }
  return true;
}

}  // namespace

bool starts_jpeg(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

Result<Blanked> blank_blocks(std::span<const std::uint8_t> jpeg, const BlankRequest& request) {
  const std::size_t samples =
      static_cast<std::size_t>(request.width) * request.height * request.samples;
  if ((request.samples != 1 && request.samples != 3) || request.before.size() != samples ||
      request.after.size() != samples)
    return fail(ErrorCode::usage, "JPEG: frame does not fit the request");
  if (!starts_jpeg(jpeg)) return fail(ErrorCode::malformed_dicom, "JPEG: frame has no SOI marker");
  auto context = std::make_unique<Context>();
  context->request = &request;
  context->source.err = jpeg_std_error(&context->error.pub);
  context->error.pub.error_exit = on_error;
  context->error.pub.output_message = no_output;
  context->target.err = &context->error.pub;
  if (!transcode(*context, jpeg)) return fail(context->failure_code, context->failure);
  Blanked result;
  result.jpeg.assign(context->output.data, context->output.data + context->output.size);
  if (result.jpeg.size() % 2 != 0) result.jpeg.push_back(0);
  result.mcus = context->plan.count;
  result.mcu_width = context->plan.mcu_width;
  result.mcu_height = context->plan.mcu_height;
  // A uniform block's DC is off by at most half a quantum (quantum / 16 levels); colour
  // conversion adds up to 1.772x the chroma error, and rounding (mean, IDCT, conversion) a few.
  result.tolerance = 3 + (3 * context->largest_dc_quantum + 15) / 16;
  return result;
}

}  // namespace radguard::dicom::jpeg
