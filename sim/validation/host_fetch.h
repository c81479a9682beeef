// Validation of the cpu-gather fetch model against this machine: the host work of every fetch
// of a run (deduplicate the step's row keys, gather the unique rows into staging with T threads)
// is executed for real (kernels/cpu/host_fetch.h) and timed, and set next to what the simulator
// predicts for the same fetch (sim::gather_seconds, the function the simulator itself calls)
// with this machine's parameters, measured first by microbenchmarks that never see the run:
//   row_access_latency      a pointer chase through random rows of the table (one line each);
//   outstanding_per_thread  one thread gathering uniform random rows: rate x latency;
//   DRAM bandwidth          memcpy traffic with all the threads validated.
// The run's steps, their row keys and their unique-row counts are the simulator's own (the
// plan's lookup source; the executor's count is checked against the plan's, row for row).
//
// What it validates: the host gather term (linear in unique rows, no per-fetch constant, scaling
// with threads, independent of which rows a real workload reads). What it cannot here: the DMA
// copy and the GPU side (no GPU on this machine), and hashing (bench_hash measures its rate).
// Deduplication is executed and timed but is not in the model: the report shows its share.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "sim/timing/fetch.h"
#include "sim/validation/fetch_validation.h"

namespace engramsim::sim {

struct Plan;

struct HostCalibration {
    uint64_t table_rows = 0;
    double row_bytes = 0;
    double row_latency_s = 0;           // dependent random row loads (pointer chase)
    // Per thread count: the gather's cost line, t(n) = fixed + n x per_row (uniform random rows
    // after idle; kernels::measure_gather_line). Thread count 1 is always measured.
    struct Line {
        int threads = 0;
        double per_row_s = 0, fixed_s = 0;
        std::vector<uint64_t> sizes;
        std::vector<double> median_s;
    };
    std::vector<Line> lines;
    double gather_rows_per_s = 0;       // one thread: 1 / per_row_s
    double outstanding_per_thread = 0;  // gather_rows_per_s x row_latency_s
    // The DRAM bound: the most threads' rate as the traffic the model counts (touched lines
    // read + staging written) per second.
    int all_threads = 0;
    double all_threads_rows_per_s = 0;
    double dram_bytes_per_s = 0;
    double memcpy_bytes_per_s = 0;      // for reference: sequential copy traffic, same threads
    double dedup_rate_per_thread = 0;   // keys/s, one thread

    // The fetch model with these parameters and `threads` gather threads (one dedup thread);
    // gather_dispatch_s is that thread count's fixed cost.
    FetchParams params(int threads) const;
    nlohmann::json to_json() const;
};

struct HostFetchSample : FetchSample {
    double gather_s = 0;     // measured: median over the repeats
    double predicted_s = 0;  // the model's gather
};

struct HostValidationRun {
    int threads = 0;
    std::vector<HostFetchSample> fetches;
};

struct HostValidationOptions {
    std::vector<int> threads{1, 2};
    uint64_t table_bytes = uint64_t(4) << 30;
    int repeats = 3;          // each fetch's time is the median of this many passes over the run
    uint64_t max_steps = 0;   // validate the first N steps only (0: all)
    // Idle time before each fetch (and before each dispatch calibration run): the gather
    // threads sleep between an engine's steps, and waking them costs more the deeper they sleep.
    int idle_us = 200;
    uint64_t chase_hops = uint64_t(1) << 20;
    // Gather sizes of the calibration lines (capped at the table's rows), each gathered this
    // many times.
    std::vector<uint64_t> calibration_sizes{1024, 4096, 16384, 65536, 262144};
    int calibration_repeats = 15;
    std::function<void(const std::string&)> progress;  // optional
};

struct HostValidation {
    nlohmann::json config;  // resolved run config
    uint64_t table_bytes = 0;
    int repeats = 0;
    int idle_us = 0;
    HostCalibration calibration;
    std::vector<HostValidationRun> runs;

    // schema_version, kind, units, machine, calibration, per thread count: totals, error,
    // by phase, per-fetch error percentiles, deduplication share; the resolved config.
    nlohmann::json to_json(const std::string& producer) const;
    // One line per fetch and thread count, units in the column names.
    void write_csv(std::ostream& out) const;
};

// Summary of one run's fetches (a phase filter: "all", "prefill", "decode"). Errors are
// (predicted - measured) / measured in percent; host = dedup + gather.
struct HostValidationSummary {
    uint64_t fetches = 0, lookups = 0, unique_rows = 0;
    double measured_s = 0, predicted_s = 0;              // gather
    double dedup_s = 0, predicted_dedup_s = 0;
    double error_pct = 0, dedup_error_pct = 0, host_error_pct = 0;
    double abs_error_p50_pct = 0, abs_error_p90_pct = 0;  // per fetch, host work
};
HostValidationSummary summarize(const HostValidationRun& run, const std::string& phase);

// Throws config::ConfigError naming the key when the config is not one this validates (Engram
// in host DRAM through cpu-gather, no HBM cache, TP 1, DP 1), std::invalid_argument for bad
// options.
HostValidation validate_host_fetch(const nlohmann::json& resolved,
                                   const HostValidationOptions& options);

}  // namespace engramsim::sim
