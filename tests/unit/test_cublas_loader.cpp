// cuBLAS is loaded on first use, not linked (kernels/cuda/cublas_loader.h): every entry point the
// CUDA kernels call resolves from the toolkit's libcublas. No GPU is needed to load a library;
// the device tests call through these pointers on one.
#include <gtest/gtest.h>

#include "kernels/cuda/cublas_loader.h"

using namespace engramsim;

TEST(CublasLoader, ResolvesEveryEntryPointTheKernelsCall) {
    const cuda::CublasApi& api = cuda::cublas();
    EXPECT_NE(api.create, nullptr);
    EXPECT_NE(api.set_stream, nullptr);
    EXPECT_NE(api.set_math_mode, nullptr);
    EXPECT_NE(api.sgemm, nullptr);
    EXPECT_NE(api.gemm_grouped_batched_ex, nullptr);
    EXPECT_EQ(&cuda::cublas(), &api);  // loaded once
}
