// CPU kernels under Google Benchmark, each stating its work (bytes moved, FLOPs) so the harness
// derives GB/s; the ceiling they are compared with, memcpy bandwidth, runs in the same binary.
//
//   BM_Memcpy/<MiB>            std::memcpy of a buffer larger than the last-level cache; bytes =
//                              read + written (2 x size), the same convention as the gather
//   BM_Gather/<dtype>/<MiB>    Engram gather of uniform random rows (16 heads, 80 values per
//                              row) from a table of <MiB>; bytes = rows read + rows written + ids
//   BM_GatherTrace/<dtype>     the same kernel on real lookups: demo-v1 layer 0 row ids of the
//                              bundled English handbook (first 65,536 tokens), demo-v1's table
//                              sizes (16 heads of ~646,400 rows: 1.65 GB in bf16)
//   BM_Gate, BM_Conv, BM_Router  the other references at a prefill shape, bytes and FLOPs stated
//
// Compare: BM_Gather bytes_per_second / BM_Memcpy bytes_per_second (target >= 0.70).
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "kernels/cpu/engram_kernels.h"
#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/moe_kernels.h"
#include "model/config.h"
#include "traces/tokens.h"
#include "kernels/cpu/random_inputs.h"

namespace {

using namespace engramsim::kernels;

constexpr size_t kMiB = size_t(1) << 20;

// Tables, outputs and the memcpy buffers alike: huge pages, touched before timing.
HugePageBuffer touched(size_t bytes, uint8_t seed) {
    HugePageBuffer v(bytes);
    for (size_t i = 0; i < bytes; i += 4096) v.data()[i] = uint8_t(seed + i / 4096);
    return v;
}

void BM_Memcpy(benchmark::State& state) {
    const size_t bytes = size_t(state.range(0)) * kMiB;
    auto src = touched(bytes, 1), dst = touched(bytes, 2);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), bytes);
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * bytes));
}

struct GatherFixture {
    HugePageBuffer rows;
    std::vector<float> scales;
    std::vector<uint64_t> offsets, head_rows;
    std::vector<uint32_t> ids;
    HugePageBuffer out;
    TableView view;
};

constexpr int kHeads = 16;
constexpr int kRowValues = 80;
constexpr size_t kGatherTokens = 1 << 16;  // 1M rows per call

GatherFixture& gather_fixture(Dtype dt, size_t table_bytes) {
    static std::map<std::pair<int, size_t>, std::unique_ptr<GatherFixture>> cache;
    auto& slot = cache[{int(dt), table_bytes}];
    if (slot) return *slot;
    slot = std::make_unique<GatherFixture>();
    GatherFixture& f = *slot;
    const size_t row_bytes = size_t(kRowValues) * size_t(dtype_size_bytes(dt));
    const uint64_t per_head = table_bytes / row_bytes / kHeads;
    for (int h = 0; h < kHeads; ++h) {
        f.offsets.push_back(uint64_t(h) * per_head);
        f.head_rows.push_back(per_head);
    }
    f.rows = touched(per_head * kHeads * row_bytes, 3);
    f.view = TableView{.rows = f.rows.data(), .total_rows = per_head * kHeads, .dtype = dt,
                       .row_values = kRowValues, .head_offsets = f.offsets,
                       .head_rows = f.head_rows};
    if (dt == Dtype::fp8_e4m3) {
        f.view.scale_block_values = kRowValues;
        f.scales.assign(per_head * kHeads, 1.0f);
        f.view.scales = f.scales.data();
    }
    std::mt19937_64 rng(42);
    f.ids.resize(kGatherTokens * kHeads);
    for (auto& id : f.ids) id = uint32_t(rng() % per_head);
    f.out = touched(f.ids.size() * row_bytes, 4);
    return f;
}

void BM_Gather(benchmark::State& state, Dtype dt) {
    GatherFixture& f = gather_fixture(dt, size_t(state.range(0)) * kMiB);
    const size_t row_bytes = f.view.row_bytes();
    for (auto _ : state) {
        gather_rows(f.view, f.ids, f.out.span());
        benchmark::DoNotOptimize(f.out.data());
        benchmark::ClobberMemory();
    }
    const int64_t rows = int64_t(f.ids.size());
    state.SetItemsProcessed(int64_t(state.iterations()) * rows);
    state.SetBytesProcessed(int64_t(state.iterations()) * rows * int64_t(2 * row_bytes + 4));
    state.counters["row_bytes"] = double(row_bytes);
}

