#pragma once
// Shifting DICOM DA, TM and DT values by a per-patient offset, keeping each value's
// precision and time zone, and capping ages.
#include <optional>
#include <string>
#include <string_view>

#include "pseudonym/pseudonymizer.hpp"

namespace radguard::deid {

// Shifts a DA value (YYYYMMDD, or a range "A-B", multi-valued with '\'). `carry_days` is
// the extra day a paired time's shift rolled over. nullopt when a value cannot be parsed.
std::optional<std::string> shift_date(std::string_view value, pseudonym::DateOffset offset,
                                      int carry_days = 0);

// Shifts a TM value (HH[MM[SS[.F+]]]) by the offset's seconds, modulo one day.
std::optional<std::string> shift_time(std::string_view value, pseudonym::DateOffset offset);

// Whether shifting this TM value rolls it past midnight (the date partner moves one more day).
int time_carry_days(std::string_view time_value, pseudonym::DateOffset offset);

// Shifts a DT value (YYYY[MM[DD[HH[MM[SS[.F]]]]]][&ZZXX]) keeping precision and time zone.
std::optional<std::string> shift_datetime(std::string_view value, pseudonym::DateOffset offset);

// An AS value over 89 years becomes "090Y" (ages over 89 identify); others are kept.
std::string cap_age(std::string_view value);

}  // namespace radguard::deid
