// Tensor parallelism against closed forms: column- and row-parallel GEMMs, a dense layer's
// pieces and all-reduces, the head's vocab-parallel LM head and gather, the Engram module's
// sharded heads and all-gather, MoE and unknown ops; per-GPU weights and KV cache (capacity in
// tokens grows with TP); the platform's nodes, links and routes; errors naming
// sim.tensor_parallel; and throughput with TP = 2 above TP = 1 on a decode-heavy workload.
#include <gtest/gtest.h>

#include <cmath>

#include "model/config.h"
#include "model/cost_model.h"
#include "model/step_model.h"
#include "model/tensor_parallel.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "sim/timing/platform.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

BackboneShape dense8b() {
    return BackboneShape::from_json(config::load("dense-8b")["backbone"]);
}

nlohmann::json run_doc(int tp, int count = 8) {
    return {{"backbone", "dense-8b"},
            {"hardware", {{"base", "h100-sxm"}, {"gpu", {{"count", count}}}}},
            {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 8}}},
            {"sim", {{"tensor_parallel", tp}}}};
}

double sum_flops(const std::vector<TpPiece>& pieces) {
    double f = 0;
    for (const auto& p : pieces)
        for (const auto& op : p.ops) f += op.flops;
    return f;
}

}  // namespace

TEST(TensorParallel, ColumnAndRowParallelGemmsDivideOneDimension) {
    const double m = 512, n = 6144, k = 4096, bpv = 2;
    const OpShape g = gemm_op(m, n, k, bpv);
    for (int tp : {2, 4, 8}) {
        const OpShape c = TensorParallel::column_parallel(g, tp);
        EXPECT_DOUBLE_EQ(c.flops, 2 * m * n * k / tp);
        EXPECT_DOUBLE_EQ(c.bytes, (m * k + k * n / tp + m * n / tp) * bpv);
        EXPECT_DOUBLE_EQ(c.dims.at("n"), n / tp);
        const OpShape r = TensorParallel::row_parallel(g, tp);
        EXPECT_DOUBLE_EQ(r.flops, 2 * m * n * k / tp);
        EXPECT_DOUBLE_EQ(r.bytes, (m * k / tp + k / tp * n + m * n) * bpv);
        EXPECT_DOUBLE_EQ(r.dims.at("k"), k / tp);
    }
}

TEST(TensorParallel, ADenseLayerHasTwoAllReducesAndDividedWork) {
    const BackboneShape b = dense8b();
    const StepShape s{false, 512, 512, 512.0 * 700, 0};
    const auto ops = layer_ops(b, s);
    const TensorParallel one{1, b, {}};
    const auto whole = one.shard(ops, OpList::Layer, s);
    ASSERT_EQ(whole.size(), 1u);
    EXPECT_EQ(whole[0].after.kind, Collective::Kind::None);
    for (int tp : {2, 4, 8}) {
        const TensorParallel t{tp, b, {}};
        const auto pieces = t.shard(ops, OpList::Layer, s);
        // [norm, QKV, qk-norm, KV store, attention, o_proj] AR [norm, gate/up, SiLU, down] AR
        ASSERT_EQ(pieces.size(), 2u) << tp;
        for (const auto& p : pieces) {
            EXPECT_EQ(p.after.kind, Collective::Kind::AllReduce);
            EXPECT_DOUBLE_EQ(p.after.bytes, 512.0 * 4096 * 2);
        }
        // Everything but the two replicated residual + RMSNorm ops is divided by TP.
        const double norms = ops[0].flops + ops[6].flops;
        double total = 0;
        for (const auto& op : ops) total += op.flops;
        EXPECT_NEAR(sum_flops(pieces), (total - norms) / tp + norms, 1e-6 * total) << tp;
        EXPECT_DOUBLE_EQ(pieces[0].ops[4].flops, ops[4].flops / tp);  // attention heads / TP
        EXPECT_DOUBLE_EQ(pieces[0].ops[4].bytes, ops[4].bytes / tp);  // KV read / TP
        EXPECT_DOUBLE_EQ(pieces[0].ops[4].dims.at("kv_heads"), 8.0 / tp);
        EXPECT_EQ(pieces[0].ops[0].bytes, ops[0].bytes);              // replicated norm
    }
}

