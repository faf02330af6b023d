#include "support/fixtures.hpp"

#include "consent/consent.hpp"

#include <fstream>
#include <iterator>

#include <dcmtk/dcmdata/dcpath.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace radguard::testing {

TempDir::TempDir() {
  std::random_device rd;
  path_ =
      fs::temp_directory_path() / ("radguard-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

crypto::SecretKey test_key() {
  auto key = crypto::SecretKey::parse(
      "radguard-key-v1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
  EXPECT_TRUE(key.has_value());
  return *key;
}

std::unique_ptr<DcmFileFormat> make_ct(const std::string& patient_id, const std::string& sop_uid,
                                       unsigned rows, unsigned cols, unsigned frames) {
  auto file = std::make_unique<DcmFileFormat>();
  DcmDataset& d = *file->getDataset();
  d.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 100");
  d.putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL");
  d.putAndInsertString(DCM_SOPClassUID,
                       frames > 1 ? UID_EnhancedCTImageStorage : UID_CTImageStorage);
  d.putAndInsertString(DCM_SOPInstanceUID, sop_uid.c_str());
  d.putAndInsertString(DCM_StudyDate, "20190315");
  d.putAndInsertString(DCM_StudyTime, "231500");
  d.putAndInsertString(DCM_SeriesDate, "20190315");
  d.putAndInsertString(DCM_AcquisitionDateTime, "20190315231502.123456+0100");
  d.putAndInsertString(DCM_AccessionNumber, "ACC998877");
  d.putAndInsertString(DCM_Modality, "CT");
  d.putAndInsertString(DCM_Manufacturer, "ACME Medical");
  d.putAndInsertString(DCM_InstitutionName, "St Elsewhere Hospital");
  d.putAndInsertString(DCM_InstitutionAddress, "1 Harbour Road, Springfield");
  d.putAndInsertString(DCM_ReferringPhysicianName, "HOUSE^GREGORY");
  d.putAndInsertString(DCM_StationName, "CTSTATION7");
  d.putAndInsertString(DCM_StationAETitle, "ELSEWHERE_CT1");
  d.putAndInsertString(DCM_TimezoneOffsetFromUTC, "-0500");
  d.putAndInsertString(DCM_StudyDescription, "CT HEAD for John Doe PID12345 on 15/03/2019");
  d.putAndInsertString(DCM_SeriesDescription, "Axial 5mm");
  d.putAndInsertString(DCM_PatientName, "DOE^JOHN");
  d.putAndInsertString(DCM_PatientID, patient_id.c_str());
  d.putAndInsertString(DCM_PatientBirthDate, "19300102");
  d.putAndInsertString(DCM_PatientSex, "M");
  d.putAndInsertString(DCM_PatientAge, "095Y");
  d.putAndInsertString(DCM_PatientAddress, "22 Acacia Avenue");
  d.putAndInsertString(DCM_DeviceSerialNumber, "SN-4455");
  d.putAndInsertString(DCM_StudyInstanceUID, "1.2.826.0.1.3680043.2.1125.2.1");
  d.putAndInsertString(DCM_SeriesInstanceUID, "1.2.826.0.1.3680043.2.1125.3.1");
  d.putAndInsertString(DCM_FrameOfReferenceUID, "1.2.826.0.1.3680043.2.1125.4.1");
  d.putAndInsertString(DCM_StudyID, "S1");
  d.putAndInsertString(DCM_SeriesNumber, "1");
  d.putAndInsertString(DCM_InstanceNumber, "1");
  d.putAndInsertString(DCM_PatientOrientation, "");
  d.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  d.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  d.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows));
  d.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(cols));
  if (frames > 1) d.putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
  d.putAndInsertUint16(DCM_BitsAllocated, 16);
  d.putAndInsertUint16(DCM_BitsStored, 12);
  d.putAndInsertUint16(DCM_HighBit, 11);
  d.putAndInsertUint16(DCM_PixelRepresentation, 0);
  d.putAndInsertString(DCM_RescaleIntercept, "-1024");
  d.putAndInsertString(DCM_RescaleSlope, "1");
  std::vector<Uint16> pixels(static_cast<std::size_t>(rows) * cols * frames);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<Uint16>((i * 7) % 4096);
  d.putAndInsertUint16Array(DCM_PixelData, pixels.data(),
                            static_cast<unsigned long>(pixels.size()));
  return file;
}

