// Placement replay: step grouping and folding of repeats, per-(step, layer) records, the tier
// rules (DRAM holds all; inclusive with back-invalidation; exclusive with demotion) against
// list-based reference models, exact one-pass LRU miss-ratio curves against separate runs, and
// capacity parsing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <unordered_map>
#include <list>
#include <random>

#include "model/config.h"
#include "model/engram_config.h"
#include "sim/placement/mrc.h"
#include "sim/placement/replay.h"
#include "traces/lookups.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::placement;

namespace {

// Steps given by hand: steps[s][l] = keys read at layer l.
class VectorSource final : public LookupSource {
public:
    VectorSource(std::vector<std::vector<std::vector<uint64_t>>> steps, double row_bytes,
                 uint64_t rows_per_layer)
        : steps_(std::move(steps)) {
        const size_t layers = steps_.empty() ? 1 : steps_[0].size();
        for (size_t l = 0; l < layers; ++l) {
            layout_.layer_ids.push_back(int(l) + 1);
            layout_.layer_base.push_back(layout_.total_rows);
            layout_.layer_rows.push_back(rows_per_layer);
            layout_.total_rows += rows_per_layer;
        }
        layout_.heads_per_layer = 1;
        layout_.row_bytes = row_bytes;
    }
    const LookupLayout& layout() const override { return layout_; }
    bool next(StepBatch& b) override {
        if (i_ == steps_.size()) return false;
        b.step = i_;
        b.rows = steps_[i_++];
        return true;
    }

private:
    std::vector<std::vector<std::vector<uint64_t>>> steps_;
    LookupLayout layout_;
    size_t i_ = 0;
};

// Random steps: `layers` layers of `rows_per_layer` rows, skewed popularity, repeats in a step.
VectorSource random_source(uint64_t seed, size_t steps, size_t layers, uint64_t rows_per_layer,
                           size_t lookups_per_step) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<std::vector<std::vector<uint64_t>>> all(steps);
    for (auto& s : all) {
        s.resize(layers);
        for (size_t l = 0; l < layers; ++l)
            for (size_t k = 0; k < lookups_per_step; ++k)
                s[l].push_back(l * rows_per_layer +
                               uint64_t(std::pow(u(rng), 2.5) * double(rows_per_layer)));
    }
    return VectorSource(std::move(all), 160, rows_per_layer);
}

// ---- Reference two-tier model: LRU in HBM and LRU in DRAM, lists and linear scans ------------

struct RefTiers {
    size_t hbm_cap, dram_cap;
    bool exclusive, dram_all;
    std::list<uint32_t> H, D;  // front = most recent
    static bool take(std::list<uint32_t>& l, uint32_t id) {
        auto it = std::find(l.begin(), l.end(), id);
        if (it == l.end()) return false;
        l.erase(it);
        return true;
    }
    // Inserts at the front; returns the evicted row or kNoRow.
    static uint32_t put(std::list<uint32_t>& l, size_t cap, uint32_t id) {
        uint32_t v = kNoRow;
        if (l.size() == cap) {
            v = l.back();
            l.pop_back();
        }
        l.push_front(id);
        return v;
    }
    void serve(uint32_t id, StepRecord& r) {
        if (take(H, id)) {
            H.push_front(id);
            ++r.hbm_hits;
            return;
        }
        uint32_t hv = kNoRow;
        const bool admitted = hbm_cap > 0;
        if (admitted) {
            hv = put(H, hbm_cap, id);
            ++r.promoted_rows;
            if (hv != kNoRow) ++r.evicted_rows;
        }
        if (dram_all) {
            ++r.dram_rows;
            return;
        }
        if (!exclusive) {
            if (take(D, id)) {
                D.push_front(id);
                ++r.dram_rows;
            } else {
                ++r.ssd_rows;
                if (dram_cap > 0) {
                    const uint32_t dv = put(D, dram_cap, id);
                    if (dv != kNoRow && take(H, dv)) ++r.invalidated_rows;
                }
            }
            return;
        }
        const bool in_d = take(D, id);
        if (in_d)
            ++r.dram_rows;
        else
            ++r.ssd_rows;
        if (!admitted && dram_cap > 0) put(D, dram_cap, id);
        if (hv != kNoRow) {
            if (dram_cap > 0) put(D, dram_cap, hv);
            ++r.demoted_rows;
        }
    }
};

