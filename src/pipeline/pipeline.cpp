#include "pipeline/pipeline.hpp"

#include <cstdio>
#include <map>

#include "consent/consent.hpp"
#include "core/iso_time.hpp"
#include "core/version.hpp"
#include "dicom/dicom_file.hpp"
#include "crypto/crypto.hpp"
#include "ledger/ledger.hpp"
#include "pipeline/consent_gate.hpp"
#include "redact/redact.hpp"
#include "share/gates.hpp"
#include "store/database.hpp"

namespace radguard::pipeline {

namespace fs = std::filesystem;

Result<exporter::OnFailure> parse_on_failure(std::string_view text) {
  if (text == "withhold-study") return exporter::OnFailure::withhold_study;
  if (text == "abort") return exporter::OnFailure::abort;
  return fail(ErrorCode::usage, "--on-failure must be withhold-study or abort");
}

Result<signing::Signer> load_signer(const SigningSpec& spec) {
  if (spec.profile.empty()) {
    auto signer = signing::Signer::load(spec.key, spec.cert, signing::SignatureProfile::base);
    if (!signer && signer.error().code == ErrorCode::usage)
      signer = signing::Signer::load(spec.key, spec.cert, signing::SignatureProfile::none);
    return signer;
  }
  auto profile = dicom::parse_signature_profile(spec.profile);
  if (!profile) return std::unexpected(profile.error());
  return signing::Signer::load(spec.key, spec.cert, *profile);
}

namespace {

// What the recipe and options keep that the Basic Profile would not, so an output is never
// believed cleaner than it is.
std::vector<std::string> kept_attribute_warnings(const deid::Policy& policy) {
  std::map<std::string, std::vector<std::string>> by_source;
  std::vector<std::string> direct;
  for (const auto& kept : policy.kept_against_profile()) {
    by_source[kept.source].push_back(kept.name);
    if (kept.direct_identifier) direct.push_back(kept.name);
  }
  auto joined = [](const std::vector<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
  };
  std::vector<std::string> warnings;
  for (const auto& [source, names] : by_source)
    warnings.push_back((source == "recipe" ? "the " : "option ") + source + " keeps " +
                       std::to_string(names.size()) +
                       " attribute(s) the Basic Profile removes or replaces: " + joined(names));
  if (!direct.empty())
    warnings.push_back("a direct identifier is kept (" + joined(direct) +
                       "): outputs are marked Patient Identity Removed = NO");
  return warnings;
}

// Clean Pixel Data's settings, checked: a mode that cleans, and the rule file read.
Result<std::shared_ptr<const redact::RedactOptions>> redact_options(const Spec& spec) {
  auto mode = redact::parse_mode(spec.redact_mode);
  if (!mode) return std::unexpected(mode.error());
  if (*mode == redact::Mode::report)
    return fail(ErrorCode::usage, "--redact-mode report cannot clean pixel data for release");
  auto options = std::make_shared<redact::RedactOptions>();
  options->mode = *mode;
  if (!spec.redaction_rules.empty()) {
    auto rules = redact::RuleSet::load(spec.redaction_rules);
    if (!rules) return std::unexpected(rules.error());
    options->rules = std::move(*rules);
  }
  return std::shared_ptr<const redact::RedactOptions>(std::move(options));
}

}  // namespace

Result<Pipeline> Pipeline::create(const Spec& spec) {
  Pipeline made;
  made.spec_ = std::make_shared<const Spec>(spec);
  auto key = crypto::SecretKey::load(spec.key_file);
  if (!key) return std::unexpected(key.error());
  if (auto warning = crypto::SecretKey::permission_warning(spec.key_file)) made.warnings_.push_back(*warning);
  auto policy = deid::Policy::create(
      spec.profile, spec.options,
      spec.recipe.empty() ? std::nullopt : std::optional<fs::path>(spec.recipe));
  if (!policy) return std::unexpected(policy.error());
  for (auto& warning : kept_attribute_warnings(*policy))
    made.warnings_.push_back(std::move(warning));
  made.header_stage_ = std::make_shared<const deid::HeaderStage>(
      std::move(*policy), pseudonym::Pseudonymizer(std::move(*key)),
      spec.burned_in == BurnedIn::allow ? deid::BurnedInPolicy::allow
                                        : deid::BurnedInPolicy::reject);

  const SigningSpec& sign = spec.signing;
  if (!sign.key.empty() || !sign.cert.empty()) {
    if (sign.key.empty() || sign.cert.empty())
      return fail(ErrorCode::usage, "--sign-key and --sign-cert go together");
    auto signer = load_signer(sign);
    if (!signer) return std::unexpected(signer.error());
    made.signer_ = std::make_shared<const signing::Signer>(std::move(*signer));
  }

  if (made.header_stage_->policy().has(deid::PixelOption::clean_pixel_data)) {
    auto options = redact_options(spec);
    if (!options) return std::unexpected(options.error());
    made.redact_options_ = std::move(*options);
  }
  return made;
}

std::vector<deid::PixelStage> Pipeline::pixel_stages() const {
  std::vector<deid::PixelStage> stages;
  const deid::Policy& policy = header_stage_->policy();
  // Faces first: defacing reads the original pixels of whole series, and a face removed
  // before OCR cannot hide or create text.
  if (policy.has(deid::PixelOption::clean_recognizable_visual_features))
    stages.push_back(share::defacing_stage());
  if (policy.has(deid::PixelOption::clean_pixel_data)) {
    stages.push_back(share::clean_pixel_data_stage(redact_options_));
  } else if (spec_->burned_in == BurnedIn::refuse) {
    // Nothing cleans burned-in text: whatever may show it is refused, not released silently.
    stages.push_back(share::burned_in_gate());
  }
  return stages;
}

deid::OutputFinisher Pipeline::finisher() const {
  if (!signer_) return {};
  return deid::OutputFinisher([signer = signer_](const fs::path& temporary) -> Status {
    auto signed_file = signing::sign_file(temporary, temporary, *signer);
    if (!signed_file) return std::unexpected(with_context(signed_file.error(), "signing"));
    return {};
  });
}

deid::DeidRunOptions Pipeline::deid_options(const DeidRun& run) const {
  deid::DeidRunOptions options;
  options.inputs = run.inputs;
  options.output = run.output;
  options.threads = run.threads;
  options.progress = run.progress;
  options.pixel_stages = pixel_stages();
  options.finish = finisher();
  options.written = run.written;
  options.report_paths = run.report_paths;
  options.existing = run.existing;
  options.volumes = run.volumes;
  options.listener = run.listener;
  options.cancel = run.cancel;
  options.stale_temporaries = run.stale_temporaries;
  options.report_roots = run.report_roots;
  return options;
}

Result<deid::DeidRunReport> Pipeline::run_deid(const DeidRun& run) const {
  return deid::run_deid(deid_options(run), *header_stage_);
}

bool Pipeline::needs_whole_series() const {
  return header_stage_->policy().has(deid::PixelOption::clean_recognizable_visual_features);
}

Result<OutputInstance> Pipeline::process_instance(std::span<const std::uint8_t> bytes,
                                                  std::string_view id) const {
  if (needs_whole_series())
    return fail(ErrorCode::unsupported,
                "defacing needs the whole series: an instance held in memory cannot be defaced "
                "on its own (give the series to a SeriesAssembler)");
  auto file = dicom::DicomFile::open_bytes(bytes);
  if (!file) return std::unexpected(file.error());
  if (file->is_dicomdir())
    return fail(ErrorCode::policy, "DICOMDIR not copied: it lists patient identities");
  const std::vector<deid::PixelStage> stages = pixel_stages();
  return process_opened(fs::path(std::string(id)), *file, stages);
}

Result<OutputInstance> Pipeline::process_opened(const fs::path& id, dicom::DicomFile& file,
                                                std::span<const deid::PixelStage> stages) const {
  OutputInstance out;
  auto name = deid::deidentify_instance(id, file, *header_stage_, stages, out.pixels);
  if (!name) return std::unexpected(name.error());
  auto saved = file.save_bytes(
      {std::string(kImplementationClassUid), std::string(kImplementationVersionName)});
  if (!saved) return std::unexpected(saved.error());
  out.name = std::move(*name);
  if (signer_) {
    auto signed_bytes = dicom::sign_bytes(*saved, *signer_);
    if (!signed_bytes) return std::unexpected(with_context(signed_bytes.error(), "signing"));
    out.bytes = std::move(signed_bytes->bytes);
  } else {
    out.bytes = std::move(*saved);
  }
  return out;
}

namespace {

// The audit gate: what the release holds, audited as a recipient would (full depth, values
// never shown); refused with the findings' counts by category, which name no patient.
Result<std::optional<std::string>> audit_release(const fs::path& staging, audit::FailOn gate,
                                                 unsigned threads) {
  audit::Options options;
  options.threads = threads;
  const fs::path inputs[] = {staging};
  const auto report = audit::audit(inputs, options);
  if (!report) return std::unexpected(report.error());
  if (audit::exit_status(*report, gate) == 0) return std::nullopt;
  const auto least = gate == audit::FailOn::high ? audit::Severity::high : audit::Severity::medium;
  // The staged names are pseudonymous UIDs and the reasons fixed phrases: the first few
  // findings can be named without naming anyone.
  std::map<std::string, std::size_t> by_category;
  std::string first;
  std::size_t listed = 0;
  for (const auto& f : report->findings) {
    if (f.severity < least) continue;
    ++by_category[std::string(audit::to_string(f.category))];
    if (++listed <= 5)
      first += "\n  " + f.file + ": " + std::string(audit::to_string(f.severity)) + " " +
               std::string(audit::to_string(f.category)) + ": " + f.reason;
  }
  std::string counts;
  for (const auto& [category, n] : by_category)
    counts += (counts.empty() ? "" : ", ") + category + " " + std::to_string(n);
  return std::string("the audit found problems of ") + std::string(audit::to_string(least)) +
         " severity or above (" + counts + ")" + first +
         (listed > 5 ? "\n  ... (radguard deid with the same settings, then radguard audit on "
                       "its output, lists them all)"
                     : "");
}

}  // namespace

exporter::ReleaseGate audit_gate(audit::FailOn gate, unsigned threads) {
  if (gate == audit::FailOn::never) return {};
  return [gate, threads](const fs::path& staging) { return audit_release(staging, gate, threads); };
}

Result<exporter::ExportOptions> Pipeline::export_options(const ExportRun& run) const {
  auto consent_settings = check_consent_settings(run.purpose, run.consent_at);
  if (!consent_settings) return std::unexpected(consent_settings.error());
  exporter::ExportOptions options;
  options.mode = run.mode;
  options.on_failure = run.on_failure;
  options.inputs = run.inputs;
  options.output = run.output;
  options.purpose = consent_settings->purpose;
  options.recipient = run.recipient;
  options.threads = run.threads;
  options.progress = run.progress;
  options.consent_time = consent_settings->consent_at;
  options.listener = run.listener;
  options.cancel = run.cancel;
  options.shard = run.shard;
  // Built after the consent gate, for the permitted files only: the stages' preparation
  // (defacing) never sees a withheld patient's images.
  options.pixel_stages = [self = *this](const std::vector<fs::path>&)
      -> Result<std::vector<deid::PixelStage>> { return self.pixel_stages(); };
  options.finish = finisher();
  // A shard's gate is run by radguard plan publish, over the whole release (recorded in the
  // shard's part: ShardStaging::audit_gate).
  if (!run.shard) options.release_gate = audit_gate(run.audit_gate, run.threads);
  if (signer_) options.manifest_signer = signing::KeyFiles{spec_->signing.key, spec_->signing.cert};
  return options;
}

Result<exporter::ExportReport> Pipeline::run_export(const ExportRun& run) const {
  auto options = export_options(run);
  if (!options) return std::unexpected(options.error());
  // A mistyped registry path must not become a fresh, empty registry that withholds
  // everything without saying why.
  std::error_code ec;
  if (store::names_a_file(run.registry) && !fs::exists(run.registry, ec))
    return fail(ErrorCode::not_found,
                "the consent registry " + run.registry +
                    " does not exist (create it with radguard consent import or set)");
  auto registry = consent::Registry::open(run.registry, consent::RegistryAccess::existing_only);
  if (!registry) return std::unexpected(registry.error());
  // A dry run appends nothing: a ledger that does not exist yet is not created (an empty one
  // in memory stands in for it).
  const bool dry_run = run.mode == exporter::ExportMode::dry_run;
  const bool no_ledger_yet = store::names_a_file(run.ledger) && !fs::exists(run.ledger, ec);
  auto in_memory = [] {
    return ledger::Ledger::open("file:radguard-dry-run?mode=memory",
                                ledger::LedgerAccess::create_if_missing);
  };
  // A shard appends nothing either, and does not open the ledger (it is recorded in the
  // shard's part; radguard plan publish appends once for all shards and checks its key).
  const bool shard = run.mode == exporter::ExportMode::stage_shard;
  auto ledger = (dry_run && no_ledger_yet) || shard
                    ? in_memory()
                    : ledger::Ledger::open(run.ledger, dry_run
                                                           ? ledger::LedgerAccess::existing_only
                                                           : ledger::LedgerAccess::create_if_missing);
  // A database server's ledger whose tables are not made yet is, for a dry run, a ledger
  // that does not exist yet.
  if (!ledger && dry_run && ledger.error().code == ErrorCode::not_found) ledger = in_memory();
  if (!ledger) return std::unexpected(ledger.error());
  // Checked before any work: the ledger would refuse the entry at the end.
  if (auto same = ledger->check_key(header_stage_->pseudonymizer().key().fingerprint()); !same)
    return std::unexpected(same.error());
  return exporter::run_export(*options, *header_stage_, *registry, *ledger);
}

}  // namespace radguard::pipeline
