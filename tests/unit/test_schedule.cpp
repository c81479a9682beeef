// Continuous batching as nano-vLLM schedules it: exact step sequences on small cases worked by
// hand, and invariants (every token fed in order, preemption by recomputation) under KV pressure.
#include <gtest/gtest.h>

#include <map>

#include "traces/schedule.h"

using namespace engramsim;

namespace {

std::vector<Step> all_steps(SchedulerConfig cfg, std::vector<uint32_t> p, std::vector<uint32_t> o) {
    Scheduler s(cfg, std::move(p), std::move(o));
    std::vector<Step> steps;
    while (auto step = s.next()) steps.push_back(*step);
    return steps;
}

bool same(const StepSlice& a, const StepSlice& b) {
    return a.request == b.request && a.first == b.first && a.count == b.count;
}

}  // namespace

TEST(Scheduler, PrefillThenDecodeUntilEachOutputIsDone) {
    auto steps = all_steps({}, {10, 20, 30}, {1, 3, 2});
    ASSERT_EQ(steps.size(), 3u);
    EXPECT_TRUE(steps[0].prefill);
    EXPECT_EQ(steps[0].tokens, 60u);
    EXPECT_EQ(steps[0].finished, 1u);  // request 0 wanted one token: the prefill's
    ASSERT_EQ(steps[1].slices.size(), 2u);
    EXPECT_FALSE(steps[1].prefill);
    EXPECT_TRUE(same(steps[1].slices[0], {1, 20, 1}));  // feeds its first generated token
    EXPECT_TRUE(same(steps[1].slices[1], {2, 30, 1}));
    EXPECT_EQ(steps[1].context_tokens, 21u + 31u);
    EXPECT_EQ(steps[1].finished, 1u);
    ASSERT_EQ(steps[2].slices.size(), 1u);
    EXPECT_TRUE(same(steps[2].slices[0], {1, 21, 1}));
}

TEST(Scheduler, TokenBudgetSplitsPrefillsAndPrefillComesFirst) {
    SchedulerConfig cfg;
    cfg.max_num_batched_tokens = 25;
    auto steps = all_steps(cfg, {10, 20}, {3, 3});
    ASSERT_GE(steps.size(), 2u);
    EXPECT_TRUE(steps[0].prefill);
    EXPECT_EQ(steps[0].tokens, 10u);
    EXPECT_TRUE(steps[1].prefill);  // the waiting request goes before request 0's decode
    EXPECT_EQ(steps[1].tokens, 20u);
    EXPECT_EQ(steps.size(), 4u);    // then two decode steps for both
}

TEST(Scheduler, MaxNumSeqsCapsTheBatch) {
    SchedulerConfig cfg;
    cfg.max_num_seqs = 2;
    auto steps = all_steps(cfg, {5, 5, 5}, {2, 2, 2});
    EXPECT_EQ(steps[0].slices.size(), 2u);
    for (const auto& s : steps) EXPECT_LE(s.slices.size(), 2u);
}

// Six requests in a KV cache of 12 blocks of 4 tokens: room for two or three at a time.
SchedulerConfig kv_pressure() {
    SchedulerConfig cfg;
    cfg.kv_block_size = 4;
    cfg.num_kv_blocks = 12;
    return cfg;
}
const std::vector<uint32_t> kPressurePrompts = {9, 7, 12, 5, 8, 11};
const std::vector<uint32_t> kPressureOutputs = {15, 20, 9, 17, 13, 10};

TEST(Scheduler, KvPressurePreemptsAndRecomputesEveryTokenInOrder) {
    const std::vector<uint32_t>& p = kPressurePrompts;
    const std::vector<uint32_t>& o = kPressureOutputs;
    Scheduler s(kv_pressure(), p, o);
    std::map<uint32_t, uint32_t> produced, next_pos;
    uint64_t steps = 0;
    while (auto step = s.next()) {
        ++steps;
        for (const auto& sl : step->slices) {
            if (step->prefill) {
                ASSERT_EQ(sl.first, 0u);  // (re)prefill from the start
                ASSERT_EQ(sl.count, p[sl.request] + produced[sl.request]);
            } else {
                ASSERT_EQ(sl.first, next_pos[sl.request]);
                ASSERT_EQ(sl.count, 1u);
            }
            next_pos[sl.request] = sl.first + sl.count;
            ++produced[sl.request];
        }
        ASSERT_LT(steps, 10000u);
    }
    for (uint32_t r = 0; r < p.size(); ++r) EXPECT_EQ(produced[r], o[r]) << r;
    EXPECT_GT(s.preemptions(), 0u);
}

// Each step names the requests it preempted (an engine frees their KV cache then): every one
// is unfinished and comes back with a prefill from position 0 before it feeds again, and the
// names add up to the count.
TEST(Scheduler, StepsNameTheRequestsTheyPreempt) {
    Scheduler s(kv_pressure(), kPressurePrompts, kPressureOutputs);
    std::map<uint32_t, bool> out;  // preempted and not yet prefilled again
    uint64_t named = 0;
    while (auto step = s.next()) {
        for (uint32_t r : step->preempted) {
            EXPECT_FALSE(out[r]) << "request " << r << " preempted twice without running";
            out[r] = true;
            ++named;
        }
        for (const auto& sl : step->slices) {
            if (out[sl.request]) {
                EXPECT_EQ(sl.first, 0u) << "request " << sl.request;
            }
            out[sl.request] = false;
        }
    }
    EXPECT_EQ(named, s.preemptions());
    EXPECT_GT(named, 0u);
}

TEST(Scheduler, RejectsRequestsThatCanNeverRun) {
    SchedulerConfig cfg;
    cfg.max_num_batched_tokens = 100;
    EXPECT_THROW(Scheduler(cfg, {101}, {1}), std::invalid_argument);
    cfg.num_kv_blocks = 2;
    cfg.kv_block_size = 16;
    EXPECT_THROW(Scheduler(cfg, {30}, {5}), std::invalid_argument);
}
