#include "dicom/jpeg2000.hpp"

#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace radguard::dicom::j2k {

namespace {

constexpr std::uint8_t kJ2kStart[4] = {0xFF, 0x4F, 0xFF, 0x51};
constexpr std::uint8_t kJp2Start[12] = {0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50,
                                        0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A};

struct CodecDeleter {
  void operator()(opj_codec_t* codec) const { opj_destroy_codec(codec); }
};
struct StreamDeleter {
  void operator()(opj_stream_t* stream) const { opj_stream_destroy(stream); }
};
struct ImageDeleter {
  void operator()(opj_image_t* image) const { opj_image_destroy(image); }
};
using Codec = std::unique_ptr<opj_codec_t, CodecDeleter>;
using Stream = std::unique_ptr<opj_stream_t, StreamDeleter>;
using Image = std::unique_ptr<opj_image_t, ImageDeleter>;

// OpenJPEG reports errors through a callback; the first one becomes the failure's reason.
// Its messages describe the codestream (markers, sizes), never pixel values.
void keep_error(const char* message, void* client) {
  auto* text = static_cast<std::string*>(client);
  if (text->empty() && message != nullptr) {
    *text = message;
    while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  }
}
void ignore(const char*, void*) {}

struct Reader {
  std::span<const std::uint8_t> bytes;
  std::size_t position = 0;
};

OPJ_SIZE_T read_bytes(void* buffer, OPJ_SIZE_T count, void* user) {
  auto* reader = static_cast<Reader*>(user);
  const std::size_t left = reader->bytes.size() - reader->position;
  if (left == 0) return static_cast<OPJ_SIZE_T>(-1);
  const std::size_t n = std::min<std::size_t>(count, left);
  std::memcpy(buffer, reader->bytes.data() + reader->position, n);
  reader->position += n;
  return n;
}

OPJ_OFF_T skip_read(OPJ_OFF_T count, void* user) {
  auto* reader = static_cast<Reader*>(user);
  if (count < 0) return -1;
  const std::size_t left = reader->bytes.size() - reader->position;
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(count), left);
  reader->position += n;
  return static_cast<OPJ_OFF_T>(n);
}

OPJ_BOOL seek_read(OPJ_OFF_T position, void* user) {
  auto* reader = static_cast<Reader*>(user);
  if (position < 0 || static_cast<std::size_t>(position) > reader->bytes.size()) return OPJ_FALSE;
  reader->position = static_cast<std::size_t>(position);
  return OPJ_TRUE;
}

struct Writer {
  std::vector<std::uint8_t> bytes;
  std::size_t position = 0;
};

OPJ_SIZE_T write_bytes(void* buffer, OPJ_SIZE_T count, void* user) {
  auto* writer = static_cast<Writer*>(user);
  if (writer->position + count > writer->bytes.size())
    writer->bytes.resize(writer->position + count);
  std::memcpy(writer->bytes.data() + writer->position, buffer, count);
  writer->position += count;
  return count;
}

OPJ_OFF_T skip_write(OPJ_OFF_T count, void* user) {
  auto* writer = static_cast<Writer*>(user);
  if (count < 0) return -1;
  writer->position += static_cast<std::size_t>(count);
  if (writer->position > writer->bytes.size()) writer->bytes.resize(writer->position);
  return count;
}

OPJ_BOOL seek_write(OPJ_OFF_T position, void* user) {
  auto* writer = static_cast<Writer*>(user);
  if (position < 0) return OPJ_FALSE;
  writer->position = static_cast<std::size_t>(position);
  if (writer->position > writer->bytes.size()) writer->bytes.resize(writer->position);
  return OPJ_TRUE;
}

Error malformed(const std::string& reason) {
  return Error{ErrorCode::malformed_dicom, "JPEG 2000: " + reason};
}

