#pragma once
// A private working folder (mode 0700, a unique name) removed with everything in it when its
// owner goes: where pixel data waits between steps (defacing's replacement slices, instances
// received over the network or uploaded before their series is complete).
#include <filesystem>
#include <string_view>

#include "core/result.hpp"

namespace radguard {

class PrivateFolder {
 public:
  // Makes `<parent>/<prefix>XXXXXX` with mode 0700 (parent: the system temporary folder when
  // empty; created when missing). Fails with ErrorCode::io.
  [[nodiscard]] static Result<PrivateFolder> create(const std::filesystem::path& parent,
                                                    std::string_view prefix);

  PrivateFolder(PrivateFolder&& other) noexcept;
  PrivateFolder& operator=(PrivateFolder&& other) noexcept;
  PrivateFolder(const PrivateFolder&) = delete;
  PrivateFolder& operator=(const PrivateFolder&) = delete;
  // Removes the folder and everything in it (errors ignored: nothing can be done about them
  // on the way out).
  ~PrivateFolder();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit PrivateFolder(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace radguard
