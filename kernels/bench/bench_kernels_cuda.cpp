// CUDA kernels under Google Benchmark. Each iteration flushes the L2 (a memset of twice its
// size), then times the call alone with CUDA events (manual time); bytes and FLOPs come from
// kernels/profiler/work.h, so GB/s and FLOP/s are derived by the harness. The ceilings run in the
// same binary:
//   BM_DeviceCopy        cudaMemcpyAsync device to device, 1 GiB, bytes read + written
//   BM_CublasDense       cublasSgemm at the MoE prefill shape (49152 x 3072 x 2560)
// and the targets are ratios to them: gather >= 80% of BM_DeviceCopy, gate / conv >= 75%,
// grouped GEMM >= 50% of BM_CublasDense's FLOP rate. Without a GPU every benchmark reports
// SkipWithError saying why.
#include <benchmark/benchmark.h>

#include <cuda_runtime_api.h>

#include <functional>
#include <memory>
#include <random>

#include "kernels/cpu/moe_kernels.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/engram_hash_cuda.h"
#include "kernels/cuda/engram_kernels_cuda.h"
#include "kernels/cuda/moe_kernels_cuda.h"
#include "kernels/profiler/work.h"
#include "kernels/cpu/random_inputs.h"

namespace {

using namespace engramsim;
using cuda::check_cuda;
using cuda::DeviceBuffer;
using cuda::device_filled;
using kernels::random_floats;

bool need_gpu(benchmark::State& state) {
    std::string why;
    if (cuda::device_available(&why)) return true;
    state.SkipWithError(("no GPU: " + why).c_str());
    return false;
}

// Flushes L2, then times `call` with events; reports manual time, bytes and FLOPs.
void run(benchmark::State& state, const profiler::ProfilePoint& work,
         const std::function<void()>& call) {
    int dev = 0, l2 = 0;
    check_cuda(cudaGetDevice(&dev), "device");
    check_cuda(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), "L2");
    DeviceBuffer<uint8_t> flush(2 * size_t(l2));
    cudaEvent_t e0, e1;
    check_cuda(cudaEventCreate(&e0), "event");
    check_cuda(cudaEventCreate(&e1), "event");
    call();  // warm-up
    check_cuda(cudaDeviceSynchronize(), "warm-up");
    for (auto _ : state) {
        check_cuda(cudaMemsetAsync(flush.get(), 0, flush.size()), "flush");
        check_cuda(cudaEventRecord(e0), "event");
        call();
        check_cuda(cudaEventRecord(e1), "event");
        check_cuda(cudaEventSynchronize(e1), "sync");
        float ms = 0;
        check_cuda(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
        state.SetIterationTime(double(ms) * 1e-3);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    state.SetBytesProcessed(int64_t(double(state.iterations()) * work.bytes));
    if (work.flops > 0)
        state.counters["FLOP/s"] = benchmark::Counter(double(state.iterations()) * work.flops,
                                                      benchmark::Counter::kIsRate);
}

void BM_DeviceCopy(benchmark::State& state) {
    if (!need_gpu(state)) return;
    const size_t bytes = size_t(1) << 30;
    DeviceBuffer<uint8_t> a(bytes), b(bytes);
    run(state, profiler::ProfilePoint{.bytes = 2.0 * double(bytes)}, [&] {
        check_cuda(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice), "copy");
    });
}

void BM_CublasDense(benchmark::State& state) {
    if (!need_gpu(state)) return;
    const size_t m = 8192 * 6, n = 2 * 1536, k = 2560;
    DeviceBuffer<float> A = device_filled(m * k), B = device_filled(n * k), C(m * n);
    run(state, profiler::gemm_work(double(m), double(n), double(k)),
        [&] { cuda::dense_gemm_nt(m, n, k, A.get(), B.get(), C.get()); });
}

void BM_Gather(benchmark::State& state, kernels::Dtype dt, bool uva) {
    if (!need_gpu(state)) return;
    const int heads = 16, values = 80;
    const size_t T = size_t(state.range(0));
    const size_t row_bytes = size_t(values) * size_t(kernels::dtype_size_bytes(dt));
    const size_t table_bytes = uva ? size_t(2) << 30 : size_t(4) << 30;
    const uint64_t per_head = table_bytes / row_bytes / heads;
    DeviceBuffer<uint8_t> d_table(uva ? 0 : per_head * heads * row_bytes);
    std::unique_ptr<cuda::MappedHostBuffer<uint8_t>> h_table;
    if (uva) h_table = std::make_unique<cuda::MappedHostBuffer<uint8_t>>(per_head * heads * row_bytes);
    std::vector<float> scales;
    if (dt == kernels::Dtype::fp8_e4m3) scales.assign(per_head * heads, 1.0f);
    DeviceBuffer<float> d_scales(scales);
    cuda::DeviceTable t;
    t.rows = uva ? h_table->device_ptr() : d_table.get();
    t.total_rows = per_head * heads;
    t.dtype = dt;
    t.row_values = values;
    t.heads = heads;
    for (int h = 0; h < heads; ++h) {
        t.head_offsets[h] = uint64_t(h) * per_head;
        t.head_rows[h] = per_head;
    }
    t.scales = d_scales.get();
    t.scale_block_values = dt == kernels::Dtype::fp8_e4m3 ? values : 0;
    std::mt19937_64 rng(1);
    std::vector<uint32_t> ids(T * heads);
    for (auto& id : ids) id = uint32_t(rng() % per_head);
    DeviceBuffer<uint32_t> d_ids(ids);
    DeviceBuffer<uint8_t> d_out(ids.size() * row_bytes);
    run(state, profiler::gather_work(double(T), heads, double(row_bytes), kernels::dtype_name(dt)),
        [&] { cuda::gather_rows(t, d_ids.get(), ids.size(), d_out.get()); });
}

struct GateData {
    static constexpr int M = 4, d = 2560;
    size_t T;
    DeviceBuffer<float> h, k, v, w, cw, out, alpha, msv, scratch;
    explicit GateData(size_t tokens)
        : T(tokens),
          h(device_filled(T * M * d)),
          k(device_filled(T * M * d)),
          v(device_filled(T * d)),
          w(random_floats(size_t(M) * d, 4)),
          cw(random_floats(size_t(M) * d * 4, 5)),
          out(T * M * d),
          alpha(T * M),
          msv(T),
          scratch(T * M) {}
    kernels::GateShape gate() const { return {.tokens = T, .branches = M, .dim = d}; }
    kernels::ConvShape conv() const { return {.tokens = T, .seq_len = T, .branches = M, .dim = d}; }
};

void BM_Gate(benchmark::State& state) {
    if (!need_gpu(state)) return;
    GateData g(size_t(state.range(0)));
    run(state, profiler::gate_work(double(g.T), g.d, g.M), [&] {
        cuda::engram_gate(g.gate(), g.h.get(), g.k.get(), g.v.get(), g.w.get(), g.w.get(),
                          g.alpha.get(), g.out.get());
    });
}

void BM_Conv(benchmark::State& state) {
    if (!need_gpu(state)) return;
    GateData g(size_t(state.range(0)));
    run(state, profiler::conv_work(double(g.T), double(g.M) * g.d, 4), [&] {
        cuda::engram_short_conv(g.conv(), g.h.get(), g.w.get(), g.cw.get(), g.out.get(),
                                g.scratch.get());
    });
}

void BM_GateConvFused(benchmark::State& state) {
    if (!need_gpu(state)) return;
    GateData g(size_t(state.range(0)));
    run(state, profiler::gate_conv_work(double(g.T), g.d, g.M, 4), [&] {
        cuda::engram_gate_conv_residual(g.gate(), g.conv(), g.h.get(), g.k.get(), g.v.get(),
                                        g.w.get(), g.w.get(), g.w.get(), g.cw.get(), g.out.get(),
                                        g.alpha.get(), g.msv.get());
    });
}

void BM_GroupedGemm(benchmark::State& state) {
    if (!need_gpu(state)) return;
    const int E = 72, K = 6;
    const size_t H = 2560, I = 1536, T = size_t(state.range(0));
    std::mt19937 rng(3);
    std::vector<int32_t> ids(T * K);
    for (size_t t = 0; t < T; ++t)
        for (int j = 0; j < K; ++j) ids[t * K + size_t(j)] = int32_t((t * 13 + size_t(j) * 12 + rng() % 12) % E);
    const auto a = kernels::align_tokens(ids, E, 1);
    const size_t rows = size_t(a.expert_offsets.back());
    DeviceBuffer<float> w1 = device_filled(size_t(E) * 2 * I * H), w2 = device_filled(size_t(E) * H * I);
    DeviceBuffer<float> x = device_filled(rows * H), gu(rows * 2 * I), act(rows * I), y(rows * H);
    run(state, profiler::grouped_gemm_work(double(T), E, K, double(H), double(I)), [&] {
        cuda::grouped_swiglu_cublas(x.get(), a.expert_offsets, H, I, w1.get(), w2.get(), gu.get(),
                                    act.get(), y.get());
    });
}

}  // namespace

BENCHMARK(BM_DeviceCopy)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CublasDense)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, bf16, kernels::Dtype::bf16, false)->Arg(4096)->Arg(65536)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, fp8_e4m3, kernels::Dtype::fp8_e4m3, false)->Arg(65536)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, uva_bf16, kernels::Dtype::bf16, true)->Arg(16384)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Gate)->Arg(16384)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Conv)->Arg(16384)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GateConvFused)->Arg(16384)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GroupedGemm)->Arg(8192)->UseManualTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
