// Free-text de-identification against an adversarial answer key (issue 20), and its cost.
//
//   freetext_bench RADGUARD_BINARY [FILES=600] [WORK=/tmp/radguard-freetext-bench] [SIDE=512]
//
// (SIDE: rows and columns of each 16-bit image; 512 is a CT slice.)
//
// Generates FILES DICOM objects (fixed seed) whose descriptions, comments, protocol names and
// histories quote identifying values of their own headers the way people write them: names
// glued (FAMILYGIVEN, GIVENFAMILY), split, reversed, with initials, in any case, with accents
// dropped, Greek with and without tonos and in Latin letters, Cyrillic in either case and
// transliterated, Chinese with spaces between characters, Japanese in ISO 2022; MRNs with
// check digits, prefixes and spaces, other MRNs held only in an Other Patient IDs Sequence
// stored as UN, issuer, institution and address words, accession numbers, birth dates in four
// forms, physicians after titles; next to descriptions that start with modality codes that
// look like titles (MR, MS, DR). Then runs `radguard deid --profile research` on them and
// reports: identifiers removed (every piece of every identifier written must be gone) and
// non-identifying words kept; and the wall time against `cp -r` of the same files, 3
// interleaved rounds, medians. Prints no identifiers, only counts (and the leaked forms'
// kinds).
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "deid/text_scrubber.hpp"
#include "support/fixtures.hpp"

namespace fs = std::filesystem;
using radguard::deid::encoding_for;
using radguard::deid::fold_for_matching;

