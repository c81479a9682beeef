// The executor's dense building blocks: seeded weights, X W^T on OpenBLAS, RMSNorm and SiLU x up,
// split over the compute team. float32, row-major, token-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/cpu/host_fetch.h"

namespace engramsim::executor {

// w[i] uniform in [-scale, scale), from (seed, i) alone: the same weights whatever the order in
// which tensors are made.
void fill_uniform(std::span<float> w, float scale, uint64_t seed);

// y [m][n] = x [m][k] W^T, W [n][k] (a PyTorch Linear's weight); `accumulate` adds into y.
// OpenBLAS sgemm, its own threads.
void linear(size_t m, size_t n, size_t k, const float* x, const float* w, float* y,
            bool accumulate = false);

// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, rows of `dim` values.
void rms_norm(std::span<const float> x, std::span<const float> weight, float eps,
              std::span<float> y, kernels::ThreadTeam& team);

// out [T][inter] = SiLU(gu[t][0:inter]) * gu[t][inter:2 inter] (gate and up side by side).
void silu_mul(std::span<const float> gate_up, size_t inter, std::span<float> out,
              kernels::ThreadTeam& team);

// Runs fn(begin, end) over [0, n) in `team.threads()` contiguous parts.
template <class F>
void parallel_rows(size_t n, kernels::ThreadTeam& team, F&& fn) {
    team.run([&](int part, int parts) {
        const size_t b = n * size_t(part) / size_t(parts), e = n * size_t(part + 1) / size_t(parts);
        if (b < e) fn(b, e);
    });
}

}  // namespace engramsim::executor
