// The synthetic generator: its Pitman-Yor mechanics against closed forms, the fit slice's state
// against brute force, determinism, the held-out growth target, and serving-order lookups.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <unordered_set>

#include "model/config.h"
#include "traces/splitmix64.h"
#include "traces/synthetic.h"

using namespace engramsim;

namespace {

// E[K_n], the expected number of tables after n customers of a Pitman-Yor(d, theta) restaurant:
// (theta / d) ((theta + d)^(n) / theta^(n) - 1) with x^(n) the rising factorial (Pitman 2006).
double py_expected_tables(double d, double theta, double n) {
    return theta / d *
           (std::exp(std::lgamma(theta + d + n) - std::lgamma(theta + d) - std::lgamma(theta + n) +
                     std::lgamma(theta)) -
            1);
}

// A model with no fit slice: the token process and the order laws alone.
SyntheticModel bare_model(uint32_t vocabulary, double token_d, double token_theta, double d2,
                          double theta2) {
    SyntheticModel m;
    m.fit_tokens = 0;
    m.vocabulary = vocabulary;
    m.token_d = token_d, m.token_theta = token_theta;
    OrderLaw law;
    law.order = 2, law.d = d2, law.theta = theta2, law.repeat = 0, law.zipf = 1.2;
    m.orders.push_back(law);
    return m;
}

struct MeanAndError {
    double mean = 0, standard_error = 0;
};

template <typename Draw>
MeanAndError over_seeds(int runs, Draw draw) {
    std::vector<double> x;
    for (int r = 0; r < runs; ++r) x.push_back(draw(uint64_t(1000 + r)));
    double mean = 0, var = 0;
    for (double v : x) mean += v / runs;
    for (double v : x) var += (v - mean) * (v - mean) / (runs - 1);
    return {mean, std::sqrt(var / runs)};
}

}  // namespace

TEST(Synthetic, PitmanYorMaximumLikelihoodRecoversKnownParameters) {
    // 4,000 restaurants of 60 customers each, seated by a known Pitman-Yor law (negative theta
    // included, as the fits of order-3 successors find); the fit recovers the law.
    for (auto [d, theta] : {std::pair{0.75, -0.4}, std::pair{0.4, 3.0}}) {
        uint64_t state = 99;
        std::map<std::pair<int, int>, PyEvent> grouped;
        for (int r = 0; r < 4000; ++r) {
            int tables = 1;
            for (int n = 1; n < 60; ++n) {
                state = splitmix64(state);
                const double u = double(state >> 11) * 0x1.0p-53;
                const bool open = u < (theta + d * tables) / (theta + n);
                PyEvent& e = grouped[{n, tables}];
                e.customers = n, e.tables = tables;
                (open ? e.opened : e.joined) += 1;
                tables += open;
            }
        }
        std::vector<PyEvent> events;
        for (const auto& [k, e] : grouped) events.push_back(e);
        const auto [fd, ftheta] = fit_pitman_yor(events);
        EXPECT_NEAR(fd, d, 0.02) << "d " << d << " theta " << theta;
        EXPECT_NEAR(ftheta, theta, 0.25 + 0.1 * std::abs(theta)) << "d " << d;
    }
}

TEST(Synthetic, ContextTokensFollowThePitmanYorTableLaw) {
    // With no fit slice and a vocabulary large enough that the uniform base barely repeats a
    // token (about 1,230 tables among 4M tokens: 0.2 repeats expected, against a standard
    // error near 20 over 100 seeds), the distinct context tokens are the tables of one
    // Pitman-Yor restaurant.
    const double d = 0.6, theta = 5;
    const uint64_t n = 20000;
    const SyntheticModel m = bare_model(1u << 22, d, theta, 0.5, 1);
    const auto got = over_seeds(100, [&](uint64_t seed) {
        NgramChain chain(m, seed);
        std::vector<uint64_t> ids;
        for (uint64_t i = 0; i < n; ++i) chain.next(ids);
        return double(chain.distinct_tokens());
    });
    const double expected = py_expected_tables(d, theta, double(n));
    EXPECT_NEAR(got.mean, expected, 4 * got.standard_error) << "expected " << expected;
}