namespace {

struct Name {
  std::string family, given;  // in the data set's character set
  std::string latin_family, latin_given;  // a transliteration, or the same
  const char* charset;                    // Specific Character Set
  bool cjk = false;
};

const std::vector<Name>& names() {
  static const std::vector<Name> list = {
      {"HOLLOWAY", "BRIDGET", "HOLLOWAY", "BRIDGET", "ISO_IR 192"},
      {"ABERNATHY", "CORMAC", "ABERNATHY", "CORMAC", "ISO_IR 192"},
      {"OKAFOR", "ADAEZE", "OKAFOR", "ADAEZE", "ISO_IR 192"},
      {"LINDQVIST", "SOLVEIG", "LINDQVIST", "SOLVEIG", "ISO_IR 192"},
      {"NGUYEN", "THANH", "NGUYEN", "THANH", "ISO_IR 192"},
      {"FAIRWEATHER", "LEOPOLD", "FAIRWEATHER", "LEOPOLD", "ISO_IR 192"},
      {"M\xDCLLER", "J\xDCRGEN", "MULLER", "JURGEN", "ISO_IR 100"},
      {"GONZ\xC1LEZ", "JOS\xC9", "GONZALEZ", "JOSE", "ISO_IR 100"},
      {"BJ\xD6RKLUND", "ASTRID", "BJORKLUND", "ASTRID", "ISO_IR 100"},
      {"LEF\xC8VRE", "AM\xC9LIE", "LEFEVRE", "AMELIE", "ISO_IR 100"},
      // ΠΑΠΑΔΟΠΟΥΛΟΣ^ΓΙΩΡΓΟΣ, ΚΩΝΣΤΑΝΤΙΝΙΔΗΣ^ΕΛΕΝΗ
      {"\xCE\xA0\xCE\x91\xCE\xA0\xCE\x91\xCE\x94\xCE\x9F\xCE\xA0\xCE\x9F\xCE\xA5\xCE\x9B\xCE\x9F"
       "\xCE\xA3",
       "\xCE\x93\xCE\x99\xCE\xA9\xCE\xA1\xCE\x93\xCE\x9F\xCE\xA3", "PAPADOPOULOS", "GIORGOS",
       "ISO_IR 192"},
      {"\xCE\x9A\xCE\xA9\xCE\x9D\xCE\xA3\xCE\xA4\xCE\x91\xCE\x9D\xCE\xA4\xCE\x99\xCE\x9D\xCE\x99"
       "\xCE\x94\xCE\x97\xCE\xA3",
       "\xCE\x95\xCE\x9B\xCE\x95\xCE\x9D\xCE\x97", "KONSTANTINIDIS", "ELENI", "ISO_IR 192"},
      // ИВАНОВА^ТАТЬЯНА, СМИРНОВ^ДМИТРИЙ
      {"\xD0\x98\xD0\x92\xD0\x90\xD0\x9D\xD0\x9E\xD0\x92\xD0\x90",
       "\xD0\xA2\xD0\x90\xD0\xA2\xD0\xAC\xD0\xAF\xD0\x9D\xD0\x90", "IVANOVA", "TATYANA",
       "ISO_IR 192"},
      {"\xD0\xA1\xD0\x9C\xD0\x98\xD0\xA0\xD0\x9D\xD0\x9E\xD0\x92",
       "\xD0\x94\xD0\x9C\xD0\x98\xD0\xA2\xD0\xA0\xD0\x98\xD0\x99", "SMIRNOV", "DMITRIY",
       "ISO_IR 192"},
      // 王^小東, 李^秀英 (UTF-8)
      {"\xE7\x8E\x8B", "\xE5\xB0\x8F\xE6\x9D\xB1", "WANG", "XIAODONG", "ISO_IR 192", true},
      {"\xE6\x9D\x8E", "\xE7\xA7\x80\xE8\x8B\xB1", "LI", "XIUYING", "ISO_IR 192", true},
      // 山田^太郎 (ISO 2022 IR 87)
      {"\x1b$B;3ED\x1b(B", "\x1b$BB@O:\x1b(B", "YAMADA", "TAROU", "\\ISO 2022 IR 87", true},
  };
  return list;
}

const std::vector<std::string>& clinical() {
  static const std::vector<std::string> list = {
      "FEMUR", "CONTRAST", "BRAIN", "T1", "T2", "FLAIR", "SAG", "AXIAL", "CORONAL", "CHEST",
      "ABDOMEN", "PELVIS", "KNEE", "LEFT", "RIGHT", "LUMBAR", "SPINE", "DWI", "ADC", "PERFUSION",
      "ANGIO", "ROUTINE", "PROTOCOL", "stable", "nodule", "follow", "up", "compared", "prior",
      "no", "change", "mild", "edema", "post", "op", "3D", "MPRAGE", "STIR", "fracture", "healing",
      "WILLIS", "CIRCLE", "HIGH", "RES", "SHOULDER", "ANKLE", "PA", "LAT", "HEAD", "NECK"};
  return list;
}

struct Identifier {
  std::string text;  // as written into free text (in the data set's character set)
  std::string kind;
};

// Luhn check digit of a digit string.
char luhn(const std::string& digits) {
  int sum = 0;
  bool twice = true;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it, twice = !twice) {
    int d = *it - '0';
    if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}
std::string capitalised(const std::string& s) {
  return s.empty() ? s : s.substr(0, 1) + lower_ascii(s.substr(1));
}

// Lower case of UTF-8 Greek/Cyrillic capitals (two-byte sequences), with Greek tonos on the
// first vowel where the test wants it.
std::string lower_utf8(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b == 0xCE || b == 0xD0) && i + 1 < s.size()) {
      unsigned cp = ((b & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      if (cp >= 0x391 && cp <= 0x3A9) cp += 0x20;
      else if (cp >= 0x410 && cp <= 0x42F) cp += 0x20;
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
      ++i;
    } else {
      out += static_cast<char>(std::tolower(b));
    }
  }
  return out;
}

// Characters of a UTF-8 string with a space between each.
std::string spaced(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (!out.empty()) out += ' ';
    out += s.substr(i, n);
    i += n;
  }
  return out;
}

struct Patient {
  Name name;
  std::string id, other_id, issuer, other_issuer, institution, street, city, birth;
  std::string physician_family, physician_given;
};

