// MoE router, alignment, permutation, grouped SwiGLU GEMM (cuBLAS baseline) and combine on the
// GPU. Semantics: kernels/cpu/moe_kernels.h.
#include "kernels/cuda/moe_kernels_cuda.h"

#include <cublas_v2.h>

#include "kernels/cuda/cublas_loader.h"
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>

#include "kernels/cuda/nvtx_range.h"
#include <string>

#include "kernels/cuda/device_buffer.h"

namespace engramsim::cuda {

namespace {

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

void check_blas(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS)
        throw std::runtime_error(std::string("cuBLAS ") + what + " failed with status " +
                                 std::to_string(int(st)));
}

cublasHandle_t blas_handle() {
    thread_local cublasHandle_t handle = [] {
        cublasHandle_t h = nullptr;
        check_blas(cublas().create(&h), "cublasCreate");
        cublas().set_math_mode(h, CUBLAS_PEDANTIC_MATH);  // plain fp32, no TF32
        return h;
    }();
    return handle;
}

unsigned grid_for(size_t work, int block) {
    const size_t blocks = (work + size_t(block) - 1) / size_t(block);
    return unsigned(blocks < 65535u * 8 ? (blocks ? blocks : 1) : 65535u * 8);
}

constexpr int kMaxExpertsPerLane = 32;  // 32 lanes x 32 = 1024 experts
constexpr int kChunk = 256;             // assignments per alignment chunk (= block size)
constexpr int kMaxAlignExperts = 4096;  // shared-memory histogram bound

__global__ void topk_kernel(const float* __restrict__ logits, size_t tokens, int E, int k,
                            bool renormalize, int32_t* __restrict__ ids,
                            float* __restrict__ weights) {
    const size_t t = (size_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (t >= tokens) return;
    const float* x = logits + t * size_t(E);
    float vals[kMaxExpertsPerLane];
    const int per_lane = (E + 31) / 32;
    float mx = -INFINITY;
    for (int i = 0; i < per_lane; ++i) {
        const int e = lane + 32 * i;
        vals[i] = e < E ? x[e] : -INFINITY;
        mx = fmaxf(mx, vals[i]);
    }
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0;
    for (int i = 0; i < per_lane; ++i)
        if (lane + 32 * i < E) sum += expf(vals[i] - mx);
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    uint32_t taken = 0;
    float wsum = 0, my_w = 0;
    for (int j = 0; j < k; ++j) {
        // Lane-local best: scanning in increasing expert index with '>' keeps the lowest index.
        float best = -INFINITY;
        int best_e = 0x7fffffff;
        for (int i = 0; i < per_lane; ++i) {
            const int e = lane + 32 * i;
            if (e < E && !((taken >> i) & 1u) && (best_e == 0x7fffffff || vals[i] > best)) {
                best = vals[i];
                best_e = e;
            }
        }
        // Warp arg-max: larger value wins, equal values go to the lower expert index.
        for (int o = 16; o > 0; o >>= 1) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oe = __shfl_xor_sync(0xffffffffu, best_e, o);
            if (oe != 0x7fffffff && (best_e == 0x7fffffff || ob > best || (ob == best && oe < best_e))) {
                best = ob;
                best_e = oe;
            }
        }
        if ((best_e & 31) == lane) taken |= 1u << (best_e / 32);
        const float p = expf(best - mx) / sum;
        wsum += p;
        if (lane == j) my_w = p;
        if (lane == 0) ids[t * size_t(k) + size_t(j)] = best_e;
    }
    // k <= 32 weights are held one per lane.
    if (lane < k) weights[t * size_t(k) + size_t(lane)] = renormalize ? my_w / wsum : my_w;
}

__global__ void chunk_hist_kernel(const int32_t* __restrict__ ids, size_t n, int E,
                                  int32_t* __restrict__ chunk_counts) {
    extern __shared__ int32_t hist[];
    for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
    __syncthreads();
    const size_t a = size_t(blockIdx.x) * kChunk + threadIdx.x;
    if (a < n) {
        const int32_t e = ids[a];
        if (e >= 0 && e < E) atomicAdd(&hist[e], 1);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x)
        chunk_counts[size_t(blockIdx.x) * E + e] = hist[e];
}

// One block: totals per expert, padded segment starts, then each chunk's base slot per expert.
__global__ void align_scan_kernel(int32_t* __restrict__ chunk_counts, size_t chunks, int E,
                                  int align, int32_t* __restrict__ offsets,
                                  int32_t* __restrict__ counts) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int32_t total = 0;
        for (size_t c = 0; c < chunks; ++c) total += chunk_counts[c * E + e];
        counts[e] = total;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t run = 0;
        for (int e = 0; e < E; ++e) {
            offsets[e] = run;
            run += (counts[e] + align - 1) / align * align;
        }
        offsets[E] = run;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int32_t base = offsets[e];
        for (size_t c = 0; c < chunks; ++c) {
            const int32_t n = chunk_counts[c * E + e];
            chunk_counts[c * E + e] = base;
            base += n;
        }
    }
}

