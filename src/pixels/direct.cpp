// pixels.hpp for programs that link the pixel code directly (tests, tools): always there.
#include "pixels/pixels.hpp"

namespace radguard::pixels {

std::vector<std::filesystem::path> plugin_candidates() { return {}; }
Status load() { return {}; }
bool is_plugin_build() { return false; }

}  // namespace radguard::pixels
