#pragma once
// NIfTI-1 single-file volumes (.nii, .nii.gz), read and written without a third-party NIfTI
// library so that the header round-trips byte for byte: a defaced file differs from its
// input only in the voxels the defacer changed.
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/result.hpp"
#include "volume/volume.hpp"

namespace radguard::volume {

struct NiftiImage {
  Volume volume;
  std::string header;  // the input's bytes before the voxel data (header and extensions)
};

// Reads a little-endian NIfTI-1 single file, gzip-compressed or not. Orientation comes from
// the sform, else the qform, else pixdim; converted from NIfTI's RAS to LPS.
// Fails with ErrorCode::io (unreadable or corrupt compression); ::unsupported for big-endian files,
// .hdr/.img pairs, more than one volume, sheared affines or voxel types other than
// uint8/int16/uint16/int32/float32; ::not_dicom when the file is not NIfTI-1 at all (too short,
// no 348-byte header, no n+1 magic), ::usage when it is NIfTI-1 but malformed. Thread-safe (no
// shared state).
[[nodiscard]] Result<NiftiImage> read_nifti(const std::filesystem::path& path);

// The bytes of `image` as a NIfTI-1 single file: its header as it is, then the voxel values
// converted back to the stored type (rounded and clamped), gzip-compressed when asked. Fails
// with ErrorCode::internal when the header does not match the volume. Thread-safe.
enum class NiftiCompression : std::uint8_t { none, gzip };
[[nodiscard]] Result<std::string> encode_nifti(const NiftiImage& image,
                                               NiftiCompression compression);

// Writes `image` to `path` (gzip-compressed when the name ends in .gz) atomically, voxel
// values converted back to the stored type (rounded and clamped). Fails with ErrorCode::io
// or ::internal when the header does not match the volume. Thread-safe.
[[nodiscard]] Status write_nifti(const std::filesystem::path& path, const NiftiImage& image);

// A fresh NIfTI-1 header (sform and qform from the volume's geometry, no scaling) for a
// volume that did not come from a NIfTI file. Never fails.
std::string make_nifti_header(const Volume& volume);

// The header of `header` (a NIfTI-1 header as read) without anything that can carry text
// about the patient: the free-text fields descrip, aux_file, intent_name, db_name and
// data_type are zeroed and the extensions are dropped (extension flag 0, vox_offset 352).
// Geometry, voxel type, scaling and intent codes are kept. Never fails on a header that
// read_nifti() accepted.
std::string clean_nifti_header(const std::string& header);

// True when the file name ends in .nii or .nii.gz.
bool is_nifti_name(const std::filesystem::path& path);

}  // namespace radguard::volume
