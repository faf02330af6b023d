#include <cstdio>
#include <cstdlib>

#include "cli.hpp"
#include "core/error_table.hpp"

int main(int argc, char** argv) {
  int code = radguard::cli::run(argc, argv);
  // Every file is written, checked, fsynced and renamed before run() returns. What a normal
  // exit would add is the libraries' teardown (DCMTK's dictionary, OpenSSL's tables): about a
  // tenth of a short run's instructions, paid again by every shard of a plan and every script
  // that calls radguard per file. So stdio is flushed here, a report that could not be
  // written whole fails the run, and the process leaves without the teardown.
  if (std::fflush(nullptr) != 0 || std::ferror(stdout) != 0) {
    std::fputs("radguard: cannot write standard output\n", stderr);
    if (code == radguard::kExitSuccess) code = radguard::kExitSomeFailed;
  }
  std::_Exit(code);
}
