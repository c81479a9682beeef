// Engram gather, gate, short conv and the fused gate -> conv -> residual on the GPU, plus the
// cuBLAS projection. Semantics: kernels/cpu/engram_kernels.h.
#include "kernels/cuda/engram_kernels_cuda.h"

#include <cublas_v2.h>

#include "kernels/cuda/cublas_loader.h"
#include <cuda_runtime.h>

#include <stdexcept>

#include "kernels/cuda/nvtx_range.h"
#include <string>

namespace engramsim::cuda {

namespace {

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

// Kernel-argument copy of a table: head offsets / sizes live in the parameter space (constant
// bank), read by every thread without a memory access.
struct TableArgs {
    const uint8_t* rows;
    uint64_t head_offsets[kMaxGatherHeads];
    uint64_t head_rows[kMaxGatherHeads];
    const float* scales;
    uint32_t row_bytes;
    int heads;
    int row_values;
    int scale_blocks;
    int scale_block_values;
    Dtype dtype;
};

TableArgs table_args(const DeviceTable& t) {
    if (t.heads < 1 || t.heads > kMaxGatherHeads)
        throw std::invalid_argument("gather: heads must be in [1, " +
                                    std::to_string(kMaxGatherHeads) + "]");
    if (t.row_values < 1) throw std::invalid_argument("gather: row_values must be positive");
    if (t.dtype == Dtype::fp8_e4m3 && (t.scales == nullptr || t.scale_block_values < 1))
        throw std::invalid_argument("gather: fp8 rows need scales and scale_block_values");
    TableArgs a{};
    a.rows = t.rows;
    for (int h = 0; h < t.heads; ++h) {
        if (t.head_offsets[h] + t.head_rows[h] > t.total_rows)
            throw std::invalid_argument("gather: head " + std::to_string(h) +
                                        " ends past the table");
        a.head_offsets[h] = t.head_offsets[h];
        a.head_rows[h] = t.head_rows[h];
    }
    a.scales = t.scales;
    a.row_bytes = uint32_t(t.row_bytes());
    a.heads = t.heads;
    a.row_values = t.row_values;
    a.scale_blocks = t.scale_blocks();
    a.scale_block_values = t.scale_block_values;
    a.dtype = t.dtype;
    return a;
}

// Raw gather: each thread moves one V-byte chunk (V = 16 when rows allow it), consecutive threads
// along a row and then on to the next row, so a warp issues wide coalesced reads of whole rows.
template <typename V>
__global__ void gather_raw_kernel(TableArgs t, const uint32_t* __restrict__ ids, size_t n_rows,
                                  uint8_t* __restrict__ out, uint32_t* bad) {
    const uint32_t chunks_per_row = t.row_bytes / sizeof(V);
    const size_t total = n_rows * chunks_per_row;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t r = i / chunks_per_row;
        const uint32_t c = uint32_t(i - r * chunks_per_row);
        const int h = int(r % uint32_t(t.heads));
        const uint32_t id = __ldg(ids + r);
        V* dst = reinterpret_cast<V*>(out + r * t.row_bytes) + c;
        if (id >= t.head_rows[h]) {
            *dst = V{};
            if (bad && c == 0) atomicAdd(bad, 1u);
            continue;
        }
        const V* src =
            reinterpret_cast<const V*>(t.rows + (t.head_offsets[h] + id) * t.row_bytes) + c;
        *dst = *src;
    }
}

__global__ void gather_f32_kernel(TableArgs t, const uint32_t* __restrict__ ids, size_t n_rows,
                                  float* __restrict__ out, uint32_t* bad) {
    const size_t total = n_rows * size_t(t.row_values);
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t r = i / uint32_t(t.row_values);
        const int c = int(i - r * uint32_t(t.row_values));
        const int h = int(r % uint32_t(t.heads));
        const uint32_t id = __ldg(ids + r);
        if (id >= t.head_rows[h]) {
            out[i] = 0.0f;
            if (bad && c == 0) atomicAdd(bad, 1u);
            continue;
        }
        const uint64_t row = t.head_offsets[h] + id;
        float x = kernels::load_element(t.rows + row * t.row_bytes, t.dtype, c);
        if (t.dtype == Dtype::fp8_e4m3)
            x = __fmul_rn(x, t.scales[row * uint64_t(t.scale_blocks) + uint64_t(c / t.scale_block_values)]);
        out[i] = x;
    }
}

