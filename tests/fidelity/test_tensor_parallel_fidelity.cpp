// Tensor parallelism on SimGrid against closed forms: one ring all-reduce, all-gather and gather
// on idle NVLink through the NVSwitch (TP = 2, 4, 8); two GPUs behind one PCIe switch sharing
// its uplink; the DES against the analytic critical path with collectives. Every simulation runs
// in a forked child. (TP = 1 against the one-GPU simulator's recorded outputs is a regression
// pin, not a closed form: tests/regression/test_regression_pins.cpp.)
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/timing/collectives.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

// h100-sxm with `count` GPUs: NVLink 450 GB/s per direction, 0.5 us per hop; PCIe 63.02 GB/s,
// 1 us; two GPUs per PCIe switch unless `per_switch` says otherwise.
nlohmann::json hardware(int count, int per_switch = 2) {
    return config::resolve({{"hardware", {{"base", "h100-sxm"},
                                          {"gpu", {{"count", count}}},
                                          {"host_link", {{"gpus_per_switch", per_switch}}}}}},
                           "test")["hardware"];
}

// A plan with one layer and no Engram on `tp` GPUs; its steps are set by the test.
Plan tp_plan(int tp, int per_switch = 2) {
    Plan p;
    p.backbone.name = "synthetic";
    p.backbone.layers = 1;
    p.platform = Platform::from_hardware(hardware(8, per_switch), PcieModel{}, tp);
    p.tensor_parallel = tp;
    p.gpus = p.platform.gpus();
    p.gpu = p.platform.node("gpu0");
    p.host = p.platform.node("host");
    p.h2d_route = p.platform.route(p.host, p.gpu);
    p.d2h_route = p.platform.route(p.gpu, p.host);
    p.h2d = p.h2d_route.back();
    p.d2h = p.d2h_route.front();
    return p;
}

constexpr double kNvBw = 450e9, kNvLat = 0.5e-6, kPcieBw = 63.02e9, kPcieLat = 1e-6;

}  // namespace

// One collective after 10 us of compute, on idle links. A GPU -> NVSwitch -> GPU route is two
// links of 0.5 us at 450 GB/s each carrying one flow: a ring step takes 2L + (B / TP) / W.
// sim.collective_comms = coalesced gives the same times on idle links.
TEST(TensorParallelFidelity, CollectivesOnIdleNvlinkMatchTheirClosedForms) {
    for (bool coalesced : {false, true})
    for (int tp : {2, 4, 8}) {
        for (auto kind : {Collective::Kind::AllReduce, Collective::Kind::AllGather,
                          Collective::Kind::Gather}) {
            Plan p = tp_plan(tp);
            p.coalesce_collectives = coalesced;
            const double bytes = 64.0 * 1024 * 1024;  // divisible by 2, 4, 8
            PlannedStep s;
            s.tokens = 1, s.seqs = 1;
            s.tp_embed = {{10e-6, {kind, bytes}}};
            s.tp_layer = {{0, {}}};
            s.tp_head = {{0, {}}};
            p.steps = {s};
            const DesResult r = simulate_forked(p);
            const double chunk = bytes / tp, step = 2 * kNvLat + chunk / kNvBw;
            const double expected = kind == Collective::Kind::AllReduce ? 2.0 * (tp - 1) * step
                                    : kind == Collective::Kind::AllGather
                                        ? double(tp - 1) * step
                                        : 2 * kNvLat + (tp - 1) * chunk / kNvBw;
            const std::string what = collective_name(kind) + " TP=" + std::to_string(tp) +
                                     (coalesced ? " coalesced" : "");
            EXPECT_DOUBLE_EQ(collective_seconds(p.platform, p.gpus, {kind, bytes}), expected)
                << what;
            EXPECT_DOUBLE_EQ(r.step_end_s[0], 10e-6 + expected) << what;
            EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), 10e-6 + expected) << what;
        }
    }
}

// Two GPUs behind one PCIe switch each fetch F bytes at once: they share the uplink, so both
// finish at latency + 2F / bandwidth; with a link each (gpus_per_switch = 1) at latency + F / bw.
TEST(TensorParallelFidelity, TwoGpusBehindOneSwitchShareItsUplink) {
    const double F = 8e6;
    for (int per_switch : {2, 1}) {
        Plan p = tp_plan(2, per_switch);
        p.has_engram = true;
        p.engram_layers = {0};
        PlannedStep s;
        s.tokens = 1, s.seqs = 1;
        s.embed_s = 1e-6;
        s.layer_s = 1e-6;
        s.head_s = 1e-6;
        s.engram_gpu_s = {1e-6};
        PlannedFetch f;
        f.issue_layer = 0;
        f.work.h2d_wire_bytes = F;
        f.unique_rows = 1;
        s.fetch = {f};
        p.steps = {s};
        const DesResult r = simulate_forked(p);
        const double fetch = kPcieLat + (per_switch == 2 ? 2 * F : F) / kPcieBw;
        EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, fetch) << per_switch;
        EXPECT_DOUBLE_EQ(r.step_end_s[0], fetch + 3e-6) << per_switch;  // stalled at layer 0
    }
}

// A whole TP = 2 serving run: every step's DES time equals its critical path whenever the
// fetches are hidden and collectives never overlap a fetch on a link (NVLink vs PCIe).
TEST(TensorParallelFidelity, DesEqualsCriticalPathOnAServingRun) {
    auto cfg = resolve_run_config(
        {{"backbone", "dense-8b"},
         {"hardware", {{"base", "h100-sxm"}, {"gpu", {{"count", 8}}}}},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 16}}},
         {"sim", {{"tensor_parallel", 2}}}},
        "test");
    const Plan p = make_plan(cfg);
    const DesResult r = simulate_forked(p);
    ASSERT_EQ(r.step_end_s.size(), p.steps.size());
    for (size_t i = 0; i < p.steps.size(); ++i)
        EXPECT_NEAR(r.step_end_s[i] - r.step_start_s[i], analytic_step_seconds(p, p.steps[i]),
                    1e-12)
            << i;
}
