// A multi-node deployment, planned (the run config's `cluster` section; docs/scaleout.md).
//
// N nodes of the hardware preset, G GPUs each, joined by a two-level fat tree whose leaves are the
// nodes. The W = N x G GPUs form `pipeline_parallel` stages of S = W / P GPUs; in a stage every
// GPU is a data-parallel attention rank (attention and the dense parts replicated, tensor
// parallel 1, as DeepSeek's decode instances run) and the routed experts are spread over
// expert-parallel groups of EP GPUs. On every MoE layer a GPU dispatches its T x top_k token rows
// to the experts' GPUs and gets them back (combine): an all-to-all inside its EP group, intra-node
// rows over NVLink, the others NIC to NIC (DeepEP's low-latency kernels: RDMA straight to the
// destination GPU).
//
// Every attention rank serves the workload section's requests with the engine's scheduler: the
// ranks are alike, so the schedule is made once and every GPU runs its steps (a rank-to-rank
// imbalance of batches is not modeled; an expert imbalance is, by routing_skew).
//
// The Engram table: replicated in every node's host DRAM (each GPU gathers its own rows there and
// copies them over its PCIe switch), sharded evenly over the nodes' host DRAM (a GPU's rows are
// 1/N local; the rest its peer nodes' CPUs gather and write into its HBM by RDMA, over both NICs
// and the fabric), or on memory servers on the fabric. Each GPU hashes and gathers for its own
// tokens.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/engram_config.h"
#include "model/step_model.h"
#include "sim/timing/fetch.h"
#include "sim/timing/prefetch.h"

namespace engramsim::sim::scaleout {

enum class TableHome { Replicated, Sharded, MemoryServers };

// The cluster's shape, its fabric and the parallel layout, validated.
struct ClusterLayout {
    int nodes = 1, gpus_per_node = 8, world = 8;
    int pipeline = 1, stage_gpus = 8;  // P, S = W / P
    int expert_parallel = 8;           // EP (GPUs per EP group)
    int expert_replicas = 1;           // EP > experts: copies of each expert in a group
    int leaf_nodes = 1;                // nodes per leaf switch (min(nodes_per_leaf, nodes))
    int leaves = 1, spines = 0;        // spines = 0: one leaf switch, no spine level
    std::string topology;
    double oversubscription = 1;
    double nic_bytes_per_s = 0, nic_latency_s = 0, switch_link_latency_s = 0;
    double nvlink_bytes_per_s = 0, nvlink_latency_s = 0;
    double host_link_bytes_per_s = 0, host_link_latency_s = 0;
    int gpus_per_switch = 1;           // GPUs (and their NICs) per PCIe switch
    double hbm_bytes = 0, host_dram_bytes = 0;
    int host_cores = 1;                // SimGrid cores of a node's host: cores / gather_threads
    double routing_skew = 0, dispatch_bytes_per_value = 1, combine_bytes_per_value = 2;
    TableHome table = TableHome::Replicated;
    int memory_servers = 0;
    int layers_per_event = 4;
    int micro_batches = 1;  // M: a step's sequences in M micro-batches, overlapped
    bool pairwise = false;  // collectives pairwise (else coalesced)
    bool per_gpu = false;   // granularity gpu: one simulated unit per GPU (else per node)

    int node_of(int gpu) const { return gpu / gpus_per_node; }
    int leaf_of(int node) const { return node / leaf_nodes; }
};

// One step as every attention rank runs it. Per layer: `pre_s` (attention, norms, router,
// permutation, shared experts, the combine's weighted sum), then the dispatch, the routed experts
// (`expert_s`; `expert_hot_s` on an EP group's first GPU under routing_skew), then the combine.
struct ClusterStep {
    bool prefill = false;
    uint32_t tokens = 0, seqs = 0;
    // One micro-batch's work (with micro_batches M > 1, each runs 1/M of the step's sequences
    // and tokens; M = 1: the whole step).
    double embed_s = 0, head_s = 0;
    double pre_s = 0, expert_s = 0, expert_hot_s = 0;
    double engram_gpu_s = 0;       // the Engram module's GPU work, per Engram layer
    std::vector<uint64_t> lookups, unique_rows;  // per Engram layer: this rank's
};

struct ClusterPlan {
    nlohmann::json config;  // resolved
    ClusterLayout layout;
    BackboneShape backbone;
    bool has_engram = false;
    EngramConfig engram;
    std::vector<int> engram_layers;
    PrefetchSchedule schedule;
    double row_bytes = 0;
    uint64_t table_rows = 0;
    FetchParams fetch;                          // the gather model (sim section)
    std::shared_ptr<const FetchMechanism> mechanism;  // a GPU's fetch of its local rows
    std::vector<ClusterStep> steps;
    // Per attention rank.
    uint64_t requests = 0, prompt_tokens = 0, output_tokens = 0, preemptions = 0;
    int64_t num_kv_blocks = 0;
    double weight_bytes_per_gpu = 0, kv_bytes_per_token = 0;
    // The table in HBM (the reference): the same steps, no fetch.
    bool table_in_hbm = false;

    int ranks() const { return layout.stage_gpus; }  // attention ranks (one per GPU of a stage)
    // Layers of pipeline stage p: [first, last).
    int stage_first_layer(int p) const;
    int stage_last_layer(int p) const { return stage_first_layer(p + 1); }
};

// Throws config::ConfigError naming the keys and the numbers for a layout the cluster cannot
// hold (EP x P against the GPUs, experts against EP, a table larger than the nodes' memory, no
// HBM left for the KV cache).
ClusterPlan make_cluster_plan(const nlohmann::json& resolved);

// The same plan with the table in HBM: no fetches (the overhead's reference).
ClusterPlan with_table_in_hbm(ClusterPlan plan);

// ---- The all-to-all of one MoE layer, per GPU ------------------------------------------------

// One coalesced flow of a GPU's all-to-all (or, pairwise, one pair's): to `peer` (a GPU index)
// over NVLink (same node) or the NICs.
struct A2aFlow {
    enum class Kind { NvLink, Leaf, Spine } kind = Kind::NvLink;  // its route
    int peer = 0;
    double bytes = 0;  // at balanced routing, for one layer
};

// The flows GPU `gpu` sends in one dispatch (bytes per row: hidden x dispatch_bytes_per_value)
// at `tokens` tokens a rank: coalesced, one NVLink flow to the next GPU of its node's group, one
// NIC flow to the next node of its leaf (rows for the group's other nodes on that leaf) and one
// to the node one leaf-block on (rows for the other leaves); pairwise, one flow per other GPU of
// its group. The combine sends the same flows with combine_bytes_per_value. The peers are rings:
// every GPU receives as many flows as it sends.
std::vector<A2aFlow> a2a_flows(const ClusterPlan& plan, int gpu, double tokens,
                               double bytes_per_value);
// routing_skew: the hot GPU (the first of each EP group) receives (1 + skew) x its rows in a
// dispatch and sends that many in the combine.
bool is_hot(const ClusterPlan& plan, int gpu);

}  // namespace engramsim::sim::scaleout
