// Placement replay speed: cache requests per second per core for every policy on the sample
// corpus trace (demo-v1 Engram over the handbook-en workload: real English text, prefill and
// decode steps as the scheduler runs them), against a plain std::list + std::unordered_map LRU in
// the same run; plus the full replay with per-step records, the key remapping pre-pass, and a
// 100-point one-pass LRU miss-ratio curve. Items are cache requests (unique rows per step and
// layer); Google Benchmark derives items_per_second. Counters carry the misses, so runs can be
// checked against each other and against other simulators.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <list>
#include <memory>
#include <unordered_map>

#include "model/config.h"
#include "model/engram_config.h"
#include "sim/placement/mrc.h"
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

// The whole path of `engramsim replay --ids` on the sample trace's sequence, written once as a
// u64 id file: the file read in chunks, the distinct estimate, the remapping, then the LRU loop
// at 1% / 10% of the distinct rows. Beside BM_Policy/lru (the loop alone, ids already dense) it
// shows what the remapping and the file cost the whole command.
void BM_ReplayIdFileWhole(benchmark::State& state) {
    const Fixture& f = Fixture::get();
    static const std::string path = [&] {
        const std::string p = "bench_replay_ids.u64";
        std::FILE* out = std::fopen(p.c_str(), "wb");
        for (uint32_t id : f.trace.requests) {
            const uint64_t key = f.trace.keys[id];
            std::fwrite(&key, 8, 1, out);
        }
        std::fclose(out);
        return p;
    }();
    const uint64_t cap = f.capacity(state.range(0));
    uint64_t misses = 0;
    for (auto _ : state) {
        const DenseTrace t = densify_id_file(path);
        TierConfig tiers;
        tiers.hbm_rows = cap;
        tiers.step_records = false;
        misses = replay(t, tiers).total.dram_rows;
        benchmark::DoNotOptimize(misses);
    }
    counters(state, f, misses, cap);
}

}  // namespace

BENCHMARK(BM_ReplayIdFileWhole)->Arg(1)->Arg(10)->Unit(benchmark::kMillisecond);
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
