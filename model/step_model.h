// One engine step of a Transformer with Engram layers: which operators run, in which order,
// and how long each takes (model/cost_model.h). Plain descriptions, no simulator.
//
// A step feeds `tokens` tokens of `seqs` sequences (a prefill step feeds whole prompts, a decode
// step one token per sequence). The GPU stream runs: embedding, then every layer (at an Engram
// layer the Engram module first: gather from the staged rows, projections, gate, short conv),
// then the final norm and the LM head over the sequences' last tokens (nano-vLLM computes logits
// only for those). The operator DAG of a step (StepDag) adds the fetch chain beside the GPU
// stream; its critical path is the step time when nothing contends.
//
// Backbones: attention GQA (Qwen3) or MLA (DeepSeek-V2/V3: low-rank q, a cached latent of
// kv_lora_rank + qk_rope_head_dim values per token per layer; prefill decompresses K/V, decode
// runs the weight-absorbed form over the latent); MLP dense SwiGLU or MoE (router, top-k,
// permutation, shared experts, grouped routed experts, combine); hc_mult > 1 adds the mHC
// mixing maps around every sublayer over an hc_mult x hidden residual stream. A dense GQA
// backbone with hc_mult 1 gets exactly the ops it always had. docs/timing.md states the forms.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/cost_model.h"
#include "model/engram_config.h"
#include "model/op_shape.h"

namespace engramsim {

// The backbone's shape, from a resolved "backbone" section.
struct BackboneShape {
    std::string name;
    int layers = 0;
    int hidden = 0;
    int n_heads = 0;
    int n_kv_heads = 0;
    int head_dim = 0;      // GQA: q/k/v head width; MLA: the no-RoPE q/k part (qk_nope_head_dim)
    int intermediate = 0;  // dense SwiGLU width (0 for an all-MoE backbone)
    int vocab = 0;
    double bytes_per_value = 2;
    bool tied_embeddings = false;  // the schema has no field: dense-4b (Qwen3-4B) is tied

    // MLA (attention.kind "mla"), DeepSeek-V2/V3 style.
    bool mla = false;
    int q_lora_rank = 0;       // 0: full-rank query projection (DeepSeek-V2-Lite)
    int kv_lora_rank = 0;      // the cached latent's width
    int qk_rope_head_dim = 0;  // decoupled RoPE part of q/k per head (one shared k_pe)
    int v_head_dim = 0;        // MLA value head width (GQA uses head_dim)

    // MoE (mlp.kind "moe"): every layer is an MoE layer.
    bool moe = false;
    int n_shared_experts = 0;
    int n_routed_experts = 0;
    int top_k = 0;
    int moe_intermediate = 0;  // one expert's SwiGLU width

    int hc_mult = 1;  // mHC residual branches (1: a plain residual stream)

    static BackboneShape from_json(const nlohmann::json& backbone_section);
    double params() const;            // weights (tied vocab matrix counted once)
    // Weights used by one token's matmuls (attention, shared + top_k experts, router, mHC maps,
    // LM head), without the input embedding table (a lookup): docs/presets.md's "active".
    double active_params() const;
    double weight_bytes() const { return params() * bytes_per_value; }
    double kv_bytes_per_token() const;  // all layers: K and V (GQA), the latent (MLA)

