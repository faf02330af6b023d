#include "core/iso_time.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>

namespace radguard {

namespace chr = std::chrono;

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  const char* begin = s.data() + pos;
  const char* end = begin + count;
  for (const char* p = begin; p != end; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return std::from_chars(begin, end, out).ec == std::errc{};
}

std::string format_date(chr::year_month_day ymd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string format_time(chr::sys_seconds t) {
  const auto day = chr::floor<chr::days>(t);
  const chr::hh_mm_ss hms(t - day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02dZ", static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return format_date(chr::year_month_day(day)) + buf;
}

}  // namespace

Result<std::string> normalize_iso8601(std::string_view text) {
  auto bad = [] {
    return fail(ErrorCode::usage,
                "not an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm:ssZ)");
  };
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  int y = 0, m = 0, d = 0;
  std::size_t pos = 0;
  if (text.size() >= 10 && text[4] == '-' && text[7] == '-') {
    if (!digits(text, 0, 4, y) || !digits(text, 5, 2, m) || !digits(text, 8, 2, d)) return bad();
    pos = 10;
  } else if (text.size() >= 8 && digits(text, 0, 4, y) && digits(text, 4, 2, m) &&
             digits(text, 6, 2, d)) {
    pos = 8;
  } else {
    return bad();
  }
  const chr::year_month_day ymd{chr::year(y), chr::month(static_cast<unsigned>(m)),
                                chr::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return bad();
  if (pos == text.size()) return format_date(ymd);
  if (text[pos] != 'T' && text[pos] != ' ') return bad();
  ++pos;
  int hh = 0, mm = 0, ss = 0;
  if (!digits(text, pos, 2, hh) || pos + 2 >= text.size() || text[pos + 2] != ':' ||
      !digits(text, pos + 3, 2, mm))
    return bad();
  pos += 5;
  if (pos < text.size() && text[pos] == ':') {
    if (!digits(text, pos + 1, 2, ss)) return bad();
    pos += 3;
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      ++pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    }
  }
  if (hh > 24 || mm > 59 || ss > 60 || (hh == 24 && (mm != 0 || ss != 0))) return bad();
  int offset_minutes = 0;
  if (pos < text.size()) {
    const char sign = text[pos];
    if (sign == 'Z' && pos + 1 == text.size()) {
      // UTC
    } else if (sign == '+' || sign == '-') {
      int oh = 0, om = 0;
      if (!digits(text, pos + 1, 2, oh)) return bad();
      std::size_t after = pos + 3;
      if (after < text.size() && text[after] == ':') ++after;
      if (after < text.size()) {
        if (!digits(text, after, 2, om)) return bad();
        after += 2;
      }
      if (after != text.size() || oh > 14 || om > 59) return bad();
      offset_minutes = (sign == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
      return bad();
    }
  }
  const chr::sys_seconds t = chr::sys_days(ymd) + chr::hours(hh) + chr::minutes(mm) +
                             chr::seconds(std::min(ss, 59)) - chr::minutes(offset_minutes);
  return format_time(t);
}

std::string utc_now_iso8601() {
  return format_time(chr::floor<chr::seconds>(chr::system_clock::now()));
}

std::string end_of(std::string_view normalized) {
  if (normalized.size() == 10) return std::string(normalized) + "T23:59:59Z";
  return std::string(normalized);
}

}  // namespace radguard