TEST(Synthetic, AContextTokenIsDrawnByItsPitmanYorWeight) {
    // A fit state of three tokens read 100, 10 and 1 times, one table each, in a vocabulary of
    // 8. The first draw opens a table with p = (theta + 3 d) / (theta + 111), whose token is
    // uniform over the 8; else it joins token c with weight (count_c - d) / (111 - 3 d).
    // Order-2 successors are pinned (one each, theta2 = -d2 + 1e-12), so the id names a known
    // token; any other id is a new one's.
    SyntheticModel m = bare_model(8, 0.5, 2.0, 0.5, -0.5 + 1e-12);
    m.token_count = {100, 10, 1};
    m.token_successors = {1, 1, 1};
    m.token_last = {0, 0, 0};
    const double d = 0.5, theta = 2.0, n = 111;
    const double p_new = (theta + 3 * d) / (theta + n);
    std::vector<double> want;
    for (double c : {100.0, 10.0, 1.0})
        want.push_back((1 - p_new) * (c - d) / (n - 3 * d) + p_new / 8);
    want.push_back(p_new * 5 / 8);  // a token not seen before
    const int draws = 200000;
    std::vector<int> got(4, 0);
    std::vector<uint64_t> ids;
    for (int i = 0; i < draws; ++i) {
        NgramChain chain(m, uint64_t(i));
        chain.next(ids);
        int token = 3;
        for (uint32_t c = 0; c < 3; ++c)
            if (ids[0] == successor_id(c, 0)) token = int(c);
        ++got[size_t(token)];
    }
    for (size_t c = 0; c < 4; ++c) {
        const double sigma = std::sqrt(draws * want[c] * (1 - want[c]));
        EXPECT_NEAR(got[c], draws * want[c], 4.5 * sigma) << "token " << c;
    }
}

TEST(Synthetic, EachContextsSuccessorsFollowThePitmanYorTableLaw) {
    // theta1 = -d1 + 1e-12: after the first token a new table has probability 1e-12 / (n - d1),
    // so every position reads the same context and the distinct bigrams are the tables of
    // that context's restaurant.
    const double d2 = 0.7, theta2 = 2;
    const uint64_t n = 20000;
    const SyntheticModel m = bare_model(1u << 20, 0.5, -0.5 + 1e-12, d2, theta2);
    const auto got = over_seeds(40, [&](uint64_t seed) {
        NgramChain chain(m, seed);
        std::vector<uint64_t> ids;
        std::unordered_set<uint64_t> distinct;
        for (uint64_t i = 0; i < n; ++i) chain.next(ids), distinct.insert(ids[0]);
        EXPECT_EQ(chain.distinct_tokens(), 1u);
        return double(distinct.size());
    });
    const double expected = py_expected_tables(d2, theta2, double(n));
    EXPECT_NEAR(got.mean, expected, 4 * got.standard_error) << "expected " << expected;
}

TEST(Synthetic, AnOldSuccessorRepeatsTheContextsLastOneWithProbabilityR) {
    // One context (as above), r = 1: every read is a new successor or the one read just before.
    SyntheticModel m = bare_model(1u << 20, 0.5, -0.5 + 1e-12, 0.5, 1);
    m.orders[0].repeat = 1;
    NgramChain chain(m, 3);
    std::vector<uint64_t> ids;
    std::unordered_set<uint64_t> seen;
    uint64_t previous = 0, repeats = 0;
    for (int i = 0; i < 5000; ++i) {
        chain.next(ids);
        if (!seen.insert(ids[0]).second) {
            ASSERT_EQ(ids[0], previous) << i;
            ++repeats;
        }
        previous = ids[0];
    }
    EXPECT_GT(repeats, 4000u);  // E[new] ~ 2 n^0.5 ~ 140
}

TEST(Synthetic, FitSliceStateCountsTheSliceExactly) {
    // The kept state against a brute-force count of the slice's canonical n-grams: distinct
    // bigrams (pad before the first token), distinct trigrams from position 1 on (position 0
    // has no bigram before it), the reads of each context token.
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const uint64_t fit = 12000;
    const uint32_t pad = map(engram.pad_id);
    const SyntheticModel m = fit_synthetic(ids, fit, 3, pad, map.canonical_vocab_size());
    std::set<std::pair<uint32_t, uint32_t>> bigrams;
    std::set<std::array<uint32_t, 3>> trigrams;
    std::map<uint32_t, uint32_t> context_reads;
    for (uint64_t t = 0; t < fit; ++t) {
        const uint32_t prev = t > 0 ? ids[t - 1] : pad;
        bigrams.insert({prev, ids[t]});
        ++context_reads[prev];
        if (t >= 1) trigrams.insert({t > 1 ? ids[t - 2] : pad, prev, ids[t]});
    }
    ASSERT_EQ(m.orders.size(), 2u);
    EXPECT_EQ(m.orders[0].fitted_vocabulary, bigrams.size());
    EXPECT_EQ(m.orders[1].fitted_vocabulary, trigrams.size());
    EXPECT_EQ(NgramChain::fitted_ids(m, 2).size(), bigrams.size());
    EXPECT_EQ(NgramChain::fitted_ids(m, 3).size(), trigrams.size());
    ASSERT_EQ(m.token_count.size(), context_reads.size());
    std::multiset<uint32_t> want, got(m.token_count.begin(), m.token_count.end());
    for (const auto& [k, v] : context_reads) want.insert(v);
    EXPECT_EQ(got, want);
    EXPECT_EQ(std::accumulate(m.token_successors.begin(), m.token_successors.end(), uint64_t(0)),
              bigrams.size());
    const auto f2 = NgramChain::fitted_ids(m, 2);
    EXPECT_EQ(std::unordered_set<uint64_t>(f2.begin(), f2.end()).size(), f2.size());
}

