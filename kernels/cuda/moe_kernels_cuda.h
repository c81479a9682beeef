// MoE kernels on the GPU, the same semantics as kernels/cpu/moe_kernels.h. Device pointers,
// asynchronous on `stream` unless stated; launch or library errors throw std::runtime_error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engramsim::cuda {

// kernels::router_topk_softmax: one warp per token, k rounds of warp arg-max (ties to the lower
// expert index). Up to 1024 experts.
void router_topk_softmax(const float* d_logits, size_t tokens, int experts, int k,
                         bool renormalize, int32_t* d_expert_ids, float* d_weights,
                         cudaStream_t stream = nullptr);

// Workspace of align_tokens for up to `assignments` assignments and `experts` experts.
class AlignWorkspace {
public:
    AlignWorkspace(size_t assignments, int experts);
    ~AlignWorkspace();
    AlignWorkspace(const AlignWorkspace&) = delete;
    AlignWorkspace& operator=(const AlignWorkspace&) = delete;
    size_t assignments() const { return assignments_; }
    int experts() const { return experts_; }
    int32_t* chunk_counts() const { return chunk_counts_; }  // [chunks][experts]
    int32_t* expert_offsets() const { return expert_offsets_; }  // experts + 1
    int32_t* expert_counts() const { return expert_counts_; }    // experts
    size_t chunks() const;
    // Slots needed in the worst case: every expert padded: assignments + experts * (align - 1).
    static size_t max_slots(size_t assignments, int experts, int align_rows);

private:
    size_t assignments_ = 0;
    int experts_ = 0;
    int32_t* chunk_counts_ = nullptr;
    int32_t* expert_offsets_ = nullptr;
    int32_t* expert_counts_ = nullptr;
};

// kernels::align_tokens, deterministic: assignments are cut into chunks of 256; per-chunk
// histograms, a scan over chunks per expert (one block), then every assignment's slot is its
// expert's segment start + earlier chunks' count + its rank among equal experts in its chunk.
// Same slots as the CPU reference, run after run. Writes ws.expert_offsets() (experts + 1),
// ws.expert_counts(), d_sorted_assignments (max_slots entries; padding and unused slots -1) and
// d_position_of_assignment.
void align_tokens(const int32_t* d_expert_ids, size_t assignments, int experts, int align_rows,
                  AlignWorkspace& ws, int32_t* d_sorted_assignments, size_t sorted_capacity,
                  int32_t* d_position_of_assignment, cudaStream_t stream = nullptr);

// kernels::permute_rows over `slots` slots.
void permute_rows(const float* d_x, size_t hidden, int k, const int32_t* d_sorted_assignments,
                  size_t slots, float* d_out, cudaStream_t stream = nullptr);

// kernels::grouped_swiglu through cuBLAS grouped GEMM (cublasGemmGroupedBatchedEx, fp32): one
// group per non-empty expert for X W1^T, a SwiGLU kernel, one grouped call for act W2^T.
// `host_offsets` (experts + 1) are the segment starts; d_gate_up [slots][2I] and d_act [slots][I]
// are scratch. Synchronizes with the host to upload the pointer arrays.
void grouped_swiglu_cublas(const float* d_x, const std::vector<int32_t>& host_offsets,
                           size_t hidden, size_t intermediate, const float* d_w1,
                           const float* d_w2, float* d_gate_up, float* d_act, float* d_out,
                           cudaStream_t stream = nullptr);

// The dense baseline of the same work: one fp32 GEMM C[m][n] = A[m][k] B[n][k]^T (cublasSgemm),
// as kernels::gemm_nt.
void dense_gemm_nt(size_t m, size_t n, size_t k, const float* d_a, const float* d_b, float* d_c,
                   cudaStream_t stream = nullptr);

// kernels::combine.
void combine(const float* d_y, size_t hidden, int k, const int32_t* d_position_of_assignment,
             const float* d_weights, size_t tokens, float* d_out, cudaStream_t stream = nullptr);

}  // namespace engramsim::cuda