void expect_same(const StepRecord& a, const StepRecord& b, const std::string& what) {
    EXPECT_EQ(a.hbm_hits, b.hbm_hits) << what;
    EXPECT_EQ(a.dram_rows, b.dram_rows) << what;
    EXPECT_EQ(a.ssd_rows, b.ssd_rows) << what;
    EXPECT_EQ(a.promoted_rows, b.promoted_rows) << what;
    EXPECT_EQ(a.evicted_rows, b.evicted_rows) << what;
    EXPECT_EQ(a.demoted_rows, b.demoted_rows) << what;
    EXPECT_EQ(a.invalidated_rows, b.invalidated_rows) << what;
}

}  // namespace

TEST(PlacementReplay, StepsFoldRepeatsAndRecordEveryStepAndLayer) {
    // two layers of 100 rows; keys of layer 1 start at 100
    VectorSource src({{{1, 2, 1, 3, 1}, {100, 100, 150}}, {{2, 2, 4}, {150, 101}}, {{1}, {100}}},
                     160, 100);
    DenseTrace tr = densify(src);
    EXPECT_EQ(tr.steps, 3u);
    EXPECT_EQ(tr.lookups, 5u + 3 + 3 + 2 + 1 + 1);
    EXPECT_EQ(tr.requests.size(), 3u + 2 + 2 + 2 + 1 + 1);  // unique per (step, layer)
    EXPECT_EQ(tr.universe(), 7u);
    ASSERT_EQ(tr.groups.size(), 6u);
    EXPECT_EQ(tr.table_rows(), 200u);

    TierConfig cfg{.hbm_rows = 3, .policy = "lru"};
    ReplayResult r = replay(tr, cfg);
    ASSERT_EQ(r.steps.size(), 6u);
    // LRU of 3 over the folded sequence: 1 2 3 | 100 150 | 2 4 | 150 101 | 1 | 100
    // after step 0 the cache is {150, 100, 3}; 2 and 4 push out 3 and 100; 150 hits.
    const uint64_t hits[6] = {0, 0, 0, 1, 0, 0};
    for (size_t i = 0; i < 6; ++i) {
        const StepRecord& s = r.steps[i];
        EXPECT_EQ(s.step, i / 2);
        EXPECT_EQ(s.layer, i % 2);
        EXPECT_EQ(s.hbm_hits, hits[i]) << i;
        EXPECT_EQ(s.hbm_hits + s.dram_rows + s.ssd_rows, s.unique_rows);
        EXPECT_EQ(s.ssd_rows, 0u);
        EXPECT_DOUBLE_EQ(s.host_to_gpu_bytes, double(s.dram_rows) * 160);
        EXPECT_EQ(s.gpu_to_host_bytes, 0);
    }
    EXPECT_EQ(r.steps[0].lookups, 5u);
    EXPECT_EQ(r.steps[0].unique_rows, 3u);
    EXPECT_EQ(r.total.lookups, tr.lookups);
    EXPECT_EQ(r.total.requests, 11u);
    EXPECT_EQ(r.total.hbm_hits, 1u);
    EXPECT_EQ(r.layers[0].requests + r.layers[1].requests, 11u);
    EXPECT_EQ(r.dram_capacity_rows, kAllRows);
}

