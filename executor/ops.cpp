#include "executor/ops.h"

#include <cblas.h>

#include <cmath>

#include "traces/splitmix64.h"

namespace engramsim::executor {

void fill_uniform(std::span<float> w, float scale, uint64_t seed) {
    const uint64_t base = splitmix64(seed);
    for (size_t i = 0; i < w.size(); ++i) {
        const uint64_t r = splitmix64(base + i);
        w[i] = scale * (float(r >> 40) * (2.0f / 16777216.0f) - 1.0f);  // 24 bits -> [-1, 1)
    }
}

void linear(size_t m, size_t n, size_t k, const float* x, const float* w, float* y,
            bool accumulate) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x, int(k),
                w, int(k), accumulate ? 1.0f : 0.0f, y, int(n));
}

void rms_norm(std::span<const float> x, std::span<const float> weight, float eps,
              std::span<float> y, kernels::ThreadTeam& team) {
    const size_t dim = weight.size();
    parallel_rows(x.size() / dim, team, [&](size_t b, size_t e) {
        for (size_t t = b; t < e; ++t) {
            const float* xt = x.data() + t * dim;
            float* yt = y.data() + t * dim;
            float ss = 0;
            for (size_t i = 0; i < dim; ++i) ss += xt[i] * xt[i];
            const float r = 1.0f / std::sqrt(ss / float(dim) + eps);
            for (size_t i = 0; i < dim; ++i) yt[i] = xt[i] * r * weight[i];
        }
    });
}

void silu_mul(std::span<const float> gate_up, size_t inter, std::span<float> out,
              kernels::ThreadTeam& team) {
    parallel_rows(out.size() / inter, team, [&](size_t b, size_t e) {
        for (size_t t = b; t < e; ++t) {
            const float* g = gate_up.data() + t * 2 * inter;
            const float* u = g + inter;
            float* o = out.data() + t * inter;
            for (size_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        }
    });
}

}  // namespace engramsim::executor
