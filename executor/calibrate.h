// `engramsim calibrate`: this machine measured at the shapes a run config uses, with the
// executor's own code, written as what the simulator reads: kernel profiles (gemm, attention,
// the Engram gather) and a hardware section whose "accelerator" is the host CPU
// (hardware.gpu.kind host-cpu), plus the sim parameters of the cpu-gather model. Nothing of a
// serving run is measured: the simulator's prediction from it comes before any execution.
//
// What is measured, and how (each a median over repeats, after one untimed call):
//   gemm              executor::linear at every (n, k) the step model prices, m on a grid up to
//                     the most tokens (or sequences, for the LM head) a step feeds
//   attention_decode  executor::attention_step, one decode token per sequence, sequences x
//                     context on a grid
//   attention_prefill attention_step over one sequence of T tokens (a causal prefill)
//   engram_gather     executor::widen_lookups (staged rows -> memory vectors)
//   elementwise rate  executor::rms_norm over 16 Mi values: bytes / s (the roofline's
//                     "memory" bandwidth for the ops no profile covers)
//   gather model      the host-fetch validation's microbenchmarks (kernels/cpu/host_fetch.h):
//                     row latency, the gather line at sim.gather_threads, dedup rate
//   drive (nvme)      on the table file: one direct 4 KiB read at a time (latency), random reads
//                     at depths 1, 4, 16, 64 and sim.nvme_queue_depth (the measured curve the
//                     simulator interpolates), sequential 1 MiB reads (bandwidth)
//   wake penalty      a decode step's GEMMs alone and with a prefetch handed to a prefetcher
//                     thread beside them: what the overlap costs beyond the fetch's own work
//                     (sim.fetch_wake_penalty); with the table on disk, a whole decode step
//                     beside the drive's reader threads at three fetch sizes: all it loses, as
//                     each read's CPU plus a fixed part (sim.fetch_wake_penalty_per_read,
//                     sim.fetch_wake_penalty), and the fetch's own time beyond its reads
//                     (sim.nvme_fetch_dispatch)
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace engramsim::executor {

// calibration.json's version; validate serving re-measures a calibration of an older one.
// 2 (commit 9ea1d3a): the disk penalty is everything a whole decode step loses beside the reads,
// which the simulator charges alone (1 measured it beside the GEMMs and subtracted the reads'
// CPU, which the simulator then shared with the compute). 3: sim.nvme_fetch_dispatch. 4: the
// disk penalty's per-read part is each read's CPU, its fixed part the rest (3 fitted both).
inline constexpr int kCalibrationVersion = 4;

struct CalibrateOptions {
    int repeats = 5;
    // sim.table nvme: the table file the executor reads (default_table_file() when empty); the
    // drive is measured on it: direct reads of one block at several depths, and in sequence.
    std::string table_file;
    bool quick = false;  // fewer grid points and repeats
    std::function<void(const std::string&)> say;  // progress
};

// Measures and writes DIR/profiles/*.json, DIR/hardware.json (a hardware section),
// DIR/sim.json (sim keys) and DIR/calibration.json (everything measured, with methods).
// Returns calibration.json's content.
nlohmann::json calibrate(const nlohmann::json& resolved_config, const std::string& dir,
                         const CalibrateOptions& options);

// `config` with the calibration in DIR applied: its hardware section replaced, its sim keys
// set (profiles, gather model, efficiencies), sim.num_kv_blocks the executor's, and the
// backbone's dtype float32 (the executor's weights and KV cache, whatever the config says).
nlohmann::json apply_calibration(const nlohmann::json& config, const std::string& dir);

}  // namespace engramsim::executor