TEST(PlacementReplay, TwoTierRulesMatchAListBasedModel) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
        VectorSource src = random_source(seed, 60, 2, 400, 40);
        const DenseTrace tr = densify(src);
        for (const bool exclusive : {false, true})
            for (const uint64_t hbm : {0u, 5u, 30u, 120u})
                for (const uint64_t dram : {0u, 10u, 50u, 200u, 800u}) {
                    TierConfig cfg{
                        .hbm_rows = hbm,
                        .policy = "lru",
                        .dram_rows = dram,
                        .dram_policy = "lru",
                        .inclusion = exclusive ? Inclusion::Exclusive : Inclusion::Inclusive};
                    const ReplayResult r = replay(tr, cfg);
                    RefTiers ref{hbm, dram, exclusive, dram >= tr.table_rows(), {}, {}};
                    ASSERT_EQ(r.steps.size(), tr.groups.size());
                    for (size_t g = 0; g < tr.groups.size(); ++g) {
                        StepRecord want;
                        const auto& grp = tr.groups[g];
                        for (uint64_t t = grp.first; t < grp.first + grp.count; ++t)
                            ref.serve(tr.requests[t], want);
                        const auto& got = r.steps[g];
                        expect_same(got, want,
                                    "seed " + std::to_string(seed) + " hbm " + std::to_string(hbm) +
                                        " dram " + std::to_string(dram) +
                                        (exclusive ? " exclusive" : " inclusive") + " group " +
                                        std::to_string(g));
                        EXPECT_EQ(got.hbm_hits + got.dram_rows + got.ssd_rows, got.unique_rows);
                        EXPECT_DOUBLE_EQ(got.ssd_to_host_bytes, double(got.ssd_rows) * 160);
                        EXPECT_DOUBLE_EQ(got.gpu_to_host_bytes, double(got.demoted_rows) * 160);
                    }
                }
    }
}

TEST(PlacementReplay, TiersRefuseBeladyOnDramAndStaticProfilesAWindow) {
    VectorSource src = random_source(9, 50, 1, 300, 30);
    const DenseTrace tr = densify(src);
    TierConfig cfg{.hbm_rows = 10, .policy = "lru", .dram_rows = 50, .dram_policy = "belady"};
    EXPECT_THROW(replay(tr, cfg), PolicyError);
    // static over the first 20% of requests pins exactly the top rows of that window
    TierConfig st{.hbm_rows = 10, .policy = "static", .profile_fraction = 0.2};
    const ReplayResult r = replay(tr, st);
    const auto counts =
        request_counts(std::span(tr.requests).first(tr.requests.size() / 5), tr.universe());
    PolicyContext ctx{
        .capacity_rows = 10, .universe = tr.universe(), .keys = tr.keys, .profile_counts = counts};
    auto p = make_policy("static", ctx);
    EXPECT_EQ(r.total.requests - r.total.hbm_hits, p->run(tr.requests, 0));
    EXPECT_EQ(r.total.promoted_rows, 0u);
}

TEST(PlacementReplay, StaticFromAWarmupTraceRanksAllOfItsRows) {
    // warm-up: row 7 x3, row 5 x2, row 9 x2, row 1 x1 (one request per (step, layer) each);
    // ranks: 7 -> 0, 5 -> 1 (ties to the smaller key), 9 -> 2, 1 -> 3
    VectorSource warm({{{7, 5, 5}}, {{7, 9, 5}}, {{7, 9, 1}}}, 16, 100);
    VectorSource main_src({{{1, 9, 2}}, {{1, 9, 2, 5}}}, 16, 100);
    const DenseTrace tr = densify(main_src);  // dense: 1 -> 0, 9 -> 1, 2 -> 2, 5 -> 3
    const auto ranks = profile_ranks_for(tr, warm);
    EXPECT_EQ(ranks, (std::vector<uint64_t>{3, 2, UINT64_MAX, 1}));
    // capacity 2 pins 7 and 5 (the warm-up's top two): only 5 is ever read here, once
    TierConfig cfg{.hbm_rows = 2, .policy = "static", .profile_ranks = ranks};
    EXPECT_EQ(replay(tr, cfg).total.hbm_hits, 1u);
    cfg.hbm_rows = 3;  // 7, 5, 9: 9 is read twice
    EXPECT_EQ(replay(tr, cfg).total.hbm_hits, 3u);
    cfg.hbm_rows = 100;  // everything the warm-up read: 1, 9 twice each and 5
    EXPECT_EQ(replay(tr, cfg).total.hbm_hits, 5u);
}