void save(DcmFileFormat& file, const fs::path& path, E_TransferSyntax xfer,
          E_EncodingType sequences) {
  static const bool registered = [] {
    DcmRLEEncoderRegistration::registerCodecs();
    DJEncoderRegistration::registerCodecs();
    // Raw, as radguard registers it (src/dicom/pixels.cpp): cooked encoding aborts in CharLS
    // on signed samples with negative values.
    DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, /*preferCookedEncoding=*/OFFalse);
    return true;
  }();
  (void)registered;
  DcmDataset& d = *file.getDataset();
  if (DcmXfer(xfer).isEncapsulated()) {
    const DcmRepresentationParameter* params = nullptr;
    DJ_RPLossless jpeg_lossless;
    DJLSRepresentationParameter jpeg_ls(2, OFTrue);
    if (xfer == EXS_JPEGProcess14SV1) params = &jpeg_lossless;
    if (xfer == EXS_JPEGLSLossless) params = &jpeg_ls;
    ASSERT_TRUE(d.chooseRepresentation(xfer, params).good()) << "cannot compress";
    ASSERT_TRUE(d.canWriteXfer(xfer));
  }
  fs::create_directories(path.parent_path());
  const OFCondition status = file.saveFile(OFFilename(path.c_str()), xfer, sequences);
  ASSERT_TRUE(status.good()) << status.text();
}

std::unique_ptr<DcmFileFormat> load(const fs::path& path) {
  auto file = std::make_unique<DcmFileFormat>();
  const OFCondition status = file->loadFile(OFFilename(path.c_str()));
  EXPECT_TRUE(status.good()) << path << ": " << status.text();
  return file;
}

namespace {
DcmElement* find(DcmFileFormat& file, const std::string& path) {
  DcmPathProcessor processor;
  if (processor.findOrCreatePath(file.getDataset(), path.c_str(), OFFalse).bad()) return nullptr;
  OFList<DcmPath*> results;
  if (processor.getResults(results) == 0) return nullptr;
  DcmPathNode* last = (*results.begin())->back();
  if (last == nullptr || last->m_obj == nullptr) return nullptr;
  return dynamic_cast<DcmElement*>(last->m_obj);
}
}  // namespace

std::string value(DcmFileFormat& file, const std::string& path) {
  DcmElement* element = find(file, path);
  if (element == nullptr) return {};
  OFString out;
  element->getOFStringArray(out);
  return out.c_str();
}

bool exists(DcmFileFormat& file, const std::string& path) { return find(file, path) != nullptr; }

DeidResult deidentify(const fs::path& input, const fs::path& output_root, const std::string& preset,
                      std::initializer_list<std::string> options, const std::string& recipe) {
  std::vector<std::string> option_list(options);
  auto policy = deid::Policy::create(preset, option_list, std::nullopt);
  EXPECT_TRUE(policy.has_value());
  if (!recipe.empty()) EXPECT_TRUE(policy->add_recipe(recipe, "test recipe").has_value());
  const deid::HeaderStage stage(std::move(*policy), pseudonym::Pseudonymizer(test_key()),
                                deid::BurnedInPolicy::reject);
  const deid::FileOutcome outcome = deid::deidentify_file(input, output_root, stage);
  DeidResult result;
  result.status = outcome.status;
  result.error = outcome.reason;
  if (outcome.status == deid::FileStatus::written) result.output = output_root / outcome.output;
  return result;
}

std::string pixel_bytes(DcmFileFormat& file) {
  DcmElement* element = nullptr;
  if (file.getDataset()->findAndGetElement(DCM_PixelData, element).bad()) return {};
  auto* pixel = dynamic_cast<DcmPixelData*>(element);
  if (pixel == nullptr) return {};
  DcmPixelSequence* sequence = nullptr;
  const E_TransferSyntax xfer = file.getDataset()->getOriginalXfer();
  if (DcmXfer(xfer).isEncapsulated() &&
      pixel->getEncapsulatedRepresentation(xfer, nullptr, sequence).good() && sequence != nullptr) {
    std::string out;
    for (unsigned long i = 0; i < sequence->card(); ++i) {
      DcmPixelItem* item = nullptr;
      sequence->getItem(item, i);
      Uint8* data = nullptr;
      item->getUint8Array(data);
      if (data != nullptr) out.append(reinterpret_cast<const char*>(data), item->getLength());
    }
    return out;
  }
  Uint8* data = nullptr;
  if (pixel->getUint8Array(data).bad() || data == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(data), pixel->getLength());
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_key_file(const fs::path& path) {
  std::ofstream(path) << "radguard-key-v1:"
                         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

fs::path pydicom_sample(const std::string& name) {
  const fs::path p = fs::path("/usr/lib/python3/dist-packages/pydicom/data/test_files") / name;
  return fs::exists(p) ? p : fs::path();
}

void permit_research(const fs::path& registry, const std::string& patient_id,
                     const std::string& date) {
  auto opened = consent::Registry::open(registry.string());
  if (!opened) {
    ADD_FAILURE() << "cannot open the registry: " << opened.error().message;
    return;
  }
  consent::Record permit;
  permit.patient_id = patient_id;
  permit.purpose = consent::Purpose::research;
  permit.decision = consent::Decision::permit;
  permit.date = date;
  permit.source = "test";
  if (auto recorded = opened->record(permit); !recorded)
    ADD_FAILURE() << "cannot record consent: " << recorded.error().message;
}

}  // namespace radguard::testing