std::vector<Identifier> forms_of(const Patient& p, const std::string& accession,
                                 std::mt19937& rng) {
  const Name& n = p.name;
  std::vector<Identifier> f;
  const bool native_latin = n.family == n.latin_family && !n.cjk;
  const std::string F = n.latin_family, G = n.latin_given;
  f.push_back({F + G, "glued family+given"});
  f.push_back({G + F, "glued given+family"});
  f.push_back({capitalised(G) + " " + capitalised(F), "given family"});
  f.push_back({lower_ascii(F) + ", " + lower_ascii(G), "family, given lower"});
  f.push_back({G.substr(0, 1) + ". " + F, "initial + family"});
  f.push_back({G.substr(0, 1) + F, "initial glued"});
  f.push_back({F + "_" + G, "underscore"});
  if (!native_latin && !n.cjk) {
    f.push_back({n.family + " " + n.given, "native script"});
    f.push_back({lower_utf8(n.family), "native lower case"});
  }
  if (n.cjk && n.charset[0] != '\\') {
    f.push_back({spaced(n.family + n.given), "CJK spaced"});
    f.push_back({n.family + n.given, "CJK glued"});
  }
  if (n.charset[0] == '\\') f.push_back({n.family + n.given, "ISO 2022 Japanese"});
  if (std::string(n.charset) == "ISO_IR 100") {
    f.push_back({n.family, "Latin-1 accented"});
    std::string lower;
    for (const char c : n.given)
      lower += (static_cast<unsigned char>(c) >= 0xC0 && static_cast<unsigned char>(c) <= 0xDE)
                   ? static_cast<char>(c + 0x20)
                   : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    f.push_back({lower, "Latin-1 accented lower"});
  }
  f.push_back({"MRN " + p.id, "MRN"});
  f.push_back({p.id.substr(0, 7) + "-" + p.id.substr(7), "MRN with check digit"});
  f.push_back({p.id.substr(0, 3) + " " + p.id.substr(3, 3) + " " + p.id.substr(6), "MRN spaced"});
  f.push_back({"old number " + p.other_id, "other patient ID"});
  f.push_back({p.issuer.substr(0, p.issuer.find(' ')), "issuer word"});
  f.push_back({p.other_issuer.substr(0, p.other_issuer.find(' ')), "other issuer word"});
  f.push_back({p.institution.substr(0, p.institution.find(' ')), "institution word"});
  f.push_back({p.street, "address street"});
  f.push_back({lower_ascii(p.city), "address city"});
  f.push_back({accession, "accession"});
  const std::string y = p.birth.substr(0, 4), m = p.birth.substr(4, 2), d = p.birth.substr(6, 2);
  f.push_back({y + "-" + m + "-" + d, "birth date ISO"});
  f.push_back({d + "/" + m + "/" + y, "birth date d/m/y"});
  f.push_back({p.birth, "birth date DA"});
  f.push_back({"Dr. " + capitalised(p.physician_family), "physician after title"});
  f.push_back({"DR " + p.physician_family, "physician after DR"});
  f.push_back({"Mrs " + capitalised(p.physician_given) + " " + capitalised(p.physician_family),
               "title given family"});
  std::shuffle(f.begin(), f.end(), rng);
  return f;
}

// The pieces of a written identifier that must not survive: letters/digits runs of two or
// more (folded), and for CJK the characters without spaces.
std::vector<std::string> pieces(const std::string& text, const char* charset) {
  const std::string folded = fold_for_matching(text, encoding_for(charset));
  std::vector<std::string> out;
  std::string run;
  auto flush = [&] {
    if (run.size() >= 2 && run != "DR" && run != "MRS" && run != "MRN" && run != "OLD" &&
        run != "NUMBER")
      out.push_back(run);
    run.clear();
  };
  for (std::size_t i = 0; i < folded.size(); ++i) {
    const auto b = static_cast<unsigned char>(folded[i]);
    if (std::isalnum(b) || b >= 0x80) {
      run += folded[i];
    } else if (b == ' ' && !run.empty() && static_cast<unsigned char>(run.back()) >= 0x80 &&
               i + 1 < folded.size() && static_cast<unsigned char>(folded[i + 1]) >= 0xE0) {
      continue;  // CJK spaced: the characters together
    } else {
      flush();
    }
  }
  flush();
  return out;
}

