// libFuzzer targets for radguard's text formats; FUZZ_FORMAT picks the parser at build time:
// recipe files, consent CSV and FHIR imports, redaction rule files.
#include <cstdint>
#include <string_view>

#if FUZZ_FORMAT == 1
#include "deid/policy.hpp"
#elif FUZZ_FORMAT == 2 || FUZZ_FORMAT == 3
#include "consent/consent.hpp"
#elif FUZZ_FORMAT == 4
#include "redact/redact.hpp"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace radguard;
#if FUZZ_FORMAT == 1
  auto policy = deid::Policy::create("basic", {}, std::nullopt);
  if (policy) (void)policy->add_recipe(text, "fuzz");
#elif FUZZ_FORMAT == 2
  (void)consent::parse_csv(text, "fuzz.csv");
#elif FUZZ_FORMAT == 3
  std::size_t skipped = 0;
  (void)consent::parse_fhir(text, skipped);
#elif FUZZ_FORMAT == 4
  (void)redact::RuleSet::parse(text);
#endif
  return 0;
}