__global__ void align_place_kernel(const int32_t* __restrict__ ids, size_t n, int E,
                                   const int32_t* __restrict__ chunk_base,
                                   int32_t* __restrict__ sorted, int32_t* __restrict__ position) {
    __shared__ int32_t local[kChunk];
    const size_t a = size_t(blockIdx.x) * kChunk + threadIdx.x;
    local[threadIdx.x] = a < n ? ids[a] : -1;
    __syncthreads();
    if (a >= n) return;
    const int32_t e = local[threadIdx.x];
    if (e < 0 || e >= E) {
        position[a] = -1;
        return;
    }
    int32_t rank = 0;  // equal experts earlier in this chunk keep assignment order
    for (int j = 0; j < int(threadIdx.x); ++j) rank += local[j] == e;
    const int32_t slot = chunk_base[size_t(blockIdx.x) * E + e] + rank;
    sorted[slot] = int32_t(a);
    position[a] = slot;
}

__global__ void permute_kernel(const float* __restrict__ x, size_t hidden, int k,
                               const int32_t* __restrict__ sorted, size_t slots,
                               float* __restrict__ out) {
    const size_t total = slots * hidden;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t s = i / hidden, c = i - s * hidden;
        const int32_t a = sorted[s];
        out[i] = a < 0 ? 0.0f : x[size_t(a / k) * hidden + c];
    }
}

__global__ void swiglu_kernel(const float* __restrict__ gate_up, size_t rows, size_t I,
                              float* __restrict__ act) {
    const size_t total = rows * I;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t r = i / I, c = i - r * I;
        const float g = gate_up[r * 2 * I + c], u = gate_up[r * 2 * I + I + c];
        act[i] = g / (1.0f + expf(-g)) * u;
    }
}

__global__ void combine_kernel(const float* __restrict__ y, size_t hidden, int k,
                               const int32_t* __restrict__ position,
                               const float* __restrict__ weights, size_t tokens,
                               float* __restrict__ out) {
    const size_t total = tokens * hidden;
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += size_t(gridDim.x) * blockDim.x) {
        const size_t t = i / hidden, c = i - t * hidden;
        float acc = 0;
        for (int j = 0; j < k; ++j) {
            const size_t a = t * size_t(k) + size_t(j);
            acc += weights[a] * y[size_t(position[a]) * hidden + c];
        }
        out[i] = acc;
    }
}

}  // namespace

void router_topk_softmax(const float* d_logits, size_t tokens, int experts, int k,
                         bool renormalize, int32_t* d_expert_ids, float* d_weights,
                         cudaStream_t stream) {
    NvtxRange nvtx("router_topk_softmax");
    if (experts < 1 || experts > 32 * kMaxExpertsPerLane)
        throw std::invalid_argument("CUDA router: experts must be in [1, 1024]");
    if (k < 1 || k > experts || k > 32)
        throw std::invalid_argument("CUDA router: k must be in [1, min(experts, 32)]");
    if (tokens == 0) return;
    const int block = 256;
    topk_kernel<<<unsigned((tokens * 32 + block - 1) / block), block, 0, stream>>>(
        d_logits, tokens, experts, k, renormalize, d_expert_ids, d_weights);
    check(cudaGetLastError(), "router launch");
}

