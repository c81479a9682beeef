// Multi-node clusters on SimGrid (sim/scaleout) against closed forms written here from the
// fabric's numbers, not from the simulator's code:
//   - an all-to-all on idle rails: each GPU's NIC flow takes (2 NIC links + 2 fabric links of
//     latency) + bytes / NIC bandwidth, per layer;
//   - a shared spine: with one spine up-link per leaf of 2 nodes x 8 GPUs, the 16 cross-leaf
//     flows split it (400 GB/s / 16 = 25 GB/s each), so a flow of B bytes takes latency + B / 25e9;
//   - the DES equal to the critical path when nothing contends, at 2 and 4 nodes, with and
//     without pipeline stages, and with the Engram table fetched from the host or memory servers;
//   - coalesced all-to-alls (a flow per fabric level) equal to pairwise ones (a flow per pair)
//     where every NIC carries its own flows only.
// Every simulation runs in a forked child.
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/scaleout/cluster_sim.h"
#include "sim/timing/plan.h"

using namespace engramsim;
using namespace engramsim::sim;
using namespace engramsim::sim::scaleout;
using nlohmann::json;

namespace {

// DeepSeek-V4.1-Flash (hidden 5120, top-6 of 384 experts) on H200 nodes (NIC 400 Gb/s = 50 GB/s,
// NVLink 450 GB/s), 4 requests a rank, 100 output tokens each.
json cluster_config(json cluster, bool engram = false, json sim = json::object()) {
    json doc = {{"backbone", "deepseek-v41-flash"},
                {"hardware", "h200"},
                {"workload",
                 {{"base", "nano-vllm-512"},
                  {"num_requests", 4},
                  {"prompt_len", {{"dist", "uniform"}, {"min", 100}, {"max", 200}}},
                  {"output_len", {{"dist", "uniform"}, {"min", 100}, {"max", 100}}}}},
                {"sim", sim},
                {"cluster", cluster}};
    if (engram) doc["engram"] = "deepseek-v41-flash-engram";
    return resolve_run_config(doc, "test");
}

constexpr double kNic = 50e9, kNicLat = 0.95e-6, kSwLat = 0.45e-6;
constexpr double kHidden = 5120, kTopK = 6, kLayers = 40;

void expect_rel(double got, double want, double rel, const std::string& what) {
    EXPECT_NEAR(got, want, std::abs(want) * rel) << what;
}

}  // namespace

TEST(ScaleOutFidelity, AllToAllOnIdleRailsIsLatencyPlusBytesOverNicBandwidth) {
    // 2 nodes under one leaf, EP 16: a GPU sends 8 of its 16 rows' shares to the other node
    // (one NIC flow), 7 over NVLink. One group of all 40 layers a step: per step a dispatch
    // 40 x (2.8 us + T k h x 1 B x 8/16 / 50 GB/s) and a combine of 2 B a value.
    const ClusterPlan plan = make_cluster_plan(cluster_config({{"nodes", 2}, {"layers_per_event", 40}}));
    ASSERT_EQ(plan.layout.expert_parallel, 16);
    const double lat = 2 * kNicLat + 2 * kSwLat;  // 2.8 us, DeepSeek's same-leaf IB figure
    double want = 0;
    for (const ClusterStep& st : plan.steps) {
        const double half = st.tokens * kTopK * kHidden / 2;  // bytes per value 1
        want += kLayers * (lat + half / kNic) + kLayers * (lat + 2 * half / kNic);
    }
    const ClusterResult des = simulate_cluster_forked(plan);
    expect_rel(des.a2a_s, want, 1e-9, "DES all-to-all time of GPU 0");
    expect_rel(analytic_cluster(plan).a2a_s, want, 1e-12, "critical path's");
    // One layer's dispatch for T = 1000 tokens, by the formula alone.
    const auto flows = a2a_flows(plan, 0, 1000, 1);
    expect_rel(a2a_idle(plan, flows).seconds, lat + 1000 * kTopK * kHidden / 2 / kNic, 1e-12,
               "one dispatch");
}

