#pragma once
// DCMTK's data dictionary, given from compiled-in rows instead of DCMTK's text files.
//
// DCMTK builds its global dictionary (dcmDataDict) the first time anything uses it, by parsing
// the text files DCMDICTPATH names, or its default dicom.dic and private.dic: about 8,000
// lines through sscanf on every start of every process. radguard gives DCMTK the same entries
// from tables generated at build time (tools/tablegen --dcmtk-dictionary) from
// data/standard/dcmtk-dicom-2026b.dic (PS3.6 2026b, a newer edition than DCMTK 3.6.7's
// dicom.dic, of which it keeps every tag and VR) and data/standard/dcmtk-3.6.7-private.dic
// (DCMTK's private dictionary), added in that order exactly as DCMTK's loader would add them.
//
// This happens on the first dicom::initialise() (every entry point of src/dicom calls it), not
// before main, so commands that never read DICOM (--version, keys, consent, ledger) do not pay
// it: radguard points DCMDICTPATH at /dev/null for the moment DCMTK creates its dictionary,
// restores the variable, then adds the rows. DCMDICTPATH therefore no longer changes
// radguard's dictionary. Code that uses DCMTK's dictionary before the first initialise() (test
// fixtures that build files with DCMTK directly) makes DCMTK read its text files first; the
// rows are then added over them, which gives the same entries (dictionary_source() says which
// happened).
#include <cstdint>
#include <span>

namespace radguard::dicom {

enum class DictionarySource {
  compiled_in,       // only radguard's rows: DCMTK read no text dictionary
  over_text_files,   // DCMTK had read its text files before; radguard's rows were added over them
};

// Loads the rows into DCMTK's dictionary once per process; called by initialise().
// Thread-safe (std::call_once), but the first call briefly sets DCMDICTPATH: a program with
// threads of its own that read the environment calls dicom::initialise() before starting them.
void load_dictionary();
[[nodiscard]] DictionarySource dictionary_source();

namespace detail {

// One line of a DCMTK dictionary file, as DcmDataDictionary::loadDictionary parses it.
// Strings are offsets into dcmtk_dictionary_strings() (no pointers, so no relocations).
inline constexpr std::uint32_t kNoCreator = 0xFFFFFFFFU;
struct DcmtkDictionaryRow {
  std::uint16_t group, element, upper_group, upper_element;
  char group_range, element_range;  // 'u' unrestricted, 'o' odd, 'e' even
  std::uint8_t vr;                  // index into dcmtk_dictionary_vr_names()
  std::int16_t vm_min, vm_max;      // -1: n
  std::uint32_t name, version;
  std::uint32_t creator;  // kNoCreator for public attributes
};

extern const char* const kDcmtkDictionarySources;
// The VR names the rows use, as written in the files (DCMTK's own "xs", "ox", "px" included).
std::span<const char* const> dcmtk_dictionary_vr_names();
std::span<const DcmtkDictionaryRow> dcmtk_dictionary_rows();
// Every name, version and creator, each ending in NUL.
const char* dcmtk_dictionary_strings();

}  // namespace detail
}  // namespace radguard::dicom
