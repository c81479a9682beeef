// The vllm-v1 engine in the plan: sim.engine picks it, its steps are the chunked scheduler's, a
// mixed step's shape and attention are worked here in closed form, and a request's first token
// is the step its last prefill chunk ran in.
#include <gtest/gtest.h>

#include <algorithm>

#include "model/config.h"
#include "model/cost_model.h"
#include "model/step_model.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan.h"
#include "sim/timing/plan_stages.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

json v1_config(int budget, int requests) {
    return resolve_run_config({{"backbone", "dense-4b"},
                               {"engram", "paper-offload-100b"},
                               {"workload", {{"base", "nano-vllm-512"}, {"num_requests", requests}}},
                               {"sim", {{"engine", "vllm-v1"}, {"max_num_batched_tokens", budget}}}},
                              "test");
}

}  // namespace

// A decode at position 99, a whole 50-token prompt and a 20-token chunk after 100 earlier
// tokens: 70 prefill tokens, 100 earlier KV entries, 50 x 51 / 2 + 20 x 100 + 20 x 21 / 2 = 3485
// query-key pairs, one decode attending to 100 entries.
TEST(EngineVllmV1, AMixedStepsShapeSplitsPrefillFromDecodes) {
    Step st;
    st.prefill = true;
    st.slices = {{0, 99, 1, true, true}, {1, 0, 50, false, true}, {2, 100, 20, false, false}};
    st.tokens = 71;
    st.context_tokens = 100 + 50 + 120;
    const StepShape s = step_shape(st);
    EXPECT_TRUE(s.prefill);
    EXPECT_EQ(s.tokens, 71);
    EXPECT_EQ(s.seqs, 3);
    EXPECT_EQ(s.prefill_tokens, 70);
    EXPECT_EQ(s.prefill_prior, 100);
    EXPECT_EQ(s.causal_pairs, 3485);
    EXPECT_EQ(s.decode_seqs, 1);
    EXPECT_EQ(s.decode_context, 100);
    // A whole-prompt step keeps nano-vLLM's shape: n (n + 1) / 2 pairs, nothing earlier.
    Step whole;
    whole.prefill = true;
    whole.slices = {{0, 0, 10}, {1, 0, 4}};
    whole.tokens = 14;
    const StepShape w = step_shape(whole);
    EXPECT_EQ(w.causal_pairs, 55 + 10);
    EXPECT_EQ(w.prefill_prior, 0);
    EXPECT_EQ(w.decode_seqs, 0);
}

// GQA: the mixed step's GEMMs run over all 71 tokens; its attention is a prefill over the 70
// prefill tokens (4 q pairs FLOPs, the earlier KV read again) plus a decode over the one
// sequence, and costs what the two pure steps' attentions cost together (roofline).
TEST(EngineVllmV1, AMixedStepsAttentionIsItsPrefillAndDecodeParts) {
    const json bbj = resolve_run_config({{"backbone", "dense-4b"}}, "test")["backbone"];
    const BackboneShape b = BackboneShape::from_json(bbj);
    StepShape mixed{true, 71, 3, 270, 3485};
    mixed.prefill_tokens = 70, mixed.prefill_prior = 100;
    mixed.decode_seqs = 1, mixed.decode_context = 100;
    const auto ops = layer_ops(b, mixed);
    const double q = double(b.n_heads) * b.head_dim, kv = double(b.n_kv_heads) * b.head_dim;
    const double bpv = b.bytes_per_value;
    const OpShape* pre = nullptr;
    const OpShape* dec = nullptr;
    for (const OpShape& op : ops) {
        if (op.kernel == "attention_prefill") pre = &op;
        if (op.kernel == "attention_decode") dec = &op;
        if (op.kernel == "gemm") {
            EXPECT_EQ(op.dims.at("m"), 71) << "every GEMM runs all tokens";
        }
    }
    ASSERT_TRUE(pre && dec);
    EXPECT_EQ(pre->dims.at("tokens"), 70);
    EXPECT_DOUBLE_EQ(pre->flops, 4 * q * 3485);
    EXPECT_DOUBLE_EQ(pre->bytes, 70 * (2 * q + 2 * kv) * bpv + 100 * 2 * kv * bpv);
    EXPECT_EQ(dec->dims.at("seqs"), 1);
    EXPECT_EQ(dec->dims.at("context"), 100);
    EXPECT_DOUBLE_EQ(dec->flops, 4 * q * 100);
    EXPECT_DOUBLE_EQ(dec->bytes, 100 * 2 * kv * bpv + 2 * q * bpv);

    const CostModel cost({.flops_per_s = 989e12, .hbm_bytes_per_s = 3.35e12},
                         {.gemm = 0.7, .attention = 0.5, .memory = 0.8, .kernel_floor_s = 3e-6});
    auto attention_s = [&](const StepShape& s) {
        double t = 0;
        for (const OpShape& op : layer_ops(b, s))
            if (op.kernel.rfind("attention", 0) == 0) t += cost.seconds(op);
        return t;
    };
    StepShape pre_only{true, 70, 2, 170, 3485};
    pre_only.prefill_tokens = 70, pre_only.prefill_prior = 100;
    const StepShape dec_only{false, 1, 1, 100, 0};
    EXPECT_DOUBLE_EQ(attention_s(mixed), attention_s(pre_only) + attention_s(dec_only));
}

