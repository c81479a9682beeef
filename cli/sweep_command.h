// The sweep engine's command-line side, shared by `engramsim sweep` and the spec-file studies
// (`engramsim study run NAME`): options, loading a spec, running it with progress on stderr,
// and the results files and table.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "sim/sweep/sweep.h"

namespace engramsim::cli {

struct SweepCommandOptions {
    std::string out_dir;  // default: sweep-NAME (study-NAME for a study)
    int jobs = 1;
    bool resume = false, json = false, plot = false, list = false;
};

// -o, -j, --resume, --json, --plot, --list on `cmd`; the default folder is PREFIX-NAME.
void add_sweep_options(CLI::App* cmd, SweepCommandOptions& opt, const std::string& prefix);

// A sweep file, or a run config / backbone preset, plus `--axis` texts appended as axes.
sim::SweepSpec load_sweep(const std::string& spec_or_config, const std::vector<std::string>& axes);

// Runs the sweep into its folder (progress on stderr), writes results.json and results.csv
// (and sweep.png), prints the table or the JSON; returns 1 when a point failed, else 0.
int run_sweep_and_report(const sim::SweepSpec& spec, const SweepCommandOptions& opt);

}  // namespace engramsim::cli
