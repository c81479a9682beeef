// Hashing throughput: row ids per second per core for one Engram layer over the bundled English
// handbook sample, FastMod (the product path) against the plain hardware '%' in the same run.
// Items are row ids; Google Benchmark derives items_per_second.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "model/config.h"
#include "model/engram_config.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

namespace {

using namespace engramsim;

struct Fixture {
    std::vector<uint32_t> ids;
    NgramHasher hasher;
    std::vector<uint32_t> out;

    static Fixture& get(const std::string& preset) {
        static std::map<std::string, std::unique_ptr<Fixture>> cache;
        auto& slot = cache[preset];
        if (!slot) {
            auto cfg = EngramConfig::from_json(config::load(preset)["engram"]);
            auto map = CompressMap::load(cfg.compress_map);
            auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
            NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
            slot.reset(new Fixture{std::move(ids), std::move(hasher), {}});
            slot->out.resize(slot->ids.size() * size_t(slot->hasher.heads_per_layer()));
        }
        return *slot;
    }
};

template <bool kPlain>
void BM_HashLayer(benchmark::State& state, std::string preset) {
    Fixture& f = Fixture::get(preset);
    for (auto _ : state) {
        if constexpr (kPlain)
            f.hasher.hash_layer_plain(0, f.ids, f.out);
        else
            f.hasher.hash_layer(0, f.ids, f.out);
        benchmark::DoNotOptimize(f.out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(f.out.size()));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(f.out.size()) * 4);
    state.counters["tokens"] = double(f.ids.size());
    state.counters["rows_per_token"] = f.hasher.heads_per_layer();
}

void BM_FastMod(benchmark::State& state, std::string preset) {
    BM_HashLayer<false>(state, std::move(preset));
}
void BM_PlainMod(benchmark::State& state, std::string preset) {
    BM_HashLayer<true>(state, std::move(preset));
}

BENCHMARK_CAPTURE(BM_FastMod, demo-v1, std::string("demo-v1"));
BENCHMARK_CAPTURE(BM_PlainMod, demo-v1, std::string("demo-v1"));
BENCHMARK_CAPTURE(BM_FastMod, paper-offload-100b, std::string("paper-offload-100b"));
BENCHMARK_CAPTURE(BM_PlainMod, paper-offload-100b, std::string("paper-offload-100b"));

}  // namespace

BENCHMARK_MAIN();
