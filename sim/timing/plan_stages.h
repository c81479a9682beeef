// The plan as a pipeline of named stages (sim/timing/plan.cpp's make_plan runs them top to bottom):
//
//   resolve_choices        run config            -> RunChoices     (what runs where: shapes,
//                                                                    table, mechanism, schedule)
//   build_platform         RunChoices, hardware  -> PlatformStage  (nodes, links, gpu's routes)
//   backbone_costs         RunChoices, sim, hw   -> BackboneCosts  (cost model, TP sharding)
//   table_placement        RunChoices, hw        -> TablePlacement (rows per tier, capacity checks)
//   kv_budget              ...  + Engine         -> KvBudget       (weights, activation, KV blocks)
//   workload_and_lookups   ...  + Engine         -> ServedWork     (requests, schedule, lookups)
//   placement_replay       ServedWork, placement -> PlacementRecords (HBM / DRAM cache hits)
//   fetch_work             RunChoices, platform  -> FetchStage     (fetch mechanism and params)
//   plan_steps             all of the above      -> PlannedSteps   (op times, fetch work per step)
//
// Each stage is a function of its typed input alone (plus the per-process caches of the
// workload stages), so it can be run and tested without the rest. Errors are config::ConfigError
// naming the key, in the order the stages run.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/cost_model.h"
#include "model/engram_config.h"
#include "model/step_model.h"
#include "model/tensor_parallel.h"
#include "sim/timing/engine.h"
#include "sim/timing/fetch.h"
#include "sim/timing/lookup_counts.h"
#include "sim/placement/step_record.h"
#include "sim/timing/plan.h"
#include "sim/timing/platform.h"
#include "sim/timing/prefetch.h"
#include "traces/lookups.h"
#include "traces/schedule.h"
#include "traces/synthetic.h"
#include "traces/workload.h"

