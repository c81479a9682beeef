// The synthetic generator: its mechanics against closed forms, determinism, and serving-order
// lookups in range.
#include <gtest/gtest.h>

#include <fstream>
#include <unordered_set>

#include "model/config.h"
#include "traces/synthetic.h"

using namespace engramsim;

TEST(Synthetic, NewIdsFollowTheHeapsLaw) {
    // E[V(t)] = 1 + sum_{u=2..t} K (u^beta - (u-1)^beta) = K t^beta + (1 - K) when p_new <= 1.
    OrderModel m;
    m.heaps_k = 0.8, m.heaps_beta = 0.7, m.zipf_s = 1.1, m.zipf_q = 2, m.reuse_rho = 0.3;
    NgramIdSource src(m, 42);
    uint64_t max_id = 0;
    const uint64_t t = 200000;
    for (uint64_t i = 0; i < t; ++i) max_id = std::max(max_id, src.next());
    const double expected = 0.8 * std::pow(double(t), 0.7) + 0.2;
    // Bernoulli sum: standard deviation below sqrt(expected) ~ 66; allow 5 sigma.
    EXPECT_NEAR(double(max_id + 1), expected, 5 * std::sqrt(expected));
}

TEST(Synthetic, CopiesComeFromTheRecentWindow) {
    OrderModel m;
    m.heaps_k = 0.5, m.heaps_beta = 0.5, m.zipf_s = 1.0, m.reuse_rho = 1.0, m.reuse_window = 8;
    // rho = 1: every draw that is not new repeats one of the last 8 ids.
    NgramIdSource src(m, 7);
    std::vector<uint64_t> ids;
    uint64_t next_new = 0;
    for (int i = 0; i < 5000; ++i) {
        const uint64_t id = src.next();
        if (id == next_new) {
            ++next_new;
        } else {
            const size_t from = ids.size() >= 8 ? ids.size() - 8 : 0;
            ASSERT_NE(std::find(ids.begin() + long(from), ids.end(), id), ids.end()) << i;
        }
        ids.push_back(id);
    }
}

TEST(Synthetic, FitAndStreamAreDeterministicAndInRange) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    ids.resize(40000);
    const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
    const SyntheticModel a = fit_synthetic(ids, 20000, 3, map(engram.pad_id));
    const SyntheticModel b = fit_synthetic(ids, 20000, 3, map(engram.pad_id));
    EXPECT_EQ(to_json(a), to_json(b));
    EXPECT_EQ(to_json(synthetic_model_from_json(to_json(a))), to_json(a));
    ASSERT_EQ(a.orders.size(), 2u);
    for (const auto& o : a.orders) {
        EXPECT_GT(o.heaps_beta, 0.3);
        EXPECT_LE(o.heaps_beta, 1.1);
        EXPECT_GE(o.reuse_rho, 0.0);
    }
    SyntheticStream s1(a, tables, 5), s2(a, tables, 5), s3(a, tables, 6);
    std::vector<std::vector<uint32_t>> r1, r2, r3;
    s1.next(3000, r1);
    s2.next(3000, r2);
    s3.next(3000, r3);
    EXPECT_EQ(r1, r2);
    EXPECT_NE(r1, r3);
    for (size_t l = 0; l < r1.size(); ++l)
        for (size_t i = 0; i < r1[l].size(); ++i)
            ASSERT_LT(r1[l][i], tables.layers()[l].primes[(i % 16) / 8][i % 8]);
}

TEST(Synthetic, FittedTopShareMatchesTheCorpusAtTheFittedSize) {
    // s is calibrated so that the generator's top-1% share equals the corpus's at the fitted
    // size; check it on the rows (layer 0), which hash collisions barely change.
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    const auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
    const uint64_t fit = 27675;
    const SyntheticModel m = fit_synthetic(ids, fit, 3, map(engram.pad_id));
    const auto real = corpus_growth(ids, tables, {fit});
    const auto synth = synthetic_growth(m, tables, 1, {fit});
    for (size_t o = 0; o < 2; ++o) EXPECT_NEAR(synth.top_share[o][1], real.top_share[o][1], 0.05);
}

TEST(Synthetic, WorkloadStreamsLookupsInServingOrder) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const SyntheticModel m = fit_synthetic(ids, 20000, 3, map(engram.pad_id));
    const std::string path = ::testing::TempDir() + "model.json";
    std::ofstream(path) << to_json(m).dump();
    auto spec = config::resolve({{"workload", {{"kind", "synthetic"}, {"num_requests", 20},
                                               {"synthetic_model", path}}}},
                                "t")["workload"];
    auto src = make_lookups(engram, spec, {});
    StepBatch b;
    uint64_t tokens = 0, lookups = 0;
    while (src->next(b)) {
        tokens += b.tokens;
        for (size_t l = 0; l < b.rows.size(); ++l) {
            lookups += b.rows[l].size();
            for (uint64_t k : b.rows[l]) {
                ASSERT_GE(k, src->layout().layer_base[l]);
                ASSERT_LT(k, src->layout().layer_base[l] + src->layout().layer_rows[l]);
            }
        }
    }
    std::vector<uint32_t> p, o;
    workload_lengths(spec, p, o);
    uint64_t expected = 0;
    for (size_t i = 0; i < p.size(); ++i) expected += p[i] + o[i] - 1;
    EXPECT_EQ(tokens, expected);
    EXPECT_EQ(lookups, expected * 32);
}