    // Per layer: attention weights (GQA: q, k, v, o, q/k norms; MLA: q_a, q_a_norm, q_b, kv_a,
    // kv_a_norm, kv_b, o), one expert's weights (3 x hidden x moe_intermediate), the mHC maps
    // (per sublayer: (M hidden) x (2M + M^2) projection, its 2M + M^2 biases, 3 gains, an
    // M hidden norm weight; 0 when hc_mult is 1).
    double attention_params_per_layer() const;
    double expert_params() const { return 3.0 * hidden * moe_intermediate; }
    double mhc_params_per_layer() const;
    // Values per token of a full prefill's largest live tensors (KV-cache sizing, sim/timing/plan.h),
    // with the head- and width-sharded parts divided by `tp` (tensor parallelism).
    double activation_values_per_token(double tp = 1) const;
};

// Expected number of distinct experts a step of `tokens` tokens routes to when each token picks
// `top_k` distinct experts of `experts` uniformly at random, independently of other tokens
// (balanced routing): experts x (1 - (1 - top_k / experts)^tokens).
double expected_distinct_experts(double tokens, int experts, int top_k);

// What one step feeds: from traces/schedule.h's Step.
struct StepShape {
    bool prefill = false;
    double tokens = 0;          // tokens fed
    double seqs = 0;            // sequences in the step
    double context_tokens = 0;  // KV entries attended to (decode), summed over sequences
    double causal_pairs = 0;    // prefill: query-key pairs, n (n + 1) / 2 per whole prompt
    // Chunked prefill (vLLM V1) puts prefill chunks and decodes in one step. On a prefill step,
    // attention is then priced in two parts: the prefill slices (prefill_tokens tokens;
    // causal_pairs counts a chunk of c tokens after f earlier ones as c f + c (c + 1) / 2;
    // prefill_prior their earlier KV entries, read again) and the decodes (decode_seqs
    // sequences attending to decode_context entries). The GEMMs run over all `tokens`. Zero
    // prefill_tokens means a whole-prompt prefill step (prefill_tokens = tokens).
    double prefill_tokens = 0, prefill_prior = 0;
    double decode_seqs = 0, decode_context = 0;
};

// Engram work per step at one Engram layer, on the GPU stream (the fetch is separate).
struct EngramGpuShape {
    int d_mem = 0;         // values per token (heads x row_dim)
    int heads = 0;         // rows per token
    double row_bytes = 0;  // bytes of one row
    bool short_conv = true;
    int kernel_size = 4;
    int hc_mult = 1;
    static EngramGpuShape from_config(const EngramConfig& engram);
};

// The Engram module's largest live tensors per token in an eager forward (a warm-up prefill),
// bytes, walked phase by phase as the reference module allocates them: the residual stream h
// (M x hidden) throughout; the gathered rows e and the fused projections [k; v] ((M + 1) x
// hidden); each RMSNorm (of h, then of k) upcasting its input to fp32 and holding the fp32
// product before it casts back; the normalized h and k; the dot product's elementwise term;
// the gated value and the output; with the short conv, RMSNorm(v~) likewise and the conv's
// output. Activations in the backbone's bytes_per_value. The largest phase is the norm of k:
// h + [k; v] + RMSNorm(h) + two fp32 temporaries = hidden x (b (3M + 1) + 8M).
double engram_activation_bytes_per_token(const EngramGpuShape& e, const BackboneShape& b);

// Op lists: one Transformer layer, the head (final norm + LM head + sampling), the embedding,
// and the Engram module at one layer. A layer is [pre(attention), attention, post, pre(MLP),
// MLP, post]: with hc_mult 1, pre is residual add + RMSNorm and post is empty (the add folds
// into the next norm); with hc_mult M > 1, pre is the mHC coefficient GEMM, their activation
// (sigmoid, Sinkhorn), the pre-mix of the M branches and RMSNorm, post the residual / post mix.
std::vector<OpShape> layer_ops(const BackboneShape& b, const StepShape& s);
// The MoE block of one layer over `tokens` tokens (part of layer_ops for an MoE backbone):
// router GEMM, router_topk (softmax + top-k), moe_align, moe_permute, the shared experts as one
// dense SwiGLU (gate/up GEMM, SiLU x up, down GEMM; absent with no shared experts),
// moe_grouped_gemm (fused SwiGLU of the routed experts: FLOPs tokens x top_k x 3 x 2 x hidden x
// moe_intermediate; bytes the expected distinct experts' weights plus the permuted rows in and
// out), moe_combine (weighted sum of the top_k rows plus the shared output).
std::vector<OpShape> moe_ops(const BackboneShape& b, double tokens);
std::vector<OpShape> embed_ops(const BackboneShape& b, const StepShape& s);
std::vector<OpShape> head_ops(const BackboneShape& b, const StepShape& s);
std::vector<OpShape> engram_ops(const EngramGpuShape& e, const BackboneShape& b,
                                const StepShape& s);
double total_seconds(const CostModel& cost, const std::vector<OpShape>& ops);

// The operator DAG of one step as a Boost.Graph graph; vertices carry durations, edges are
// dependencies. critical_path_s() is the longest path (the step time without contention).
class StepDag {
public:
    StepDag();
    ~StepDag();
    StepDag(const StepDag&) = delete;
    StepDag& operator=(const StepDag&) = delete;

    // A vertex of `seconds` duration; returns its id.
    int add(std::string name, double seconds);
    void depends(int after, int before);  // `after` starts once `before` has finished
    size_t size() const;
    // Longest path from any source to any sink, summing durations in topological order.
    // Throws std::logic_error on a cycle.
    double critical_path_s() const;
    // Finish time of one vertex on that schedule (as-soon-as-possible).
    double finish_s(int vertex) const;

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace engramsim