namespace engramsim::sim {

// A count-valued key of a resolved section (plain numbers or "2.5M"), for the stages.
double count_of(const nlohmann::json& section, const std::string& key);

// --- resolve: the run's choices from its resolved config ---------------------------------------
struct RunChoices {
    BackboneShape backbone;
    bool has_engram = false;
    EngramConfig engram;
    std::vector<int> engram_layers;
    std::string table, mechanism;
    int memory_nodes = 1;  // sim.memory_nodes (remote-dram)
    PrefetchSchedule schedule;
    int tensor_parallel = 1;
    bool coalesce_collectives = false, fifo_fetch_queue = false;
    // hardware.gpu.kind host-cpu: the host's cores (hardware.host sockets x cores_per_socket),
    // which the engine's compute and the fetches' host work share; 0: a GPU computes.
    int cpu_cores = 0;
    nlohmann::json placement;  // the resolved placement section (defaults when absent)
    bool remote() const { return table == "remote-dram"; }
};
RunChoices resolve_choices(const nlohmann::json& cfg);

// --- build_platform: the platform and the engine GPU's place in it ------------------------------
struct PlatformInput {
    const nlohmann::json& hardware;
    const nlohmann::json& sim;
    const RunChoices& run;
    int platform_gpus = 0;  // GPUs to build (0: sim.tensor_parallel's)
    int gpu_index = 0;      // the engine's GPU
};
struct PlatformStage {
    Platform platform;
    int gpu = 0, host = 0, h2d = 0, d2h = 0;
    std::vector<int> gpus, h2d_route, d2h_route, nvme, memory_nodes;
};
PlatformStage build_platform(const PlatformInput& in);

// --- backbone_costs: the cost model and the tensor-parallel sharding ---------------------------
struct BackboneCostInput {
    const nlohmann::json& hardware;
    const nlohmann::json& sim;
    const nlohmann::json& backbone;  // the resolved backbone section (its dtype)
    const RunChoices& run;
};
struct BackboneCosts {
    CostModel cost;
    double kernel_floor_s = 0;
    double backbone_time_scale = 1, engram_scale = 1;
    EngramGpuShape engram_shape;
    TensorParallel tpar;  // validated
};
BackboneCosts backbone_costs(const BackboneCostInput& in);

// --- table_placement: how many rows each tier holds --------------------------------------------
struct TablePlacementInput {
    const nlohmann::json& hardware;
    const RunChoices& run;
};
struct TablePlacement {
    uint64_t table_rows = 0;       // all Engram layers (0: no Engram, or the table in HBM)
    uint64_t hbm_cache_rows = 0;   // placement.hbm_capacity
    uint64_t dram_cache_rows = 0;  // placement.dram_capacity, at most table_rows
};
TablePlacement table_placement(const TablePlacementInput& in);

// --- kv_budget: per-GPU weights, the activation peak and the KV cache --------------------------
struct KvBudgetInput {
    const nlohmann::json& sim;
    const RunChoices& run;
    const TensorParallel& tpar;
    const EngramGpuShape& engram_shape;
    uint64_t hbm_cache_rows = 0;
    double hbm_bytes = 0;  // the GPU's HBM capacity
};
struct KvBudget {
    double weight_bytes = 0, kv_bytes_per_token = 0, activation_peak = 0;
    double engram_weight_bytes = 0;  // projections plus this GPU's share of the HBM cache
    // The warm-up's largest live tensors per token: the backbone's, and the Engram module's
    // (engram_activation_bytes_per_token); the larger sets the activation peak.
    double backbone_activation_bytes_per_token = 0, engram_activation_bytes_per_token = 0;
    int64_t num_kv_blocks = 0;
};
KvBudget kv_budget(const KvBudgetInput& in, const Engine& engine);
// The Engram layers' projections in HBM (d_mem x hidden x (hc_mult + 1) values per layer), and the
// device buffer for one step's unique rows (at most every lookup of a max_num_batched_tokens
// prefill), each GPU's 1/tp of it: what kv_budget (and a cluster's KV sizing) count.
double engram_projection_bytes(const RunChoices& run, const EngramGpuShape& e);
double engram_staging_bytes(const EngramGpuShape& e, int max_num_batched_tokens, double tp = 1);

// --- workload_and_lookups: the requests, the engine's schedule, unique rows per step -----------
// What a plan serves: the requests' lengths, with their tokens unless the workload is synthetic
// (its lookups are streamed by the fitted generator, from lengths alone).
struct Served {
    std::shared_ptr<const Workload> text;  // null for a synthetic workload
    std::vector<uint32_t> prompt_len, output_len;
    std::shared_ptr<const SyntheticModel> synthetic;
    uint64_t synthetic_seed = 0;
    std::unique_ptr<LookupSource> lookups(const EngramConfig& engram,
                                          const SchedulerConfig& sc) const;
};
struct WorkloadInput {
    const nlohmann::json& cfg;  // its workload, sim and engram sections
    const RunChoices& run;
    int64_t num_kv_blocks = 0;
    int shard = 0, shards = 1;  // requests r = shard mod shards
};
struct ServedWork {
    std::shared_ptr<const Served> served;
    SchedulerConfig scheduler;
    std::shared_ptr<const EngineSchedule> schedule;
    std::shared_ptr<const LookupCounts> counts;  // null without an Engram
    std::string lookup_key;                      // what decides the lookups (cache key)
};
ServedWork workload_and_lookups(const WorkloadInput& in, const Engine& engine);

// --- placement_replay: which rows the caches serve, step by step -------------------------------
struct ReplayInput {
    const nlohmann::json& workload;
    const RunChoices& run;
    const TablePlacement& table;
    const ServedWork& work;
};
// One record per step and Engram layer; null when no cache decides anything.
using PlacementRecords = std::shared_ptr<const std::vector<placement::StepRecord>>;
PlacementRecords placement_replay(const ReplayInput& in);

// --- fetch_work: the fetch mechanism with its parameters ---------------------------------------
struct FetchWorkInput {
    const nlohmann::json& hardware;
    const nlohmann::json& sim;
    const RunChoices& run;
    const PlatformStage& where;
    double kernel_floor_s = 0;
};
struct FetchStage {
    FetchParams params;
    std::shared_ptr<const FetchMechanism> mechanism;
    bool fetching = false;  // an Engram off the GPU, and a schedule that fetches
};
FetchStage fetch_work(const FetchWorkInput& in);

// --- plan_steps: every step's op times and fetch work ------------------------------------------
struct StepsInput {
    const nlohmann::json& sim;
    const RunChoices& run;
    const BackboneCosts& costs;
    const TablePlacement& table;
    const ServedWork& work;
    const PlacementRecords& records;
    const FetchStage& fetch;
    const Engine* engine = nullptr;  // its graph modes (null: kDefaultEngine)
};
struct PlannedSteps {
    std::vector<PlannedStep> steps;
    std::vector<uint32_t> first_step, last_step;  // per request
};
PlannedSteps plan_steps(const StepsInput& in);
// What the step model prices of one scheduled step: its tokens and sequences, and on a prefill
// step the prefill slices' tokens, query-key pairs and earlier KV apart from the decodes'.
StepShape step_shape(const Step& st);

}  // namespace engramsim::sim
