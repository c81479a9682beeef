// Engram kernels on the GPU, the same semantics as the CPU references in
// kernels/cpu/engram_kernels.h (read that header for shapes and formulas). All pointers are
// device pointers (or mapped host pointers, see gather through UVA); every launch goes on
// `stream` and returns without synchronizing; launch errors throw std::runtime_error. Plain C++
// interface, so callers build with the host compiler.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dtypes.h"
#include "kernels/cpu/engram_kernels.h"
#include "traces/ngram_hash.h"

namespace engramsim::cuda {

using kernels::Dtype;

// ---- hash, all layers in one launch ----

// Parameters of every layer of `hasher`, copied once to the device.
class DeviceHashParams {
public:
    explicit DeviceHashParams(const NgramHasher& hasher);
    ~DeviceHashParams();
    DeviceHashParams(const DeviceHashParams&) = delete;
    DeviceHashParams& operator=(const DeviceHashParams&) = delete;
    int layers() const { return layers_; }
    int heads_per_layer() const { return heads_per_layer_; }
    const void* device() const { return device_; }
    int max_ngram() const { return max_ngram_; }
    uint32_t pad_id() const { return pad_id_; }

private:
    void* device_ = nullptr;
    int layers_ = 0, heads_per_layer_ = 0, max_ngram_ = 0;
    uint32_t pad_id_ = 0;
};

// d_out[(layer * T + t) * heads + head] for all layers (kernels::hash_all_layers).
void hash_all_layers(const DeviceHashParams& params, const uint32_t* d_ids, size_t tokens,
                     uint32_t* d_out, cudaStream_t stream = nullptr);

// ---- gather ----

constexpr int kMaxGatherHeads = 64;

// A table on the device, or in mapped pinned host memory (rows read through UVA): pointers as
// the kernel sees them. Head offsets and sizes travel in the kernel arguments.
struct DeviceTable {
    const uint8_t* rows = nullptr;
    uint64_t total_rows = 0;
    Dtype dtype = Dtype::bf16;
    int row_values = 0;
    int heads = 0;
    uint64_t head_offsets[kMaxGatherHeads] = {};
    uint64_t head_rows[kMaxGatherHeads] = {};
    const float* scales = nullptr;  // fp8 only, scale_blocks() per row
    int scale_block_values = 0;

    size_t row_bytes() const { return size_t(row_values) * size_t(kernels::dtype_size_bytes(dtype)); }
    int scale_blocks() const {
        return scale_block_values > 0 ? (row_values + scale_block_values - 1) / scale_block_values
                                      : 0;
    }
    // From a host TableView whose data were copied to `d_rows` / `d_scales` (same layout).
    static DeviceTable from_view(const kernels::TableView& view, const uint8_t* d_rows,
                                 const float* d_scales);
};

// Byte-for-byte row copy (kernels::gather_rows). Row ids past their head's table are not read:
// their output row is zero-filled and *d_bad_ids (if given) counts them.
void gather_rows(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                 uint8_t* d_out, uint32_t* d_bad_ids = nullptr, cudaStream_t stream = nullptr);

// The scales of fp8 rows (kernels::gather_scales): d_out [n_rows][scale_blocks()]. Out-of-range
// ids get zero scales (and are counted by gather_rows).
void gather_scales(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                   float* d_out, cudaStream_t stream = nullptr);

// Rows widened to float, fp8 times its scale (kernels::gather_rows_f32).
void gather_rows_f32(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                     float* d_out, uint32_t* d_bad_ids = nullptr, cudaStream_t stream = nullptr);

// ---- gate, conv, fused ----

// kernels::engram_gate. d_out may be null (only alpha wanted); d_mean_sq_v, if given, receives
// mean(v[t]^2) per token (used by the fused form).
void engram_gate(const kernels::GateShape& shape, const float* d_h, const float* d_k,
                 const float* d_v, const float* d_w_h, const float* d_w_k, float* d_alpha,
                 float* d_out, float* d_mean_sq_v = nullptr, cudaStream_t stream = nullptr);

// kernels::engram_short_conv. d_inv_rms_scratch holds tokens * branches floats.
void engram_short_conv(const kernels::ConvShape& shape, const float* d_x, const float* d_norm_w,
                       const float* d_conv_w, float* d_y, float* d_inv_rms_scratch,
                       cudaStream_t stream = nullptr);

// kernels::engram_gate_conv_residual in two launches: the gate kernel writes alpha [T][M] and
// mean(v^2) [T] only; the conv kernel rebuilds alpha * v for its taps, normalizes with
// rsqrt(alpha^2 mean(v^2) + eps), convolves, applies SiLU and adds alpha * v and h. The gated
// value never goes through memory. Scratch: d_alpha [T*M], d_mean_sq_v [T].
void engram_gate_conv_residual(const kernels::GateShape& gate, const kernels::ConvShape& conv,
                               const float* d_h, const float* d_k, const float* d_v,
                               const float* d_w_h, const float* d_w_k, const float* d_norm_w,
                               const float* d_conv_w, float* d_out, float* d_alpha,
                               float* d_mean_sq_v, cudaStream_t stream = nullptr);

// ---- projections through cuBLAS ----

// C[m][n] = A[m][k] B[n][k]^T in float32 (cublasSgemm, no TF32), on a per-thread cuBLAS handle.
void gemm_nt(size_t m, size_t n, size_t k, const float* d_a, const float* d_b, float* d_c,
             cudaStream_t stream = nullptr);

}  // namespace engramsim::cuda
