// vLLM V1's scheduler (SchedulePolicy::ChunkedPrefill): small cases worked by hand, and every
// step, batch by batch, against an independent reference written here from vLLM's own engine
// loop (vllm/v1/core/sched/scheduler.py and its async variant): output placeholders, the
// scheduling of step n + 1 before step n's outputs are processed, preemption of the last running
// request. The scheduler under test models async scheduling differently (a "finishing" mark
// instead of placeholders); the two must agree on every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "traces/schedule.h"

using namespace engramsim;

namespace {

SchedulerConfig v1(int max_seqs, int budget, int block, int64_t blocks, bool async = false) {
    SchedulerConfig c;
    c.max_num_seqs = max_seqs;
    c.max_num_batched_tokens = budget;
    c.kv_block_size = block;
    c.num_kv_blocks = blocks;
    c.policy = SchedulePolicy::ChunkedPrefill;
    c.async_scheduling = async;
    return c;
}

std::vector<Step> all_steps(SchedulerConfig cfg, std::vector<uint32_t> p, std::vector<uint32_t> o) {
    Scheduler s(cfg, std::move(p), std::move(o));
    std::vector<Step> steps;
    while (auto step = s.next()) steps.push_back(*step);
    return steps;
}

// "r:first+count" per slice, "*" after a slice that samples.
std::string show(const Step& st) {
    std::ostringstream o;
    for (const auto& sl : st.slices)
        o << sl.request << ':' << sl.first << '+' << sl.count << (sl.sample ? "*" : "") << ' ';
    return o.str();
}

// ---- The reference: vLLM V1's FCFS scheduler and engine loop, on lengths alone. ----

struct RefRequest {
    uint32_t prompt = 0, max_tokens = 0;
    uint32_t num_tokens = 0;    // prompt + outputs appended so far
    uint32_t computed = 0;      // num_computed_tokens
    uint32_t placeholders = 0;  // num_output_placeholders (async)
    int64_t blocks = 0;
    enum { Waiting, Running, Preempted, Finished } status = Waiting;
    uint32_t outputs() const { return num_tokens - prompt; }
};

struct RefOutput {
    std::vector<StepSlice> slices;  // request, first, count, sample (decode unused here)
    std::vector<uint32_t> preempted;
};

class Reference {
public:
    Reference(SchedulerConfig c, const std::vector<uint32_t>& p, const std::vector<uint32_t>& o)
        : c_(c), free_(c.num_kv_blocks < 0 ? INT64_MAX / 2 : c.num_kv_blocks) {
        for (size_t i = 0; i < p.size(); ++i) {
            reqs_.push_back({p[i], o[i], p[i]});
            waiting_.push_back(uint32_t(i));
        }
    }

    // The engine core's loop: schedule; without async, process this step's outputs; with it,
    // process the previous step's. An empty schedule runs nothing.
    std::vector<std::pair<RefOutput, uint32_t>> run() {
        std::vector<std::pair<RefOutput, uint32_t>> steps;  // output, requests it finished
        size_t in_flight = SIZE_MAX;  // the step whose outputs are not processed yet
        std::vector<uint32_t> carry;
        for (int guard = 0; guard < 1000000; ++guard) {
            RefOutput out = schedule();
            const bool empty = out.slices.empty();
            // Preemptions of a schedule that runs nothing are told with the next step that runs.
            carry.insert(carry.end(), out.preempted.begin(), out.preempted.end());
            if (!empty) {
                out.preempted = std::move(carry);
                carry.clear();
                steps.push_back({out, 0});
            }
            bool processed = false;
            if (c_.async_scheduling) {
                if (in_flight != SIZE_MAX) {
                    steps[in_flight].second = update_from_output(steps[in_flight].first);
                    processed = true;
                }
                in_flight = empty ? SIZE_MAX : steps.size() - 1;
            } else if (!empty) {
                steps.back().second = update_from_output(steps.back().first);
            }
            if (empty && !processed) {
                bool all = true;
                for (const auto& r : reqs_) all &= r.status == RefRequest::Finished;
                if (all) return steps;
                if (out.preempted.empty()) {
                    ADD_FAILURE() << "reference: nothing schedulable";
                    return steps;
                }
            }
        }
        ADD_FAILURE() << "reference: no end";
        return steps;
    }

private:
    int64_t cdiv(int64_t a) const { return (a + c_.kv_block_size - 1) / c_.kv_block_size; }
    uint32_t limit(uint32_t n, uint32_t budget) const {
        if (0 < c_.long_prefill_token_threshold && uint32_t(c_.long_prefill_token_threshold) < n)
            n = uint32_t(c_.long_prefill_token_threshold);
        return std::min(n, budget);
    }
    bool allocate(RefRequest& r, uint32_t n) {
        const int64_t need = cdiv(int64_t(r.computed) + n) - r.blocks;
        if (need > free_) return false;
        free_ -= need;
        r.blocks += need;
        return true;
    }
    void preempt(uint32_t id, RefOutput& out) {
        RefRequest& r = reqs_[id];
        free_ += r.blocks;
        r.blocks = 0;
        r.status = RefRequest::Preempted;
        r.computed = 0;
        waiting_.push_front(id);
        out.preempted.push_back(id);
    }

