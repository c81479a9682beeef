// `engramsim validate serving`: the simulator's prediction of a serving run beside the run
// itself, executed on this machine. For each config: calibrate (or reuse a calibration), predict
// with the simulator from the calibration alone (hardware.gpu.kind host-cpu, the measured
// profiles and gather model), then execute (executor/executor.h), the Engram run and its
// baseline without Engram alternating. Both serve the very same steps (the same scheduler and KV
// blocks), so they compare step by step as well as in total.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>
#include "sim/validation/fetch_validation.h"

namespace engramsim::executor {

struct ServingCase {
    std::string name;
    std::string path;     // the config file (or preset)
    nlohmann::json config;  // resolved
};

struct ServingSummary;

struct ServingOptions {
    std::string calibration_dir;  // reused when it holds a calibration, else written there
    bool quick = false;
    int repeat = 2;  // Engram / baseline pairs executed (medians)
    // Interleaved executions (execute_interleaved): the measured overhead is their median.
    // 0: the overhead of the separate pairs instead.
    int interleaved = 2;
    // A/A controls (execute_interleaved with control): the baseline interleaved with itself;
    // their "overhead" is the interleaved measurement's own bias and noise.
    int controls = 0;
    std::string table_file;  // sim.table nvme (ExecuteOptions::table_file)
    // When set: DIR/<config>.predicted.timeline.json (the simulator's run) and
    // DIR/<config>.measured.timeline.json (the executor's first Engram run), both for Perfetto.
    std::string timeline_dir;
    std::function<void(const std::string&)> say;
    // Called after each round but the last with the comparison so far (every config, from the
    // executions of the rounds done), so a long validation that stops loses no finished round.
    std::function<void(const ServingSummary&)> on_round;
};

// A predicted and a measured value; error = (predicted - measured) / measured, in percent, as
// every validation reports it (sim/validation/fetch_validation.h).
struct Versus {
    double predicted = 0, measured = 0;
    double error_pct() const { return sim::error_pct(predicted, measured); }
};

struct ServingOutcome {
    std::string name, schedule, table, workload;
    int max_num_seqs = 0, engram_layers = 0;
    uint64_t steps = 0, preemptions = 0;
    Versus tok_per_s, mean_step_s, ttft_s, tpot_s, stall_s, no_engram_tok_per_s;
    // The Engram path, summed over the run's steps and Engram layers, in seconds: each module's
    // compute (predicted: its time alone, the plan's; measured: widen, projections, gate and
    // conv as the engine timed them) and each fetch from issue to ready (the simulator's and the
    // engine's clocks). Where the overhead is missed, these say which part of the path is.
    Versus engram_module_s, fetch_s;
    // Where the overhead lies: the Engram run minus its baseline, each step's increment of its
    // run's clock (its end less the previous step's end: the step and the scheduling before
    // it) summed over the steps that carry prompt tokens and over the decode-only steps; the two
    // add up to the makespans' difference. Measured: the interleaved execution whose overhead
    // is the median (the lower middle one of an even count), or the first separate pair.
    Versus overhead_prefill_steps_s, overhead_decode_steps_s;
    uint64_t prefill_steps = 0;
    double split_engram_makespan_predicted_s = 0, split_engram_makespan_measured_s = 0;
    // Against no Engram; its error is in percentage points. Measured: the median of the
    // interleaved executions (of the separate pairs when there are none).
    Versus overhead_pct;
    // The rows, exact integers: distinct rows fetched, and those the DRAM cache in front of a
    // table file served (the placement replay's hits against the executor's).
    uint64_t unique_rows_predicted = 0, unique_rows_measured = 0;
    uint64_t cache_hits_predicted = 0, cache_hits_measured = 0;
    bool rows_exact() const {
        return unique_rows_predicted == unique_rows_measured &&
               cache_hits_predicted == cache_hits_measured;
    }
    std::vector<double> measured_overhead_runs;  // each alternating pair's overhead
    std::vector<double> measured_overhead_interleaved;  // each interleaved execution's
    std::vector<double> control_overhead;  // each A/A control's (ServingOptions::controls)
    std::vector<double> step_predicted_s, step_measured_s;
    double step_error_p50_pct = 0, step_error_p90_pct = 0;  // |error| per step
    double step_error_mean_pct = 0;                          // signed: the bias
    nlohmann::json predicted_metrics, measured_metrics;
};

struct ServingSummary {
    std::vector<ServingOutcome> outcomes;
    double tok_error_median_pct = 0, tok_error_worst_pct = 0;
    double step_error_median_pct = 0, step_error_worst_pct = 0;
    int overhead_within_target = 0;  // |error| <= max(1 point, 20% of measured)
    // Beside the target, whether a miss is beyond the measurement's own spread: the configs
    // whose predicted overhead lies outside their interleaved executions' band (lowest to
    // highest). With n executions the band holds the median overhead with probability
    // 1 - 2^(1-n) (n independent runs; 97% for 6), whatever their distribution. Counted over
    // the configs with at least 2 (band_cases); band_confidence for the fewest runs among them.
    int overhead_outside_band = 0, band_cases = 0;
    double band_confidence = 0;
    int rows_exact = 0;              // cases whose rows agree exactly
    bool same_overhead_rank = false;
    // Kendall's tau-b between predicted and measured overheads: 1 the same order, 0 none.
    double overhead_rank_tau = 0;
    nlohmann::json calibration;
    // The rounds of executions done, of all (ServingOptions: each config's pairs, interleaved
    // executions and controls, one of each per round while it has any left).
    int rounds_done = 0, rounds = 0;
};

// The default set (executor/configs/serving/*.json, sorted), or its --quick subset.
std::vector<std::string> default_serving_configs(bool quick);

// Every config predicted first (calibrating where needed), then executed in rounds: in each
// round every config in turn executes its next separate pair, interleaved execution and A/A
// control (those it has left). A config's runs so spread over the whole validation, and a slow
// spell of a shared machine falls on many configs' one run each, not on one config's every run.
ServingSummary validate_serving(const std::vector<ServingCase>& cases, const ServingOptions& opt);

// The report: the validations' head (schema_version, kind engramsim.serving_validation,
// producer, units, machine), the summary and every case.
nlohmann::json to_json(const ServingSummary& s, const std::string& producer);
// One row per step of every case: case, step, prefill, tokens, predicted_s, measured_s.
void write_steps_csv(const ServingSummary& s, std::ostream& out);

}  // namespace engramsim::executor
