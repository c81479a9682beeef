// Properties of the lookahead=W option of lru, lfu, s3fifo, sieve, sa-lru and sa-lfu (the exact
// comparisons against brute-force references are in test_placement_policies.cpp):
//   - no policy evicts a row requested again within the window while a resident row outside it
//     exists (for sa-lru and sa-lfu: a resident row of the same set), on random traces with and
//     without steps, with rows erased now and then;
//   - when every resident row is needed, each evicts what the plain policy evicts;
//   - the option needs next-use times, takes an integer, and is listed among the known options;
//     static (which never evicts) rejects it, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"

using namespace engramsim::placement;

namespace {

struct Case {
    std::string policy;
    std::map<std::string, std::string> options;
};

const std::vector<Case>& lookahead_cases() {
    static const std::vector<Case> all = {
        {"lru", {}},
        {"lfu", {}},
        {"lfu", {{"aging", "none"}}},
        {"s3fifo", {}},
        {"s3fifo", {{"small", "0.25"}, {"move_threshold", "2"}}},
        {"sieve", {}},
        {"sa-lru", {{"ways", "4"}}},
        {"sa-lru", {}},
        {"sa-lfu", {{"ways", "4"}}},
        {"sa-lfu", {{"ways", "8"}, {"admission", "always"}}},
    };
    return all;
}

uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

// The set each row may live in: for sa-lru and sa-lfu, fmix64(key) mod sets with sets =
// capacity / ways (one set of `capacity` ways when capacity < ways); every other policy is one
// set (the whole cache).
std::vector<uint64_t> sets_of(const Case& c, uint64_t cap, const std::vector<uint64_t>& keys) {
    std::vector<uint64_t> set(keys.size(), 0);
    if (c.policy != "sa-lru" && c.policy != "sa-lfu") return set;
    const auto it = c.options.find("ways");
    const uint64_t ways = it == c.options.end() ? 32 : std::stoull(it->second);
    const uint64_t sets = cap < ways ? 1 : cap / ways;
    for (size_t r = 0; r < keys.size(); ++r) set[r] = fmix64(keys[r]) % sets;
    return set;
}

std::string label(const Case& c) {
    std::string s = c.policy;
    for (const auto& [k, v] : c.options) s += " " + k + "=" + v;
    return s;
}

// Skewed dense ids in [0, universe) (u^skew), every id in range allowed.
std::vector<uint32_t> skewed_ids(uint64_t seed, size_t n, uint32_t universe, double skew) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<uint32_t> ids(n);
    for (auto& id : ids) id = std::min(universe - 1, uint32_t(std::pow(u(rng), skew) * universe));
    return ids;
}

// Rows requested at positions t+1 .. end-1, end = first position of the step w+1 steps after
// t's (no steps: t + w + 1). Brute force.
std::vector<bool> needed_at(const std::vector<uint32_t>& ids,
                            const std::vector<uint64_t>& step_first, uint64_t w, size_t t,
                            uint32_t universe) {
    uint64_t end = t + w + 1;
    if (!step_first.empty()) {
        const size_t s =
            size_t(std::upper_bound(step_first.begin(), step_first.end(), t) - step_first.begin()) -
            1;
        end = s + w + 1 < step_first.size() ? step_first[s + w + 1] : UINT64_MAX;
    }
    std::vector<bool> need(universe, false);
    for (size_t k = t + 1; k < ids.size() && k < end; ++k) need[ids[k]] = true;
    return need;
}

}  // namespace

// Whenever a policy with lookahead evicts while some resident row (of the requested row's set,
// for the set-associative policies) is not needed in the window, its victim is not needed
// either. The resident set is tracked from victim() and erase().
TEST(PlacementLookahead, NoPolicyEvictsANeededRowWhileAnUnneededOneIsResident) {
    uint64_t evictions = 0, with_needed_rows = 0, all_needed = 0;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        const uint32_t universe = 80 + 30 * uint32_t(seed);
        const auto ids = skewed_ids(seed, 2500, universe, 1.0 + 0.5 * double(seed % 3));
        std::vector<uint64_t> keys(universe);
        for (uint32_t i = 0; i < universe; ++i) keys[i] = uint64_t(i) * 7919 + 13;
        const auto next = next_uses(ids, universe);
        std::vector<uint64_t> step_first;  // steps of 1..16 requests
        std::mt19937_64 rng(seed + 100);
        for (uint64_t p = 0; p < ids.size(); p += 1 + rng() % 16) step_first.push_back(p);
        for (const bool steps : {true, false})
            for (uint64_t w : {0u, 1u, 2u, 5u, 20u})
                for (Case c : lookahead_cases()) {
                    c.options["lookahead"] = std::to_string(w);
                    for (uint64_t cap : {1u, 3u, 8u, 32u, 100u}) {
                        const std::vector<uint64_t> no_steps;
                        const auto& sf = steps ? step_first : no_steps;
                        PolicyContext ctx{.capacity_rows = cap,
                                          .universe = universe,
                                          .keys = keys,
                                          .next_use = next,
                                          .step_first = sf,
                                          .options = c.options};
                        auto p = make_policy(c.policy, ctx);
                        const auto set = sets_of(c, cap, keys);
                        std::vector<bool> in(universe, false);
                        uint64_t n = 0;
                        for (size_t t = 0; t < ids.size(); ++t) {
                            const uint32_t id = ids[t];
                            const auto need = needed_at(ids, sf, w, t, universe);
                            bool free_resident = false, needed_resident = false;
                            for (uint32_t r = 0; r < universe; ++r)
                                if (in[r] && set[r] == set[id])
                                    (need[r] ? needed_resident : free_resident) = true;
                            const bool hit = p->access(id, uint32_t(t));
                            ASSERT_EQ(hit, bool(in[id])) << label(c) << " t " << t;
                            if (!hit && p->victim() != kNoRow) {
                                const uint32_t v = p->victim();
                                ASSERT_TRUE(in[v]);
                                ASSERT_EQ(set[v], set[id]) << label(c);
                                ++evictions;
                                with_needed_rows += needed_resident;
                                all_needed += !free_resident;
                                if (free_resident) {
                                    ASSERT_FALSE(need[v])
                                        << label(c) << " evicted a needed row: capacity " << cap
                                        << " seed " << seed << " steps " << steps << " t " << t;
                                }
                                in[v] = false, --n;
                            }
                            if (!hit && p->contains(id)) in[id] = true, ++n;
                            if (t % 11 == 5) {  // drop another row now and then
                                const uint32_t other = ids[t / 3];
                                ASSERT_EQ(p->erase(other), bool(in[other])) << label(c);
                                if (in[other]) in[other] = false, --n;
                            }
                            ASSERT_EQ(p->size(), n) << label(c) << " t " << t;
                        }
                    }
                }
    }
    // not vacuous: many evictions had needed rows to pass over, some had nothing else
    EXPECT_GT(with_needed_rows, evictions / 4);
    EXPECT_GT(all_needed, 0u);
}

