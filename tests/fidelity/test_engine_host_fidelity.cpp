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
#include "sim/timing/plan_stages.h"
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

// ---- Kernel and graph launches (sim.cuda_graphs, kernel_launch, graph_launch) ----

namespace {

Plan launch_plan(const std::string& engine, const std::string& graphs, const std::string& kernel,
                 const std::string& graph, const json& extra = json::object()) {
    json doc = {{"backbone", "dense-4b"},
                {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}},
                {"sim",
                 {{"engine", engine}, {"cuda_graphs", graphs}, {"kernel_launch", kernel},
                  {"graph_launch", graph}, {"max_num_batched_tokens", 2048}}}};
    doc.merge_patch(extra);
    return make_plan(resolve_run_config(doc, "test"));
}

}  // namespace

// Every kernel launched by the host at 1 ms each (launch-bound: far slower than the GPU runs
// them): a step takes its kernels x 1 ms, the first launch before the GPU starts and the
// others while it runs. Without Engram a step is one run of embed + layers + head kernels.
TEST(EngineLaunchFidelity, EagerLaunchBoundStepsTakeTheirKernelsLaunches) {
    const Plan p = launch_plan("nano-vllm", "none", "1 ms", "0 s");
    const Plan free = launch_plan("nano-vllm", "none", "0 s", "0 s");
    ASSERT_EQ(p.steps.size(), free.steps.size());
    double want = 0;
    const int layers = p.backbone.layers;
    for (size_t i = 0; i < p.steps.size(); ++i) {
        const PlannedStep& st = p.steps[i];
        const double g = analytic_step_seconds(free, free.steps[i]);
        StepShape s{st.prefill, double(st.tokens), double(st.seqs), double(st.context_tokens), 0};
        const double n = double(embed_ops(p.backbone, s).size()) +
                         layers * double(layer_ops(p.backbone, s).size()) +
                         double(head_ops(p.backbone, s).size());
        ASSERT_GT(n * 1e-3, g) << "step " << i << " is not launch-bound";
        want += n * 1e-3;
    }
    const DesResult des = simulate_forked(p);
    EXPECT_NEAR(des.makespan_s, want, 1e-9 * want);
    EXPECT_NEAR(analytic(p).makespan_s, want, 1e-9 * want);
}

// Full graphs (nano-vLLM): a decode step replays one graph (one launch of 1 ms before its GPU
// work); a prefill step runs eagerly (here at no launch cost). makespan = sum G_i + decodes x 1 ms.
TEST(EngineLaunchFidelity, FullGraphsCostOneLaunchPerDecodeStep) {
    const Plan p = launch_plan("nano-vllm", "full", "0 s", "1 ms");
    const Plan free = launch_plan("nano-vllm", "full", "0 s", "0 s");
    double want = 0;
    size_t decodes = 0;
    for (size_t i = 0; i < p.steps.size(); ++i) {
        want += analytic_step_seconds(free, free.steps[i]);
        decodes += !p.steps[i].prefill;
    }
    want += double(decodes) * 1e-3;
    ASSERT_GT(decodes, 0u);
    EXPECT_NEAR(simulate_forked(p).makespan_s, want, 1e-9 * want);
    EXPECT_NEAR(analytic(p).makespan_s, want, 1e-9 * want);
}

// Piecewise graphs (vLLM V1): per layer its attention kernels launched eagerly and one graph
// piece, one piece before the first layer; launch-bound (1 ms each) a step takes
// 1 + layers x (attention kernels + 1) launches: 2 attention kernels in a mixed step, 1 else.
TEST(EngineLaunchFidelity, PiecewiseGraphsLaunchAttentionBetweenPieces) {
    const Plan p = launch_plan("vllm-v1", "piecewise", "1 ms", "1 ms");
    const int layers = p.backbone.layers;
    double want = 0;
    size_t mixed = 0;
    for (const PlannedStep& st : p.steps) {
        const double attention = st.mixed ? 2 : 1;
        want += (1 + layers * (attention + 1)) * 1e-3;
        mixed += st.mixed;
    }
    ASSERT_GT(mixed, 0u);
    EXPECT_NEAR(simulate_forked(p).makespan_s, want, 1e-9 * want);
    EXPECT_NEAR(analytic(p).makespan_s, want, 1e-9 * want);
    // nano-vLLM has no piecewise graphs: refused, naming the key.
    try {
        launch_plan("nano-vllm", "piecewise", "0 s", "0 s");
        FAIL() << "expected a ConfigError";
    } catch (const config::ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("sim.cuda_graphs: nano-vllm", 0), 0u) << e.what();
    }
}

