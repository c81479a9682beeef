// CPU reference MoE kernels against independent float64 computations and brute-force orderings.
// Tolerances: router weights |err| <= 1e-6 + 1e-5 |ref|; grouped SwiGLU and combine
// |err| <= 1e-5 + 1e-4 |ref| (float32 sums of a few hundred terms); integer outputs exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/moe_kernels.h"
#include "kernels/cpu/random_inputs.h"

using namespace engramsim::kernels;

TEST(KernelRouter, TopKSoftmaxMatchesStableSortInFloat64) {
    const size_t T = 50;
    const int E = 72, K = 6;
    auto logits = random_floats(T * E, 1, -4, 4);
    // Quantize some tokens' logits coarsely so that ties are common.
    for (size_t i = 0; i < 10 * size_t(E); ++i) logits[i] = std::round(logits[i]);
    for (bool renorm : {false, true}) {
        std::vector<int32_t> ids(T * K);
        std::vector<float> w(T * K);
        router_topk_softmax(logits, T, E, K, renorm, ids, w);
        for (size_t t = 0; t < T; ++t) {
            std::vector<int> order(E);
            std::iota(order.begin(), order.end(), 0);
            const float* x = logits.data() + t * E;
            std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return x[a] > x[b]; });
            double mx = -INFINITY, sum = 0, ksum = 0;
            for (int e = 0; e < E; ++e) mx = std::max(mx, double(x[e]));
            for (int e = 0; e < E; ++e) sum += std::exp(double(x[e]) - mx);
            for (int j = 0; j < K; ++j) ksum += std::exp(double(x[order[j]]) - mx) / sum;
            for (int j = 0; j < K; ++j) {
                ASSERT_EQ(ids[t * K + j], order[j]) << "token " << t << " choice " << j;
                double p = std::exp(double(x[order[j]]) - mx) / sum;
                if (renorm) p /= ksum;
                ASSERT_LE(std::fabs(w[t * K + j] - p), 1e-6 + 1e-5 * p);
            }
        }
    }
}

TEST(KernelRouter, TiesGoToTheLowerExpertIndex) {
    // Experts 5, 2, 9 and 7 share the top logit; 3 and 1 share the next one.
    std::vector<float> x(12, 0.0f);
    x[5] = x[2] = x[9] = x[7] = 3.0f;
    x[3] = x[1] = 2.0f;
    std::vector<int32_t> ids(5);
    std::vector<float> w(5);
    router_topk_softmax(x, 1, 12, 5, false, ids, w);
    EXPECT_EQ(ids, (std::vector<int32_t>{2, 5, 7, 9, 1}));
    EXPECT_EQ(w[0], w[3]);
    std::vector<float> flat(8, 1.0f);
    std::vector<int32_t> ids3(3);
    std::vector<float> w3(3);
    router_topk_softmax(flat, 1, 8, 3, true, ids3, w3);
    EXPECT_EQ(ids3, (std::vector<int32_t>{0, 1, 2}));
    EXPECT_FLOAT_EQ(w3[0], 1.0f / 3.0f);
    EXPECT_THROW(router_topk_softmax(flat, 1, 8, 9, true, ids3, w3), std::invalid_argument);
}

TEST(KernelAlign, SegmentsAreAlignedSortedAndInverse) {
    const int E = 9, K = 3, align = 4;
    const size_t T = 41;
    std::mt19937 rng(5);
    std::vector<int32_t> ids(T * K);
    for (auto& e : ids) e = int32_t(rng() % 7);  // experts 7, 8 stay empty
    const ExpertAlignment a = align_tokens(ids, E, align);
    ASSERT_EQ(a.expert_offsets.size(), size_t(E) + 1);
    EXPECT_EQ(a.expert_offsets[0], 0);
    for (int e = 0; e < E; ++e) {
        const int32_t begin = a.expert_offsets[e], end = a.expert_offsets[e + 1];
        EXPECT_EQ(begin % align, 0);
        std::vector<int32_t> want;
        for (size_t i = 0; i < ids.size(); ++i)
            if (ids[i] == e) want.push_back(int32_t(i));
        EXPECT_EQ(a.expert_counts[e], int32_t(want.size()));
        EXPECT_EQ(end - begin, (int32_t(want.size()) + align - 1) / align * align);
        for (int32_t s = begin; s < end; ++s)
            EXPECT_EQ(a.sorted_assignments[s], s - begin < int32_t(want.size()) ? want[s - begin] : -1);
    }
    for (size_t i = 0; i < ids.size(); ++i)
        EXPECT_EQ(a.sorted_assignments[a.position_of_assignment[i]], int32_t(i));
    ids[4] = E;
    EXPECT_THROW(align_tokens(ids, E, align), std::out_of_range);
}

TEST(KernelMoe, PermuteGroupedSwigluCombineMatchFloat64) {
    const int E = 5, K = 2, align = 8;
    const size_t T = 23, H = 32, I = 48;
    std::mt19937 rng(9);
    std::vector<int32_t> ids(T * K);
    for (size_t t = 0; t < T; ++t) {
        ids[t * K] = int32_t(rng() % E);
        ids[t * K + 1] = int32_t((ids[t * K] + 1 + rng() % (E - 1)) % E);
    }
    auto weights = random_floats(T * K, 10, 0.1f, 1.0f);
    auto x = random_floats(T * H, 11);
    auto w1 = random_floats(size_t(E) * 2 * I * H, 12, -0.2f, 0.2f);
    auto w2 = random_floats(size_t(E) * H * I, 13, -0.2f, 0.2f);
    const ExpertAlignment a = align_tokens(ids, E, align);
    const size_t slots = size_t(a.expert_offsets.back());
    std::vector<float> xp(slots * H), yp(slots * H), out(T * H);
    permute_rows(x, H, K, a.sorted_assignments, xp);
    grouped_swiglu(xp, a.expert_offsets, H, I, w1, w2, yp);
    combine(yp, H, K, a.position_of_assignment, weights, out);
    // Float64: out[t] = sum_j w_tj * W2_e (SiLU(W1g_e x_t) * (W1u_e x_t)), straight from tokens.
    for (size_t t = 0; t < T; ++t)
        for (size_t c = 0; c < H; ++c) {
            double want = 0;
            for (int j = 0; j < K; ++j) {
                const size_t e = size_t(ids[t * K + j]);
                double y = 0;
                for (size_t i = 0; i < I; ++i) {
                    double g = 0, u = 0;
                    for (size_t q = 0; q < H; ++q) {
                        g += double(x[t * H + q]) * w1[(e * 2 * I + i) * H + q];
                        u += double(x[t * H + q]) * w1[(e * 2 * I + I + i) * H + q];
                    }
                    y += g / (1 + std::exp(-g)) * u * w2[(e * H + c) * I + i];
                }
                want += weights[t * K + j] * y;
            }
            ASSERT_LE(std::fabs(out[t * H + c] - want), 1e-5 + 1e-4 * std::fabs(want))
                << "token " << t << " col " << c;
        }
    // Padding rows are zero in, zero out (SiLU(0) * 0).
    for (size_t s = 0; s < slots; ++s) {
        if (a.sorted_assignments[s] >= 0) continue;
        for (size_t c = 0; c < H; ++c) ASSERT_EQ(yp[s * H + c], 0.0f);
    }
}
