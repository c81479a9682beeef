#include "sim/scaleout/cluster_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "model/config.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan_stages.h"

namespace engramsim::sim::scaleout {

using nlohmann::json;
using units::Dim;

namespace {

std::string gb(double bytes) {
    char t[32];
    std::snprintf(t, sizeof t, "%.4g GB", bytes / 1e9);
    return t;
}

[[noreturn]] void refuse(const std::string& what) { throw config::ConfigError(what); }

std::string n(int64_t v) { return std::to_string(v); }

ClusterLayout make_layout(const json& cfg, const RunChoices& run) {
    const json& c = cfg["cluster"];
    const json& hw = cfg["hardware"];
    const json& simc = cfg["sim"];
    ClusterLayout L;
    L.nodes = c["nodes"].get<int>();
    L.gpus_per_node = c["gpus_per_node"].get<int>();
    L.world = L.nodes * L.gpus_per_node;
    const std::string gpus = n(L.world) + " GPUs (cluster.nodes " + n(L.nodes) +
                             " x cluster.gpus_per_node " + n(L.gpus_per_node) + ")";
    if (simc["tensor_parallel"].get<int>() != 1 || simc["data_parallel"].get<int>() != 1)
        refuse("sim.tensor_parallel / sim.data_parallel: the cluster section lays out the GPUs "
               "(every GPU a data-parallel attention rank, experts by cluster.expert_parallel); "
               "set both to 1");
    if (run.has_engram && run.table != "host-dram" && run.table != "hbm")
        refuse("sim.table: " + run.table + " with a cluster section; the cluster places the "
               "table by cluster.engram_table (sim.table host-dram)");

    L.pipeline = c["pipeline_parallel"].get<int>();
    if (L.world % L.pipeline != 0)
        refuse("cluster.pipeline_parallel: " + n(L.pipeline) + " stages do not divide the " +
               gpus);
    if (L.pipeline > run.backbone.layers)
        refuse("cluster.pipeline_parallel: " + n(L.pipeline) + " stages for the backbone's " +
               n(run.backbone.layers) + " layers");
    L.stage_gpus = L.world / L.pipeline;
    if (L.stage_gpus % L.gpus_per_node != 0 && L.gpus_per_node % L.stage_gpus != 0)
        refuse("cluster.pipeline_parallel: a stage of " + n(L.stage_gpus) + " GPUs (" + gpus +
               " / " + n(L.pipeline) + ") is neither whole nodes nor a share of one");

    const int ep_key = c["expert_parallel"].get<int>();
    if (!run.backbone.moe) {
        if (ep_key > 1)
            refuse("cluster.expert_parallel: " + n(ep_key) + " GPUs, but backbone " +
                   run.backbone.name + " has no routed experts");
        L.expert_parallel = 1;
    } else {
        const int E = run.backbone.n_routed_experts;
        L.expert_parallel = ep_key == 0 ? L.stage_gpus : ep_key;
        const int ep = L.expert_parallel;
        if (L.stage_gpus % ep != 0)
            refuse("cluster.expert_parallel: " + n(ep) + " does not divide the " +
                   n(L.stage_gpus) + " GPUs of a pipeline stage (" + gpus +
                   " / cluster.pipeline_parallel " + n(L.pipeline) + ")");
        if (ep <= E && E % ep != 0)
            refuse("cluster.expert_parallel: " + n(ep) + " GPUs do not divide the backbone's " +
                   n(E) + " routed experts");
        if (ep > E && ep % E != 0)
            refuse("cluster.expert_parallel: " + n(ep) + " GPUs are not a multiple of the "
                   "backbone's " + n(E) + " routed experts (each expert replicated alike)");
        L.expert_replicas = std::max(1, ep / E);
        if (ep > L.gpus_per_node ? ep % L.gpus_per_node != 0 : L.gpus_per_node % ep != 0)
            refuse("cluster.expert_parallel: an EP group of " + n(ep) +
                   " GPUs is neither whole nodes nor a share of one (cluster.gpus_per_node " +
                   n(L.gpus_per_node) + ")");
    }

    // The fabric.
    L.topology = c["topology"].get<std::string>();
    const int span_key = c["nodes_per_leaf"].get<int>();
    const int span = span_key > 0 ? span_key : L.topology == "rail-optimized" ? 32 : 4;
    L.table = c["engram_table"] == "sharded"          ? TableHome::Sharded
              : c["engram_table"] == "memory-servers" ? TableHome::MemoryServers
                                                      : TableHome::Replicated;
    L.memory_servers = c["memory_servers"].get<int>();
    if (L.table == TableHome::MemoryServers && L.memory_servers < 1)
        refuse("cluster.memory_servers: 0 with cluster.engram_table memory-servers; give how "
               "many servers hold the table");
    if (L.table != TableHome::MemoryServers && L.memory_servers > 0)
        refuse("cluster.memory_servers: " + n(L.memory_servers) +
               " servers, but cluster.engram_table is " + c["engram_table"].get<std::string>() +
               " (memory servers hold the table with engram_table memory-servers)");
    const int leaves_needed = L.nodes + L.memory_servers;
    L.leaf_nodes = std::min(span, leaves_needed);
    L.oversubscription = config::quantity(c, "oversubscription", Dim::Count);
    if (leaves_needed > L.leaf_nodes) {
        if (L.nodes % L.leaf_nodes != 0)
            refuse("cluster.nodes: " + n(L.nodes) + " nodes do not fill whole leaves of " +
                   n(L.leaf_nodes) + " (cluster.nodes_per_leaf, or the " + L.topology +
                   " topology's)");
        L.leaves = (leaves_needed + L.leaf_nodes - 1) / L.leaf_nodes;
        L.spines = std::max(1, int(std::lround(L.leaf_nodes / L.oversubscription)));
    }
    if (L.expert_parallel > L.gpus_per_node) {
        const int group_nodes = L.expert_parallel / L.gpus_per_node;
        if (group_nodes > L.leaf_nodes ? group_nodes % L.leaf_nodes != 0
                                       : L.leaf_nodes % group_nodes != 0 &&
                                             leaves_needed > L.leaf_nodes)
            refuse("cluster.expert_parallel: an EP group spans " + n(group_nodes) +
                   " nodes, which neither fill whole leaves of " + n(L.leaf_nodes) +
                   " nodes (cluster.nodes_per_leaf) nor fit in one");
    }
    L.switch_link_latency_s = config::quantity(c, "switch_link_latency", Dim::Time);
    L.nic_latency_s = config::quantity(c, "nic_latency", Dim::Time);
    L.nic_bytes_per_s = config::quantity(c, "nic_bandwidth", Dim::Bandwidth);
    if (L.nic_bytes_per_s <= 0) {
        if (!hw.contains("network") && L.nodes + L.memory_servers > 1)
            refuse("cluster.nic_bandwidth: the hardware preset has no network section; give "
                   "the NIC's bandwidth");
        if (hw.contains("network"))
            L.nic_bytes_per_s =
                config::quantity(hw["network"], "bandwidth_per_direction", Dim::Bandwidth);
    }
    if (L.gpus_per_node > 1) {
        if (!hw.contains("nvlink"))
            refuse("cluster.gpus_per_node: " + n(L.gpus_per_node) + " GPUs, but the hardware "
                   "preset has no nvlink section");
        L.nvlink_bytes_per_s =
            config::quantity(hw["nvlink"], "bandwidth_per_direction", Dim::Bandwidth);
        L.nvlink_latency_s = config::quantity(hw["nvlink"], "latency", Dim::Time);
    }
    const json& hl = hw["host_link"];
    L.host_link_bytes_per_s = config::quantity(hl, "bandwidth_per_direction", Dim::Bandwidth);
    L.host_link_latency_s = config::quantity(hl, "latency", Dim::Time);
    L.gpus_per_switch = std::clamp(hl.value("gpus_per_switch", 1), 1, L.gpus_per_node);
    if (L.gpus_per_node % L.gpus_per_switch != 0)
        refuse("hardware.host_link.gpus_per_switch: " + n(L.gpus_per_switch) +
               " does not divide cluster.gpus_per_node " + n(L.gpus_per_node));
    L.hbm_bytes = config::quantity(hw["gpu"], "hbm_capacity", Dim::Bytes);
    L.host_dram_bytes = config::quantity(hw["host"], "dram_capacity", Dim::Bytes);
    const json& host = hw["host"];
    const int64_t cores = int64_t(host.value("sockets", 1)) * host.value("cores_per_socket", 1);
    L.host_cores = int(std::max<int64_t>(1, cores / std::max(1, simc["gather_threads"].get<int>())));
    L.routing_skew = config::quantity(c, "routing_skew", Dim::Count);
    L.dispatch_bytes_per_value = config::quantity(c, "dispatch_bytes_per_value", Dim::Count);
    L.combine_bytes_per_value = config::quantity(c, "combine_bytes_per_value", Dim::Count);
    L.layers_per_event = c["layers_per_event"].get<int>();
    L.micro_batches = c["micro_batches"].get<int>();
    L.pairwise = c["collectives"] == "pairwise";
    L.per_gpu = c["granularity"] == "gpu";
    if (!L.per_gpu && L.pipeline > 1 && L.stage_gpus % L.gpus_per_node != 0)
        refuse("cluster.granularity: node, but a pipeline stage of " + n(L.stage_gpus) +
               " GPUs is a share of a node; use granularity gpu");
    return L;
}

// The table against the memory that holds it.
void check_table_fits(const ClusterLayout& L, double table_bytes, const std::string& home) {
    char msg[500];
    const double holders = L.table == TableHome::Replicated ? 1
                           : L.table == TableHome::Sharded  ? L.nodes
                                                            : L.memory_servers;
    const double each = table_bytes / holders;
    if (each <= L.host_dram_bytes) return;
    if (L.table == TableHome::Replicated)
        std::snprintf(msg, sizeof msg,
                      "cluster.engram_table replicated: the table is %s, more than one node's "
                      "hardware.host.dram_capacity (%s); shard it over the nodes "
                      "(cluster.engram_table sharded: %s a node) or put it on memory servers",
                      gb(table_bytes).c_str(), gb(L.host_dram_bytes).c_str(),
                      gb(table_bytes / L.nodes).c_str());
    else
        std::snprintf(msg, sizeof msg,
                      "cluster.engram_table %s: %s of the %s table on each of %.0f %s, more "
                      "than hardware.host.dram_capacity (%s); use more %s",
                      home.c_str(), gb(each).c_str(), gb(table_bytes).c_str(), holders,
                      L.table == TableHome::Sharded ? "nodes (cluster.nodes)"
                                                    : "servers (cluster.memory_servers)",
                      gb(L.host_dram_bytes).c_str(),
                      L.table == TableHome::Sharded ? "nodes" : "servers");
    refuse(msg);
}

// The routed experts' grouped GEMM on one GPU of an EP group: `rows` token rows over its local
// experts, whose weights are read once each (the expected number the group's tokens touch).
OpShape local_experts_op(const BackboneShape& b, const ClusterLayout& L, double tokens,
                         double rows) {
    const double E = b.n_routed_experts, k = b.top_k, h = b.hidden, I = b.moe_intermediate;
    const double local = std::max(1.0, E * L.expert_replicas / L.expert_parallel);
    // A local expert is touched unless none of the group's tokens (its share of a replicated
    // expert's) picks it.
    const double group_tokens = tokens * L.expert_parallel / L.expert_replicas;
    const double touched = local * (1 - std::pow(1 - k / E, group_tokens));
    OpShape op;
    op.kernel = "moe_grouped_gemm";
    op.dims = {{"tokens", rows / k}, {"experts", local}, {"top_k", k}, {"hidden", h},
               {"intermediate", I}};
    op.flops = rows * 3 * 2 * h * I;
    op.bytes = (touched * b.expert_params() + 2 * rows * h) * b.bytes_per_value;
    return op;
}

double grouped_seconds(const CostModel& cost, const std::vector<OpShape>& ops) {
    double s = 0;
    for (const OpShape& op : ops)
        if (op.kernel == "moe_grouped_gemm") s += cost.seconds(op);
    return s;
}

}  // namespace

int ClusterPlan::stage_first_layer(int p) const {
    return int(int64_t(p) * backbone.layers / layout.pipeline);
}

ClusterPlan make_cluster_plan(const json& cfg) {
    if (!cfg.contains("cluster")) throw std::invalid_argument("make_cluster_plan: no cluster section");
    const Engine& eng = engine(cfg["sim"]["engine"].get<std::string>());
    const RunChoices run = resolve_choices(cfg);
    const json &hw = cfg["hardware"], &simc = cfg["sim"];
    ClusterPlan plan;
    plan.config = cfg;
    plan.layout = make_layout(cfg, run);
    const ClusterLayout& L = plan.layout;
    plan.backbone = run.backbone;
    plan.has_engram = run.has_engram;
    plan.engram = run.engram;
    plan.engram_layers = run.engram_layers;
    plan.schedule = run.schedule;
    plan.table_in_hbm = run.has_engram && run.table == "hbm";
    const BackboneShape& b = run.backbone;
    const BackboneCosts costs = backbone_costs({hw, simc, cfg["backbone"], run});
    if (run.has_engram) {
        plan.row_bytes = run.engram.row_bytes();
        plan.table_rows = lookup_layout(run.engram).total_rows;
        if (!plan.table_in_hbm)
            check_table_fits(L, double(plan.table_rows) * plan.row_bytes,
                             cfg["cluster"]["engram_table"].get<std::string>());
        const PlatformStage where = build_platform({hw, simc, run});
        const FetchStage fetch = fetch_work({hw, simc, run, where, costs.kernel_floor_s});
        plan.fetch = fetch.params;
        plan.mechanism = fetch.mechanism;
    }

    // Per GPU: the dense parts and attention replicated on every rank, its stage's share of the
    // layers, its share of the routed experts.
    const double bpv = b.bytes_per_value;
    const double routed = b.moe ? double(b.layers) * b.n_routed_experts * b.expert_params() : 0;
    const double local_share =
        b.moe ? double(L.expert_replicas) / L.expert_parallel : 0;  // of the routed experts
    const double backbone_bytes = ((b.params() - routed) + routed * local_share) * bpv / L.pipeline;
    double engram_weights = 0, staging = 0, engram_act = 0;
    const int max_batched = simc["max_num_batched_tokens"].get<int>();
    if (run.has_engram) {
        engram_weights = engram_projection_bytes(run, costs.engram_shape);
        staging = engram_staging_bytes(costs.engram_shape, max_batched);
        engram_act = engram_activation_bytes_per_token(costs.engram_shape, b);
    }
    plan.weight_bytes_per_gpu = backbone_bytes + engram_weights;
    plan.kv_bytes_per_token = b.kv_bytes_per_token() / L.pipeline;
    const double live = std::max(b.activation_values_per_token(1) * bpv, engram_act);
    const double act = eng.activation_peak({simc["max_num_seqs"].get<int>(), max_batched,
                                            live / bpv, bpv, double(b.vocab), staging});
    const KvSizingInput sizing{L.hbm_bytes,
                               count_of(simc, "gpu_memory_utilization"),
                               plan.weight_bytes_per_gpu,
                               act,
                               plan.kv_bytes_per_token,
                               simc["kv_block_size"].get<int>(),
                               simc["num_kv_blocks"].get<int64_t>()};
    plan.num_kv_blocks = eng.kv_blocks(sizing);
    if (plan.num_kv_blocks < 1)
        refuse("the model does not fit: per GPU, hardware.gpu.hbm_capacity " + gb(L.hbm_bytes) +
               " x sim.gpu_memory_utilization leaves " +
               gb(L.hbm_bytes * sizing.gpu_memory_utilization) + ", minus weights " +
               gb(plan.weight_bytes_per_gpu) + " (the routed experts over cluster.expert_parallel " +
               n(L.expert_parallel) + " GPUs, the rest on every GPU, over cluster.pipeline_parallel " +
               n(L.pipeline) + " stages), minus the activation peak " + gb(act) +
               ": no room for one KV block; spread the experts wider or add stages");

    const ServedWork work = workload_and_lookups({cfg, run, plan.num_kv_blocks, 0, 1}, eng);
    plan.requests = work.served->prompt_len.size();
    for (size_t r = 0; r < work.served->prompt_len.size(); ++r) {
        plan.prompt_tokens += work.served->prompt_len[r];
        plan.output_tokens += work.served->output_len[r];
    }
    plan.preemptions = work.schedule->preemptions;

    const double scale = costs.backbone_time_scale;
    const auto& steps = work.schedule->steps;
    plan.steps.reserve(steps.size());
    const double M = L.micro_batches;
    for (size_t i = 0; i < steps.size(); ++i) {
        const StepShape whole = step_shape(steps[i]);
        // One micro-batch: 1/M of the sequences, their tokens and their attention.
        StepShape shape = whole;
        for (double* x : {&shape.tokens, &shape.seqs, &shape.context_tokens, &shape.causal_pairs,
                          &shape.prefill_tokens, &shape.prefill_prior, &shape.decode_seqs,
                          &shape.decode_context})
            *x /= M;
        ClusterStep cs;
        cs.prefill = steps[i].prefill;
        cs.tokens = uint32_t(steps[i].tokens);
        cs.seqs = uint32_t(whole.seqs);
        cs.embed_s = scale * total_seconds(costs.cost, embed_ops(b, shape));
        cs.head_s = scale * total_seconds(costs.cost, head_ops(b, shape));
        const double layer = scale * total_seconds(costs.cost, layer_ops(b, shape));
        if (b.moe) {
            const double T = shape.tokens, rows = T * b.top_k;
            const double all_experts = scale * grouped_seconds(costs.cost, moe_ops(b, T));
            cs.pre_s = layer - all_experts;
            cs.expert_s = scale * costs.cost.seconds(local_experts_op(b, L, T, rows));
            cs.expert_hot_s = scale * costs.cost.seconds(
                                          local_experts_op(b, L, T, rows * (1 + L.routing_skew)));
        } else {
            cs.pre_s = layer;
        }
        if (run.has_engram) {
            cs.engram_gpu_s =
                costs.engram_scale * total_seconds(costs.cost, engram_ops(costs.engram_shape, b, shape));
            cs.lookups = work.counts->lookups[i];
            cs.unique_rows = work.counts->unique_rows[i];
        }
        plan.steps.push_back(std::move(cs));
    }
    return plan;
}

ClusterPlan with_table_in_hbm(ClusterPlan plan) {
    plan.table_in_hbm = true;
    return plan;
}

// ---- All-to-all geometry -------------------------------------------------------------------

bool is_hot(const ClusterPlan& plan, int gpu) {
    return plan.layout.routing_skew > 0 &&
           (gpu % plan.layout.stage_gpus) % plan.layout.expert_parallel == 0;
}

std::vector<A2aFlow> a2a_flows(const ClusterPlan& plan, int gpu, double tokens,
                               double bytes_per_value) {
    const ClusterLayout& L = plan.layout;
    std::vector<A2aFlow> out;
    if (!plan.backbone.moe || L.expert_parallel <= 1) return out;
    const int EP = L.expert_parallel, G = L.gpus_per_node;
    const double row = plan.backbone.hidden * bytes_per_value;
    const double per_gpu = tokens * plan.backbone.top_k / EP * row;  // to each GPU of the group
    const int group_first = gpu - gpu % EP;  // GPU indices are global; groups are aligned
    if (L.pairwise) {
        for (int d = group_first; d < group_first + EP; ++d) {
            if (d == gpu) continue;
            const int a = L.node_of(gpu), b = L.node_of(d);
            out.push_back({a == b                           ? A2aFlow::Kind::NvLink
                           : L.leaf_of(a) == L.leaf_of(b) ? A2aFlow::Kind::Leaf
                                                            : A2aFlow::Kind::Spine,
                           d, per_gpu});
        }
        return out;
    }
    const int ge = std::min(EP, G);  // the group's GPUs on one node
    const int node = gpu / G, local = gpu % G;
    if (ge > 1) {  // the next GPU of the group's slot on this node
        const int slot = local - local % ge;
        out.push_back({A2aFlow::Kind::NvLink, node * G + slot + (local - slot + 1) % ge,
                       per_gpu * (ge - 1)});
    }
    if (EP <= G) return out;
    const int group_nodes = EP / G, first_node = group_first / G;
    // The group's nodes on this node's leaf (the group and the leaves are aligned).
    const int leaf_first = std::max(first_node, L.leaf_of(node) * L.leaf_nodes);
    const int leaf_end = std::min(first_node + group_nodes, (L.leaf_of(node) + 1) * L.leaf_nodes);
    const int on_leaf = leaf_end - leaf_first;
    if (on_leaf > 1)
        out.push_back({A2aFlow::Kind::Leaf,
                       (leaf_first + (node - leaf_first + 1) % on_leaf) * G + local,
                       per_gpu * G * (on_leaf - 1)});
    if (group_nodes > on_leaf)
        out.push_back({A2aFlow::Kind::Spine,
                       (first_node + (node - first_node + on_leaf) % group_nodes) * G + local,
                       per_gpu * G * (group_nodes - on_leaf)});
    return out;
}

}  // namespace engramsim::sim::scaleout
