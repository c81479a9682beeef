// Placement replay speed: cache requests per second per core for every policy on the sample
// corpus trace (demo-v1 Engram over the handbook-en workload: real English text, prefill and
// decode steps as the scheduler runs them), against a plain std::list + std::unordered_map LRU in
// the same run; plus the full replay with per-step records, the key remapping pre-pass, and a
// 100-point one-pass LRU miss-ratio curve. Items are cache requests (unique rows per step and
// layer); Google Benchmark derives items_per_second. Counters carry the misses, so runs can be
// checked against each other and against other simulators.
#include <absl/container/flat_hash_map.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <list>
#include <memory>
#include <unordered_map>

#include "model/config.h"
#include "model/engram_config.h"
#include "sim/placement/mrc.h"
#include "sim/placement/remap.h"
#include "sim/placement/replay.h"
#include "traces/lookups.h"
#include "traces/workload.h"

namespace {

using namespace engramsim;
using namespace engramsim::placement;

struct Fixture {
    DenseTrace trace;
    std::vector<uint32_t> next;
    std::vector<uint64_t> counts;

    static Fixture& get() {
        static std::unique_ptr<Fixture> f;
        if (!f) {
            f.reset(new Fixture);
            f->trace = densify(*source());
            f->next = next_uses(f->trace.requests, f->trace.universe());
            f->counts = request_counts(f->trace.requests, f->trace.universe());
        }
        return *f;
    }
    static std::unique_ptr<LookupSource> source() {
        const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
        const auto workload = make_workload(config::load("handbook-en")["workload"]);
        return hashed_lookups(engram, workload, SchedulerConfig{});
    }
    // capacity as a percentage of the distinct rows the trace touches
    uint64_t capacity(int64_t percent) const {
        return uint64_t(trace.universe()) * uint64_t(percent) / 100;
    }
};

void counters(benchmark::State& state, const Fixture& f, uint64_t misses, uint64_t cap) {
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(f.trace.requests.size()));
    state.counters["requests"] = double(f.trace.requests.size());
    state.counters["capacity_rows"] = double(cap);
    state.counters["misses"] = double(misses);
    state.counters["miss_ratio"] = double(misses) / double(f.trace.requests.size());
}

void BM_Policy(benchmark::State& state, std::string policy) {
    Fixture& f = Fixture::get();
    const uint64_t cap = f.capacity(state.range(0));
    PolicyContext ctx{.capacity_rows = cap,
                      .universe = f.trace.universe(),
                      .keys = f.trace.keys,
                      .next_use = f.next,
                      .profile_counts = f.counts};
    uint64_t misses = 0;
    for (auto _ : state) {
        state.PauseTiming();
        auto p = make_policy(policy, ctx);
        state.ResumeTiming();
        misses = p->run(f.trace.requests, 0);
        benchmark::DoNotOptimize(misses);
    }
    counters(state, f, misses, cap);
}

// The baseline: the textbook LRU (std::list + std::unordered_map keyed by row key).
void BM_BaselineListLru(benchmark::State& state) {
    Fixture& f = Fixture::get();
    const uint64_t cap = f.capacity(state.range(0));
    uint64_t misses = 0;
    for (auto _ : state) {
        std::list<uint64_t> order;
        std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where;
        misses = 0;
        for (uint32_t id : f.trace.requests) {
            const uint64_t key = f.trace.keys[id];
            auto it = where.find(key);
            if (it != where.end()) {
                order.splice(order.begin(), order, it->second);
                continue;
            }
            ++misses;
            if (cap == 0) continue;
            if (order.size() == cap) {
                where.erase(order.back());
                order.pop_back();
            }
            order.push_front(key);
            where[key] = order.begin();
        }
        benchmark::DoNotOptimize(misses);
    }
    counters(state, f, misses, cap);
}

// Full replay: tiers, per-(step, layer) records.
void BM_ReplayLruWithStepRecords(benchmark::State& state) {
    Fixture& f = Fixture::get();
    const uint64_t cap = f.capacity(state.range(0));
    TierConfig cfg{.hbm_rows = cap, .policy = "lru"};
    uint64_t misses = 0;
    for (auto _ : state) {
        const ReplayResult r = replay(f.trace, cfg);
        misses = r.total.requests - r.total.hbm_hits;
        benchmark::DoNotOptimize(misses);
    }
    counters(state, f, misses, cap);
}

// All 100 sizes (1%..100% of the distinct rows) of the LRU curve in one pass.
void BM_LruMrc100Points(benchmark::State& state) {
    Fixture& f = Fixture::get();
    std::vector<uint64_t> sizes;
    for (int k = 1; k <= 100; ++k) sizes.push_back(f.capacity(k));
    uint64_t misses_at_10 = 0;
    for (auto _ : state) {
        const auto curve = lru_mrc(f.trace.requests, f.trace.universe(), sizes);
        misses_at_10 = curve[9].misses;
        benchmark::DoNotOptimize(misses_at_10);
    }
    counters(state, f, misses_at_10, sizes[9]);
}