__global__ void gather_scales_kernel(TableArgs t, const uint32_t* __restrict__ ids, size_t n_rows,
                                     float* __restrict__ out) {
    const size_t total = n_rows * size_t(t.scale_blocks);
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t r = i / uint32_t(t.scale_blocks);
        const int b = int(i - r * uint32_t(t.scale_blocks));
        const int h = int(r % uint32_t(t.heads));
        const uint32_t id = __ldg(ids + r);
        out[i] = id < t.head_rows[h]
                     ? t.scales[(t.head_offsets[h] + id) * uint64_t(t.scale_blocks) + uint64_t(b)]
                     : 0.0f;
    }
}

unsigned grid_for(size_t work, int block) {
    // Enough blocks to fill any current GPU several times over; grid-stride loops do the rest.
    const size_t blocks = (work + size_t(block) - 1) / size_t(block);
    return unsigned(blocks < 65535u * 8 ? (blocks ? blocks : 1) : 65535u * 8);
}

// Sum over the block of up to kMaxSums values per thread; result valid in every thread.
constexpr int kMaxSums = 3 * 8 + 1;  // gate: 3 sums per branch (M <= 8) + mean(v^2)

template <int kBlock>
__device__ void block_sum(float* vals, int n, float (*shared)[32]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int j = 0; j < n; ++j) {
        float x = vals[j];
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
        if (lane == 0) shared[j][warp] = x;
    }
    __syncthreads();
    for (int j = 0; j < n; ++j) {
        float x = lane < kBlock / 32 ? shared[j][lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
        vals[j] = x;
    }
    __syncthreads();
}

constexpr int kGateBlock = 256;

// One block per token: the 3M partial sums (|h|^2, |k|^2, h.w_h.k.w_k per branch) and |v|^2,
// one block reduction, M gates, then out[m][c] = alpha_m v[c] with v read once.
__global__ void __launch_bounds__(kGateBlock)
gate_kernel(int M, int d, bool signed_sqrt, float eps, const float* __restrict__ h,
            const float* __restrict__ k, const float* __restrict__ v,
            const float* __restrict__ w_h, const float* __restrict__ w_k,
            float* __restrict__ alpha, float* __restrict__ out, float* __restrict__ mean_sq_v) {
    __shared__ float partial[kMaxSums][32];
    const size_t t = blockIdx.x;
    float sums[kMaxSums];
    for (int j = 0; j < 3 * M + 1; ++j) sums[j] = 0.0f;
    const float* vt = v + t * size_t(d);
    for (int m = 0; m < M; ++m) {
        const float* ht = h + (t * M + m) * size_t(d);
        const float* kt = k + (t * M + m) * size_t(d);
        for (int c = threadIdx.x; c < d; c += kGateBlock) {
            const float hv = ht[c], kv = kt[c];
            sums[3 * m] += hv * hv;
            sums[3 * m + 1] += kv * kv;
            sums[3 * m + 2] += hv * w_h[m * d + c] * kv * w_k[m * d + c];
        }
    }
    if (mean_sq_v)
        for (int c = threadIdx.x; c < d; c += kGateBlock) sums[3 * M] += vt[c] * vt[c];
    block_sum<kGateBlock>(sums, 3 * M + 1, partial);
    const float inv_sqrt_d = rsqrtf(float(d));
    float a[8];
    for (int m = 0; m < M; ++m) {
        const float rh = 1.0f / sqrtf(sums[3 * m] / float(d) + eps);
        const float rk = 1.0f / sqrtf(sums[3 * m + 1] / float(d) + eps);
        float s = sums[3 * m + 2] * rh * rk * inv_sqrt_d;
        if (signed_sqrt) s = copysignf(sqrtf(fmaxf(fabsf(s), 1e-6f)), s);
        a[m] = 1.0f / (1.0f + expf(-s));
    }
    if (threadIdx.x < M) alpha[t * M + threadIdx.x] = a[threadIdx.x];
    if (threadIdx.x == 0 && mean_sq_v) mean_sq_v[t] = sums[3 * M] / float(d);
    if (out)
        for (int c = threadIdx.x; c < d; c += kGateBlock) {
            const float vc = vt[c];
            for (int m = 0; m < M; ++m) out[(t * M + m) * size_t(d) + c] = a[m] * vc;
        }
}

