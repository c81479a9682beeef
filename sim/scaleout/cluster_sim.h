// A cluster plan (cluster_plan.h) on SimGrid, and the same program as a critical path.
//
// The platform: one SimGrid zone per node (a full zone: its GPUs, its host, one "rail" host per
// NIC standing for host memory read out through that NIC, a gateway router) as the leaves of a
// SimGrid fat-tree zone (two levels: leaf switches of `leaf_nodes` nodes, `spines` spine
// switches; one level when every node fits under one switch). Memory servers are leaves of their
// own. Routes in SimGrid's fat tree are computed on the fly (D-mod-k), so 1024 GPUs cost no route
// table. A node is wired as an HGX board: GPU g on PCIe switch g / gpus_per_switch (its x16 leg:
// the host link's bandwidth, no latency of its own) whose uplink to the host carries the host
// link's bandwidth and latency; NIC g on that switch, so GPU g's traffic to the fabric leaves by
// its own NIC (its rail) over its leg, and rows the host serves through NIC g cross the switch's
// uplink; an NVSwitch joins the GPUs (a link pair per GPU). The fabric's links carry the rails
// merged: gpus_per_node x the NIC bandwidth, so a node's rails load them evenly.
//
// Idle routes: GPU to GPU on a node 2 x nvlink latency; through a leaf 2 x nic_latency +
// 2 x switch_link_latency; through a spine 2 x nic_latency + 4 x switch_link_latency.
//
// The simulated unit is a GPU (cluster.granularity gpu) or a node's GPUs as one (node, the
// default: one GPU host whose legs, NIC and NVLink links are G times as wide, its PCIe switches one
// uplink G / gpus_per_switch times as wide; exact while the node's GPUs run alike).
//
// Each unit runs one actor: per step, its stage's layers in groups of at most layers_per_event,
// cut at Engram layers and at fetch issues. A group of L layers runs pre x L, a dispatch of L
// layers' bytes, experts x L and a combine, each all-to-all after a sleep of (L - 1) x the
// latency of its slowest flow on idle links: on idle links L layers take exactly what L single
// layers take. An all-to-all is a put per flow into the peer's mailbox and a get per incoming
// flow (cluster_plan.h: a2a_flows; a node's own NVLink flows go out to its NVSwitch and back). A
// fetcher actor per unit on its node's host serves its stage's fetches in issue order: the local
// rows (the mechanism's host work and copy), the remote ones (ids to the holder, its CPU's
// gather, an RDMA write into the GPU) at once; a node's GPUs' fetches as one of width G (its
// host work on G threads).
//
// SimGrid's CM02 model shares a link in inverse proportion to its flows' route latencies (TCP's
// RTT unfairness), which an RDMA fabric does not: every route through the fabric therefore has
// the same SimGrid latency, and a flow through the spine sleeps the two further switch links
// before it starts (cluster_sim.cpp, nic_link_latency).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <vector>

#include "sim/scaleout/cluster_plan.h"

namespace engramsim::sim::scaleout {

// One span of the first unit's timeline (GPU 0, or node 0's GPUs).
struct ClusterSpan {
    enum class Kind : uint32_t { Compute, Dispatch, Combine, Stall, Fetch, Pipeline } kind;
    uint32_t step = 0;
    double start_s = 0, end_s = 0;
};

struct ClusterResult {
    double makespan_s = 0;
    // The first GPU of the first stage (start) and of the last stage (end), per step.
    std::vector<double> step_start_s, step_end_s;
    // GPU 0 (the hot GPU under routing_skew): time waiting in all-to-alls (from the first put to
    // the last flow's arrival), waiting for Engram rows, and its fetches' issue-to-ready time.
    double a2a_s = 0, stall_s = 0, fetch_s = 0, compute_s = 0;
    uint64_t activities = 0;  // SimGrid activities started (executions, sleeps, comms)
    // Wall time (the host's clock): building the platform and actors, and running them.
    double setup_s = 0, wall_s = 0;
    std::vector<ClusterSpan> spans;  // the first unit's, in order of their ends
};

// The cluster on SimGrid (one engine per process: see simulate_cluster_forked).
ClusterResult simulate_cluster(const ClusterPlan& plan);
// In a forked child; the parent gets the result or the child's error.
ClusterResult simulate_cluster_forked(const ClusterPlan& plan);
// The same programs on idle links: each stage's first GPU, step by step (with routing_skew 0 and
// no shared link busy, what the DES gives).
ClusterResult analytic_cluster(const ClusterPlan& plan);

// An all-to-all's idle time for one layer of a GPU's `flows`, their bytes times `factor` (flows
// for one token at one byte a value take tokens x bytes per value): max over its flows' routes of
// latency + bytes / bandwidth, a route's flows sharing its first link; `latency_s` is the slowest
// route's latency (the DES sleeps (L - 1) x it for a group of L layers).
struct A2aIdle {
    double seconds = 0, latency_s = 0;
};
A2aIdle a2a_idle(const ClusterPlan& plan, const std::vector<A2aFlow>& flows, double factor = 1);
// The idle time of L layers' all-to-all as the DES runs it: (L - 1) x latency + the flows with
// L x bytes.
double a2a_group_seconds(const ClusterPlan& plan, const std::vector<A2aFlow>& flows, int layers,
                         double factor = 1);

struct ClusterMetrics {
    double makespan_s = 0;
    double output_tokens = 0;  // all ranks
    double throughput_tok_per_s = 0, per_gpu_tok_per_s = 0;
    double mean_step_s = 0, mean_decode_step_s = 0;
    // Decode steps alone: the sequences they advance per second, per GPU (a decode instance's
    // rate, without this rank's prefills).
    double decode_tok_per_s_per_gpu = 0;
    // Bytes one GPU puts on the fabric over the run: its all-to-alls' rows for other nodes, and
    // its Engram rows read from other nodes' DRAM or memory servers; the Engram's share of both.
    double a2a_network_bytes_per_gpu = 0, engram_network_bytes_per_gpu = 0;
    double engram_network_share = 0;
    double table_bytes_per_node = 0;  // host DRAM each node gives the table
    double a2a_share = 0;    // GPU 0's time in all-to-alls / makespan
    double stall_share = 0;  // GPU 0's Engram stall / makespan
    uint64_t steps = 0, prefill_steps = 0;
    double unique_rows_per_gpu = 0;
    double events_per_s = 0;  // activities / the run's wall time (setup excluded)
};
ClusterMetrics cluster_metrics(const ClusterPlan& plan, const ClusterResult& r);

// A cluster run and its reference, the same cluster with the table in HBM (run when the plan
// fetches its table from elsewhere and `reference` is set): what engramsim run and a sweep's
// cluster points report.
struct ClusterRun {
    ClusterPlan plan;
    ClusterResult result;
    ClusterMetrics metrics;
    std::optional<ClusterMetrics> table_in_hbm;
    // (reference - this) / reference x 100, throughput; 0 without a reference.
    double overhead_vs_table_in_hbm_pct() const;
};
ClusterRun run_cluster(const nlohmann::json& resolved, bool reference = true);

// The first unit's timeline as a Chrome trace (open in ui.perfetto.dev): its steps, its compute,
// all-to-alls and Engram stalls on one track, its fetches on another.
void write_cluster_timeline(const ClusterPlan& plan, const ClusterResult& r, std::ostream& out);

// results.json of a cluster run (schema engramsim.cluster-results v1): the layout, the fabric,
// the metrics with units, and, where given, the table-in-HBM reference and the overhead.
nlohmann::json cluster_results_json(const ClusterRun& run);

}  // namespace engramsim::sim::scaleout
