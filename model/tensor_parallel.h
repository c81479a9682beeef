// Tensor parallelism of one step over TP GPUs of a node, Megatron-style as nano-vLLM runs it:
// the op lists of model/step_model.h are transformed into what ONE GPU runs, cut into pieces at
// the collectives between the GPUs. Plain descriptions, no simulator (sim/timing/collectives.h times
// the collectives on SimGrid). Every GPU runs the same pieces (the work divides evenly).
//
// A transformer layer (list Layer), read in order with the activation's state:
//   replicated (every GPU holds the whole hidden state) or sharded (each holds 1/TP of it).
//   GEMMs by the split the step model gives them (OpShape::split):
//   column-parallel          n / TP (fused QKV, gate/up, shared experts' gate/up, MLA q_b and
//                            kv_b); output sharded
//   row-parallel             k / TP (output projection, down, shared experts' down); output a
//                            partial sum, all-reduced (T x hidden x bytes) before the next
//                            elementwise op on the whole hidden state (or at the list's end)
//   per head                 MLA's absorbed W_UK / W_UV: batch (heads) / TP
//   query heads              MLA's fused q_proj + kv_a (no q_lora_rank): only the query part / TP
//   replicated (no split)    router logits, mHC maps, MLA q_a / kv_a, the Engram W_K / W_V
//   attention_*              heads / TP and KV heads / TP: flops and bytes / TP (MLA decode:
//                            every GPU reads the whole latent cache, the rest / TP)
//   elementwise, sharded     elements / TP (q/k norm + RoPE, KV store, SiLU x up); MLA's
//                            latent store stays replicated
//   elementwise, replicated  unchanged (residual + RMSNorm, mHC mixing on every GPU)
//   moe_permute, moe_grouped_gemm, moe_combine
//                            experts divided over the GPUs (expert parallel inside the TP
//                            group): flops, bytes and experts / TP, assuming routed rows spread
//                            evenly; the combined output is a partial sum, all-reduced as above
//                            together with the shared experts' (one all-reduce)
//   router_topk, moe_align, any other kind
//                            replicated, unchanged (unknown kinds cost what one GPU would)
// Embed: vocab-parallel embedding (each GPU looks up the tokens in its vocab slice and writes a
//   T x hidden tensor), then an all-reduce of T x hidden x bytes.
// Head: final norm replicated; LM head vocab-parallel (n / TP); the logit shards are gathered to
//   GPU 0 (S x vocab x bytes in all; nano-vLLM's dist.gather), which samples over the whole
//   vocabulary (sampling unchanged).
// Engram (choice): the Engram heads are sharded, heads / TP per GPU, so each GPU fetches the
//   rows of its heads only (1/TP of the step's unique rows, over its own host link) and expands
//   them (engram_gather / TP); the memory vectors are then all-gathered (T x d_mem x bytes in
//   all, a ring of TP - 1 steps) and the rest of the module (W_K, W_V, gates, conv, residual)
//   is replicated. Chosen over row-parallel W_K / W_V + an all-reduce because the all-reduce
//   would move 2 x hidden x (hc_mult + 1) / d_mem times the all-gather's bytes (8x for Dense-4B,
//   12.8x for Dense-8B with paper-offload-100b) to save GEMMs of a few hundred microseconds per
//   full prefill.
//
// Per GPU, the KV cache is KV bytes per token / TP (GQA), the whole latent (MLA: every GPU
// caches it, as vLLM does).
//
// Requirements (ConfigError naming sim.tensor_parallel otherwise): TP divides the query heads,
// the KV heads (GQA), the routed experts (MoE) and the Engram heads per layer.
#pragma once

#include <string>
#include <vector>

#include "model/op_shape.h"
#include "model/step_model.h"

namespace engramsim {

// A collective among the TP GPUs, after the piece's ops. `bytes` is the whole tensor (B): a
// ring all-reduce moves 2 (TP - 1) x B / TP per GPU, a ring all-gather (TP - 1) x B / TP, a
// gather to GPU 0 B / TP from each other GPU.
struct Collective {
    enum class Kind { None, AllReduce, AllGather, Gather } kind = Kind::None;
    double bytes = 0;
};
std::string collective_name(Collective::Kind k);

// Ops one GPU runs, then the collective after them (kind None: nothing).
struct TpPiece {
    std::vector<OpShape> ops;
    Collective after;
};

enum class OpList { Embed, Layer, Head, Engram };

struct TensorParallel {
    int tp = 1;
    BackboneShape backbone;
    EngramGpuShape engram;  // used by OpList::Engram

    // Checks the divisibility requirements (engram: whether an Engram module is present).
    void validate(bool has_engram) const;

    // What one GPU runs of `ops` (built by step_model for `shape`), cut at collectives. With
    // tp == 1: one piece holding `ops` unchanged and no collective.
    std::vector<TpPiece> shard(const std::vector<OpShape>& ops, OpList list,
                               const StepShape& shape) const;

    // One op, sharded: a column-parallel (n / TP) or row-parallel (k / TP) GEMM; any other op
    // with flops, bytes (and its `divided_dim`) divided by TP.
    static OpShape column_parallel(const OpShape& gemm, int tp);
    static OpShape row_parallel(const OpShape& gemm, int tp);
    static OpShape divided(const OpShape& op, int tp, const std::string& divided_dim);

    // MLA's latent store (T x (kv_lora_rank + rope) elements): replicated on every GPU.
    bool mla_latent(const OpShape& op, const StepShape& s) const;

    // Per GPU: weights (norm vectors replicated, every matrix divided: embedding and LM head
    // vocab-parallel), KV bytes per token (KV heads / TP).
    double weight_bytes_per_gpu() const;
    double kv_bytes_per_token_per_gpu() const;
};

}  // namespace engramsim
