// Remote memory over the network (sim.table remote-dram, mechanism remote-gather) against closed
// forms: one memory node's RDMA write on idle links, M memory nodes sharing the GPU node's NIC,
// ids sent from the GPU then gathered then written back, and whole runs (DES against the
// critical path with one memory node; a fully hidden remote fetch costing what a fully hidden
// host-DRAM fetch costs). Every simulation runs in a forked child (simulate_forked).
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

// h800-pcie5 (PCIe Gen5 x16: 63.02 GB/s, 1 us; NIC 400 Gbps = 50 GB/s, 2 us NIC to NIC) with
// `m` memory nodes; a 4-layer backbone with one Engram layer at layer 1.
Plan network_plan(int m) {
    Plan p;
    p.backbone.name = "synthetic";
    p.backbone.layers = 4;
    p.has_engram = true;
    p.engram_layers = {1};
    p.table = "remote-dram";
    p.mechanism = "remote-gather";
    p.platform = Platform::from_hardware(config::load("h800-pcie5")["hardware"], PcieModel{}, 1, m);
    p.gpu = p.platform.node("gpu0");
    p.host = p.platform.node("host");
    p.h2d_route = p.platform.route(p.host, p.gpu);
    p.d2h_route = p.platform.route(p.gpu, p.host);
    p.h2d = p.h2d_route.back();
    p.d2h = p.d2h_route.front();
    p.memory_nodes = p.platform.memory_nodes();
    return p;
}

constexpr double kNic = 400e9 / 8, kNicLat = 2e-6, kPcieLat = 1e-6;

// One step: embed 10 us, layers of `layer` s, Engram 5 us, head 20 us; one remote fetch issued
// at the step start.
PlannedStep remote_step(double layer, double ids_bytes, double gather_s, double bytes,
                        bool ids_from_gpu = false) {
    PlannedStep s;
    s.tokens = 1, s.seqs = 1;
    s.embed_s = 10e-6, s.layer_s = layer, s.head_s = 20e-6;
    s.engram_gpu_s = {5e-6};
    PlannedFetch f;
    f.unique_rows = 1;
    f.work.remote_ids_bytes_per_node = ids_bytes;
    f.work.remote_ids_from_gpu = ids_from_gpu;
    f.work.remote_gather_s = gather_s;
    f.work.net_bytes_per_node = bytes;
    s.fetch = {f};
    return s;
}

}  // namespace

// The platform: mem0..mem{M-1} and netswitch, the NIC links at half the NIC-to-NIC latency each,
// and a memory node's route to the GPU through the GPU node's NIC and the GPU's host link.
TEST(NetworkFidelity, RemoteMemoryRoutesThroughTheNicAndTheHostLink) {
    const Plan p = network_plan(4);
    ASSERT_EQ(p.memory_nodes.size(), 4u);
    const auto r = p.platform.route(p.platform.node("mem2"), p.gpu);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(p.platform.links()[size_t(r[0])].name, "mem2.up");
    EXPECT_EQ(p.platform.links()[size_t(r[1])].name, "nic0.rx");
    EXPECT_EQ(p.platform.links()[size_t(r[2])].name, "pcie0.h2d");
    EXPECT_EQ(p.platform.links()[size_t(r[0])].latency_s, kNicLat / 2);
    EXPECT_EQ(p.platform.links()[size_t(r[0])].bandwidth_bytes_per_s, kNic);
    EXPECT_DOUBLE_EQ(p.platform.transfer_s(r, 1e6), kNicLat + kPcieLat + 1e6 / kNic);
    const auto ids = p.platform.route(p.host, p.platform.node("mem1"));
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(p.platform.links()[size_t(ids[0])].name, "nic0.tx");
    EXPECT_EQ(p.platform.links()[size_t(ids[1])].name, "mem1.down");
    // Without remote memory the platform is exactly as before (no network nodes or links).
    const Platform plain = Platform::from_hardware(config::load("h800-pcie5")["hardware"]);
    const Platform zero =
        Platform::from_hardware(config::load("h800-pcie5")["hardware"], PcieModel{}, 1, 0);
    EXPECT_EQ(plain.to_json(), zero.to_json());
    EXPECT_EQ(plain.nodes().size() + 1 + 4, p.platform.nodes().size());
    EXPECT_EQ(plain.links().size() + 2 + 2 * 4, p.platform.links().size());
}

// One memory node sends F bytes on idle links: sum of the route's latencies + F / its slowest
// link (the NIC), after its gather; the fetch is hidden behind the embedding and layer 0.
TEST(NetworkFidelity, OneMemoryNodeWritesAtLatencyPlusBytesOverTheNic) {
    Plan p = network_plan(1);
    const double F = 5e6, g = 20e-6;
    p.steps = {remote_step(300e-6, 0, g, F)};
    const DesResult r = simulate_forked(p);
    const double ready = g + kNicLat + kPcieLat + F / kNic;  // 20 + 3 + 100 us
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, ready);
    EXPECT_DOUBLE_EQ(r.step_end_s[0], 10e-6 + 4 * 300e-6 + 5e-6 + 20e-6);
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), r.step_end_s[0]);
}

