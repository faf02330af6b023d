#pragma once
// Group commits: many files published durably with one flush per distinct folder for all of
// them, where PendingFile::commit flushes each file's folder once per file (each flush a
// journal commit and a disk cache flush: milliseconds on a busy disk; concurrent folder
// flushes on ext4 or XFS share a journal commit). For a process that publishes files faster
// than one at a time can be flushed (the gateway's workers and forwarder).
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "core/atomic_file.hpp"
#include "core/result.hpp"

namespace radguard {

// One file of a group commit.
struct FileToWrite {
  std::filesystem::path destination;
  std::string_view bytes;  // not empty
};

// Writes several files, each atomically as write_file_atomically does (a temporary name in the
// destination's folder, created when missing, written and fsynced, then renamed; `existing` as
// PendingFile::commit takes it); after every rename each distinct destination folder is
// fsynced once, and the parent of each folder made on the way from `root` (an existing folder
// above the destinations). Once a file's status is success its contents and name survive a
// crash. For one file in an existing folder it costs what PendingFile::commit costs. No syncfs:
// before Linux 5.17 it could return 0 after the file system failed to commit its journal.
// Returns one status per file, in order: ErrorCode::io (a failed folder flush fails every file
// that needed it; the names may be on disk or not, the caller tries again), or
// ErrorCode::conflict (keep_if_different, and different bytes are there).
[[nodiscard]] std::vector<Status> write_files_atomically(const std::filesystem::path& root,
                                                         std::span<const FileToWrite> files,
                                                         std::filesystem::perms perms,
                                                         PendingFile::Existing existing);

// Tests only: every folder flush of write_files_atomically first asks `fault`, and fails with
// its error when it returns one (an empty function: none).
void set_folder_flush_fault_for_testing(std::function<Status(const std::filesystem::path&)> fault);

// Tests only: every flush of a file's bytes by PendingFile (write_contents, flush, commit)
// first asks `fault` with the temporary file's path, and fails with its error when it returns
// one (an empty function: none). A fault that counts its calls counts the flushes.
void set_file_flush_fault_for_testing(std::function<Status(const std::filesystem::path&)> fault);

}  // namespace radguard