AlignWorkspace::AlignWorkspace(size_t assignments, int experts)
    : assignments_(assignments), experts_(experts) {
    if (experts < 1 || experts > kMaxAlignExperts)
        throw std::invalid_argument("CUDA align: experts must be in [1, 4096]");
    check(cudaMalloc(&chunk_counts_, std::max<size_t>(1, chunks()) * size_t(experts) * 4), "malloc");
    check(cudaMalloc(&expert_offsets_, (size_t(experts) + 1) * 4), "malloc");
    check(cudaMalloc(&expert_counts_, size_t(experts) * 4), "malloc");
}

AlignWorkspace::~AlignWorkspace() {
    cudaFree(chunk_counts_);
    cudaFree(expert_offsets_);
    cudaFree(expert_counts_);
}

size_t AlignWorkspace::chunks() const { return (assignments_ + kChunk - 1) / kChunk; }

size_t AlignWorkspace::max_slots(size_t assignments, int experts, int align_rows) {
    return assignments + size_t(experts) * size_t(align_rows - 1);
}

void align_tokens(const int32_t* d_expert_ids, size_t assignments, int experts, int align_rows,
                  AlignWorkspace& ws, int32_t* d_sorted, size_t sorted_capacity,
                  int32_t* d_position, cudaStream_t stream) {
    NvtxRange nvtx("align_tokens");
    if (align_rows < 1) throw std::invalid_argument("CUDA align: align_rows must be >= 1");
    if (assignments > ws.assignments() || experts != ws.experts())
        throw std::invalid_argument("CUDA align: workspace too small for this call");
    if (sorted_capacity < AlignWorkspace::max_slots(assignments, experts, align_rows))
        throw std::invalid_argument("CUDA align: sorted_assignments needs max_slots entries");
    check(cudaMemsetAsync(d_sorted, 0xff, sorted_capacity * 4, stream), "memset");
    const size_t chunks = (assignments + kChunk - 1) / kChunk;
    if (chunks > 0)
        chunk_hist_kernel<<<unsigned(chunks), kChunk, size_t(experts) * 4, stream>>>(
            d_expert_ids, assignments, experts, ws.chunk_counts());
    align_scan_kernel<<<1, 1024, 0, stream>>>(ws.chunk_counts(), chunks, experts, align_rows,
                                              ws.expert_offsets(), ws.expert_counts());
    if (chunks > 0)
        align_place_kernel<<<unsigned(chunks), kChunk, 0, stream>>>(
            d_expert_ids, assignments, experts, ws.chunk_counts(), d_sorted, d_position);
    check(cudaGetLastError(), "align launch");
}

void permute_rows(const float* d_x, size_t hidden, int k, const int32_t* d_sorted, size_t slots,
                  float* d_out, cudaStream_t stream) {
    NvtxRange nvtx("permute_rows");
    if (slots == 0) return;
    permute_kernel<<<grid_for(slots * hidden, 256), 256, 0, stream>>>(d_x, hidden, k, d_sorted,
                                                                     slots, d_out);
    check(cudaGetLastError(), "permute launch");
}

