// The serving engine's own choices, behind one interface: how it sizes its KV cache, how it
// configures and runs its scheduler, what one step of its loop runs. Everything else of a plan (the platform, the cost model,
// the lookups, the fetch work) is the same whatever engine serves the model.
//
// Engines are registered by name in sim/timing/engine_registry.cpp, one line each, with their factory
// in a file of their own (sim/timing/engine_nano_vllm.cpp, engine_vllm_v1.cpp); another engine plugs in with one file and
// one registration line, as cache policies do (sim/placement/policy_registry.cpp). A plan is
// served by the engine `sim.engine` names (kDefaultEngine unless set).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "traces/schedule.h"

namespace engramsim::sim {

struct Plan;
struct PlannedStep;
struct Instr;

// What the KV cache is sized from, per GPU (bytes unless named otherwise).
struct KvSizingInput {
    double hbm_bytes = 0;                 // the GPU's HBM capacity
    double gpu_memory_utilization = 0.9;  // the share of it the engine may use
    double weight_bytes = 0;              // backbone, Engram projections, HBM cache
    double activation_peak_bytes = 0;     // the engine's warm-up peak (see activation_peak)
    double kv_bytes_per_token = 0;
    int kv_block_size = 256;              // tokens per block
    int64_t num_kv_blocks_override = -1;  // sim.num_kv_blocks: >= 0 wins, -1: sized
};

// What the warm-up's activation peak is made of, per GPU.
struct ActivationInput {
    int max_num_seqs = 0, max_num_batched_tokens = 0;
    double activation_values_per_token = 0;  // the backbone's largest live tensors (per GPU)
    double bytes_per_value = 2;
    double vocab = 0;                 // fp32 logits of each sequence's last token
    double engram_staging_bytes = 0;  // the Engram's device buffer for one step's rows
};

// How a step's kernels are launched (sim.cuda_graphs, as the engine runs it): each by the host,
// attention (and the Engram lookup) eagerly between graph pieces, or as whole-step graphs.
enum class GraphMode { Eager, Piecewise, Full };

// A time-independent schedule: every step the engine runs, and how often it preempted.
struct EngineSchedule {
    std::vector<Step> steps;
    uint64_t preemptions = 0;
};

class Engine {
public:
    virtual ~Engine() = default;
    virtual const char* name() const = 0;
    // The activation peak the engine measures in its warm-up run (bytes per GPU).
    virtual double activation_peak(const ActivationInput& in) const = 0;
    // KV blocks per GPU: <= 0 when nothing is left for the cache (the caller names why).
    virtual int64_t kv_blocks(const KvSizingInput& in) const = 0;
    // The scheduler's limits from the resolved sim section and the KV cache.
    virtual SchedulerConfig scheduler_config(const nlohmann::json& sim,
                                             int64_t num_kv_blocks) const = 0;
    // Every step of the workload, from lengths alone.
    virtual EngineSchedule schedule(const SchedulerConfig& sc,
                                    const std::vector<uint32_t>& prompt_len,
                                    const std::vector<uint32_t>& output_len) const = 0;
    // The step loop's body: what one step runs on the GPU stream, in order (kernels, fetch issues
    // and waits, collectives), which the simulator and the analytic DAG execute.
    virtual std::vector<Instr> step_program(const Plan& plan, const PlannedStep& step) const = 0;
    // Whether the engine's host work for step n + 1 (PlannedStep::host_s: scheduling, inputs,
    // bookkeeping) overlaps step n on the GPU; else the loop is synchronous, the host's work
    // and the GPU's in turn.
    virtual bool overlaps_host(const nlohmann::json& sim) const { (void)sim; return false; }
    // How a step runs under sim.cuda_graphs `cuda_graphs` (decode_only: no prefill token in it);
    // throws config::ConfigError naming sim.cuda_graphs for a mode the engine lacks.
    virtual GraphMode graph_mode(const std::string& cuda_graphs, bool decode_only) const = 0;
    // Whether a whole-step graph is split at an Engram layer (its rows fetched with
    // `mechanism` when `fetching`, else read from HBM).
    virtual bool engram_splits_graph(const std::string& mechanism, bool fetching) const = 0;
};

// What both registered engines share (each says why in its own file): the warm-up prefill's
// peak (max_num_batched_tokens tokens of live tensors, max_num_seqs fp32 logits, the Engram's
// staging buffer), the KV blocks left after it (floor((HBM x utilization - weights - peak) /
// block bytes)), and the schedule their scheduler config gives.
double warmup_activation_peak(const ActivationInput& in);
int64_t kv_blocks_after_warmup(const KvSizingInput& in);
EngineSchedule run_scheduler(const SchedulerConfig& sc, const std::vector<uint32_t>& prompt_len,
                             const std::vector<uint32_t>& output_len);

// One registered engine.
struct EngineInfo {
    const char* name;
    const char* description;
    std::unique_ptr<Engine> (*make)();
};

// Every registered engine, sorted by name.
const std::vector<EngineInfo>& engines();

class UnknownEngine : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// The engine called `name` (one instance per process); an unknown name throws UnknownEngine
// naming every known one.
const Engine& engine(const std::string& name);

inline constexpr const char* kDefaultEngine = "nano-vllm";

}  // namespace engramsim::sim