TEST(TensorParallel, EmbedHeadAndEngramCollectives) {
    const BackboneShape b = dense8b();
    const EngramConfig ec = EngramConfig::from_json(config::load("paper-offload-100b")["engram"]);
    const EngramGpuShape e = EngramGpuShape::from_config(ec);
    const StepShape s{true, 4096, 8, 0, 8 * 512.0 * 513 / 2};
    const TensorParallel t{4, b, e};
    const auto embed = t.shard(embed_ops(b, s), OpList::Embed, s);
    ASSERT_EQ(embed.size(), 1u);
    EXPECT_EQ(embed[0].after.kind, Collective::Kind::AllReduce);
    EXPECT_DOUBLE_EQ(embed[0].after.bytes, 4096.0 * 4096 * 2);
    const auto head = t.shard(head_ops(b, s), OpList::Head, s);
    ASSERT_EQ(head.size(), 2u);  // [norm, LM head / TP] gather [sampling on GPU 0]
    EXPECT_EQ(head[0].after.kind, Collective::Kind::Gather);
    EXPECT_DOUBLE_EQ(head[0].after.bytes, 8.0 * 151936 * 2);
    EXPECT_DOUBLE_EQ(head[0].ops[1].flops, 2.0 * 8 * 151936 * 4096 / 4);
    EXPECT_EQ(head[1].ops[0].flops, head_ops(b, s)[2].flops);
    const auto eops = engram_ops(e, b, s);
    const auto engram = t.shard(eops, OpList::Engram, s);
    ASSERT_EQ(engram.size(), 2u);  // [expand own heads] all-gather [the rest, replicated]
    EXPECT_EQ(engram[0].after.kind, Collective::Kind::AllGather);
    EXPECT_DOUBLE_EQ(engram[0].after.bytes, 4096.0 * e.d_mem * 2);
    EXPECT_DOUBLE_EQ(engram[0].ops[0].bytes, eops[0].bytes / 4);
    EXPECT_EQ(engram[1].ops.size(), eops.size() - 1);
    EXPECT_EQ(engram[1].ops[0].flops, eops[1].flops);  // W_K replicated
}

TEST(TensorParallel, ExpertsAreDividedAndUnknownOpsReplicated) {
    const BackboneShape b = dense8b();
    const StepShape s{false, 256, 256, 0, 0};
    OpShape router;
    router.kernel = "router_topk", router.flops = 10, router.bytes = 20;
    OpShape experts;
    experts.kernel = "moe_grouped_gemm", experts.flops = 800, experts.bytes = 400;
    experts.dims = {{"experts", 64}};
    OpShape odd;
    odd.kernel = "mystery", odd.flops = 7, odd.bytes = 9;
    const std::vector<OpShape> ops = {elementwise_op(256 * 4096, 2, 2, 2, 4), router, experts,
                                      odd};
    const auto pieces = TensorParallel{4, b, {}}.shard(ops, OpList::Layer, s);
    ASSERT_EQ(pieces.size(), 2u);  // [norm, router, experts / 4] AR [mystery]
    EXPECT_EQ(pieces[0].ops[1].flops, 10);
    EXPECT_EQ(pieces[0].ops[2].flops, 200);
    EXPECT_EQ(pieces[0].ops[2].dims.at("experts"), 16);
    EXPECT_EQ(pieces[0].after.kind, Collective::Kind::AllReduce);
    EXPECT_EQ(pieces[1].ops[0].flops, 7);
}

