#include "model/cost_model.h"

#include <algorithm>
#include <stdexcept>

namespace engramsim {

CostModel::CostModel(GpuPeaks peaks, OpEfficiency eff, ProfileHook profile)
    : peaks_(peaks), eff_(eff), profile_(std::move(profile)) {
    if (!(peaks_.flops_per_s > 0) || !(peaks_.hbm_bytes_per_s > 0))
        throw std::invalid_argument("cost model: GPU peaks must be positive");
    if (!(eff_.gemm > 0 && eff_.gemm <= 1) || !(eff_.attention > 0 && eff_.attention <= 1) ||
        !(eff_.memory > 0 && eff_.memory <= 1) || eff_.kernel_floor_s < 0)
        throw std::invalid_argument("cost model: efficiencies must be in (0, 1], floor >= 0");
}

double CostModel::seconds(const OpShape& op) const {
    if (profile_)
        if (auto t = profile_(op)) return *t;
    return roofline_seconds(op);
}

double CostModel::roofline_seconds(const OpShape& op) const {
    double compute_eff = eff_.memory;  // elementwise-like kernels: FLOPs ride on CUDA cores
    if (op.kernel == "gemm" || op.kernel == "moe_grouped_gemm")
        compute_eff = eff_.gemm;
    else if (op.kernel == "attention_prefill" || op.kernel == "attention_decode")
        compute_eff = eff_.attention;
    const double t_compute = op.flops / (peaks_.flops_per_s * compute_eff);
    const double t_memory = op.bytes / (peaks_.hbm_bytes_per_s * eff_.memory);
    return std::max(t_compute, t_memory) + eff_.kernel_floor_s;
}

OpShape gemm_op(double m, double n, double k, double bytes_per_value) {
    OpShape op;
    op.kernel = "gemm";
    op.dims = {{"m", m}, {"n", n}, {"k", k}};
    op.flops = 2 * m * n * k;
    op.bytes = (m * k + k * n + m * n) * bytes_per_value;
    return op;
}

OpShape elementwise_op(double elements, double reads, double writes, double bytes_per_value,
                       double flops_per_element) {
    OpShape op;
    op.kernel = "elementwise";
    op.dims = {{"elements", elements}};
    op.flops = elements * flops_per_element;
    op.bytes = elements * (reads + writes) * bytes_per_value;
    return op;
}

}  // namespace engramsim