// `folded` with spaces between CJK characters dropped.
std::string unspaced(const std::string& folded) {
  std::string out;
  for (std::size_t i = 0; i < folded.size(); ++i) {
    if (folded[i] == ' ' && i > 0 && static_cast<unsigned char>(folded[i - 1]) >= 0x80 &&
        i + 1 < folded.size() && static_cast<unsigned char>(folded[i + 1]) >= 0xE0)
      continue;
    out += folded[i];
  }
  return out;
}

bool has_word(const std::string& folded, const std::string& word) {
  for (auto pos = folded.find(word); pos != std::string::npos; pos = folded.find(word, pos + 1)) {
    const bool start = pos == 0 || !std::isalnum(static_cast<unsigned char>(folded[pos - 1]));
    const std::size_t end = pos + word.size();
    const bool stop = end >= folded.size() || !std::isalnum(static_cast<unsigned char>(folded[end]));
    if (start && stop) return true;
  }
  return false;
}

std::string implicit_item(const std::vector<std::pair<DcmTagKey, std::string>>& elements) {
  std::string body;
  auto u16 = [](std::string& s, unsigned v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>((v >> 8) & 0xFF);
  };
  for (const auto& [key, text] : elements) {
    std::string v = text;
    if (v.size() % 2) v += ' ';
    u16(body, key.getGroup());
    u16(body, key.getElement());
    u16(body, static_cast<unsigned>(v.size()));
    u16(body, 0);
    body += v;
  }
  std::string item;
  u16(item, 0xFFFE);
  u16(item, 0xE000);
  u16(item, static_cast<unsigned>(body.size()));
  u16(item, 0);
  return item + body;
}

