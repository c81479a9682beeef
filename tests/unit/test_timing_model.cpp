// The timing model's pieces against closed forms: the roofline cost model and its profile hook,
// the step DAG's critical path, PCIe wire bytes, fetch mechanisms, prefetch schedule names,
// platform routes, the backbone shapes and the KV-cache sizing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include "model/config.h"
#include "model/cost_model.h"
#include "model/step_model.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/fetch.h"
#include "sim/timing/plan.h"
#include "sim/timing/platform.h"
#include "sim/timing/prefetch.h"
#include "traces/lookups.h"

using namespace engramsim;
using namespace engramsim::sim;

TEST(CostModel, RooflineTakesTheSlowerOfComputeAndMemoryPlusTheFloor) {
    const CostModel cost({1e15, 1e12}, {.gemm = 0.5, .attention = 0.5, .memory = 0.5,
                                        .kernel_floor_s = 2e-6});
    const OpShape big = gemm_op(4096, 4096, 4096, 2);  // compute-bound
    EXPECT_DOUBLE_EQ(cost.seconds(big), 2.0 * 4096 * 4096 * 4096 / (1e15 * 0.5) + 2e-6);
    const OpShape thin = gemm_op(1, 4096, 4096, 2);  // memory-bound: weights dominate
    EXPECT_DOUBLE_EQ(cost.seconds(thin),
                     (4096.0 + 4096.0 * 4096 + 4096) * 2 / (1e12 * 0.5) + 2e-6);
}

TEST(CostModel, AMeasuredProfileWinsOverTheRoofline) {
    const CostModel cost({1e15, 1e12}, {}, [](const OpShape& op) -> std::optional<double> {
        if (op.kernel == "gemm" && op.dims.at("m") == 1) return 42e-6;
        return std::nullopt;
    });
    EXPECT_EQ(cost.seconds(gemm_op(1, 8, 8, 2)), 42e-6);
    EXPECT_EQ(cost.seconds(gemm_op(2, 8, 8, 2)), cost.roofline_seconds(gemm_op(2, 8, 8, 2)));
}

TEST(CostModel, RejectsImpossibleEfficiencies) {
    EXPECT_THROW(CostModel({1e15, 1e12}, {.gemm = 1.5}), std::invalid_argument);
    EXPECT_THROW(CostModel({0, 1e12}, {}), std::invalid_argument);
}

TEST(StepDag, CriticalPathIsTheLongestChain) {
    StepDag dag;
    const int a = dag.add("a", 1.0), b = dag.add("b", 2.0), c = dag.add("c", 5.0),
              d = dag.add("d", 1.0);
    dag.depends(b, a);  // a -> b -> d
    dag.depends(d, b);
    dag.depends(d, c);  // c -> d
    EXPECT_EQ(dag.critical_path_s(), 6.0);  // c (5) + d (1)
    EXPECT_EQ(dag.finish_s(b), 3.0);
    dag.depends(a, d);
    EXPECT_THROW(dag.critical_path_s(), std::logic_error);
}

