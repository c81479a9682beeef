// The executor's self-attention of one layer for one engine step, in the Qwen3 form: grouped-query
// attention with a per-head RMSNorm on queries and keys (q-norm / k-norm) before rotary position
// embeddings, keys and values kept in the paged KV cache (executor/kv_cache.h). float32,
// row-major, token-major; a step's tokens are its slices back to back (traces/schedule.h).
//
// Work is split over the team in two passes. Pass 1, by tokens: norms, RoPE, and the token's key
// and value into the cache. Pass 2, by items of (token, kv heads): every kv head of the token,
// so that its key and value rows are read front to back, unless a step of few tokens would then
// leave threads idle, in which case fewer kv heads per item. Items are costed at the positions
// they read and cut into contiguous runs of equal cost, one per thread, so a long prefill's late
// tokens (which read the most) are spread as evenly as its early ones. An item reads each cached
// position's rows once for all its query heads, one KV block at a time: scores, the block's
// softmax folded into a running maximum and sum (online softmax), then the weighted values.
// Every output is computed by one thread in an order that depends on neither the thread count,
// nor the items' shape, nor the physical blocks, so results are identical bit for bit with any
// team and after a preemption.
#pragma once

#include <cstdint>
#include <span>

#include "executor/kv_cache.h"
#include "kernels/cpu/host_fetch.h"
#include "traces/schedule.h"

namespace engramsim::executor {

using engramsim::StepSlice;

struct AttentionShape {
    int n_heads = 0, n_kv_heads = 0, head_dim = 0;  // GQA: n_heads % n_kv_heads == 0; head_dim even
    float rope_theta = 1e6f;   // Qwen3
    float eps = 1e-6f;         // RMSNorm eps of q-norm / k-norm
    // Throws std::invalid_argument naming what is inconsistent.
    void validate() const;
};

// RoPE in the non-interleaved "rotate half" form of Hugging Face Qwen / Llama, in place, on every
// head of `x` (a multiple of head_dim values): pair (i, i + head_dim/2) of a head is rotated by
// the angle pos * theta^(-2i / head_dim), computed in double.
void apply_rope(std::span<float> x, int head_dim, uint32_t pos, float theta);

// Attention of `layer` for one engine step.
//   q [T][n_heads*head_dim], k [T][n_kv_heads*head_dim], v [T][n_kv_heads*head_dim]: the step's
//   projected tokens, slices back to back (T = sum of counts).
//   1. q-norm / k-norm: RMSNorm over each head's head_dim values with the weights
//      q_norm[head_dim], k_norm[head_dim] (shared by all heads), in place.
//   2. RoPE (apply_rope) at each token's absolute position, on q and k, in place.
//   3. k and v written into the cache at (layer, request, position); the caller has reserve()d.
//   4. out [T][n_heads*head_dim]: for token t at position p of request r and head h, the softmax
//      over positions j in [0, p] of q_t,h . K[r][j][h / (n_heads / n_kv_heads)] / sqrt(head_dim),
//      times V. A prefill slice attends causally to its own tokens and to positions cached before
//      `first`; a decode token to the whole cached prefix and itself.
// Throws std::invalid_argument on inconsistent shapes or sizes, std::out_of_range when a slice
// reaches past its request's reserved capacity (checked before anything is written).
void attention_step(const AttentionShape& shape, PagedKvCache& cache, int layer,
                    std::span<const StepSlice> slices, std::span<float> q, std::span<float> k,
                    std::span<const float> v, std::span<const float> q_norm,
                    std::span<const float> k_norm, std::span<float> out,
                    kernels::ThreadTeam& team);

}  // namespace engramsim::executor
