// The step model for MoE, MLA and mHC backbones (moe-27b) against closed forms: the parameter
// count of docs/presets.md, the MLA latent KV cache, the expected number of distinct experts
// against exact enumeration, the MoE and MLA op FLOPs and bytes, hc_mult 1 leaving the dense
// op lists exactly as they were, and an MoE decode step priced by its expert weight reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/cost_model.h"
#include "model/step_model.h"
#include "sim/timing/plan.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

BackboneShape moe27b() { return BackboneShape::from_json(config::load("moe-27b")["backbone"]); }

const OpShape& find_op(const std::vector<OpShape>& ops, const std::string& kernel) {
    const auto it = std::find_if(ops.begin(), ops.end(),
                                 [&](const OpShape& o) { return o.kernel == kernel; });
    if (it == ops.end()) throw std::runtime_error("no op " + kernel);
    return *it;
}

void expect_same_ops(const std::vector<OpShape>& got, const std::vector<OpShape>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].kernel, want[i].kernel) << i;
        EXPECT_EQ(got[i].dims, want[i].dims) << i;
        EXPECT_EQ(got[i].flops, want[i].flops) << i;  // bit-identical, not near
        EXPECT_EQ(got[i].bytes, want[i].bytes) << i;
        EXPECT_EQ(got[i].dtype, want[i].dtype) << i;
    }
}

}  // namespace

