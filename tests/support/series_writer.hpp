#pragma once
// Writes a volume as a DICOM image series (one file per k-slice), for the defacing tests and
// benchmarks.
#include <filesystem>
#include <string>
#include <vector>

#include "volume/volume.hpp"

namespace radguard::testing {

struct SeriesSpec {
  std::string modality = "CT";
  std::string series_uid = "1.2.826.0.1.3680043.2.1125.3.100";
  std::string body_part = "HEAD";
  std::string description = "Head routine";
  std::vector<int> omit;      // slice indices not written
  bool shuffle_names = true;  // file names in no particular slice order
  bool existing_method_code = false;  // a De-identification Method Code Sequence item...
  std::string method_code = "113101";  // ...with this code (113102: claims defacing)
  double shift_per_slice_mm = 0;  // in-plane shift along the column direction (gantry tilt)
};

// One DICOM file per k-slice of `v` (voxels are physical values: HU for CT). CT is stored
// as signed 16-bit with Rescale Intercept -1024; MR as unsigned 16-bit. Returns the paths in
// slice order.
std::vector<std::filesystem::path> write_series(const volume::Volume& v,
                                                const std::filesystem::path& dir,
                                                const SeriesSpec& spec);

// The whole of `v` as ONE enhanced multi-frame file (Enhanced CT/MR Image Storage): geometry
// and rescale in the functional groups (Pixel Measures, Plane Orientation and, for CT, Pixel
// Value Transformation shared; Plane Position per frame), no top-level Image Position,
// Orientation or Pixel Spacing. Frames are stored in `frame_order` (slice index per frame;
// empty: 0, 1, 2 ...). Stored values as write_series.
std::filesystem::path write_enhanced(const volume::Volume& v, const std::filesystem::path& path,
                                     const SeriesSpec& spec,
                                     const std::vector<int>& frame_order = {});

}  // namespace radguard::testing
