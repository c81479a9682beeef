// engramsim-full: every engramsim command (cli/front.cpp runs `engramsim replay` itself and
// hands everything else here). `engramsim --help` lists the subcommands.
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>

#include "build_info/build_info.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "model/config.h"
#include "sim/sweep/mpi_world.h"

namespace {

// Under mpirun with several ranks, only sweeps spread their work; any other command would run
// once per rank, so it is refused before it starts.
void check_mpi_command(int argc, char** argv) {
    if (engramsim::sim::mpi::size() < 2) return;
    const char* sub = nullptr;
    for (int i = 1; i < argc && !sub; ++i)
        if (argv[i][0] != '-') sub = argv[i];
    if (sub && (!std::strcmp(sub, "sweep") || !std::strcmp(sub, "study"))) return;
    throw std::invalid_argument(std::string("under MPI (") +
                             std::to_string(engramsim::sim::mpi::size()) +
                             " ranks) only `engramsim sweep` and `engramsim study run NAME` "
                             "spread their points over the ranks; run `engramsim " +
                             (sub ? sub : "") + "` without mpirun");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"EngramSim: simulator and performance model for Engram conditional memory.\n"
                 "With no subcommand, runs the main job: the paper's Table 4 reproduction\n(engramsim study run paper-table4).",
                 "engramsim"};
#if ENGRAMSIM_HAVE_CUDA
    const char* cuda = "CUDA kernels and profiler: built";
#else
    const char* cuda = "CUDA kernels and profiler: not built (no nvcc at configure time)";
#endif
    app.set_version_flag(
        "--version", std::string("engramsim ") + engramsim::build::version() + " (" +
                         engramsim::build::git_commit() +
                         ")\n" + cuda + "\nsweeps across MPI ranks: " +
                         (engramsim::sim::mpi::built_with_mpi()
                              ? "built (mpirun -n N engramsim sweep ...)"
                              : "not built (no libopenmpi-dev at configure time)"));
    app.require_subcommand(0, 1);
    engramsim::cli::add_presets_command(app);
    engramsim::cli::add_config_command(app);
    engramsim::cli::add_trace_command(app);
    engramsim::cli::add_profile_command(app);
    engramsim::cli::add_replay_command(app);
    engramsim::cli::add_run_command(app);
    engramsim::cli::add_plan_command(app);
    engramsim::cli::add_execute_command(app);
    engramsim::cli::add_calibrate_command(app);
    engramsim::cli::add_sweep_command(app);
    engramsim::cli::add_solve_command(app);
    engramsim::cli::add_study_command(app);
    engramsim::cli::add_validate_command(app);
    try {
        engramsim::sim::mpi::init(&argc, &argv);
        check_mpi_command(argc, argv);
        app.parse(argc, argv);
        if (app.get_subcommands().empty()) engramsim::cli::run_paper_table4(false, true);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        engramsim::cli::report_usage_error(app, e);
        engramsim::sim::mpi::abort_world(1);
        return 1;
    } catch (const std::exception& e) {
        namespace mpi = engramsim::sim::mpi;
        // Under MPI, a bad config or usage fails on every rank alike: rank 0 alone says so.
        const bool every_rank = dynamic_cast<const engramsim::config::ConfigError*>(&e) ||
                                dynamic_cast<const std::invalid_argument*>(&e);
        // One write, so an abort from another rank cannot cut the line.
        const std::string line =
            mpi::size() < 2
                ? std::string("engramsim: error: ") + e.what() + "\n"
                : "engramsim: error: rank " + std::to_string(mpi::rank()) + ": " + e.what() + "\n";
        if (mpi::size() < 2 || mpi::rank() == 0 || !every_rank) std::cerr << line << std::flush;
        // A silent rank leaves rank 0 time to say it before the abort tears the job down.
        if (mpi::size() > 1 && mpi::rank() != 0 && every_rank)
            std::this_thread::sleep_for(std::chrono::seconds(5));
        mpi::abort_world(1);  // the other ranks may be waiting for this one
        return 1;
    }
    return 0;
}
