// The plan's last stages: fetch_work and plan_steps (sim/timing/plan_stages.h).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "model/config.h"
#include "sim/timing/plan_stages.h"

namespace engramsim::sim {

using nlohmann::json;
using units::Dim;

namespace {

// hardware.nvme.iops_at_depth: {"depth": "rate"}, each rate divided among `tp` GPUs, sorted by
// depth.
std::vector<std::pair<double, double>> iops_at_depth(const json& nv, double tpd) {
    std::vector<std::pair<double, double>> out;
    for (const auto& [depth, rate] : nv["iops_at_depth"].items()) {
        const std::string at = "hardware.nvme.iops_at_depth." + depth;
        size_t used = 0;
        long d = 0;
        try {
            d = std::stol(depth, &used);
        } catch (const std::exception&) {
        }
        if (used != depth.size() || d < 1)
            throw config::ConfigError(at + ": a queue depth (a positive integer) is the key");
        double iops = 0;
        try {
            iops = units::parse(rate.get<std::string>(), Dim::Count);
        } catch (const std::exception& e) {
            throw config::ConfigError(at + ": " + e.what());
        }
        if (!(iops > 0)) throw config::ConfigError(at + ": a rate must be positive");
        out.push_back({double(d), iops / tpd});
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The drives: their rates (each GPU's share under TP), I/O size, queue depth and queueing law.
void nvme_params(const json& nv, const json& simc, double tpd, FetchParams& fp) {
    fp.nvme_iops_per_drive = config::quantity(nv, "random_read_iops", Dim::Count) / tpd;
    fp.nvme_read_bytes_per_s = config::quantity(nv, "read_bandwidth", Dim::Bandwidth);
    fp.nvme_latency_s = config::quantity(nv, "read_latency", Dim::Time);
    fp.nvme_cpu_per_read_s = config::quantity(nv, "cpu_per_read", Dim::Time);
    fp.nvme_io_bytes = config::quantity(simc, "nvme_io_size", Dim::Bytes);
    fp.nvme_fetch_dispatch_s = config::quantity(simc, "nvme_fetch_dispatch", Dim::Time);
    fp.nvme_queue_depth = simc["nvme_queue_depth"].get<int>();
    const std::string law = simc["nvme_queueing"].get<std::string>();
    fp.nvme_queueing = law == "linear"     ? FetchParams::NvmeQueueing::Linear
                       : law == "measured" ? FetchParams::NvmeQueueing::Measured
                                           : FetchParams::NvmeQueueing::Knee;
    fp.nvme_iops_at_depth = iops_at_depth(nv, tpd);
    if (fp.nvme_queueing == FetchParams::NvmeQueueing::Measured && fp.nvme_iops_at_depth.empty())
        throw config::ConfigError(
            "sim.nvme_queueing: measured needs hardware.nvme.iops_at_depth, the drive's reads per "
            "second at several queue depths (engramsim validate nvme-fetch prints them)");
}

FetchParams fetch_params(const FetchWorkInput& in) {
    const json& simc = in.sim;
    const PlatformStage& w = in.where;
    const double tpd = in.run.tensor_parallel;
    FetchParams fp;
    fp.hash_on_gpu = simc["hashing"] == "gpu";
    fp.hash_rate_per_thread = count_of(simc, "hash_rate_per_thread");
    fp.hash_threads = simc["hash_threads"].get<int>();
    fp.dedup_rate_per_thread = count_of(simc, "dedup_rate_per_thread");
    fp.gather_dispatch_s = config::quantity(simc, "gather_dispatch", Dim::Time);
    fp.gather_threads = simc["gather_threads"].get<int>();
    fp.row_access_latency_s = config::quantity(simc, "row_access_latency", Dim::Time);
    fp.outstanding_per_thread = count_of(simc, "outstanding_per_thread");
    // Under TP every GPU fetches its heads' rows at once: each gets 1/TP of the DRAM bandwidth
    // and of each drive's IOPS (the links are shared inside SimGrid).
    fp.dram_bytes_per_s = w.platform.nodes()[size_t(w.host)].memory_bytes_per_s / tpd;
    fp.dma_setup_s = config::quantity(simc, "dma_setup", Dim::Time);
    fp.uva_read_granularity = config::quantity(simc, "uva_read_granularity", Dim::Bytes);
    fp.uva_outstanding_reads = simc["uva_outstanding_reads"].get<int>();
    fp.link_bytes_per_s = w.platform.links()[size_t(w.h2d)].bandwidth_bytes_per_s;
    fp.link_latency_s = 0;
    for (int l : w.h2d_route) fp.link_latency_s += w.platform.links()[size_t(l)].latency_s;
    fp.kernel_floor_s = in.kernel_floor_s;
    fp.pcie = w.platform.pcie();
    fp.nvme_drives = int(w.nvme.size());
    nvme_params(in.hardware["nvme"], simc, tpd, fp);
    // remote-gather: each memory node is the preset's host (its DRAM bandwidth, the same gather
    // threads and row access latency).
    fp.rows_stay_on_host = in.hardware["gpu"]["kind"] == "host-cpu";
    fp.fetch_wake_penalty_s = config::quantity(simc, "fetch_wake_penalty", Dim::Time);
    fp.fetch_wake_penalty_per_read_s =
        config::quantity(simc, "fetch_wake_penalty_per_read", Dim::Time);
    if (fp.rows_stay_on_host && in.run.has_engram && in.run.table != "hbm" &&
        in.run.mechanism != "cpu-gather" && in.run.mechanism != "nvme")
        throw config::ConfigError("sim.mechanism: hardware.gpu.kind host-cpu computes on the host, "
                                  "where the rows are gathered (cpu-gather) or read (nvme), not \"" +
                                  in.run.mechanism + "\"");
    fp.memory_nodes = in.run.memory_nodes;
    fp.memory_node_dram_bytes_per_s =
        config::quantity(in.hardware["host"], "dram_bandwidth", Dim::Bandwidth);
    if (!(fp.hash_rate_per_thread > 0)) throw config::ConfigError("sim.hash_rate_per_thread: > 0");
    if (!(fp.dedup_rate_per_thread >= 0))
        throw config::ConfigError("sim.dedup_rate_per_thread: >= 0 (0: not modeled)");
    if (!(fp.gather_dispatch_s >= 0)) throw config::ConfigError("sim.gather_dispatch: >= 0");
    if (!(fp.outstanding_per_thread > 0))
        throw config::ConfigError("sim.outstanding_per_thread: > 0");
    return fp;
}

}  // namespace

FetchStage fetch_work(const FetchWorkInput& in) {
    FetchStage out;
    out.params = fetch_params(in);
    try {
        out.mechanism = make_fetch_mechanism(in.run.mechanism, out.params);
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(std::string("sim.mechanism: ") + e.what());
    }
    out.fetching = in.run.has_engram && in.run.table != "hbm" && !in.run.schedule.free();
    return out;
}

namespace {

// The step's GPU-stream times: embedding, one layer, head (backbone-scaled) and one Engram
// module; under TP the segments cut at collectives (sim/timing/plan.h, PlannedStep).
double op_times(const StepsInput& in, const StepShape& shape, PlannedStep& ps) {
    const RunChoices& run = in.run;
    const BackboneCosts& c = in.costs;
    const BackboneShape& bb = run.backbone;
    const double s = c.backbone_time_scale;
    double e = 0;
    if (run.cpu_cores > 0) {
        // A CPU engine: consecutive ops on as many cores, each run priced as one list (a
        // profiled group, all on one thread, stays whole).
        const int cores = run.cpu_cores;
        auto on_cores = [&](const std::vector<OpShape>& ops, double scale,
                            std::vector<CoreSegment>& out) {
            auto threads = [&](const OpShape& op) {
                return op.kernel.find("gemm") != std::string::npos ? cores : 1;
            };
            double sum = 0;
            for (size_t i = 0; i < ops.size();) {
                size_t j = i;
                while (j < ops.size() && threads(ops[j]) == threads(ops[i])) ++j;
                const std::vector<OpShape> part(ops.begin() + ptrdiff_t(i), ops.begin() + ptrdiff_t(j));
                out.push_back({scale * total_seconds(c.cost, part), threads(ops[i])});
                sum += out.back().seconds;
                i = j;
            }
            return sum;
        };
        ps.embed_s = on_cores(embed_ops(bb, shape), s, ps.cpu_embed);
        ps.layer_s = on_cores(layer_ops(bb, shape), s, ps.cpu_layer);
        ps.head_s = on_cores(head_ops(bb, shape), s, ps.cpu_head);
        if (run.has_engram)
            e = on_cores(engram_ops(c.engram_shape, bb, shape), c.engram_scale, ps.cpu_engram);
        return e;
    }
    if (run.tensor_parallel == 1) {
        ps.embed_s = s * total_seconds(c.cost, embed_ops(bb, shape));
        ps.layer_s = s * total_seconds(c.cost, layer_ops(bb, shape));
        ps.head_s = s * total_seconds(c.cost, head_ops(bb, shape));
        if (run.has_engram)
            e = c.engram_scale * total_seconds(c.cost, engram_ops(c.engram_shape, bb, shape));
        return e;
    }
    auto timed = [&](const std::vector<OpShape>& ops, OpList list, double scale,
                     std::vector<TpSegment>& out) {
        double sum = 0;
        for (const TpPiece& piece : c.tpar.shard(ops, list, shape)) {
            out.push_back({scale * total_seconds(c.cost, piece.ops), piece.after,
                           piece.ops.empty() ? std::string() : piece.ops.back().kernel});
            sum += out.back().seconds;
        }
        return sum;
    };
    ps.embed_s = timed(embed_ops(bb, shape), OpList::Embed, s, ps.tp_embed);
    ps.layer_s = timed(layer_ops(bb, shape), OpList::Layer, s, ps.tp_layer);
    ps.head_s = timed(head_ops(bb, shape), OpList::Head, s, ps.tp_head);
    if (run.has_engram)
        e = timed(engram_ops(c.engram_shape, bb, shape), OpList::Engram, c.engram_scale,
                  ps.tp_engram);
    return e;
}

// Hashing on the GPU at the step start: every Engram layer's heads (each GPU its own under TP).
double gpu_hash_seconds(const StepsInput& in, const StepShape& shape) {
    const EngramGpuShape& eshape = in.costs.engram_shape;
    const double tpd = in.run.tensor_parallel;
    OpShape h;
    h.kernel = "engram_hash";
    h.dims = {{"tokens", shape.tokens}, {"heads", double(eshape.heads) / tpd}};
    h.flops = shape.tokens * eshape.heads / tpd * 8;
    h.bytes = shape.tokens * (4.0 * in.run.engram.max_ngram_size + 4.0 * eshape.heads / tpd);
    return double(in.run.engram_layers.size()) * in.costs.cost.seconds(h);
}

// Step i's fetch for Engram layer e_i: its lookups, the rows the caches serve, the work.
PlannedFetch step_fetch(const StepsInput& in, const StepShape& shape, size_t i, size_t e_i) {
    const RunChoices& run = in.run;
    const TablePlacement& t = in.table;
    const double tpd = run.tensor_parallel;
    const auto* rec = in.records ? &(*in.records)[i * run.engram_layers.size() + e_i] : nullptr;
    PlannedFetch f;
    f.engram_index = int(e_i);
    f.issue_layer = run.schedule.issue_layer(run.engram_layers[e_i]);
    f.lookups = in.work.counts->lookups[i][e_i];
    f.unique_rows = in.work.counts->unique_rows[i][e_i];
    if (rec) {
        if (rec->step != i || rec->layer != e_i || rec->unique_rows != f.unique_rows)
            throw std::logic_error("placement records disagree with the plan's steps");
        f.hbm_hits = rec->hbm_hits;
    }
    const uint64_t fetched = f.unique_rows - f.hbm_hits;
    if (run.table != "nvme" || t.dram_cache_rows >= t.table_rows)
        f.dram_rows = fetched;  // the table in DRAM (or all of it cached)
    else if (rec && t.dram_cache_rows > 0)
        f.dram_rows = rec->dram_rows;
    f.ssd_rows = fetched - f.dram_rows;
    // Under TP one GPU's share: its heads' rows (rows split evenly by head).
    FetchInput fin{shape.tokens, double(f.lookups) / tpd, double(fetched) / tpd,
                   run.engram.row_bytes()};
    fin.dram_rows = double(f.dram_rows) / tpd;
    f.work = in.fetch.mechanism->plan(fin);
    // A CPU engine: a fetch issued before its Engram layer wakes the prefetcher (and, from a
    // drive, a reader thread per read) while the compute holds every core, which costs the
    // compute more than the fetch's own work: the compute's time, not the fetch's.
    if (in.fetch.params.rows_stay_on_host && f.work.host_s > 0 &&
        f.issue_layer < run.engram_layers[e_i])
        f.compute_penalty_s =
            in.fetch.params.fetch_wake_penalty_s +
            in.fetch.params.fetch_wake_penalty_per_read_s * double(f.ssd_rows) / tpd;
    return f;
}

// sim.cuda_graphs and its launch costs, read once for all steps.
struct LaunchCosts {
    std::string cuda_graphs;
    double kernel_s = 0, graph_s = 0;
};

// The host's launches of each part of a step (PlannedStep::Launch): kernels launched one by one
// (kernel_launch each, the ops of the part's list), graph pieces (graph_launch each) as the
// engine runs the step under sim.cuda_graphs.
void plan_launches(const StepsInput& in, const Engine& eng, const LaunchCosts& lc,
                   const StepShape& shape, PlannedStep& ps) {
    const double L = lc.kernel_s, G = lc.graph_s;
    const RunChoices& run = in.run;
    const GraphMode mode = eng.graph_mode(lc.cuda_graphs, !ps.prefill);
    if ((L <= 0 && G <= 0) || run.cpu_cores > 0) return;  // not modeled; a CPU engine
    const BackboneShape& bb = run.backbone;
    const std::vector<OpShape> layer = layer_ops(bb, shape);
    const auto n_attention = double(std::count_if(layer.begin(), layer.end(), [](const OpShape& op) {
        return op.kernel.rfind("attention", 0) == 0;
    }));
    const double n_embed = double(embed_ops(bb, shape).size()), n_layer = double(layer.size());
    const double n_head = double(head_ops(bb, shape).size());
    const double n_engram =
        run.has_engram ? double(engram_ops(in.costs.engram_shape, bb, shape).size()) : 0;
    using Launch = PlannedStep::Launch;
    switch (mode) {
        case GraphMode::Eager:
            ps.launch_embed = {n_embed * L, L};
            ps.launch_layer = {n_layer * L, L};
            ps.launch_engram = {n_engram * L, L};
            ps.launch_head = {n_head * L, L};
            break;
        case GraphMode::Piecewise:  // a piece from each attention to the next; the Engram eager
            ps.launch_embed = {G, G};
            ps.launch_layer = {n_attention * L + G, L};
            ps.launch_engram = {n_engram * L + G, L};
            ps.launch_head = {};
            break;
        case GraphMode::Full:  // one graph, and one more after each Engram layer that splits it
            ps.launch_embed = {G, G};
            ps.launch_layer = ps.launch_head = {};
            ps.launch_engram = eng.engram_splits_graph(run.mechanism, in.fetch.fetching)
                                   ? Launch{G, G}
                                   : Launch{};
            break;
    }
}

}  // namespace

StepShape step_shape(const Step& st) {
    StepShape shape{st.prefill, double(st.tokens), double(st.slices.size()),
                    double(st.context_tokens), 0};
    if (!st.prefill) return shape;
    for (const auto& sl : st.slices) {
        const double c = sl.count, f = sl.first;
        if (sl.decode) {
            shape.decode_seqs += 1;
            shape.decode_context += f + 1;
        } else {
            shape.prefill_tokens += c;
            shape.prefill_prior += f;
            shape.causal_pairs += c * f + c * (c + 1) / 2;
        }
    }
    return shape;
}

PlannedSteps plan_steps(const StepsInput& in) {
    const RunChoices& run = in.run;
    const auto& steps = in.work.schedule->steps;
    const size_t n_req = in.work.served->prompt_len.size();
    const bool gpu_hash = in.fetch.fetching && in.sim["hashing"] == "gpu";
    PlannedSteps out;
    out.first_step.assign(n_req, UINT32_MAX);
    out.last_step.assign(n_req, 0);
    out.steps.reserve(steps.size());
    const Engine& eng = in.engine ? *in.engine : engine(kDefaultEngine);
    const double host_step = config::quantity(in.sim, "step_host_time", Dim::Time);
    const double host_seq = config::quantity(in.sim, "step_host_time_per_seq", Dim::Time);
    const LaunchCosts launches{in.sim["cuda_graphs"].get<std::string>(),
                               config::quantity(in.sim, "kernel_launch", Dim::Time),
                               config::quantity(in.sim, "graph_launch", Dim::Time)};
    for (size_t i = 0; i < steps.size(); ++i) {
        const Step& st = steps[i];
        PlannedStep ps;
        const StepShape shape = step_shape(st);
        ps.prefill = st.prefill;
        ps.mixed = shape.prefill && shape.decode_seqs > 0;
        ps.tokens = uint32_t(st.tokens);
        ps.seqs = uint32_t(st.slices.size());
        ps.context_tokens = st.context_tokens;
        ps.host_s = host_step + host_seq * double(st.slices.size());
        for (const auto& sl : st.slices) {
            if (!sl.sample) continue;  // a prefill chunk short of its prompt's end: no token
            const uint32_t r = sl.request;
            if (out.first_step[r] == UINT32_MAX) out.first_step[r] = uint32_t(i);
            out.last_step[r] = uint32_t(i);
        }
        const double e = op_times(in, shape, ps);
        plan_launches(in, eng, launches, shape, ps);
        if (run.has_engram) {
            ps.engram_gpu_s.assign(run.engram_layers.size(), e);
            if (gpu_hash) ps.gpu_hash_s = gpu_hash_seconds(in, shape);
            if (in.fetch.fetching)
                for (size_t e_i = 0; e_i < run.engram_layers.size(); ++e_i)
                    ps.fetch.push_back(step_fetch(in, shape, i, e_i));
        }
        out.steps.push_back(std::move(ps));
    }
    return out;
}

}  // namespace engramsim::sim
