// engramsim: the command-line front end. `engramsim --help` lists the subcommands.
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
    CLI::App app{"EngramSim: simulator and performance model for Engram conditional memory.\n"
                 "With no subcommand, runs the main job: the paper's Table 4 reproduction\n(engramsim study run paper-table4).",
                 "engramsim"};
    app.set_version_flag("--version", std::string("engramsim ") + ENGRAMSIM_VERSION + " (" +
                                          ENGRAMSIM_GIT_COMMIT + ")");
    app.require_subcommand(0, 1);
    engramsim::cli::add_presets_command(app);
    engramsim::cli::add_config_command(app);
    engramsim::cli::add_trace_command(app);
    engramsim::cli::add_profile_command(app);
    engramsim::cli::add_replay_command(app);
    engramsim::cli::add_run_command(app);
    engramsim::cli::add_sweep_command(app);
    engramsim::cli::add_study_command(app);
    engramsim::cli::add_validate_command(app);
    try {
        app.parse(argc, argv);
        if (app.get_subcommands().empty()) engramsim::cli::run_paper_table4(false, true);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::cerr << "engramsim: error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
