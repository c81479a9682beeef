// cuBLAS, loaded when first used rather than linked: the five entry points the CUDA kernels call
// (handle, stream, math mode, fp32 GEMM, grouped GEMM), resolved by dlopen / dlsym from
// libcublas on first use. Linking libcublas made every engramsim process, a `--version` or a
// replay as much as a GPU profile, spend 0.09 s and 217 MB of RSS relocating it at start-up
// (measured here with an empty program linked against it); no command but the GPU ones needs it.
// The types and enums still come from cublas_v2.h.
#pragma once

#include <cublas_v2.h>

namespace engramsim::cuda {

struct CublasApi {
    decltype(&cublasCreate_v2) create = nullptr;
    decltype(&cublasSetStream_v2) set_stream = nullptr;
    decltype(&cublasSetMathMode) set_math_mode = nullptr;
    decltype(&cublasSgemm_v2) sgemm = nullptr;
    decltype(&cublasGemmGroupedBatchedEx) gemm_grouped_batched_ex = nullptr;
};

// The entry points, loaded once (thread-safe). Throws std::runtime_error naming the library
// and the missing symbol when libcublas cannot be loaded.
const CublasApi& cublas();

}  // namespace engramsim::cuda