// Every distance in a full histogram (exact curve at every size): random histogram updates.
void BM_LruStackDistanceHistogram(benchmark::State& state) {
    Fixture& f = Fixture::get();
    uint64_t cold = 0;
    for (auto _ : state) {
        cold = lru_stack_distances(f.trace.requests, f.trace.universe()).cold;
        benchmark::DoNotOptimize(cold);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(f.trace.requests.size()));
    state.counters["cold"] = double(cold);
}

// The pre-pass: global row keys -> dense ids, repeats within a step folded (hashing excluded:
// the lookups are materialised once, then replayed from memory).
void BM_Densify(benchmark::State& state) {
    struct Replayed final : LookupSource {
        LookupLayout lay;
        std::vector<StepBatch> steps;
        size_t i = 0;
        const LookupLayout& layout() const override { return lay; }
        bool next(StepBatch& b) override {
            if (i == steps.size()) return false;
            b.step = steps[i].step;
            b.rows = steps[i++].rows;
            return true;
        }
    };
    static Replayed mem;
    if (mem.steps.empty()) {
        auto src = Fixture::source();
        mem.lay = src->layout();
        StepBatch b;
        while (src->next(b)) mem.steps.push_back({.step = b.step, .rows = b.rows});
    }
    uint64_t lookups = 0;
    for (auto _ : state) {
        mem.i = 0;
        lookups = densify(mem).lookups;
        benchmark::DoNotOptimize(lookups);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(lookups));
    state.counters["lookups"] = double(lookups);
}

// The sample trace's request sequence as row keys.
std::vector<uint64_t> sequence_keys(const Fixture& f) {
    std::vector<uint64_t> ids;
    for (uint32_t id : f.trace.requests) ids.push_back(f.trace.keys[id]);
    return ids;
}

// The sample trace's request sequence as a u64 id file (what `trace export --format u64`
// writes), written once.
const std::string& id_file() {
    static const std::string path = [] {
        const std::vector<uint64_t> ids = sequence_keys(Fixture::get());
        const std::string p = "bench_replay_ids.u64";
        std::FILE* out = std::fopen(p.c_str(), "wb");
        std::fwrite(ids.data(), 8, ids.size(), out);
        std::fclose(out);
        return p;
    }();
    return path;
}

// The whole path of `engramsim replay --ids F --policy lru --capacity C` inside the process:
// the file mapped, its keys numbered by radix partitions on every core, the LRU loop on the
// numbered ids as they are read (placement::replay_id_file), at 1% / 10% of the distinct rows.
// Beside BM_Policy/lru (the loop alone, ids already dense) it shows what the numbering costs.
void BM_ReplayIdFileWhole(benchmark::State& state) {
    const Fixture& f = Fixture::get();
    const uint64_t cap = f.capacity(state.range(0));
    uint64_t misses = 0;
    for (auto _ : state) {
        InputFacts facts;
        misses = replay_id_file(id_file(), 1, {.hbm_rows = cap, .step_records = false}, facts)
                     .total.dram_rows;
        benchmark::DoNotOptimize(misses);
    }
    counters(state, f, misses, cap);
}

// The remapping alone, ids in order of first sight, on the id file's keys in memory: the
// partitioned remapping (every core) against the plain way, one hash map (absl's flat_hash_map,
// a SwissTable) numbering keys as they come, one thread. The same ids out (checked).
void BM_RemapKeys(benchmark::State& state) {
    const Fixture& f = Fixture::get();
    const std::vector<uint64_t> ids = sequence_keys(f);
    std::vector<uint64_t> keys;
    std::vector<uint32_t> requests;
    for (auto _ : state) {
        remap_keys(ids, keys, requests);
        benchmark::DoNotOptimize(requests.data());
    }
    if (requests != f.trace.requests) state.SkipWithError("remap_keys: ids differ from densify's");
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(ids.size()));
}

void BM_RemapKeysBaselineHashMap(benchmark::State& state) {
    const Fixture& f = Fixture::get();
    const std::vector<uint64_t> ids = sequence_keys(f);
    std::vector<uint64_t> keys;
    std::vector<uint32_t> requests;
    for (auto _ : state) {
        absl::flat_hash_map<uint64_t, uint32_t> id_of;
        keys.clear();
        requests.clear();
        for (uint64_t k : ids) {
            const auto [it, fresh] = id_of.try_emplace(k, uint32_t(keys.size()));
            if (fresh) keys.push_back(k);
            requests.push_back(it->second);
        }
        benchmark::DoNotOptimize(requests.data());
    }
    if (requests != f.trace.requests) state.SkipWithError("hash map: ids differ from densify's");
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(ids.size()));
}

}  // namespace

BENCHMARK(BM_ReplayIdFileWhole)->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RemapKeys)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RemapKeysBaselineHashMap)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BaselineListLru)->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, lru, std::string("lru"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, lfu, std::string("lfu"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, s3fifo, std::string("s3fifo"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, sieve, std::string("sieve"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, sa_lru, std::string("sa-lru"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, sa_lfu, std::string("sa-lfu"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, belady, std::string("belady"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Policy, static, std::string("static"))
    ->Arg(1)
    ->Arg(10)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReplayLruWithStepRecords)->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LruMrc100Points)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LruStackDistanceHistogram)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Densify)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