// The moe-27b backbone (MLA, 72 routed + 2 shared experts, mHC 4): each layer still has two
// all-reduces (attention output; shared + routed experts together), the routed experts and
// their weights are divided, the router and the mHC maps replicated, the MLA latent cache whole.
TEST(TensorParallel, MlaMoeLayerShardsByRole) {
    // A shipped preset must resolve: a ConfigError here fails the test (it is not a skip).
    const BackboneShape b = BackboneShape::from_json(config::load("moe-27b")["backbone"]);
    for (bool prefill : {true, false}) {
        const StepShape s{prefill, 512, prefill ? 1.0 : 512.0, prefill ? 0 : 512.0 * 700,
                          prefill ? 512.0 * 513 / 2 : 0};
        const auto ops = layer_ops(b, s);
        const TensorParallel t{4, b, {}};
        const auto pieces = t.shard(ops, OpList::Layer, s);
        int reduces = 0;
        for (const auto& p : pieces)
            if (p.after.kind == Collective::Kind::AllReduce) ++reduces;
        EXPECT_EQ(reduces, 2) << prefill;
        double grouped = 0, grouped_tp = 0, router = 0, router_tp = 0;
        for (const auto& op : ops) {
            if (op.kernel == "moe_grouped_gemm") grouped += op.flops;
            if (op.kernel == "router_topk") router += op.flops;
        }
        for (const auto& p : pieces)
            for (const auto& op : p.ops) {
                if (op.kernel == "moe_grouped_gemm") grouped_tp += op.flops;
                if (op.kernel == "router_topk") router_tp += op.flops;
            }
        EXPECT_DOUBLE_EQ(grouped_tp, grouped / 4);
        EXPECT_DOUBLE_EQ(router_tp, router);
        EXPECT_LT(sum_flops(pieces), 0.5 * [&] {
            double f = 0;
            for (const auto& op : ops) f += op.flops;
            return f;
        }());
    }
    EXPECT_DOUBLE_EQ((TensorParallel{4, b, {}}.kv_bytes_per_token_per_gpu()),
                     b.kv_bytes_per_token());
}

TEST(TensorParallel, KvCapacityGrowsWithTp) {
    const BackboneShape b = dense8b();
    const double q = 4096, kv = 1024, inter = 12288, h = 4096, vocab = 151936;
    const double params = 8'190'735'360.0;
    const double norms = 36 * (2 * h + 2 * 128) + h;
    int64_t prev = 0;
    for (int tp : {1, 2, 4, 8}) {
        const Plan p = make_plan(resolve_run_config(run_doc(tp), "test"));
        const double weights = tp == 1 ? params * 2 : ((params - norms) / tp + norms) * 2;
        const double act = 16384.0 * (q / tp + 2 * kv / tp + 2 * inter / tp + 2 * h) * 2 +
                           512.0 * vocab * 4;
        const double kv_token = 36 * 2 * 1024 * 2.0 / tp;
        EXPECT_DOUBLE_EQ(p.weight_bytes, weights) << tp;
        EXPECT_DOUBLE_EQ(p.kv_bytes_per_token, kv_token) << tp;
        EXPECT_EQ(p.num_kv_blocks, int64_t(std::floor((80e9 * 0.9 - weights - act) /
                                                      (256 * kv_token))))
            << tp;
        EXPECT_GT(p.num_kv_blocks, prev) << tp;  // tokens of KV per replica: blocks x 256
        prev = p.num_kv_blocks;
    }
    const TensorParallel two{2, b, {}};
    EXPECT_DOUBLE_EQ(two.kv_bytes_per_token_per_gpu(), b.kv_bytes_per_token() / 2);
}

// placement.hbm_capacity is the TP group's: each GPU holds the rows of its own Engram heads.
TEST(TensorParallel, EachGpuHoldsItsShareOfTheHbmCache) {
    for (int tp : {1, 2, 4}) {
        nlohmann::json doc = run_doc(tp);
        doc["engram"] = "paper-offload-100b";
        const Plan none = make_plan(resolve_run_config(doc, "test"));
        doc["placement"] = {{"hbm_capacity", "4M rows"}};
        const Plan cached = make_plan(resolve_run_config(doc, "test"));
        EXPECT_EQ(cached.hbm_cache_rows, 4'000'000u);
        EXPECT_DOUBLE_EQ(cached.weight_bytes - none.weight_bytes, 4e6 * 160 / tp) << tp;
    }
}