TEST(PlacementReplay, OnePassLruCurveEqualsSeparateRunsAtEverySize) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        VectorSource src = random_source(seed, 200, 2, 1500, 50 + 20 * seed);
        const DenseTrace tr = densify(src);
        const StackDistances sd = lru_stack_distances(tr.requests, tr.universe());
        std::vector<uint64_t> caps;
        for (uint64_t c = 0; c <= tr.universe() + 2; ++c) caps.push_back(c);
        const auto curve = sd.curve(caps);
        PolicyContext ctx{.universe = tr.universe(), .keys = tr.keys};
        for (size_t i = 0; i < caps.size(); ++i) {
            ctx.capacity_rows = caps[i];
            ASSERT_EQ(curve[i].misses, make_policy("lru", ctx)->run(tr.requests, 0))
                << "seed " << seed << " capacity " << caps[i];
        }
        EXPECT_EQ(curve.front().misses, tr.requests.size());
        EXPECT_EQ(curve.back().misses, uint64_t(tr.universe()));  // cold misses only
        // the thread pool gives the same curve as one thread, and as the one-pass LRU
        const std::vector<uint64_t> some = {1, 7, 64, 300, 1000};
        const auto a = policy_mrc("lru", ctx, tr.requests, some, 1);
        const auto b = policy_mrc("lru", ctx, tr.requests, some, 3);
        const auto c = sd.curve(some);
        for (size_t i = 0; i < some.size(); ++i) {
            EXPECT_EQ(a[i].misses, b[i].misses);
            EXPECT_EQ(a[i].misses, c[i].misses);
        }
        // the bracketed pass equals the histogram at every size, in any order, with repeats
        std::vector<uint64_t> shuffled = caps;
        std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(seed));
        shuffled.push_back(shuffled.front());
        const auto brackets = lru_mrc(tr.requests, tr.universe(), shuffled);
        for (size_t i = 0; i < shuffled.size(); ++i)
            ASSERT_EQ(brackets[i].misses, curve[shuffled[i]].misses) << shuffled[i];
    }
}

TEST(PlacementReplay, StackDistancesSurviveCompaction) {
    // few distinct rows and a long sequence: positions are renumbered many times
    std::mt19937_64 rng(5);
    std::vector<uint64_t> ids;
    for (int i = 0; i < 200000; ++i) ids.push_back(rng() % 37);
    const DenseTrace tr = densify_ids(ids);
    const StackDistances sd = lru_stack_distances(tr.requests, tr.universe());
    std::vector<uint64_t> caps = {1, 2, 5, 10, 20, 36, 37};
    const auto curve = sd.curve(caps);
    for (size_t i = 0; i < caps.size(); ++i) {
        PolicyContext ctx{.capacity_rows = caps[i], .universe = tr.universe()};
        EXPECT_EQ(curve[i].misses, make_policy("lru", ctx)->run(tr.requests, 0)) << caps[i];
    }
    const auto brackets = lru_mrc(tr.requests, tr.universe(), caps);
    for (size_t i = 0; i < caps.size(); ++i) EXPECT_EQ(brackets[i].misses, curve[i].misses);
}

TEST(PlacementReplay, BracketedCurveIsExactWhenManySizesShareATableCell) {
    // More than 2^16 distinct rows, so the bracket table covers several distances per cell:
    // every size of a dense run shares a cell with its neighbours; also sizes at the cell edges,
    // beyond the universe, and zero.
    std::mt19937_64 rng(11);
    std::vector<uint64_t> ids;
    for (int i = 0; i < 600000; ++i) {
        const uint64_t r = rng();
        ids.push_back(r % 2 == 0 ? (r >> 2) % 1000000 : (r >> 8) % 2000);  // a long tail, a hot set
    }
    const DenseTrace tr = densify_ids(ids);
    ASSERT_GT(tr.universe(), 1u << 17);
    const StackDistances sd = lru_stack_distances(tr.requests, tr.universe());
    std::vector<uint64_t> caps = {0,
                                  1,
                                  2,
                                  3,
                                  4,
                                  tr.universe() - 1,
                                  tr.universe(),
                                  uint64_t(tr.universe()) + 5,
                                  uint64_t(1) << 40};
    for (uint64_t c = 1990; c <= 2010; ++c) caps.push_back(c);
    for (uint64_t c = 65530; c <= 65542; ++c) caps.push_back(c);  // around a cell edge
    for (int k = 0; k < 200; ++k) caps.push_back(rng() % (tr.universe() + 1));
    const auto brackets = lru_mrc(tr.requests, tr.universe(), caps);
    const auto curve = sd.curve(caps);
    for (size_t i = 0; i < caps.size(); ++i)
        ASSERT_EQ(brackets[i].misses, curve[i].misses) << "capacity " << caps[i];
    for (uint64_t c : {uint64_t(2000), uint64_t(65536), uint64_t(150000)}) {
        PolicyContext ctx{.capacity_rows = c, .universe = tr.universe()};
        EXPECT_EQ(lru_mrc(tr.requests, tr.universe(), std::vector<uint64_t>{c})[0].misses,
                  make_policy("lru", ctx)->run(tr.requests, 0))
            << "capacity " << c;
    }
}

