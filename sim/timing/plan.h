// A serving run, planned: the resolved config turned into every engine step with its operator
// times and fetch work. The schedule (traces/schedule.h, nano-vLLM continuous batching) depends
// only on lengths, so steps, lookups and op costs are fixed before any simulation; the
// simulator (sim/timing/serving.h) then decides when each happens and what waits for what.
//
// A run config has the sections backbone, hardware, workload, sim and, optionally, engram
// (absent: the backbone alone). The KV cache holds
//   num_kv_blocks = floor((hbm x gpu_memory_utilization - weights - activation peak)
//                         / (kv_block_size x KV bytes per token))
// as nano-vLLM sizes it after its warm-up run (activation peak: one max_num_batched_tokens
// prefill's largest live tensors plus max_num_seqs fp32 logits, and the Engram's device
// buffer for one step's unique rows, and the HBM cache when there is one).
//
// The placement section says where rows are served from. With placement.hbm_capacity above 0 an
// HBM cache sits in front of the table: sim/placement replays the run's own lookups (same steps)
// through it with placement.policy, and each step fetches only its misses. With the table on
// NVMe (sim.table nvme), placement.dram_capacity rows of it are held in host DRAM: all of it
// ("all", the default: nothing is read from the drives), none ("0": every HBM miss is read from
// the drives) or, in between, a DRAM cache replayed with placement.dram_policy and
// placement.tiers: a step gathers its DRAM hits on the host and reads only the rest
// (StepRecord::ssd_rows) from the drives.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
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
#include "sim/timing/platform.h"
#include "sim/timing/prefetch.h"