double seconds_of(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  if (std::system(command.c_str()) != 0) std::cerr << "command failed: " << command << "\n";
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: freetext_bench RADGUARD_BINARY [FILES] [WORK]\n";
    return 2;
  }
  const std::string radguard = argv[1];
  const int files = argc > 2 ? std::atoi(argv[2]) : 600;
  const fs::path work = argc > 3 ? argv[3] : "/tmp/radguard-freetext-bench";
  const unsigned side = argc > 4 ? static_cast<unsigned>(std::atoi(argv[4])) : 512;
  fs::remove_all(work);
  const fs::path corpus = work / "corpus";
  std::mt19937 rng(20);
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
  };
  const std::vector<std::string> places = {"KESTREL VALLEY HEALTH", "HARBOURSIDE INFIRMARY",
                                           "WILLOWMERE CLINIC", "GLENCARRICK HOSPITAL",
                                           "THORNBURY MEDICAL CENTRE", "ASHBOURNE UNIVERSITY HOSPITAL"};
  const std::vector<std::string> streets = {"Larkspur", "Quillfeather", "Marchbank", "Oxley",
                                            "Penhallow", "Tregarthen"};
  const std::vector<std::string> cities = {"EASTBURY", "MILLHAVEN", "CORRANFORD", "BRAXHOLM"};
  const std::vector<std::string> physicians = {"QUIST^HELGA", "OKONKWO^EMEKA", "HALLORAN^NIAMH",
                                               "VASQUEZ^RAFAEL", "TREMBLAY^ODILE"};

  std::vector<Patient> patients;
  for (std::size_t i = 0; i < names().size() * 2; ++i) {
    Patient p;
    p.name = names()[i % names().size()];
    std::string digits;
    for (int k = 0; k < 7; ++k) digits += static_cast<char>('0' + rng() % 10);
    p.id = digits + luhn(digits);
    p.other_id = "ZX" + std::to_string(1000000 + rng() % 9000000);
    p.issuer = pick(places);
    p.other_issuer = pick(places);
    p.institution = pick(places);
    p.street = pick(streets);
    p.city = pick(cities);
    p.birth = std::to_string(1925 + rng() % 70) + "0" + std::to_string(1 + rng() % 9) +
              std::to_string(10 + rng() % 18);
    const std::string doc = pick(physicians);
    p.physician_family = doc.substr(0, doc.find('^'));
    p.physician_given = doc.substr(doc.find('^') + 1);
    patients.push_back(p);
  }

  struct Expected {
    std::vector<std::pair<std::string, std::string>> identifiers;  // piece, kind
    std::vector<std::string> words;
    std::string charset;
  };
  std::vector<Expected> key(static_cast<std::size_t>(files));
  const DcmTagKey fields[] = {DCM_StudyDescription,    DCM_SeriesDescription,
                              DCM_ImageComments,       DCM_AdditionalPatientHistory,
                              DCM_ProtocolName,        DCM_RequestedProcedureDescription,
                              DCM_PerformedProcedureStepDescription};
  const std::vector<std::string> starts = {"MR", "MS", "DR", "CT", "MR ANGIO", "MRS"};
  for (int f = 0; f < files; ++f) {
    const Patient& p = patients[static_cast<std::size_t>(f) % patients.size()];
    const std::string accession = "A" + std::to_string(40000000 + f * 7919);
    char uid[64];
    std::snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.2.1125.77.%d", f + 1);
    auto ct = radguard::testing::make_ct(p.id, uid, side, side);
    DcmDataset& d = *ct->getDataset();
    d.putAndInsertString(DCM_SpecificCharacterSet, p.name.charset);
    // Names in other scripts carry their alphabetic (romanised) group too, as real files do.
    const std::string alphabetic = p.name.latin_family + "^" + p.name.latin_given + "=";
    d.putAndInsertString(DCM_PatientName,
                         ((p.name.cjk ? alphabetic : "") + p.name.family + "^" + p.name.given).c_str());
    d.putAndInsertString(DCM_IssuerOfPatientID, p.issuer.c_str());
    d.putAndInsertString(DCM_PatientBirthDate, p.birth.c_str());
    d.putAndInsertString(DCM_AccessionNumber, accession.c_str());
    d.putAndInsertString(DCM_InstitutionName, p.institution.c_str());
    d.putAndInsertString(DCM_PatientAddress, ("12 " + p.street + " Road, " + p.city).c_str());
    d.putAndInsertString(DCM_ReferringPhysicianName,
                         (p.physician_family + "^" + p.physician_given).c_str());
    d.putAndInsertString(DCM_InstanceNumber, std::to_string(f).c_str());
    // Other Patient IDs: every other file stores the sequence as UN.
    if (f % 2 == 0) {
      const std::string bytes =
          implicit_item({{DCM_PatientID, p.other_id}, {DCM_IssuerOfPatientID, p.other_issuer}});
      auto* un = new DcmOtherByteOtherWord(DcmTag(DCM_OtherPatientIDsSequence, EVR_UN));
      un->putUint8Array(reinterpret_cast<const Uint8*>(bytes.data()),
                        static_cast<unsigned long>(bytes.size()));
      d.insert(un, OFTrue);
    } else {
      DcmItem* item = nullptr;
      d.findOrCreateSequenceItem(DCM_OtherPatientIDsSequence, item, 0);
      item->putAndInsertString(DCM_PatientID, p.other_id.c_str());
      item->putAndInsertString(DCM_IssuerOfPatientID, p.other_issuer.c_str());
    }
    Expected& e = key[static_cast<std::size_t>(f)];
    e.charset = p.name.charset;
    auto forms = forms_of(p, accession, rng);
    std::size_t next = 0;
    for (const auto& field : fields) {
      std::string text;
      std::vector<std::string> words;
      const std::string start = pick(starts);
      text = start;
      std::string w = start;
      for (std::size_t b = 0, e2 = 0; b <= w.size(); ++b) {
        if (b == w.size() || w[b] == ' ') {
          words.push_back(w.substr(e2, b - e2));
          e2 = b + 1;
        }
      }
      const int before = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < before; ++k) {
        const std::string c = pick(clinical());
        text += " " + c;
        words.push_back(c);
      }
      for (int k = 0; k < 2 && next < forms.size(); ++k, ++next) {
        text += " " + forms[next].text;
        for (const auto& piece : pieces(forms[next].text, p.name.charset))
          e.identifiers.push_back({piece, forms[next].kind});
        const std::string c = pick(clinical());
        text += " " + c;
        words.push_back(c);
      }
      d.putAndInsertString(field, text.c_str());
      for (const auto& word : words) e.words.push_back(word);
    }
    radguard::testing::save(*ct, corpus / ("case" + std::to_string(f % 37)) / ("IM" + std::to_string(f)));
  }

  // Timing: cp -r against radguard deid --profile research, interleaved.
  std::vector<double> cp, deid, basic;
  const fs::path out = work / "out";
  const fs::path key_file = work / "bench.key";
  if (std::system(("'" + radguard + "' keygen '" + key_file.string() + "' >/dev/null").c_str()) != 0) {
    std::cerr << "keygen failed\n";
    return 1;
  }
  for (int round = 0; round < 3; ++round) {
    fs::remove_all(work / "copy");
    fs::remove_all(out);
    cp.push_back(seconds_of("cp -r '" + corpus.string() + "' '" + (work / "copy").string() + "'"));
    const std::string run = "'" + radguard + "' deid -j 2 --no-progress --key '" +
                            key_file.string() + "' '" + corpus.string() + "' -o '";
    fs::remove_all(work / "basic");
    basic.push_back(seconds_of(run + (work / "basic").string() + "' --profile basic >/dev/null 2>&1"));
    deid.push_back(seconds_of(run + out.string() + "' --profile research >/dev/null 2>&1"));
  }

  // Scoring.
  std::size_t identifiers = 0, removed = 0, words = 0, kept = 0, outputs = 0;
  std::map<std::string, std::size_t> leaks;
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".dcm") continue;
    DcmFileFormat file;
    if (file.loadFile(OFFilename(entry.path().c_str())).bad()) continue;
    OFString number;
    file.getDataset()->findAndGetOFString(DCM_InstanceNumber, number);
    const auto index = static_cast<std::size_t>(std::atoi(number.c_str()));
    if (index >= key.size()) continue;
    ++outputs;
    std::string all;
    for (const auto& field : fields) {
      OFString value;
      file.getDataset()->findAndGetOFStringArray(field, value);
      all += fold_for_matching(std::string(value.c_str(), value.length()),
                               encoding_for(key[index].charset));
      all += " | ";
    }
    const std::string joined = unspaced(all);
    for (const auto& [piece, kind] : key[index].identifiers) {
      ++identifiers;
      const bool leaked = piece.size() >= 3 ? joined.find(piece) != std::string::npos
                                            : has_word(joined, piece);
      if (leaked) ++leaks[kind + " (" + key[index].charset + ")"];
      else ++removed;
    }
    for (const auto& word : key[index].words) {
      ++words;
      if (has_word(all, fold_for_matching(word, encoding_for("ISO_IR 192")))) ++kept;
    }
  }
  fs::remove_all(work / "copy");
  fs::remove_all(work / "basic");
  std::printf("files: %d generated, %zu outputs\n", files, outputs);
  std::printf("identifier pieces removed: %zu of %zu (%.2f%%)\n", removed, identifiers,
              identifiers ? 100.0 * static_cast<double>(removed) / static_cast<double>(identifiers) : 0.0);
  for (const auto& [kind, count] : leaks) std::printf("  leaked: %-28s %zu\n", kind.c_str(), count);
  std::printf("non-identifying words kept: %zu of %zu (%.2f%%)\n", kept, words,
              words ? 100.0 * static_cast<double>(kept) / static_cast<double>(words) : 0.0);
  std::printf("cp -r: %.3f s (rounds", median(cp));
  for (const double s : cp) std::printf(" %.3f", s);
  std::printf(")\ndeid --profile research -j 2: %.3f s (rounds", median(deid));
  for (const double s : deid) std::printf(" %.3f", s);
  std::printf(")\ndeid --profile basic -j 2 (no free text kept): %.3f s (rounds", median(basic));
  for (const double s : basic) std::printf(" %.3f", s);
  std::printf(")\nratio research / cp -r (medians): %.2f; basic / cp -r: %.2f\n",
              median(deid) / median(cp), median(basic) / median(cp));
  return 0;
}
