#include "sim/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "model/config.h"
#include "model/kernel_profiles.h"
#include "model/presets.h"
#include "sim/collectives.h"
#include "sim/lookup_counts.h"
#include "sim/placement/dense_trace.h"
#include "sim/placement/replay.h"
#include "traces/lookups.h"
#include "traces/schedule.h"
#include "traces/splitmix64.h"
#include "traces/synthetic.h"
#include "traces/workload.h"

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

// What a plan serves: the requests' lengths, with their tokens unless the workload is synthetic
// (its lookups are streamed by the fitted generator, from lengths alone).
struct Served {
    std::shared_ptr<const Workload> text;  // null for a synthetic workload
    std::vector<uint32_t> prompt_len, output_len;
    std::shared_ptr<const SyntheticModel> synthetic;
    uint64_t synthetic_seed = 0;

    std::unique_ptr<LookupSource> lookups(const EngramConfig& engram,
                                          const SchedulerConfig& sc) const {
        if (text) return hashed_lookups(engram, *text, sc);
        return synthetic_lookups(*synthetic, engram, prompt_len, output_len, sc, synthetic_seed);
    }
};

std::shared_ptr<Served> served_of(const json& workload) {
    auto s = std::make_shared<Served>();
    if (workload.at("kind") == "synthetic") {
        workload_lengths(workload, s->prompt_len, s->output_len);
        s->synthetic = std::make_shared<const SyntheticModel>(
            load_synthetic_model(workload.at("synthetic_model").get<std::string>()));
        s->synthetic_seed = workload.at("seed").get<uint64_t>();
        return s;
    }
    auto text = std::make_shared<Workload>(make_workload(workload));
    request_lengths(*text, s->prompt_len, s->output_len);
    s->text = std::move(text);
    return s;
}

// Requests r = shard mod shards of `all`, in order. A synthetic replica streams with its own
// seed: replicas serve different users of the same text.
std::shared_ptr<Served> shard_of(const Served& all, int shard, int shards) {
    auto s = std::make_shared<Served>();
    std::shared_ptr<Workload> text;
    if (all.text) {
        text = std::make_shared<Workload>();
        text->description = all.text->description;
        text->seed = all.text->seed;
    }
    for (size_t r = size_t(shard); r < all.prompt_len.size(); r += size_t(shards)) {
        s->prompt_len.push_back(all.prompt_len[r]);
        s->output_len.push_back(all.output_len[r]);
        if (text) text->requests.push_back(all.text->requests[r]);
    }
    s->text = std::move(text);
    s->synthetic = all.synthetic;
    s->synthetic_seed = splitmix64(all.synthetic_seed ^ (0x9e3779b97f4a7c15ull * uint64_t(shard)));
    return s;
}

// Per-process caches keyed by the JSON of what decides them.
std::mutex cache_mutex;
std::map<std::string, std::shared_ptr<Served>> workload_cache;
std::map<std::string, std::shared_ptr<std::pair<std::vector<Step>, uint64_t>>> schedule_cache;
std::map<std::string, std::shared_ptr<LookupCounts>> lookup_cache;
std::map<std::string, std::shared_ptr<std::vector<placement::StepRecord>>> replay_cache;

double count_of(const json& sec, const std::string& key) {
    return config::quantity(sec, key, Dim::Count);
}

}  // namespace

namespace {

// Placement replay after a warm-up: `warm_requests` requests of the run's workload drawn with
// `warm_seed` go through the caches first (one replay over the warm-up's steps then the run's),
// and only the run's step records are kept, renumbered from 0. The static policy then ranks rows
// by the warm-up's requests instead of the run's own (no oracle).
std::vector<placement::StepRecord> warm_replay(const EngramConfig& engram, const json& workload,
                                               uint64_t warm_requests, uint64_t warm_seed,
                                               const SchedulerConfig& sc,
                                               std::unique_ptr<LookupSource> run,
                                               placement::TierConfig tiers) {
    if (warm_seed == workload.at("seed").get<uint64_t>())
        throw config::ConfigError("placement.warmup_seed: " + std::to_string(warm_seed) +
                                  " is workload.seed: the warm-up would be the run itself");
    json warm = workload;
    warm["num_requests"] = warm_requests;
    warm["seed"] = warm_seed;
    std::unique_ptr<LookupSource> warm_source;
    try {
        warm_source = make_lookups(engram, warm, sc);
    } catch (const std::exception& e) {
        throw config::ConfigError(std::string("placement.warmup_requests: the warm-up workload: ") +
                                  e.what());
    }
    ChainedLookups chain(std::move(warm_source), std::move(run));
    const placement::DenseTrace trace = placement::densify(chain);
    const uint64_t warm_steps = chain.first_steps();
    if (tiers.policy == "static") {
        auto ranks_from = make_lookups(engram, warm, sc);
        tiers.profile_ranks = placement::profile_ranks_for(trace, *ranks_from);
    }
    std::vector<placement::StepRecord> steps = placement::replay(trace, tiers).steps;
    const auto first_run = std::find_if(steps.begin(), steps.end(), [&](const auto& r) {
        return r.step >= warm_steps;
    });
    steps.erase(steps.begin(), first_run);
    for (auto& r : steps) r.step -= warm_steps;
    return steps;
}

}  // namespace