TEST(MoeBackbone, ParameterCountIsThePresetsDocArithmetic) {
    const auto b = moe27b();
    EXPECT_TRUE(b.mla);
    EXPECT_TRUE(b.moe);
    EXPECT_EQ(b.hc_mult, 4);
    // docs/presets.md, "moe-27b", line by line.
    const double q_a = 2560.0 * 768, q_a_norm = 768, q_b = 768.0 * 32 * (128 + 64);
    const double kv_a = 2560.0 * (512 + 64), kv_a_norm = 512, kv_b = 512.0 * 32 * (128 + 128);
    const double o = 32.0 * 128 * 2560;
    const double attention = q_a + q_a_norm + q_b + kv_a + kv_a_norm + kv_b + o;
    EXPECT_EQ(attention, 22'840'576.0);
    EXPECT_EQ(b.attention_params_per_layer(), attention);
    const double norms = 2 * 2560.0;
    const double mhc = 2 * (10'240.0 * 24 + 24 + 3 + 10'240);
    EXPECT_EQ(mhc, 512'054.0);
    EXPECT_EQ(b.mhc_params_per_layer(), mhc);
    const double router = 2560.0 * 72 + 72;
    const double expert = 3 * 2560.0 * 1536;
    EXPECT_EQ(expert, 11'796'480.0);
    const double all_experts = 74 * expert, active_experts = 8 * expert;
    const double vocab = 129'280.0 * 2560;
    const double total = 30 * (attention + norms + mhc + router + all_experts) + 2 * vocab + 2560;
    const double active = 30 * (attention + norms + mhc + router + active_experts) + vocab + 2560;
    EXPECT_EQ(b.params(), total);
    EXPECT_EQ(b.active_params(), active);
    EXPECT_NEAR(total / 1e9, 27.556, 0.0005);  // "27.556B"
    EXPECT_NEAR(active / 1e9, 3.868, 0.0005);  // "3.868B"
    EXPECT_EQ(b.weight_bytes(), 2 * total);
}

TEST(MoeBackbone, MlaCachesTheLatentOnly) {
    const auto b = moe27b();
    // layers x (kv_lora_rank + qk_rope_head_dim) x bytes: 30 x 576 x 2 = 33.75 KiB.
    EXPECT_EQ(b.kv_bytes_per_token(), 30.0 * (512 + 64) * 2);
    EXPECT_EQ(b.kv_bytes_per_token(), 33.75 * 1024);
}

TEST(MoeBackbone, InvalidMoeAndMlaShapesFailWithThePath) {
    auto sec = config::load("moe-27b")["backbone"];
    auto bad = sec;
    bad["mlp"]["top_k"] = 73;
    EXPECT_THROW(BackboneShape::from_json(bad), config::ConfigError);
    bad = sec;
    bad["mlp"]["intermediate_size"] = 12288;
    EXPECT_THROW(BackboneShape::from_json(bad), config::ConfigError);
    bad = sec;
    bad["attention"]["kv_lora_rank"] = 0;
    EXPECT_THROW(BackboneShape::from_json(bad), config::ConfigError);
}

// Exact expectation of |union of T uniformly chosen k-subsets of E|, by enumerating every
// T-tuple of k-subsets.
static double enumerate_distinct(int E, int k, int T) {
    std::vector<uint32_t> subsets;
    for (uint32_t m = 0; m < (1u << E); ++m)
        if (std::popcount(m) == k) subsets.push_back(m);
    const size_t n = subsets.size();
    size_t tuples = 1;
    for (int t = 0; t < T; ++t) tuples *= n;
    double sum = 0;
    for (size_t idx = 0; idx < tuples; ++idx) {
        uint32_t u = 0;
        for (size_t r = idx, t = 0; t < size_t(T); ++t, r /= n) u |= subsets[r % n];
        sum += std::popcount(u);
    }
    return sum / double(tuples);
}

TEST(MoeRouting, ExpectedDistinctExpertsEqualsExactEnumeration) {
    struct Case { int E, k, T; };
    for (const Case c : {Case{6, 2, 3}, Case{5, 3, 4}, Case{7, 1, 5}, Case{8, 4, 2}, Case{4, 2, 6},
                         Case{6, 6, 2}, Case{9, 2, 1}}) {
        const double exact = enumerate_distinct(c.E, c.k, c.T);
        EXPECT_NEAR(expected_distinct_experts(c.T, c.E, c.k), exact, 1e-12 * c.E)
            << "E " << c.E << " k " << c.k << " T " << c.T;
    }
    EXPECT_EQ(expected_distinct_experts(0, 72, 6), 0);
    EXPECT_DOUBLE_EQ(expected_distinct_experts(1, 72, 6), 6);
    EXPECT_GT(expected_distinct_experts(512, 72, 6), 72 - 1e-9);
    double prev = 0;
    for (int T = 1; T <= 64; ++T) {  // strictly increasing, never above E
        const double d = expected_distinct_experts(T, 72, 6);
        EXPECT_GT(d, prev);
        EXPECT_LE(d, 72);
        prev = d;
    }
}

TEST(StepModelMoe, MoeOpsMatchTheClosedForms) {
    const auto b = moe27b();
    for (const double T : {1.0, 37.0, 4096.0}) {
        const auto ops = moe_ops(b, T);
        const double h = 2560, E = 72, k = 6, I = 1536, bpv = 2;
        const OpShape& g = find_op(ops, "moe_grouped_gemm");
        EXPECT_EQ(g.flops, T * k * 3 * 2 * h * I);
        const double distinct = 72 * (1 - std::pow(1 - 6.0 / 72, T));
        EXPECT_DOUBLE_EQ(g.bytes, (distinct * 3 * h * I + 2 * T * k * h) * bpv);
        EXPECT_EQ(g.dims.at("experts"), E);
        EXPECT_EQ(g.dims.at("top_k"), k);
        EXPECT_EQ(g.dims.at("tokens"), T);
        // Router GEMM, top-k, align, permute, shared experts, grouped, combine.
        ASSERT_EQ(ops.size(), 9u);
        EXPECT_EQ(ops[0].kernel, "gemm");
        EXPECT_EQ(ops[0].flops, 2 * T * E * h);
        EXPECT_EQ(ops[1].kernel, "router_topk");
        EXPECT_EQ(ops[2].kernel, "moe_align");
        EXPECT_EQ(ops[3].kernel, "moe_permute");
        EXPECT_EQ(ops[3].bytes, (T * h + T * k * h) * bpv + T * k * 4);
        EXPECT_EQ(ops[4].flops, 2 * T * (2 * 2 * I) * h);  // shared gate + up: 2 x 1536 wide
        EXPECT_EQ(ops[6].flops, 2 * T * h * (2 * I));      // shared down
        EXPECT_EQ(ops[8].kernel, "moe_combine");
        EXPECT_EQ(ops[8].flops, 2 * T * k * h + T * h);
        // Every GEMM-family FLOP of the block: router + shared (3 x 2 x h x 2I) + routed.
        double gemm_flops = 0;
        for (const auto& op : ops)
            if (op.kernel == "gemm" || op.kernel == "moe_grouped_gemm") gemm_flops += op.flops;
        EXPECT_DOUBLE_EQ(gemm_flops, 2 * T * h * (E + 3 * 2 * I + k * 3 * I));
    }
}

TEST(StepModelMla, AttentionFlopsAndBytes) {
    const auto b = moe27b();
    const double H = 32, L = 512, R = 64, dn = 128, dv = 128, bpv = 2;
    // Prefill: two prompts of 100 and 300 tokens.
    const double pairs = 100.0 * 101 / 2 + 300.0 * 301 / 2;
    const auto pre = layer_ops(b, StepShape{true, 400, 2, 0, pairs});
    const OpShape& ap = find_op(pre, "attention_prefill");
    EXPECT_EQ(ap.flops, 2 * H * (dn + R) * pairs + 2 * H * dv * pairs);
    EXPECT_EQ(ap.bytes, 400 * H * (2 * (dn + R) + 2 * dv) * bpv);
    EXPECT_EQ(ap.dims.at("head_dim"), dn + R);
    // Decode: 64 sequences over 50,000 cached tokens; absorbed form over the latent.
    const auto dec = layer_ops(b, StepShape{false, 64, 64, 50000, 0});
    const OpShape& ad = find_op(dec, "attention_decode");
    EXPECT_EQ(ad.bytes, 50000 * (L + R) * bpv + 64 * H * (2 * L + R) * bpv);
    EXPECT_EQ(ad.flops, 2 * H * (L + R) * 50000 + 2 * H * L * 50000);
    EXPECT_EQ(ad.dims.at("kv_heads"), 1);
    // Projection FLOPs, prefill form: q_a + kv_a (2560 -> 768 + 576), q_b (768 -> 32 x 192),
    // kv_b (512 -> 32 x 256), o (32 x 128 -> 2560).
    double proj = 0;
    int found = 0;
    for (const auto& op : pre) {
        if (op.kernel != "gemm") continue;
        const double n = op.dims.at("n"), k = op.dims.at("k");
        if ((n == 768 + L + R && k == 2560) || (n == H * (dn + R) && k == 768) ||
            (n == H * (dn + dv) && k == L) || (n == 2560 && k == H * dv))
            proj += op.flops, ++found;
    }
    EXPECT_EQ(found, 4);
    EXPECT_EQ(proj, 2 * 400 * (2560 * (768 + L + R) + 768 * H * (dn + R) + L * H * (dn + dv) +
                               H * dv * 2560));
    // Decode replaces kv_b by the absorbed W_UK and W_UV products.
    double absorbed = 0;
    for (const auto& op : dec)
        if (op.dims.count("batch")) absorbed += op.flops;
    EXPECT_EQ(absorbed, 2 * 64 * H * dn * L + 2 * 64 * H * L * dv);
}

TEST(StepModelMhc, HcMultOneLeavesTheDenseOpsExactlyAsBefore) {
    const auto b = BackboneShape::from_json(config::load("dense-8b")["backbone"]);
    ASSERT_EQ(b.hc_mult, 1);
    for (const StepShape& s : {StepShape{true, 3000, 3, 0, 1.5e6}, StepShape{false, 200, 200, 9e4, 0}}) {
        // The dense op list as the step model has always built it.
        const double T = s.tokens, h = 4096, bpv = 2, q = 32 * 128.0, kv = 8 * 128.0, I = 12288;
        std::vector<OpShape> want;
        want.push_back(elementwise_op(T * h, 2, 2, bpv, 4));
        want.push_back(gemm_op(T, q + 2 * kv, h, bpv));
        want.push_back(elementwise_op(T * (q + kv), 1, 1, bpv, 8));
        want.push_back(elementwise_op(T * 2 * kv, 1, 1, bpv, 0));
        OpShape attn;
        if (s.prefill) {
            attn.kernel = "attention_prefill";
            attn.dims = {{"tokens", T}, {"heads", 32}, {"head_dim", 128}};
            attn.flops = 4 * q * s.causal_pairs;
            attn.bytes = T * (2 * q + 2 * kv) * bpv;
        } else {
            attn.kernel = "attention_decode";
            attn.dims = {{"seqs", s.seqs}, {"context", s.context_tokens}, {"heads", 32},
                         {"kv_heads", 8}, {"head_dim", 128}};
            attn.flops = 4 * q * s.context_tokens;
            attn.bytes = s.context_tokens * 2 * kv * bpv + 2 * T * q * bpv;
        }
        want.push_back(attn);
        want.push_back(gemm_op(T, h, q, bpv));
        want.push_back(elementwise_op(T * h, 2, 2, bpv, 4));
        want.push_back(gemm_op(T, 2.0 * I, h, bpv));
        want.push_back(elementwise_op(T * I, 2, 1, bpv, 4));
        want.push_back(gemm_op(T, h, I, bpv));
        expect_same_ops(layer_ops(b, s), want);
        expect_same_ops(embed_ops(b, s), {elementwise_op(T * h, 1, 1, bpv, 0)});
        const double S = s.seqs;
        expect_same_ops(head_ops(b, s), {elementwise_op(S * h, 2, 1, bpv, 4),
                                         gemm_op(S, 151936, h, bpv),
                                         elementwise_op(S * 151936.0, 2, 0, 4, 4)});
    }
    EXPECT_EQ(b.activation_values_per_token(), 4096 + 2 * 1024 + 2 * 12288 + 2 * 4096.0);
}

TEST(StepModelMhc, HcMultAddsOnlyTheMixingMapsAroundEachSublayer) {
    auto sec = config::load("moe-27b")["backbone"];
    const auto b4 = BackboneShape::from_json(sec);
    sec["hc_mult"] = 1;
    const auto b1 = BackboneShape::from_json(sec);
    const StepShape s{false, 128, 128, 128 * 700.0, 0};
    const auto ops4 = layer_ops(b4, s), ops1 = layer_ops(b1, s);
    // hc_mult 1: 1 residual + norm per sublayer; 4: 4 pre ops + 1 post op per sublayer.
    ASSERT_EQ(ops4.size(), ops1.size() - 2 + 2 * 5);
    // Everything but the residual / mixing ops is the same. Layouts: hc_mult 1 is
    // [pre, attention (A ops), pre, MoE]; hc_mult 4 is [4 pre, A, post, 4 pre, MoE, post].
    const size_t A = ops1.size() - 2 - 9;
    std::vector<OpShape> core4(ops4.begin() + 4, ops4.begin() + 4 + long(A));
    core4.insert(core4.end(), ops4.begin() + 4 + long(A) + 1 + 4, ops4.end() - 1);
    std::vector<OpShape> core1(ops1.begin() + 1, ops1.begin() + 1 + long(A));
    core1.insert(core1.end(), ops1.begin() + 2 + long(A), ops1.end());
    expect_same_ops(core4, core1);
    EXPECT_EQ(core1.back().kernel, "moe_combine");
    EXPECT_EQ(core1[A - 1].kernel, "gemm");  // the output projection closes the attention
    // The mixing maps: per sublayer, coefficient GEMM over the 4 x 2560 stream, the pre-mix
    // (reads 4 x 2560, writes 2560) and the post / residual mix (reads 5 x 2560, writes 4 x 2560).
    const double T = 128, Mh = 4 * 2560.0, bpv = 2;
    EXPECT_EQ(ops4[0].kernel, "gemm");
    EXPECT_EQ(ops4[0].dims.at("n"), 24);
    EXPECT_EQ(ops4[0].dims.at("k"), Mh);
    EXPECT_EQ(ops4[2].bytes, T * (Mh + 2560) * bpv);
    EXPECT_EQ(ops4.back().bytes, T * (2 * Mh + 2560) * bpv);
    // The embedding writes 4 branches; the head merges them first.
    EXPECT_EQ(embed_ops(b4, s)[0].bytes, T * 2560 * (1 + 4) * bpv);
    EXPECT_EQ(head_ops(b4, s).size(), head_ops(b1, s).size() + 1);
}

TEST(StepModelMoe, SmallBatchDecodeIsPricedByExpertWeightReads) {
    // h800-pcie5 peaks, default efficiencies (sim section defaults), roofline only.
    const CostModel cost({989.4e12, 3.35e12}, {});
    const auto b = moe27b();
    const double expert_bytes = 3 * 2560.0 * 1536 * 2;
    const double bw = 3.35e12 * 0.8;
    double prev_layer = 0, prev_grouped = 0;
    for (const int T : {1, 2, 4, 8, 16, 32, 64}) {
        // The cached context stays fixed, so only the routed tokens change between steps.
        const StepShape s{false, double(T), double(T), 8192, 0};
        const auto ops = layer_ops(b, s);
        const OpShape& g = find_op(ops, "moe_grouped_gemm");
        const double d = expected_distinct_experts(T, 72, 6);
        // Memory-bound: the roofline is the bytes term, which is the touched experts' weights
        // plus T x 6 permuted rows in and out.
        EXPECT_LT(g.flops / (989.4e12 * 0.7), g.bytes / bw);
        const double tg = cost.seconds(g);
        EXPECT_DOUBLE_EQ(tg, (d * expert_bytes + 2.0 * T * 6 * 2560 * 2) / bw + 3e-6);
        const double layer = total_seconds(cost, ops);
        // Monotone in the distinct experts, and the step grows by their weight reads.
        EXPECT_GT(tg, prev_grouped);
        EXPECT_GT(layer, prev_layer);
        if (prev_layer > 0) {
            const double d_prev = expected_distinct_experts(T / 2, 72, 6);
            const double weight_growth = (d - d_prev) * expert_bytes / bw;
            EXPECT_GT(layer - prev_layer, 0.9 * weight_growth);
            EXPECT_LT(layer - prev_layer, 1.25 * weight_growth);
        }
        // The largest op of the layer; above half of it once 4 or more tokens decode.
        for (const auto& op : ops) EXPECT_LE(cost.seconds(op), tg);
        if (T >= 4) {
            EXPECT_GT(tg / layer, 0.5) << T;
        }
        prev_layer = layer, prev_grouped = tg;
    }
}

TEST(PlanMoe, KvCacheSizingUsesTheLatentAndTheMoeActivations) {
    const auto cfg = resolve_run_config(
        {{"backbone", "moe-27b"}, {"engram", "engram-27b"},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 8}}}},
        "test");
    const Plan p = make_plan(cfg);
    EXPECT_EQ(p.kv_bytes_per_token, 30.0 * 576 * 2);
    // Largest live tensors of a 16,384-token prefill, per token: MLA q, k (32 x 192 each) and
    // v (32 x 128); 8 experts' gate/up (2 x 1536 each) and 6 permuted rows in and out; the
    // 4 x 2560 stream twice.
    const double per_token = (2 * 32 * 192 + 32 * 128) + (2 * 8 * 1536 + 2 * 6 * 2560) +
                             2 * 4 * 2560.0;
    const double staging = 16384.0 * 16 * 160;  // one full prefill's rows: 16 heads x 160 B
    const double act = 16384.0 * per_token * 2 + 512.0 * 129280 * 4 + staging;
    const double engram_weights = 2 * 1280.0 * 2560 * (4 + 1) * 2;  // W_K x 4 + W_V, 2 layers
    const double weights = moe27b().params() * 2 + engram_weights;
    EXPECT_DOUBLE_EQ(p.weight_bytes, weights);
    EXPECT_EQ(p.num_kv_blocks, int64_t(std::floor((80e9 * 0.9 - weights - act) /
                                                  (256 * 30.0 * 576 * 2))));
    ASSERT_FALSE(p.steps.empty());
    for (const auto& st : p.steps) {
        EXPECT_GT(st.layer_s, 0);
        EXPECT_EQ(st.engram_gpu_s.size(), 2u);
    }
}
