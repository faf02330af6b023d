#pragma once
// Group commits: many files published durably with a flush of their file system (syncfs) for
// all of them, where PendingFile::commit flushes each file and its folder (each flush a journal
// commit and a disk cache flush: milliseconds on a busy disk). For a process that publishes
// files faster than one at a time can be flushed (the gateway's workers and forwarder).
#include <filesystem>
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
// destination's folder, created when missing, then a rename; `existing` as PendingFile::commit
// takes it): the file system is flushed once for all their contents before any is renamed, and
// once more for the new names and folders. Once a file's status is success its contents and
// name survive a crash. `root` is an existing folder on the destinations' file system, opened
// before anything is written so that the flush reports any write-back error since (syncfs
// reports those seen since its descriptor was opened); a destination on another file system is
// committed on its own (PendingFile::commit). The cost: a flush also writes out what other
// programs left dirty on that file system. Returns one status per file, in order: ErrorCode::io
// (a failed flush fails every file it was to cover; none is renamed when the first one fails),
// or ErrorCode::conflict (keep_if_different, and different bytes are there).
[[nodiscard]] std::vector<Status> write_files_atomically(const std::filesystem::path& root,
                                                         std::span<const FileToWrite> files,
                                                         std::filesystem::perms perms,
                                                         PendingFile::Existing existing);

// Flushes the whole file system that holds `path` (syncfs): every name created, renamed or
// removed on it before the call survives a crash. One flush for changes in many folders, where
// sync_folder flushes one folder. Fails with ErrorCode::io.
[[nodiscard]] Status sync_file_system(const std::filesystem::path& path);

}  // namespace radguard