// One engine's plan. `shard` of `shards`: the requests r = shard mod shards of the workload
// (shards 1: all of them). `platform_gpus` GPUs are built (0: sim.tensor_parallel's) and the
// engine runs on gpu `gpu_index`; with platform_gpus > 0 (a data-parallel replica) the plan's
// gpus are that one GPU.
static Plan make_plan_impl(const json& cfg, int shard, int shards, int platform_gpus, int gpu_index) {
    for (const char* s : {"backbone", "hardware", "workload", "sim"})
        if (!cfg.contains(s)) throw config::ConfigError(std::string("run config: ") + s +
                                                        ": required section is missing");
    Plan plan;
    plan.config = cfg;
    const json& simc = cfg["sim"];
    const json& hw = cfg["hardware"];
    plan.backbone = BackboneShape::from_json(cfg["backbone"]);
    const BackboneShape& bb = plan.backbone;
    plan.has_engram = cfg.contains("engram");
    if (plan.has_engram) {
        plan.engram = EngramConfig::from_json(cfg["engram"]);
        if (plan.engram.hc_mult != bb.hc_mult)
            throw config::ConfigError(
                "engram.hc_mult: " + std::to_string(plan.engram.hc_mult) +
                " gates, but backbone.hc_mult is " + std::to_string(bb.hc_mult) +
                ": the Engram module gates each residual branch of the backbone; set "
                "engram.hc_mult to " + std::to_string(bb.hc_mult));
        for (int l : plan.engram.layer_ids) {
            if (l >= bb.layers)
                throw config::ConfigError("engram.layer_ids: layer " + std::to_string(l) +
                                          " is beyond the backbone's " +
                                          std::to_string(bb.layers) + " layers");
            plan.engram_layers.push_back(l);
        }
    }
    plan.table = simc["table"].get<std::string>();
    plan.mechanism = simc["mechanism"].get<std::string>();
    if ((plan.table == "nvme" && plan.mechanism != "nvme") ||
        (plan.table == "host-dram" && plan.mechanism == "nvme"))
        throw config::ConfigError("sim.mechanism: '" + plan.mechanism + "' with table '" +
                                  plan.table + "'; the nvme mechanism reads a table on NVMe, "
                                  "and a table on NVMe needs mechanism nvme");
    if ((plan.table == "remote-dram") != (plan.mechanism == "remote-gather") &&
        plan.table != "hbm")
        throw config::ConfigError("sim.mechanism: '" + plan.mechanism + "' with table '" +
                                  plan.table + "'; a table on remote memory servers (sim.table "
                                  "remote-dram) needs mechanism remote-gather, and remote-gather "
                                  "reads only such a table");
    const bool remote = plan.table == "remote-dram";
    const int memory_nodes = simc.value("memory_nodes", 1);
    if (memory_nodes < 1)
        throw config::ConfigError("sim.memory_nodes: " + std::to_string(memory_nodes) +
                                  "; must be >= 1");
    try {
        plan.schedule = PrefetchSchedule::parse(simc["schedule"].get<std::string>());
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(std::string("sim.schedule: ") + e.what());
    }
    plan.tensor_parallel = simc.value("tensor_parallel", 1);
    plan.coalesce_collectives = simc.value("collective_comms", "coalesced") == "coalesced";
    plan.fifo_fetch_queue = simc.value("fetch_queue", "shared") == "fifo";
    const int tp = plan.tensor_parallel;
    if (remote && tp > 1)
        throw config::ConfigError("sim.tensor_parallel: " + std::to_string(tp) +
                                  " GPUs with sim.table remote-dram; remote memory is modeled "
                                  "for one GPU only (sim.tensor_parallel 1)");
    plan.platform = Platform::from_hardware(
        hw, PcieModel{config::quantity(simc, "pcie_tlp_overhead", Dim::Bytes),
                      config::quantity(simc, "pcie_max_payload", Dim::Bytes),
                      count_of(simc, "pcie_dllp_overhead")},
        platform_gpus > 0 ? platform_gpus : tp, remote ? memory_nodes : 0);
    plan.gpu = plan.platform.node("gpu" + std::to_string(gpu_index));
    plan.host = plan.platform.node("host");
    plan.gpus = platform_gpus > 0 ? std::vector<int>{plan.gpu} : plan.platform.gpus();
    const auto up = plan.platform.route(plan.host, plan.gpu);
    const auto down = plan.platform.route(plan.gpu, plan.host);
    if (up.empty() || down.empty() || up.size() > 2 || down.size() > 2)
        throw std::logic_error("platform: the host link must be one hop, or two via a switch");
    plan.h2d = up.back();  // the GPU's own link (behind a PCIe switch: its leg)
    plan.d2h = down.front();
    plan.h2d_route = up;
    plan.d2h_route = down;
    for (size_t i = 0; i < plan.platform.nodes().size(); ++i)
        if (plan.platform.nodes()[i].kind == NodeKind::Nvme) plan.nvme.push_back(int(i));
    plan.memory_nodes = plan.platform.memory_nodes();
    const LinkDesc& link = plan.platform.links()[size_t(plan.h2d)];

    // Cost model.
    const bool fp8 = cfg["backbone"]["dtype"] == "fp8_e4m3";
    const GpuPeaks peaks{config::quantity(hw["gpu"], fp8 ? "fp8_dense_flops" : "bf16_dense_flops",
                                          Dim::FlopRate),
                         config::quantity(hw["gpu"], "hbm_bandwidth", Dim::Bandwidth)};
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
    const CostModel cost(peaks, eff, measured);
    plan.backbone_time_scale = count_of(simc, "backbone_time_scale");
    if (!(plan.backbone_time_scale > 0))
        throw config::ConfigError("sim.backbone_time_scale: must be > 0");
    const double engram_scale = simc["scale_engram_ops"].get<bool>() ? plan.backbone_time_scale : 1;

    // KV cache as nano-vLLM sizes it (per GPU under tensor parallelism).
    const EngramGpuShape eshape = plan.has_engram ? EngramGpuShape::from_config(plan.engram)
                                                  : EngramGpuShape{};
    const TensorParallel tpar{tp, bb, eshape};
    tpar.validate(plan.has_engram);
    const double tpd = tp;
    const int max_seqs = simc["max_num_seqs"].get<int>();
    const int max_batched = simc["max_num_batched_tokens"].get<int>();
    const int block = simc["kv_block_size"].get<int>();
    double engram_weights = 0, engram_staging = 0;
    if (plan.has_engram) {
        engram_weights = double(plan.engram_layers.size()) * eshape.d_mem * bb.hidden *
                         (eshape.hc_mult + 1) * bb.bytes_per_value;
        // The device buffer receiving a step's unique rows (at most every lookup of a full
        // prefill); the expanded per-token rows and projections are transient and smaller than
        // the MLP's live tensors, so they do not raise the peak.
        engram_staging = double(max_batched) * eshape.heads * eshape.row_bytes / tpd;
    }
    // Placement: the HBM cache and, for a table on NVMe, the rows host DRAM holds.
    const json placec = cfg.contains("placement")
                            ? cfg["placement"]
                            : config::resolve({{"placement", json::object()}},
                                              "placement defaults")["placement"];
    if (plan.has_engram && plan.table != "hbm") {
        plan.table_rows = lookup_layout(plan.engram).total_rows;
        auto rows = [&](const std::string& key) {
            try {
                return placement::parse_capacity_rows(placec[key].get<std::string>(),
                                                      plan.engram.row_bytes(), plan.table_rows);
            } catch (const std::invalid_argument& e) {
                throw config::ConfigError("placement." + key + ": " + e.what());
            }
        };
        plan.hbm_cache_rows = rows("hbm_capacity");
        plan.dram_cache_rows = std::min(rows("dram_capacity"), plan.table_rows);
        if (plan.table != "nvme" && plan.dram_cache_rows < plan.table_rows)
            throw config::ConfigError(
                "placement.dram_capacity: " + std::to_string(plan.dram_cache_rows) + " of the "
                "table's " + std::to_string(plan.table_rows) + " rows, but sim.table is " +
                plan.table + " (the whole table in DRAM); a DRAM cache sits in front of NVMe: "
                "sim.table nvme with sim.mechanism nvme");
        // What host DRAM and the drives must hold: the whole table (host-dram), the rows DRAM
        // caches in front of the drives and the table on the drives (nvme).
        const double row_b = plan.engram.row_bytes();
        const double table_b = double(plan.table_rows) * row_b;
        if (!remote) {
            const double dram = config::quantity(hw["host"], "dram_capacity", Dim::Bytes);
            const double held = double(plan.dram_cache_rows) * row_b;
            char msg[400];
            if (held > dram && plan.table != "nvme") {
                std::snprintf(msg, sizeof msg,
                              "sim.table %s: the table is %.1f GB (%llu rows of %.0f B), more than "
                              "hardware.host.dram_capacity (%.1f GB); put it on NVMe (sim.table "
                              "nvme, sim.mechanism nvme, placement.dram_capacity a cache) or in "
                              "remote memory (sim.table remote-dram)",
                              plan.table.c_str(), table_b / 1e9,
                              (unsigned long long)plan.table_rows, row_b, dram / 1e9);
                throw config::ConfigError(msg);
            }
            if (held > dram) {
                std::snprintf(msg, sizeof msg,
                              "placement.dram_capacity: %.1f GB of rows cached in host DRAM, more "
                              "than hardware.host.dram_capacity (%.1f GB)",
                              held / 1e9, dram / 1e9);
                throw config::ConfigError(msg);
            }
            if (plan.table == "nvme") {
                const double drives =
                    hw.contains("nvme") ? double(hw["nvme"]["count"].get<int>()) : 0;
                const double each =
                    drives > 0 ? config::quantity(hw["nvme"], "capacity", Dim::Bytes) : 0;
                if (table_b > drives * each) {
                    std::snprintf(msg, sizeof msg,
                                  "sim.table nvme: the table is %.1f GB, more than the drives "
                                  "hold (hardware.nvme.count %.0f x hardware.nvme.capacity "
                                  "%.1f GB)",
                                  table_b / 1e9, drives, each / 1e9);
                    throw config::ConfigError(msg);
                }
            }
        }
        if (remote) {  // each memory node holds 1/M of the table in its DRAM
            const double per_node = table_b / memory_nodes;
            const double dram = config::quantity(hw["host"], "dram_capacity", Dim::Bytes);
            if (per_node > dram) {
                char msg[256];
                std::snprintf(msg, sizeof msg,
                              "sim.memory_nodes: %d memory node(s) hold %.1f GB of the table "
                              "each, more than hardware.host.dram_capacity (%.1f GB); use more "
                              "memory nodes",
                              memory_nodes, per_node / 1e9, dram / 1e9);
                throw config::ConfigError(msg);
            }
        }
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
    }
    // placement.hbm_capacity is the TP group's: each GPU caches rows of its own Engram heads,
    // so each holds 1/TP of them (one replay over the whole group decides the hits).
    if (plan.hbm_cache_rows > 0)
        engram_weights += double(plan.hbm_cache_rows) * plan.engram.row_bytes() / tpd;
    plan.weight_bytes = tpar.weight_bytes_per_gpu() + engram_weights;
    plan.kv_bytes_per_token = tpar.kv_bytes_per_token_per_gpu();
    // Under TP the column-parallel outputs are 1/TP wide; GPU 0 holds the gathered logits.
    const double activation_peak =
        double(max_batched) *
            bb.activation_values_per_token(tpd) *  // MLA / MoE / mHC aware
            bb.bytes_per_value +
        double(max_seqs) * bb.vocab * 4 + engram_staging;
    const double hbm = plan.platform.nodes()[size_t(plan.gpu)].memory_bytes;
    plan.num_kv_blocks = simc["num_kv_blocks"].get<int64_t>();
    if (plan.num_kv_blocks < 0) {
        const double avail = hbm * count_of(simc, "gpu_memory_utilization") - plan.weight_bytes -
                             activation_peak;
        plan.num_kv_blocks = int64_t(std::floor(avail / (double(block) * plan.kv_bytes_per_token)));
        if (plan.num_kv_blocks < 1) {
            auto gb = [](double b) {
                char t[32];
                std::snprintf(t, sizeof t, "%.4g GB", b / 1e9);
                return std::string(t);
            };
            const double util = count_of(simc, "gpu_memory_utilization");
            const double cache_b = double(plan.hbm_cache_rows) * plan.engram.row_bytes() / tpd;
            std::string weights = "backbone " + gb(tpar.weight_bytes_per_gpu());
            if (engram_weights - cache_b > 0)
                weights += ", Engram projections " + gb(engram_weights - cache_b);
            if (cache_b > 0) weights += ", HBM cache of placement.hbm_capacity " + gb(cache_b);
            throw config::ConfigError(
                "the model does not fit: no HBM left for the KV cache. Per GPU: "
                "hardware.gpu.hbm_capacity " + gb(hbm) + " x sim.gpu_memory_utilization " +
                std::to_string(util).substr(0, 4) + " = " + gb(hbm * util) + ", minus weights " +
                gb(plan.weight_bytes) + " (" + weights + "), minus the activation peak " +
                gb(activation_peak) + " (sim.max_num_batched_tokens " +
                std::to_string(max_batched) + ", sim.max_num_seqs " + std::to_string(max_seqs) +
                ") leaves " + gb(avail) + "; one KV block (sim.kv_block_size " +
                std::to_string(block) + " tokens) needs " +
                gb(double(block) * plan.kv_bytes_per_token));
        }
    }

    // Workload, schedule, lookups (cached).
    std::shared_ptr<Served> wl;
    std::shared_ptr<std::pair<std::vector<Step>, uint64_t>> sched;
    std::shared_ptr<LookupCounts> counts;
    std::shared_ptr<std::vector<placement::StepRecord>> records;
    {
        std::lock_guard lock(cache_mutex);
        json wkey = cfg["workload"];
        wkey.erase("sources"), wkey.erase("assumptions"), wkey.erase("description");
        std::string wk = wkey.dump();
        auto& w = workload_cache[wk];
        if (!w) w = served_of(cfg["workload"]);
        wl = w;
        if (shards > 1) {  // data parallelism: requests r = shard mod shards, in order
            wk += "|shard " + std::to_string(shard) + "/" + std::to_string(shards);
            auto& part = workload_cache[wk];
            if (!part) {
                auto p = shard_of(*wl, shard, shards);
                if (p->prompt_len.empty()) {
                    const std::string n = std::to_string(wl->prompt_len.size());
                    throw config::ConfigError("sim.data_parallel: " + std::to_string(shards) +
                                              " replicas, but replica " + std::to_string(shard) +
                                              " gets no request (the workload has " + n + ")");
                }
                part = p;
            }
            wl = part;
        }
        SchedulerConfig sc{max_seqs, max_batched, block, plan.num_kv_blocks};
        const std::string sk = wk + "|" + std::to_string(max_seqs) + "," +
                               std::to_string(max_batched) + "," + std::to_string(block) + "," +
                               std::to_string(plan.num_kv_blocks);
        auto& s = schedule_cache[sk];
        if (!s) {
            Scheduler scheduler(sc, wl->prompt_len, wl->output_len);
            auto built = std::make_shared<std::pair<std::vector<Step>, uint64_t>>();
            while (auto st = scheduler.next()) built->first.push_back(std::move(*st));
            built->second = scheduler.preemptions();
            s = built;
        }
        sched = s;
        if (plan.has_engram) {
            json ekey = cfg["engram"];
            ekey.erase("sources"), ekey.erase("assumptions"), ekey.erase("description");
            ekey.erase("dtype"), ekey.erase("gate"), ekey.erase("short_conv");
            ekey.erase("name"), ekey.erase("base");
            auto& c = lookup_cache[sk + "|" + ekey.dump()];
            if (!c) {
                // The source runs the same scheduler config, so its steps are s->first's.
                auto source = wl->lookups(plan.engram, sc);
                c = std::make_shared<LookupCounts>(count_lookups(*source));
                if (c->lookups.size() != s->first.size())
                    throw std::logic_error("lookup counts: step count differs from the schedule");
            }
            counts = c;
            // Replay when a cache decides anything: an HBM cache, or a DRAM cache in front of
            // NVMe that holds some rows but not all (0 rows: every HBM miss is read from NVMe).
            const bool dram_cache = plan.table == "nvme" && plan.dram_cache_rows > 0 &&
                                    plan.dram_cache_rows < plan.table_rows;
            if (plan.table != "hbm" && (plan.hbm_cache_rows > 0 || dram_cache)) {
                placement::TierConfig tiers;
                tiers.hbm_rows = plan.hbm_cache_rows;
                tiers.policy = placec["policy"].get<std::string>();
                tiers.options = placec["policy_options"].get<std::map<std::string, std::string>>();
                if (plan.table == "nvme") {
                    tiers.dram_rows = plan.dram_cache_rows;
                    tiers.dram_policy = placec["dram_policy"].get<std::string>();
                    tiers.dram_options =
                        placec["dram_policy_options"].get<std::map<std::string, std::string>>();
                    tiers.inclusion = placec["tiers"] == "exclusive"
                                          ? placement::Inclusion::Exclusive
                                          : placement::Inclusion::Inclusive;
                }
                tiers.profile_fraction = count_of(placec, "profile_fraction");
                const uint64_t warm_requests = placec["warmup_requests"].get<uint64_t>();
                const uint64_t warm_seed = placec["warmup_seed"].get<uint64_t>();
                const json tkey = {tiers.hbm_rows,      tiers.policy,      tiers.options,
                                   tiers.dram_rows,     tiers.dram_policy, tiers.dram_options,
                                   placec["tiers"],     tiers.profile_fraction,
                                   warm_requests,       warm_seed};
                auto& rr = replay_cache[sk + "|" + ekey.dump() + "|" + tkey.dump()];
                if (!rr) {
                    auto source = wl->lookups(plan.engram, sc);
                    try {
                        if (warm_requests == 0) {
                            placement::DenseTrace trace = placement::densify(*source);
                            rr = std::make_shared<std::vector<placement::StepRecord>>(
                                placement::replay(trace, tiers).steps);
                        } else {
                            rr = std::make_shared<std::vector<placement::StepRecord>>(
                                warm_replay(plan.engram, cfg["workload"], warm_requests,
                                            warm_seed, sc, std::move(source), tiers));
                        }
                    } catch (const std::invalid_argument& e) {
                        throw config::ConfigError(std::string("placement: ") + e.what());
                    }
                }
                records = rr;
            }
        }
    }
    plan.preemptions = sched->second;
    const size_t n_req = wl->prompt_len.size();
    plan.output_len = wl->output_len;
    plan.first_step.assign(n_req, UINT32_MAX);
    plan.last_step.assign(n_req, 0);
    for (size_t r = 0; r < n_req; ++r) {
        plan.prompt_tokens += wl->prompt_len[r];
        plan.output_tokens += wl->output_len[r];
    }

    // Fetch mechanism.
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
    fp.dram_bytes_per_s = plan.platform.nodes()[size_t(plan.host)].memory_bytes_per_s / tpd;
    fp.dma_setup_s = config::quantity(simc, "dma_setup", Dim::Time);
    fp.uva_read_granularity = config::quantity(simc, "uva_read_granularity", Dim::Bytes);
    fp.uva_outstanding_reads = simc["uva_outstanding_reads"].get<int>();
    fp.link_bytes_per_s = link.bandwidth_bytes_per_s;
    fp.link_latency_s = 0;
    for (int l : plan.h2d_route) fp.link_latency_s += plan.platform.links()[size_t(l)].latency_s;
    fp.kernel_floor_s = eff.kernel_floor_s;
    fp.pcie = plan.platform.pcie();
    const json& nv = hw["nvme"];
    fp.nvme_drives = int(plan.nvme.size());
    fp.nvme_iops_per_drive = config::quantity(nv, "random_read_iops", Dim::Count) / tpd;
    fp.nvme_read_bytes_per_s = config::quantity(nv, "read_bandwidth", Dim::Bandwidth);
    fp.nvme_latency_s = config::quantity(nv, "read_latency", Dim::Time);
    fp.nvme_io_bytes = config::quantity(simc, "nvme_io_size", Dim::Bytes);
    fp.nvme_queue_depth = simc["nvme_queue_depth"].get<int>();
    const std::string law = simc["nvme_queueing"].get<std::string>();
    fp.nvme_queueing = law == "linear"     ? FetchParams::NvmeQueueing::Linear
                       : law == "measured" ? FetchParams::NvmeQueueing::Measured
                                           : FetchParams::NvmeQueueing::Knee;
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
        fp.nvme_iops_at_depth.push_back({double(d), iops / tpd});
    }
    std::sort(fp.nvme_iops_at_depth.begin(), fp.nvme_iops_at_depth.end());
    if (fp.nvme_queueing == FetchParams::NvmeQueueing::Measured && fp.nvme_iops_at_depth.empty())
        throw config::ConfigError(
            "sim.nvme_queueing: measured needs hardware.nvme.iops_at_depth, the drive's reads per "
            "second at several queue depths (engramsim validate nvme-fetch prints them)");
    // remote-gather: each memory node is the preset's host (its DRAM bandwidth, the same gather
    // threads and row access latency).
    fp.memory_nodes = memory_nodes;
    fp.memory_node_dram_bytes_per_s =
        config::quantity(hw["host"], "dram_bandwidth", Dim::Bandwidth);
    if (!(fp.hash_rate_per_thread > 0)) throw config::ConfigError("sim.hash_rate_per_thread: > 0");
    if (!(fp.dedup_rate_per_thread >= 0))
        throw config::ConfigError("sim.dedup_rate_per_thread: >= 0 (0: not modeled)");
    if (!(fp.gather_dispatch_s >= 0)) throw config::ConfigError("sim.gather_dispatch: >= 0");
    if (!(fp.outstanding_per_thread > 0))
        throw config::ConfigError("sim.outstanding_per_thread: > 0");
    std::unique_ptr<FetchMechanism> mech;
    try {
        mech = make_fetch_mechanism(plan.mechanism, fp);
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(std::string("sim.mechanism: ") + e.what());
    }
    const bool fetching = plan.has_engram && plan.table != "hbm" && !plan.schedule.free();

    // Steps.
    const auto& steps = sched->first;
    plan.steps.reserve(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
        const Step& st = steps[i];
        PlannedStep ps;
        ps.prefill = st.prefill;
        ps.tokens = uint32_t(st.tokens);
        ps.seqs = uint32_t(st.slices.size());
        ps.context_tokens = st.context_tokens;
        StepShape shape{st.prefill, double(st.tokens), double(st.slices.size()),
                        double(st.context_tokens), 0};
        for (const auto& sl : st.slices) {
            shape.causal_pairs += double(sl.count) * (double(sl.count) + 1) / 2;
            const uint32_t r = sl.request;
            if (plan.first_step[r] == UINT32_MAX) plan.first_step[r] = uint32_t(i);
            plan.last_step[r] = uint32_t(i);  // each scheduled slice yields one token
        }
        const double s = plan.backbone_time_scale;
        double e = 0;
        if (tp == 1) {
            ps.embed_s = s * total_seconds(cost, embed_ops(bb, shape));
            ps.layer_s = s * total_seconds(cost, layer_ops(bb, shape));
            ps.head_s = s * total_seconds(cost, head_ops(bb, shape));
            if (plan.has_engram)
                e = engram_scale * total_seconds(cost, engram_ops(eshape, bb, shape));
        } else {
            auto timed = [&](const std::vector<OpShape>& ops, OpList list, double scale,
                             std::vector<TpSegment>& out) {
                double sum = 0;
                for (const TpPiece& piece : tpar.shard(ops, list, shape)) {
                    out.push_back({scale * total_seconds(cost, piece.ops), piece.after,
                                   piece.ops.empty() ? std::string() : piece.ops.back().kernel});
                    sum += out.back().seconds;
                }
                return sum;
            };
            ps.embed_s = timed(embed_ops(bb, shape), OpList::Embed, s, ps.tp_embed);
            ps.layer_s = timed(layer_ops(bb, shape), OpList::Layer, s, ps.tp_layer);
            ps.head_s = timed(head_ops(bb, shape), OpList::Head, s, ps.tp_head);
            if (plan.has_engram)
                e = timed(engram_ops(eshape, bb, shape), OpList::Engram, engram_scale,
                          ps.tp_engram);
        }
        if (plan.has_engram) {
            ps.engram_gpu_s.assign(plan.engram_layers.size(), e);
            if (fetching && simc["hashing"] == "gpu") {
                OpShape h;
                h.kernel = "engram_hash";
                // Under TP each GPU hashes its own heads.
                h.dims = {{"tokens", shape.tokens}, {"heads", double(eshape.heads) / tpd}};
                h.flops = shape.tokens * eshape.heads / tpd * 8;
                h.bytes = shape.tokens *
                          (4.0 * plan.engram.max_ngram_size + 4.0 * eshape.heads / tpd);
                ps.gpu_hash_s = double(plan.engram_layers.size()) * cost.seconds(h);
            }
            if (fetching)
                for (size_t e_i = 0; e_i < plan.engram_layers.size(); ++e_i) {
                    PlannedFetch f;
                    f.engram_index = int(e_i);
                    f.issue_layer = plan.schedule.issue_layer(plan.engram_layers[e_i]);
                    f.lookups = counts->lookups[i][e_i];
                    f.unique_rows = counts->unique_rows[i][e_i];
                    if (records) {
                        const auto& rec = (*records)[i * plan.engram_layers.size() + e_i];
                        if (rec.step != i || rec.layer != e_i || rec.unique_rows != f.unique_rows)
                            throw std::logic_error("placement records disagree with the plan's "
                                                   "steps");
                        f.hbm_hits = rec.hbm_hits;
                    }
                    const uint64_t fetched = f.unique_rows - f.hbm_hits;
                    if (plan.table != "nvme" || plan.dram_cache_rows >= plan.table_rows)
                        f.dram_rows = fetched;  // the table in DRAM (or all of it cached)
                    else if (records && plan.dram_cache_rows > 0)
                        f.dram_rows = (*records)[i * plan.engram_layers.size() + e_i].dram_rows;
                    f.ssd_rows = fetched - f.dram_rows;
                    // Under TP one GPU's share: its heads' rows (rows split evenly by head).
                    FetchInput in{shape.tokens, double(f.lookups) / tpd,
                                  double(fetched) / tpd, plan.engram.row_bytes()};
                    in.dram_rows = double(f.dram_rows) / tpd;
                    f.work = mech->plan(in);
                    ps.fetch.push_back(f);
                }
        }
        plan.steps.push_back(std::move(ps));
    }
    return plan;
}

