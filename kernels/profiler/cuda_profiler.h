// Profiles of the CUDA kernels (kernels/cuda/), built only with CUDA.
//
// Each sample: the L2 is flushed (a memset of twice the L2 size), the device synchronized and
// CUPTI's activity buffers drained; then the call runs inside an NVTX range (domain
// `engramsim`), the device is synchronized and the CUPTI concurrent-kernel records of the call
// (correlation ids after the flush) give its kernel-only time: the sum of the records' end -
// start. If CUPTI cannot be initialized (no permission, another profiler attached), the failure
// is reported in the provenance notes and samples fall back to CUDA events around the call.
// Ceilings measured in the same run: device-to-device copy bandwidth (cudaMemcpyAsync, bytes
// read + written) and the cuBLAS fp32 GEMM rate at the MoE prefill shape.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kernels/profiler/cpu_profiler.h"
#include "kernels/profiler/profile.h"

namespace engramsim::profiler {

// True when a CUDA device can be used; otherwise `why` says what is missing.
bool cuda_available(std::string* why);

std::vector<KernelProfile> profile_cuda(const ProfileOptions& options, std::ostream& log);

}  // namespace engramsim::profiler
