// The plan's stages up to the KV cache: resolve_choices, build_platform, backbone_costs,
// table_placement, kv_budget (sim/timing/plan_stages.h). The workload stages are in
// sim/timing/plan_workload.cpp, fetch_work and plan_steps in sim/timing/plan_steps.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "model/config.h"
#include "model/kernel_profiles.h"
#include "sim/placement/cache_policy.h"
#include "sim/placement/replay.h"
#include "sim/timing/plan_stages.h"

namespace engramsim::sim {

using nlohmann::json;
using units::Dim;

double count_of(const json& sec, const std::string& key) {
    return config::quantity(sec, key, Dim::Count);
}

namespace {

// The Engram section against the backbone: one gate per residual branch, layers that exist.
void engram_choices(const json& cfg, RunChoices& run) {
    const BackboneShape& bb = run.backbone;
    run.engram = EngramConfig::from_json(cfg["engram"]);
    if (run.engram.hc_mult != bb.hc_mult)
        throw config::ConfigError(
            "engram.hc_mult: " + std::to_string(run.engram.hc_mult) +
            " gates, but backbone.hc_mult is " + std::to_string(bb.hc_mult) +
            ": the Engram module gates each residual branch of the backbone; set "
            "engram.hc_mult to " +
            std::to_string(bb.hc_mult));
    for (int l : run.engram.layer_ids) {
        if (l >= bb.layers)
            throw config::ConfigError("engram.layer_ids: layer " + std::to_string(l) +
                                      " is beyond the backbone's " + std::to_string(bb.layers) +
                                      " layers");
        run.engram_layers.push_back(l);
    }
}

// Where the table lives and how it is fetched: the pairs that go together.
void table_choices(const json& simc, RunChoices& run) {
    run.table = simc["table"].get<std::string>();
    run.mechanism = simc["mechanism"].get<std::string>();
    if ((run.table == "nvme" && run.mechanism != "nvme") ||
        (run.table == "host-dram" && run.mechanism == "nvme"))
        throw config::ConfigError("sim.mechanism: '" + run.mechanism + "' with table '" +
                                  run.table +
                                  "'; the nvme mechanism reads a table on NVMe, "
                                  "and a table on NVMe needs mechanism nvme");
    if (run.remote() != (run.mechanism == "remote-gather") && run.table != "hbm")
        throw config::ConfigError("sim.mechanism: '" + run.mechanism + "' with table '" +
                                  run.table +
                                  "'; a table on remote memory servers (sim.table "
                                  "remote-dram) needs mechanism remote-gather, and remote-gather "
                                  "reads only such a table");
    run.memory_nodes = simc.value("memory_nodes", 1);
    if (run.memory_nodes < 1)
        throw config::ConfigError("sim.memory_nodes: " + std::to_string(run.memory_nodes) +
                                  "; must be >= 1");
}

}  // namespace

RunChoices resolve_choices(const json& cfg) {
    for (const char* s : {"backbone", "hardware", "workload", "sim"})
        if (!cfg.contains(s))
            throw config::ConfigError(std::string("run config: ") + s +
                                      ": required section is missing");
    const json& simc = cfg["sim"];
    RunChoices run;
    run.backbone = BackboneShape::from_json(cfg["backbone"]);
    run.has_engram = cfg.contains("engram");
    if (run.has_engram) engram_choices(cfg, run);
    table_choices(simc, run);
    try {
        run.schedule = PrefetchSchedule::parse(simc["schedule"].get<std::string>());
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(std::string("sim.schedule: ") + e.what());
    }
    if (run.schedule.kind == PrefetchSchedule::Kind::LayerAhead &&
        run.schedule.layer >= run.backbone.layers)
        throw config::ConfigError("sim.schedule: layer-ahead:" +
                                  std::to_string(run.schedule.layer) + " issues at a layer the "
                                  "backbone does not have (layers 0.." +
                                  std::to_string(run.backbone.layers - 1) + ")");
    run.tensor_parallel = simc.value("tensor_parallel", 1);
    run.coalesce_collectives = simc.value("collective_comms", "coalesced") == "coalesced";
    run.fifo_fetch_queue = simc.value("fetch_queue", "shared") == "fifo";
    if (cfg["hardware"]["gpu"].value("kind", std::string("gpu")) == "host-cpu") {
        const json& host = cfg["hardware"]["host"];
        if (!host.contains("cores_per_socket") || !host["cores_per_socket"].is_number_integer())
            throw config::ConfigError("hardware.host.cores_per_socket: needed with "
                                      "hardware.gpu.kind host-cpu (the compute and the fetches "
                                      "share the host's cores)");
        run.cpu_cores = int(std::max<int64_t>(
            1, int64_t(host.value("sockets", 1)) * host["cores_per_socket"].get<int64_t>()));
        if (run.tensor_parallel > 1 || simc.value("data_parallel", 1) > 1)
            throw config::ConfigError(
                std::string(run.tensor_parallel > 1 ? "sim.tensor_parallel" : "sim.data_parallel") +
                ": hardware.gpu.kind host-cpu is one engine computing on one host's cores; set "
                "sim.tensor_parallel 1 and sim.data_parallel 1");
    }
    if (run.remote() && run.tensor_parallel > 1)
        throw config::ConfigError("sim.tensor_parallel: " + std::to_string(run.tensor_parallel) +
                                  " GPUs with sim.table remote-dram; remote memory is modeled "
                                  "for one GPU only (sim.tensor_parallel 1)");
    run.placement = cfg.contains("placement") ? cfg["placement"]
                                              : config::resolve({{"placement", json::object()}},
                                                                "placement defaults")["placement"];
    return run;
}

PlatformStage build_platform(const PlatformInput& in) {
    const json& simc = in.sim;
    PlatformStage w;
    w.platform =
        Platform::from_hardware(in.hardware,
                                PcieModel{config::quantity(simc, "pcie_tlp_overhead", Dim::Bytes),
                                          config::quantity(simc, "pcie_max_payload", Dim::Bytes),
                                          count_of(simc, "pcie_dllp_overhead")},
                                in.platform_gpus > 0 ? in.platform_gpus : in.run.tensor_parallel,
                                in.run.remote() ? in.run.memory_nodes : 0);
    w.gpu = w.platform.node("gpu" + std::to_string(in.gpu_index));
    w.host = w.platform.node("host");
    w.gpus = in.platform_gpus > 0 ? std::vector<int>{w.gpu} : w.platform.gpus();
    const auto up = w.platform.route(w.host, w.gpu);
    const auto down = w.platform.route(w.gpu, w.host);
    if (up.empty() || down.empty() || up.size() > 2 || down.size() > 2)
        throw std::logic_error("platform: the host link must be one hop, or two via a switch");
    w.h2d = up.back();  // the GPU's own link (behind a PCIe switch: its leg)
    w.d2h = down.front();
    w.h2d_route = up;
    w.d2h_route = down;
    for (size_t i = 0; i < w.platform.nodes().size(); ++i)
        if (w.platform.nodes()[i].kind == NodeKind::Nvme) w.nvme.push_back(int(i));
    w.memory_nodes = w.platform.memory_nodes();
    return w;
}

BackboneCosts backbone_costs(const BackboneCostInput& in) {
    const json& simc = in.sim;
    const json& gpu = in.hardware["gpu"];
    const bool fp8 = in.backbone["dtype"] == "fp8_e4m3";
    const GpuPeaks peaks{
        config::quantity(gpu, fp8 ? "fp8_dense_flops" : "bf16_dense_flops", Dim::FlopRate),
        config::quantity(gpu, "hbm_bandwidth", Dim::Bandwidth)};
    OpEfficiency eff{count_of(simc, "gemm_efficiency"), count_of(simc, "attention_efficiency"),
                     count_of(simc, "memory_efficiency"),
                     config::quantity(simc, "kernel_floor", Dim::Time)};
    for (const char* k : {"gemm_efficiency", "attention_efficiency", "memory_efficiency",
                          "pcie_dllp_overhead", "gpu_memory_utilization"}) {
        const double v = count_of(simc, k);
        if (!(v > 0 && v <= 1) && !(std::string(k) == "pcie_dllp_overhead" && v == 0))
            throw config::ConfigError(std::string("sim.") + k + ": must be in (0, 1]");
    }
    // Measured profiles, where given, win over the roofline for the kernels they cover.
    CostModel::ProfileHook measured;
    if (const std::string dir = simc["profiles"].get<std::string>(); !dir.empty()) {
        std::shared_ptr<const KernelProfiles> profiles;
        try {
            profiles = std::make_shared<const KernelProfiles>(KernelProfiles::load_dir(dir));
        } catch (const std::exception& e) {
            throw config::ConfigError(std::string("sim.profiles: ") + e.what());
        }
        measured = [profiles](const OpShape& op) { return profiles->seconds(op); };
    }
    const double scale = count_of(simc, "backbone_time_scale");
    if (!(scale > 0)) throw config::ConfigError("sim.backbone_time_scale: must be > 0");
    const EngramGpuShape eshape =
        in.run.has_engram ? EngramGpuShape::from_config(in.run.engram) : EngramGpuShape{};
    BackboneCosts c{CostModel(peaks, eff, measured),
                    eff.kernel_floor_s,
                    scale,
                    simc["scale_engram_ops"].get<bool>() ? scale : 1,
                    eshape,
                    TensorParallel{in.run.tensor_parallel, in.run.backbone, eshape}};
    c.tpar.validate(in.run.has_engram);
    return c;
}

namespace {

// What host DRAM and the drives must hold: the whole table (host-dram), the rows DRAM caches in
// front of the drives and the table on the drives (nvme); each memory server's share
// (remote-dram).
void check_table_fits(const json& hw, const RunChoices& run, const TablePlacement& t) {
    const double row_b = run.engram.row_bytes();
    const double table_b = double(t.table_rows) * row_b;
    const double dram = config::quantity(hw["host"], "dram_capacity", Dim::Bytes);
    char msg[400];
    if (run.remote()) {  // each memory node holds 1/M of the table in its DRAM
        const double per_node = table_b / run.memory_nodes;
        if (per_node > dram) {
            std::snprintf(msg, sizeof msg,
                          "sim.memory_nodes: %d memory node(s) hold %.1f GB of the table each, "
                          "more than hardware.host.dram_capacity (%.1f GB); use more memory nodes",
                          run.memory_nodes, per_node / 1e9, dram / 1e9);
            throw config::ConfigError(msg);
        }
        return;
    }
    const double held = double(t.dram_cache_rows) * row_b;
    if (held > dram && run.table != "nvme") {
        std::snprintf(msg, sizeof msg,
                      "sim.table %s: the table is %.1f GB (%llu rows of %.0f B), more than "
                      "hardware.host.dram_capacity (%.1f GB); put it on NVMe (sim.table "
                      "nvme, sim.mechanism nvme, placement.dram_capacity a cache) or in "
                      "remote memory (sim.table remote-dram)",
                      run.table.c_str(), table_b / 1e9, (unsigned long long)t.table_rows, row_b,
                      dram / 1e9);
        throw config::ConfigError(msg);
    }
    if (held > dram) {
        std::snprintf(msg, sizeof msg,
                      "placement.dram_capacity: %.1f GB of rows cached in host DRAM, more "
                      "than hardware.host.dram_capacity (%.1f GB)",
                      held / 1e9, dram / 1e9);
        throw config::ConfigError(msg);
    }
    if (run.table != "nvme") return;
    const double drives = hw.contains("nvme") ? double(hw["nvme"]["count"].get<int>()) : 0;
    const double each = drives > 0 ? config::quantity(hw["nvme"], "capacity", Dim::Bytes) : 0;
    if (table_b > drives * each) {
        std::snprintf(msg, sizeof msg,
                      "sim.table nvme: the table is %.1f GB, more than the drives hold "
                      "(hardware.nvme.count %.0f x hardware.nvme.capacity %.1f GB)",
                      table_b / 1e9, drives, each / 1e9);
        throw config::ConfigError(msg);
    }
}

}  // namespace

TablePlacement table_placement(const TablePlacementInput& in) {
    const RunChoices& run = in.run;
    TablePlacement t;
    if (!run.has_engram || run.table == "hbm") return t;
    const json& placec = run.placement;
    t.table_rows = lookup_layout(run.engram).total_rows;
    auto rows = [&](const std::string& key) {
        try {
            return placement::parse_capacity_rows(placec[key].get<std::string>(),
                                                  run.engram.row_bytes(), t.table_rows);
        } catch (const std::invalid_argument& e) {
            throw config::ConfigError("placement." + key + ": " + e.what());
        }
    };
    t.hbm_cache_rows = rows("hbm_capacity");
    t.dram_cache_rows = std::min(rows("dram_capacity"), t.table_rows);
    if (run.table != "nvme" && t.dram_cache_rows < t.table_rows)
        throw config::ConfigError("placement.dram_capacity: " + std::to_string(t.dram_cache_rows) +
                                  " of the "
                                  "table's " +
                                  std::to_string(t.table_rows) + " rows, but sim.table is " +
                                  run.table +
                                  " (the whole table in DRAM); a DRAM cache sits in front of NVMe: "
                                  "sim.table nvme with sim.mechanism nvme");
    check_table_fits(in.hardware, run, t);
    for (const char* key : {"policy", "dram_policy"}) {
        try {
            placement::policy_info(placec[key].get<std::string>());
        } catch (const std::invalid_argument& e) {
            throw config::ConfigError(std::string("placement.") + key + ": " + e.what());
        }
    }
    const double f = count_of(placec, "profile_fraction");
    if (!(f > 0 && f <= 1))
        throw config::ConfigError("placement.profile_fraction: must be in (0, 1]");
    return t;
}

namespace {

// No HBM left for the KV cache: every size and the key that sets it.
[[noreturn]] void throw_no_kv_room(const KvBudgetInput& in, const KvBudget& kv, double avail) {
    auto gb = [](double b) {
        char t[32];
        std::snprintf(t, sizeof t, "%.4g GB", b / 1e9);
        return std::string(t);
    };
    const json& simc = in.sim;
    const double util = count_of(simc, "gpu_memory_utilization");
    const double cache_b =
        double(in.hbm_cache_rows) * in.run.engram.row_bytes() / double(in.run.tensor_parallel);
    std::string weights = "backbone " + gb(in.tpar.weight_bytes_per_gpu());
    if (kv.engram_weight_bytes - cache_b > 0)
        weights += ", Engram projections " + gb(kv.engram_weight_bytes - cache_b);
    if (cache_b > 0) weights += ", HBM cache of placement.hbm_capacity " + gb(cache_b);
    const int block = simc["kv_block_size"].get<int>();
    throw config::ConfigError(
        "the model does not fit: no HBM left for the KV cache. Per GPU: "
        "hardware.gpu.hbm_capacity " +
        gb(in.hbm_bytes) + " x sim.gpu_memory_utilization " + std::to_string(util).substr(0, 4) +
        " = " + gb(in.hbm_bytes * util) + ", minus weights " + gb(kv.weight_bytes) + " (" +
        weights + "), minus the activation peak " + gb(kv.activation_peak) +
        " (sim.max_num_batched_tokens " +
        std::to_string(simc["max_num_batched_tokens"].get<int>()) + ", sim.max_num_seqs " +
        std::to_string(simc["max_num_seqs"].get<int>()) + ") leaves " + gb(avail) +
        "; one KV block (sim.kv_block_size " + std::to_string(block) + " tokens) needs " +
        gb(double(block) * kv.kv_bytes_per_token));
}

}  // namespace

double engram_projection_bytes(const RunChoices& run, const EngramGpuShape& e) {
    return double(run.engram_layers.size()) * e.d_mem * run.backbone.hidden * (e.hc_mult + 1) *
           run.backbone.bytes_per_value;
}

double engram_staging_bytes(const EngramGpuShape& e, int max_num_batched_tokens, double tp) {
    return double(max_num_batched_tokens) * e.heads * e.row_bytes / tp;
}

KvBudget kv_budget(const KvBudgetInput& in, const Engine& engine) {
    const json& simc = in.sim;
    const RunChoices& run = in.run;
    const BackboneShape& bb = run.backbone;
    const EngramGpuShape& eshape = in.engram_shape;
    const double tpd = run.tensor_parallel;
    const int max_batched = simc["max_num_batched_tokens"].get<int>();
    KvBudget kv;
    double engram_staging = 0;
    if (run.has_engram) {
        kv.engram_weight_bytes = engram_projection_bytes(run, eshape);
        // The device buffer receiving a step's unique rows, live through the warm-up.
        engram_staging = engram_staging_bytes(eshape, max_batched, tpd);
        kv.engram_activation_bytes_per_token = engram_activation_bytes_per_token(eshape, bb);
    }
    // The warm-up prefill's live tensors per token: the backbone's largest, or the Engram
    // module's while it runs (its fp32 norm temporaries over M streams), whichever is larger.
    kv.backbone_activation_bytes_per_token =
        bb.activation_values_per_token(tpd) * bb.bytes_per_value;
    const double live_per_token = std::max(kv.backbone_activation_bytes_per_token,
                                           kv.engram_activation_bytes_per_token);
    // placement.hbm_capacity is the TP group's: each GPU caches rows of its own Engram heads,
    // so each holds 1/TP of them (one replay over the whole group decides the hits).
    if (in.hbm_cache_rows > 0)
        kv.engram_weight_bytes += double(in.hbm_cache_rows) * run.engram.row_bytes() / tpd;
    kv.weight_bytes = in.tpar.weight_bytes_per_gpu() + kv.engram_weight_bytes;
    kv.kv_bytes_per_token = in.tpar.kv_bytes_per_token_per_gpu();
    // Under TP the column-parallel outputs are 1/TP wide; GPU 0 holds the gathered logits.
    kv.activation_peak =
        engine.activation_peak({simc["max_num_seqs"].get<int>(), max_batched,
                                live_per_token / bb.bytes_per_value,  // MLA / MoE / mHC aware
                                bb.bytes_per_value, double(bb.vocab), engram_staging});
    const KvSizingInput sizing{in.hbm_bytes,
                               count_of(simc, "gpu_memory_utilization"),
                               kv.weight_bytes,
                               kv.activation_peak,
                               kv.kv_bytes_per_token,
                               simc["kv_block_size"].get<int>(),
                               simc["num_kv_blocks"].get<int64_t>()};
    kv.num_kv_blocks = engine.kv_blocks(sizing);
    if (sizing.num_kv_blocks_override < 0 && kv.num_kv_blocks < 1)
        throw_no_kv_room(
            in, kv,
            in.hbm_bytes * sizing.gpu_memory_utilization - kv.weight_bytes - kv.activation_peak);
    return kv;
}

}  // namespace engramsim::sim
