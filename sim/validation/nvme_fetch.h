// Validation of the nvme fetch model against this machine's disk: for fetches spread over a
// serving run, the host side of the nvme mechanism (deduplicate the step's row keys, read each
// unique row as one direct I/O from a table file, Q reads in flight) is executed for real
// (kernels/cpu/block_io.h) and timed, next to what the simulator predicts for the same fetch
// (the nvme FetchMechanism's plan, as the simulator calls it, with one drive) from parameters
// measured first by microbenchmarks that never see the run:
//   hardware.nvme.read_latency      one random read at a time (mean);
//   hardware.nvme.random_read_iops  random reads at a deep queue (`saturation_depth` in flight);
//   hardware.nvme.read_bandwidth    sequential 1 MiB reads;
//   sim.dedup_rate_per_thread       as validate host-fetch measures it.
//   hardware.nvme.iops_at_depth     random reads at the curve depths (by default the powers of 2
//                                   below the saturation depth that are not validated).
// What it tests: the model's I/O time, I/Os / rate, with the rate of each queueing law
// (sim.nvme_queueing: knee, min(IOPS, Q / latency); linear, Q / (latency + (Q - 1) / IOPS);
// measured, the curve with Q / rate linear in Q between its depths), at queue depths it was not
// calibrated at, and on the run's fetch sizes (tens to hundreds of thousands of reads). What it
// cannot here: the DMA copy to the GPU, and several drives.
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

struct NvmeCalibration {
    std::string file;
    uint64_t file_bytes = 0;
    double io_bytes = 0, row_bytes = 0;
    double read_latency_s = 0;     // queue depth 1, mean
    int saturation_depth = 0;
    double random_read_iops = 0;   // at saturation_depth
    double read_bytes_per_s = 0;   // sequential
    double dedup_rate_per_thread = 0;
    // The drive's rate at the curve depths, ascending: depth 1 (1 / read_latency_s), each curve
    // depth, the saturation depth. The measured queueing law interpolates it.
    std::vector<std::pair<int, double>> curve;
    // Measured for reference at each validated queue depth (random reads, same count as the
    // saturation run): what the laws should reproduce; never part of the curve.
    std::vector<std::pair<int, double>> iops_at_depth;
    // Whether the curve holds `depth` (then the measured law at that depth is calibrated there,
    // not predicted).
    bool on_curve(int depth) const;
    // The nvme mechanism's parameters: one drive, `queue_depth` reads in flight, a queueing law
    // (sim.nvme_queueing).
    FetchParams params(int queue_depth,
                       FetchParams::NvmeQueueing law = FetchParams::NvmeQueueing::Knee) const;
    nlohmann::json to_json() const;
    // The drive as hardware.nvme keys: read_latency, random_read_iops, read_bandwidth and
    // iops_at_depth (the curve and each validated depth: every rate measured) for
    // sim.nvme_queueing measured.
    nlohmann::json hardware_nvme() const;
};

struct NvmeFetchSample : FetchSample {
    double read_s = 0;                                   // measured (median over repeats)
    double predicted_read_s = 0;                         // sim.nvme_queueing knee (default)
    double predicted_read_linear_s = 0;                  // sim.nvme_queueing linear
    double predicted_read_measured_s = 0;                // sim.nvme_queueing measured (the curve)
};

struct NvmeValidationRun {
    int queue_depth = 0;
    std::vector<NvmeFetchSample> fetches;
};

struct NvmeValidationOptions {
    std::string file;                       // the table file on the drive to test (required)
    uint64_t file_bytes = uint64_t(2) << 30;
    std::vector<int> queue_depths{4, 32};
    int saturation_depth = 64;
    // Depths of the measured law's curve besides 1 and the saturation depth; empty: the powers of
    // 2 below the saturation depth that are not among queue_depths.
    std::vector<int> curve_depths;
    uint64_t steps = 24;                    // fetches of this many steps, spread over the run
    int repeats = 1;
    int latency_reads = 20000;  // a long mean: this shared disk drifts by tens of percent
    uint64_t iops_reads = 40000;
    std::function<void(const std::string&)> progress;  // optional
};

struct NvmeValidation {
    nlohmann::json config;  // resolved run config
    int repeats = 0;
    uint64_t step_stride = 0;
    NvmeCalibration calibration;
    std::vector<NvmeValidationRun> runs;
    nlohmann::json to_json(const std::string& producer) const;
    void write_csv(std::ostream& out) const;
};

struct NvmeValidationSummary {
    uint64_t fetches = 0, lookups = 0, unique_rows = 0;
    double read_s = 0, predicted_read_s = 0, dedup_s = 0, predicted_dedup_s = 0;
    double predicted_read_linear_s = 0, predicted_read_measured_s = 0;
    double read_error_pct = 0, host_error_pct = 0;        // host: dedup + read (knee)
    double read_error_linear_pct = 0, host_error_linear_pct = 0;
    double read_error_measured_pct = 0, host_error_measured_pct = 0;
    double abs_error_p50_pct = 0, abs_error_p90_pct = 0;  // per fetch, host
};
// phase: "all", "prefill" or "decode".
NvmeValidationSummary summarize(const NvmeValidationRun& run, const std::string& phase);

// The depths the measured law's curve is sampled at: 1, `extra` (when empty, the powers of 2
// below `saturation_depth` not in `validated`) and `saturation_depth`, ascending and distinct.
std::vector<int> nvme_curve_depths(int saturation_depth, const std::vector<int>& validated,
                                   const std::vector<int>& extra = {});

// Throws config::ConfigError naming the key when the config is not an Engram table on NVMe read
// by the nvme mechanism with nothing cached (sim.table, sim.mechanism, placement.hbm_capacity,
// placement.dram_capacity) on one GPU; std::invalid_argument for bad options;
// std::runtime_error when the file cannot be written or read directly.
NvmeValidation validate_nvme_fetch(const nlohmann::json& resolved, const NvmeValidationOptions& options);

}  // namespace engramsim::sim
