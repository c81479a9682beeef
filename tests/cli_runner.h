// Runs the engramsim binary as a user would, for the cli-labelled tests: arguments in, exit
// status, stdout and stderr out. ENGRAMSIM_BINARY is set by tests/CMakeLists.txt.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace engramsim::test {

struct CliResult {
    int status = -1;  // exit status; -1 if the process did not exit normally
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs a shell command line (its stderr captured apart from its stdout).
inline CliResult run_command(const std::string& command) {
    // A stderr file of its own per call: CTest runs tests in parallel processes.
    static std::atomic<int> calls{0};
    const std::string err_path = ::testing::TempDir() + "engramsim_stderr_" +
                                 std::to_string(getpid()) + "_" + std::to_string(calls++) + ".txt";
    const std::string cmd = command + " 2>" + err_path;
    CliResult r;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return r;
    char buf[65536];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) r.out.append(buf, n);
    const int status = pclose(pipe);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    std::remove(err_path.c_str());
    return r;
}

inline CliResult run_engramsim(const std::string& args) {
    return run_command(std::string(ENGRAMSIM_BINARY) + " " + args);
}

// A fresh path in the test temp folder, unique per process: PREFIX_TAG_PID (removed if present).
inline std::string temp_path(const std::string& prefix, const std::string& tag) {
    const std::string p =
        ::testing::TempDir() + prefix + "_" + tag + "_" + std::to_string(getpid());
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    return p;
}

// A file's bytes ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace engramsim::test
