#pragma once
// The header stage: applies a Policy to every attribute of one DICOM object, at every
// nesting level, with keyed pseudonyms and per-patient date shifts, then marks the object
// as de-identified (PS3.15 E.1.1 and CID 7050).
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "deid/policy.hpp"
#include "deid/text_scrubber.hpp"
#include "dicom/dicom_file.hpp"
#include "pseudonym/pseudonymizer.hpp"

namespace radguard::deid {

// What to do with an image whose header says text is burned into its pixels, when no pixel
// stage cleans it.
enum class BurnedInPolicy : std::uint8_t {
  reject,  // fail the file (the default: fail closed)
  allow,   // the operator has checked these images by other means
};

// How every refusal for burned-in text begins (the header stage's own for Burned In
// Annotation = YES, and share::burned_in_gate's), so reports can count them.
inline constexpr std::string_view kBurnedInRefusal = "may show burned-in text";

// Identifiers of one output object, all after de-identification (no PHI).
struct InstanceIdentity {
  std::string study_uid;
  std::string series_uid;
  std::string sop_instance_uid;
  std::string patient_pseudonym;
};

// Immutable once built; apply() may run concurrently on distinct files.
class HeaderStage {
 public:
  HeaderStage(Policy policy, pseudonym::Pseudonymizer pseudonymizer, BurnedInPolicy burned_in);

  // De-identifies `file` in place. Marks it Patient Identity Removed = YES, or NO when the
  // policy keeps a direct identifier (Policy::keeps_direct_identifier). Fails with
  // ErrorCode::policy when the object must not be released (burned-in annotation),
  // ErrorCode::internal if DCMTK refuses an edit. On failure the object is left half-changed and
  // must be discarded.
  [[nodiscard]] Result<InstanceIdentity> apply(dicom::DicomFile& file) const;

  const Policy& policy() const { return policy_; }
  const pseudonym::Pseudonymizer& pseudonymizer() const { return pseudonymizer_; }
  // The text written to De-identification Method (0012,0063).
  std::string method_description() const;

 private:
  Policy policy_;
  pseudonym::Pseudonymizer pseudonymizer_;
  BurnedInPolicy burned_in_;
  // Patient Identity Removed is YES only when no direct identifier is kept.
  bool identity_removed_ = true;
  // Whether any attribute may be cleaned (C), so the object's identifying values are needed.
  bool needs_phi_ = false;
};

// The values of `file` that may name it in a folder or file name (patient names, IDs,
// issuer, birth date, accession number; for a DICOMDIR those of every record), for masking
// input paths in reports.
PhiValues path_identifiers(const dicom::DicomFile& file);

}  // namespace radguard::deid
