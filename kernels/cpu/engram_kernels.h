// CPU reference implementations of the Engram kernels (docs/ENGRAM.md section 1, steps 3-7). They
// define the semantics that the CUDA kernels in kernels/cuda/ reproduce: integer outputs bit for
// bit, floating outputs within the tolerances stated in the device tests. All activations are
// float32, row-major, token-major; norms use eps inside the square root.
//
// Shapes (T tokens, M hyper-connection branches, d values per branch):
//   hash     canonical ids [T] -> row ids [layers][T][heads], heads ordered by order then head
//   gather   row ids [T][heads] (local to each head) -> rows [T][heads][row bytes] (verbatim), or
//            widened to float [T][heads * row_values] (fp8 rows times their scale)
//   gate     h [T][M][d], k [T][M][d], v [T][d] -> alpha [T][M], out [T][M][d] = alpha * v
//   conv     x [T][M][d] -> SiLU(causal depthwise conv(RMSNorm(x))) + x
//   fused    h, k, v -> h + conv(alpha * v)   (gate -> short conv -> residual into H)
//   gemm_nt  A [m][k], B [n][k] -> C [m][n] = A B^T (the key / value projections, W in [out][in])
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/cpu/dtypes.h"
#include "traces/ngram_hash.h"

namespace engramsim::kernels {

// ---- hash ----

// Row ids of every Engram layer of `hasher`: out[(layer * T + t) * heads + head], local to the
// head's table. `out` must hold layers * T * heads_per_layer entries.
void hash_all_layers(const NgramHasher& hasher, std::span<const uint32_t> ids,
                     std::span<uint32_t> out);

// ---- gather ----

// One Engram layer's table: all heads' rows in one array, head h owning rows
// [head_offsets[h], head_offsets[h] + head_rows[h]). Non-owning.
struct TableView {
    const uint8_t* rows = nullptr;  // total_rows * row_bytes()
    uint64_t total_rows = 0;
    Dtype dtype = Dtype::bf16;
    int row_values = 0;
    std::span<const uint64_t> head_offsets;  // first row of each head
    std::span<const uint64_t> head_rows;     // rows of each head
    // fp8 only: float scales, scale_blocks() per row, row-major; scale_block_values values share
    // one scale (== row_values: one scale per row).
    const float* scales = nullptr;
    int scale_block_values = 0;

    size_t row_bytes() const { return size_t(row_values) * size_t(dtype_size_bytes(dtype)); }
    int heads() const { return int(head_offsets.size()); }
    int scale_blocks() const {
        return scale_block_values > 0 ? (row_values + scale_block_values - 1) / scale_block_values
                                      : 0;
    }
    // Throws std::invalid_argument naming what is inconsistent.
    void validate() const;
};

// rows[t][h] = table row head_offsets[h] + row_ids[t * heads + h], copied byte for byte.
// `out` holds T * heads * row_bytes bytes. A row id past its head's table throws
// std::out_of_range.
void gather_rows(const TableView& table, std::span<const uint32_t> row_ids,
                 std::span<uint8_t> out);

// The scales that go with fp8 rows copied raw by gather_rows: out[i][b] = scale b of row i,
// scale_blocks() floats per row. Throws std::invalid_argument for a table without scales.
void gather_scales(const TableView& table, std::span<const uint32_t> row_ids,
                   std::span<float> out);

// The same rows widened to float: out[t][h * row_values + i] = value (fp8: times its scale).
void gather_rows_f32(const TableView& table, std::span<const uint32_t> row_ids,
                     std::span<float> out);

// ---- gate, conv, fused ----

struct GateShape {
    size_t tokens = 0;
    int branches = 1;  // M (hyper-connection branches), 1 without mHC
    int dim = 0;       // d, values per branch
    bool signed_sqrt = true;  // demo / V4.1 form: s' = sign(s) sqrt(max(|s|, 1e-6)) before sigmoid
    float eps = 1e-6f;        // RMSNorm epsilon
    void validate() const;
};

// alpha[t][m] = sigmoid(f(RMSNorm(h[t][m]; w_h[m]) . RMSNorm(k[t][m]; w_k[m]) / sqrt(d))), with f
// the signed square root when shape.signed_sqrt, and out[t][m][:] = alpha[t][m] * v[t][:].
// Weights w_h, w_k are [M][d].
void engram_gate(const GateShape& shape, std::span<const float> h, std::span<const float> k,
                 std::span<const float> v, std::span<const float> w_h,
                 std::span<const float> w_k, std::span<float> alpha, std::span<float> out);

struct ConvShape {
    size_t tokens = 0;   // T = sequences * seq_len, sequences back to back
    size_t seq_len = 0;  // the convolution never reads across a sequence boundary
    int branches = 1;
    int dim = 0;
    int kernel = 4;
    int dilation = 3;  // Engram: the largest N-gram order
    float eps = 1e-6f;
    void validate() const;
};

// y[t][m][c] = SiLU(sum_j conv_w[m*d + c][j] * xn[t - (kernel-1-j) * dilation][m][c]) + x[t][m][c]
// with xn = RMSNorm(x[.][m]; norm_w[m]) and positions before the sequence start reading zero
// (PyTorch Conv1d with left padding (kernel-1) * dilation). conv_w is [M*d][kernel], norm_w [M][d].
void engram_short_conv(const ConvShape& shape, std::span<const float> x,
                       std::span<const float> norm_w, std::span<const float> conv_w,
                       std::span<float> y);

// The whole Engram output into the residual stream: out = h + ShortConv(alpha * v), with alpha
// and the gated value from engram_gate. `conv.branches/dim/tokens` must match `gate`.
void engram_gate_conv_residual(const GateShape& gate, const ConvShape& conv,
                               std::span<const float> h, std::span<const float> k,
                               std::span<const float> v, std::span<const float> w_h,
                               std::span<const float> w_k, std::span<const float> norm_w,
                               std::span<const float> conv_w, std::span<float> out);

// ---- projections ----

// C[m][n] = sum_k A[i][k] B[j][k], float accumulation in k order: the plain loop that the cuBLAS
// projection is checked against.
void gemm_nt(size_t m, size_t n, size_t k, std::span<const float> a, std::span<const float> b,
             std::span<float> c);

}  // namespace engramsim::kernels
