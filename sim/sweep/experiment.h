// Experiments built from serving runs: one configuration against its references, and the
// paper's Table 4 reproduction (docs/ENGRAM.md section 4) with its calibration and sensitivity.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "sim/timing/serving.h"

namespace engramsim::sim {

// Overhead of `tps` against a reference throughput, in percent (the paper's definition:
// (reference - tps) / reference x 100).
double overhead_pct(double reference_tps, double tps);

// A resolved run config with one key replaced (dotted path, e.g. "sim.table"), re-resolved.
nlohmann::json with_key(const nlohmann::json& cfg, const std::string& dotted_path,
                        const nlohmann::json& value);
// Several keys set together, then resolved once; `origin` prefixes a resolve error.
nlohmann::json with_keys(const nlohmann::json& cfg,
                         const std::vector<std::pair<std::string, nlohmann::json>>& settings,
                         const std::string& origin);
// Without the engram section.
nlohmann::json without_engram(const nlohmann::json& cfg);

struct RunOutcome {
    Plan plan;
    DesResult des;
    RunMetrics metrics;
};
// Plans and simulates one config (SimGrid in a forked child).
RunOutcome run_config(const nlohmann::json& resolved);

// One config with its references: the same run with the table in HBM and without Engram.
struct Compared {
    RunOutcome run;
    std::optional<RunMetrics> table_in_hbm, no_engram;
    // With a band of k blocks (add_kv_band): the overhead against no Engram with the run's KV
    // cache k blocks smaller to k blocks larger (sim.num_kv_blocks), in order.
    int kv_band_blocks = 0;
    std::vector<double> kv_band_overhead_pct;
    nlohmann::json comparison_json() const;  // throughput of each, overheads in percent
};
Compared run_compared(const nlohmann::json& resolved);
// Preemption makes throughput jagged in the KV cache: runs the config again with its KV cache
// `blocks` blocks smaller to `blocks` larger, each against the no-Engram reference.
void add_kv_band(Compared& c, const nlohmann::json& resolved, int blocks);
// The overhead against `baseline_tps` of `resolved` (whose run is `run`) with its KV cache
// `blocks` blocks smaller to `blocks` larger, in order (none below one block).
std::vector<double> kv_band_overhead_pct(const nlohmann::json& resolved, const RunOutcome& run,
                                         double baseline_tps, int blocks);
// A band's JSON: {"blocks", "kv_blocks", "overhead_pct" (in order), "min_pct", "max_pct"}.
nlohmann::json kv_band_json(int blocks, int64_t kv_blocks, const std::vector<double>& overhead_pct);

// ---- Paper Table 4 ------------------------------------------------------------------------

struct Table4Row {
    std::string backbone;
    double paper_baseline_tps = 0, paper_engram_tps = 0, paper_overhead_pct = 0;
    double backbone_time_scale = 0;  // calibration
    double uncalibrated_baseline_tps = 0;
    double baseline_tps = 0, engram_tps = 0, overhead_pct = 0;
    double table_in_hbm_tps = 0, overhead_vs_hbm_pct = 0, oracle_tps = 0;
    RunMetrics engram_metrics;
    // Preemption makes throughput jagged in the KV cache: the Engram run's overhead with its KV
    // cache kKvBand blocks smaller to kKvBand blocks larger (sim.num_kv_blocks), in order.
    int64_t kv_blocks = 0;
    std::vector<double> kv_band_overhead_pct;
};

inline constexpr int kKvBand = 2;

struct SensitivityRow {
    std::string assumption, value;
    bool is_default = false;
    std::vector<double> overhead_pct;  // per backbone, in Table4Row order
};

struct Table4 {
    std::vector<Table4Row> rows;
    std::vector<SensitivityRow> sensitivity;
    nlohmann::json assumptions;
    nlohmann::json to_json() const;
};

// The study: calibrate each backbone's compute once to the paper's baseline, then predict the
// Engram overhead; `with_sensitivity` adds one row per alternative assumption. `progress`
// (optional) is told what runs.
Table4 paper_table4(bool with_sensitivity,
                    const std::function<void(const std::string&)>& progress = {});

}  // namespace engramsim::sim
