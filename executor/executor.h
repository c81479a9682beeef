// `engramsim execute`: a run config served for real on this machine's CPU. The project's
// scheduler (traces/schedule.h) decides every step, exactly the steps the simulator times; the
// project's hashing gives every step's rows, exactly the rows of its trace; a real Transformer
// (executor/backbone.h) with real Engram modules (executor/engram_layer.h) computes them; the
// rows are fetched from a table in this machine's DRAM by the gather the host-fetch validation
// times (kernels/cpu/host_fetch.h), issued when the config's prefetch schedule says
// (sim/timing/prefetch.h), on threads of their own that share the cores with the compute.
//
// Every step is measured: its wall time, the time spent choosing and hashing it, and at each
// Engram layer when the fetch was issued, when it was ready, how long the compute waited for it
// (the stall) and how long the module took. docs/executor.md says what is and is not modeled.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace engramsim::executor {

struct ExecuteOptions {
    bool engram = true;         // false: the same workload with no Engram layer (the baseline)
    // Threads of the non-GEMM ops (norms, attention, Engram module). 1 by default: a second
    // team beside OpenBLAS's threads on this 2-core machine made a layer 2.6x slower
    // (bench_executor; docs/executor.md). BLAS threads: OPENBLAS_NUM_THREADS.
    int compute_threads = 1;
    uint64_t seed = 0;          // weights
    // One untimed prefill first, then forgotten. -1: the shape of the run's largest step (its
    // slices' lengths, as prefills of requests the workload does not have), so every buffer a
    // step sizes by its tokens is touched at its peak before the clock starts, as nano-vLLM's
    // warm-up prefill does; N > 0: one request of N tokens; 0: none.
    int warmup_tokens = -1;
    // sim.table nvme: the table file (written once with its pattern, reused while big enough);
    // empty: default_table_file(). It must be on a file system that allows O_DIRECT.
    std::string table_file;
    // Fold every looked-up row's bytes, as the Engram module reads them, into
    // ExecuteResult::fetched_digest (a check for tests; it costs a pass over the staging).
    bool digest_fetched_rows = false;
    // Called after each step with (steps done, output tokens done, output tokens in all).
    std::function<void(uint64_t, uint64_t, uint64_t)> progress;
};

// One Engram layer in one step; times in seconds from the run's start.
struct EngramLayerRecord {
    int layer = 0;
    uint64_t lookups = 0, unique_rows = 0;
    double issue_s = 0;       // fetch handed to the prefetcher (or started, schedule none)
    double ready_s = 0;       // the rows in the staging buffer
    double dedup_s = 0;       // part of the fetch: distinct keys
    double gather_s = 0;      // part of the fetch: rows copied, all gather threads
    uint64_t cache_hits = 0;  // distinct rows the DRAM cache in front of the file served
    double stall_s = 0;       // the compute waiting at the Engram layer for the rows
    double compute_s = 0;     // the module: widen, projections, gate, short conv
};

struct StepRecord {
    uint64_t index = 0;
    bool prefill = false;
    uint64_t tokens = 0, seqs = 0, context_tokens = 0;
    double start_s = 0, end_s = 0;
    double schedule_s = 0;  // the scheduler's decision and the step's hashing
    std::vector<EngramLayerRecord> engram;
};

struct ExecuteResult {
    std::vector<StepRecord> steps;
    uint64_t requests = 0, prompt_tokens = 0, output_tokens = 0, preemptions = 0;
    int64_t num_kv_blocks = 0;
    uint64_t table_bytes = 0, weight_bytes = 0, kv_cache_bytes = 0;
    int compute_threads = 0, gather_threads = 0, blas_threads = 0;
    std::string schedule;
    std::string table;  // where the rows were fetched from
    uint64_t dram_cache_rows = 0;  // the DRAM cache in front of the table file (0: none)
    double setup_s = 0;  // weights, table, KV cache (before the run's clock starts)
    // The untimed warm-up prefill (ExecuteOptions::warmup_tokens): its tokens and sequences.
    uint64_t warmup_tokens = 0, warmup_sequences = 0;
    // Per request: the end of the step that produced its first and its last output token.
    std::vector<double> first_token_s, last_token_s;
    std::vector<uint32_t> output_len;
    // Per request, the argmax id of each step that fed it, in order: the token the model would
    // have sampled after each (teacher-forced) position it computed logits for.
    std::vector<std::vector<uint32_t>> argmax;
    // FNV-1a over every step's argmax ids, in order: two runs that computed the same tokens
    // agree (runs on different thread counts may differ in the last bits of a float).
    uint64_t output_digest = 0;
    // FNV-1a over every row key fetched, in step and layer order (the trace's rows).
    uint64_t rows_digest = 0;
    // With ExecuteOptions::digest_fetched_rows: FNV-1a over the bytes of every lookup's row, in
    // step, layer and lookup order, whichever tier served it.
    uint64_t fetched_digest = 0;

