#include "core/warning.hpp"

#include <cstdio>
#include <mutex>

namespace radguard {

namespace {
std::mutex& sink_mutex() {
  static std::mutex mutex;
  return mutex;
}
WarningSink& current_sink() {
  static WarningSink sink;
  return sink;
}
}  // namespace

void warn(std::string_view message) {
  const std::lock_guard lock(sink_mutex());
  if (current_sink()) {
    current_sink()(message);
    return;
  }
  std::fprintf(stderr, "radguard: warning: %.*s\n", static_cast<int>(message.size()),
               message.data());
  std::fflush(stderr);
}

WarningSink set_warning_sink(WarningSink sink) {
  const std::lock_guard lock(sink_mutex());
  WarningSink previous = std::move(current_sink());
  current_sink() = std::move(sink);
  return previous;
}

}  // namespace radguard