    RefOutput schedule() {
        RefOutput out;
        uint32_t budget = uint32_t(c_.max_num_batched_tokens);
        std::vector<uint32_t> sched_ids, sched_n;
        size_t idx = 0;
        while (idx < running_.size() && budget > 0) {
            const uint32_t id = running_[idx];
            RefRequest& r = reqs_[id];
            if (r.placeholders > 0 && r.computed + 2 - r.placeholders >= r.prompt + r.max_tokens) {
                ++idx;
                continue;
            }
            const uint32_t n = limit(r.num_tokens + r.placeholders - r.computed, budget);
            if (n == 0) {
                ++idx;
                continue;
            }
            bool ok = true;
            while (!allocate(r, n)) {
                const uint32_t victim = running_.back();
                running_.pop_back();
                preempt(victim, out);
                if (victim == id) {
                    ok = false;
                    break;
                }
            }
            if (!ok) break;
            sched_ids.push_back(id), sched_n.push_back(n);
            budget -= n;
            ++idx;
        }
        if (out.preempted.empty()) {
            while (!waiting_.empty() && budget > 0) {
                if (running_.size() == size_t(c_.max_num_seqs)) break;
                const uint32_t id = waiting_.front();
                RefRequest& r = reqs_[id];
                uint32_t n = r.num_tokens;  // nothing cached: computed from 0
                if (0 < c_.long_prefill_token_threshold &&
                    uint32_t(c_.long_prefill_token_threshold) < n)
                    n = uint32_t(c_.long_prefill_token_threshold);
                if (!c_.chunked_prefill && n > budget) break;
                n = std::min(n, budget);
                if (!allocate(r, n)) break;
                waiting_.pop_front();
                running_.push_back(id);
                r.status = RefRequest::Running;
                sched_ids.push_back(id), sched_n.push_back(n);
                budget -= n;
            }
        }
        // _update_after_schedule (+ the async scheduler's placeholder for each sampling request).
        for (size_t k = 0; k < sched_ids.size(); ++k) {
            RefRequest& r = reqs_[sched_ids[k]];
            const uint32_t first = r.computed;
            r.computed += sched_n[k];
            const bool prefill_chunk = r.computed < r.num_tokens + r.placeholders;
            if (c_.async_scheduling && !prefill_chunk) ++r.placeholders;
            out.slices.push_back({sched_ids[k], first, sched_n[k], false, !prefill_chunk});
        }
        return out;
    }