TEST(Backbone, ParameterCountsMatchThePresetArithmetic) {
    const auto b4 = BackboneShape::from_json(config::load("dense-4b")["backbone"]);
    EXPECT_TRUE(b4.tied_embeddings);
    EXPECT_EQ(b4.params(), 4'022'468'096.0);  // docs/presets.md
    const auto b8 = BackboneShape::from_json(config::load("dense-8b")["backbone"]);
    EXPECT_EQ(b8.params(), 8'190'735'360.0);
    EXPECT_EQ(b8.kv_bytes_per_token(), 144.0 * 1024);
    auto moe_bad = config::load("moe-27b")["backbone"];  // MoE / MLA: tests/unit/test_timing_moe
    moe_bad["mlp"]["top_k"] = 0;
    EXPECT_THROW(BackboneShape::from_json(moe_bad), config::ConfigError);
}

TEST(Pcie, WireBytesCarryTlpAndDllpOverhead) {
    const PcieModel pcie{24, 256, 0.04};
    EXPECT_EQ(pcie.bulk_wire_bytes(256 * 1000), std::ceil((256000.0 + 1000 * 24) * 1.04));
    EXPECT_EQ(pcie.bulk_wire_bytes(257), std::ceil((257.0 + 2 * 24) * 1.04));
    EXPECT_EQ(pcie.small_wire_bytes(10, 64), std::ceil(10 * (64.0 + 24) * 1.04));
    EXPECT_EQ(pcie.bulk_wire_bytes(0), 0);
}

TEST(Fetch, LinesPerRowAverageOverRowAlignment) {
    EXPECT_DOUBLE_EQ(lines_per_row(160), 3.0);  // offsets 0 and 32 mod 64: 3 lines each
    EXPECT_DOUBLE_EQ(lines_per_row(80), 2.0);   // 80 B rows: 2 lines on average
    EXPECT_DOUBLE_EQ(lines_per_row(64), 1.0);
}

TEST(Fetch, CpuGatherClosedForm) {
    FetchParams p;
    p.gather_threads = 4;
    p.outstanding_per_thread = 2;
    p.row_access_latency_s = 200e-9;
    p.hash_rate_per_thread = 1e9;
    p.dram_bytes_per_s = 500e9;
    p.link_bytes_per_s = 50e9;
    p.dma_setup_s = 5e-6;
    const auto m = make_fetch_mechanism("cpu-gather", p);
    const FetchWork w = m->plan({100, 1600, 1500, 160});
    EXPECT_DOUBLE_EQ(w.host_s, 1600 / 1e9 + 1500 * 200e-9 / 8);  // latency-bound gather
    EXPECT_EQ(w.payload_bytes, 1500 * 160.0);
    EXPECT_EQ(w.h2d_wire_bytes, p.pcie.bulk_wire_bytes(1500 * 160.0));
    EXPECT_EQ(w.fixed_s, 5e-6);
    EXPECT_EQ(w.d2h_wire_bytes, 0);
    p.hash_on_gpu = true;  // ids come back over the link first; no host hashing
    const FetchWork g = make_fetch_mechanism("cpu-gather", p)->plan({100, 1600, 1500, 160});
    EXPECT_EQ(g.d2h_wire_bytes, p.pcie.bulk_wire_bytes(1600 * 4.0));
    EXPECT_DOUBLE_EQ(g.host_s, 1500 * 200e-9 / 8);
    EXPECT_EQ(g.fixed_s, 10e-6);
}

// The host deduplicates the step's ids (its hashing threads) and pays a fixed cost per fetch to
// wake the gather threads; nvme and remote-gather deduplicate too (where they gather).
TEST(Fetch, HostDeduplicationAndDispatchAddToTheHostWork) {
    FetchParams p;
    p.gather_threads = 4;
    p.outstanding_per_thread = 2.5;  // a measured mean: fractional
    p.row_access_latency_s = 200e-9;
    p.hash_rate_per_thread = 1e9;
    p.hash_threads = 2;
    p.dedup_rate_per_thread = 1e8;
    p.gather_dispatch_s = 40e-6;
    p.dram_bytes_per_s = 500e9;
    p.link_bytes_per_s = 50e9;
    const FetchInput in{100, 1600, 1500, 160};
    const double gather = 40e-6 + 1500 * 200e-9 / (4 * 2.5);
    EXPECT_DOUBLE_EQ(gather_seconds(p, 1500, 160), gather);
    EXPECT_DOUBLE_EQ(dedup_seconds(p, 1600), 1600 / 2e8);
    EXPECT_DOUBLE_EQ(make_fetch_mechanism("cpu-gather", p)->plan(in).host_s,
                     1600 / 2e9 + 1600 / 2e8 + gather);
    p.nvme_drives = 1, p.nvme_iops_per_drive = 1e6, p.nvme_read_bytes_per_s = 7e9;
    p.nvme_latency_s = 80e-6;
    EXPECT_DOUBLE_EQ(make_fetch_mechanism("nvme", p)->plan(in).host_s, 1600 / 2e9 + 1600 / 2e8);
    p.memory_nodes = 2, p.memory_node_dram_bytes_per_s = 500e9;
    EXPECT_DOUBLE_EQ(make_fetch_mechanism("remote-gather", p)->plan(in).remote_gather_s,
                     800 / 2e8 + 40e-6 + 750 * 200e-9 / (4 * 2.5));
    p.dedup_rate_per_thread = 0;  // not modeled
    EXPECT_EQ(dedup_seconds(p, 1600), 0);
}

TEST(Fetch, UvaPaysPerReadOverheadAndLittlesLaw) {
    FetchParams p;
    p.hash_on_gpu = true;
    p.dram_bytes_per_s = 500e9;
    p.link_bytes_per_s = 50e9;
    p.link_latency_s = 1e-6;
    p.uva_outstanding_reads = 100;
    p.kernel_floor_s = 3e-6;
    const FetchWork w = make_fetch_mechanism("uva", p)->plan({1000, 16000, 16000, 160});
    const double reads = 16000 * 3.0;
    EXPECT_EQ(w.h2d_wire_bytes, p.pcie.small_wire_bytes(reads, 64));
    const double little = reads * 1e-6 / 100;  // 0.48 ms: concurrency-bound
    EXPECT_DOUBLE_EQ(w.fixed_s, 3e-6 + (little - w.h2d_wire_bytes / 50e9));
    EXPECT_EQ(w.host_s, 0);
}

TEST(Fetch, UnknownMechanismListsTheKnownOnes) {
    FetchParams p;
    p.dram_bytes_per_s = p.link_bytes_per_s = 1;
    try {
        make_fetch_mechanism("cpu-gahter", p);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "unknown fetch mechanism 'cpu-gahter'; known: cpu-gather, nvme, "
                               "remote-gather, uva");
    }
}

TEST(Prefetch, SchedulesParseAndIssueWithinTheStep) {
    EXPECT_EQ(PrefetchSchedule::parse("none").issue_layer(5), 5);
    EXPECT_EQ(PrefetchSchedule::parse("layer-ahead").issue_layer(5), 0);
    EXPECT_EQ(PrefetchSchedule::parse("layer-ahead:3").issue_layer(5), 3);
    EXPECT_EQ(PrefetchSchedule::parse("layer-ahead:9").issue_layer(5), 5);
    EXPECT_TRUE(PrefetchSchedule::parse("oracle").free());
    EXPECT_EQ(PrefetchSchedule::parse("layer-ahead:3").name(), "layer-ahead:3");
    EXPECT_THROW(PrefetchSchedule::parse("layer-ahead:-1"), std::invalid_argument);
    try {
        PrefetchSchedule::parse("orcale");
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(),
                     "unknown prefetch schedule 'orcale'; known: layer-ahead:K, none, oracle");
    }
}