TEST(ScaleOutFidelity, CrossLeafFlowsShareAnOversubscribedSpine) {
    // 4 nodes, 2 a leaf, 2:1 oversubscribed: one spine, each leaf's one up-link (8 rails x
    // 50 GB/s = 400 GB/s) carrying its 16 GPUs' cross-leaf flows at 25 GB/s each. EP 32: a GPU's
    // spine flow carries the rows of the 2 nodes of the other leaf (16 of 32 shares), its leaf
    // flow 8 of 32 at the NIC's remaining 25 GB/s, done first. Latency through the spine 3.7 us.
    const ClusterPlan plan = make_cluster_plan(cluster_config(
        {{"nodes", 4}, {"nodes_per_leaf", 2}, {"oversubscription", 2}, {"layers_per_event", 40}}));
    ASSERT_EQ(plan.layout.spines, 1);
    ASSERT_EQ(plan.layout.leaves, 2);
    const double lat = 2 * kNicLat + 4 * kSwLat;
    double want = 0;
    for (const ClusterStep& st : plan.steps) {
        const double spine = st.tokens * kTopK * kHidden * 16 / 32;  // bytes per value 1
        want += kLayers * (lat + spine / 25e9) + kLayers * (lat + 2 * spine / 25e9);
    }
    const ClusterResult des = simulate_cluster_forked(plan);
    expect_rel(des.a2a_s, want, 1e-9, "DES all-to-all time of GPU 0 on a shared spine");
    // On idle links (the critical path) both flows would share the NIC's 50 GB/s alone: 3.7 us +
    // (8 + 16 of 32 shares) / 50 GB/s a layer, faster.
    double idle = 0;
    for (const ClusterStep& st : plan.steps) {
        const double nic = st.tokens * kTopK * kHidden * 24 / 32;
        idle += kLayers * (lat + nic / kNic) + kLayers * (lat + 2 * nic / kNic);
    }
    expect_rel(analytic_cluster(plan).a2a_s, idle, 1e-12, "critical path on idle links");
    EXPECT_LT(idle, want);
}

TEST(ScaleOutFidelity, DesEqualsCriticalPathWithoutContention) {
    // Nothing contends: every GPU's flows leave by its own NIC and NVLink and no two share a
    // fabric link beyond its bandwidth (full bisection).
    for (const json& c : {json{{"nodes", 2}}, json{{"nodes", 4}},
                          json{{"nodes", 4}, {"layers_per_event", 1}},
                          json{{"nodes", 4}, {"pipeline_parallel", 2}},
                          json{{"nodes", 4}, {"nodes_per_leaf", 2}, {"expert_parallel", 16}}}) {
        const ClusterPlan plan = make_cluster_plan(cluster_config(c));
        const ClusterResult des = simulate_cluster_forked(plan);
        const ClusterResult cp = analytic_cluster(plan);
        ASSERT_EQ(des.step_end_s.size(), cp.step_end_s.size()) << c.dump();
        for (size_t i = 0; i < cp.step_end_s.size(); ++i)
            expect_rel(des.step_end_s[i], cp.step_end_s[i], 1e-9,
                       c.dump() + " step " + std::to_string(i));
        expect_rel(des.makespan_s, cp.makespan_s, 1e-9, c.dump());
        EXPECT_GT(des.activities, 0u);
    }
}