void grouped_swiglu_cublas(const float* d_x, const std::vector<int32_t>& off, size_t H,
                           size_t I, const float* d_w1, const float* d_w2, float* d_gate_up,
                           float* d_act, float* d_out, cudaStream_t stream) {
    NvtxRange nvtx("grouped_swiglu_cublas");
    if (off.size() < 2) throw std::invalid_argument("grouped gemm: needs at least one expert");
    const size_t E = off.size() - 1;
    std::vector<cublasOperation_t> ta, tb;
    std::vector<int> m1, n1, k1, lda1, ldb1, ldc1, m2, n2, k2, lda2, ldb2, ldc2, size;
    std::vector<const void*> a1, b1, a2, b2;
    std::vector<void*> c1, c2;
    std::vector<float> alpha, beta;
    for (size_t e = 0; e < E; ++e) {
        const int rows = off[e + 1] - off[e];
        if (rows == 0) continue;
        ta.push_back(CUBLAS_OP_T);
        tb.push_back(CUBLAS_OP_N);
        // gate_up_e [rows][2I] = X_e [rows][H] W1_e [2I][H]^T (see gemm_nt for the layout).
        m1.push_back(int(2 * I)); n1.push_back(rows); k1.push_back(int(H));
        lda1.push_back(int(H)); ldb1.push_back(int(H)); ldc1.push_back(int(2 * I));
        a1.push_back(d_w1 + e * 2 * I * H);
        b1.push_back(d_x + size_t(off[e]) * H);
        c1.push_back(d_gate_up + size_t(off[e]) * 2 * I);
        // out_e [rows][H] = act_e [rows][I] W2_e [H][I]^T.
        m2.push_back(int(H)); n2.push_back(rows); k2.push_back(int(I));
        lda2.push_back(int(I)); ldb2.push_back(int(I)); ldc2.push_back(int(H));
        a2.push_back(d_w2 + e * H * I);
        b2.push_back(d_act + size_t(off[e]) * I);
        c2.push_back(d_out + size_t(off[e]) * H);
        size.push_back(1);
        alpha.push_back(1.0f);
        beta.push_back(0.0f);
    }
    const int groups = int(size.size());
    if (groups == 0) return;
    // The pointer arrays must be in device memory.
    DeviceBuffer<const void*> da1(a1), db1(b1), da2(a2), db2(b2);
    DeviceBuffer<void*> dc1(c1), dc2(c2);
    cublasHandle_t h = blas_handle();
    check_blas(cublas().set_stream(h, stream), "set stream");
    check_blas(cublas().gemm_grouped_batched_ex(h, ta.data(), tb.data(), m1.data(), n1.data(), k1.data(),
                                          alpha.data(), da1.get(), CUDA_R_32F, lda1.data(),
                                          db1.get(), CUDA_R_32F, ldb1.data(), beta.data(),
                                          dc1.get(), CUDA_R_32F, ldc1.data(), groups, size.data(),
                                          CUBLAS_COMPUTE_32F),
               "grouped GEMM (gate/up)");
    const size_t rows = size_t(off.back());
    swiglu_kernel<<<grid_for(rows * I, 256), 256, 0, stream>>>(d_gate_up, rows, I, d_act);
    check(cudaGetLastError(), "swiglu launch");
    check_blas(cublas().gemm_grouped_batched_ex(h, ta.data(), tb.data(), m2.data(), n2.data(), k2.data(),
                                          alpha.data(), da2.get(), CUDA_R_32F, lda2.data(),
                                          db2.get(), CUDA_R_32F, ldb2.data(), beta.data(),
                                          dc2.get(), CUDA_R_32F, ldc2.data(), groups, size.data(),
                                          CUBLAS_COMPUTE_32F),
               "grouped GEMM (down)");
    // The pointer arrays are freed when this returns: wait for the calls that read them.
    check(cudaStreamSynchronize(stream), "grouped GEMM sync");
}

void dense_gemm_nt(size_t m, size_t n, size_t k, const float* d_a, const float* d_b, float* d_c,
                   cudaStream_t stream) {
    NvtxRange nvtx("dense_gemm_nt");
    if (m == 0 || n == 0) return;
    cublasHandle_t h = blas_handle();
    check_blas(cublas().set_stream(h, stream), "set stream");
    const float one = 1.0f, zero = 0.0f;
    check_blas(cublas().sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &one, d_b, int(k),
                           d_a, int(k), &zero, d_c, int(n)),
               "cublasSgemm");
}

void combine(const float* d_y, size_t hidden, int k, const int32_t* d_position,
             const float* d_weights, size_t tokens, float* d_out, cudaStream_t stream) {
    NvtxRange nvtx("combine");
    if (tokens == 0) return;
    combine_kernel<<<grid_for(tokens * hidden, 256), 256, 0, stream>>>(d_y, hidden, k, d_position,
                                                                      d_weights, tokens, d_out);
    check(cudaGetLastError(), "combine launch");
}

}  // namespace engramsim::cuda
