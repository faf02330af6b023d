#include "volume/nifti.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "core/atomic_file.hpp"
#include "volume/gzip_file.hpp"

namespace radguard::volume {

namespace {

constexpr std::size_t kHeaderSize = 348;

template <typename T>
T load(const std::string& bytes, std::size_t offset) {
  T value{};
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

Result<std::string> gzip(const std::string& bytes) {
  z_stream stream{};
  // windowBits 15 + 16 asks zlib for a gzip wrapper rather than a zlib one.
  if (deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail(ErrorCode::internal, "zlib deflateInit2 failed");
  std::string out(deflateBound(&stream, static_cast<uLong>(bytes.size())) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) return fail(ErrorCode::internal, "zlib deflate did not finish");
  return out;
}

std::size_t bytes_per_voxel(VoxelType type) {
  switch (type) {
    case VoxelType::uint8:
      return 1;
    case VoxelType::int16:
    case VoxelType::uint16:
      return 2;
    case VoxelType::int32:
    case VoxelType::float32:
      return 4;
  }
  return 0;
}

template <typename T>
void decode(const char* src, std::vector<float>& dst) {
  for (std::size_t n = 0; n < dst.size(); ++n) {
    T v;
    std::memcpy(&v, src + n * sizeof(T), sizeof(T));
    dst[n] = static_cast<float>(v);
  }
}

template <typename T>
void encode(const std::vector<float>& src, char* dst) {
  for (std::size_t n = 0; n < src.size(); ++n) {
    T v;
    if constexpr (std::is_floating_point_v<T>) {
      v = static_cast<T>(src[n]);
    } else {
      const double r = std::nearbyint(static_cast<double>(src[n]));
      const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
      const double hi = static_cast<double>(std::numeric_limits<T>::max());
      v = static_cast<T>(r < lo ? lo : (r > hi ? hi : r));
    }
    std::memcpy(dst + n * sizeof(T), &v, sizeof(T));
  }
}

// Column a of the 4x4 affine (RAS) becomes axis a in LPS.
Status set_geometry(Volume& v, const double m[3][4], const std::string& name) {
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      if (!std::isfinite(m[r][c]))
        return fail(ErrorCode::unsupported, name + ": non-finite voxel-to-world affine");
  for (int a = 0; a < 3; ++a) {
    Vec3 col{-m[0][a], -m[1][a], m[2][a]};
    const double len = std::sqrt(col[0] * col[0] + col[1] * col[1] + col[2] * col[2]);
    if (!(len > 0))
      return fail(ErrorCode::unsupported, name + ": degenerate voxel-to-world affine");
    v.spacing[a] = len;
    v.axes[a] = Vec3{col[0] / len, col[1] / len, col[2] / len};
  }
  v.origin = Vec3{-m[0][3], -m[1][3], m[2][3]};
  if (!axes_orthonormal(v.axes))
    return fail(ErrorCode::unsupported, name + ": sheared voxel-to-world affine");
  return {};
}

}  // namespace

bool is_nifti_name(const std::filesystem::path& path) {
  const std::string s = path.filename().string();
  auto ends = [&](std::string_view suffix) {
    return s.size() > suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".nii") || ends(".nii.gz");
}

Result<NiftiImage> read_nifti(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto bytes = read_maybe_gzipped(path);
  if (!bytes) return std::unexpected(bytes.error());
  const std::string& b = *bytes;
  if (b.size() < kHeaderSize + 4) return fail(ErrorCode::not_dicom, name + ": too short to be NIfTI-1");
  const auto sizeof_hdr = load<std::int32_t>(b, 0);
  if (sizeof_hdr != 348) {
    if (sizeof_hdr == 0x5c010000)
      return fail(ErrorCode::unsupported, name + ": big-endian NIfTI is not supported");
    return fail(ErrorCode::not_dicom, name + ": not a NIfTI-1 file");
  }
  if (std::memcmp(b.data() + 344, "n+1\0", 4) != 0) {
    if (std::memcmp(b.data() + 344, "ni1\0", 4) == 0)
      return fail(ErrorCode::unsupported, name + ": .hdr/.img pairs are not supported");
    return fail(ErrorCode::not_dicom, name + ": not a NIfTI-1 file (bad magic)");
  }
  std::int16_t dim[8];
  for (int n = 0; n < 8; ++n) dim[n] = load<std::int16_t>(b, 40 + 2 * static_cast<std::size_t>(n));
  if (dim[0] < 3 || dim[0] > 7) return fail(ErrorCode::unsupported, name + ": not a 3D volume");
  for (int n = 4; n <= dim[0]; ++n)
    if (dim[n] > 1) return fail(ErrorCode::unsupported, name + ": holds more than one volume");
  if (dim[1] < 1 || dim[2] < 1 || dim[3] < 1)
    return fail(ErrorCode::usage, name + ": empty dimensions");

  NiftiImage image;
  Volume& v = image.volume;
  v.dims = {dim[1], dim[2], dim[3]};
  if (v.voxel_count() > kMaxVoxels)
    return fail(ErrorCode::unsupported, name + ": refused: " + std::to_string(v.voxel_count()) +
                                            " voxels, more than the " + std::to_string(kMaxVoxels) +
                                            " radguard reads");
  switch (load<std::int16_t>(b, 70)) {
    case 2:
      v.stored_type = VoxelType::uint8;
      break;
    case 4:
      v.stored_type = VoxelType::int16;
      break;
    case 512:
      v.stored_type = VoxelType::uint16;
      break;
    case 8:
      v.stored_type = VoxelType::int32;
      break;
    case 16:
      v.stored_type = VoxelType::float32;
      break;
    default:
      return fail(ErrorCode::unsupported, name + ": voxel type not supported");
  }
  const float vox_offset = load<float>(b, 108);
  if (!(vox_offset >= 352.0f) || vox_offset > static_cast<float>(b.size()))
    return fail(ErrorCode::usage, name + ": bad vox_offset");
  const auto data_start = static_cast<std::size_t>(vox_offset);
  const std::size_t need = v.voxel_count() * bytes_per_voxel(v.stored_type);
  if (b.size() - data_start < need) return fail(ErrorCode::usage, name + ": truncated voxel data");
  const float slope = load<float>(b, 112);
  const float inter = load<float>(b, 116);
  if (std::isfinite(slope) && slope != 0.0f) {
    v.value_slope = slope;
    v.value_intercept = std::isfinite(inter) ? inter : 0.0;
  }

  const auto qform_code = load<std::int16_t>(b, 252);
  const auto sform_code = load<std::int16_t>(b, 254);
  double m[3][4] = {};
  if (sform_code > 0) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c)
        m[r][c] = load<float>(
            b, 280 + 16 * static_cast<std::size_t>(r) + 4 * static_cast<std::size_t>(c));
  } else {
    double pix[4];
    for (int n = 0; n < 4; ++n) pix[n] = load<float>(b, 76 + 4 * static_cast<std::size_t>(n));
    for (int n = 1; n < 4; ++n)
      if (!(pix[n] > 0)) pix[n] = 1.0;
    if (qform_code > 0) {
      const double qb = load<float>(b, 256), qc = load<float>(b, 260), qd = load<float>(b, 264);
      const double qa = std::sqrt(std::max(0.0, 1.0 - (qb * qb + qc * qc + qd * qd)));
      const double R[3][3] = {
          {qa * qa + qb * qb - qc * qc - qd * qd, 2 * (qb * qc - qa * qd), 2 * (qb * qd + qa * qc)},
          {2 * (qb * qc + qa * qd), qa * qa + qc * qc - qb * qb - qd * qd, 2 * (qc * qd - qa * qb)},
          {2 * (qb * qd - qa * qc), 2 * (qc * qd + qa * qb),
           qa * qa + qd * qd - qc * qc - qb * qb}};
      const double qfac = pix[0] < 0 ? -1.0 : 1.0;
      for (int r = 0; r < 3; ++r) {
        m[r][0] = R[r][0] * pix[1];
        m[r][1] = R[r][1] * pix[2];
        m[r][2] = R[r][2] * pix[3] * qfac;
        m[r][3] = load<float>(b, 268 + 4 * static_cast<std::size_t>(r));
      }
    } else {
      for (int r = 0; r < 3; ++r) m[r][r] = pix[r + 1];
    }
  }
  if (auto geometry = set_geometry(v, m, name); !geometry) return std::unexpected(geometry.error());

