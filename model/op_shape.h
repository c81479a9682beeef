// One operator of an inference step, as the cost model sees it: what kernel it is, its shape,
// and the work it does. Produced by the step model (sim/), priced by the cost model
// (model/cost_model.h: roofline with stated efficiencies) or by measured kernel profiles
// (model/kernel_profiles.h: interpolation over profiles/<gpu>/*.json).
#pragma once

#include <map>
#include <string>

namespace engramsim {

struct OpShape {
    // Kernel family, one of:
    //   "gemm"               dense matmul; dims m, n, k (tokens x out x in); a per-head batched
    //                        matmul (MLA's absorbed W_UK / W_UV) adds batch (heads)
    //   "attention_prefill"  causal attention over new tokens; dims tokens, context, heads, head_dim
    //                        (MLA: head_dim is the q/k width nope + rope, plus v_head_dim)
    //   "attention_decode"   one query per sequence over its KV cache; dims seqs, context, heads,
    //                        kv_heads, head_dim (MLA absorbed: kv_heads 1, head_dim
    //                        kv_lora_rank + rope, v_head_dim kv_lora_rank)
    //   "moe_grouped_gemm"   experts' SwiGLU; dims tokens, experts, top_k, hidden, intermediate
    //   "router_topk"        router softmax + top-k; dims tokens, experts, top_k
    //   "moe_align"          assignments grouped per expert; dims tokens, experts, top_k
    //   "moe_permute"        token rows copied to their experts' segments; dims tokens, hidden,
    //                        top_k
    //   "moe_combine"        weighted sum of each token's top_k expert rows; dims tokens, hidden,
    //                        top_k
    //   "engram_hash"        canonical ids -> row ids; dims tokens, heads
    //   "engram_gather"      rows -> memory vectors; dims tokens, heads, row_bytes
    //   "engram_gate"        fused RMSNorms + dot + sigmoid; dims tokens, hidden, branches
    //   "engram_conv"        short conv + SiLU + residual; dims tokens, hidden, kernel
    //   "engram_conv_decode" the same for decode steps (one new token per sequence, over its
    //                        history window); dims as engram_conv
    //   "elementwise"        norms, residuals, activations; dims elements
    std::string kernel;
    std::map<std::string, double> dims;
    // The fused kernel this op is one part of (engram_gate, engram_conv, ...), and that kernel's
    // dims. Consecutive ops of one group are priced once, by the group's profile, where a
    // profile measures the group (a calibration of the executor's module: executor/calibrate.h);
    // otherwise each op is priced on its own (total_seconds, model/step_model.h).
    std::string group;
    std::map<std::string, double> group_dims;
    double flops = 0;  // floating-point operations
    double bytes = 0;  // bytes read + written from device memory (compulsory traffic)
    std::string dtype = "bf16";

    // How tensor parallelism splits a GEMM (model/tensor_parallel.h), set by the step model
    // where it builds the op: None replicates it; Column divides n (outputs); Row divides k (a
    // partial sum, all-reduced); Heads divides batch (one small GEMM per head); QueryHeads
    // divides only the query part of n (MLA's fused q + kv_a projection without q_lora_rank).
    enum class Split { None, Column, Row, Heads, QueryHeads };
    Split split = Split::None;
};

// `op` with its tensor-parallel split.
inline OpShape split_as(OpShape op, OpShape::Split split) {
    op.split = split;
    return op;
}

}  // namespace engramsim
