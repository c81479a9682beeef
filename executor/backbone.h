// The executor's Transformer: a dense GQA backbone in the Qwen3 form the step model prices
// (model/step_model.h): token embedding; per layer RMSNorm, q/k/v projections, q/k-norm, RoPE,
// attention over the paged KV cache, o projection, residual; RMSNorm, SwiGLU MLP, residual; the
// final norm and the LM head (tied to the embedding) over each sequence's last token, and the
// argmax. float32 weights, seeded (same seed, same weights), scaled so activations stay near 1.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "executor/attention.h"
#include "executor/kv_cache.h"
#include "kernels/cpu/host_fetch.h"
#include "model/step_model.h"
#include "traces/schedule.h"

namespace engramsim::executor {

class Backbone {
public:
    // Throws std::invalid_argument for a backbone the executor does not serve (MLA, MoE, mHC).
    Backbone(const BackboneShape& shape, uint64_t seed);

    const BackboneShape& shape() const { return shape_; }
    AttentionShape attention_shape() const;
    size_t weight_bytes() const;  // float32, as held

    // h [T][hidden] = the embedding rows of `tokens` (ids taken modulo the vocabulary).
    void embed(std::span<const uint32_t> tokens, std::span<float> h) const;
    // One layer over the step's tokens, in place: attention (its K/V written into `cache`),
    // then the MLP.
    void layer(int index, std::span<const StepSlice> slices, std::span<float> h,
               PagedKvCache& cache, kernels::ThreadTeam& team);
    // The final norm and the LM head over the rows `last` of h; returns each row's argmax.
    std::vector<uint32_t> head(std::span<const float> h, std::span<const size_t> last,
                               kernels::ThreadTeam& team);

private:
    struct Layer {
        std::vector<float> attn_norm, qkv, q_norm, k_norm, o;  // qkv: [q | k | v][hidden]
        std::vector<float> mlp_norm, gate_up, down;            // gate_up: [gate | up][hidden]
    };
    BackboneShape shape_;
    std::vector<Layer> layers_;
    std::vector<float> embedding_, final_norm_;  // [vocab][hidden], [hidden]
    std::vector<float> xn_, qkv_, q_, k_, v_, attn_, gu_, act_, logits_;  // step scratch
};

}  // namespace engramsim::executor
