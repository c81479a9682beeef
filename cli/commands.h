// Subcommands of the engramsim command. Each `add_*` declares its options on `app` and the
// callback that runs it; errors are thrown and reported once, in main().
#pragma once

#include <CLI/CLI.hpp>

namespace engramsim::cli {

void add_presets_command(CLI::App& app);
void add_config_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_profile_command(CLI::App& app);
// trace make | stats | dump, added to the `trace` subcommand.
void add_trace_file_commands(CLI::App& trace);
// trace fit: the synthetic generator fitted to a corpus.
void add_trace_fit_command(CLI::App& trace);

// replay: placement replay over HBM / DRAM / SSD tiers (cli/cmd_replay.cpp).
void add_replay_command(CLI::App& app);
// trace export: a trace's request sequence for other cache simulators (cli/cmd_replay.cpp).
void add_trace_export(CLI::App& trace);

// The main job on its embedded default: hash the bundled English sample with demo-v1 and print
// the summary (later replaced by the paper's Table 4 reproduction).
void run_default_job();

}  // namespace engramsim::cli