// sim.engine vllm-v1: the plan is served by it, its steps are the chunked scheduler's (some
// mixed), and each request's first token is the step where its prompt's last chunk ran.
TEST(EngineVllmV1, SimEnginePicksItAndFirstTokensFollowTheLastChunk) {
    const json cfg = v1_config(1024, 24);
    const Plan plan = make_plan(cfg);
    EXPECT_STREQ(plan.engine->name(), "vllm-v1");
    const Engine& eng = engine("vllm-v1");
    const SchedulerConfig sc = eng.scheduler_config(cfg["sim"], plan.num_kv_blocks);
    EXPECT_EQ(sc.policy, SchedulePolicy::ChunkedPrefill);
    EXPECT_EQ(sc.async_scheduling, cfg["sim"]["async_scheduling"].get<bool>());
    std::vector<uint32_t> prompt_len, output_len;
    request_lengths(make_workload(cfg["workload"]), prompt_len, output_len);
    Scheduler ref(sc, prompt_len, output_len);
    std::vector<uint32_t> first(prompt_len.size(), UINT32_MAX);
    size_t i = 0, mixed = 0, chunks = 0;
    while (auto st = ref.next()) {
        ASSERT_LT(i, plan.steps.size());
        EXPECT_EQ(plan.steps[i].tokens, st->tokens) << i;
        EXPECT_EQ(plan.steps[i].prefill, st->prefill) << i;
        mixed += plan.steps[i].mixed;
        for (const StepSlice& sl : st->slices) {
            chunks += !sl.sample;
            if (sl.sample && first[sl.request] == UINT32_MAX) first[sl.request] = uint32_t(i);
        }
        ++i;
    }
    EXPECT_EQ(i, plan.steps.size());
    EXPECT_GT(mixed, 0u);
    EXPECT_GT(chunks, 0u) << "prompts of up to 1024 tokens under a 1024-token budget with decodes";
    EXPECT_EQ(plan.first_step, first);
    // nano-vLLM on the same config: it cannot cut a prompt (or a re-prefill) to the budget; with
    // room for them, whole prompts, no mixed step.
    json nano = cfg;
    nano["sim"]["engine"] = "nano-vllm";
    EXPECT_THROW(make_plan(nano), std::invalid_argument);
    nano["sim"]["max_num_batched_tokens"] = 16384;
    const Plan p2 = make_plan(nano);
    EXPECT_STREQ(p2.engine->name(), "nano-vllm");
    EXPECT_TRUE(std::none_of(p2.steps.begin(), p2.steps.end(),
                             [](const PlannedStep& s) { return s.mixed; }));
}
