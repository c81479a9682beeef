// CUDA MoE kernels against their CPU references (kernels/cpu/moe_kernels.h). Skipped, saying
// why, where no GPU is.
//
// Tolerances: expert ids, alignment and permutation bit-exact; router weights
// |err| <= 1e-6 + 1e-5 |ref|; grouped SwiGLU and combine |err| <= 1e-5 + 1e-4 |ref|.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cpu/moe_kernels.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/engram_hash_cuda.h"
#include "kernels/cuda/moe_kernels_cuda.h"
#include "tests/device/device_test_util.h"

using namespace engramsim;
using cuda::DeviceBuffer;
using test::expect_close;
using test::random_floats;

TEST(DeviceMoe, RouterTopKWithTies) {
    REQUIRE_GPU();
    const size_t T = 1000;
    for (int E : {8, 72, 256}) {
        const int K = std::min(6, E);
        auto logits = random_floats(T * size_t(E), 1, -3, 3);
        for (size_t i = 0; i < T * size_t(E) / 2; ++i) logits[i] = std::round(logits[i]);  // ties
        for (bool renorm : {false, true}) {
            std::vector<int32_t> ids(T * size_t(K));
            std::vector<float> w(ids.size());
            kernels::router_topk_softmax(logits, T, E, K, renorm, ids, w);
            DeviceBuffer<float> dl(logits), dw(w.size());
            DeviceBuffer<int32_t> di(ids.size());
            cuda::router_topk_softmax(dl.get(), T, E, K, renorm, di.get(), dw.get());
            EXPECT_EQ(di.download(), ids) << "experts " << E;
            expect_close(dw.download(), w, 1e-6, 1e-5, "weights");
        }
    }
}

TEST(DeviceMoe, AlignPermuteGroupedGemmCombine) {
    REQUIRE_GPU();
    const int E = 16, K = 4, align = 16;
    const size_t T = 1500, H = 256, I = 384;
    std::mt19937 rng(2);
    std::vector<int32_t> ids(T * K);
    for (size_t t = 0; t < T; ++t)
        for (int j = 0; j < K; ++j) ids[t * K + j] = int32_t((t * 7 + size_t(j) * 5 + rng() % 3) % E);
    auto weights = random_floats(T * K, 3, 0.1f, 1.0f);
    auto x = random_floats(T * H, 4);
    auto w1 = random_floats(size_t(E) * 2 * I * H, 5, -0.1f, 0.1f);
    auto w2 = random_floats(size_t(E) * H * I, 6, -0.1f, 0.1f);
    const auto a = kernels::align_tokens(ids, E, align);
    const size_t slots = size_t(a.expert_offsets.back());

    DeviceBuffer<int32_t> di(ids);
    cuda::AlignWorkspace ws(ids.size(), E);
    const size_t cap = cuda::AlignWorkspace::max_slots(ids.size(), E, align);
    DeviceBuffer<int32_t> dsorted(cap), dpos(ids.size());
    for (int run = 0; run < 2; ++run) {  // deterministic: the same slots every run
        cuda::align_tokens(di.get(), ids.size(), E, align, ws, dsorted.get(), cap, dpos.get());
        auto sorted = dsorted.download();
        std::vector<int32_t> offsets(size_t(E) + 1);
        cuda::check_cuda(cudaMemcpy(offsets.data(), ws.expert_offsets(), offsets.size() * 4,
                                    cudaMemcpyDeviceToHost), "copy");
        EXPECT_EQ(offsets, a.expert_offsets);
        sorted.resize(slots);
        EXPECT_EQ(sorted, a.sorted_assignments);
        EXPECT_EQ(dpos.download(), a.position_of_assignment);
    }

    std::vector<float> xp(slots * H), yp(slots * H), out(T * H);
    kernels::permute_rows(x, H, K, a.sorted_assignments, xp);
    kernels::grouped_swiglu(xp, a.expert_offsets, H, I, w1, w2, yp);
    kernels::combine(yp, H, K, a.position_of_assignment, weights, out);

    DeviceBuffer<float> dx(x), dxp(slots * H), dw1(w1), dw2(w2), dgu(slots * 2 * I),
        dact(slots * I), dyp(slots * H), dwts(weights), dout(T * H);
    cuda::permute_rows(dx.get(), H, K, dsorted.get(), slots, dxp.get());
    EXPECT_EQ(dxp.download(), xp);
    cuda::grouped_swiglu_cublas(dxp.get(), a.expert_offsets, H, I, dw1.get(), dw2.get(),
                                dgu.get(), dact.get(), dyp.get());
    expect_close(dyp.download(), yp, 1e-5, 1e-4, "grouped swiglu");
    cuda::combine(dyp.get(), H, K, dpos.get(), dwts.get(), T, dout.get());
    expect_close(dout.download(), out, 1e-5, 1e-4, "combine");
}
