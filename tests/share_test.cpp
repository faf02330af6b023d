// radguard share on a CD as a patient gets it: a DICOMDIR, a head CT series with a face, a
// screen capture with the patient's name burned in and no Burned In Annotation attribute,
// a NIfTI file and viewer files. The copy (a zip) must hold no identifying header value, no
// readable name in the pixels, a defaced head, and open in DCMTK through its DICOMDIR.
#include <cstring>
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "dicom/dicom_file.hpp"
#include "dicom/dicomdir.hpp"
#include "dicom/pixels.hpp"
#include "share/archive.hpp"
#include "support/burned_in.hpp"
#include "support/fixtures.hpp"
#include "support/series_writer.hpp"
#include "volume/nifti.hpp"

namespace radguard {
namespace {

namespace fs = std::filesystem;
constexpr const char* kCh2 = "/usr/share/mricron/templates/ch2.nii.gz";

int run(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The screen capture: the name, ID and birth date burned into the pixels.
testing::BurnedFrame capture_frame() {
  testing::BurnedFrame frame;
  frame.width = 480;
  frame.height = 360;
  frame.texts = {{"DOE JOHN", {20, 40}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2},
                 {"PID12345", {20, 80}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2},
                 {"1930-01-02", {20, 120}, cv::FONT_HERSHEY_SIMPLEX, 1.0, 2}};
  return frame;
}

TEST(Share, CdIntoZipHoldsNoIdentifyingValueAndOpensThroughItsDicomdir) {
  if (!fs::exists(kCh2)) GTEST_SKIP() << "mricron-data is not installed";
  testing::TempDir dir;
  const fs::path cd = dir / "cd";
  // The head series (a real head MR with its face, mricron-data's ch2 written as a DICOM
  // series), under ISO 9660 names as on a disc.
  auto ch2 = volume::read_nifti(kCh2);
  ASSERT_TRUE(ch2);
  const volume::Volume* head = &ch2->volume;
  testing::SeriesSpec spec;
  spec.modality = "MR";
  spec.description = "T1 head";
  spec.series_uid = "1.2.826.0.1.3680043.2.1125.3.701";
  const auto slices = testing::write_series(*head, cd / "DICOM" / "S1", spec);
  std::vector<fs::path> listed;
  for (std::size_t i = 0; i < slices.size(); ++i) {
    const fs::path name = fs::path("DICOM") / "S1" / ("I" + std::to_string(i + 1));
    fs::rename(slices[i], cd / name);
    listed.push_back(name);
  }
  // The key image: a secondary capture without Burned In Annotation.
  auto capture = testing::make_burned_in({capture_frame()}, testing::Colour::monochrome2,
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
  // The disc's own DICOMDIR lists the patient's name.
  ASSERT_TRUE(dicom::write_dicomdir(cd, listed, "HOSPITAL_CD"));
  ASSERT_NE(slurp(cd / "DICOMDIR").find("DOE^JOHN"), std::string::npos);
  std::ofstream(cd / "AUTORUN.INF") << "[autorun]\nopen=viewer.exe\n";
  std::ofstream(cd / "scan.nii") << "not really a volume, but named like one";
  // A real head MR as NIfTI whose header description names the patient.
  const bool with_nifti = fs::exists(kCh2);
  if (with_nifti) {
    fs::create_directories(cd / "MRI");
    ASSERT_EQ(run("gzip -dc " + std::string(kCh2) + " > " + (cd / "MRI" / "head.nii").string()), 0);
    std::fstream nii(cd / "MRI" / "head.nii", std::ios::in | std::ios::out | std::ios::binary);
    nii.seekp(148);  // descrip, 80 bytes
    nii.write("DOE^JOHN PID12345", 17);
  }

  const fs::path zip = dir / "copy.zip";
  const int rc = run(std::string(RADGUARD_BINARY) + " share " + cd.string() + " --output " +
                     zip.string() + " --no-progress --json >" + (dir / "share.json").string());
  const std::string summary = slurp(dir / "share.json");
  EXPECT_EQ(rc, 1) << summary;  // the NIfTI file was left out
  const auto report = nlohmann::json::parse(summary);
  EXPECT_EQ(report["left_out"]["a NIfTI volume that could not be read"], 1) << summary;
  // Per file of the copy, what was done to its pixels; the defacing's time among the timings.
  std::size_t reported_defaced = 0, reported_redacted = 0, frames_defaced = 0;
  for (const auto& f : report["files"]) {
    reported_defaced += f["defaced"].get<bool>();
    frames_defaced += f["frames_defaced"].get<std::size_t>();
    if (f["frames_redacted"].get<int>() > 0) {
      ++reported_redacted;
      EXPECT_GT(f["text_boxes"].get<int>(), 0);
      EXPECT_EQ(f["kind"], "screen capture");
    }
  }
  EXPECT_EQ(reported_defaced, slices.size());
  EXPECT_GT(frames_defaced, 0u);
  EXPECT_EQ(reported_redacted, 1u);
  EXPECT_GT(report["timings"]["defacing_seconds"].get<double>(), 0.0);
  ASSERT_TRUE(fs::exists(zip)) << summary;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_FALSE(entry.path().filename().string().starts_with(".radguard-share-"))
        << "the work folder was left behind";

  const fs::path out = dir / "unzipped";
  ASSERT_EQ(run("unzip -q " + zip.string() + " -d " + out.string()), 0);
  ASSERT_TRUE(fs::exists(out / "DICOMDIR"));
  ASSERT_TRUE(fs::exists(out / "report.html"));
  // No identifying header value in any file of the copy (DICOMDIR and report included).
  std::size_t dicom_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    if (!entry.is_regular_file()) continue;
    // Compressed files are searched as what they hold: a short value can turn up by chance
    // in deflated bytes, and a real one would be hidden by the compression.
    std::string bytes = slurp(entry.path());
    if (entry.path().extension() == ".gz") {
      const fs::path plain = dir / "plain.bin";
      ASSERT_EQ(run("gzip -dc " + entry.path().string() + " > " + plain.string()), 0);
      bytes = slurp(plain);
      fs::remove(plain);
      // NIfTI: the header and its extensions carry text; the voxels after vox_offset are
      // numbers in which any three letters turn up by chance.
      if (bytes.size() >= 352) {
        float vox_offset = 0;
        std::memcpy(&vox_offset, bytes.data() + 108, sizeof vox_offset);
        bytes.resize(std::min(bytes.size(), static_cast<std::size_t>(std::max(352.0f, vox_offset))));
      }
    }
    for (const char* secret :
         {"DOE", "PID12345", "19300102", "ACC998877", "Elsewhere", "HOUSE", "Acacia", "SN-4455",
          "CTSTATION7", "20190315", "1.2.826.0.1.3680043.2.1125"})
      EXPECT_EQ(bytes.find(secret), std::string::npos)
          << secret << " found in " << fs::relative(entry.path(), out);
    dicom_files += entry.path().filename().string().starts_with("IM");
  }
  EXPECT_EQ(dicom_files, slices.size() + 1);
  // DCMTK reads the copy through its DICOMDIR: every referenced file exists and is DICOM.
  EXPECT_EQ(run("cd " + out.string() + " && dcmftest DICOMDIR >/dev/null"), 0);
  EXPECT_EQ(run("cd " + out.string() + " && dcmdump DICOMDIR > dicomdir.txt"), 0);
  const std::string dicomdir = slurp(out / "dicomdir.txt");
  EXPECT_NE(dicomdir.find("(0004,1130) CS [SHARED_SCANS]"), std::string::npos);
  std::size_t references = 0;
  for (std::size_t at = dicomdir.find("ReferencedFileID"); at != std::string::npos;
       at = dicomdir.find("ReferencedFileID", at + 1)) {
    const auto open = dicomdir.rfind('[', at), close = dicomdir.find(']', open);
    std::string id = dicomdir.substr(open + 1, close - open - 1);
    std::replace(id.begin(), id.end(), '\\', '/');
    EXPECT_TRUE(fs::exists(out / id)) << id;
    EXPECT_EQ(run("dcmftest " + (out / id).string() + " >/dev/null"), 0) << id;
    ++references;
  }
  EXPECT_EQ(references, slices.size() + 1);

  // The capture: the ink of every burned-in word is gone; the head: defaced (code 113102).
  std::size_t captures = 0, defaced = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out / "DICOM")) {
    if (!entry.is_regular_file()) continue;
    auto file = dicom::DicomFile::open(entry.path());
    ASSERT_TRUE(file) << entry.path();
    EXPECT_EQ(file->string_of({0x0012, 0x0062}).value_or(""), "YES");
    auto loaded = testing::load(entry.path());
    if (testing::value(*loaded, "Modality") == "OT") {
      ++captures;
      auto pixels = dicom::decode_pixels(*file);
      ASSERT_TRUE(pixels);
      const auto frame = capture_frame();
      for (const auto& text : frame.texts) {
        const cv::Mat ink = testing::ink_of(frame, text);
        std::size_t still_bright = 0;
        for (int y = 0; y < ink.rows; ++y)
          for (int x = 0; x < ink.cols; ++x)
            if (ink.at<std::uint8_t>(y, x) != 0 &&
                pixels->frames[0][static_cast<std::size_t>(y) * frame.width + x] > 64)
              ++still_bright;
        EXPECT_EQ(still_bright, 0u) << text.text << " is still visible";
      }
      EXPECT_EQ(testing::value(*loaded, "BurnedInAnnotation"), "NO");
    } else {
      const std::string codes =
          testing::value(*loaded, "DeidentificationMethodCodeSequence[0].CodeValue") +
          testing::value(*loaded, "DeidentificationMethodCodeSequence[1].CodeValue") +
          testing::value(*loaded, "DeidentificationMethodCodeSequence[2].CodeValue") +
          testing::value(*loaded, "DeidentificationMethodCodeSequence[3].CodeValue") +
          testing::value(*loaded, "DeidentificationMethodCodeSequence[4].CodeValue") +
          testing::value(*loaded, "DeidentificationMethodCodeSequence[5].CodeValue");
      defaced += codes.find("113102") != std::string::npos;
    }
  }
  EXPECT_EQ(captures, 1u);
  EXPECT_EQ(defaced, slices.size());

