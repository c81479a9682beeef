#include "cli/errors.h"

#include <iostream>
#include <string>

namespace engramsim::cli {

namespace {

// CLI11's message, trailing blanks dropped.
std::string cli_message(const CLI::ParseError& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}

// "trace hash " for the deepest subcommand that was parsed, "" for the top level.
std::string subcommand_path(const CLI::App& app) {
    std::string path;
    const CLI::App* cur = &app;
    while (true) {
        const auto subs = cur->get_subcommands();
        if (subs.empty()) break;
        cur = subs.front();
        path += cur->get_name() + " ";
    }
    return path;
}

}  // namespace

void report_usage_error(const CLI::App& app, const CLI::ParseError& e) {
    // Every usage error exits 1 with the same prefix as any other error, naming the option
    // (CLI11's own exit codes, 105-109, would tell a script nothing it can use).
    std::cerr << "engramsim: error: " << cli_message(e) << "\n"
              << "run 'engramsim " << subcommand_path(app) << "--help' for the options\n"
              << std::flush;
}

}  // namespace engramsim::cli
