// engramsim-device: the `profile` subcommand of engramsim (cli/cmd_profile.cpp, the same code)
// in a binary of its own, for the device-only build (kernels/device/CMakeLists.txt), which has
// neither SimGrid nor the rest of the simulator. `engramsim-device profile --help`.
#include <iostream>

#include "build_info/build_info.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
    CLI::App app{"EngramSim device build: the kernel profiler (see engramsim profile).",
                 "engramsim-device"};
    app.set_version_flag("--version", std::string("engramsim-device ") +
                                          engramsim::build::version() + " (" +
                                          engramsim::build::git_commit() + ")");
    app.require_subcommand(1, 1);
    engramsim::cli::add_profile_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        std::cerr << "engramsim-device: error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
