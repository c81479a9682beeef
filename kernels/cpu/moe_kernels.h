// CPU reference implementations of the MoE kernels: router top-k softmax, token alignment and
// permutation per expert, grouped expert GEMM with SwiGLU, weighted combine. The CUDA kernels in
// kernels/cuda/moe_kernels_cuda.h reproduce them (integer outputs bit for bit).
//
// One token's k choices are "assignments", numbered a = t * k + j. Alignment groups assignments
// by expert, each expert's segment starting at a multiple of `align_rows` (the tile height of a
// grouped GEMM), assignments inside a segment in increasing a (the deterministic order);
// padding slots hold -1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace engramsim::kernels {

// Softmax over each token's `experts` logits, then its k largest probabilities. Selection
// compares logits; equal logits go to the lower expert index, and the k choices are listed in
// decreasing logit order. With `renormalize`, the k weights are divided by their sum.
// logits [T][E] -> expert_ids [T][k], weights [T][k].
void router_topk_softmax(std::span<const float> logits, size_t tokens, int experts, int k,
                         bool renormalize, std::span<int32_t> expert_ids,
                         std::span<float> weights);

struct ExpertAlignment {
    std::vector<int32_t> expert_offsets;          // experts + 1: segment starts, then the total
    std::vector<int32_t> expert_counts;           // assignments per expert (without padding)
    std::vector<int32_t> sorted_assignments;      // expert_offsets.back() slots; -1 = padding
    std::vector<int32_t> position_of_assignment;  // T * k: slot of each assignment
};

// expert_ids [T][k], each in [0, experts) (else std::out_of_range).
ExpertAlignment align_tokens(std::span<const int32_t> expert_ids, int experts, int align_rows);

// out[slot][:] = x[a / k][:] for the assignment a in each slot, zeros for padding.
// x [T][hidden], out [slots][hidden].
void permute_rows(std::span<const float> x, size_t hidden, int k,
                  std::span<const int32_t> sorted_assignments, std::span<float> out);

// Each expert e over its segment rows X_e: G = X_e W1_e[:I]^T, U = X_e W1_e[I:]^T,
// out = (SiLU(G) * U) W2_e^T. w1 [E][2I][H] (gate rows first, then up rows), w2 [E][H][I];
// x, out [slots][H]. Padding rows compute like others (their input is zero).
void grouped_swiglu(std::span<const float> x, std::span<const int32_t> expert_offsets,
                    size_t hidden, size_t intermediate, std::span<const float> w1,
                    std::span<const float> w2, std::span<float> out);

// out[t][:] = sum_j weights[t][j] * y[position_of_assignment[t*k+j]][:], j in increasing order.
void combine(std::span<const float> y, size_t hidden, int k,
             std::span<const int32_t> position_of_assignment, std::span<const float> weights,
             std::span<float> out);

}  // namespace engramsim::kernels