TEST(PlacementReplay, HashedWorkloadReplaysDeterministically) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const Workload w = nano_vllm_workload(6, 3, 20, 60, 40);
    SchedulerConfig sched;
    auto a = hashed_lookups(engram, w, sched);
    const DenseTrace tr = densify(*a);
    // every token but each request's last generated one is fed to the model
    const uint64_t fed = w.prompt_tokens() + w.output_tokens() - w.requests.size();
    EXPECT_EQ(tr.lookups, fed * 16 * 2);
    EXPECT_DOUBLE_EQ(tr.row_bytes(), engram.row_bytes());
    TierConfig cfg{.hbm_rows = parse_capacity_rows("1%", tr.row_bytes(), tr.table_rows()),
                   .policy = "s3fifo",
                   .dram_rows = 2000};
    const ReplayResult r1 = replay(tr, cfg);
    auto b = hashed_lookups(engram, w, sched);
    const ReplayResult r2 = replay(densify(*b), cfg);
    ASSERT_EQ(r1.steps.size(), r2.steps.size());
    for (size_t i = 0; i < r1.steps.size(); ++i) expect_same(r1.steps[i], r2.steps[i], "step");
    EXPECT_EQ(r1.total.hbm_hits + r1.total.dram_rows + r1.total.ssd_rows, r1.total.requests);
}

TEST(PlacementReplay, CapacitiesParseAsFractionsBytesOrRows) {
    EXPECT_EQ(parse_capacity_rows("1%", 160, 1000000), 10000u);
    EXPECT_EQ(parse_capacity_rows("100%", 160, 1000000), 1000000u);
    EXPECT_EQ(parse_capacity_rows("all", 160, 123), 123u);
    EXPECT_EQ(parse_capacity_rows("10GiB", 160, 1ull << 40), (10ull << 30) / 160);
    EXPECT_EQ(parse_capacity_rows("1.5 KB", 160, 100000), 9u);
    EXPECT_EQ(parse_capacity_rows("1000000", 160, 10), 1000000u);
    EXPECT_EQ(parse_capacity_rows("2.5M rows", 160, 10), 2500000u);
    EXPECT_THROW(parse_capacity_rows("10 GiBs", 160, 10), std::invalid_argument);
    EXPECT_THROW(parse_capacity_rows("101%", 160, 10), std::invalid_argument);
    EXPECT_THROW(parse_capacity_rows("", 160, 10), std::invalid_argument);
}

TEST(PlacementReplay, BatchPathCountsEqualRequestByRequestForEveryPolicy) {
    VectorSource src = random_source(21, 80, 2, 500, 60);
    const DenseTrace tr = densify(src);
    const auto next = next_uses(tr.requests, tr.universe());
    const auto counts = request_counts(tr.requests, tr.universe());
    for (const auto& info : policies()) {
        for (const uint64_t cap : {0u, 7u, 64u, 300u}) {
            TierConfig cfg{.hbm_rows = cap, .policy = info.name};
            const ReplayResult r = replay(tr, cfg);  // DRAM holds all: the batch path
            PolicyContext ctx{.capacity_rows = cap,
                              .universe = tr.universe(),
                              .keys = tr.keys,
                              .next_use = next,
                              .profile_counts = counts};
            auto p = make_policy(info.name, ctx);
            for (size_t g = 0; g < tr.groups.size(); ++g) {
                StepRecord want;
                const auto& grp = tr.groups[g];
                for (uint64_t t = grp.first; t < grp.first + grp.count; ++t) {
                    const uint32_t id = tr.requests[t];
                    if (p->access(id, uint32_t(t))) {
                        ++want.hbm_hits;
                        continue;
                    }
                    ++want.dram_rows;
                    want.promoted_rows += p->contains(id);
                    want.evicted_rows += p->victim() != kNoRow;
                }
                expect_same(r.steps[g], want,
                            std::string(info.name) + " capacity " + std::to_string(cap) +
                                " group " + std::to_string(g));
            }
        }
    }
}

