#include "dicom/dcmtk_dictionary.hpp"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcvr.h>

#include <unistd.h>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace radguard::dicom {

namespace {

std::atomic<DictionarySource> g_source{DictionarySource::compiled_in};

DcmDictRangeRestriction range_of(char code) {
  switch (code) {
    case 'o': return DcmDictRange_Odd;
    case 'e': return DcmDictRange_Even;
    default: return DcmDictRange_Unspecified;
  }
}

void add_rows(DcmDataDictionary& dictionary) {
  std::vector<DcmVR> vrs;
  for (const char* name : detail::dcmtk_dictionary_vr_names()) vrs.emplace_back(name);
  const char* strings = detail::dcmtk_dictionary_strings();
  for (const auto& row : detail::dcmtk_dictionary_rows()) {
    const DcmVR& vr = vrs[row.vr];
    if (vr.getEVR() == EVR_UNKNOWN) continue;  // DCMTK's loader skips such a line too
    // The strings are the tables' own (static storage): not copied, never freed.
    const char* creator = row.creator == detail::kNoCreator ? nullptr : strings + row.creator;
    auto* entry = new DcmDictEntry(row.group, row.element, row.upper_group, row.upper_element, vr,
                                   strings + row.name, row.vm_min, row.vm_max,
                                   strings + row.version, OFFalse, creator);
    entry->setGroupRangeRestriction(range_of(row.group_range));
    entry->setElementRangeRestriction(range_of(row.element_range));
    dictionary.addEntry(entry);  // takes ownership; replaces an equal entry, as the loader does
  }
}

void load_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK creates its dictionary on first use and then parses the files DCMDICTPATH names
    // (its defaults when unset or empty). For that moment it names /dev/null, which parses to
    // nothing; the caller's value is put back at once. setenv is unsafe while another thread
    // reads the environment: radguard reaches this once per process, from the first file a
    // worker opens (the other workers wait in call_once) or from the main thread before any
    // worker starts; a program embedding radguard should call initialise() before it starts
    // threads of its own.
    static constexpr const char* kVariable = "DCMDICTPATH";
    std::optional<std::string> previous;
    if (const char* value = std::getenv(kVariable); value != nullptr) previous = value;
    const bool redirect = ::access("/dev/null", R_OK) == 0;
    if (redirect) ::setenv(kVariable, "/dev/null", 1);
    DcmDataDictionary& dictionary = dcmDataDict.wrlock();
    if (redirect) {
      if (previous) {
        ::setenv(kVariable, previous->c_str(), 1);
      } else {
        ::unsetenv(kVariable);
      }
    }
    // Entries beyond DCMTK's skeleton (group length, item and delimitation tags) mean it had
    // read its text files already.
    if (dictionary.numberOfEntries() > 0) g_source = DictionarySource::over_text_files;
    add_rows(dictionary);
    dcmDataDict.wrunlock();
  });
}

}  // namespace

void load_dictionary() { load_once(); }

DictionarySource dictionary_source() { return g_source.load(); }

}  // namespace radguard::dicom