// An Engram layer whose rows the host gathers splits nano-vLLM's decode graph in two (a host
// copy cannot sit in a graph): one more launch per decode step than with a UVA gather, which
// stays inside the graph. vLLM's lookup breaks capture whatever the mechanism.
TEST(EngineLaunchFidelity, AHostFetchSplitsTheDecodeGraphAtTheEngramLayer) {
    auto delta = [](const std::string& engine, const std::string& mechanism) {
        const json extra = {{"engram", "paper-offload-100b"},
                            {"sim", {{"mechanism", mechanism}, {"schedule", "layer-ahead:0"}}}};
        const Plan with = launch_plan(engine, "full", "0 s", "1 ms", extra);
        const Plan without = launch_plan(engine, "full", "0 s", "0 s", extra);
        double d = 0;
        for (size_t i = 0; i < with.steps.size(); ++i)
            if (!with.steps[i].prefill)
                d += analytic_step_seconds(with, with.steps[i]) -
                     analytic_step_seconds(without, without.steps[i]);
        size_t decodes = 0;
        for (const PlannedStep& st : with.steps) decodes += !st.prefill;
        return d / double(decodes);  // per decode step
    };
    EXPECT_NEAR(delta("nano-vllm", "cpu-gather"), 2e-3, 1e-9);
    EXPECT_NEAR(delta("nano-vllm", "uva"), 1e-3, 1e-9);
    EXPECT_NEAR(delta("vllm-v1", "uva"), 2e-3, 1e-9);
}

// ---- A UVA gather's share of the SMs (sim.uva_sm_share) ----

// The gather kernel holds share s of the GPU while its reads are in flight (F seconds from the
// end of its host work to the rows' arrival); the compute beside it runs at 1 - s meanwhile, so
// a step whose fetch is hidden (issued at the step start, needed at layer 30) takes s F longer.
TEST(EngineLaunchFidelity, AUvaGatherTakesItsShareOfTheSmsFromTheCompute) {
    auto plan_with = [](double share) {
        return make_plan(resolve_run_config(
            {{"backbone", "dense-4b"},
             {"engram", {{"base", "paper-offload-100b"}, {"layer_ids", {30}}}},
             {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}},
             {"sim",
              {{"mechanism", "uva"}, {"schedule", "layer-ahead:0"}, {"uva_sm_share", share}}}},
            "test"));
    };
    const Plan free = plan_with(0);
    const DesResult a = simulate_forked(free);
    for (const double s : {0.25, 0.75}) {
        const Plan shared = plan_with(s);
        const DesResult b = simulate_forked(shared);
        ASSERT_EQ(a.step_end_s.size(), b.step_end_s.size());
        double want = 0;
        for (size_t i = 0; i < free.steps.size(); ++i) {
            ASSERT_EQ(a.fetch[i].size(), 1u);
            const FetchRecord& f = a.fetch[i][0];
            ASSERT_LE(f.ready_s, f.needed_s) << "step " << i << ": the fetch must be hidden";
            ASSERT_LE(b.fetch[i][0].ready_s, b.fetch[i][0].needed_s) << "s " << s << " step " << i;
            const double reads = (f.ready_s - f.issue_s) - free.steps[i].fetch[0].work.host_s;
            want += s * reads;
            const double got_step = (b.step_end_s[i] - b.step_start_s[i]) -
                                    (a.step_end_s[i] - a.step_start_s[i]);
            EXPECT_NEAR(got_step, s * reads, 1e-9) << "s " << s << " step " << i;
        }
        ASSERT_GT(want, 0);
        EXPECT_NEAR(b.makespan_s - a.makespan_s, want, 1e-9 * b.makespan_s) << "s " << s;
        // The analytic path has no contention: it ignores the share.
        EXPECT_NEAR(analytic(shared).makespan_s, analytic(free).makespan_s, 1e-12);
    }
}