// Ids are numbered in order of first sight, and the key index (densify's) gives the same ids
// whatever its size.
TEST(DenseTrace, IdsAreFirstSightOrderAndTheKeyIndexFindsThem) {
    for (uint64_t distinct : {1ull, 100ull, 5000ull, 300000ull}) {
        std::mt19937_64 rng(distinct);
        std::vector<uint64_t> keys;
        for (uint64_t i = 0; i < 3 * distinct; ++i) keys.push_back(rng() % distinct * 7919 + 3);
        std::unordered_map<uint64_t, uint32_t> first;  // the brute-force numbering
        std::vector<uint32_t> want;
        for (uint64_t k : keys) {
            auto it = first.emplace(k, uint32_t(first.size())).first;
            want.push_back(it->second);
        }
        const DenseTrace tr = densify_ids(keys);
        EXPECT_EQ(tr.requests, want) << distinct;
        EXPECT_EQ(tr.universe(), first.size());
        KeyIndex small, big;  // grown from nothing, or reserved once: the same ids
        big.reserve(first.size());
        for (uint64_t k : keys) ASSERT_EQ(small.insert(k), big.insert(k));
        for (const auto& [k, id] : first) ASSERT_EQ(big.find(k), id);
        EXPECT_EQ(big.find(1), UINT32_MAX);  // never inserted (every key is 3 mod 7919)
    }
}