  v.voxels.resize(v.voxel_count());
  const char* src = b.data() + data_start;
  switch (v.stored_type) {
    case VoxelType::uint8:
      decode<std::uint8_t>(src, v.voxels);
      break;
    case VoxelType::int16:
      decode<std::int16_t>(src, v.voxels);
      break;
    case VoxelType::uint16:
      decode<std::uint16_t>(src, v.voxels);
      break;
    case VoxelType::int32:
      for (std::size_t n = 0; n < v.voxels.size(); ++n) {
        const auto x = load<std::int32_t>(b, data_start + 4 * n);
        if (x > (1 << 24) || x < -(1 << 24))
          return fail(ErrorCode::unsupported,
                      name + ": int32 voxels beyond +-2^24 are not supported");
        v.voxels[n] = static_cast<float>(x);
      }
      break;
    case VoxelType::float32:
      decode<float>(src, v.voxels);
      break;
  }
  image.header.assign(b.data(), data_start);
  return image;
}

std::string make_nifti_header(const Volume& v) {
  std::string h(kHeaderSize + 4, '\0');
  auto put = [&h](std::size_t offset, auto value) {
    std::memcpy(h.data() + offset, &value, sizeof value);
  };
  put(0, std::int32_t{348});
  const std::int16_t dim[8] = {3,
                               static_cast<std::int16_t>(v.dims[0]),
                               static_cast<std::int16_t>(v.dims[1]),
                               static_cast<std::int16_t>(v.dims[2]),
                               1,
                               1,
                               1,
                               1};
  for (std::size_t n = 0; n < 8; ++n) put(40 + 2 * n, dim[n]);
  std::int16_t datatype = 4;
  std::int16_t bitpix = 16;
  switch (v.stored_type) {
    case VoxelType::uint8:
      datatype = 2;
      bitpix = 8;
      break;
    case VoxelType::int16:
      datatype = 4;
      bitpix = 16;
      break;
    case VoxelType::uint16:
      datatype = 512;
      bitpix = 16;
      break;
    case VoxelType::int32:
      datatype = 8;
      bitpix = 32;
      break;
    case VoxelType::float32:
      datatype = 16;
      bitpix = 32;
      break;
  }
  put(70, datatype);
  put(72, bitpix);
  put(76, 1.0f);
  for (std::size_t n = 0; n < 3; ++n) put(80 + 4 * n, static_cast<float>(v.spacing[n]));
  put(108, 352.0f);
  put(112, static_cast<float>(v.value_slope));
  put(116, static_cast<float>(v.value_intercept));
  h[123] = 2;                 // xyzt_units: millimetres
  put(254, std::int16_t{2});  // sform_code: aligned anatomical
  // LPS back to RAS: x and y change sign.
  const double sign[3] = {-1.0, -1.0, 1.0};
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t c = 0; c < 3; ++c)
      put(280 + 16 * r + 4 * c, static_cast<float>(sign[r] * v.axes[c][r] * v.spacing[c]));
    put(280 + 16 * r + 12, static_cast<float>(sign[r] * v.origin[r]));
  }
  std::memcpy(h.data() + 344, "n+1\0", 4);
  return h;
}

