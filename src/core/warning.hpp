#pragma once
// Warnings for the operator that do not fail anything (a key file others can read). They go
// to stderr, one line each, unless a test or a front end installs its own sink. Never holds
// attribute values.
#include <functional>
#include <string>
#include <string_view>

namespace radguard {

void warn(std::string_view message);

// Replaces where warnings go (nullptr: back to stderr); returns the previous sink.
using WarningSink = std::function<void(std::string_view)>;
WarningSink set_warning_sink(WarningSink sink);

}  // namespace radguard