TEST(ScaleOutFidelity, DesEqualsCriticalPathWithEngramFetches) {
    // One GPU a node (no shared switch or host cores), fetches issued at the Engram layer (the
    // GPU waits, so no all-to-all is in flight anywhere): the DES is the critical path, with the
    // table in each node's DRAM and on eight memory servers (node n reads server n mod 8), and
    // with two pipeline stages (both Engram layers in the first; the second fetches nothing).
    const json sim = {{"schedule", "none"}};
    for (const json& c :
         {json{{"nodes", 8}, {"gpus_per_node", 1}},
          json{{"nodes", 8}, {"gpus_per_node", 1}, {"pipeline_parallel", 2}},
          json{{"nodes", 8}, {"gpus_per_node", 1}, {"engram_table", "memory-servers"},
               {"memory_servers", 8}}}) {
        const ClusterPlan plan = make_cluster_plan(cluster_config(c, true, sim));
        const ClusterResult des = simulate_cluster_forked(plan);
        const ClusterResult cp = analytic_cluster(plan);
        EXPECT_GT(cp.fetch_s, 0) << c.dump();
        expect_rel(des.fetch_s, cp.fetch_s, 1e-9, c.dump() + " fetch");
        expect_rel(des.stall_s, cp.stall_s, 1e-9, c.dump() + " stall");
        expect_rel(des.makespan_s, cp.makespan_s, 1e-9, c.dump());
    }
}

TEST(ScaleOutFidelity, CoalescedAllToAllEqualsPairwise) {
    // 2 nodes under one leaf: pairwise, a NIC carries 8 flows of B / 8 at 50 / 8 GB/s each, all
    // done at latency + B / 50 GB/s, as the one coalesced flow of B; NVLink alike.
    const ClusterPlan co = make_cluster_plan(cluster_config({{"nodes", 2}, {"granularity", "gpu"}}));
    const ClusterPlan pw = make_cluster_plan(
        cluster_config({{"nodes", 2}, {"granularity", "gpu"}, {"collectives", "pairwise"}}));
    const ClusterResult a = simulate_cluster_forked(co), b = simulate_cluster_forked(pw);
    expect_rel(a.makespan_s, b.makespan_s, 1e-9, "makespan");
    expect_rel(a.a2a_s, b.a2a_s, 1e-9, "all-to-all time");
    EXPECT_LT(a.activities, b.activities);  // 2 flows a GPU against 15
}

TEST(ScaleOutFidelity, NodeGranularityEqualsPerGpuWhereTheGpusAreAlike) {
    // A node as one unit with links G times as wide against every GPU with its own NIC, leg and
    // NVLink: the same times where a node's GPUs run alike (no skew), with and without Engram
    // fetches contending for the PCIe switches, the host's cores and the NICs.
    for (const auto& [c, engram] :
         std::vector<std::pair<json, bool>>{{{{"nodes", 2}}, true},
                                            {{{"nodes", 4}, {"engram_table", "sharded"}}, true},
                                            {{{"nodes", 4}, {"nodes_per_leaf", 2}}, false},
                                            {{{"nodes", 4}, {"pipeline_parallel", 2}}, false}}) {
        json g = c;
        g["granularity"] = "gpu";
        const ClusterPlan by_node = make_cluster_plan(cluster_config(c, engram));
        const ClusterPlan by_gpu = make_cluster_plan(cluster_config(g, engram));
        const ClusterResult a = simulate_cluster_forked(by_node), b = simulate_cluster_forked(by_gpu);
        ASSERT_EQ(a.step_end_s.size(), b.step_end_s.size());
        for (size_t i = 0; i < a.step_end_s.size(); ++i)
            expect_rel(a.step_end_s[i], b.step_end_s[i], 1e-9, c.dump() + " step " + std::to_string(i));
        expect_rel(a.a2a_s, b.a2a_s, 1e-9, c.dump() + " all-to-all");
        expect_rel(a.fetch_s + 1e-30, b.fetch_s + 1e-30, 1e-9, c.dump() + " fetch");
        EXPECT_LT(a.activities * 4, b.activities) << c.dump();  // 8 GPUs a node: far fewer
    }
}

TEST(ScaleOutFidelity, SkewSlowsTheHotGpusGroup) {
    // The hot GPU's experts get (1 + s) x the rows: its expert time grows, and the cluster waits.
    const ClusterPlan even = make_cluster_plan(cluster_config({{"nodes", 2}}));
    const ClusterPlan skew = make_cluster_plan(cluster_config({{"nodes", 2}, {"routing_skew", 1.0}}));
    ASSERT_GT(skew.steps[5].expert_hot_s, skew.steps[5].expert_s);
    EXPECT_DOUBLE_EQ(even.steps[5].expert_hot_s, even.steps[5].expert_s);
    EXPECT_GT(simulate_cluster_forked(skew).makespan_s, simulate_cluster_forked(even).makespan_s);
}