std::string clean_nifti_header(const std::string& header) {
  std::string out = header.substr(0, std::min(header.size(), kHeaderSize));
  out.resize(kHeaderSize, '\0');
  // (offset, length) of each text field of the NIfTI-1 header.
  constexpr std::pair<std::size_t, std::size_t> kText[] = {
      {4, 10},    // data_type (unused ANALYZE field)
      {14, 18},   // db_name (unused ANALYZE field)
      {148, 80},  // descrip
      {228, 24},  // aux_file
      {328, 16},  // intent_name
  };
  for (const auto& [offset, length] : kText) std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(offset), length, '\0');
  const float vox_offset = 352.0f;
  std::memcpy(out.data() + 108, &vox_offset, sizeof vox_offset);
  out.append(4, '\0');  // extension flag: none
  return out;
}

Result<std::string> encode_nifti(const NiftiImage& image, NiftiCompression compression) {
  const Volume& v = image.volume;
  if (image.header.size() < kHeaderSize + 4 || v.voxels.size() != v.voxel_count())
    return fail(ErrorCode::internal, "NIfTI header and volume do not match");
  std::string bytes = image.header;
  const std::size_t start = bytes.size();
  bytes.resize(start + v.voxel_count() * bytes_per_voxel(v.stored_type));
  char* dst = bytes.data() + start;
  switch (v.stored_type) {
    case VoxelType::uint8:
      encode<std::uint8_t>(v.voxels, dst);
      break;
    case VoxelType::int16:
      encode<std::int16_t>(v.voxels, dst);
      break;
    case VoxelType::uint16:
      encode<std::uint16_t>(v.voxels, dst);
      break;
    case VoxelType::int32:
      encode<std::int32_t>(v.voxels, dst);
      break;
    case VoxelType::float32:
      encode<float>(v.voxels, dst);
      break;
  }
  if (compression == NiftiCompression::gzip) return gzip(bytes);
  return bytes;
}

Status write_nifti(const std::filesystem::path& path, const NiftiImage& image) {
  const std::string s = path.filename().string();
  const bool compressed = s.size() > 3 && s.compare(s.size() - 3, 3, ".gz") == 0;
  auto bytes =
      encode_nifti(image, compressed ? NiftiCompression::gzip : NiftiCompression::none);
  if (!bytes) return std::unexpected(bytes.error());
  using std::filesystem::perms;
  return write_file_atomically(path, *bytes,
                               perms::owner_read | perms::owner_write | perms::group_read |
                                   perms::others_read);
}

}  // namespace radguard::volume