    double makespan_s() const { return steps.empty() ? 0 : steps.back().end_s; }
};

// The default table file of a table of `bytes` (sim.table nvme): /var/tmp/engramsim-table-N.bin.
std::string default_table_file(uint64_t bytes);

// KV blocks the executor gives the scheduler: sim.num_kv_blocks, or when that is -1
// (unlimited, as the scheduler reads it) enough for every request at once.
int64_t kv_blocks(const nlohmann::json& config);

// What execute_interleaved() checks before allocating anything, alone: throws
// config::ConfigError (or the workload's error) for a config the executor cannot serve here, and
// the memory error when the Engram run and its baseline together exceed what this machine has.
// `validate serving` runs it on every config before it calibrates or executes any.
void check_config(const nlohmann::json& config, const ExecuteOptions& options);

// The bytes of DRAM the Engram gather reads rows from: the table in host DRAM, or the DRAM cache
// in front of a table file (the whole table with placement.dram_capacity "all"); 0 with no
// Engram section. calibrate measures the gather model on a table of this size: random rows of a
// 6 GiB table took 363 ns here against 190 ns in 256 MiB (docs/executor.md).
uint64_t dram_gather_bytes(const nlohmann::json& config);

// Serves the resolved run config `config` (config::resolve). Throws config::ConfigError naming
// the key for what the executor cannot serve here (an MLA or MoE backbone, mHC, a table not in
// host DRAM, more memory than this machine has available), before allocating anything.
ExecuteResult execute(const nlohmann::json& config, const ExecuteOptions& options);

// The Engram run and its baseline without Engram (ExecuteOptions::engram ignored) served
// together, step by step: one step of each per round, which goes first alternating, each run's
// clock stopped while the other serves. Both serve the same steps, so each pair of steps meets
// the same state of the machine: a shared VM's slow and fast spells, which move two separate
// runs by up to 10% apart, fall on both. Each result is that run's own time alone (its steps
// back to back); the overhead of the one against the other is the measurement this design is
// for (validate serving). Needs the memory of both runs at once.
// `control`: an A/A test of the design: both runs without Engram (`engram` is then a second
// baseline), so the "overhead" between them is the measurement's own bias and noise.
struct InterleavedResult {
    ExecuteResult engram, baseline;
};
InterleavedResult execute_interleaved(const nlohmann::json& config, const ExecuteOptions& options,
                                      bool control = false);

// The run as Chrome trace events (open in ui.perfetto.dev): the compute thread's steps, and each
// Engram layer's fetches (issue to ready) on its prefetcher's track.
void write_timeline(const ExecuteResult& result, std::ostream& out);

// The metrics of `engramsim run` (sim/timing/results.h) from the measured steps.
struct ExecuteMetrics {
    double makespan_s = 0, throughput_tok_per_s = 0;
    double ttft_mean_s = 0, ttft_p50_s = 0, ttft_p99_s = 0;
    double tpot_mean_s = 0, tpot_p50_s = 0, tpot_p99_s = 0;
    double mean_step_s = 0, stall_s = 0, fetch_s = 0, engram_compute_s = 0, schedule_s = 0;
    uint64_t steps = 0, prefill_steps = 0, lookups = 0, unique_rows = 0;
    uint64_t cache_hits = 0;  // distinct rows served by the DRAM cache in front of the file
};
ExecuteMetrics metrics_of(const ExecuteResult& result);

}  // namespace engramsim::executor