TEST(ScaleOutFidelity, MicroBatchesShareOneStreamAndOverlapTheirAllToAlls) {
    // Two micro-batches: their kernels take turns on the GPU's stream, so a step lasts at least
    // both micro-batches' compute, and their all-to-alls overlap the other's compute, so the run
    // is faster than its compute and all-to-alls end to end.
    const ClusterPlan plan = make_cluster_plan(cluster_config({{"nodes", 2}, {"micro_batches", 2}}));
    const ClusterResult r = simulate_cluster_forked(plan);
    double serial = 0;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        const ClusterStep& st = plan.steps[i];
        const double compute =
            st.embed_s + st.head_s + kLayers * (st.pre_s + st.expert_s);  // one micro-batch
        EXPECT_GE(r.step_end_s[i] - r.step_start_s[i], 2 * compute * (1 - 1e-9)) << "step " << i;
        serial += 2 * compute;
    }
    EXPECT_GT(r.a2a_s, 0);
    EXPECT_LT(r.makespan_s, serial + 2 * r.a2a_s);
    EXPECT_THROW(analytic_cluster(plan), std::invalid_argument);
    // Across two pipeline stages each micro-batch passes them on its own, each with its own
    // mailboxes: every step ends, in order (nothing waits for a message never sent).
    const ClusterPlan pp = make_cluster_plan(
        cluster_config({{"nodes", 4}, {"pipeline_parallel", 2}, {"micro_batches", 2}}));
    const ClusterResult q = simulate_cluster_forked(pp);
    ASSERT_EQ(q.step_end_s.size(), pp.steps.size());
    for (size_t i = 1; i < q.step_end_s.size(); ++i) EXPECT_GT(q.step_end_s[i], q.step_end_s[i - 1]);
    EXPECT_GT(q.step_end_s[0], 0);
}

TEST(ScaleOutFidelity, SameConfigSameResults) {
    const ClusterPlan plan = make_cluster_plan(cluster_config({{"nodes", 2}}, true));
    const ClusterResult a = simulate_cluster_forked(plan), b = simulate_cluster_forked(plan);
    EXPECT_EQ(a.step_end_s, b.step_end_s);
    EXPECT_EQ(a.activities, b.activities);
    EXPECT_EQ(a.makespan_s, b.makespan_s);
}

// ---- Against published measurements ------------------------------------------------------