// M memory nodes each send F bytes at once: they share nic0.rx (50 GB/s; the host link's
// 63.02 GB/s is not the bottleneck), so all finish at latency + M F / NIC bandwidth. The
// critical path, which sees each alone, says latency + F / bandwidth.
TEST(NetworkFidelity, MemoryNodesShareTheGpuNodesNic) {
    for (int m : {2, 4, 8}) {
        SCOPED_TRACE(m);
        Plan p = network_plan(m);
        const double F = 1e6;
        p.steps = {remote_step(100e-6, 0, 0, F)};
        p.steps[0].layer_s = 1e-3;  // hidden: the stall does not matter here
        const DesResult r = simulate_forked(p);
        EXPECT_NEAR(r.fetch[0][0].ready_s, kNicLat + kPcieLat + m * F / kNic, 1e-15);
        Plan a = p;
        a.steps[0].layer_s = 1e-9;  // exposed: the analytic step is the lone node's path
        EXPECT_NEAR(analytic_step_seconds(a, a.steps[0]),
                    (kNicLat + kPcieLat + F / kNic) + 5e-6 + 3e-9 + 20e-6,
                    1e-15);
    }
}

// Hashing on the GPU: the ids leave the GPU over its host link and the NIC (4 memory nodes
// sharing nic0.tx), then each node gathers, then the rows come back sharing nic0.rx.
TEST(NetworkFidelity, IdsFromTheGpuThenGatherThenRdmaWrite) {
    Plan p = network_plan(4);
    const double I = 40'000, g = 30e-6, F = 2e6;
    p.steps = {remote_step(1e-3, I, g, F, true)};
    const DesResult r = simulate_forked(p);
    const double ids = kPcieLat + kNicLat + 4 * I / kNic;
    const double rows = kNicLat + kPcieLat + 4 * F / kNic;
    EXPECT_NEAR(r.fetch[0][0].ready_s, ids + g + rows, 1e-15);
}

namespace {
json run_config(const json& sim) {
    return resolve_run_config({{"backbone", "dense-4b"},
                               {"engram", "paper-offload-100b"},
                               {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}},
                               {"sim", sim}},
                              "test");
}
}  // namespace

// A real workload with one memory node and one gather thread (some fetches stall): nothing
// contends (one Engram layer, one node), so the DES equals each step's critical path.
TEST(NetworkFidelity, OneMemoryNodeDesEqualsCriticalPath) {
    const Plan p = make_plan(run_config({{"table", "remote-dram"},
                                         {"mechanism", "remote-gather"},
                                         {"memory_nodes", 1},
                                         {"gather_threads", 1}}));
    ASSERT_GT(p.steps.size(), 100u);
    const DesResult des = simulate_forked(p);
    const DesResult ana = analytic(p);
    double stall = 0;
    for (size_t i = 0; i < p.steps.size(); ++i) {
        const double d = des.step_end_s[i] - des.step_start_s[i];
        const double a = ana.step_end_s[i] - ana.step_start_s[i];
        ASSERT_NEAR(d, a, 1e-12 * a) << "step " << i;
    }
    stall = compute_metrics(p, des).stall_s;
    EXPECT_GT(stall, 0);  // the check covers exposed fetches too
}

// Four memory nodes, default threads: every remote fetch is hidden, so the run takes exactly
// what the table in host DRAM (also hidden) takes: its pure-compute makespan.
TEST(NetworkFidelity, HiddenRemoteFetchEqualsTheHostDramRun) {
    const Plan remote = make_plan(run_config(
        {{"table", "remote-dram"}, {"mechanism", "remote-gather"}, {"memory_nodes", 4}}));
    const Plan local = make_plan(run_config(json::object()));
    ASSERT_EQ(remote.num_kv_blocks, local.num_kv_blocks);
    const RunMetrics r = compute_metrics(remote, simulate_forked(remote));
    const RunMetrics l = compute_metrics(local, simulate_forked(local));
    EXPECT_EQ(r.stall_s, 0);
    EXPECT_EQ(l.stall_s, 0);
    EXPECT_GT(r.hidden_fetch_s, 0);
    EXPECT_NEAR(r.makespan_s, l.makespan_s, 1e-12 * l.makespan_s);
    EXPECT_EQ(r.unique_rows, l.unique_rows);
    EXPECT_DOUBLE_EQ(r.payload_bytes, l.payload_bytes);
    // The network links carried the rows: each memory node a quarter, the NIC all of them.
    double up = 0, rx = 0;
    for (const auto& [name, u] : r.per_link) {
        if (name == "mem0.up") up = u;
        if (name == "nic0.rx") rx = u;
    }
    EXPECT_GT(up, 0);
    EXPECT_NEAR(rx, 4 * up, 1e-9 * rx);
}