TEST(Platform, RoutesAreShortestPathsOverTheTopology) {
    const Platform p = Platform::from_hardware(config::load("h800-pcie5")["hardware"]);
    const int gpu = p.node("gpu0"), host = p.node("host"), nvme = p.node("nvme3");
    EXPECT_EQ(p.route(host, gpu).size(), 1u);
    EXPECT_EQ(p.links()[size_t(p.route(host, gpu)[0])].name, "pcie0.h2d");
    const auto r = p.route(nvme, gpu);  // NVMe -> host -> GPU
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(p.links()[size_t(r[0])].name, "nvme3.read");
    EXPECT_EQ(p.links()[size_t(r[1])].name, "pcie0.h2d");
    EXPECT_DOUBLE_EQ(p.transfer_s(r, 6.4e6), 80e-6 + 1e-6 + 6.4e6 / 6.4e9);
    EXPECT_EQ(p.route(p.node("nvme0"), p.node("nvme1")).size(), 2u);  // through the host
    Platform island = p;
    const int lone = island.add_node({"lone", NodeKind::Host, 0, 0});
    EXPECT_THROW(island.route(lone, gpu), std::invalid_argument);
    EXPECT_THROW(p.node("gpu1"), std::invalid_argument);
}

TEST(Plan, KvCacheIsWhatHbmLeavesAfterWeightsAndActivations) {
    // Every request's output length is fixed by the config (bench.py's randint(100, 100) is 100),
    // so the run's output tokens are known without the code under test: 8 requests x 100.
    const auto cfg = resolve_run_config(
        {{"backbone", "dense-8b"},
         {"workload",
          {{"base", "nano-vllm-512"},
           {"num_requests", 8},
           {"output_len", {{"dist", "uniform"}, {"min", 100}, {"max", 100}}}}}},
        "test");
    const Plan p = make_plan(cfg);
    const double act = 16384.0 * (4096 + 2 * 1024 + 2 * 12288 + 2 * 4096) * 2 + 512.0 * 151936 * 4;
    const double avail = 80e9 * 0.9 - 8'190'735'360.0 * 2 - act;
    EXPECT_EQ(p.num_kv_blocks, int64_t(std::floor(avail / (256 * 144.0 * 1024))));
    EXPECT_EQ(p.output_tokens, 8u * 100u);
    // Every request yields its output: the last step of each is where it finished.
    uint64_t tokens = 0;
    for (const auto& st : p.steps) tokens += st.seqs;  // one output token per sequence per step
    EXPECT_EQ(tokens, p.output_tokens);
}

TEST(Plan, CalibrationScalesTheBackboneOnly) {
    auto cfg = resolve_run_config({{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"},
                                   {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 8}}}},
                                  "test");
    const Plan a = make_plan(cfg);
    const Plan b = make_plan(with_key(cfg, "sim.backbone_time_scale", 2.0));
    ASSERT_EQ(a.steps.size(), b.steps.size());
    for (size_t i = 0; i < a.steps.size(); ++i) {
        EXPECT_DOUBLE_EQ(b.steps[i].layer_s, 2 * a.steps[i].layer_s);
        EXPECT_DOUBLE_EQ(b.steps[i].head_s, 2 * a.steps[i].head_s);
        EXPECT_EQ(b.steps[i].engram_gpu_s, a.steps[i].engram_gpu_s);  // never the Engram path
        EXPECT_EQ(b.steps[i].fetch[0].work.host_s, a.steps[i].fetch[0].work.host_s);
    }
}