TEST(ScaleOutAnchors, DeepEpLowLatencyAllToAllsOnH800) {
    // DeepEP's low-latency kernels on H800 nodes with one 400 Gb/s ConnectX-7 NIC per GPU
    // (deepseek-ai/DeepEP docs/legacy.md, with NVLink since 2025-06-05): 128 tokens a rank,
    // hidden 7168, top-8, FP8 dispatch, BF16 combine; microseconds at EP 16..256. Predicted from
    // the fabric alone, no term fitted to these numbers:
    //   - with the preset's line rate (50 GB/s a NIC) every prediction is fast, by 17-36%: the
    //     model has no RDMA protocol cost (headers, per-message work, IBGDA's issue);
    //   - with DeepSeek's own effective NIC rate (40 GB/s, ISCA'25 section 4) within 12%, but
    //     for EP 16's dispatch, fast by 20%: its transfer is the shortest (95 us), and the
    //     kernel's fixed cost (launch, packing FP8 with its scales, completion signals), which
    //     the model lacks, shows most there. That miss is pinned below as a band.
    struct Row {
        int ep;
        double dispatch_us, combine_us;
    };
    const Row measured[] = {{16, 118, 195}, {32, 155, 273}, {64, 173, 314}, {128, 192, 369},
                            {256, 194, 360}};
    for (const char* nic : {"50 GB/s", "40 GB/s"}) {
        const bool line_rate = std::string(nic) == "50 GB/s";
        for (const Row& m : measured) {
            const ClusterPlan plan = make_cluster_plan(resolve_run_config(
                {{"backbone", "deepseek-v3"},
                 {"hardware", "h800-pcie5"},
                 {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 1}}},
                 {"cluster", {{"nodes", m.ep / 8}, {"nic_bandwidth", nic}}}},
                "anchor"));
            ASSERT_EQ(plan.layout.expert_parallel, m.ep);
            const auto flows = a2a_flows(plan, 0, 128, 1);
            const double dispatch = a2a_idle(plan, flows).seconds * 1e6;
            const double combine = a2a_idle(plan, flows, 2).seconds * 1e6;
            const double ed = dispatch / m.dispatch_us - 1, ec = combine / m.combine_us - 1;
            std::printf("EP %3d at %s: dispatch %6.1f us (measured %3.0f, %+5.1f%%), combine "
                        "%6.1f us (measured %3.0f, %+5.1f%%)\n",
                        m.ep, nic, dispatch, m.dispatch_us, 100 * ed, combine, m.combine_us,
                        100 * ec);
            if (line_rate) {
                EXPECT_LT(ed, -0.10) << m.ep;
                EXPECT_GT(ed, -0.40) << m.ep;
                EXPECT_LT(ec, -0.10) << m.ep;
                EXPECT_GT(ec, -0.40) << m.ep;
            } else {
                if (m.ep == 16) {  // the known miss (above)
                    EXPECT_LT(ed, -0.15) << m.ep;
                    EXPECT_GT(ed, -0.25) << m.ep;
                } else {
                    EXPECT_LT(std::abs(ed), 0.12) << m.ep;
                }
                EXPECT_LT(std::abs(ec), 0.12) << m.ep;
            }
        }
    }
}

TEST(ScaleOutAnchors, TwoBatchOverlapAgainstSGLang) {
    // SGLang's large-scale EP deployment (lm-sys blog 2025-05-05: DeepSeek-V3 decode on H100
    // nodes with DeepEP's low-latency kernels) measured two-batch overlap at +25.5% decode
    // throughput with 256 tokens a GPU and -27% with 32. Predicted here (DeepSeek-V3, 8 H100
    // nodes, EP 64, 1000-2000-token prompts), no term fitted: each micro-batch reads the
    // experts' weights again, and one's all-to-all hides behind the other's compute. The model
    // gives +23.6% and -25.4%; the bands are SGLang's figures +-10 points.
    auto decode_rate = [](int seqs, int micro_batches) {
        const ClusterPlan plan = make_cluster_plan(resolve_run_config(
            {{"backbone", "deepseek-v3"},
             {"hardware", "h100-sxm"},
             {"workload",
              {{"base", "nano-vllm-512"},
               {"num_requests", seqs},
               {"prompt_len", {{"dist", "uniform"}, {"min", 1000}, {"max", 2000}}},
               {"output_len", {{"dist", "uniform"}, {"min", 1000}, {"max", 1024}}}}},
             {"sim", {{"max_num_seqs", seqs}}},
             {"cluster", {{"nodes", 8}, {"micro_batches", micro_batches}}}},
            "anchor"));
        return cluster_metrics(plan, simulate_cluster_forked(plan)).decode_tok_per_s_per_gpu;
    };
    const double gain256 = decode_rate(256, 2) / decode_rate(256, 1) - 1;
    const double gain32 = decode_rate(32, 2) / decode_rate(32, 1) - 1;
    std::printf("two-batch overlap: %+.1f%% at 256 tokens a GPU (SGLang +25.5%%), %+.1f%% at 32 "
                "(SGLang -27%%)\n", 100 * gain256, 100 * gain32);
    EXPECT_GT(gain256, 0.155);
    EXPECT_LT(gain256, 0.355);
    EXPECT_GT(gain32, -0.37);
    EXPECT_LT(gain32, -0.17);
}