Status check_image(const opj_image_t& image, const Expected& expected) {
  if (image.numcomps != expected.components)
    return std::unexpected(malformed("component count differs from Samples per Pixel"));
  if (image.x1 <= image.x0 || image.y1 <= image.y0 || image.x1 - image.x0 != expected.width ||
      image.y1 - image.y0 != expected.height)
    return std::unexpected(malformed("image size differs from Rows and Columns"));
  for (OPJ_UINT32 c = 0; c < image.numcomps; ++c) {
    const opj_image_comp_t& comp = image.comps[c];
    if (comp.dx != 1 || comp.dy != 1)
      return std::unexpected(malformed("subsampled components are not supported"));
    if (comp.prec == 0 || comp.prec > expected.bits_allocated || comp.prec > 16)
      return std::unexpected(malformed("component precision exceeds Bits Allocated"));
    if (comp.prec != image.comps[0].prec || comp.sgnd != image.comps[0].sgnd)
      return std::unexpected(malformed("components differ in precision or sign"));
  }
  return {};
}

}  // namespace

bool starts_codestream(std::span<const std::uint8_t> bytes) {
  if (bytes.size() >= sizeof kJ2kStart && std::equal(kJ2kStart, kJ2kStart + 4, bytes.begin()))
    return true;
  return bytes.size() >= sizeof kJp2Start && std::equal(kJp2Start, kJp2Start + 12, bytes.begin());
}

Result<Frame> decode(std::span<const std::uint8_t> codestream, const Expected& expected) {
  OPJ_CODEC_FORMAT format = OPJ_CODEC_J2K;
  if (codestream.size() >= sizeof kJp2Start &&
      std::equal(kJp2Start, kJp2Start + 12, codestream.begin())) {
    format = OPJ_CODEC_JP2;
  } else if (codestream.size() < sizeof kJ2kStart ||
             !std::equal(kJ2kStart, kJ2kStart + 4, codestream.begin())) {
    return std::unexpected(malformed("frame does not start with a codestream or JP2 signature"));
  }
  Codec codec(opj_create_decompress(format));
  if (!codec) return fail(ErrorCode::internal, "JPEG 2000: cannot create a decoder");
  std::string error;
  opj_set_error_handler(codec.get(), keep_error, &error);
  opj_set_warning_handler(codec.get(), ignore, nullptr);
  opj_set_info_handler(codec.get(), ignore, nullptr);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  // JP2 palette, component mapping and channel definition boxes (pclr, cmap, cdef) would let
  // opj_decode change the number of components after the header was checked: the samples
  // must stay what the codestream holds, matched against the DICOM attributes.
  parameters.flags |= OPJ_DPARAMETERS_IGNORE_PCLR_CMAP_CDEF_FLAG;
  if (!opj_setup_decoder(codec.get(), &parameters))
    return std::unexpected(malformed("decoder setup refused: " + error));
  opj_decoder_set_strict_mode(codec.get(), OPJ_TRUE);  // a truncated codestream is an error

  Reader reader{codestream, 0};
  Stream stream(opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE));
  if (!stream) return fail(ErrorCode::internal, "JPEG 2000: cannot create a stream");
  opj_stream_set_user_data(stream.get(), &reader, nullptr);
  opj_stream_set_user_data_length(stream.get(), codestream.size());
  opj_stream_set_read_function(stream.get(), read_bytes);
  opj_stream_set_skip_function(stream.get(), skip_read);
  opj_stream_set_seek_function(stream.get(), seek_read);

  opj_image_t* raw = nullptr;
  if (!opj_read_header(stream.get(), codec.get(), &raw)) {
    Image discard(raw);
    return std::unexpected(malformed("unreadable header" + (error.empty() ? "" : ": " + error)));
  }
  Image image(raw);
  // Check the header against the DICOM attributes before any tile is decoded (so the decoder
  // allocates no more than `expected` declares), and again after decoding.
  if (auto checked = check_image(*image, expected); !checked)
    return std::unexpected(checked.error());
  if (!opj_decode(codec.get(), stream.get(), image.get()) ||
      !opj_end_decompress(codec.get(), stream.get()))
    return std::unexpected(malformed("cannot decode" + (error.empty() ? "" : ": " + error)));
  if (auto checked = check_image(*image, expected); !checked)
    return std::unexpected(
        Error{checked.error().code, checked.error().message + " after decoding"});

  Frame frame;
  frame.width = expected.width;
  frame.height = expected.height;
  frame.components = expected.components;  // checked equal to numcomps after decoding
  frame.precision = image->comps[0].prec;
  frame.is_signed = image->comps[0].sgnd != 0;
  const std::size_t pixels = static_cast<std::size_t>(frame.width) * frame.height;
  frame.samples.resize(pixels * frame.components);
  for (unsigned c = 0; c < frame.components; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    // After decoding, a component's own size must still be the image's: never read past it.
    if (comp.data == nullptr || comp.w != frame.width || comp.h != frame.height)
      return std::unexpected(malformed("decoded component size differs from Rows and Columns"));
    for (std::size_t p = 0; p < pixels; ++p) frame.samples[p * frame.components + c] = comp.data[p];
  }
  if (frame.samples.size() != pixels * expected.components)
    return std::unexpected(malformed("decoded sample count differs from the image attributes"));
  return frame;
}

