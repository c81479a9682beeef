// Consistency (unit), not golden: lookups in serving order equal the row ids of hashing each
// request's whole sequence at once (trace hash), re-keyed globally, so the scheduler's slicing
// and the hash history agree. Both sides are this library's code; the hasher itself is checked
// against the independent golden files in tests/golden/test_hash_golden.cpp.
#include <gtest/gtest.h>

#include <map>

#include "model/config.h"
#include "traces/lookups.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

using namespace engramsim;

TEST(Lookups, ServingOrderMatchesWholeSequenceHashing) {
    const auto engram = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    auto spec = config::load("handbook-en")["workload"];
    spec["num_requests"] = 6;
    const Workload w = make_workload(spec);
    SchedulerConfig sched;
    sched.max_num_seqs = 4;  // forces several prefill waves
    auto source = hashed_lookups(engram, w, sched);
    const LookupLayout& layout = source->layout();
    ASSERT_EQ(layout.layer_ids, engram.layer_ids);
    EXPECT_EQ(layout.total_rows, layout.layer_rows[0] + layout.layer_rows[1]);

    // Reference: hash each request's full sequence in one go.
    const CompressMap map = CompressMap::load(engram.compress_map);
    const NgramHasher hasher(engram, map.canonical_vocab_size(), map(engram.pad_id));
    const size_t heads = size_t(hasher.heads_per_layer());
    std::vector<std::vector<std::vector<uint32_t>>> ref(w.requests.size());
    for (size_t r = 0; r < w.requests.size(); ++r) {
        std::vector<uint32_t> raw(w.requests[r].prompt);
        raw.insert(raw.end(), w.requests[r].output.begin(), w.requests[r].output.end());
        const auto ids = map.compress(raw);
        for (size_t l = 0; l < hasher.layers().size(); ++l) {
            ref[r].emplace_back(ids.size() * heads);
            hasher.hash_layer(l, ids, ref[r][l]);
        }
    }

    StepBatch batch;
    uint64_t tokens_seen = 0;
    std::map<uint32_t, uint32_t> fed;
    while (source->next(batch)) {
        for (size_t l = 0; l < layout.layer_ids.size(); ++l) {
            ASSERT_EQ(batch.rows[l].size(), batch.tokens * heads);
            size_t i = 0;
            for (const auto& s : batch.slices)
                for (uint32_t t = s.first; t < s.first + s.count; ++t)
                    for (size_t h = 0; h < heads; ++h, ++i) {
                        const uint64_t key = batch.rows[l][i];
                        const uint64_t local = key - layout.layer_base[l] - layout.head_offset[l][h];
                        ASSERT_EQ(local, ref[s.request][l][size_t(t) * heads + h]);
                        ASSERT_LT(local, hasher.layers()[l].primes[h / 8][h % 8]);
                    }
        }
        for (const auto& s : batch.slices) fed[s.request] = s.first + s.count;
        tokens_seen += batch.tokens;
    }
    // Every token but each request's last generated one is fed exactly once (no preemption).
    uint64_t expected = 0;
    for (const auto& r : w.requests) expected += r.prompt.size() + r.output.size() - 1;
    EXPECT_EQ(tokens_seen, expected);
    for (size_t r = 0; r < w.requests.size(); ++r)
        EXPECT_EQ(fed[uint32_t(r)], w.requests[r].prompt.size() + w.requests[r].output.size() - 1);
}
