#include "support/series_writer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "support/fixtures.hpp"

namespace radguard::testing {

using volume::Vec3;

namespace {
std::string ds(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  return buffer;
}

}  // namespace

// One DICOM file per k-slice of `v` (voxels are physical values: HU for CT). CT is stored
// as signed 16-bit with Rescale Intercept -1024; MR as unsigned 16-bit.
std::vector<fs::path> write_series(const volume::Volume& v, const fs::path& dir,
                                   const SeriesSpec& spec) {
  std::vector<int> order(v.dims[2]);
  for (int k = 0; k < v.dims[2]; ++k) order[k] = k;
  if (spec.shuffle_names) std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::vector<fs::path> paths;
  const bool ct = spec.modality == "CT";
  for (int k = 0; k < v.dims[2]; ++k) {
    if (std::find(spec.omit.begin(), spec.omit.end(), k) != spec.omit.end()) continue;
    const std::string sop = spec.series_uid + "." + std::to_string(k + 1);
    auto file = testing::make_ct("PID12345", sop, static_cast<unsigned>(v.dims[1]),
                                 static_cast<unsigned>(v.dims[0]));
    DcmDataset& d = *file->getDataset();
    d.putAndInsertString(DCM_SOPClassUID, ct ? UID_CTImageStorage : UID_MRImageStorage);
    d.putAndInsertString(DCM_Modality, spec.modality.c_str());
    d.putAndInsertString(DCM_SeriesInstanceUID, spec.series_uid.c_str());
    d.putAndInsertString(DCM_StudyDescription, spec.description.c_str());
    d.putAndInsertString(DCM_SeriesDescription, spec.description.c_str());
    if (!spec.body_part.empty()) d.putAndInsertString(DCM_BodyPartExamined, spec.body_part.c_str());
    d.putAndInsertString(DCM_InstanceNumber, std::to_string(k + 1).c_str());
    d.putAndInsertString(DCM_BurnedInAnnotation, "NO");
    const auto& a = v.axes;
    const std::string orientation = ds(a[0][0]) + "\\" + ds(a[0][1]) + "\\" + ds(a[0][2]) + "\\" +
                                    ds(a[1][0]) + "\\" + ds(a[1][1]) + "\\" + ds(a[1][2]);
    d.putAndInsertString(DCM_ImageOrientationPatient, orientation.c_str());
    Vec3 p = v.to_patient(0, 0, k);
    for (int c = 0; c < 3; ++c) p[c] += k * spec.shift_per_slice_mm * a[1][c];
    d.putAndInsertString(DCM_ImagePositionPatient,
                         (ds(p[0]) + "\\" + ds(p[1]) + "\\" + ds(p[2])).c_str());
    d.putAndInsertString(DCM_PixelSpacing, (ds(v.spacing[1]) + "\\" + ds(v.spacing[0])).c_str());
    d.putAndInsertString(DCM_SliceThickness, ds(v.spacing[2]).c_str());
    d.putAndInsertUint16(DCM_BitsStored, 16);
    d.putAndInsertUint16(DCM_HighBit, 15);
    d.putAndInsertUint16(DCM_PixelRepresentation, ct ? 1 : 0);
    if (ct) {
      d.putAndInsertString(DCM_RescaleIntercept, "-1024");
      d.putAndInsertString(DCM_RescaleSlope, "1");
    } else {
      delete d.remove(DCM_RescaleIntercept);
      delete d.remove(DCM_RescaleSlope);
    }
    if (spec.existing_method_code) {
      DcmItem* item = nullptr;
      d.findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, item, 0);
      item->putAndInsertString(DCM_CodeValue, spec.method_code.c_str());
      item->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
      item->putAndInsertString(DCM_CodeMeaning, spec.method_code == "113102"
                                                    ? "Clean Recognizable Visual Features Option"
                                                    : "Clean Pixel Data Option");
    }
    const std::size_t plane = static_cast<std::size_t>(v.dims[0]) * v.dims[1];
    std::vector<Uint16> pixels(plane);
    for (std::size_t n = 0; n < plane; ++n) {
      const double physical = v.voxels[plane * k + n] * v.value_slope + v.value_intercept;
      const double stored = ct ? physical + 1024 : std::max(0.0, physical);
      pixels[n] = static_cast<Uint16>(static_cast<std::int32_t>(std::lround(stored)) & 0xFFFF);
    }
    d.putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(plane));
    const fs::path path = dir / ("IM" + std::to_string(order[k] + 1000));
    testing::save(*file, path);
    paths.push_back(path);
  }
  return paths;
}

