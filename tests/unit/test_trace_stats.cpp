// Trace statistics against brute force on a small trace: exact counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "model/config.h"
#include "traces/trace_make.h"
#include "traces/trace_stats.h"

using namespace engramsim;

TEST(TraceStats, StackDistancesMatchBruteForce) {
    std::mt19937_64 gen(3);
    std::vector<uint64_t> keys(3000);
    for (auto& k : keys) k = gen() % 200;
    const auto got = stack_distances(keys);
    for (size_t t = 0; t < keys.size(); ++t) {
        int64_t want = -1;
        for (size_t p = t; p-- > 0;)
            if (keys[p] == keys[t]) {
                want = int64_t(std::set<uint64_t>(keys.begin() + long(p) + 1,
                                                  keys.begin() + long(t)).size());
                break;
            }
        ASSERT_EQ(got[t], want) << t;
    }
}

TEST(TraceStats, CountsMatchBruteForce) {
    auto engram = config::load("demo-v1")["engram"];
    auto spec = config::load("handbook-en")["workload"];
    spec["num_requests"] = 12;
    spec["output_len"] = {{"dist", "uniform"}, {"min", 3}, {"max", 40}, {"value", 1}, {"file", ""}};
    const Workload w = make_workload(spec);
    const std::string path = ::testing::TempDir() + "stats.etr";
    make_trace(path, engram, w, spec);
    const TraceStats st = compute_trace_stats(path);

    const RequestHasher hash(EngramConfig::from_json(engram));
    std::vector<TraceRequest> reqs;
    for (const auto& r : w.requests) reqs.push_back(hash(r));
    const size_t heads = 16;
    ASSERT_EQ(st.orders.size(), 4u);
    for (size_t l = 0; l < 2; ++l) {
        // Popularity per order: (head, local row) pairs identify rows.
        for (int order = 2; order <= 3; ++order) {
            std::map<std::pair<size_t, uint32_t>, uint64_t> count;
            uint64_t lookups = 0;
            for (const auto& r : reqs)
                for (size_t i = 0; i < r.rows[l].size(); ++i) {
                    const size_t h = i % heads;
                    if (h / 8 != size_t(order - 2)) continue;
                    ++count[{h, r.rows[l][i]}];
                    ++lookups;
                }
            const OrderStats& o = st.orders[l * 2 + size_t(order - 2)];
            EXPECT_EQ(o.lookups, lookups);
            EXPECT_EQ(o.unique_rows, count.size());
            std::vector<uint64_t> c;
            for (const auto& [k, v] : count) c.push_back(v);
            std::sort(c.rbegin(), c.rend());
            const size_t top = size_t(std::ceil(0.01 * double(c.size())));
            uint64_t hits = 0;
            for (size_t i = 0; i < top; ++i) hits += c[i];
            EXPECT_DOUBLE_EQ(o.top_share[1], double(hits) / double(lookups));
            EXPECT_EQ(o.popularity.front().second, c.front());
        }
        // Cold reads = distinct rows of the layer; total = lookups of the layer.
        std::set<std::pair<size_t, uint32_t>> distinct;
        uint64_t layer_lookups = 0;
        for (const auto& r : reqs)
            for (size_t i = 0; i < r.rows[l].size(); ++i, ++layer_lookups)
                distinct.insert({i % heads, r.rows[l][i]});
        EXPECT_EQ(st.reuse[l][0], distinct.size());
        uint64_t total = 0;
        for (uint64_t n : st.reuse[l]) total += n;
        EXPECT_EQ(total, layer_lookups);
    }
    // Unique rows per decode step at batch 4, layer 0, by brute force.
    const auto& b4 = *std::find_if(st.batches.begin(), st.batches.end(),
                                   [](const auto& b) { return b.batch == 4; });
    double unique_sum = 0;
    uint64_t steps = 0;
    for (size_t g = 0; g + 4 <= reqs.size(); g += 4) {
        uint32_t longest = 0;
        for (size_t i = g; i < g + 4; ++i) longest = std::max(longest, reqs[i].output_len - 1);
        for (uint32_t s = 0; s < longest; ++s, ++steps) {
            std::set<std::pair<size_t, uint32_t>> rows;
            for (size_t i = g; i < g + 4; ++i) {
                if (s + 1 >= reqs[i].output_len) continue;
                const size_t t = reqs[i].prompt_len + s;
                for (size_t h = 0; h < heads; ++h) rows.insert({h, reqs[i].rows[0][t * heads + h]});
            }
            unique_sum += double(rows.size());
        }
    }
    EXPECT_EQ(b4.steps, steps);
    EXPECT_NEAR(b4.unique_rows_per_step[0], unique_sum / double(steps), 1e-9);
}