TEST(TensorParallel, PlatformHasAGpuLinkPairEachSharedSwitchesAndAnNvswitch) {
    const auto hw = config::resolve({{"hardware", {{"base", "h100-sxm"},
                                                   {"gpu", {{"count", 8}}}}}},
                                    "t")["hardware"];
    const Platform one = Platform::from_hardware(hw);
    std::vector<std::string> names;
    for (const auto& n : one.nodes()) names.push_back(n.name);
    EXPECT_EQ(names, (std::vector<std::string>{"gpu0", "host", "nvme0", "nvme1", "nvme2",
                                               "nvme3", "nvme4", "nvme5", "nvme6", "nvme7"}));
    EXPECT_EQ(one.links()[0].name, "pcie0.h2d");
    EXPECT_EQ(one.links()[1].name, "pcie0.d2h");
    const Platform p = Platform::from_hardware(hw, PcieModel{}, 4);
    EXPECT_EQ(p.gpus().size(), 4u);
    const int host = p.node("host"), g0 = p.node("gpu0"), g1 = p.node("gpu1"),
              g3 = p.node("gpu3");
    auto route_names = [&](int a, int b) {
        std::vector<std::string> out;
        for (int l : p.route(a, b)) out.push_back(p.links()[size_t(l)].name);
        return out;
    };
    EXPECT_EQ(route_names(host, g1), (std::vector<std::string>{"pcie_switch0.h2d", "pcie1.h2d"}));
    EXPECT_EQ(route_names(g3, host), (std::vector<std::string>{"pcie3.d2h", "pcie_switch1.d2h"}));
    // GPU to GPU over NVLink, never through the PCIe switch they share.
    EXPECT_EQ(route_names(g0, g1), (std::vector<std::string>{"nvlink0.up", "nvlink1.down"}));
    EXPECT_DOUBLE_EQ(p.transfer_s(p.route(host, g1), 63.02e6), 1e-6 + 63.02e6 / 63.02e9);
    EXPECT_DOUBLE_EQ(p.transfer_s(p.route(g0, g1), 450e6), 1e-6 + 450e6 / 450e9);
    // No switch: a direct link pair per GPU.
    const auto direct = config::resolve({{"hardware", {{"base", "h100-sxm"},
                                                       {"gpu", {{"count", 8}}},
                                                       {"host_link", {{"gpus_per_switch", 1}}}}}},
                                        "t")["hardware"];
    const Platform d = Platform::from_hardware(direct, PcieModel{}, 2);
    EXPECT_EQ(d.route(d.node("host"), d.node("gpu1")).size(), 1u);
}

TEST(TensorParallel, InvalidDegreesNameTheKey) {
    for (int tp : {0, 9}) {
        try {
            make_plan(resolve_run_config(run_doc(tp), "t"));
            FAIL() << tp;
        } catch (const config::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find("sim.tensor_parallel"), std::string::npos)
                << e.what();
        }
    }
    try {
        make_plan(resolve_run_config(run_doc(3), "t"));  // 32 heads
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("sim.tensor_parallel"), std::string::npos);
    }
}

// A sanity property, not a golden number: on a decode-heavy workload (short prompts, long
// outputs) two GPUs serve more tokens per second than one.
TEST(TensorParallel, TwoGpusServeDense8bFasterThanOne) {
    auto doc = run_doc(1);
    doc["workload"] = {{"base", "nano-vllm-512"},
                       {"num_requests", 64},
                       {"prompt_len", {{"min", 64}, {"max", 128}}},
                       {"output_len", {{"min", 64}, {"max", 1024}}}};
    const RunOutcome one = run_config(resolve_run_config(doc, "tp1"));
    doc["sim"]["tensor_parallel"] = 2;
    const RunOutcome two = run_config(resolve_run_config(doc, "tp2"));
    EXPECT_GT(two.metrics.throughput_tok_per_s, one.metrics.throughput_tok_per_s);
    EXPECT_EQ(two.metrics.tensor_parallel, 2);
    ASSERT_EQ(two.metrics.per_gpu.size(), 2u);
    EXPECT_GT(two.metrics.per_gpu[0].nvlink_up, 0);
}