    // update_from_output: each sampling request appends its token; one that reached max_tokens
    // finishes, leaving the running queue (or the waiting queue, if preempted meanwhile).
    uint32_t update_from_output(const RefOutput& out) {
        uint32_t finished = 0;
        for (const StepSlice& sl : out.slices) {
            RefRequest& r = reqs_[sl.request];
            if (!sl.sample || r.status == RefRequest::Finished) continue;
            if (r.placeholders > 0) --r.placeholders;
            ++r.num_tokens;
            if (r.outputs() < r.max_tokens) continue;
            ++finished;
            if (r.status == RefRequest::Running)
                running_.erase(std::find(running_.begin(), running_.end(), sl.request));
            else
                waiting_.erase(std::find(waiting_.begin(), waiting_.end(), sl.request));
            free_ += r.blocks;
            r.blocks = 0;
            r.status = RefRequest::Finished;
        }
        return finished;
    }

    SchedulerConfig c_;
    int64_t free_;
    std::vector<RefRequest> reqs_;
    std::deque<uint32_t> waiting_;
    std::vector<uint32_t> running_;
};

void expect_same_as_reference(const SchedulerConfig& c, const std::vector<uint32_t>& p,
                              const std::vector<uint32_t>& o, const std::string& what) {
    Reference ref(c, p, o);
    const auto want = ref.run();
    const auto got = all_steps(c, p, o);
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
        const RefOutput& w = want[i].first;
        const Step& g = got[i];
        ASSERT_EQ(g.index, i) << what;
        std::string ws;
        for (const auto& sl : w.slices)
            ws += std::to_string(sl.request) + ':' + std::to_string(sl.first) + '+' +
                  std::to_string(sl.count) + (sl.sample ? "* " : " ");
        ASSERT_EQ(g.slices.size(), w.slices.size())
            << what << " step " << i << ": got " << show(g) << ", want " << ws;
        for (size_t k = 0; k < g.slices.size(); ++k) {
            const StepSlice &a = g.slices[k], &b = w.slices[k];
            ASSERT_TRUE(a.request == b.request && a.first == b.first && a.count == b.count &&
                        a.sample == b.sample)
                << what << " step " << i << " slice " << k << ": got " << show(g) << ", want " << ws;
        }
        EXPECT_EQ(g.preempted, w.preempted) << what << " step " << i;
        EXPECT_EQ(g.finished, want[i].second) << what << " step " << i;
    }
    ASSERT_EQ(got.size(), want.size()) << what;
}

}  // namespace

// One long prompt under a small budget: chunks of the budget, only the last one samples, then
// decodes. The chunks' context grows by the chunk: 4, 8, 10, then 11, 12.
TEST(ChunkedScheduler, ChunksALongPromptAndSamplesOnlyAtItsEnd) {
    const auto steps = all_steps(v1(4, 4, 16, -1), {10}, {3});
    ASSERT_EQ(steps.size(), 5u);
    const uint32_t first[] = {0, 4, 8, 10, 11}, count[] = {4, 4, 2, 1, 1};
    const bool sample[] = {false, false, true, true, true}, prefill[] = {true, true, true, false, false};
    for (size_t i = 0; i < 5; ++i) {
        ASSERT_EQ(steps[i].slices.size(), 1u);
        EXPECT_EQ(steps[i].slices[0].first, first[i]) << i;
        EXPECT_EQ(steps[i].slices[0].count, count[i]) << i;
        EXPECT_EQ(steps[i].slices[0].sample, sample[i]) << i;
        EXPECT_EQ(steps[i].prefill, prefill[i]) << i;
        EXPECT_EQ(steps[i].context_tokens, first[i] + count[i]) << i;
        EXPECT_EQ(steps[i].sampled, uint32_t(sample[i])) << i;
    }
    EXPECT_EQ(steps.back().finished, 1u);
}

