// Data parallelism on one node (sim.data_parallel = D > 1) on SimGrid: D engine replicas, one
// per GPU, in one engine, sharing the host's cores, the PCIe switch uplinks and the drives.
//   - nothing shared contended (table in HBM, or the oracle schedule): each replica's makespan
//     equals a one-GPU run of its shard, built independently, exactly;
//   - two replicas behind one PCIe switch copying F bytes at the same instant: each copy takes
//     latency + 2F / bandwidth (the uplink split), against latency + F / bandwidth alone;
//   - host cores: C = max(1, floor(cores / gather_threads)) gather slots; n concurrent gathers
//     of g seconds each all end at g x max(1, n / C).
// Every simulation runs in a forked child.
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "tests/data_parallel_runs.h"
#include "sim/timing/results.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

constexpr double kPcieBw = 63.02e9, kPcieLat = 1e-6;  // h100-sxm's host link

json hardware(int per_switch) {
    return config::resolve({{"hardware", {{"base", "h100-sxm"},
                                          {"gpu", {{"count", 8}}},
                                          {"host_link", {{"gpus_per_switch", per_switch}}}}}},
                           "test")["hardware"];
}

// A hand-built data-parallel plan: D replicas on gpu0..gpu{D-1}, each running `step` once (one
// layer with its Engram layer; the fetch issued at the step start), the host with `host_cores`
// gather slots.
Plan dp_plan(int d, int per_switch, int host_cores, const PlannedStep& step) {
    Plan top;
    top.backbone.name = "synthetic";
    top.backbone.layers = 1;
    top.has_engram = true;
    top.engram_layers = {0};
    top.platform = Platform::from_hardware(hardware(per_switch), PcieModel{}, d);
    top.host = top.platform.node("host");
    top.gpus = top.platform.gpus();
    top.gpu = top.gpus.front();
    top.data_parallel = d;
    top.host_cores = host_cores;
    for (int k = 0; k < d; ++k) {
        Plan r = top;
        r.replicas.clear();
        r.data_parallel = 1;
        r.gpu = r.platform.node("gpu" + std::to_string(k));
        r.gpus = {r.gpu};
        r.h2d_route = r.platform.route(r.host, r.gpu);
        r.d2h_route = r.platform.route(r.gpu, r.host);
        r.h2d = r.h2d_route.back();
        r.d2h = r.d2h_route.front();
        r.steps = {step};
        r.output_len = {2};
        r.first_step = {0};
        r.last_step = {0};
        r.output_tokens = 1;
        top.replicas.push_back(r);
        top.output_tokens += 1;
    }
    top.h2d_route = top.replicas[0].h2d_route;
    top.d2h_route = top.replicas[0].d2h_route;
    top.h2d = top.replicas[0].h2d;
    top.d2h = top.replicas[0].d2h;
    return top;
}

// 1 us per segment (embedding, Engram module, layer, head); one fetch of `wire` bytes after
// `host_s` of host work, issued at the step start.
PlannedStep one_step(double wire, double host_s) {
    PlannedStep s;
    s.tokens = 1, s.seqs = 1;
    s.embed_s = 1e-6;
    s.layer_s = 1e-6;
    s.head_s = 1e-6;
    s.engram_gpu_s = {1e-6};
    PlannedFetch f;
    f.issue_layer = 0;
    f.unique_rows = 1;
    f.work.h2d_wire_bytes = wire;
    f.work.host_s = host_s;
    s.fetch = {f};
    return s;
}

// h100-sxm with 8 GPUs (an HGX board; the preset has one), 24 requests by default.
json small_run(const json& sim, const std::string& hw = "h100-sxm", int requests = 24,
               int gpus = 8) {
    return engramsim::test::hgx_run(sim, requests, hw, gpus);
}

}  // namespace

// Two replicas behind one PCIe switch (gpus_per_switch 2) copy F bytes at the same instant on
// idle links: the uplink is split, so each copy ends at L + 2F / W and each step 3 us later
// (stalled at its Engram layer). With a switch each (gpus_per_switch 1) or alone (D = 1 on the
// same platform), L + F / W.
TEST(DataParallelFidelity, TwoReplicasOnOneSwitchShareItsUplink) {
    const double F = 8e6;
    for (int per_switch : {2, 1}) {
        const Plan p = dp_plan(2, per_switch, 7, one_step(F, 0));
        const DesResult r = simulate_forked(p);
        ASSERT_EQ(r.replicas.size(), 2u);
        const double fetch = kPcieLat + (per_switch == 2 ? 2 * F : F) / kPcieBw;
        for (const DesResult& rr : r.replicas) {
            EXPECT_DOUBLE_EQ(rr.fetch[0][0].ready_s, fetch) << per_switch;
            EXPECT_DOUBLE_EQ(rr.step_end_s[0], fetch + 3e-6) << per_switch;
            EXPECT_DOUBLE_EQ(rr.makespan_s, fetch + 3e-6) << per_switch;
        }
        EXPECT_DOUBLE_EQ(r.makespan_s, fetch + 3e-6);
        // The metrics: the latest replica's end, and the uplink's bytes from both replicas.
        const RunMetrics m = compute_metrics(p, r);
        EXPECT_DOUBLE_EQ(m.makespan_s, fetch + 3e-6);
        EXPECT_EQ(m.replicas.size(), 2u);
        int found = 0;
        for (const auto& [name, u] : m.per_link) {
            if (name == (per_switch == 2 ? "pcie_switch0.h2d" : "pcie0.h2d")) {
                EXPECT_DOUBLE_EQ(u, (per_switch == 2 ? 2 : 1) * F / (kPcieBw * m.makespan_s));
                ++found;
            }
        }
        EXPECT_EQ(found, 1);
    }
    // One replica alone on the switch: the direct link's time.
    const Plan alone = dp_plan(1, 2, 7, one_step(F, 0));
    const DesResult a = simulate_forked(alone);
    EXPECT_DOUBLE_EQ(a.replicas.at(0).fetch[0][0].ready_s, kPcieLat + F / kPcieBw);
}

