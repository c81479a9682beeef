// The engine's host work per step (sim.step_host_time) in the simulator against closed forms: a
// synchronous loop pays it before every step; async scheduling (vllm-v1) prepares step i while
// step i - 1 runs, so it costs only the first step's when it is shorter than every step, and
// the GPU waits for it every step when it is longer. The DES equals the analytic recurrence on a
// run with no fetch. Every simulation runs in a forked child (simulate_forked).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "model/config.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

// Dense-4B alone on an H800 serving 24 requests: the steps' GPU times come from the cost model;
// no fetch, so nothing but the host work and the GPU's steps decides the times.
Plan host_plan(const std::string& engine, bool async, const std::string& host_time) {
    return make_plan(resolve_run_config(
        {{"backbone", "dense-4b"},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}},
         {"sim",
          {{"engine", engine}, {"async_scheduling", async}, {"step_host_time", host_time}}}},
        "test"));
}

// Each step's GPU time alone (no host work): the analytic critical path of its program.
std::vector<double> gpu_seconds(const Plan& p) {
    std::vector<double> g;
    for (const PlannedStep& st : p.steps) g.push_back(analytic_step_seconds(p, st));
    return g;
}

}  // namespace

// Synchronous (nano-vLLM): makespan = sum over steps of (H + G_i); the GPU waits H before each.
TEST(EngineHostFidelity, ASynchronousLoopPaysTheHostWorkBeforeEveryStep) {
    const double H = 2e-3;
    const Plan p = host_plan("nano-vllm", false, "2 ms");
    EXPECT_FALSE(p.overlaps_host);
    const std::vector<double> g = gpu_seconds(p);
    const double want = double(g.size()) * H + std::accumulate(g.begin(), g.end(), 0.0);
    const DesResult des = simulate_forked(p);
    EXPECT_NEAR(des.makespan_s, want, 1e-9 * want);
    EXPECT_NEAR(analytic(p).makespan_s, want, 1e-9 * want);
    const RunMetrics m = compute_metrics(p, des);
    EXPECT_NEAR(m.host_exposed_s, double(g.size()) * H, 1e-9);
    // Without host work, the same steps back to back.
    const Plan none = host_plan("nano-vllm", false, "0 s");
    EXPECT_NEAR(simulate_forked(none).makespan_s, want - double(g.size()) * H, 1e-9 * want);
}

// Async scheduling with H shorter than every step: only the first step waits for it,
// makespan = H + sum G_i. With H longer than every step the host sets the pace:
// makespan = N H + G_last.
TEST(EngineHostFidelity, AsyncSchedulingHidesTheHostWorkBehindTheGpu) {
    const Plan fast = host_plan("vllm-v1", true, "100 us");
    ASSERT_TRUE(fast.overlaps_host);
    const std::vector<double> g = gpu_seconds(fast);
    ASSERT_GT(*std::min_element(g.begin(), g.end()), 100e-6);
    const double want_fast = 100e-6 + std::accumulate(g.begin(), g.end(), 0.0);
    const DesResult des = simulate_forked(fast);
    EXPECT_NEAR(des.makespan_s, want_fast, 1e-9 * want_fast);
    EXPECT_NEAR(analytic(fast).makespan_s, want_fast, 1e-9 * want_fast);
    EXPECT_NEAR(compute_metrics(fast, des).host_exposed_s, 100e-6, 1e-12);

    const Plan slow = host_plan("vllm-v1", true, "900 ms");  // longer than any step here
    const std::vector<double> gs = gpu_seconds(slow);
    ASSERT_LT(*std::max_element(gs.begin(), gs.end()), 0.9);
    const double want_slow = double(gs.size()) * 0.9 + gs.back();
    EXPECT_NEAR(simulate_forked(slow).makespan_s, want_slow, 1e-9 * want_slow);
    EXPECT_NEAR(analytic(slow).makespan_s, want_slow, 1e-9 * want_slow);

    // The same engine without async scheduling is synchronous again.
    const Plan sync = host_plan("vllm-v1", false, "100 us");
    EXPECT_FALSE(sync.overlaps_host);
    const std::vector<double> g2 = gpu_seconds(sync);
    const double want_sync = double(g2.size()) * 100e-6 + std::accumulate(g2.begin(), g2.end(), 0.0);
    EXPECT_NEAR(simulate_forked(sync).makespan_s, want_sync, 1e-9 * want_sync);
}

// Between the two bounds the DES follows the recurrence step by step: host i ends at
// max(host i-1 end, step i-2 end) + H; step i starts at max(host i end, step i-1 end).
TEST(EngineHostFidelity, TheDesFollowsTheTwoStepQueueStepByStep) {
    const Plan p = host_plan("vllm-v1", true, "20 ms");
    const std::vector<double> g = gpu_seconds(p);
    const double H = 20e-3;
    ASSERT_LT(*std::min_element(g.begin(), g.end()), H);  // some steps wait for the host
    ASSERT_GT(*std::max_element(g.begin(), g.end()), H);  // some do not
    std::vector<double> start(g.size()), end(g.size());
    double host_end = 0, t = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        host_end = std::max(host_end, i >= 2 ? end[i - 2] : 0.0) + H;
        start[i] = std::max(t, host_end);
        end[i] = t = start[i] + g[i];
    }
    const DesResult des = simulate_forked(p);
    ASSERT_EQ(des.step_start_s.size(), g.size());
    for (size_t i = 0; i < g.size(); ++i) {
        EXPECT_NEAR(des.step_start_s[i], start[i], 1e-9 * end.back()) << "step " << i;
        EXPECT_NEAR(des.step_end_s[i], end[i], 1e-9 * end.back()) << "step " << i;
    }
}