// One warp per (token, branch): 1 / sqrt(mean(x^2) + eps).
__global__ void inv_rms_kernel(size_t rows, int d, float eps, const float* __restrict__ x,
                               float* __restrict__ inv_rms) {
    const size_t row = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* xr = x + row * size_t(d);
    float s = 0;
    for (int c = lane; c < d; c += 32) s += xr[c] * xr[c];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) inv_rms[row] = 1.0f / sqrtf(s / float(d) + eps);
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

// One thread per output (t, m, c). Taps read x at t - (K-1-j) dilation inside the sequence.
__global__ void conv_kernel(size_t tokens, size_t seq_len, int M, int d, int K, int dilation,
                            const float* __restrict__ x, const float* __restrict__ inv_rms,
                            const float* __restrict__ norm_w, const float* __restrict__ conv_w,
                            float* __restrict__ y) {
    const size_t per_token = size_t(M) * size_t(d);
    const size_t total = tokens * per_token;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t t = i / per_token;
        const int mc = int(i - t * per_token);
        const int m = mc / d;
        const size_t pos = t % seq_len;
        const float* w = conv_w + size_t(mc) * size_t(K);
        const float nw = norm_w[mc];
        float acc = 0;
        for (int j = 0; j < K; ++j) {
            const size_t back = size_t(K - 1 - j) * size_t(dilation);
            if (back > pos) continue;
            const size_t ts = t - back;
            acc += w[j] * (x[ts * per_token + mc] * inv_rms[ts * M + m] * nw);
        }
        y[i] = silu(acc) + x[i];
    }
}

// Fused: x = alpha * v is rebuilt for each tap from alpha [T][M] and v [T][d];
// out = h + SiLU(conv(RMSNorm(x))) + x.
__global__ void fused_conv_kernel(size_t tokens, size_t seq_len, int M, int d, int K,
                                  int dilation, float eps, const float* __restrict__ h,
                                  const float* __restrict__ v, const float* __restrict__ alpha,
                                  const float* __restrict__ mean_sq_v,
                                  const float* __restrict__ norm_w,
                                  const float* __restrict__ conv_w, float* __restrict__ out) {
    const size_t per_token = size_t(M) * size_t(d);
    const size_t total = tokens * per_token;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t t = i / per_token;
        const int mc = int(i - t * per_token);
        const int m = mc / d, c = mc - m * d;
        const size_t pos = t % seq_len;
        const float* w = conv_w + size_t(mc) * size_t(K);
        const float nw = norm_w[mc];
        float acc = 0;
        for (int j = 0; j < K; ++j) {
            const size_t back = size_t(K - 1 - j) * size_t(dilation);
            if (back > pos) continue;
            const size_t ts = t - back;
            const float a = alpha[ts * M + m];
            const float inv = 1.0f / sqrtf(a * a * mean_sq_v[ts] + eps);
            acc += w[j] * ((a * v[ts * size_t(d) + c]) * inv * nw);
        }
        out[i] = h[i] + (silu(acc) + alpha[t * M + m] * v[t * size_t(d) + c]);
    }
}

