// services.hpp for programs that link PostgreSQL and networking directly (tests, tools).
#include "services/services.hpp"

namespace radguard::services {

std::vector<std::filesystem::path> plugin_candidates() { return {}; }
Status load() { return {}; }
bool is_plugin_build() { return false; }

}  // namespace radguard::services