// Every cycle requests every row (a fresh order, some rows twice), and the window covers the
// rest of the trace: until the last cycle, every resident row is needed at every eviction, so
// each policy must evict exactly what its plain version evicts.
TEST(PlacementLookahead, WhenEveryRowIsNeededThePlainVictimIsEvicted) {
    constexpr uint32_t kRows = 12, kCycles = 30;
    std::mt19937_64 rng(7);
    std::vector<uint32_t> ids;
    for (uint32_t c = 0; c < kCycles; ++c) {
        std::vector<uint32_t> cycle(kRows);
        std::iota(cycle.begin(), cycle.end(), 0u);
        for (int k = 0; k < 6; ++k) cycle.push_back(uint32_t(rng() % kRows));
        std::shuffle(cycle.begin(), cycle.end(), rng);
        ids.insert(ids.end(), cycle.begin(), cycle.end());
    }
    const size_t last_cycle = ids.size() - (kRows + 6);
    std::vector<uint64_t> keys(kRows);
    for (uint32_t i = 0; i < kRows; ++i) keys[i] = i * 31 + 1;
    const auto next = next_uses(ids, kRows);
    for (const Case& c : lookahead_cases())
        for (uint64_t cap : {1u, 2u, 5u, 9u}) {
            Case la = c;
            la.options["lookahead"] = std::to_string(ids.size());
            PolicyContext ctx{
                .capacity_rows = cap, .universe = kRows, .keys = keys, .next_use = next};
            ctx.options = c.options;
            auto plain = make_policy(c.policy, ctx);
            ctx.options = la.options;
            auto look = make_policy(c.policy, ctx);
            for (size_t t = 0; t < last_cycle; ++t) {
                ASSERT_EQ(look->access(ids[t], uint32_t(t)), plain->access(ids[t], uint32_t(t)))
                    << label(c) << " capacity " << cap << " t " << t;
                ASSERT_EQ(look->victim(), plain->victim()) << label(c) << " t " << t;
            }
        }
}

TEST(PlacementLookahead, TheOptionNeedsNextUseTimesAndAnInteger) {
    const std::vector<uint32_t> next = {kNever, kNever};
    for (const char* p : {"lru", "lfu", "s3fifo", "sieve", "sa-lru", "sa-lfu"}) {
        PolicyContext ctx{.capacity_rows = 2, .universe = 2, .options = {{"lookahead", "3"}}};
        try {
            make_policy(p, ctx);
            FAIL() << p;
        } catch (const PolicyError& e) {
            EXPECT_EQ(
                std::string(e.what()),
                "policy " + std::string(p) + ": lookahead needs next-use times (HBM tier only)");
        }
        ctx.next_use = next;
        EXPECT_NO_THROW(make_policy(p, ctx)) << p;
        ctx.options = {{"lookahead", "x"}};
        EXPECT_THROW(make_policy(p, ctx), PolicyError) << p;
        ctx.options = {{"lookahead", "-1"}};
        EXPECT_THROW(make_policy(p, ctx), PolicyError) << p;
    }
    PolicyContext ctx{.capacity_rows = 2, .universe = 2, .options = {{"lookahed", "1"}}};
    try {
        make_policy("sieve", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "policy sieve: unknown option 'lookahed'; known: lookahead");
    }
    try {
        make_policy("s3fifo", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "policy s3fifo: unknown option 'lookahed'; known: small, move_threshold, "
                  "lookahead");
    }
    try {
        make_policy("sa-lfu", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "policy sa-lfu: unknown option 'lookahed'; known: ways, admission, lookahead");
    }
}

// static pins a fixed set and never evicts: lookahead does not apply, and it says so.
TEST(PlacementLookahead, StaticRejectsTheOptionSayingItNeverEvicts) {
    const std::vector<uint32_t> next = {kNever, kNever};
    const std::vector<uint64_t> counts = {3, 1};
    PolicyContext ctx{.capacity_rows = 1,
                      .universe = 2,
                      .next_use = next,
                      .profile_counts = counts,
                      .options = {{"lookahead", "2"}}};
    try {
        make_policy("static", ctx);
        FAIL();
    } catch (const PolicyError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "policy static: lookahead does not apply: static pins a fixed set of rows and "
                  "never evicts");
    }
    ctx.options = {};
    EXPECT_NO_THROW(make_policy("static", ctx));
}