fs::path write_enhanced(const volume::Volume& v, const fs::path& path, const SeriesSpec& spec,
                        const std::vector<int>& frame_order) {
  std::vector<int> order = frame_order;
  if (order.empty())
    for (int k = 0; k < v.dims[2]; ++k) order.push_back(k);
  const bool ct = spec.modality == "CT";
  const std::string sop = spec.series_uid + ".1";
  auto file = testing::make_ct("PID12345", sop, static_cast<unsigned>(v.dims[1]),
                               static_cast<unsigned>(v.dims[0]));
  DcmDataset& d = *file->getDataset();
  d.putAndInsertString(DCM_SOPClassUID,
                       ct ? UID_EnhancedCTImageStorage : UID_EnhancedMRImageStorage);
  d.putAndInsertString(DCM_Modality, spec.modality.c_str());
  d.putAndInsertString(DCM_SeriesInstanceUID, spec.series_uid.c_str());
  d.putAndInsertString(DCM_StudyDescription, spec.description.c_str());
  d.putAndInsertString(DCM_SeriesDescription, spec.description.c_str());
  if (!spec.body_part.empty()) d.putAndInsertString(DCM_BodyPartExamined, spec.body_part.c_str());
  d.putAndInsertString(DCM_BurnedInAnnotation, "NO");
  for (const DcmTagKey& key :
       {DCM_ImagePositionPatient, DCM_ImageOrientationPatient, DCM_PixelSpacing, DCM_SliceThickness,
        DCM_RescaleIntercept, DCM_RescaleSlope, DCM_RescaleType})
    delete d.remove(key);
  d.putAndInsertString(DCM_NumberOfFrames, std::to_string(order.size()).c_str());
  d.putAndInsertUint16(DCM_BitsStored, 16);
  d.putAndInsertUint16(DCM_HighBit, 15);
  d.putAndInsertUint16(DCM_PixelRepresentation, ct ? 1 : 0);

  const auto& a = v.axes;
  DcmItem* shared = nullptr;
  d.findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
  DcmItem* item = nullptr;
  shared->findOrCreateSequenceItem(DCM_PixelMeasuresSequence, item, 0);
  item->putAndInsertString(DCM_PixelSpacing, (ds(v.spacing[1]) + "\\" + ds(v.spacing[0])).c_str());
  item->putAndInsertString(DCM_SliceThickness, ds(v.spacing[2]).c_str());
  shared->findOrCreateSequenceItem(DCM_PlaneOrientationSequence, item, 0);
  item->putAndInsertString(DCM_ImageOrientationPatient,
                           (ds(a[0][0]) + "\\" + ds(a[0][1]) + "\\" + ds(a[0][2]) + "\\" +
                            ds(a[1][0]) + "\\" + ds(a[1][1]) + "\\" + ds(a[1][2]))
                               .c_str());
  if (ct) {
    shared->findOrCreateSequenceItem(DCM_PixelValueTransformationSequence, item, 0);
    item->putAndInsertString(DCM_RescaleIntercept, "-1024");
    item->putAndInsertString(DCM_RescaleSlope, "1");
    item->putAndInsertString(DCM_RescaleType, "HU");
  }
  const std::size_t plane = static_cast<std::size_t>(v.dims[0]) * v.dims[1];
  std::vector<Uint16> pixels;
  pixels.reserve(plane * order.size());
  for (std::size_t f = 0; f < order.size(); ++f) {
    const int k = order[f];
    DcmItem* frame = nullptr;
    d.findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, frame,
                               static_cast<signed long>(f));
    frame->findOrCreateSequenceItem(DCM_PlanePositionSequence, item, 0);
    const Vec3 p = v.to_patient(0, 0, k);
    item->putAndInsertString(DCM_ImagePositionPatient,
                             (ds(p[0]) + "\\" + ds(p[1]) + "\\" + ds(p[2])).c_str());
    frame->findOrCreateSequenceItem(DCM_FrameContentSequence, item, 0);
    item->putAndInsertUint32(DCM_InStackPositionNumber, static_cast<Uint32>(k + 1));
    for (std::size_t n = 0; n < plane; ++n) {
      const double physical = v.voxels[plane * k + n] * v.value_slope + v.value_intercept;
      const double stored = ct ? physical + 1024 : std::max(0.0, physical);
      pixels.push_back(
          static_cast<Uint16>(static_cast<std::int32_t>(std::lround(stored)) & 0xFFFF));
    }
  }
  d.putAndInsertUint16Array(DCM_PixelData, pixels.data(),
                            static_cast<unsigned long>(pixels.size()));
  testing::save(*file, path);
  return path;
}

}  // namespace radguard::testing
