#include "kernels/cpu/moe_kernels.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace engramsim::kernels {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

void require_size(size_t have, size_t want, const char* name) {
    if (have != want)
        throw std::invalid_argument(std::string(name) + ": has " + std::to_string(have) +
                                    " elements, the shape needs " + std::to_string(want));
}

}  // namespace

void router_topk_softmax(std::span<const float> logits, size_t tokens, int experts, int k,
                         bool renormalize, std::span<int32_t> expert_ids,
                         std::span<float> weights) {
    require(experts >= 1, "router: experts must be >= 1");
    require(k >= 1 && k <= experts, "router: k must be in [1, experts]");
    const size_t E = size_t(experts), K = size_t(k);
    require_size(logits.size(), tokens * E, "router logits");
    require_size(expert_ids.size(), tokens * K, "router expert_ids");
    require_size(weights.size(), tokens * K, "router weights");
    for (size_t t = 0; t < tokens; ++t) {
        const float* x = logits.data() + t * E;
        float mx = x[0];
        for (size_t e = 1; e < E; ++e) mx = std::max(mx, x[e]);
        float sum = 0;
        for (size_t e = 0; e < E; ++e) sum += std::exp(x[e] - mx);
        // k rounds of "largest not yet taken": strict '>' keeps the lower index on ties.
        uint64_t taken_bits[8] = {};  // up to 512 experts without allocation
        std::vector<bool> taken_big(E > 512 ? E : 0);
        auto taken = [&](size_t e) {
            return E > 512 ? bool(taken_big[e]) : bool((taken_bits[e / 64] >> (e % 64)) & 1u);
        };
        float wsum = 0;
        for (size_t j = 0; j < K; ++j) {
            size_t best = E;
            for (size_t e = 0; e < E; ++e)
                if (!taken(e) && (best == E || x[e] > x[best])) best = e;
            if (E > 512)
                taken_big[best] = true;
            else
                taken_bits[best / 64] |= uint64_t(1) << (best % 64);
            expert_ids[t * K + j] = int32_t(best);
            const float p = std::exp(x[best] - mx) / sum;
            weights[t * K + j] = p;
            wsum += p;
        }
        if (renormalize)
            for (size_t j = 0; j < K; ++j) weights[t * K + j] /= wsum;
    }
}

ExpertAlignment align_tokens(std::span<const int32_t> expert_ids, int experts, int align_rows) {
    require(experts >= 1, "align: experts must be >= 1");
    require(align_rows >= 1, "align: align_rows must be >= 1");
    ExpertAlignment a;
    a.expert_counts.assign(size_t(experts), 0);
    for (size_t i = 0; i < expert_ids.size(); ++i) {
        const int32_t e = expert_ids[i];
        if (e < 0 || e >= experts)
            throw std::out_of_range("align: assignment " + std::to_string(i) + " names expert " +
                                    std::to_string(e) + " of " + std::to_string(experts));
        ++a.expert_counts[size_t(e)];
    }
    a.expert_offsets.assign(size_t(experts) + 1, 0);
    for (int e = 0; e < experts; ++e) {
        const int32_t c = a.expert_counts[size_t(e)];
        const int32_t padded = (c + align_rows - 1) / align_rows * align_rows;
        a.expert_offsets[size_t(e) + 1] = a.expert_offsets[size_t(e)] + padded;
    }
    a.sorted_assignments.assign(size_t(a.expert_offsets.back()), -1);
    a.position_of_assignment.assign(expert_ids.size(), -1);
    std::vector<int32_t> fill(a.expert_offsets.begin(), a.expert_offsets.end() - 1);
    for (size_t i = 0; i < expert_ids.size(); ++i) {
        const int32_t slot = fill[size_t(expert_ids[i])]++;
        a.sorted_assignments[size_t(slot)] = int32_t(i);
        a.position_of_assignment[i] = slot;
    }
    return a;
}

