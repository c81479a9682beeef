#include "sim/timing/plan.h"

#include <algorithm>
#include <stdexcept>

#include "model/config.h"
#include "model/presets.h"
#include "sim/timing/collectives.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan_stages.h"

namespace engramsim::sim {

using nlohmann::json;
using units::Dim;

json resolve_run_config(const json& doc, const std::string& origin) {
    if (!doc.is_object()) throw config::ConfigError(origin + ": expected an object");
    json d = doc;
    if (!d.contains("backbone"))
        throw config::ConfigError(origin + ": backbone: required section is missing");
    if (!d.contains("hardware")) d["hardware"] = "h800-pcie5";
    if (!d.contains("workload")) d["workload"] = "nano-vllm-512";
    if (!d.contains("sim")) d["sim"] = json::object();
    if (!d.contains("placement")) d["placement"] = json::object();
    return config::resolve(d, origin);
}

json load_run_config(const std::string& name) {
    if (auto doc = presets::document(name)) {
        if (!doc->contains("backbone"))
            throw config::ConfigError("'" + name + "' is not a backbone preset; engramsim run "
                                      "takes a run config file or a backbone preset");
        // The Table 4 layer, with one gate per residual branch of this backbone (mHC).
        const json backbone = config::resolve({{"backbone", name}}, "preset " + name)["backbone"];
        return resolve_run_config(
            {{"backbone", name},
             {"engram", {{"base", "paper-offload-100b"}, {"hc_mult", backbone.value("hc_mult", 1)}}}},
            "preset " + name);
    }
    const auto doc = config::read_document(name);
    if (!doc) {
        std::string msg = "'" + name + "' is neither a backbone preset nor a readable file";
        if (auto near = config::nearest(name, presets::names("backbone")))
            msg += "; did you mean " + *near + "?";
        throw config::ConfigError(msg);
    }
    return resolve_run_config(*doc, name);
}

namespace {

// The stages' outputs, gathered into the plan.
Plan assemble_plan(const Engine& eng, const json& cfg, const RunChoices& run, PlatformStage where,
                   const TablePlacement& table, const KvBudget& kv, const BackboneCosts& costs,
                   const ServedWork& work, PlannedSteps steps) {
    Plan plan;
    plan.engine = &eng;
    plan.overlaps_host = eng.overlaps_host(cfg["sim"]);
    plan.config = cfg;
    plan.backbone = run.backbone;
    plan.has_engram = run.has_engram;
    plan.engram = run.engram;
    plan.engram_layers = run.engram_layers;
    plan.table = run.table;
    plan.mechanism = run.mechanism;
    plan.schedule = run.schedule;
    plan.tensor_parallel = run.tensor_parallel;
    plan.coalesce_collectives = run.coalesce_collectives;
    plan.fifo_fetch_queue = run.fifo_fetch_queue;
    plan.uva_sm_share = count_of(cfg["sim"], "uva_sm_share");
    plan.platform = std::move(where.platform);
    plan.gpu = where.gpu, plan.host = where.host;
    plan.compute_on_host = run.cpu_cores > 0;
    plan.cpu_cores = run.cpu_cores;
    if (plan.compute_on_host)
        plan.fetch_threads = std::clamp(cfg["sim"]["gather_threads"].get<int>(), 1, run.cpu_cores);
    plan.h2d = where.h2d, plan.d2h = where.d2h;
    plan.h2d_route = std::move(where.h2d_route), plan.d2h_route = std::move(where.d2h_route);
    plan.gpus = std::move(where.gpus);
    plan.nvme = std::move(where.nvme);
    plan.memory_nodes = std::move(where.memory_nodes);
    plan.backbone_time_scale = costs.backbone_time_scale;
    plan.table_rows = table.table_rows;
    plan.hbm_cache_rows = table.hbm_cache_rows;
    plan.dram_cache_rows = table.dram_cache_rows;
    plan.weight_bytes = kv.weight_bytes;
    plan.kv_bytes_per_token = kv.kv_bytes_per_token;
    plan.num_kv_blocks = kv.num_kv_blocks;
    plan.preemptions = work.schedule->preemptions;
    const Served& wl = *work.served;
    plan.output_len = wl.output_len;
    for (size_t r = 0; r < wl.prompt_len.size(); ++r) {
        plan.prompt_tokens += wl.prompt_len[r];
        plan.output_tokens += wl.output_len[r];
    }
    plan.steps = std::move(steps.steps);
    plan.first_step = std::move(steps.first_step);
    plan.last_step = std::move(steps.last_step);
    return plan;
}

}  // namespace


// One engine's plan, stage by stage (sim/timing/plan_stages.h). `shard` of `shards`: the requests
// r = shard mod shards of the workload (shards 1: all of them). `platform_gpus` GPUs are built
// (0: sim.tensor_parallel's) and the engine runs on gpu `gpu_index`; with platform_gpus > 0 (a
// data-parallel replica) the plan's gpus are that one GPU.
static Plan make_plan_impl(const json& cfg, int shard, int shards, int platform_gpus,
                           int gpu_index) {
    const Engine& eng = engine(cfg["sim"]["engine"].get<std::string>());
    const RunChoices run = resolve_choices(cfg);
    const json &hw = cfg["hardware"], &simc = cfg["sim"];
    PlatformStage where = build_platform({hw, simc, run, platform_gpus, gpu_index});
    const BackboneCosts costs = backbone_costs({hw, simc, cfg["backbone"], run});
    const TablePlacement table = table_placement({hw, run});
    const double hbm = where.platform.nodes()[size_t(where.gpu)].memory_bytes;
    const KvBudget kv =
        kv_budget({simc, run, costs.tpar, costs.engram_shape, table.hbm_cache_rows, hbm}, eng);
    const ServedWork work = workload_and_lookups({cfg, run, kv.num_kv_blocks, shard, shards}, eng);
    const PlacementRecords records = placement_replay({cfg["workload"], run, table, work});
    const FetchStage fetch = fetch_work({hw, simc, run, where, costs.kernel_floor_s});
    PlannedSteps steps = plan_steps({simc, run, costs, table, work, records, fetch, &eng});
    return assemble_plan(eng, cfg, run, std::move(where), table, kv, costs, work, std::move(steps));
}


std::vector<Instr> step_program(const Plan& plan, const PlannedStep& st) {
    std::vector<Instr> prog;
    auto run = [&](double s, const char* label, int threads = 0,
                   PlannedStep::Launch launch = {}) {
        // Consecutive kernels with no event between them (on as many host cores) form one
        // segment; its launches add up, its first launch is its first part's.
        if (!prog.empty() && prog.back().kind == Instr::Kind::Run &&
            prog.back().label == label && prog.back().threads == threads) {
            Instr& r = prog.back();
            if (r.launch_s <= 0) r.launch_first_s = launch.first;
            r.seconds += s;
            r.launch_s += launch.total;
            return;
        }
        prog.push_back({Instr::Kind::Run, s, -1, label});
        prog.back().threads = threads;
        prog.back().launch_s = launch.total, prog.back().launch_first_s = launch.first;
    };
    // TP > 1: the segments with the collectives between them (the part's launches shared
    // among them by their seconds, the first launch on the first); host-cpu: the runs on one
    // core and on all of them; else one run of `total`.
    auto segments = [&](const std::vector<TpSegment>& segs, double total, const char* label,
                        const char* op, int layer, const std::vector<CoreSegment>& cores,
                        PlannedStep::Launch launch = {}) {
        for (const CoreSegment& c : cores) run(c.seconds, label, c.threads);
        if (!cores.empty()) return;
        if (segs.empty()) return run(total, label, 0, launch);
        for (size_t k = 0; k < segs.size(); ++k) {
            const TpSegment& sg = segs[k];
            const double share = total > 0 ? sg.seconds / total : 1.0 / double(segs.size());
            run(sg.seconds, label, 0, {launch.total * share, k == 0 ? launch.first : 0});
            if (sg.after.kind == Collective::Kind::None) continue;
            Instr c{Instr::Kind::Collective, 0, -1, "collective"};
            c.collective = sg.after;
            c.op = op;
            c.layer = layer;
            c.segment = &sg;
            prog.push_back(c);
        }
    };
    if (st.gpu_hash_s > 0) run(st.gpu_hash_s, "hash");
    for (size_t f = 0; f < st.fetch.size(); ++f)
        if (st.fetch[f].issue_layer == 0) prog.push_back({Instr::Kind::Issue, 0, int(f), ""});
    segments(st.tp_embed, st.embed_s, "layers", "embed", -1, st.cpu_embed, st.launch_embed);
    for (int l = 0; l < plan.backbone.layers; ++l) {
        for (size_t f = 0; f < st.fetch.size(); ++f)
            if (st.fetch[f].issue_layer == l && l > 0)
                prog.push_back({Instr::Kind::Issue, 0, int(f), ""});
        for (size_t e = 0; e < plan.engram_layers.size(); ++e)
            if (plan.engram_layers[e] == l) {
                for (size_t f = 0; f < st.fetch.size(); ++f)
                    if (st.fetch[f].engram_index == int(e)) {
                        if (st.fetch[f].compute_penalty_s > 0)
                            prog.push_back({Instr::Kind::Idle, st.fetch[f].compute_penalty_s,
                                            int(f), "wake penalty"});
                        prog.push_back({Instr::Kind::Wait, 0, int(f), ""});
                    }
                segments(st.tp_engram, st.engram_gpu_s[e], "engram", "engram", l, st.cpu_engram,
                         st.launch_engram);
            }
        segments(st.tp_layer, st.layer_s, "layers", "layer", l, st.cpu_layer, st.launch_layer);
    }
    segments(st.tp_head, st.head_s, "layers", "head", -1, st.cpu_head, st.launch_head);
    return prog;
}

double analytic_step_seconds(const Plan& plan, const PlannedStep& st) {
    StepDag dag;
    // gpu0's routes to and from the host (one link, or two through a PCIe switch).
    const std::vector<int> up = plan.h2d_route.empty() ? std::vector<int>{plan.h2d}
                                                       : plan.h2d_route;
    const std::vector<int> down = plan.d2h_route.empty() ? std::vector<int>{plan.d2h}
                                                         : plan.d2h_route;
    int prev = -1;
    std::vector<int> issue(st.fetch.size(), -1), ready(st.fetch.size(), -1);
    for (Instr in : engine_step_program(plan, st)) {
        if (in.kind == Instr::Kind::Collective) {  // on the GPU stream, idle NVLink
            in.kind = Instr::Kind::Run;
            in.seconds = collective_seconds(plan.platform, plan.gpus, in.collective);
        }
        if (in.kind == Instr::Kind::Idle) in.kind = Instr::Kind::Run;  // the compute's time
        if (in.kind == Instr::Kind::Run) {
            const int v = dag.add(in.label, run_seconds(in));
            if (prev >= 0) dag.depends(v, prev);
            for (size_t f = 0; f < st.fetch.size(); ++f)  // a wait just before this segment
                if (ready[f] >= 0 && issue[f] == -2) dag.depends(v, ready[f]), issue[f] = -3;
            prev = v;
        } else if (in.kind == Instr::Kind::Issue) {
            const FetchWork& w = st.fetch[size_t(in.fetch)].work;
            int last = prev;
            auto chain = [&](const char* name, double s) {
                const int v = dag.add(name, s);
                if (last >= 0) dag.depends(v, last);
                last = v;
            };
            if (w.d2h_wire_bytes > 0)
                chain("d2h", plan.platform.transfer_s(down, w.d2h_wire_bytes));
            if (w.nvme_bytes_per_drive > 0) {  // every drive reads in parallel: the slowest
                double slowest = 0;
                for (int d : plan.nvme) {
                    const auto r = plan.platform.route(d, plan.host);
                    // its bytes over its link, or its I/Os at its rate after the route latency
                    slowest = std::max({slowest, plan.platform.transfer_s(r, w.nvme_bytes_per_drive),
                                        plan.platform.transfer_s(r, 0) + w.nvme_io_s});
                }
                slowest = std::max(slowest, w.nvme_cpu_s);  // the host's CPU, meanwhile
                chain("nvme", slowest);
            }
            chain("host", w.host_s);
            chain("fixed", w.fixed_s);
            if (w.h2d_wire_bytes > 0)
                chain("h2d", plan.platform.transfer_s(up, w.h2d_wire_bytes));
            if (w.net_bytes_per_node > 0) {
                // remote-gather: every memory node alike, each alone on idle links (the shared
                // NIC and host link are the DES's to contend for): the slowest.
                double ids = 0, rows = 0;
                const int src = w.remote_ids_from_gpu ? plan.gpu : plan.host;
                for (int m : plan.memory_nodes) {
                    ids = std::max(ids, plan.platform.transfer_s(plan.platform.route(src, m),
                                                                 w.remote_ids_bytes_per_node));
                    rows = std::max(rows, plan.platform.transfer_s(
                                              plan.platform.route(m, plan.gpu),
                                              w.net_bytes_per_node));
                }
                if (w.remote_ids_bytes_per_node > 0) chain("ids", ids);
                chain("remote_gather", w.remote_gather_s);
                chain("rdma", rows);
            }
            ready[size_t(in.fetch)] = last;
        } else {
            issue[size_t(in.fetch)] = -2;  // the next segment depends on its ready vertex
        }
    }
    return dag.critical_path_s();
}

}  // namespace engramsim::sim

