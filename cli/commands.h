// Subcommands of the engramsim command. Each `add_*` declares its options on `app` and the
// callback that runs it; errors are thrown and reported once, in main().
#pragma once

#include <CLI/CLI.hpp>

#include <string>

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

// run: one serving run on the timing simulator (cli/cmd_run.cpp).
void add_run_command(CLI::App& app);
// plan: a run's steps for another engine to serve (cli/cmd_plan.cpp).
void add_plan_command(CLI::App& app);
// sweep: a run config varied along axes (cli/cmd_sweep.cpp).
void add_sweep_command(CLI::App& app);
// solve: where a target flips as a config key varies (cli/cmd_solve.cpp).
void add_solve_command(CLI::App& app);
// study run paper-table4 (cli/cmd_study.cpp).
void add_study_command(CLI::App& app);
// execute: a run config served for real on this machine's CPU (cli/cmd_execute.cpp).
void add_execute_command(CLI::App& app);
// calibrate: this machine measured at a config's shapes, for the simulator (cli/cmd_execute.cpp).
void add_calibrate_command(CLI::App& app);
// validate serving: the simulator's prediction beside the executor's run (cli/cmd_execute.cpp).
void add_validate_serving(CLI::App& validate);
// validate host-fetch: the cpu-gather model next to this machine (cli/cmd_validate.cpp).
void add_validate_command(CLI::App& app);
// This build, as result files name it: "engramsim VERSION (COMMIT)" (cli/cmd_sweep.cpp).
std::string producer();
// The main job (engramsim with no arguments): the paper's Table 4 reproduction, printed.
void run_paper_table4(bool json, bool sensitivity);
// The same, also written as OUT_DIR/results.json when out_dir is not empty.
void write_paper_table4(bool json, bool sensitivity, const std::string& out_dir);

}  // namespace engramsim::cli
