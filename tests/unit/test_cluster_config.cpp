// The cluster section's layout and its refusals: a layout the cluster cannot hold is refused
// before anything is simulated, naming the keys and the numbers; the all-to-all's flows are
// rings (every GPU receives as many flows of a kind as it sends) carrying, at balanced routing,
// each GPU's T x top_k rows spread evenly over its EP group.
#include <gtest/gtest.h>

#include <map>

#include "model/config.h"
#include "sim/scaleout/cluster_plan.h"
#include "sim/timing/plan.h"

using namespace engramsim;
using namespace engramsim::sim;
using namespace engramsim::sim::scaleout;
using nlohmann::json;

namespace {

json doc(json cluster, std::string backbone = "deepseek-v3", bool engram = false) {
    json d = {{"backbone", backbone},
              {"hardware", "h200"},
              {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 2}}},
              {"cluster", cluster}};
    if (engram) d["engram"] = {{"base", "deepseek-v41-flash-engram"}, {"hc_mult", 1}};
    return d;
}

// The error make_cluster_plan throws for `d`, or "" when it plans.
std::string refusal(const json& d) {
    try {
        make_cluster_plan(resolve_run_config(d, "test"));
    } catch (const config::ConfigError& e) {
        return e.what();
    }
    return "";
}

void expect_refused(const json& d, std::vector<std::string> words) {
    const std::string why = refusal(d);
    ASSERT_FALSE(why.empty()) << d.dump();
    for (const auto& w : words) EXPECT_NE(why.find(w), std::string::npos) << "'" << w << "' in: " << why;
}

}  // namespace

TEST(ClusterConfig, LayoutsTheClusterCannotHoldAreRefusedWithKeysAndNumbers) {
    // 3 nodes: EP 24 does not divide DeepSeek-V3's 256 experts.
    expect_refused(doc({{"nodes", 3}}), {"cluster.expert_parallel", "24", "256"});
    // EP 3 does not divide the 16 GPUs of the stage.
    expect_refused(doc({{"nodes", 2}, {"expert_parallel", 3}}),
                   {"cluster.expert_parallel", "3", "16 GPUs", "cluster.nodes 2"});
    // 16 GPUs in 3 pipeline stages.
    expect_refused(doc({{"nodes", 2}, {"pipeline_parallel", 3}}),
                   {"cluster.pipeline_parallel", "3 stages", "16 GPUs"});
    // 48 nodes do not fill leaves of 32.
    expect_refused(doc({{"nodes", 48}, {"expert_parallel", 128}}),
                   {"cluster.nodes", "48", "32"});
    // A dense backbone has no experts to spread.
    expect_refused(doc({{"nodes", 2}, {"expert_parallel", 16}}, "dense-4b"),
                   {"cluster.expert_parallel", "16", "dense-4b"});
    // Memory servers: how many.
    expect_refused(doc({{"nodes", 2}, {"engram_table", "memory-servers"}}, "deepseek-v3", true),
                   {"cluster.memory_servers"});
    // The weights do not fit: 2 GPUs holding half of the experts each.
    expect_refused(doc({{"nodes", 1}, {"gpus_per_node", 2}}),
                   {"does not fit", "cluster.expert_parallel 2", "weights"});
    // The one-node keys are the cluster's to set.
    json tp = doc({{"nodes", 2}});
    tp["sim"] = {{"tensor_parallel", 2}};
    expect_refused(tp, {"sim.tensor_parallel"});
    json nvme = doc({{"nodes", 2}}, "deepseek-v3", true);
    nvme["sim"] = {{"table", "nvme"}, {"mechanism", "nvme"}};
    expect_refused(nvme, {"sim.table", "cluster.engram_table"});
}

TEST(ClusterConfig, TablesLargerThanTheirMemoryAreRefused) {
    // A 1.97 TB table (10x DeepSeek-V4.1-Flash's) on hosts of 1 TB of DRAM: not replicated, and
    // not sharded over one node; sharded over 4 nodes it fits (492 GB each).
    auto big = [](json cluster) {
        json d = doc(cluster, "deepseek-v3", true);
        d["engram"]["engram_vocab_size"] = json::array({160000000, 160000000, 160000000});
        d["hardware"] = {{"base", "h200"}, {"host", {{"dram_capacity", "1 TB"}}}};
        return d;
    };
    expect_refused(big({{"nodes", 4}}),
                   {"cluster.engram_table replicated", "hardware.host.dram_capacity", "sharded"});
    EXPECT_EQ(refusal(big({{"nodes", 4}, {"engram_table", "sharded"}})), "");
    expect_refused(big({{"nodes", 4}, {"engram_table", "memory-servers"}, {"memory_servers", 1}}),
                   {"cluster.engram_table memory-servers", "cluster.memory_servers"});
}

TEST(ClusterConfig, UnknownKeysNameTheNearest) {
    try {
        resolve_run_config(doc({{"node", 2}}), "test");
        FAIL() << "accepted cluster.node";
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("cluster.node"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("nodes"), std::string::npos) << e.what();
    }
}

TEST(ClusterConfig, AllToAllFlowsAreRingsCarryingEachGpusShare) {
    // 8 nodes, 2 leaves of 4 (1 spine level), EP 64: a GPU's 64 shares of T x k rows: 7 over
    // NVLink, 3 x 8 to its leaf's other nodes, 4 x 8 through the spine, 1 its own.
    const ClusterPlan plan = make_cluster_plan(
        resolve_run_config(doc({{"nodes", 8}, {"nodes_per_leaf", 4}}), "test"));
    ASSERT_EQ(plan.layout.expert_parallel, 64);
    const double T = 100, share = T * 8 * 7168 / 64;  // bytes per value 1
    std::map<std::pair<int, int>, int> received;  // (gpu, kind) -> flows in
    for (int x = 0; x < plan.layout.world; ++x) {
        const auto flows = a2a_flows(plan, x, T, 1);
        ASSERT_EQ(flows.size(), 3u);
        double total = 0;
        for (const A2aFlow& f : flows) {
            total += f.bytes;
            ++received[{f.peer, int(f.kind)}];
            const int a = plan.layout.node_of(x), b = plan.layout.node_of(f.peer);
            if (f.kind == A2aFlow::Kind::NvLink) {
                EXPECT_EQ(a, b);
            } else {
                EXPECT_EQ(x % 8, f.peer % 8);  // its own rail
                EXPECT_EQ(f.kind == A2aFlow::Kind::Leaf,
                          plan.layout.leaf_of(a) == plan.layout.leaf_of(b));
            }
        }
        EXPECT_DOUBLE_EQ(flows[0].bytes, 7 * share);
        EXPECT_DOUBLE_EQ(flows[1].bytes, 24 * share);
        EXPECT_DOUBLE_EQ(flows[2].bytes, 32 * share);
        EXPECT_DOUBLE_EQ(total, 63 * share);
    }
    for (int x = 0; x < plan.layout.world; ++x)
        for (int k = 0; k < 3; ++k) EXPECT_EQ((received[{x, k}]), 1) << x << " kind " << k;
}
