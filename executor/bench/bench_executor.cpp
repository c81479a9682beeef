// The executor's speed against a plain baseline in the same run: one backbone layer of the
// cpu-small config (executor/configs/cpu-small.json: hidden 512, GQA 8/2 x 64, SwiGLU 1536) over
// a decode step of B sequences with 256 cached positions each, against the same four GEMMs alone
// (q/k/v, o, gate/up, down on OpenBLAS). Their ratio is what the layer adds beyond its GEMMs
// (norms, RoPE, paged attention, SwiGLU, copies); docs/executor.md records it.
#include <benchmark/benchmark.h>


#include "executor/backbone.h"
#include "executor/ops.h"

using namespace engramsim;
using namespace engramsim::executor;

namespace {

BackboneShape small_shape() {
    BackboneShape b;
    b.name = "cpu-dense-512";
    b.layers = 1, b.hidden = 512, b.n_heads = 8, b.n_kv_heads = 2, b.head_dim = 64;
    b.intermediate = 1536, b.vocab = 1000;
    return b;
}

constexpr uint32_t kContext = 256;

void BM_BackboneDecodeLayer(benchmark::State& state) {
    const uint32_t B = uint32_t(state.range(0));
    const BackboneShape shape = small_shape();
    Backbone bb(shape, 1);
    PagedKvCache cache({.layers = 1, .n_kv_heads = 2, .head_dim = 64, .block_size = 256,
                        .num_blocks = int64_t(B) * 2});
    kernels::ThreadTeam team(int(state.range(1)));  // the executor's compute team
    std::vector<StepSlice> prefill, decode;
    for (uint32_t r = 0; r < B; ++r) {
        cache.reserve(r, kContext + 1);
        prefill.push_back({r, 0, kContext});
        decode.push_back({r, kContext, 1});
    }
    std::vector<float> h(size_t(B) * kContext * shape.hidden, 0.1f);
    bb.layer(0, prefill, h, cache, team);  // fills the cache
    std::vector<float> hd(size_t(B) * shape.hidden, 0.1f);
    for (auto _ : state) {
        bb.layer(0, decode, hd, cache, team);
        benchmark::DoNotOptimize(hd.data());
    }
    state.counters["seqs"] = B;
    state.counters["team"] = double(state.range(1));
}

void BM_GemmsAlone(benchmark::State& state) {
    const size_t B = size_t(state.range(0)), H = 512, Q = 512, KV = 128, I = 1536;
    std::vector<float> x(B * std::max(H, I), 0.1f), y(B * 2 * I);
    std::vector<float> wqkv((Q + 2 * KV) * H, 0.01f), wo(H * Q, 0.01f), wgu(2 * I * H, 0.01f),
        wd(H * I, 0.01f);
    for (auto _ : state) {
        linear(B, Q + 2 * KV, H, x.data(), wqkv.data(), y.data());
        linear(B, H, Q, x.data(), wo.data(), y.data());
        linear(B, 2 * I, H, x.data(), wgu.data(), y.data());
        linear(B, H, I, x.data(), wd.data(), y.data());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["seqs"] = double(B);
}

}  // namespace

// {sequences, compute-team threads}: a team of 2 beside OpenBLAS's own 2 threads on 2 cores is
// the oversubscription docs/executor.md measures.
BENCHMARK(BM_BackboneDecodeLayer)
    ->Args({1, 1})->Args({16, 1})->Args({64, 1})->Args({64, 2})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmsAlone)->Arg(1)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