namespace engramsim::sim {

struct PlannedFetch {
    int engram_index = 0;  // into Plan::engram_layers
    int issue_layer = 0;   // issued at this layer's start (0: the step start)
    uint64_t lookups = 0, unique_rows = 0;
    uint64_t hbm_hits = 0;  // unique rows the HBM cache served (not fetched)
    // The fetched rows (unique_rows - hbm_hits) by the tier that served them: host DRAM (the
    // table, or a DRAM cache in front of NVMe) and NVMe.
    uint64_t dram_rows = 0, ssd_rows = 0;
    FetchWork work;
    // Host-cpu, a fetch issued before its Engram layer: the compute time it costs beyond its
    // work, the wake penalty (sim.fetch_wake_penalty, and sim.fetch_wake_penalty_per_read per
    // drive read). The prefetcher's and readers' threads wake onto the cores OpenBLAS's team
    // holds, and the team waits at its barriers for the thread it lost: the compute idles this
    // long, as the calibration measures it, before it waits for the rows (Instr::Kind::Idle).
    double compute_penalty_s = 0;
};

// Tensor parallelism (TP > 1): a GPU-stream segment of `seconds` (what each GPU runs), then a
// collective among the GPUs (model/tensor_parallel.h, sim/timing/collectives.h).
struct TpSegment {
    double seconds = 0;
    Collective after;
    std::string after_kernel;  // the kernel the collective follows (the timeline's label)
};

// hardware.gpu.kind host-cpu: consecutive ops that run on the same number of the host's cores.
struct CoreSegment {
    double seconds = 0;  // their time alone on `threads` cores
    int threads = 1;
};

struct PlannedStep {
    bool prefill = false;
    bool mixed = false;  // a prefill step that also decodes (chunked prefill)
    // The engine's host work for the step (sim.step_host_time + sim.step_host_time_per_seq x
    // seqs): before its GPU work in a synchronous loop, overlapping the previous step's GPU
    // work where the engine overlaps them (Plan::overlaps_host).
    double host_s = 0;
    // The host's time to launch each part's kernels and graphs (sim.cuda_graphs, kernel_launch,
    // graph_launch): `total` overlaps the part's GPU work, but its `first` launch comes before
    // any of it (a part starts at the step start or after a fetch's wait). A part's run then
    // takes first + max(GPU seconds, total - first). Zero where launches are not modeled.
    struct Launch {
        double total = 0, first = 0;
    };
    Launch launch_embed, launch_layer, launch_engram, launch_head;
    uint32_t tokens = 0, seqs = 0;
    uint64_t context_tokens = 0;
    double gpu_hash_s = 0;  // hashing on the GPU, at the step start
    double embed_s = 0, layer_s = 0, head_s = 0;  // backbone, calibrated
    std::vector<double> engram_gpu_s;             // per Engram layer
    std::vector<PlannedFetch> fetch;              // one per Engram layer that fetches
    // TP > 1 only: the embedding, one layer, one Engram module and the head as segments cut at
    // collectives (embed_s, layer_s, engram_gpu_s, head_s then hold their sums). Each fetch's
    // work is one GPU's share, fetched by every GPU at once over its own host link.
    std::vector<TpSegment> tp_embed, tp_layer, tp_engram, tp_head;
    // hardware.gpu.kind host-cpu only: the embedding, one layer, one Engram module and the head
    // as runs of consecutive ops on as many cores (GEMMs on all of them, as OpenBLAS's team
    // runs them; every other op on the engine's one compute thread), in order; their seconds
    // sum to embed_s, layer_s, engram_gpu_s and head_s.
    std::vector<CoreSegment> cpu_embed, cpu_layer, cpu_engram, cpu_head;
};

// One GPU-stream instruction of a step: run `seconds` of kernels, issue fetch `fetch`, or wait
// for it; or (Idle, host-cpu) lose `seconds` of the compute's time to fetch `fetch`, holding no
// core (PlannedFetch::compute_penalty_s). The simulator and the analytic DAG execute the very
// same program.
struct Instr {
    enum class Kind { Run, Issue, Wait, Collective, Idle } kind = Kind::Run;
    double seconds = 0;
    int fetch = -1;  // index into PlannedStep::fetch
    std::string label;
    // Kind::Run on a host-cpu platform: the host's cores it keeps busy (its ops' threads); 0: the
    // GPU's stream.
    int threads = 0;
    Collective collective;  // Kind::Collective: among Plan::gpus
    // Kind::Collective, for the timeline: the op list it ends a segment of ("embed", "layer",
    // "engram", "head"), its layer (-1: embedding, head) and the segment it follows.
    const char* op = nullptr;
    int layer = -1;
    const TpSegment* segment = nullptr;
    // Kind::Run: the host's launches of its kernels (PlannedStep::Launch); run_seconds() is
    // what the run takes.
    double launch_s = 0, launch_first_s = 0;
};

struct Plan {
    // The engine serving it: its KV sizing, scheduler and step program (sim/timing/engine.h).
    const Engine* engine = &sim::engine(kDefaultEngine);
    bool overlaps_host = false;  // engine->overlaps_host(sim): async scheduling
    nlohmann::json config;  // resolved
    BackboneShape backbone;
    bool has_engram = false;
    EngramConfig engram;
    std::string table = "host-dram";
    std::string mechanism;
    PrefetchSchedule schedule;
    Platform platform;
    int gpu = 0, host = 0;   // node indices
    // hardware.gpu.kind host-cpu: the engine computes on the host node itself, whose
    // `cpu_cores` cores its steps share with the fetches' host work (simulate()): each run of
    // its program keeps Instr::threads cores busy, a fetch's host work `fetch_threads` (its
    // gather threads, at most the cores); its drive reads' CPU holds none (what the reads cost
    // the compute is PlannedFetch::compute_penalty_s, measured whole); gpu0 is then unused.
    bool compute_on_host = false;
    int cpu_cores = 0, fetch_threads = 1;  // 0 and 1 unless host-cpu
    int h2d = 0, d2h = 0;    // link indices of gpu0's own host link (last / first hop)
    std::vector<int> h2d_route, d2h_route;  // host -> gpu0 and back (via a PCIe switch: 2 hops)
    int tensor_parallel = 1;  // sim.tensor_parallel
    bool coalesce_collectives = false;  // sim.collective_comms = coalesced (sim/timing/collectives.h)
    // sim.fetch_queue = fifo: a GPU's fetches run their host work one at a time, and then their
    // copy to the GPU (or UVA reads) one at a time, each in the order they reach it; shared
    // (false): concurrent ones split the host threads and the link equally.
    bool fifo_fetch_queue = false;
    // sim.uva_sm_share: while a UVA gather's reads are in flight its kernel holds this share of
    // the GPU's SMs, and the compute beside it runs on the rest (the DES only).
    double uva_sm_share = 0;
    std::vector<int> gpus;    // node indices gpu0..gpu{TP-1}
    std::vector<int> nvme;   // drive node indices (table = nvme reads from each)
    std::vector<int> memory_nodes;  // remote memory servers (table = remote-dram), mem0 first
    std::vector<int> engram_layers;
    std::vector<PlannedStep> steps;
    std::vector<uint32_t> output_len, first_step, last_step;  // per request
    uint64_t prompt_tokens = 0, output_tokens = 0;
    int64_t num_kv_blocks = 0;
    uint64_t preemptions = 0;
    double backbone_time_scale = 1;
    double weight_bytes = 0, kv_bytes_per_token = 0;  // per GPU
    uint64_t hbm_cache_rows = 0;  // HBM cache in front of the table (rows)
    // Table on NVMe: rows held in host DRAM (placement.dram_capacity; >= table_rows: the whole
    // table). Unused for a table in host DRAM or HBM.
    uint64_t dram_cache_rows = 0;
    uint64_t table_rows = 0;  // the Engram table's rows, all layers