cublasHandle_t blas_handle() {
    // One handle per host thread (cuBLAS handles are not thread-safe), created on first use and
    // kept for the life of the process.
    thread_local cublasHandle_t handle = [] {
        cublasHandle_t h = nullptr;
        if (cublas().create(&h) != CUBLAS_STATUS_SUCCESS)
            throw std::runtime_error("cuBLAS: cublasCreate failed");
        cublas().set_math_mode(h, CUBLAS_PEDANTIC_MATH);  // plain fp32, no TF32
        return h;
    }();
    return handle;
}

}  // namespace

DeviceTable DeviceTable::from_view(const kernels::TableView& view, const uint8_t* d_rows,
                                   const float* d_scales) {
    view.validate();
    if (view.heads() > kMaxGatherHeads)
        throw std::invalid_argument("gather: at most 64 heads per table");
    DeviceTable t;
    t.rows = d_rows;
    t.total_rows = view.total_rows;
    t.dtype = view.dtype;
    t.row_values = view.row_values;
    t.heads = view.heads();
    for (int h = 0; h < t.heads; ++h) {
        t.head_offsets[h] = view.head_offsets[size_t(h)];
        t.head_rows[h] = view.head_rows[size_t(h)];
    }
    t.scales = d_scales;
    t.scale_block_values = view.scale_block_values;
    return t;
}

void gather_rows(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                 uint8_t* d_out, uint32_t* d_bad_ids, cudaStream_t stream) {
    NvtxRange nvtx("gather_rows");
    const TableArgs a = table_args(table);
    if (n_rows == 0) return;
    const int block = 256;
    // The widest chunk that divides the row and keeps every row aligned in table and output.
    const uintptr_t align = reinterpret_cast<uintptr_t>(table.rows) |
                            reinterpret_cast<uintptr_t>(d_out) | a.row_bytes;
    if (align % 16 == 0)
        gather_raw_kernel<uint4><<<grid_for(n_rows * a.row_bytes / 16, block), block, 0, stream>>>(
            a, d_row_ids, n_rows, d_out, d_bad_ids);
    else if (align % 8 == 0)
        gather_raw_kernel<uint2><<<grid_for(n_rows * a.row_bytes / 8, block), block, 0, stream>>>(
            a, d_row_ids, n_rows, d_out, d_bad_ids);
    else if (align % 4 == 0)
        gather_raw_kernel<uint32_t><<<grid_for(n_rows * a.row_bytes / 4, block), block, 0, stream>>>(
            a, d_row_ids, n_rows, d_out, d_bad_ids);
    else
        gather_raw_kernel<uint8_t><<<grid_for(n_rows * a.row_bytes, block), block, 0, stream>>>(
            a, d_row_ids, n_rows, d_out, d_bad_ids);
    check(cudaGetLastError(), "gather_rows launch");
}

void gather_scales(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                   float* d_out, cudaStream_t stream) {
    NvtxRange nvtx("gather_scales");
    const TableArgs a = table_args(table);
    if (a.scales == nullptr || a.scale_blocks < 1)
        throw std::invalid_argument("gather_scales: the table has no scales");
    if (n_rows == 0) return;
    gather_scales_kernel<<<grid_for(n_rows * size_t(a.scale_blocks), 256), 256, 0, stream>>>(
        a, d_row_ids, n_rows, d_out);
    check(cudaGetLastError(), "gather_scales launch");
}

void gather_rows_f32(const DeviceTable& table, const uint32_t* d_row_ids, size_t n_rows,
                     float* d_out, uint32_t* d_bad_ids, cudaStream_t stream) {
    NvtxRange nvtx("gather_rows_f32");
    const TableArgs a = table_args(table);
    if (n_rows == 0) return;
    const int block = 256;
    gather_f32_kernel<<<grid_for(n_rows * size_t(a.row_values), block), block, 0, stream>>>(
        a, d_row_ids, n_rows, d_out, d_bad_ids);
    check(cudaGetLastError(), "gather_rows_f32 launch");
}

