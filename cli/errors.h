// How every engramsim binary reports a command-line error (cli/main.cpp, cli/front.cpp).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace engramsim::cli {

// CLI11's message, trailing blanks dropped.
std::string cli_message(const CLI::ParseError& e);
// "trace hash " for the deepest subcommand that was parsed, "" for the top level.
std::string subcommand_path(const CLI::App& app);
// Prints "engramsim: error: MESSAGE" and where the options are listed, to stderr.
void report_usage_error(const CLI::App& app, const CLI::ParseError& e);

}  // namespace engramsim::cli
