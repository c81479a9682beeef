// engramsim run CONFIG|PRESET: one serving run on the timing simulator, with its references
// (the same run with the table in HBM, and without Engram); results.json, resolved_config.json
// and optionally a Perfetto timeline in DIR.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "sim/scaleout/cluster_sim.h"
#include "sim/sweep/experiment.h"

namespace engramsim::cli {

namespace {

struct RunOptions {
    std::string config;
    std::string out_dir;
    bool json = false;
    bool timeline = false;
    int kv_band = 0;
};

std::string pct(double x) { return fixed(x, 2) + "%"; }
std::string ms(double s) { return fixed(s * 1e3, 3) + " ms"; }

void print_run(const sim::Compared& c, double wall_s) {
    const auto& p = c.run.plan;
    const auto& m = c.run.metrics;
    std::cout << "engramsim run: " << p.backbone.name << (p.has_engram ? " + " + p.engram.name : "")
              << " on " << p.config["hardware"].value("name", std::string("hardware"))
              << ", workload " << p.config["workload"].value("name", std::string()) << "\n\n";
    TextTable t({"<metric", "value"});
    t.add({"throughput (output tok/s)", fixed(m.throughput_tok_per_s, 2)});
    if (c.table_in_hbm)
        t.add({"  table in HBM (tok/s)", fixed(c.table_in_hbm->throughput_tok_per_s, 2)});
    if (c.no_engram) t.add({"  without Engram (tok/s)", fixed(c.no_engram->throughput_tok_per_s, 2)});
    if (c.table_in_hbm)
        t.add({"overhead vs table in HBM",
               pct(sim::overhead_pct(c.table_in_hbm->throughput_tok_per_s, m.throughput_tok_per_s))});
    if (c.no_engram)
        t.add({"overhead vs no Engram",
               pct(sim::overhead_pct(c.no_engram->throughput_tok_per_s, m.throughput_tok_per_s))});
    if (!c.kv_band_overhead_pct.empty())
        t.add({"  band, KV cache +-" + std::to_string(c.kv_band_blocks) + " blocks",
               pct_band(c.kv_band_overhead_pct)});
    t.add({"makespan", fixed(m.makespan_s, 3) + " s"});
    t.add({"steps (prefill / decode)", thousands(m.steps) + " (" + thousands(m.prefill_steps) +
                                           " / " + thousands(m.steps - m.prefill_steps) + ")"});
    if (m.mixed_steps > 0)
        t.add({"  prefill steps that also decode", thousands(m.mixed_steps)});
    t.add({"TTFT mean / p99", ms(m.ttft_mean_s) + " / " + ms(m.ttft_p99_s)});
    t.add({"TPOT mean / p99", ms(m.tpot_mean_s) + " / " + ms(m.tpot_p99_s)});
    t.add({"GPU compute", fixed(m.compute_s, 4) + " s"});
    t.add({"exposed fetch stall", fixed(m.stall_s, 4) + " s"});
    if (m.host_exposed_s > 0)
        t.add({"exposed engine host work", fixed(m.host_exposed_s, 4) + " s"});
    t.add({"hidden fetch", fixed(m.hidden_fetch_s, 4) + " s"});
    t.add({"unique rows / lookups", thousands(m.unique_rows) + " / " + thousands(m.lookups)});
    t.add({"rows from HBM / DRAM / NVMe", thousands(m.rows_from_hbm) + " / " +
                                              thousands(m.rows_from_host_dram) + " / " +
                                              thousands(m.rows_from_nvme)});
    t.add({"host link h2d utilisation", pct(m.h2d_utilization * 100)});
    if (!p.memory_nodes.empty()) {  // sim.table remote-dram: the network links
        t.add({"memory nodes", std::to_string(p.memory_nodes.size())});
        for (const auto& [name, u] : m.per_link)
            if (name == "nic0.rx" || name == "nic0.tx" ||
                (name.rfind("mem", 0) == 0 && name.find(".up") != std::string::npos))
                t.add({"  " + name + " utilisation", pct(u * 100)});
    }
    if (m.tensor_parallel > 1) {
        t.add({"tensor parallel (GPUs)", std::to_string(m.tensor_parallel)});
        for (const auto& g : m.per_gpu)
            t.add({"  " + g.gpu + " host h2d / NVLink up", pct(g.host_h2d * 100) + " / " +
                                                            pct(g.nvlink_up * 100)});
        for (const auto& [name, u] : m.per_link)
            if (name.rfind("pcie_switch", 0) == 0 && name.find(".h2d") != std::string::npos)
                t.add({"  " + name + " utilisation", pct(u * 100)});
    }
    if (m.data_parallel > 1) {  // replicas on one node, sharing the host and its links
        t.add({"data parallel (replicas)", std::to_string(m.data_parallel) + " (host: " +
                                               std::to_string(p.host_cores) +
                                               " gather slots)"});
        for (const auto& r : m.replicas)
            t.add({"  " + r.gpu + " makespan / steps / stall",
                   fixed(r.makespan_s, 3) + " s / " + thousands(r.steps) + " / " +
                       fixed(r.stall_s, 4) + " s"});
        for (const auto& g : m.per_gpu)
            t.add({"  " + g.gpu + " host h2d utilisation", pct(g.host_h2d * 100)});
        for (const auto& [name, u] : m.per_link)
            if (name.rfind("pcie_switch", 0) == 0 && name.find(".h2d") != std::string::npos)
                t.add({"  " + name + " utilisation", pct(u * 100)});
    }
    t.add({m.data_parallel > 1 ? "KV blocks per GPU / preemptions" : "KV blocks / preemptions",
           thousands(uint64_t(p.num_kv_blocks)) + " / " + thousands(p.preemptions)});
    t.add({"simulator wall time", fixed(wall_s, 3) + " s"});
    t.print(std::cout, "  ");
}

// A config with a cluster section: the whole cluster, and the same cluster with the table in
// HBM (the overhead's reference).
void run_cluster(const RunOptions& opt, const nlohmann::json& cfg) {
    namespace so = sim::scaleout;
    if (opt.kv_band > 0)
        throw std::invalid_argument("--kv-band is for one-node runs; a config with a cluster "
                                    "section takes -o, --json and --timeline");
    const auto t0 = std::chrono::steady_clock::now();
    const so::ClusterRun run = so::run_cluster(cfg);
    const so::ClusterPlan& plan = run.plan;
    const so::ClusterResult& r = run.result;
    const so::ClusterMetrics& m = run.metrics;
    const auto& hbm = run.table_in_hbm;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const nlohmann::json results = so::cluster_results_json(run);
    if (!opt.out_dir.empty()) {
        write_output(opt.out_dir, "results.json",
                     [&](std::ostream& f) { f << results.dump(2) << '\n'; });
        write_output(opt.out_dir, "resolved_config.json",
                     [&](std::ostream& f) { f << cfg.dump(2) << '\n'; });
        if (opt.timeline)
            write_output(opt.out_dir, "timeline.json",
                         [&](std::ostream& f) { so::write_cluster_timeline(plan, r, f); });
    }
    if (opt.json) {
        std::cout << results.dump(2) << '\n';
        return;
    }
    const auto& L = plan.layout;
    std::cout << "engramsim run (cluster): " << plan.backbone.name
              << (plan.has_engram ? " + " + plan.engram.name : "") << " on " << L.nodes << " x "
              << cfg["hardware"].value("name", std::string("hardware")) << " (" << L.world
              << " GPUs), workload " << cfg["workload"].value("name", std::string())
              << " on every attention rank\n\n";
    TextTable t({"<metric", "value"});
    t.add({"layout", "EP " + std::to_string(L.expert_parallel) + ", DP attention " +
                         std::to_string(plan.ranks()) + ", PP " + std::to_string(L.pipeline)});
    t.add({"fabric", L.topology + ", " + std::to_string(L.leaves) + " leaf switch(es) of " +
                         std::to_string(L.leaf_nodes) + " nodes, " + std::to_string(L.spines) +
                         " spine(s)"});
    if (plan.has_engram)
        t.add({"Engram table", results["layout"]["engram_table"].get<std::string>()});
    t.add({"throughput per GPU (output tok/s)", fixed(m.per_gpu_tok_per_s, 2)});
    t.add({"  whole cluster (tok/s)", fixed(m.throughput_tok_per_s, 1)});
    if (hbm) {
        t.add({"  table in HBM, per GPU (tok/s)", fixed(hbm->per_gpu_tok_per_s, 2)});
        t.add({"overhead vs table in HBM", pct(run.overhead_vs_table_in_hbm_pct())});
    }
    t.add({"mean step / decode step", ms(m.mean_step_s) + " / " + ms(m.mean_decode_step_s)});
    t.add({"decode steps alone, per GPU (tok/s)", fixed(m.decode_tok_per_s_per_gpu, 1)});
    t.add({"steps (prefill / decode)", thousands(m.steps) + " (" + thousands(m.prefill_steps) +
                                           " / " + thousands(m.steps - m.prefill_steps) + ")"});
    t.add({"all-to-all share of GPU 0's time", pct(m.a2a_share * 100)});
    if (plan.has_engram) {
        t.add({"Engram stall share of GPU 0's time", pct(m.stall_share * 100)});
        t.add({"GPU 0's fabric bytes: all-to-all / Engram",
               fixed(m.a2a_network_bytes_per_gpu / 1e9, 2) + " / " +
                   fixed(m.engram_network_bytes_per_gpu / 1e9, 3) + " GB (Engram " +
                   pct(m.engram_network_share * 100) + ")"});
        t.add({"table in each node's DRAM", fixed(m.table_bytes_per_node / 1e9, 1) + " GB"});
    }
    t.add({"KV blocks per GPU / preemptions", thousands(uint64_t(plan.num_kv_blocks)) + " / " +
                                                  thousands(plan.preemptions)});
    t.add({"weights per GPU", fixed(plan.weight_bytes_per_gpu / 1e9, 2) + " GB"});
    t.add({"simulated events / their wall time", thousands(r.activities) + " / " +
                                                     fixed(r.wall_s, 2) + " s (" +
                                                     thousands(uint64_t(m.events_per_s)) + " /s)"});
    t.add({"  platform and actors built in", fixed(r.setup_s, 2) + " s"});
    t.add({"command wall time", fixed(wall, 2) + " s"});
    t.print(std::cout, "  ");
}

void run(const RunOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    const nlohmann::json cfg = sim::load_run_config(opt.config);
    if (cfg.contains("cluster")) return run_cluster(opt, cfg);
    sim::Compared c = sim::run_compared(cfg);
    sim::add_kv_band(c, cfg, opt.kv_band);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const nlohmann::json results =
        sim::results_json(c.run.plan, c.run.metrics, {{"comparison", c.comparison_json()}});
    if (!opt.out_dir.empty()) {
        auto write = [&](const std::string& name, const std::function<void(std::ostream&)>& fill) {
            write_output(opt.out_dir, name, fill);
        };
        write("results.json", [&](std::ostream& f) { f << results.dump(2) << '\n'; });
        write("resolved_config.json", [&](std::ostream& f) { f << cfg.dump(2) << '\n'; });
        if (opt.timeline)
            write("timeline.json",
                  [&](std::ostream& f) { sim::write_timeline(c.run.plan, c.run.des, f); });
    }
    if (opt.json)
        std::cout << results.dump(2) << '\n';
    else
        print_run(c, wall);
}

}  // namespace

void add_run_command(CLI::App& app) {
    auto opt = std::make_shared<RunOptions>();
    auto* cmd = app.add_subcommand(
        "run", "Simulate one serving run (SimGrid) with its references: the table in HBM and "
               "no Engram. A config with a cluster section is a multi-node deployment: the "
               "cluster and the same cluster with the table in HBM (docs/scaleout.md).");
    cmd->add_option("config", opt->config,
                    "Run config file (sections backbone, engram, hardware, workload, sim, and "
                    "optionally placement or cluster) or a "
                    "backbone preset (then: paper-offload-100b, h800-pcie5, nano-vllm-512)")
        ->required();
    auto* out = cmd->add_option("-o,--out", opt->out_dir,
                                "Write results.json, resolved_config.json (and timeline.json) "
                                "here");
    cmd->add_flag("--json", opt->json, "Print results.json instead of the table");
    cmd->add_option("--kv-band", opt->kv_band,
                    "Also run the config with its KV cache K blocks smaller to K larger: the "
                    "overhead's band against no Engram (preemption makes it jagged); 0: none")
        ->check(CLI::Range(0, 64));
    cmd->add_flag("--timeline", opt->timeline,
                  "Also write timeline.json into the -o folder (Chrome trace; open in "
                  "ui.perfetto.dev); needs -o DIR")
        ->needs(out);
    cmd->callback([opt] { run(*opt); });
}

}  // namespace engramsim::cli
