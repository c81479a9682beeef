#include "executor/backbone.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "executor/ops.h"

namespace engramsim::executor {

Backbone::Backbone(const BackboneShape& shape, uint64_t seed) : shape_(shape) {
    if (shape.mla || shape.moe || shape.hc_mult != 1)
        throw std::invalid_argument(
            "backbone: the executor serves dense GQA backbones with hc_mult 1 (" + shape.name +
            (shape.mla ? " uses MLA" : shape.moe ? " is MoE" : " uses mHC") + ")");
    const size_t H = shape.hidden, D = shape.head_dim, I = shape.intermediate;
    const size_t q = size_t(shape.n_heads) * D, kv = size_t(shape.n_kv_heads) * D;
    const float in_h = 1.0f / std::sqrt(float(H));
    layers_.resize(shape.layers);
    for (int l = 0; l < shape.layers; ++l) {
        Layer& L = layers_[l];
        const uint64_t s = seed + 100 * uint64_t(l + 1);
        L.attn_norm.assign(H, 1.0f), L.mlp_norm.assign(H, 1.0f);
        L.q_norm.assign(D, 1.0f), L.k_norm.assign(D, 1.0f);
        L.qkv.resize((q + 2 * kv) * H), fill_uniform(L.qkv, std::sqrt(3.0f) * in_h, s + 1);
        L.o.resize(H * q), fill_uniform(L.o, std::sqrt(3.0f / float(q)) * 0.5f, s + 2);
        L.gate_up.resize(2 * I * H), fill_uniform(L.gate_up, std::sqrt(3.0f) * in_h, s + 3);
        L.down.resize(H * I), fill_uniform(L.down, std::sqrt(3.0f / float(I)) * 0.5f, s + 4);
    }
    embedding_.resize(size_t(shape.vocab) * H);
    fill_uniform(embedding_, std::sqrt(3.0f), seed);
    final_norm_.assign(H, 1.0f);
}

AttentionShape Backbone::attention_shape() const {
    return {.n_heads = shape_.n_heads, .n_kv_heads = shape_.n_kv_heads, .head_dim = shape_.head_dim};
}

size_t Backbone::weight_bytes() const {
    size_t n = embedding_.size() + final_norm_.size();
    for (const Layer& L : layers_)
        n += L.attn_norm.size() + L.qkv.size() + L.q_norm.size() + L.k_norm.size() + L.o.size() +
             L.mlp_norm.size() + L.gate_up.size() + L.down.size();
    return n * sizeof(float);
}

void Backbone::embed(std::span<const uint32_t> tokens, std::span<float> h) const {
    const size_t H = shape_.hidden;
    for (size_t t = 0; t < tokens.size(); ++t)
        std::memcpy(&h[t * H], &embedding_[size_t(tokens[t] % uint32_t(shape_.vocab)) * H],
                    H * sizeof(float));
}

void Backbone::layer(int index, std::span<const StepSlice> slices, std::span<float> h,
                     PagedKvCache& cache, kernels::ThreadTeam& team) {
    const Layer& L = layers_[index];
    const size_t H = shape_.hidden, T = h.size() / H, I = shape_.intermediate;
    const size_t q = size_t(shape_.n_heads) * shape_.head_dim;
    const size_t kv = size_t(shape_.n_kv_heads) * shape_.head_dim;
    xn_.resize(T * H), qkv_.resize(T * (q + 2 * kv));
    q_.resize(T * q), k_.resize(T * kv), v_.resize(T * kv), attn_.resize(T * q);

    rms_norm(h, L.attn_norm, 1e-6f, xn_, team);
    linear(T, q + 2 * kv, H, xn_.data(), L.qkv.data(), qkv_.data());
    parallel_rows(T, team, [&](size_t b, size_t e) {  // split [q | k | v] for the attention
        for (size_t t = b; t < e; ++t) {
            const float* row = &qkv_[t * (q + 2 * kv)];
            std::memcpy(&q_[t * q], row, q * sizeof(float));
            std::memcpy(&k_[t * kv], row + q, kv * sizeof(float));
            std::memcpy(&v_[t * kv], row + q + kv, kv * sizeof(float));
        }
    });
    attention_step(attention_shape(), cache, index, slices, q_, k_, v_, L.q_norm, L.k_norm,
                   attn_, team);
    linear(T, H, q, attn_.data(), L.o.data(), h.data(), /*accumulate=*/true);

    gu_.resize(T * 2 * I), act_.resize(T * I);
    rms_norm(h, L.mlp_norm, 1e-6f, xn_, team);
    linear(T, 2 * I, H, xn_.data(), L.gate_up.data(), gu_.data());
    silu_mul(gu_, I, act_, team);
    linear(T, H, I, act_.data(), L.down.data(), h.data(), /*accumulate=*/true);
}

std::vector<uint32_t> Backbone::head(std::span<const float> h, std::span<const size_t> last,
                                     kernels::ThreadTeam& team) {
    const size_t H = shape_.hidden, S = last.size(), V = size_t(shape_.vocab);
    std::vector<float> rows(S * H);
    for (size_t s = 0; s < S; ++s) std::memcpy(&rows[s * H], &h[last[s] * H], H * sizeof(float));
    xn_.resize(S * H), logits_.resize(S * V);
    rms_norm(rows, final_norm_, 1e-6f, std::span(xn_).first(S * H), team);
    linear(S, V, H, xn_.data(), embedding_.data(), logits_.data());
    std::vector<uint32_t> out(S);
    parallel_rows(S, team, [&](size_t b, size_t e) {
        for (size_t s = b; s < e; ++s) {
            const float* row = &logits_[s * V];
            size_t best = 0;
            for (size_t i = 1; i < V; ++i)
                if (row[i] > row[best]) best = i;
            out[s] = uint32_t(best);
        }
    });
    return out;
}

}  // namespace engramsim::executor