// Decodes and a prefill chunk share one step's budget: running requests first, in order, then
// the waiting ones with what is left (worked by hand: budget 8, prompts 6 and 6).
TEST(ChunkedScheduler, DecodesAndPrefillChunksShareTheBudget) {
    const auto steps = all_steps(v1(4, 8, 16, -1), {6, 6}, {3, 2});
    const std::vector<std::string> want = {
        "0:0+6* 1:0+2 ",   // A whole, B's first 2 tokens (budget 8)
        "0:6+1* 1:2+4* ",  // A decodes; B's remaining 4
        "0:7+1* 1:6+1* ",  // both decode: A's third token, B's second, both done
    };
    ASSERT_EQ(steps.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(show(steps[i]), want[i]) << i;
    EXPECT_TRUE(steps[1].prefill);  // a mixed step: a decode and a prefill chunk
    EXPECT_TRUE(steps[1].slices[0].decode);
    EXPECT_FALSE(steps[1].slices[1].decode);
    EXPECT_FALSE(steps[2].prefill);
    EXPECT_EQ(steps[2].finished, 2u);
}

// Without chunked prefill a prompt waits for a step whose budget holds it whole.
TEST(ChunkedScheduler, WithoutChunkingAPromptWaitsForRoom) {
    SchedulerConfig c = v1(4, 8, 16, -1);
    c.chunked_prefill = false;
    const auto steps = all_steps(c, {6, 6}, {2, 1});
    ASSERT_GE(steps.size(), 2u);
    EXPECT_EQ(show(steps[0]), "0:0+6* ");
    EXPECT_EQ(show(steps[1]), "0:6+1* 1:0+6* ");
    EXPECT_THROW(all_steps(c, {9}, {1}), std::invalid_argument);  // never fits the budget
    EXPECT_NO_THROW(all_steps(v1(4, 8, 16, -1), {9}, {1}));       // chunked, it does
}

// long_prefill_token_threshold caps one request's tokens per step.
TEST(ChunkedScheduler, LongPrefillThresholdCapsAChunk) {
    SchedulerConfig c = v1(4, 16, 16, -1);
    c.long_prefill_token_threshold = 5;
    const auto steps = all_steps(c, {12}, {1});
    ASSERT_EQ(steps.size(), 3u);
    EXPECT_EQ(show(steps[0]), "0:0+5 ");
    EXPECT_EQ(show(steps[1]), "0:5+5 ");
    EXPECT_EQ(show(steps[2]), "0:10+2* ");
}

// Async scheduling: a finished request still holds its running slot (and KV) while the next step
// is scheduled. max_num_seqs 2, A finishes in step 0: without async C joins B in step 1, with
// it C waits a step.
TEST(ChunkedScheduler, AsyncSchedulingFreesAFinishedRequestOneStepLate) {
    const auto sync = all_steps(v1(2, 64, 16, -1, false), {4, 4, 4}, {1, 3, 1});
    const auto async = all_steps(v1(2, 64, 16, -1, true), {4, 4, 4}, {1, 3, 1});
    ASSERT_EQ(sync.size(), 3u);
    EXPECT_EQ(show(sync[0]), "0:0+4* 1:0+4* ");
    EXPECT_EQ(show(sync[1]), "1:4+1* 2:0+4* ");
    EXPECT_EQ(show(sync[2]), "1:5+1* ");
    ASSERT_EQ(async.size(), 3u);
    EXPECT_EQ(show(async[1]), "1:4+1* ");
    EXPECT_EQ(show(async[2]), "1:5+1* 2:0+4* ");
    // max_num_seqs 1: the schedule between A's step and B's is empty and runs no step.
    const auto one = all_steps(v1(1, 64, 16, -1, true), {4, 4}, {1, 1});
    ASSERT_EQ(one.size(), 2u);
    EXPECT_EQ(show(one[1]), "1:0+4* ");
    expect_same_as_reference(v1(4, 64, 4, 2, true), {4, 4}, {2, 1}, "kv-bound async");
}

// Every step, batch by batch, against the reference: random lengths, tight and loose KV caches,
// budgets below and above the prompts, thresholds, chunking on and off, sync and async.
TEST(ChunkedScheduler, MatchesTheReferenceStepByStep) {
    std::mt19937_64 rng(20261206);
    int cases = 0, preempting = 0, mixed = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const int n = 1 + int(rng() % 24);
        const int block = 1 + int(rng() % 16);
        const int budget = 4 + int(rng() % 96);
        SchedulerConfig c = v1(1 + int(rng() % 8), budget, block, -1, rng() % 2 == 0);
        c.chunked_prefill = rng() % 4 != 0;
        c.long_prefill_token_threshold = rng() % 3 == 0 ? 1 + int(rng() % 32) : 0;
        std::vector<uint32_t> p(n), o(n);
        uint32_t longest = 0;
        for (int i = 0; i < n; ++i) {
            p[i] = 1 + uint32_t(rng() % (c.chunked_prefill ? 120 : uint64_t(budget)));
            o[i] = 1 + uint32_t(rng() % 40);
            longest = std::max(longest, p[i] + o[i]);
        }
        // KV: unlimited, or between the longest request's need and a few times it.
        const int64_t need = (longest + block - 1) / block;
        if (rng() % 4 != 0) c.num_kv_blocks = need + int64_t(rng() % uint64_t(3 * need + 1));
        if (!c.chunked_prefill && c.num_kv_blocks >= 0) {
            // A re-prefill after preemption (prompt + outputs so far) must fit the budget too.
            for (int i = 0; i < n; ++i) o[i] = std::min<uint32_t>(o[i], uint32_t(budget) - p[i] + 1);
        }
        std::ostringstream what;
        what << "trial " << trial << ": seqs " << c.max_num_seqs << " budget " << budget
             << " block " << block << " blocks " << c.num_kv_blocks << " chunked "
             << c.chunked_prefill << " threshold " << c.long_prefill_token_threshold << " async "
             << c.async_scheduling;
        expect_same_as_reference(c, p, o, what.str());
        if (HasFatalFailure()) return;
        Scheduler s(c, p, o);
        bool pre = false, mix = false;
        while (auto st = s.next()) {
            pre |= !st->preempted.empty();
            bool d = false, f = false;
            for (const auto& sl : st->slices) (sl.decode ? d : f) = true;
            mix |= d && f;
        }
        ++cases, preempting += pre, mixed += mix;
    }
    // The cases exercise what they are meant to.
    EXPECT_EQ(cases, 400);
    EXPECT_GT(preempting, 40);
    EXPECT_GT(mixed, 100);
}

