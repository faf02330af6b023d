#include "deid/dates.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/text.hpp"

namespace radguard::deid {

namespace {

namespace chr = std::chrono;

bool all_digits(std::string_view s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

int number(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto pos = s.find(sep, start);
    out.push_back(
        s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

template <typename F>
std::optional<std::string> each_value(std::string_view value, F&& shift_one) {
  std::string out;
  bool first = true;
  for (const auto part : split(value, '\\')) {
    if (!first) out += '\\';
    first = false;
    const std::string v = trimmed(part);
    if (v.empty()) continue;
    auto shifted = shift_one(v);
    if (!shifted) return std::nullopt;
    out += *shifted;
  }
  return out;
}

std::optional<chr::sys_days> parse_ymd(int y, int m, int d) {
  const chr::year_month_day ymd{chr::year{y}, chr::month{static_cast<unsigned>(m)},
                                chr::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return chr::sys_days{ymd};
}

std::string format_ymd(chr::sys_days days, std::size_t precision) {
  const chr::year_month_day ymd{days};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d%02u%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return std::string(buf, precision);
}

std::optional<std::string> shift_one_date(const std::string& v, pseudonym::DateOffset offset,
                                          int carry) {
  // Old ACR-NEMA style "YYYY.MM.DD" is still seen; accept it and write the standard form.
  std::string digits;
  for (char c : v)
    if (c != '.') digits += c;
  if (digits.size() != 8 || !all_digits(digits)) return std::nullopt;
  const auto day = parse_ymd(number(digits.substr(0, 4)), number(digits.substr(4, 2)),
                             number(digits.substr(6, 2)));
  if (!day) return std::nullopt;
  return format_ymd(*day + chr::days{offset.days + carry}, 8);
}

// Parses HH[MM[SS[.FFFFFF]]] (and the retired HH:MM:SS) into seconds and the fraction text.
struct TimeParts {
  int seconds = 0;
  std::size_t precision = 0;  // 2, 4 or 6 digits
  std::string fraction;       // including the dot, or empty
  bool colons = false;
};

std::optional<TimeParts> parse_time(const std::string& v) {
  TimeParts t;
  std::string digits;
  std::size_t i = 0;
  for (; i < v.size() && v[i] != '.'; ++i) {
    if (v[i] == ':') {
      t.colons = true;
      continue;
    }
    digits += v[i];
  }
  t.fraction = v.substr(i);
  if (t.fraction.size() > 1 && !all_digits(t.fraction.substr(1))) return std::nullopt;
  if (!all_digits(digits) || (digits.size() != 2 && digits.size() != 4 && digits.size() != 6))
    return std::nullopt;
  const int h = number(digits.substr(0, 2));
  const int m = digits.size() >= 4 ? number(digits.substr(2, 2)) : 0;
  const int s = digits.size() >= 6 ? number(digits.substr(4, 2)) : 0;
  if (h > 23 || m > 59 || s > 60) return std::nullopt;
  t.seconds = h * 3600 + m * 60 + std::min(s, 59);
  t.precision = digits.size();
  return t;
}

std::string format_time(int seconds, const TimeParts& shape) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d%02d%02d", seconds / 3600, (seconds / 60) % 60, seconds % 60);
  return std::string(buf, shape.precision) + (shape.precision == 6 ? shape.fraction : "");
}

}  // namespace

std::optional<std::string> shift_date(std::string_view value, pseudonym::DateOffset offset,
                                      int carry_days) {
  return each_value(value, [&](const std::string& v) -> std::optional<std::string> {
    const auto dash = v.find('-');
    if (dash == std::string::npos) return shift_one_date(v, offset, carry_days);
    // A range; either side may be open.
    std::string out;
    const std::string lo = v.substr(0, dash), hi = v.substr(dash + 1);
    if (!lo.empty()) {
      auto s = shift_one_date(lo, offset, carry_days);
      if (!s) return std::nullopt;
      out += *s;
    }
    out += '-';
    if (!hi.empty()) {
      auto s = shift_one_date(hi, offset, carry_days);
      if (!s) return std::nullopt;
      out += *s;
    }
    return out;
  });
}

std::optional<std::string> shift_time(std::string_view value, pseudonym::DateOffset offset) {
  return each_value(value, [&](const std::string& v) -> std::optional<std::string> {
    const auto t = parse_time(v);
    if (!t) return std::nullopt;
    return format_time((t->seconds + offset.seconds) % 86400, *t);
  });
}

int time_carry_days(std::string_view time_value, pseudonym::DateOffset offset) {
  const std::string first = trimmed(split(time_value, '\\').front());
  const auto t = parse_time(first);
  if (!t) return 0;
  return (t->seconds + offset.seconds) >= 86400 ? 1 : 0;
}

std::optional<std::string> shift_datetime(std::string_view value, pseudonym::DateOffset offset) {
  return each_value(value, [&](const std::string& v) -> std::optional<std::string> {
    // Split off a UTC offset suffix (+HHMM / -HHMM); it is kept as it is.
    std::string body = v, zone;
    const auto zpos = v.find_first_of("+-", 4);
    if (zpos != std::string::npos) {
      body = v.substr(0, zpos);
      zone = v.substr(zpos);
    }
    std::string fraction;
    if (const auto dot = body.find('.'); dot != std::string::npos) {
      fraction = body.substr(dot);
      body = body.substr(0, dot);
    }
    if (!all_digits(body) || body.size() < 4 || body.size() > 14 || body.size() % 2 != 0)
      return std::nullopt;
    const int y = number(body.substr(0, 4));
    const int mo = body.size() >= 6 ? number(body.substr(4, 2)) : 1;
    const int d = body.size() >= 8 ? number(body.substr(6, 2)) : 1;
    const int h = body.size() >= 10 ? number(body.substr(8, 2)) : 0;
    const int mi = body.size() >= 12 ? number(body.substr(10, 2)) : 0;
    const int s = body.size() >= 14 ? number(body.substr(12, 2)) : 0;
    const auto day = parse_ymd(y, mo, d);
    if (!day || h > 23 || mi > 59 || s > 60) return std::nullopt;
    // Coarser than a day: only the date moves. Otherwise the time moves too.
    const bool has_time = body.size() >= 10;
    long long secs = static_cast<long long>(h) * 3600 + mi * 60 + std::min(s, 59);
    int extra_days = 0;
    if (has_time) {
      secs += offset.seconds;
      extra_days = static_cast<int>(secs / 86400);
      secs %= 86400;
    }
    const chr::sys_days shifted = *day + chr::days{offset.days + extra_days};
    std::string out = format_ymd(shifted, std::min<std::size_t>(body.size(), 8));
    if (has_time) {
      char buf[32];  // room for what -Wformat-truncation assumes secs could be
      std::snprintf(buf, sizeof buf, "%02lld%02lld%02lld", secs / 3600, (secs / 60) % 60,
                    secs % 60);
      out += std::string(buf, body.size() - 8);
      if (body.size() == 14) out += fraction;
    }
    return out + zone;
  });
}

std::string cap_age(std::string_view value) {
  const std::string v = trimmed(value);
  if (v.size() != 4 || !all_digits(v.substr(0, 3))) return v;
  const int n = number(v.substr(0, 3));
  double years = 0;
  switch (v[3]) {
    case 'Y':
      years = n;
      break;
    case 'M':
      years = n / 12.0;
      break;
    case 'W':
      years = n / 52.0;
      break;
    case 'D':
      years = n / 365.0;
      break;
    default:
      return v;
  }
  return years > 89 ? "090Y" : v;
}

}  // namespace radguard::deid
