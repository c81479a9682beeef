// engramsim run on a config with a cluster section, as a user runs it: the table of the cluster's
// metrics, results.json (engramsim.cluster-results v1) with the layout, the fabric and the
// overhead against the table in HBM; a layout the cluster cannot hold fails on stderr.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "tests/cli_runner.h"

using engramsim::test::run_engramsim;

namespace {
std::string write_config(const std::string& name, const nlohmann::json& cluster) {
    const std::string path =
        ::testing::TempDir() + "cluster_cli_" + name + "_" + std::to_string(getpid()) + ".json";
    std::ofstream(path) << nlohmann::json{
        {"backbone", "deepseek-v3"},
        {"engram", {{"base", "deepseek-v41-flash-engram"}, {"hc_mult", 1}}},
        {"hardware", "h200"},
        {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 4},
                      {"output_len", {{"dist", "uniform"}, {"min", 100}, {"max", 100}}}}},
        {"cluster", cluster}};
    return path;
}
}  // namespace

TEST(ClusterCli, RunPrintsTheClusterAndWritesResults) {
    const std::string cfg = write_config("ok", {{"nodes", 4}, {"engram_table", "sharded"}});
    const std::string dir = ::testing::TempDir() + "cluster_cli_out_" + std::to_string(getpid());
    const auto r = run_engramsim("run " + cfg + " -o " + dir + " --timeline");
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* line : {"throughput per GPU (output tok/s)", "overhead vs table in HBM",
                             "all-to-all share of GPU 0's time", "EP 32, DP attention 32, PP 1",
                             "sharded"})
        EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
    const auto j = nlohmann::json::parse(std::ifstream(dir + "/results.json"));
    EXPECT_EQ(j["schema"], "engramsim.cluster-results");
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["layout"]["gpus"], 32);
    EXPECT_EQ(j["layout"]["engram_table"], "sharded");
    EXPECT_GT(j["metrics"]["per_gpu_tok_per_s"].get<double>(), 0);
    EXPECT_GT(j["metrics"]["all_to_all_share"].get<double>(), 0);
    // The table in HBM can only be as fast or faster.
    EXPECT_GE(j["comparison"]["overhead_vs_table_in_hbm_pct"].get<double>(), 0);
    EXPECT_GT(j["simulator"]["activities"].get<uint64_t>(), 0u);
    // The timeline: node 0's stream runs one thing at a time, inside the run, and its all-to-
    // alls add up to the all-to-all time results.json reports.
    const auto tl = nlohmann::json::parse(std::ifstream(dir + "/timeline.json"));
    double end = 0, a2a = 0;
    size_t fetches = 0;
    for (const auto& e : tl["traceEvents"]) {
        if (e["ph"] != "X") continue;
        const double ts = e["ts"].get<double>(), dur = e["dur"].get<double>();
        if (e["pid"] == 2) ++fetches;
        if (e["pid"] != 1 || e["tid"] != 2) continue;
        EXPECT_GE(ts, end - 1e-6) << e.dump();  // no overlap on the stream
        end = ts + dur;
        if (e["name"] == "dispatch" || e["name"] == "combine") a2a += dur;
    }
    EXPECT_LE(end, j["metrics"]["makespan_s"].get<double>() * 1e6 + 1e-3);
    EXPECT_NEAR(a2a, j["metrics"]["gpu0_all_to_all_s"].get<double>() * 1e6, 1e-3);
    EXPECT_GT(fetches, 0u);
}

TEST(ClusterCli, LayoutsItCannotHoldFailOnStderr) {
    const auto r = run_engramsim("run " + write_config("bad", {{"nodes", 3}}));
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("cluster.expert_parallel: 24 GPUs do not divide"), std::string::npos)
        << r.err;
}

TEST(ClusterCli, SweepsOfClustersRecordPerGpuNumbers) {
    // Two cluster points (1 and 2 nodes) with their table-in-HBM references: the table shows
    // per-GPU numbers, results.csv carries the cluster's columns with units, and the study of
    // 1 to 128 nodes lists its 80 points.
    const std::string dir = ::testing::TempDir() + "cluster_sweep_" + std::to_string(getpid());
    const std::string spec = dir + ".json";
    std::ofstream(spec) << nlohmann::json{
        {"name", "two"},
        {"base", nlohmann::json::parse(std::ifstream(write_config("sweep", {{"nodes", 1}})))},
        {"axes", {{{"key", "cluster.nodes"}, {"values", {1, 2}}}}},
        {"references", true}};
    auto r = run_engramsim("sweep " + spec + " -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("tok/s per GPU"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("all-to-all"), std::string::npos) << r.out;
    std::ifstream csv(dir + "/results.csv");
    std::string header, row;
    std::getline(csv, header);
    EXPECT_NE(header.find("per_gpu_tok_per_s [output tokens/s per GPU]"), std::string::npos)
        << header;
    EXPECT_NE(header.find("table_bytes_per_node [B of host DRAM]"), std::string::npos) << header;
    int rows = 0;
    while (std::getline(csv, row)) ++rows;
    EXPECT_EQ(rows, 2);
    const auto res = nlohmann::json::parse(std::ifstream(dir + "/results.json"));
    ASSERT_EQ(res["points"].size(), 2u);
    EXPECT_EQ(res["points"][1]["summary"]["gpus"], 16);
    EXPECT_GE(res["points"][1]["summary"]["overhead_vs_table_in_hbm_pct"].get<double>(), 0);
    r = run_engramsim("study run scale-out --list");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("scale-out: 80 points"), std::string::npos) << r.out;
}
