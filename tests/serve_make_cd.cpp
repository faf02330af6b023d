// Writes a CD-like folder for the radguard serve tests (tests/serve_*.sh):
//   serve_make_cd FOLDER [--head] [--many N]
// A screen capture with the patient's name, ID and birth date burned into its pixels and no
// Burned In Annotation attribute; with --head, a real head MR with its face (mricron-data's
// ch2 written as a DICOM series; skipped with a note when mricron-data is absent); the
// disc's own DICOMDIR (it lists the patient's name) and viewer files. Every header carries
// the fixture's identifying values (DOE^JOHN, PID12345, 19300102, St Elsewhere Hospital ...).
// With --many N, N more small CT images (ten series, not of the head): a large CD for the
// progress and responsiveness test.
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>

#include <fstream>
#include <iostream>
#include <opencv2/imgproc.hpp>

#include "dicom/dicomdir.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/series_writer.hpp"
#include "volume/nifti.hpp"

namespace fs = std::filesystem;
using namespace radguard;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: serve_make_cd FOLDER [--head]\n";
    return 2;
  }
  const fs::path cd = argv[1];
  bool head = false;
  std::size_t many = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--head") head = true;
    else if (arg == "--many" && i + 1 < argc) many = std::stoul(argv[++i]);
    else {
      std::cerr << "serve_make_cd: unknown argument " << arg << "\n";
      return 2;
    }
  }
  std::vector<fs::path> listed;
  constexpr const char* kCh2 = "/usr/share/mricron/templates/ch2.nii.gz";
  if (head && fs::exists(kCh2)) {
    auto ch2 = volume::read_nifti(kCh2);
    if (!ch2) return 1;
    testing::SeriesSpec spec;
    spec.modality = "MR";
    spec.description = "T1 head";
    spec.series_uid = "1.2.826.0.1.3680043.2.1125.3.701";
    const auto slices = testing::write_series(ch2->volume, cd / "DICOM" / "S1", spec);
    for (std::size_t i = 0; i < slices.size(); ++i) {
      const fs::path name = fs::path("DICOM") / "S1" / ("I" + std::to_string(i + 1));
      fs::rename(slices[i], cd / name);
      listed.push_back(name);
    }
  } else if (head) {
    std::cerr << "serve_make_cd: mricron-data is not installed: no head series\n";
  }
  testing::BurnedFrame frame;
  frame.width = 480;
  frame.height = 360;
  frame.texts = {{"DOE JOHN", {20, 40}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2},
                 {"PID12345", {20, 80}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2},
                 {"1930-01-02", {20, 120}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2}};
  auto capture = testing::make_burned_in({frame}, testing::Colour::monochrome2,
                                         "1.2.826.0.1.3680043.2.1125.9.77");
  DcmDataset& d = *capture->getDataset();
  d.putAndInsertString(DCM_Modality, "OT");
  d.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  d.putAndInsertString(DCM_ImageType, "DERIVED\\SECONDARY");
  d.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.2.77");
  d.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1125.3.77");
  d.findAndDeleteElement(DCM_BurnedInAnnotation);
  fs::create_directories(cd / "DICOM" / "S2");
  testing::save(*capture, cd / "DICOM" / "S2" / "I1");
  listed.push_back(fs::path("DICOM") / "S2" / "I1");
  for (std::size_t i = 0; i < many; ++i) {
    const std::size_t series = i % 10;
    auto ct = testing::make_ct("PID12345", "1.2.826.0.1.3680043.2.1125.8." + std::to_string(i + 1),
                               256, 256);
    DcmDataset& c = *ct->getDataset();
    c.putAndInsertString(DCM_SeriesInstanceUID,
                         ("1.2.826.0.1.3680043.2.1125.3.8" + std::to_string(series)).c_str());
    c.putAndInsertString(DCM_InstanceNumber, std::to_string(i / 10 + 1).c_str());
    c.putAndInsertString(DCM_BodyPartExamined, "CHEST");  // not a head: nothing to deface
    c.putAndInsertString(DCM_StudyDescription, "CT CHEST for John Doe PID12345");
    c.putAndInsertString(DCM_PixelSpacing, "1.5\\1.5");
    const fs::path name =
        fs::path("DICOM") / ("M" + std::to_string(series)) / ("I" + std::to_string(i / 10 + 1));
    fs::create_directories(cd / name.parent_path());
    testing::save(*ct, cd / name);
    listed.push_back(name);
  }
  if (!dicom::write_dicomdir(cd, listed, "HOSPITAL_CD")) return 1;
  std::ofstream(cd / "AUTORUN.INF") << "[autorun]\nopen=viewer.exe\n";
  std::ofstream(cd / "README.TXT") << "Images of DOE^JOHN, PID12345\n";
  std::cout << listed.size() << " images\n";
  return 0;
}