TEST(Plan, BadRunConfigsFailWithThePath) {
    EXPECT_THROW(resolve_run_config({{"engram", "paper-offload-100b"}}, "t"), config::ConfigError);
    try {
        make_plan(resolve_run_config({{"backbone", "dense-4b"}, {"sim", {{"schedule", "soon"}}}},
                                     "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("sim.schedule: unknown prefetch schedule 'soon'"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(load_run_config("h800-pcie5"), config::ConfigError);  // not a backbone
    // The Engram module gates every residual branch of the backbone: the counts must agree.
    try {
        make_plan(resolve_run_config({{"backbone", "moe-27b"}, {"engram", "paper-offload-100b"}},
                                     "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("engram.hc_mult: 1 gates, but backbone.hc_mult is 4"),
                  std::string::npos)
            << e.what();
    }
    // A bare backbone preset gets the Table 4 layer with its own branch count.
    EXPECT_EQ(load_run_config("moe-27b")["engram"]["hc_mult"], 4);
    EXPECT_EQ(load_run_config("dense-8b")["engram"]["hc_mult"], 1);
}

// Eight drives whose queue depth binds: 64 / 80 us = 800k IOPS, below the 1M rating.
FetchParams nvme_params() {
    FetchParams p;
    p.dram_bytes_per_s = 500e9;
    p.link_bytes_per_s = 50e9;
    p.hash_rate_per_thread = 1e9;
    p.gather_threads = 4;
    p.outstanding_per_thread = 2;
    p.row_access_latency_s = 250e-9;
    p.nvme_drives = 8;
    p.nvme_iops_per_drive = 1e6;
    p.nvme_read_bytes_per_s = 6.4e9;
    p.nvme_latency_s = 80e-6;
    p.nvme_queue_depth = 64;
    return p;
}

TEST(Fetch, NvmeSpreadsRowsOverDrivesAndHonoursIops) {
    FetchParams p = nvme_params();
    const FetchWork w = make_fetch_mechanism("nvme", p)->plan({100, 1600, 1601, 160});
    const double ios = 201;  // ceil(1601 / 8)
    EXPECT_EQ(w.nvme_bytes_per_drive, ios * 4096);
    EXPECT_DOUBLE_EQ(w.nvme_io_s, ios / 800e3);  // the drive's I/O time at its rated IOPS
    EXPECT_DOUBLE_EQ(w.fixed_s, 5e-6);            // the copy's setup
    EXPECT_DOUBLE_EQ(w.host_s, 1600 / 1e9);
    EXPECT_EQ(w.h2d_wire_bytes, p.pcie.bulk_wire_bytes(1601 * 160.0));
    EXPECT_EQ(w.nvme_read_bytes, 1601 * 4096.0);
    p.nvme_drives = 0;
    EXPECT_THROW(make_fetch_mechanism("nvme", p), std::invalid_argument);
}

// Rows host DRAM holds (a DRAM cache's hits, or the whole table) are gathered on the host as
// cpu-gather gathers them; only the rest are read from the drives.
TEST(Fetch, NvmeGathersTheRowsDramHoldsAndReadsTheRest) {
    const FetchParams p = nvme_params();
    const auto nvme = make_fetch_mechanism("nvme", p);
    const auto gather = make_fetch_mechanism("cpu-gather", p);
    FetchInput in{100, 1600, 1601, 160};
    in.dram_rows = 601;  // 1000 rows from the drives
    const FetchWork w = nvme->plan(in);
    const double ios = 125;  // ceil(1000 / 8)
    EXPECT_EQ(w.nvme_bytes_per_drive, ios * 4096);
    EXPECT_EQ(w.nvme_read_bytes, 1000 * 4096.0);
    EXPECT_DOUBLE_EQ(w.nvme_io_s, ios / 800e3);
    EXPECT_DOUBLE_EQ(w.fixed_s, 5e-6);
    // hashing, then the gather of the 601 DRAM rows (as cpu-gather would gather them)
    const double gather_s = gather->plan({100, 0, 601, 160}).host_s;
    EXPECT_DOUBLE_EQ(w.host_s, 1600 / 1e9 + gather_s);
    EXPECT_DOUBLE_EQ(gather_s, 601 * 250e-9 / 8);  // latency-bound
    EXPECT_EQ(w.h2d_wire_bytes, p.pcie.bulk_wire_bytes(1601 * 160.0));  // every row to the GPU
    // DRAM holds them all: no drive reads; none: every row from the drives
    in.dram_rows = 1601;
    EXPECT_EQ(nvme->plan(in).nvme_bytes_per_drive, 0);
    EXPECT_EQ(nvme->plan(in).nvme_read_bytes, 0);
    in.dram_rows = 0;
    EXPECT_EQ(nvme->plan(in).nvme_read_bytes, 1601 * 4096.0);
    EXPECT_DOUBLE_EQ(nvme->plan(in).host_s, 1600 / 1e9);
}

TEST(Plan, TableOnNvmeNeedsTheNvmeMechanism) {
    const nlohmann::json wl = {{"base", "nano-vllm-512"}, {"num_requests", 4}};
    EXPECT_THROW(make_plan(resolve_run_config({{"backbone", "dense-4b"},
                                               {"engram", "paper-offload-100b"},
                                               {"workload", wl},
                                               {"sim", {{"table", "nvme"}}}},
                                              "t")),
                 config::ConfigError);
    // placement.dram_capacity 0: host DRAM holds none of the table, every row is read from
    // the drives
    const Plan p = make_plan(resolve_run_config(
        {{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"}, {"workload", wl},
         {"sim", {{"table", "nvme"}, {"mechanism", "nvme"}}},
         {"placement", {{"dram_capacity", "0"}}}},
        "t"));
    EXPECT_EQ(p.nvme.size(), 8u);  // h800-pcie5: 8 drives
    EXPECT_GT(p.steps[0].fetch[0].work.nvme_bytes_per_drive, 0);
    EXPECT_EQ(p.steps[0].fetch[0].ssd_rows, p.steps[0].fetch[0].unique_rows);
    // the default (all): the whole table in DRAM, nothing read from the drives
    const Plan all = make_plan(resolve_run_config(
        {{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"}, {"workload", wl},
         {"sim", {{"table", "nvme"}, {"mechanism", "nvme"}}}},
        "t"));
    EXPECT_EQ(all.steps[0].fetch[0].work.nvme_bytes_per_drive, 0);
    EXPECT_EQ(all.steps[0].fetch[0].dram_rows, all.steps[0].fetch[0].unique_rows);
    // a DRAM cache in front of a table in DRAM makes no sense: the error says what to set
    try {
        make_plan(resolve_run_config({{"backbone", "dense-4b"},
                                      {"engram", "paper-offload-100b"},
                                      {"workload", wl},
                                      {"placement", {{"dram_capacity", "1%"}}}},
                                     "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("placement.dram_capacity: "), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("sim.table nvme"), std::string::npos);
    }
}

TEST(Plan, ATableMustFitWhereItIsPut) {
    // The paper's layer 16x as wide (orders 2..3 x 8 heads x 1,280 values: 2,560-B rows) is
    // 3.2 TB: more than the h800-pcie5 host's 2 TiB of DRAM, less than its 8 x 3.84 TB drives.
    auto plan = [](const nlohmann::json& sim, const nlohmann::json& placement,
                   const nlohmann::json& hardware = "h800-pcie5") {
        return make_plan(resolve_run_config(
            {{"backbone", "dense-4b"},
             {"engram", {{"base", "paper-offload-100b"}, {"n_embed_per_ngram", 10240}}},
             {"hardware", hardware},
             {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 2}}},
             {"sim", sim},
             {"placement", placement}},
            "t"));
    };
    auto error_of = [&](const nlohmann::json& sim, const nlohmann::json& placement,
                        const nlohmann::json& hardware = "h800-pcie5") {
        try {
            (void)plan(sim, placement, hardware);
        } catch (const config::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    const nlohmann::json nvme = {{"table", "nvme"}, {"mechanism", "nvme"}};
    EXPECT_EQ(error_of(nlohmann::json::object(), nlohmann::json::object())
                  .rfind("sim.table host-dram: the table is 3200.", 0),
              0u);
    EXPECT_NE(error_of(nlohmann::json::object(), nlohmann::json::object())
                  .find("more than hardware.host.dram_capacity (2199.0 GB)"),
              std::string::npos);
    // On the drives with 1 TB of DRAM cache it runs; with all of it cached in DRAM it does not.
    EXPECT_EQ(plan(nvme, {{"dram_capacity", "1TB"}}).dram_cache_rows * 2560, uint64_t(1e12));
    EXPECT_EQ(error_of(nvme, nlohmann::json::object())
                  .rfind("placement.dram_capacity: 3200.0 GB of rows cached in host DRAM", 0),
              0u);
    // Its eight drives hold 30.7 TB; one drive of 3 TB does not hold the table.
    const nlohmann::json one_drive = {{"base", "h800-pcie5"},
                                      {"nvme", {{"count", 1}, {"capacity", "3 TB"}}}};
    EXPECT_EQ(error_of(nvme, {{"dram_capacity", "0"}}, one_drive),
              "sim.table nvme: the table is 3200.0 GB, more than the drives hold "
              "(hardware.nvme.count 1 x hardware.nvme.capacity 3000.0 GB)");
}

TEST(Plan, MeasuredNvmeRatesReplaceTheQueueingLaw) {
    auto plan = [](const nlohmann::json& sim, const nlohmann::json& nvme) {
        nlohmann::json cfg = {{"backbone", "dense-4b"},
                              {"engram", "paper-offload-100b"},
                              {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 4}}},
                              {"sim", sim},
                              {"placement", {{"dram_capacity", "0"}}}};
        if (!nvme.is_null()) cfg["hardware"] = {{"base", "h800-pcie5"}, {"nvme", nvme}};
        return make_plan(resolve_run_config(cfg, "t"));
    };
    const nlohmann::json nv = {{"table", "nvme"}, {"mechanism", "nvme"}};
    nlohmann::json measured = nv;
    measured["nvme_queueing"] = "measured";
    const Plan knee = plan(nv, nullptr);  // h800-pcie5: 1.45M IOPS, 80 us; depth 128
    const FetchWork& k = knee.steps[0].fetch[0].work;
    ASSERT_GT(k.nvme_io_s, 0);
    // One measured point at the run's depth, equal to the knee's rate there: the same plan.
    const Plan same = plan(measured, {{"iops_at_depth", {{"128", "1.45M"}}}});
    EXPECT_EQ(same.steps[0].fetch[0].work.nvme_io_s, k.nvme_io_s);
    // Between two points: a read's time in the queue, Q / rate, linear in Q (128 is a third of
    // the way from 64 to 256).
    const Plan mid = plan(measured, {{"iops_at_depth", {{"256", "900K"}, {"64", "500K"}}}});
    const double ios = k.nvme_bytes_per_drive / 4096;  // the busiest drive's reads
    const double l64 = 64 / 500e3, l256 = 256 / 900e3;
    EXPECT_DOUBLE_EQ(mid.steps[0].fetch[0].work.nvme_io_s,
                     ios / (128 / (l64 + (128.0 - 64) / (256 - 64) * (l256 - l64))));
    // linear: Q / (L + (Q - 1) / IOPS)
    nlohmann::json linear = nv;
    linear["nvme_queueing"] = "linear";
    EXPECT_DOUBLE_EQ(plan(linear, nullptr).steps[0].fetch[0].work.nvme_io_s,
                     ios / (128 / (80e-6 + 127 / 1.45e6)));
    // Errors name the key.
    auto fails_with = [&](const nlohmann::json& sim, const nlohmann::json& nvme,
                          const std::string& what) {
        try {
            (void)plan(sim, nvme);
            ADD_FAILURE() << "no error for " << nvme.dump();
        } catch (const config::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
    };
    fails_with(measured, nullptr, "sim.nvme_queueing: measured needs hardware.nvme.iops_at_depth");
    fails_with(measured, {{"iops_at_depth", {{"x", "1K"}}}}, "hardware.nvme.iops_at_depth.x");
    fails_with(measured, {{"iops_at_depth", {{"4", "lots"}}}}, "hardware.nvme.iops_at_depth.4");
    fails_with(measured, {{"iops_at_depth", {{"4", "0"}}}}, "a rate must be positive");
}

// remote-gather: each memory node gets 4 B per lookup of its shard, gathers its share of the
// unique rows with its own DRAM bandwidth, and sends its share of the payload (whole bytes).
TEST(Fetch, RemoteGatherShardsIdsGatherAndBytesOverMemoryNodes) {
    FetchParams p;
    p.gather_threads = 4;
    p.outstanding_per_thread = 2;
    p.row_access_latency_s = 200e-9;
    p.hash_rate_per_thread = 1e9;
    p.dram_bytes_per_s = 1;  // the GPU node's DRAM: not used
    p.link_bytes_per_s = 50e9;
    p.memory_nodes = 4;
    p.memory_node_dram_bytes_per_s = 500e9;
    const auto m = make_fetch_mechanism("remote-gather", p);
    const FetchWork w = m->plan({100, 1600, 1500, 160});
    EXPECT_DOUBLE_EQ(w.host_s, 1600 / 1e9);  // hashing on the GPU node's host
    EXPECT_FALSE(w.remote_ids_from_gpu);
    EXPECT_EQ(w.remote_ids_bytes_per_node, 1600 / 4 * 4.0);
    EXPECT_DOUBLE_EQ(w.remote_gather_s, 375 * 200e-9 / 8);  // latency-bound, 375 rows each
    EXPECT_EQ(w.payload_bytes, 1500 * 160.0);
    EXPECT_EQ(w.net_bytes_per_node, 375 * 160.0);
    EXPECT_EQ(w.h2d_wire_bytes, 0);  // nothing leaves the GPU node's host
    EXPECT_EQ(w.d2h_wire_bytes, 0);
    EXPECT_EQ(w.fixed_s, 0);
    // DRAM-bound: one thread with 64 reads in flight: (lines + staging) / memory node DRAM.
    p.gather_threads = 1, p.outstanding_per_thread = 64, p.memory_nodes = 3;
    p.hash_on_gpu = true;
    const FetchWork d = make_fetch_mechanism("remote-gather", p)->plan({100, 1601, 1501, 160});
    EXPECT_EQ(d.host_s, 0);
    EXPECT_TRUE(d.remote_ids_from_gpu);
    EXPECT_EQ(d.remote_ids_bytes_per_node, std::ceil(1601 * 4.0 / 3));
    EXPECT_EQ(d.net_bytes_per_node, std::ceil(1501 * 160.0 / 3));
    EXPECT_DOUBLE_EQ(d.remote_gather_s,
                     std::max(1501.0 / 3 * 200e-9 / 64,
                              1501.0 / 3 * (lines_per_row(160) * 64 + 160) / 500e9));
    EXPECT_EQ(make_fetch_mechanism("remote-gather", p)->plan({1, 16, 0, 160}).net_bytes_per_node,
              0);
    p.memory_nodes = 0;
    EXPECT_THROW(make_fetch_mechanism("remote-gather", p), std::invalid_argument);
}

// sim.table remote-dram: the plan's platform has the memory nodes, every fetch is remote, and
// bad combinations fail naming the key.
TEST(Plan, RemoteDramNeedsRemoteGatherAndOneGpu) {
    const nlohmann::json wl = {{"base", "nano-vllm-512"}, {"num_requests", 4}};
    auto plan = [&](const nlohmann::json& sim) {
        return make_plan(resolve_run_config({{"backbone", "dense-4b"},
                                             {"engram", "paper-offload-100b"},
                                             {"workload", wl},
                                             {"sim", sim}},
                                            "t"));
    };
    const Plan p = plan({{"table", "remote-dram"}, {"mechanism", "remote-gather"},
                         {"memory_nodes", 4}});
    ASSERT_EQ(p.memory_nodes.size(), 4u);
    EXPECT_EQ(p.platform.nodes()[size_t(p.memory_nodes[3])].name, "mem3");
    EXPECT_EQ(p.platform.nodes()[size_t(p.memory_nodes[3])].memory_bytes_per_s, 563.2e9);
    const FetchWork& w = p.steps[0].fetch[0].work;
    EXPECT_EQ(w.net_bytes_per_node,
              std::ceil(double(p.steps[0].fetch[0].unique_rows) * 160 / 4));
    EXPECT_EQ(p.steps[0].fetch[0].dram_rows, p.steps[0].fetch[0].unique_rows);
    // Every other table builds no network.
    EXPECT_TRUE(plan(nlohmann::json::object()).memory_nodes.empty());
    auto error = [&](const nlohmann::json& sim) {
        try {
            plan(sim);
        } catch (const config::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(error({{"table", "remote-dram"}}).find("sim.mechanism: 'cpu-gather' with table "
                                                     "'remote-dram'"),
              std::string::npos);
    EXPECT_NE(error({{"mechanism", "remote-gather"}}).find("sim.mechanism: 'remote-gather'"),
              std::string::npos);
    EXPECT_NE(error({{"table", "remote-dram"}, {"mechanism", "remote-gather"},
                     {"memory_nodes", 0}})
                  .find("sim.memory_nodes"),
              std::string::npos);
    // Each memory node holds 1/M of the table in DRAM of the preset host's size (2 TiB): a
    // 4 TB table needs two.
    try {
        make_plan(resolve_run_config(
            {{"backbone", "dense-4b"},
             {"engram", {{"base", "paper-offload-100b"},
                         {"engram_vocab_size", {1562500000, 1562500000}}}},
             {"workload", wl},
             {"sim", {{"table", "remote-dram"}, {"mechanism", "remote-gather"}}}},
            "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("sim.memory_nodes: 1 memory node(s) hold 4000.0 GB "
                                             "of the table each, more than "
                                             "hardware.host.dram_capacity (2199.0 GB)"),
                  std::string::npos)
            << e.what();
    }
    const std::string tp = error({{"table", "remote-dram"}, {"mechanism", "remote-gather"},
                                  {"tensor_parallel", 2}});
    EXPECT_NE(tp.find("sim.tensor_parallel: 2"), std::string::npos) << tp;
    EXPECT_NE(tp.find("sim.table remote-dram"), std::string::npos) << tp;
}

// An HBM cache in front of the table: placement replay of the run's own lookups decides the
// hits, each step fetches only its misses, and the cache's HBM comes out of the KV cache.
TEST(Plan, HbmCacheFetchesOnlyMisses) {
    const nlohmann::json base = {{"backbone", "dense-4b"},
                                 {"engram", "paper-offload-100b"},
                                 {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 64}}}};
    nlohmann::json with_cache = base;
    with_cache["placement"] = {{"hbm_capacity", "20M rows"}, {"policy", "lru"}};
    const Plan plain = make_plan(resolve_run_config(base, "t"));
    const Plan cached = make_plan(resolve_run_config(with_cache, "t"));
    const double row = cached.engram.row_bytes();
    EXPECT_EQ(cached.hbm_cache_rows, 20'000'000u);
    const double cache_blocks = 20e6 * row / (256 * 144.0 * 1024);  // 3.2 GB of HBM
    EXPECT_GE(cached.num_kv_blocks, plain.num_kv_blocks - int64_t(std::ceil(cache_blocks)));
    EXPECT_LE(cached.num_kv_blocks, plain.num_kv_blocks - int64_t(std::floor(cache_blocks)));
    uint64_t hits = 0;
    for (const auto& st : cached.steps)
        for (const auto& f : st.fetch) {
            EXPECT_LE(f.hbm_hits, f.unique_rows);
            EXPECT_EQ(f.work.payload_bytes, double(f.unique_rows - f.hbm_hits) * row);
            hits += f.hbm_hits;
        }
    EXPECT_GT(hits, 0u);  // repeated N-grams across steps (random prompts repeat a few)
    nlohmann::json bad = with_cache;
    bad["placement"]["policy"] = "lur";
    try {
        make_plan(resolve_run_config(bad, "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "placement.policy: unknown policy 'lur'; known: belady, lfu, lru, s3fifo, "
                  "sa-lfu, sa-lru, sieve, static");
    }
    // the same cache in bytes (whole rows of the row size) and as a share of the table
    nlohmann::json bytes = with_cache;
    bytes["placement"]["hbm_capacity"] = std::to_string(20'000'000 * uint64_t(row)) + " B";
    EXPECT_EQ(make_plan(resolve_run_config(bytes, "t")).hbm_cache_rows, 20'000'000u);
    nlohmann::json pct = with_cache;
    pct["placement"]["hbm_capacity"] = "1%";
    const Plan p1 = make_plan(resolve_run_config(pct, "t"));
    EXPECT_EQ(p1.hbm_cache_rows, uint64_t(std::floor(0.01 * double(p1.table_rows))));
    // the old sim keys fail, naming the placement keys that replace them
    nlohmann::json old = base;
    old["sim"] = {{"hbm_cache_rows", "20M"}};
    try {
        resolve_run_config(old, "old.json");
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("old.json: sim.hbm_cache_rows: this key has moved; "
                                             "write placement.hbm_capacity"),
                  std::string::npos)
            << e.what();
    }
}

TEST(StepModel, EngramModuleKernelsAndProjectionWork) {
    const auto b = BackboneShape::from_json(config::load("dense-4b")["backbone"]);
    const auto e = EngramConfig::from_json(config::load("paper-offload-100b")["engram"]);
    const EngramGpuShape shape = EngramGpuShape::from_config(e);
    EXPECT_EQ(shape.d_mem, 1280);
    EXPECT_EQ(shape.heads, 16);
    const StepShape s{false, 100, 100, 50000, 0};
    const auto ops = engram_ops(shape, b, s);
    ASSERT_EQ(ops.size(), 12u);  // expand, W_K, W_V, 2 norms, dot, sigmoid, gate, conv path (3), add
    EXPECT_EQ(ops[0].bytes, 2 * 100.0 * 16 * 160);
    EXPECT_EQ(ops[1].flops, 2 * 100.0 * 2560 * 1280);
    EXPECT_EQ(ops[2].flops, 2 * 100.0 * 2560 * 1280);
    EngramGpuShape no_conv = shape;
    no_conv.short_conv = false;
    EXPECT_EQ(engram_ops(no_conv, b, s).size(), 9u);
    // Decode attention reads every KV entry once per layer.
    const auto layer = layer_ops(b, s);
    EXPECT_EQ(layer[4].kernel, "attention_decode");
    EXPECT_EQ(layer[4].bytes, 50000.0 * 2 * 1024 * 2 + 2 * 100.0 * 4096 * 2);
}

// A profile that measures the module's gate and conv as fused kernels prices each group once;
// without one every op keeps its roofline price (the GPU presets' predictions do not move).
TEST(StepModel, AProfiledGroupIsPricedOnceAndOnlyWhereAProfileMeasuresIt) {
    const auto b = BackboneShape::from_json(config::load("dense-4b")["backbone"]);
    const auto e = EngramConfig::from_json(config::load("paper-offload-100b")["engram"]);
    const EngramGpuShape shape = EngramGpuShape::from_config(e);
    const CostModel roofline({1e15, 3e12}, {});
    std::vector<OpShape> asked;
    const CostModel profiled({1e15, 3e12}, {}, [&](const OpShape& op) -> std::optional<double> {
        asked.push_back(op);
        if (op.kernel == "engram_gate") return 1e-3 * op.dims.at("tokens") / 100;
        if (op.kernel == "engram_conv_decode") return 2e-3;
        return std::nullopt;
    });
    for (const bool prefill : {false, true}) {
        const StepShape s{prefill, 100, prefill ? 1.0 : 100.0, 50000, 0};
        const auto ops = engram_ops(shape, b, s);
        double plain = 0, ungated = 0, unconv = 0;
        for (const auto& op : ops) {
            plain += roofline.seconds(op);
            if (op.group != "engram_gate") ungated += roofline.seconds(op);
            if (op.group != "engram_gate" && op.group.rfind("engram_conv", 0) != 0) unconv += roofline.seconds(op);
        }
        EXPECT_DOUBLE_EQ(total_seconds(roofline, ops), plain);
        asked.clear();
        const double t = total_seconds(profiled, ops);
        // Decode: gate 1 ms and conv 2 ms, each once, beside the other ops' roofline; prefill:
        // no engram_conv profile here, so the conv path keeps its roofline.
        if (prefill)
            EXPECT_NEAR(t, 1e-3 + ungated, 1e-15);
        else
            EXPECT_NEAR(t, 1e-3 + 2e-3 + unconv, 1e-15);
        EXPECT_EQ(std::count_if(asked.begin(), asked.end(), [](const OpShape& o) { return o.kernel == "engram_gate"; }), 1);
    }
}

// The dense MLP's activation (SiLU * up) is one profiled group: priced from a swiglu_act profile
// where a calibration measured one (the CPU engine's scalar exp), at the op's tokens and width;
// without one, at its roofline price, so the GPU presets' predictions do not move.
TEST(StepModel, TheMlpActivationIsPricedFromItsProfileWhereOneMeasuresIt) {
    const auto b = BackboneShape::from_json(config::load("dense-4b")["backbone"]);
    const CostModel roofline({1e15, 3e12}, {});
    std::vector<OpShape> asked;
    const CostModel profiled({1e15, 3e12}, {}, [&](const OpShape& op) -> std::optional<double> {
        if (op.kernel != "swiglu_act") return std::nullopt;
        asked.push_back(op);
        return 1e-6 * op.dims.at("tokens");
    });
    for (const bool prefill : {false, true}) {
        const StepShape s{prefill, 300, prefill ? 1.0 : 300.0, 50000, 0};
        const auto ops = layer_ops(b, s);
        double plain = 0, others = 0;
        int acts = 0;
        for (const auto& op : ops) {
            plain += roofline.seconds(op);
            if (op.group == "swiglu_act") {
                ++acts;
                EXPECT_EQ(op.bytes, 300.0 * b.intermediate * 3 * b.bytes_per_value);
            } else {
                others += roofline.seconds(op);
            }
        }
        EXPECT_EQ(acts, 1);
        EXPECT_DOUBLE_EQ(total_seconds(roofline, ops), plain);
        asked.clear();
        EXPECT_NEAR(total_seconds(profiled, ops), others + 300e-6, 1e-15);
        ASSERT_EQ(asked.size(), 1u);
        EXPECT_EQ(asked[0].dims.at("tokens"), 300.0);
        EXPECT_EQ(asked[0].dims.at("intermediate"), double(b.intermediate));
    }
}

// Warm caches (placement.warmup_requests): the run's HBM hits equal a brute-force LRU (a list
// and a hash map, written here) fed first the warm-up's lookups, then the run's: each step's
// distinct rows of each Engram layer in order of first occurrence, hits counted in the run only.
TEST(Plan, WarmUpFillsTheCachesBeforeTheRunAsABruteForceLruSays) {
    nlohmann::json cfg = {{"backbone", "dense-4b"},
                          {"engram", "paper-offload-100b"},
                          {"workload", {{"base", "handbook-en"}, {"num_requests", 12}}},
                          {"placement", {{"hbm_capacity", "30000"}, {"warmup_requests", 20}}}};
    const nlohmann::json resolved = resolve_run_config(cfg, "t");
    const Plan warm = make_plan(resolved);

    auto source_of = [&](uint64_t requests, uint64_t seed) {
        nlohmann::json w = resolved["workload"];
        w["num_requests"] = requests;
        w["seed"] = seed;
        const SchedulerConfig sc{resolved["sim"]["max_num_seqs"].get<int>(),
                                 resolved["sim"]["max_num_batched_tokens"].get<int>(),
                                 resolved["sim"]["kv_block_size"].get<int>(), warm.num_kv_blocks};
        return make_lookups(warm.engram, w, sc);
    };
    const uint64_t capacity = 30000;
    std::list<uint64_t> lru;  // front: most recent
    std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where;
    auto serve = [&](const StepBatch& b, std::vector<uint64_t>* hits_per_layer) {
        for (size_t l = 0; l < b.rows.size(); ++l) {
            std::unordered_set<uint64_t> seen;
            for (uint64_t key : b.rows[l]) {
                if (!seen.insert(key).second) continue;
                if (auto it = where.find(key); it != where.end()) {
                    lru.splice(lru.begin(), lru, it->second);
                    if (hits_per_layer) ++(*hits_per_layer)[l];
                    continue;
                }
                if (lru.size() == capacity) {
                    where.erase(lru.back());
                    lru.pop_back();
                }
                lru.push_front(key);
                where[key] = lru.begin();
            }
        }
    };
    StepBatch b;
    auto warm_up = source_of(20, 1000003);
    while (warm_up->next(b)) serve(b, nullptr);
    auto run = source_of(12, 0);
    size_t step = 0;
    uint64_t total_hits = 0;
    while (run->next(b)) {
        std::vector<uint64_t> hits(b.rows.size(), 0);
        serve(b, &hits);
        ASSERT_LT(step, warm.steps.size());
        for (size_t l = 0; l < hits.size(); ++l) {
            ASSERT_EQ(warm.steps[step].fetch[l].hbm_hits, hits[l]) << "step " << step;
            total_hits += hits[l];
        }
        ++step;
    }
    EXPECT_EQ(step, warm.steps.size());
    // The warm-up matters: the cold run hits less.
    nlohmann::json cold_cfg = cfg;
    cold_cfg["placement"].erase("warmup_requests");
    uint64_t cold_hits = 0;
    for (const auto& st : make_plan(resolve_run_config(cold_cfg, "t")).steps)
        for (const auto& f : st.fetch) cold_hits += f.hbm_hits;
    EXPECT_GT(total_hits, cold_hits);
    // A warm-up drawn with the run's own seed is the run itself: refused.
    cfg["placement"]["warmup_seed"] = 0;
    try {
        make_plan(resolve_run_config(cfg, "t"));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("placement.warmup_seed: 0 is workload.seed"),
                  std::string::npos)
            << e.what();
    }
}
