// Running a command line from a test (the radguard binary, mostly) and keeping what it said.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace radguard::testing {

// Runs `command` through /bin/sh and returns its standard output (the command line decides
// where stderr goes). `exit_code` is the exit status, or -1 when the command could not be
// started or did not exit normally (a signal).
inline std::string run_shell(const std::string& command, int& exit_code) {
  exit_code = -1;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  while (const std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) exit_code = WEXITSTATUS(status);
  return out;
}

}  // namespace radguard::testing
