// Deterministic random activations for the kernel tests, benchmarks and profilers: the same
// seed gives the same floats on every run (std::mt19937 is fully specified; the distribution
// is libstdc++'s, which is all this project builds with).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace engramsim::kernels {

// `n` floats uniform in [lo, hi).
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

}  // namespace engramsim::kernels