// Invariants of any schedule: every token of every request is fed in order (a preempted one
// from 0 again), every request samples exactly its output length, and no step exceeds its
// budget or max_num_seqs.
TEST(ChunkedScheduler, FeedsEveryTokenInOrderWithinTheLimits) {
    std::mt19937_64 rng(7);
    for (int trial = 0; trial < 100; ++trial) {
        const int n = 1 + int(rng() % 16);
        SchedulerConfig c = v1(1 + int(rng() % 6), 8 + int(rng() % 64), 4, 60, trial % 2 == 1);
        std::vector<uint32_t> p(n), o(n);
        for (int i = 0; i < n; ++i) p[i] = 1 + uint32_t(rng() % 100), o[i] = 1 + uint32_t(rng() % 100);
        Scheduler s(c, p, o);
        std::vector<uint32_t> next(n, 0), sampled(n, 0);
        while (auto st = s.next()) {
            for (uint32_t r : st->preempted) next[r] = 0;
            uint64_t tokens = 0;
            for (const auto& sl : st->slices) {
                EXPECT_EQ(sl.first, next[sl.request]) << "trial " << trial;
                next[sl.request] = sl.first + sl.count;
                EXPECT_LE(next[sl.request], p[sl.request] + sampled[sl.request]);
                sampled[sl.request] += sl.sample;
                tokens += sl.count;
            }
            EXPECT_EQ(tokens, st->tokens);
            EXPECT_LE(tokens, uint64_t(c.max_num_batched_tokens));
            EXPECT_LE(st->slices.size(), size_t(c.max_num_seqs));
        }
        for (int i = 0; i < n; ++i) EXPECT_EQ(sampled[i], o[i]) << "trial " << trial << " request " << i;
    }
}