std::vector<Instr> step_program(const Plan& plan, const PlannedStep& st) {
    std::vector<Instr> prog;
    auto run = [&](double s, const char* label) {
        // Consecutive kernels with no event between them form one segment.
        if (!prog.empty() && prog.back().kind == Instr::Kind::Run &&
            prog.back().label == label) {
            prog.back().seconds += s;
            return;
        }
        prog.push_back({Instr::Kind::Run, s, -1, label});
    };
    // TP > 1: the segments with the collectives between them; else one run of `total`.
    auto segments = [&](const std::vector<TpSegment>& segs, double total, const char* label,
                        const char* op, int layer) {
        if (segs.empty()) return run(total, label);
        for (const TpSegment& sg : segs) {
            run(sg.seconds, label);
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
    segments(st.tp_embed, st.embed_s, "layers", "embed", -1);
    for (int l = 0; l < plan.backbone.layers; ++l) {
        for (size_t f = 0; f < st.fetch.size(); ++f)
            if (st.fetch[f].issue_layer == l && l > 0)
                prog.push_back({Instr::Kind::Issue, 0, int(f), ""});
        for (size_t e = 0; e < plan.engram_layers.size(); ++e)
            if (plan.engram_layers[e] == l) {
                for (size_t f = 0; f < st.fetch.size(); ++f)
                    if (st.fetch[f].engram_index == int(e))
                        prog.push_back({Instr::Kind::Wait, 0, int(f), ""});
                segments(st.tp_engram, st.engram_gpu_s[e], "engram", "engram", l);
            }
        segments(st.tp_layer, st.layer_s, "layers", "layer", l);
    }
    segments(st.tp_head, st.head_s, "layers", "head", -1);
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
    for (Instr in : step_program(plan, st)) {
        if (in.kind == Instr::Kind::Collective) {  // on the GPU stream, idle NVLink
            in.kind = Instr::Kind::Run;
            in.seconds = collective_seconds(plan.platform, plan.gpus, in.collective);
        }
        if (in.kind == Instr::Kind::Run) {
            const int v = dag.add(in.label, in.seconds);
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

Plan make_plan(const json& cfg) {
    const int dp = cfg.contains("sim") ? cfg["sim"].value("data_parallel", 1) : 1;
    if (dp == 1) return make_plan_impl(cfg, 0, 1, 0, 0);
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
    std::vector<Plan> replicas;
    for (int k = 0; k < dp; ++k) {
        replicas.push_back(make_plan_impl(cfg, k, dp, dp, k));
    }
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
    top.host_cores = int(std::max<int64_t>(1, cores / std::max<int64_t>(1, threads)));
    top.replicas = std::move(replicas);
    return top;
}

}  // namespace engramsim::sim
