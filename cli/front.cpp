// engramsim: the command a user types. `engramsim replay ...` runs here, in a binary that links
// the placement replay alone: neither SimGrid (with ns-3), MPI, OpenBLAS nor CUDA. Loading them
// cost every process 45 ms on the 2-core VM, and OpenBLAS's idle threads spun on the cores a
// replay uses. Everything else (every other command, --help, --version, a run under mpirun) is
// handed to the full binary beside this one, engramsim-full, which has every command, replay
// included, by exec: the same process, arguments and environment.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/errors.h"

namespace {

// Under mpirun every rank would replay alike: the full binary refuses it with its reasons.
bool under_mpi() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
        if (std::getenv(var)) return true;
    return false;
}

int exec_full(char** argv) {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::filesystem::path full =
        (ec ? std::filesystem::path(argv[0]).parent_path() : self.parent_path()) / "engramsim-full";
    ::execv(full.c_str(), argv);
    std::cerr << "engramsim: error: cannot run " << full.string() << ": " << std::strerror(errno)
              << " (every command but replay runs in that binary, built beside this one)\n";
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "replay") != 0 || under_mpi()) return exec_full(argv);
    CLI::App app{"EngramSim: simulator and performance model for Engram conditional memory.",
                 "engramsim"};
    app.require_subcommand(1, 1);
    engramsim::cli::add_replay_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        engramsim::cli::report_usage_error(app, e);
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "engramsim: error: " << e.what() << "\n" << std::flush;
        return 1;
    }
    return 0;
}