// An id file is read in chunks, twice: the same trace as the ids in memory, and a file that is
// not a whole number of ids, or empty, is refused by name.
TEST(DenseTrace, AnIdFileDensifiesLikeItsIdsAndBadFilesAreRefused) {
    std::vector<uint64_t> ids;
    std::mt19937_64 rng(5);
    for (int i = 0; i < 3'000'000; ++i) ids.push_back(rng() % 200000);  // past one 8 MiB chunk
    const std::string path = testing::TempDir() + "dense_trace_ids.u64";
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 8));
    }
    const DenseTrace from_file = densify_id_file(path, 80);
    const DenseTrace in_memory = densify_ids(ids, 80);
    EXPECT_EQ(from_file.requests, in_memory.requests);
    EXPECT_EQ(from_file.keys, in_memory.keys);
    EXPECT_EQ(from_file.lookups, ids.size());
    EXPECT_EQ(from_file.row_bytes(), 80);
    auto error_of = [&](const std::string& p) {
        try {
            densify_id_file(p);
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    {
        std::ofstream f(path, std::ios::binary | std::ios::app);
        f.write("abc", 3);  // a torn last id
    }
    EXPECT_NE(error_of(path).find("not a whole number of uint64 ids"), std::string::npos)
        << error_of(path);
    { std::ofstream f(path, std::ios::binary | std::ios::trunc); }
    EXPECT_NE(error_of(path).find("holds no ids"), std::string::npos) << error_of(path);
    EXPECT_NE(error_of(path + ".missing").find("cannot open"), std::string::npos);
    std::remove(path.c_str());
}

// An id file replayed in one pass (the keys numbered on every core and handed to the policy as
// numbered, not in order of first sight) gives the result of densifying it and replaying it, bit
// for bit: every policy that decides from the order of requests alone, capacities from none to
// more than the rows, and the policies that need the whole trace first, which take that path.
TEST(PlacementReplay, OnePassReplayOfAnIdFileEqualsDensifyingThenReplaying) {
    std::vector<uint64_t> ids;
    std::mt19937_64 rng(17);
    for (int i = 0; i < 400000; ++i) {  // a skewed sequence over about 60,000 rows
        const uint64_t r = rng() % 1000;
        ids.push_back(r * r * 61 % 60000 + 1000 * (rng() % 2));
    }
    const std::string path = testing::TempDir() + "one_pass_ids.u64";
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 8));
    }
    const DenseTrace in_turn = densify_id_file(path, 64);
    auto same = [](const TierTotals& a, const TierTotals& b) {
        return a.lookups == b.lookups && a.requests == b.requests && a.hbm_hits == b.hbm_hits &&
               a.dram_rows == b.dram_rows && a.promoted_rows == b.promoted_rows &&
               a.evicted_rows == b.evicted_rows && a.ssd_rows == b.ssd_rows &&
               a.demoted_rows == b.demoted_rows;
    };
    for (const char* policy : {"lru", "sieve", "s3fifo", "lfu", "sa-lru"})
        for (uint64_t cap : {0ull, 1ull, 5000ull, 1000000ull}) {
            SCOPED_TRACE(std::string(policy) + " " + std::to_string(cap));
            TierConfig tiers{.hbm_rows = cap, .policy = policy, .step_records = false};
            InputFacts facts;
            const ReplayResult got = replay_id_file(path, 64, tiers, facts);
            const ReplayResult want = replay(in_turn, tiers);
            EXPECT_TRUE(same(got.total, want.total))
                << got.total.hbm_hits << " vs " << want.total.hbm_hits;
            EXPECT_TRUE(same(got.layers.at(0), want.layers.at(0)));
            EXPECT_EQ(got.hbm_capacity_rows, want.hbm_capacity_rows);
            EXPECT_EQ(got.dram_capacity_rows, want.dram_capacity_rows);
            const InputFacts expect = facts_of(in_turn);
            EXPECT_EQ(facts.lookups, expect.lookups);
            EXPECT_EQ(facts.requests, expect.requests);
            EXPECT_EQ(facts.distinct_rows, expect.distinct_rows);
            EXPECT_EQ(facts.table_rows, expect.table_rows);
            EXPECT_EQ(facts.row_bytes, expect.row_bytes);
            EXPECT_TRUE(facts.per_lookup);
            if (cap == 5000) {
                EXPECT_GT(got.total.hbm_hits, 0u);  // the check means something
            }
        }
    // The LRU curve of the file in one pass: lru_mrc's points over the densified requests, and
    // the run read off it: replay()'s result.
    InputFacts curve_facts;
    const std::vector<uint64_t> sizes = {0, 1, 777, 5000, 59999, 60000, 1000000};
    const std::vector<MrcPoint> one_pass = lru_curve_of_id_file(
        path, 64, [&](uint64_t distinct) {
            EXPECT_EQ(distinct, in_turn.universe());
            return sizes;
        }, curve_facts);
    const std::vector<MrcPoint> want_curve = lru_mrc(in_turn.requests, in_turn.universe(), sizes);
    ASSERT_EQ(one_pass.size(), want_curve.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
        EXPECT_EQ(one_pass[i].capacity_rows, sizes[i]);
        EXPECT_EQ(one_pass[i].misses, want_curve[i].misses) << sizes[i];
        EXPECT_EQ(one_pass[i].requests, ids.size());
        const TierConfig lru{.hbm_rows = sizes[i], .step_records = false};
        const ReplayResult read_off = lru_result_from_curve(one_pass[i], in_turn.universe(), 64, lru);
        EXPECT_TRUE(same(read_off.total, replay(in_turn, lru).total)) << sizes[i];
    }
    EXPECT_TRUE(replays_in_one_pass({.policy = "lru"}));
    EXPECT_FALSE(replays_in_one_pass({.policy = "sa-lru"}));
    EXPECT_FALSE(replays_in_one_pass({.policy = "belady"}));
    EXPECT_FALSE(replays_in_one_pass({.policy = "lru", .dram_rows = 10}));
    InputFacts facts;
    EXPECT_THROW(replay_id_file(path, 64, {.policy = "lur"}, facts), PolicyError);
    std::remove(path.c_str());
}