TEST(Synthetic, FitAndStreamAreDeterministicAndInRange) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    ids.resize(40000);
    const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
    const auto fit = [&] {
        return fit_synthetic(ids, 20000, 3, map(engram.pad_id), map.canonical_vocab_size());
    };
    const SyntheticModel a = fit(), b = fit();
    EXPECT_EQ(to_json(a), to_json(b));
    EXPECT_EQ(to_json(synthetic_model_from_json(to_json(a))), to_json(a));
    ASSERT_EQ(a.orders.size(), 2u);
    for (const auto& o : a.orders) {
        EXPECT_GT(o.d, 0.0);
        EXPECT_LT(o.d, 1.0);
        EXPECT_GT(o.theta, -o.d);
        EXPECT_GE(o.repeat, 0.0);
        EXPECT_LE(o.repeat, 1.0);
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

TEST(Synthetic, StreamsOfTwoSeedsShareTheTextsNgramsNotTheirNewOnes) {
    // A run and its cache warm-up (or two replicas) are two samples of more of the same text:
    // the fit slice's n-grams are read by both under the same ids, while the n-grams each
    // stream creates are its own.
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    const auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const SyntheticModel m =
        fit_synthetic(ids, 20000, 3, map(engram.pad_id), map.canonical_vocab_size());
    for (int order : {2, 3}) {
        const auto fitted_list = NgramChain::fitted_ids(m, order);
        const std::unordered_set<uint64_t> fitted(fitted_list.begin(), fitted_list.end());
        std::unordered_set<uint64_t> known[2], created[2];
        for (int s = 0; s < 2; ++s) {
            NgramChain chain(m, uint64_t(11 + s));
            std::vector<uint64_t> position;
            for (int t = 0; t < 20000; ++t) {
                chain.next(position);
                const uint64_t id = position[size_t(order) - 2];
                (fitted.count(id) ? known[s] : created[s]).insert(id);
            }
        }
        size_t shared_known = 0, shared_created = 0;
        for (uint64_t id : known[0]) shared_known += known[1].count(id);
        for (uint64_t id : created[0]) shared_created += created[1].count(id);
        EXPECT_GT(created[0].size(), 1000u) << order;
        EXPECT_EQ(shared_created, 0u) << order;
        EXPECT_GT(shared_known, known[0].size() / 4) << order;
    }
}

TEST(Synthetic, AnOlderModelFileIsRefusedWithTheFix) {
    const nlohmann::json v1 = {{"kind", "engramsim.synthetic_model"}, {"schema_version", 1}};
    try {
        synthetic_model_from_json(v1);
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("refit it with `engramsim trace fit`"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Synthetic, HeldOutGrowthWithinTenPercentAtTenTimesTheFitSlice) {
    // The target on both bundled corpora: fitted on the first 10%, the continuation's
    // unique rows (per head, layer 0) at 2x, 4x, 8x and 10x the fitted size are within 10% of
    // the held-out text's, for both orders; top-1% shares of the held-out reads within 5 points.
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
    for (const char* corpus : {"bundled:handbook-en-US", "bundled:handbook-zh-CN"}) {
        const auto ids = map.compress(read_tokens(corpus));
        const uint64_t fit = ids.size() / 10;
        const SyntheticModel m =
            fit_synthetic(ids, fit, 3, map(engram.pad_id), map.canonical_vocab_size());
        const std::vector<uint64_t> checkpoints = {fit, 2 * fit, 4 * fit, 8 * fit, ids.size()};
        const auto real = corpus_growth(ids, tables, fit, checkpoints);
        const auto synth = synthetic_growth(m, tables, 1, checkpoints);
        for (size_t o = 0; o < 2; ++o) {
            // At the fitted size both count the slice's distinct n-grams hashed into the same
            // tables; only which of them collide differs.
            EXPECT_NEAR(synth.unique_rows[o][0] / real.unique_rows[o][0], 1.0, 0.002) << corpus;
            for (size_t i = 1; i < checkpoints.size(); ++i)
                EXPECT_NEAR(synth.unique_rows[o][i] / real.unique_rows[o][i], 1.0, 0.10)
                    << corpus << " order " << o + 2 << " at " << checkpoints[i] << " tokens";
            EXPECT_NEAR(synth.top_share[o][1], real.top_share[o][1], 0.05) << corpus;
        }
    }
}

TEST(Synthetic, WorkloadStreamsLookupsInServingOrder) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(engram.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    const SyntheticModel m =
        fit_synthetic(ids, 20000, 3, map(engram.pad_id), map.canonical_vocab_size());
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
