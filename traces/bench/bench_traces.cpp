// Trace throughput, lookups per second on one core, each against a baseline in the same run:
//   make       hash + bit-pack + zstd + write a .etr   vs  hashing alone (the work it wraps)
//   read       read + checksum + zstd + unpack         vs  memcpy of the same lookups as raw u32
//   serve      serving-order lookups from the file     vs  the same hashed on the fly
//   synthetic  the fitted generator's stream
// bytes_per_lookup reports the file size per lookup.
#include <benchmark/benchmark.h>

#include <cstring>
#include <filesystem>

#include "model/config.h"
#include "traces/synthetic.h"
#include "traces/trace_make.h"

namespace {

using namespace engramsim;

struct Data {
    nlohmann::json engram = config::load("demo-v1")["engram"];
    nlohmann::json workload_spec = config::load("handbook-en")["workload"];
    Workload workload = make_workload(workload_spec);
    std::string path = (std::filesystem::temp_directory_path() / "engramsim_bench.etr").string();
    uint64_t lookups = 0;

    static Data& get() {
        static Data d;
        return d;
    }
    Data() { lookups = make_trace(path, engram, workload, workload_spec).lookups; }
};

void BM_TraceMake(benchmark::State& state) {
    Data& d = Data::get();
    for (auto _ : state) make_trace(d.path, d.engram, d.workload, d.workload_spec);
    state.SetItemsProcessed(int64_t(state.iterations() * d.lookups));
    state.counters["bytes_per_lookup"] =
        double(std::filesystem::file_size(d.path)) / double(d.lookups);
}

void BM_HashOnly(benchmark::State& state) {
    Data& d = Data::get();
    const RequestHasher hash(EngramConfig::from_json(d.engram));
    for (auto _ : state)
        for (const auto& r : d.workload.requests) benchmark::DoNotOptimize(hash(r));
    state.SetItemsProcessed(int64_t(state.iterations() * d.lookups));
}

void BM_TraceRead(benchmark::State& state) {
    Data& d = Data::get();
    for (auto _ : state) {
        TraceReader reader(d.path);
        TraceRequest r;
        while (reader.next(r)) benchmark::DoNotOptimize(r.rows.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations() * d.lookups));
}

void BM_MemcpyU32(benchmark::State& state) {
    Data& d = Data::get();
    std::vector<uint32_t> src(d.lookups, 7), dst(d.lookups);
    for (auto _ : state) {
        std::memcpy(dst.data(), src.data(), src.size() * 4);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(int64_t(state.iterations() * d.lookups));
}

template <bool kFromFile>
void serve(benchmark::State& state) {
    Data& d = Data::get();
    uint64_t lookups = 0;
    for (auto _ : state) {
        auto src = kFromFile ? trace_lookups(d.path, {})
                             : hashed_lookups(EngramConfig::from_json(d.engram), d.workload, {});
        StepBatch b;
        while (src->next(b))
            for (const auto& l : b.rows) lookups += l.size();
    }
    state.SetItemsProcessed(int64_t(lookups));
}
void BM_ServeFromFile(benchmark::State& state) { serve<true>(state); }
void BM_ServeHashedOnTheFly(benchmark::State& state) { serve<false>(state); }

void BM_SyntheticStream(benchmark::State& state) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
    const SyntheticModel model =
        fit_synthetic(ids, 27675, 3, map(engram.pad_id), map.canonical_vocab_size());
    SyntheticStream stream(model, tables, 1);
    std::vector<std::vector<uint32_t>> rows;
    for (auto _ : state) {
        stream.next(100000, rows);
        benchmark::DoNotOptimize(rows.data());
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * 100000 * 32);
}

BENCHMARK(BM_TraceMake)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TraceRead)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemcpyU32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ServeFromFile)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ServeHashedOnTheFly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SyntheticStream)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