  const std::string html = slurp(out / "report.html");
  EXPECT_NE(html.find("face removed from the head scan"), std::string::npos);
  EXPECT_NE(html.find("text blacked out"), std::string::npos);
  EXPECT_NE(html.find("a NIfTI volume that could not be read"), std::string::npos);
  if (with_nifti) {
    // The volume: shared with a fresh header (no description) and its face removed.
    ASSERT_TRUE(fs::exists(out / "NIFTI" / "VOL00001.nii.gz"));
    ASSERT_EQ(run("gzip -dc " + (out / "NIFTI" / "VOL00001.nii.gz").string() + " > " +
                  (dir / "vol.nii").string()),
              0);
    const std::string volume = slurp(dir / "vol.nii");
    EXPECT_EQ(volume.find("DOE^JOHN"), std::string::npos);
    EXPECT_EQ(volume.find("PID12345"), std::string::npos);
    EXPECT_NE(html.find("NIFTI/VOL00001.nii.gz"), std::string::npos);
  }
  EXPECT_NE(html.find("index of the disc"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "previews" / "p1.png"));
  // deid on the same disc with both pixel options, on a terminal: the defacing shows its
  // progress, the report names per file what the pixel stages did, one line per defaced
  // series, and the defacing's time is among the run's timings.
  ASSERT_EQ(run(std::string(RADGUARD_BINARY) + " keygen " + (dir / "k.key").string() +
                " >/dev/null"),
            0);
  const std::string deid = std::string(RADGUARD_BINARY) + " deid " + cd.string() + " --output " +
                           (dir / "deid").string() + " --key " + (dir / "k.key").string() +
                           " --option clean-pixel-data --option "
                           "clean-recognizable-visual-features --report " +
                           (dir / "deid.json").string();
  ASSERT_EQ(run("script -qec '" + deid + "' " + (dir / "deid.txt").string() + " >/dev/null"), 0)
      << slurp(dir / "deid.txt");
  const std::string terminal = slurp(dir / "deid.txt");
  EXPECT_NE(terminal.find("defacing ["), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("2/2 series"), std::string::npos) << terminal;  // head, capture
  EXPECT_NE(terminal.find("defaced: series "), std::string::npos) << terminal;
  EXPECT_NE(terminal.find(": " + std::to_string(slices.size()) + " files"), std::string::npos)
      << terminal;
  EXPECT_NE(terminal.find("redacted: DICOM/S2/I1 -> "), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("time in pixel stages: clean-recognizable-visual-features"),
            std::string::npos)
      << terminal;
  const auto deid_report = nlohmann::json::parse(slurp(dir / "deid.json"));
  // The head series' slices, and the NIfTI head on the disc (MRI/head.nii) as a volume.
  EXPECT_EQ(deid_report["pixels"]["files_defaced"], slices.size() + 1);
  EXPECT_EQ(deid_report["pixels"]["images_redacted"], 1);
  EXPECT_EQ(deid_report["timings"]["pixel_stages"][0]["stage"],
            "clean-recognizable-visual-features");
  EXPECT_GT(deid_report["timings"]["pixel_stages"][0]["prepare_seconds"].get<double>(), 0.0);
  EXPECT_GE(deid_report["timings"]["total_seconds"].get<double>(),
            deid_report["timings"]["pixel_stages"][0]["prepare_seconds"].get<double>());
  std::size_t listed_defaced = 0;
  for (const auto& w : deid_report["pixel_work"]) listed_defaced += w["defaced"].get<bool>();
  EXPECT_EQ(listed_defaced, slices.size() + 1);
  if (const char* keep = std::getenv("RADGUARD_SHARE_TEST_KEEP"))
    fs::copy(out, keep, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

// Zip in, folder out; an output that holds something is never replaced; nothing to share
// fails and writes nothing.
TEST(Share, ZipInputFolderOutputAndRefusals) {
  testing::TempDir dir;
  fs::create_directories(dir / "in");
  auto ct = testing::make_ct();
  // A chest slice: a small CT naming no body part would count as a head too short to deface.
  ct->getDataset()->putAndInsertString(DCM_BodyPartExamined, "CHEST");
  ct->getDataset()->putAndInsertString(DCM_StudyDescription, "Chest for John Doe");
  testing::save(*ct, dir / "in" / "ct.dcm");
  ASSERT_TRUE(share::write_zip(dir / "in", dir / "scans.zip"));
  const std::string bin(RADGUARD_BINARY);
  EXPECT_EQ(run(bin + " share " + (dir / "scans.zip").string() + " --output " +
                (dir / "copy").string() + " --no-progress 2>" + (dir / "zip.txt").string()),
            0)
      << slurp(dir / "zip.txt");
  EXPECT_TRUE(fs::exists(dir / "copy" / "DICOMDIR"));
  EXPECT_TRUE(fs::exists(dir / "copy" / "DICOM" / "ST000001" / "SE000001" / "IM000001"));
  EXPECT_NE(run(bin + " share " + (dir / "in").string() + " --output " + (dir / "copy").string() +
                " --no-progress 2>/dev/null"),
            0);
  fs::create_directories(dir / "empty");
  std::ofstream(dir / "empty" / "notes.txt") << "nothing here";
  EXPECT_NE(run(bin + " share " + (dir / "empty").string() + " --output " +
                (dir / "none.zip").string() + " --no-progress 2>/dev/null"),
            0);
  EXPECT_FALSE(fs::exists(dir / "none.zip"));
}

}  // namespace
}  // namespace radguard