// Host cores: C gather slots (floor(cores / gather_threads)); n replicas each gathering g
// seconds at once share them: each ends at g x max(1, n / C).
TEST(DataParallelFidelity, ConcurrentGathersShareTheHostCores) {
    const double g = 1e-3;
    struct Case {
        int d, slots;
    };
    for (const Case c : {Case{2, 1}, Case{2, 2}, Case{3, 2}, Case{4, 1}, Case{8, 7}, Case{4, 7}}) {
        const Plan p = dp_plan(c.d, 1, c.slots, one_step(0, g));
        const DesResult r = simulate_forked(p);
        const double ready = g * std::max(1.0, double(c.d) / c.slots);
        for (const DesResult& rr : r.replicas) {
            EXPECT_NEAR(rr.fetch[0][0].ready_s, ready, 1e-15) << c.d << " on " << c.slots;
            EXPECT_NEAR(rr.step_end_s[0], ready + 3e-6, 1e-15) << c.d << " on " << c.slots;
        }
    }
}

// The slots come from the hardware and sim.gather_threads: h100-sxm has 2 x 56 cores.
TEST(DataParallelFidelity, HostCoresAreCoresOverGatherThreads) {
    for (auto [threads, slots] : {std::pair{16, 7}, {56, 2}, {64, 1}, {200, 1}, {1, 112}}) {
        const Plan p = make_plan(small_run({{"data_parallel", 2}, {"gather_threads", threads}}));
        EXPECT_EQ(p.host_cores, slots) << threads;
    }
}

// Nothing shared contended (the table in HBM: no fetch; the oracle schedule: free fetches):
// each replica runs exactly as a one-GPU run of its shard, built on its own.
TEST(DataParallelFidelity, UncontendedReplicaEqualsItsShardAlone) {
    for (const json& sim : {json{{"table", "hbm"}}, json{{"schedule", "oracle"}}}) {
        for (int d : {2, 4}) {
            json dp_sim = sim;
            dp_sim["data_parallel"] = d;
            const Plan p = make_plan(small_run(dp_sim));
            const DesResult r = simulate_forked(p);
            ASSERT_EQ(r.replicas.size(), size_t(d));
            double latest = 0;
            for (int k = 0; k < d; ++k) {
                const Plan alone = make_shard_plan(small_run(sim), k, d);
                EXPECT_EQ(alone.platform.gpus().size(), 1u);
                const DesResult a = simulate_forked(alone);
                EXPECT_EQ(r.replicas[size_t(k)].makespan_s, a.makespan_s)
                    << sim.dump() << " D=" << d << " replica " << k;
                EXPECT_EQ(r.replicas[size_t(k)].step_end_s, a.step_end_s);
                EXPECT_EQ(p.replicas[size_t(k)].steps.size(), alone.steps.size());
                latest = std::max(latest, a.makespan_s);
            }
            EXPECT_EQ(r.makespan_s, latest);
        }
    }
}

// With the table in host DRAM and the fetch at the Engram layer (schedule none: every copy
// exposed), replicas contend for the switch uplinks and the host: none is faster than its shard
// alone, and sharing a switch costs something.
TEST(DataParallelFidelity, ContendedReplicasAreNeverFasterThanAlone) {
    const json sim = {{"schedule", "none"}, {"gather_threads", 56}};
    json dp_sim = sim;
    dp_sim["data_parallel"] = 4;  // 2 slots for 4 gathers; 2 GPUs per switch
    const Plan p = make_plan(small_run(dp_sim));
    ASSERT_EQ(p.host_cores, 2);
    const DesResult r = simulate_forked(p);
    double slower = 0;
    for (int k = 0; k < 4; ++k) {
        const DesResult a = simulate_forked(make_shard_plan(small_run(sim), k, 4));
        EXPECT_GE(r.replicas[size_t(k)].makespan_s, a.makespan_s * (1 - 1e-12)) << k;
        slower = std::max(slower, r.replicas[size_t(k)].makespan_s - a.makespan_s);
    }
    EXPECT_GT(slower, 0);
}
