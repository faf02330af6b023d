#pragma once
// The page's files (src/serve/assets/), compiled into the binary by embed_assets.cmake:
// nothing is read from disk or fetched from elsewhere at run time.
#include <span>
#include <string_view>

namespace radguard::serve {

struct Asset {
  std::string_view path;          // "/", "/app.js", "/style.css"
  std::string_view content_type;  // "text/html; charset=utf-8" ...
  std::string_view body;
};

std::span<const Asset> assets();

}  // namespace radguard::serve