Result<std::vector<std::uint8_t>> encode(const EncodeSpec& spec,
                                         std::span<const std::int32_t> samples) {
  const std::size_t pixels = static_cast<std::size_t>(spec.width) * spec.height;
  if (spec.width == 0 || spec.height == 0 || (spec.components != 1 && spec.components != 3) ||
      spec.precision == 0 || spec.precision > 16 || samples.size() != pixels * spec.components)
    return fail(ErrorCode::usage, "JPEG 2000: frame does not fit the encoder's parameters");
  opj_image_cmptparm_t components[3];
  std::memset(components, 0, sizeof components);
  for (unsigned c = 0; c < spec.components; ++c) {
    components[c].dx = 1;
    components[c].dy = 1;
    components[c].w = spec.width;
    components[c].h = spec.height;
    components[c].prec = spec.precision;
    components[c].sgnd = spec.is_signed ? 1 : 0;
  }
  Image image(opj_image_create(spec.components, components,
                               spec.components == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY));
  if (!image) return fail(ErrorCode::internal, "JPEG 2000: cannot create an image");
  image->x0 = 0;
  image->y0 = 0;
  image->x1 = spec.width;
  image->y1 = spec.height;
  for (unsigned c = 0; c < spec.components; ++c)
    for (std::size_t p = 0; p < pixels; ++p)
      image->comps[c].data[p] = samples[p * spec.components + c];

  opj_cparameters_t parameters;
  opj_set_default_encoder_parameters(&parameters);
  parameters.tcp_numlayers = 1;
  parameters.cp_disto_alloc = 1;
  parameters.tcp_rates[0] = spec.wavelet == Wavelet::irreversible ? spec.ratio : 0;
  parameters.irreversible = spec.wavelet == Wavelet::irreversible ? 1 : 0;
  parameters.tcp_mct =
      spec.components == 3 && spec.transform == ColourTransform::mct ? char{1} : char{0};
  // The encoder refuses more resolution levels than the smaller side allows.
  int resolutions = 1;
  while (resolutions < 6 && (std::min(spec.width, spec.height) >> resolutions) >= 1) ++resolutions;
  parameters.numresolution = resolutions;

  Codec codec(opj_create_compress(OPJ_CODEC_J2K));
  if (!codec) return fail(ErrorCode::internal, "JPEG 2000: cannot create an encoder");
  std::string error;
  opj_set_error_handler(codec.get(), keep_error, &error);
  opj_set_warning_handler(codec.get(), ignore, nullptr);
  opj_set_info_handler(codec.get(), ignore, nullptr);
  if (!opj_setup_encoder(codec.get(), &parameters, image.get()))
    return fail(ErrorCode::internal, "JPEG 2000: encoder setup refused: " + error);
  Writer writer;
  Stream stream(opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_FALSE));
  if (!stream) return fail(ErrorCode::internal, "JPEG 2000: cannot create a stream");
  opj_stream_set_user_data(stream.get(), &writer, nullptr);
  opj_stream_set_write_function(stream.get(), write_bytes);
  opj_stream_set_skip_function(stream.get(), skip_write);
  opj_stream_set_seek_function(stream.get(), seek_write);
  if (!opj_start_compress(codec.get(), image.get(), stream.get()) ||
      !opj_encode(codec.get(), stream.get()) || !opj_end_compress(codec.get(), stream.get()))
    return fail(ErrorCode::internal, "JPEG 2000: encoding failed: " + error);
  stream.reset();  // flushes
  return std::move(writer.bytes);
}

}  // namespace radguard::dicom::j2k