namespace engramsim::sim {

Plan make_shard_plan(const json& cfg, int shard, int shards) {
    if (shards < 1 || shard < 0 || shard >= shards)
        throw std::invalid_argument("make_shard_plan: shard " + std::to_string(shard) + " of " +
                                    std::to_string(shards));
    return make_plan_impl(cfg, shard, shards, 0, 0);
}

namespace {

// sim.data_parallel = dp > 1 against the rest of the config; returns the host's SimGrid cores
// (Plan::host_cores).
int data_parallel_host_cores(const json& cfg, int dp) {
    const std::string d = std::to_string(dp);
    if (dp < 1) throw config::ConfigError("sim.data_parallel: " + d + "; must be >= 1");
    const json& simc = cfg["sim"];
    const json& hw = cfg["hardware"];
    const int gpu_count = hw["gpu"]["count"].get<int>();
    if (dp > gpu_count)
        throw config::ConfigError("sim.data_parallel: " + d + " replicas, one GPU each, but "
                                  "hardware.gpu.count is " + std::to_string(gpu_count) +
                                  "; must be <= hardware.gpu.count");
    if (const int tp = simc.value("tensor_parallel", 1); tp > 1)
        throw config::ConfigError("sim.data_parallel: " + d + " replicas with "
                                  "sim.tensor_parallel " + std::to_string(tp) + "; data "
                                  "parallelism is modeled for one-GPU replicas only (set "
                                  "sim.tensor_parallel 1 or sim.data_parallel 1)");
    if (simc.value("table", std::string()) == "remote-dram")
        throw config::ConfigError("sim.data_parallel: " + d + " replicas with sim.table "
                                  "remote-dram; remote memory is modeled for one GPU only (set "
                                  "sim.data_parallel 1)");
    const json& host = hw["host"];
    if (!host.contains("cores_per_socket") || !host["cores_per_socket"].is_number_integer())
        throw config::ConfigError("hardware.host.cores_per_socket: needed for sim.data_parallel "
                                  "> 1 (the replicas' gathers share the host's cores)");
    const int64_t cores =
        int64_t(host.value("sockets", 1)) * host["cores_per_socket"].get<int64_t>();
    const int64_t threads = simc.value("gather_threads", 16);
    return int(std::max<int64_t>(1, cores / std::max<int64_t>(1, threads)));
}

}  // namespace

Plan make_plan(const json& cfg) {
    const int dp = cfg.contains("sim") ? cfg["sim"].value("data_parallel", 1) : 1;
    if (dp == 1) return make_plan_impl(cfg, 0, 1, 0, 0);
    const int host_cores = data_parallel_host_cores(cfg, dp);
    std::vector<Plan> replicas;
    for (int k = 0; k < dp; ++k) replicas.push_back(make_plan_impl(cfg, k, dp, dp, k));
    // The node's plan: the shared platform, the sums over the replicas, no steps of its own.
    Plan top = replicas.front();
    top.steps.clear();
    top.output_len.clear(), top.first_step.clear(), top.last_step.clear();
    top.prompt_tokens = top.output_tokens = top.preemptions = 0;
    for (const Plan& r : replicas) {
        top.prompt_tokens += r.prompt_tokens;
        top.output_tokens += r.output_tokens;
        top.preemptions += r.preemptions;
    }
    top.gpu = top.platform.node("gpu0");
    top.gpus = top.platform.gpus();
    top.h2d_route = top.platform.route(top.host, top.gpu);
    top.d2h_route = top.platform.route(top.gpu, top.host);
    top.h2d = top.h2d_route.back();
    top.d2h = top.d2h_route.front();
    top.data_parallel = dp;
    top.host_cores = host_cores;
    top.replicas = std::move(replicas);
    return top;
}

}  // namespace engramsim::sim
