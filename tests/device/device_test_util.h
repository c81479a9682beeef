// What the device tests share: skipping (with the reason) where no GPU is, and element-wise comparison with a stated absolute + relative tolerance.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/random_inputs.h"
#include "kernels/cuda/engram_hash_cuda.h"

// Skips the calling test, saying why, when no CUDA device can be used.
#define REQUIRE_GPU()                                                                \
    do {                                                                             \
        std::string why;                                                             \
        if (!engramsim::cuda::device_available(&why)) GTEST_SKIP() << "no GPU here: " << why; \
    } while (0)

namespace engramsim::test {

using kernels::random_floats;

// |got - want| <= abs_tol + rel_tol |want| for every element.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         double abs_tol, double rel_tol, const char* what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_LE(std::fabs(double(got[i]) - want[i]), abs_tol + rel_tol * std::fabs(want[i]))
            << what << " [" << i << "]";
}

}  // namespace engramsim::test