// demo-v1 layer 0 over the handbook: the table is sized by the layer's primes, the ids are
// the real hash outputs (Zipfian reuse: frequent N-grams hit in cache).
GatherFixture& trace_fixture(Dtype dt) {
    static std::map<int, std::unique_ptr<GatherFixture>> cache;
    auto& slot = cache[int(dt)];
    if (slot) return *slot;
    slot = std::make_unique<GatherFixture>();
    GatherFixture& f = *slot;
    using namespace engramsim;
    const auto cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(cfg.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    ids.resize(std::min<size_t>(ids.size(), 65536));
    const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
    const LayerHashParams& layer = hasher.layers()[0];
    for (const auto& order : layer.primes)
        for (uint64_t p : order) f.head_rows.push_back(p);
    f.offsets = layer.head_offsets;
    const size_t row_bytes = size_t(kRowValues) * size_t(dtype_size_bytes(dt));
    f.rows = touched(layer.table_rows * row_bytes, 5);
    f.view = TableView{.rows = f.rows.data(), .total_rows = layer.table_rows, .dtype = dt,
                       .row_values = kRowValues, .head_offsets = f.offsets,
                       .head_rows = f.head_rows};
    if (dt == Dtype::fp8_e4m3) {
        f.view.scale_block_values = kRowValues;
        f.scales.assign(layer.table_rows, 1.0f);
        f.view.scales = f.scales.data();
    }
    f.ids.resize(ids.size() * size_t(hasher.heads_per_layer()));
    hasher.hash_layer(0, ids, f.ids);
    f.out = touched(f.ids.size() * row_bytes, 6);
    return f;
}

void BM_GatherTrace(benchmark::State& state, Dtype dt) {
    GatherFixture& f = trace_fixture(dt);
    const size_t row_bytes = f.view.row_bytes();
    for (auto _ : state) {
        gather_rows(f.view, f.ids, f.out.span());
        benchmark::DoNotOptimize(f.out.data());
        benchmark::ClobberMemory();
    }
    const int64_t rows = int64_t(f.ids.size());
    state.SetItemsProcessed(int64_t(state.iterations()) * rows);
    state.SetBytesProcessed(int64_t(state.iterations()) * rows * int64_t(2 * row_bytes + 4));
    state.counters["table_MiB"] = double(f.view.total_rows * row_bytes) / double(kMiB);
}

void BM_Gate(benchmark::State& state) {
    const GateShape s{.tokens = size_t(state.range(0)), .branches = 4, .dim = 1024};
    const size_t n = s.tokens * 4 * 1024;
    auto h = random_floats(n, 1), k = random_floats(n, 2), v = random_floats(s.tokens * 1024, 3);
    auto w = random_floats(4 * 1024, 4);
    std::vector<float> alpha(s.tokens * 4), out(n);
    for (auto _ : state) {
        engram_gate(s, h, k, v, w, w, alpha, out);
        benchmark::DoNotOptimize(out.data());
    }
    // Read h, k, v; write out (weights stay in cache).
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(4 * (3 * n + s.tokens * 1024)));
    state.counters["FLOP"] = benchmark::Counter(double(state.iterations()) * 7.0 * double(n),
                                                benchmark::Counter::kIsRate);
}

void BM_Conv(benchmark::State& state) {
    const ConvShape s{.tokens = size_t(state.range(0)), .seq_len = size_t(state.range(0)),
                      .branches = 4, .dim = 1024};
    const size_t n = s.tokens * 4 * 1024;
    auto x = random_floats(n, 1), nw = random_floats(4 * 1024, 2), cw = random_floats(16 * 1024, 3);
    std::vector<float> y(n);
    for (auto _ : state) {
        engram_short_conv(s, x, nw, cw, y);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(4 * 2 * n));
    state.counters["FLOP"] = benchmark::Counter(double(state.iterations()) * 14.0 * double(n),
                                                benchmark::Counter::kIsRate);
}

void BM_Router(benchmark::State& state) {
    const size_t T = size_t(state.range(0));
    const int E = 72, K = 6;
    auto logits = random_floats(T * E, 5);
    std::vector<int32_t> ids(T * K);
    std::vector<float> w(T * K);
    for (auto _ : state) {
        router_topk_softmax(logits, T, E, K, true, ids, w);
        benchmark::DoNotOptimize(w.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(T));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(T * (E * 4 + K * 8)));
}

}  // namespace

// Ceiling first, then the gather at table sizes above the last-level cache, then the ceiling
// again so drift during the run shows.
BENCHMARK(BM_Memcpy)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gather, bf16, Dtype::bf16)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gather, fp8_e4m3, Dtype::fp8_e4m3)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Gather, f32, Dtype::f32)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GatherTrace, bf16, Dtype::bf16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GatherTrace, fp8_e4m3, Dtype::fp8_e4m3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Memcpy)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Gate)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Conv)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Router)->Arg(16384)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
