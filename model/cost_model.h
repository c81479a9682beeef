// Kernel cost model: how long one operator (model/op_shape.h) takes on one GPU.
//
// A measured profile wins when one is installed (a ProfileHook, e.g. KernelProfiles::seconds
// from model/kernel_profiles.h); otherwise the roofline prices the op:
//   t = max(flops / (peak_flops * compute_eff(kernel)), bytes / (hbm_bw * memory_eff)) + floor
// where `floor` is the fixed cost of one kernel on the GPU stream (launch inside a CUDA graph,
// ramp-up and tail). All times are seconds; rates are per second; bytes are bytes.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "model/op_shape.h"

namespace engramsim {

struct GpuPeaks {
    double flops_per_s = 0;      // dense tensor-core rate of the op's dtype (bf16 or fp8)
    double hbm_bytes_per_s = 0;  // HBM bandwidth
};

// Fractions of peak reached by each kernel family (assumptions, see docs/timing.md).
struct OpEfficiency {
    double gemm = 0.70;          // cuBLAS at serving shapes
    double attention = 0.50;     // FlashAttention prefill / decode, of the tensor-core peak
    double memory = 0.80;        // of HBM bandwidth, every family
    double kernel_floor_s = 3e-6;  // per kernel
};

class CostModel {
public:
    // Measured seconds for an op, or nullopt to fall back to the roofline.
    using ProfileHook = std::function<std::optional<double>(const OpShape&)>;

    CostModel(GpuPeaks peaks, OpEfficiency eff, ProfileHook profile = {});

    // Seconds of one op: the profile if it has the op, else the roofline.
    double seconds(const OpShape& op) const;
    // Roofline only (profiles ignored).
    double roofline_seconds(const OpShape& op) const;
    // The profile's seconds for the op, or nothing (no profile, or none for its kernel).
    std::optional<double> profiled_seconds(const OpShape& op) const {
        return profile_ ? profile_(op) : std::nullopt;
    }

    const GpuPeaks& peaks() const { return peaks_; }
    const OpEfficiency& efficiency() const { return eff_; }

private:
    GpuPeaks peaks_;
    OpEfficiency eff_;
    ProfileHook profile_;
};

// Builders with the compulsory traffic of each op (bytes of `bytes_per_value` elements).
OpShape gemm_op(double m, double n, double k, double bytes_per_value);
// Elementwise / normalisation over `elements` values, reading `reads` and writing `writes`
// tensors of that size, `flops_per_element` arithmetic each.
OpShape elementwise_op(double elements, double reads, double writes, double bytes_per_value,
                       double flops_per_element = 1);

}  // namespace engramsim
