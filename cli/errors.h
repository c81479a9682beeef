// How every engramsim binary reports a command-line error (cli/main.cpp, cli/front.cpp).
#pragma once

#include <CLI/CLI.hpp>

namespace engramsim::cli {

// Prints "engramsim: error: MESSAGE" (CLI11's, naming the option) and which command's --help
// lists the options, to stderr.
void report_usage_error(const CLI::App& app, const CLI::ParseError& e);

}  // namespace engramsim::cli