void permute_rows(std::span<const float> x, size_t hidden, int k,
                  std::span<const int32_t> sorted_assignments, std::span<float> out) {
    require(k >= 1 && hidden >= 1, "permute: k and hidden must be >= 1");
    require(x.size() % hidden == 0, "permute: x is not a whole number of rows");
    require_size(out.size(), sorted_assignments.size() * hidden, "permute out");
    const size_t rows_in = x.size() / hidden;
    for (size_t s = 0; s < sorted_assignments.size(); ++s) {
        const int32_t a = sorted_assignments[s];
        float* o = out.data() + s * hidden;
        if (a < 0) {
            std::fill(o, o + hidden, 0.0f);
            continue;
        }
        const size_t t = size_t(a) / size_t(k);
        if (t >= rows_in) throw std::out_of_range("permute: assignment past the tokens");
        std::copy(x.data() + t * hidden, x.data() + (t + 1) * hidden, o);
    }
}

void grouped_swiglu(std::span<const float> x, std::span<const int32_t> expert_offsets,
                    size_t hidden, size_t intermediate, std::span<const float> w1,
                    std::span<const float> w2, std::span<float> out) {
    require(expert_offsets.size() >= 2, "grouped gemm: needs at least one expert");
    const size_t E = expert_offsets.size() - 1, H = hidden, I = intermediate;
    const size_t slots = size_t(expert_offsets.back());
    require_size(x.size(), slots * H, "grouped gemm x");
    require_size(w1.size(), E * 2 * I * H, "grouped gemm w1");
    require_size(w2.size(), E * H * I, "grouped gemm w2");
    require_size(out.size(), slots * H, "grouped gemm out");
    std::vector<float> act(I);
    for (size_t e = 0; e < E; ++e) {
        const float* g_w = w1.data() + e * 2 * I * H;
        const float* u_w = g_w + I * H;
        const float* d_w = w2.data() + e * H * I;
        for (int32_t r = expert_offsets[e]; r < expert_offsets[e + 1]; ++r) {
            const float* xr = x.data() + size_t(r) * H;
            for (size_t i = 0; i < I; ++i) {
                float g = 0, u = 0;
                for (size_t c = 0; c < H; ++c) {
                    g += xr[c] * g_w[i * H + c];
                    u += xr[c] * u_w[i * H + c];
                }
                act[i] = g / (1.0f + std::exp(-g)) * u;
            }
            float* o = out.data() + size_t(r) * H;
            for (size_t c = 0; c < H; ++c) {
                float acc = 0;
                for (size_t i = 0; i < I; ++i) acc += act[i] * d_w[c * I + i];
                o[c] = acc;
            }
        }
    }
}

void combine(std::span<const float> y, size_t hidden, int k,
             std::span<const int32_t> position_of_assignment, std::span<const float> weights,
             std::span<float> out) {
    require(k >= 1 && hidden >= 1, "combine: k and hidden must be >= 1");
    require(position_of_assignment.size() % size_t(k) == 0,
            "combine: assignments are not a whole number of tokens");
    const size_t T = position_of_assignment.size() / size_t(k);
    require_size(weights.size(), T * size_t(k), "combine weights");
    require_size(out.size(), T * hidden, "combine out");
    const size_t slots = y.size() / hidden;
    for (size_t t = 0; t < T; ++t) {
        float* o = out.data() + t * hidden;
        std::fill(o, o + hidden, 0.0f);
        for (int j = 0; j < k; ++j) {
            const int32_t p = position_of_assignment[t * size_t(k) + size_t(j)];
            if (p < 0 || size_t(p) >= slots) throw std::out_of_range("combine: bad position");
            const float w = weights[t * size_t(k) + size_t(j)];
            const float* yr = y.data() + size_t(p) * hidden;
            for (size_t c = 0; c < hidden; ++c) o[c] += w * yr[c];
        }
    }
}

}  // namespace engramsim::kernels