void engram_gate(const kernels::GateShape& s, const float* d_h, const float* d_k,
                 const float* d_v, const float* d_w_h, const float* d_w_k, float* d_alpha,
                 float* d_out, float* d_mean_sq_v, cudaStream_t stream) {
    NvtxRange nvtx("engram_gate");
    s.validate();
    if (s.branches > 8) throw std::invalid_argument("CUDA gate: at most 8 branches");
    if (s.tokens == 0) return;
    if (s.tokens > 0x7fffffffu) throw std::invalid_argument("CUDA gate: too many tokens");
    gate_kernel<<<unsigned(s.tokens), kGateBlock, 0, stream>>>(
        s.branches, s.dim, s.signed_sqrt, s.eps, d_h, d_k, d_v, d_w_h, d_w_k, d_alpha, d_out,
        d_mean_sq_v);
    check(cudaGetLastError(), "gate launch");
}

void engram_short_conv(const kernels::ConvShape& s, const float* d_x, const float* d_norm_w,
                       const float* d_conv_w, float* d_y, float* d_inv_rms_scratch,
                       cudaStream_t stream) {
    NvtxRange nvtx("engram_short_conv");
    s.validate();
    if (s.tokens == 0) return;
    const size_t rows = s.tokens * size_t(s.branches);
    inv_rms_kernel<<<unsigned((rows * 32 + 255) / 256), 256, 0, stream>>>(rows, s.dim, s.eps, d_x,
                                                                         d_inv_rms_scratch);
    check(cudaGetLastError(), "inv_rms launch");
    const size_t total = rows * size_t(s.dim);
    conv_kernel<<<grid_for(total, 256), 256, 0, stream>>>(s.tokens, s.seq_len, s.branches, s.dim,
                                                          s.kernel, s.dilation, d_x,
                                                          d_inv_rms_scratch, d_norm_w, d_conv_w,
                                                          d_y);
    check(cudaGetLastError(), "conv launch");
}

void engram_gate_conv_residual(const kernels::GateShape& g, const kernels::ConvShape& c,
                               const float* d_h, const float* d_k, const float* d_v,
                               const float* d_w_h, const float* d_w_k, const float* d_norm_w,
                               const float* d_conv_w, float* d_out, float* d_alpha,
                               float* d_mean_sq_v, cudaStream_t stream) {
    NvtxRange nvtx("engram_gate_conv_residual");
    c.validate();
    if (c.tokens != g.tokens || c.branches != g.branches || c.dim != g.dim)
        throw std::invalid_argument("fused gate/conv: shapes disagree");
    engram_gate(g, d_h, d_k, d_v, d_w_h, d_w_k, d_alpha, nullptr, d_mean_sq_v, stream);
    if (g.tokens == 0) return;
    const size_t total = g.tokens * size_t(g.branches) * size_t(g.dim);
    fused_conv_kernel<<<grid_for(total, 256), 256, 0, stream>>>(
        c.tokens, c.seq_len, c.branches, c.dim, c.kernel, c.dilation, c.eps, d_h, d_v, d_alpha,
        d_mean_sq_v, d_norm_w, d_conv_w, d_out);
    check(cudaGetLastError(), "fused conv launch");
}

void gemm_nt(size_t m, size_t n, size_t k, const float* d_a, const float* d_b, float* d_c,
             cudaStream_t stream) {
    NvtxRange nvtx("gemm_nt");
    if (m == 0 || n == 0) return;
    cublasHandle_t h = blas_handle();
    cublas().set_stream(h, stream);
    const float one = 1.0f, zero = 0.0f;
    // cuBLAS is column-major: row-major C[m][n] is the column-major n x m matrix C^T = B A^T.
    // Row-major B [n][k] reads as column-major k x n, so op = T gives n x k; row-major A [m][k]
    // reads as column-major k x m, op = N.
    const cublasStatus_t st =
        cublas().sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, d_b, int(k), d_a,
                    int(k), &zero, d_c, int(n));
    if (st != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error("cuBLAS: cublasSgemm failed with status " + std::to_string(st));
}

}  // namespace engramsim::cuda
