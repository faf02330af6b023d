#include "cli.hpp"

int main(int argc, char** argv) { return radguard::cli::run(argc, argv); }
