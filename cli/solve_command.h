// The solver's command-line side (cli/cmd_solve.cpp), shared by `engramsim solve` and the
// solve studies (`engramsim study run capacity`: studies/<name>/study.json with "solve").
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sim/sweep/sweep.h"

namespace engramsim::cli {

struct SolveCommandOptions {
    std::string out_dir;
    int jobs = 1, grid = 9, fallback = 33;
    double resolution = 0.01;
    bool resume = false, json = false, plot = false;
};

// One solve of `target_text` over `range_text` (KEY=LO..HI) on the resolved `base`, once per
// combination of `lists`, into opt.out_dir (solve.spec.json, each round's sweep, solve.json,
// solve.csv, solve.png with plot), progress on stderr; `print`: the table (or solve.json with
// opt.json) on stdout. Returns solve.json.
nlohmann::json run_solve(const nlohmann::json& base, const std::string& target_text,
                         const std::string& range_text, const std::vector<sim::SweepAxis>& lists,
                         const SolveCommandOptions& opt, bool print);

}  // namespace engramsim::cli