    // Data parallelism (sim.data_parallel = D > 1): D engine replicas on one node, replica k on
    // gpu k, serving requests r = k mod D of the workload. `replicas` holds one plan per replica
    // (each a one-GPU plan of its shard: its own steps, KV cache, lookups and cache replay; its
    // gpu / gpus / routes name gpu k of the shared platform). This plan then has no steps: it
    // holds the shared platform (D GPUs, PCIe switches, drives), gpus = gpu0..gpu{D-1}, the
    // sums over the replicas (prompt / output tokens, preemptions) and the per-GPU sizes (KV
    // blocks, weights), and `host_cores`: the SimGrid core count of the shared host,
    // max(1, floor(host cores / sim.gather_threads)). D = 1: replicas is empty (one engine).
    int data_parallel = 1;
    int host_cores = 1;
    std::vector<Plan> replicas;
};

// Builds the plan. Workloads, schedules and lookup counts are cached per process by the inputs
// that decide them, so runs that differ only in timing parameters share them.
Plan make_plan(const nlohmann::json& resolved);

// Shard `shard` of `shards` of the workload (requests r = shard mod shards, in workload order)
// planned as a one-GPU run on its own (a one-GPU platform, whatever sim.data_parallel says):
// what replica `shard` of a sim.data_parallel = `shards` run would be alone on the node.
Plan make_shard_plan(const nlohmann::json& resolved, int shard, int shards);

// The GPU-stream program of a step (see Instr).
std::vector<Instr> step_program(const Plan& plan, const PlannedStep& step);
// The step's program as the plan's engine runs it (Engine::step_program).
inline std::vector<Instr> engine_step_program(const Plan& plan, const PlannedStep& step) {
    return plan.engine->step_program(plan, step);
}

// The step's operator DAG (model/step_model.h) and its critical path: the step time when
// nothing contends.
double analytic_step_seconds(const Plan& plan, const PlannedStep& step);

// What a Kind::Run instruction takes: its GPU seconds, or, when the host launches its kernels
// slower than the GPU runs them, the launches (the first before any kernel runs).
inline double run_seconds(const Instr& in) {
    if (in.launch_s <= 0) return in.seconds;
    return in.launch_first_s + std::max(in.seconds, in.launch_s - in.launch_first_s);
}

}  // namespace engramsim::sim

namespace engramsim::sim {
// A run config from a document: missing sections default to the paper's Table 4 setting
// (hardware h800-pcie5, workload nano-vllm-512, sim and placement defaults); backbone is
// required; engram is optional. A backbone preset name alone ("dense-4b") means that backbone with
// paper-offload-100b. Throws config::ConfigError.
nlohmann::json resolve_run_config(const nlohmann::json& doc, const std::string& origin);
nlohmann::json load_run_config(const std::string& preset_or_path);
}  // namespace engramsim::sim
