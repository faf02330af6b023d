// DCMTK's dictionary from radguard's compiled-in rows (src/dicom/dcmtk_dictionary.hpp): the
// same entries DCMTK's own loader makes of the same files, none lost of the dictionary DCMTK
// would have read from its installed text files, and no effect of DCMDICTPATH (ctest runs this
// executable with DCMDICTPATH naming a file that does not exist).
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dctag.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "dicom/dcmtk_dictionary.hpp"
#include "dicom/dicom_file.hpp"

namespace {

namespace fs = std::filesystem;
using radguard::dicom::DictionarySource;

const fs::path kData = RADGUARD_STANDARD_DATA;

std::string text(const char* s) { return s != nullptr ? s : ""; }

// Everything DCMTK keeps of an entry.
using EntryKey = std::tuple<Uint16, Uint16, Uint16, Uint16, int, int, std::string>;
struct EntryValue {
  DcmEVR vr;
  std::string name, version;
  int vm_min, vm_max;
  bool operator==(const EntryValue&) const = default;
};

EntryKey key_of(const DcmDictEntry& e) {
  return {e.getGroup(),
          e.getElement(),
          e.getUpperGroup(),
          e.getUpperElement(),
          static_cast<int>(e.getGroupRangeRestriction()),
          static_cast<int>(e.getElementRangeRestriction()),
          text(e.getPrivateCreator())};
}

EntryValue value_of(const DcmDictEntry& e) {
  return {e.getVR().getEVR(), text(e.getTagName()), text(e.getStandardVersion()), e.getVMMin(),
          e.getVMMax()};
}

struct Snapshot {
  std::map<EntryKey, EntryValue> normal;
  std::vector<std::pair<EntryKey, EntryValue>> repeating;  // in DCMTK's search order
};

Snapshot snapshot(DcmDataDictionary& dictionary) {
  Snapshot out;
  for (auto it = dictionary.normalBegin(); it != dictionary.normalEnd(); ++it)
    out.normal.emplace(key_of(**it), value_of(**it));
  for (auto it = dictionary.repeatingBegin(); it != dictionary.repeatingEnd(); ++it)
    out.repeating.emplace_back(key_of(**it), value_of(**it));
  return out;
}

Snapshot global_snapshot() {
  DcmDataDictionary& dictionary = dcmDataDict.wrlock();
  Snapshot out = snapshot(dictionary);
  dcmDataDict.wrunlock();
  return out;
}

// DCMTK's own loader on these files, in this order, into a dictionary of its own.
Snapshot parsed_by_dcmtk(const std::vector<std::string>& files) {
  DcmDataDictionary dictionary(OFFalse, OFFalse);
  for (const auto& file : files) {
    EXPECT_TRUE(dictionary.loadDictionary(file.c_str(), OFTrue)) << file;
  }
  return snapshot(dictionary);
}

std::vector<std::string> dcmtk_default_files() {
  std::vector<std::string> files;
  std::stringstream paths(DCM_DICT_DEFAULT_PATH);
  std::string path;
  while (std::getline(paths, path, ENVIRONMENT_PATH_SEPARATOR))
    if (!path.empty()) files.push_back(path);
  return files;
}

TEST(DcmtkDictionary, IsLoadedFromTheCompiledInRowsOnFirstUse) {
  // Nothing in this test process used DCMTK's dictionary before radguard's first initialise().
  radguard::dicom::initialise();
  EXPECT_EQ(radguard::dicom::dictionary_source(), DictionarySource::compiled_in);
  EXPECT_TRUE(dcmDataDict.isDictionaryLoaded());
  // The loader put DCMDICTPATH back as the test runner set it.
  const char* variable = std::getenv("DCMDICTPATH");
  ASSERT_NE(variable, nullptr) << "ctest sets DCMDICTPATH for this program";
  EXPECT_STREQ(variable, RADGUARD_TEST_DCMDICTPATH);
  // Lookups work as before: VRs of the public dictionary, DCMTK's pixel data class, a
  // private attribute of DCMTK's private dictionary, and an attribute newer than DCMTK 3.6.7.
  EXPECT_EQ(DcmTag(DCM_PatientName).getEVR(), EVR_PN);
  EXPECT_EQ(DcmTag(DCM_PixelData).getEVR(), EVR_px);
  EXPECT_EQ(DcmTag(0x0029, 0x1010, "SIEMENS CSA HEADER").getEVR(), EVR_OB);
  EXPECT_EQ(DcmTag(0x6002, 0x3000).getEVR(), EVR_ox);  // a repeating group (overlay data)
  DcmTag synthetic_data(0x0008, 0x001C);  // SyntheticData: PS3.6 2026b, not DCMTK 3.6.7
  EXPECT_EQ(synthetic_data.getEVR(), EVR_CS);
  EXPECT_STREQ(synthetic_data.getTagName(), "SyntheticData");
}

TEST(DcmtkDictionary, IsWhatDcmtksOwnLoaderMakesOfTheSameFiles) {
  radguard::dicom::initialise();
  const Snapshot ours = global_snapshot();
  const Snapshot theirs = parsed_by_dcmtk({(kData / "dcmtk-dicom-2026b.dic").string(),
                                           (kData / "dcmtk-3.6.7-private.dic").string()});
  EXPECT_GT(theirs.normal.size(), 8000U);
  EXPECT_EQ(ours.normal.size(), theirs.normal.size());
  for (const auto& [key, value] : theirs.normal) {
    const auto it = ours.normal.find(key);
    ASSERT_NE(it, ours.normal.end()) << value.name;
    EXPECT_EQ(it->second, value) << value.name;
  }
  ASSERT_EQ(ours.repeating.size(), theirs.repeating.size());
  for (std::size_t i = 0; i < ours.repeating.size(); ++i) {
    EXPECT_EQ(ours.repeating[i].first, theirs.repeating[i].first) << i;
    EXPECT_EQ(ours.repeating[i].second, theirs.repeating[i].second) << i;
  }
}

TEST(DcmtkDictionary, LosesNoEntryOfDcmtksInstalledDictionary) {
  radguard::dicom::initialise();
  // What DCMTK reads at start-up when left alone: its installed dicom.dic and private.dic.
  const auto files = dcmtk_default_files();
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) ASSERT_TRUE(fs::exists(file)) << file;
  const Snapshot installed = parsed_by_dcmtk(files);
  const Snapshot ours = global_snapshot();
  EXPECT_GT(installed.normal.size(), 7500U);
  std::size_t renamed = 0;
  for (const auto& [key, value] : installed.normal) {
    const auto it = ours.normal.find(key);
    ASSERT_NE(it, ours.normal.end()) << value.name;
    // The VR is DCMTK's for every tag it knew; a newer edition only retires names or
    // widens a VM (EthnicGroup is RETIRED_EthnicGroup in PS3.6 2026b).
    EXPECT_EQ(it->second.vr, value.vr) << value.name;
    if (it->second.name != value.name) {
      EXPECT_EQ(it->second.name, "RETIRED_" + value.name);
      ++renamed;
    }
  }
  EXPECT_LT(renamed, 20U);
  for (const auto& [key, value] : installed.repeating) {
    bool found = false;
    for (const auto& [our_key, our_value] : ours.repeating) {
      if (our_key == key) {
        EXPECT_EQ(our_value.vr, value.vr) << value.name;
        found = true;
      }
    }
    EXPECT_TRUE(found) << value.name;
  }
  EXPECT_GT(ours.normal.size(), installed.normal.size());  // the newer edition adds attributes
}

// In a fresh process (a death test re-runs this program for this test alone), since the
// dictionary is loaded once per process.
void use_dcmtk_first_then_initialise() {
  // A DCMTK lookup first: DCMTK reads its installed text files (DCMDICTPATH unset, as for a
  // program that used DCMTK on its own), then radguard's rows go over them.
  ::unsetenv("DCMDICTPATH");
  const bool dcmtk_read_files = DcmTag(DCM_PatientID).getEVR() == EVR_LO;
  radguard::dicom::initialise();
  const bool over = radguard::dicom::dictionary_source() == DictionarySource::over_text_files;
  const Snapshot ours = global_snapshot();
  const Snapshot theirs = parsed_by_dcmtk({(kData / "dcmtk-dicom-2026b.dic").string(),
                                           (kData / "dcmtk-3.6.7-private.dic").string()});
  const bool same = ours.normal == theirs.normal && ours.repeating == theirs.repeating;
  std::exit(dcmtk_read_files && over && same ? 0 : 1);
}

TEST(DcmtkDictionary, UsingDcmtkBeforeInitialiseGivesTheSameEntries) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(use_dcmtk_first_then_initialise(), testing::ExitedWithCode(0), "");
}

}  // namespace
