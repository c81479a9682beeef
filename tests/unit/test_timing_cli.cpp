// engramsim run and engramsim study as a user runs them: outputs, files, JSON keys, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "tests/cli_runner.h"

namespace {

using Result = engramsim::test::CliResult;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string small_config() {
    const std::string path =
        ::testing::TempDir() + "timing_small_" + std::to_string(getpid()) + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16}})";
    return path;
}

}  // namespace

TEST(TimingCli, RunWritesResultsConfigAndTimeline) {
    const std::string dir = ::testing::TempDir() + "timing_run_a_" + std::to_string(getpid());
    Result r = run("run " + small_config() + " -o " + dir + " --timeline");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("overhead vs table in HBM"), std::string::npos) << r.out;
    const auto res = nlohmann::json::parse(slurp(dir + "/results.json"));
    EXPECT_EQ(res["schema_version"], 1);
    EXPECT_EQ(res["units"]["time"], "s");
    EXPECT_TRUE(res["machine"].contains("simgrid"));
    EXPECT_EQ(res["config"]["workload"]["num_requests"], 16);
    const auto& m = res["metrics"];
    EXPECT_GT(m["throughput_tok_per_s"].get<double>(), 0);
    EXPECT_GT(m["fetch"]["unique_rows"].get<uint64_t>(), 0u);
    EXPECT_TRUE(res["comparison"].contains("overhead_vs_no_engram_pct"));
    const auto cfg = nlohmann::json::parse(slurp(dir + "/resolved_config.json"));
    EXPECT_EQ(cfg["sim"]["schedule"], "layer-ahead:0");
    EXPECT_EQ(cfg["placement"]["hbm_capacity"], "0");  // the placement defaults, resolved
    EXPECT_EQ(m["rows_by_tier"]["host-dram"], m["fetch"]["unique_rows"]);
    EXPECT_EQ(m["fetch"]["nvme_read_bytes"], 0);
    const auto tl = nlohmann::json::parse(slurp(dir + "/timeline.json"));
    EXPECT_GT(tl["traceEvents"].size(), 2 * m["steps"]["total"].get<size_t>());

    // Determinism: the same run again writes the same bytes.
    const std::string dir_b = ::testing::TempDir() + "timing_run_b_" + std::to_string(getpid());
    ASSERT_EQ(run("run " + small_config() + " -o " + dir_b + " --timeline").status, 0);
    EXPECT_EQ(slurp(dir + "/results.json"), slurp(dir_b + "/results.json"));
    EXPECT_EQ(slurp(dir + "/timeline.json"), slurp(dir_b + "/timeline.json"));
}

TEST(TimingCli, RunServesASyntheticWorkload) {
    // A fitted synthetic model serves a run: the lookups are those of the workload's lengths
    // (16 rows per token of the offload layer, every token but each request's last), and the
    // run is deterministic in its seed; a missing model file is named by its key.
    const std::string dir = ::testing::TempDir() + "synthetic_run_" + std::to_string(getpid());
    const std::string model = dir + "_model.json";
    Result r =
        run("trace fit --engram paper-offload-100b --tokens bundled:handbook-en-US -o " + model);
    ASSERT_EQ(r.status, 0) << r.err;
    const std::string cfg = dir + "_run.json";
    std::ofstream(cfg) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"kind": "synthetic", "num_requests": 24, "synthetic_model": ")" +
                              model + R"("}})";
    r = run("run " + cfg + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    const uint64_t lookups = j.at("metrics").at("fetch").at("lookups").get<uint64_t>();
    const uint64_t tokens = j.at("simulated").at("prompt_tokens").get<uint64_t>() +
                            j.at("simulated").at("output_tokens").get<uint64_t>();
    EXPECT_EQ(lookups, (tokens - 24) * 16);
    EXPECT_EQ(run("run " + cfg + " --json").out, r.out);

    std::ofstream(cfg) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"kind": "synthetic", "synthetic_model": "/nonexistent/model.json"}})";
    r = run("run " + cfg);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("workload.synthetic_model: cannot read"), std::string::npos) << r.err;
}

// --kv-band 2: the overhead against no Engram with the KV cache 2 blocks smaller to 2 larger.
// Each end is checked against its own run with sim.num_kv_blocks set (Dense-8B at 200 blocks:
// it preempts, so the band is not one point).
TEST(TimingCli, RunKvBandIsTheOverheadAtNeighbouringKvCaches) {
    auto config = [](int64_t blocks) {
        const std::string path = ::testing::TempDir() + "timing_kv_" + std::to_string(blocks) +
                                 "_" + std::to_string(getpid()) + ".json";
        std::ofstream(path) << R"({"backbone": "dense-8b", "engram": "paper-offload-100b",
            "workload": {"base": "nano-vllm-512", "num_requests": 96},
            "sim": {"num_kv_blocks": )" << blocks << "}}";
        return path;
    };
    Result r = run("run " + config(200) + " --kv-band 2 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto band = nlohmann::json::parse(r.out)["comparison"]["kv_band"];
    ASSERT_EQ(band["blocks"], 2);
    EXPECT_EQ(band["kv_blocks"], 200);
    const std::vector<double> v = band["overhead_pct"];
    ASSERT_EQ(v.size(), 5u);
    EXPECT_EQ(band["min_pct"].get<double>(), *std::min_element(v.begin(), v.end()));
    EXPECT_EQ(band["max_pct"].get<double>(), *std::max_element(v.begin(), v.end()));
    EXPECT_LT(band["min_pct"].get<double>(), band["max_pct"].get<double>());
    const double base = nlohmann::json::parse(r.out)["comparison"]["no_engram_tok_per_s"];
    for (int k : {-2, 2}) {  // the same config at 198 and 202 blocks (the reference at 200)
        Result one = run("run " + config(200 + k) + " --json");
        ASSERT_EQ(one.status, 0) << one.err;
        const double tps = nlohmann::json::parse(one.out)["comparison"]["throughput_tok_per_s"];
        EXPECT_NEAR(v[size_t(k + 2)], (base - tps) / base * 100, 1e-9) << "k " << k;
    }
    EXPECT_NE(run("run " + config(200) + " --kv-band 2").out.find("band, KV cache +-2 blocks"),
              std::string::npos);
}

TEST(TimingCli, RunErrorsGoToStderr) {
    Result r = run("run dense-4c");
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find("did you mean dense-4b?"), std::string::npos) << r.err;
    const std::string bad =
        ::testing::TempDir() + "timing_bad_" + std::to_string(getpid()) + ".json";
    std::ofstream(bad) << R"({"backbone": "dense-4b", "sim": {"schedule": "later"}})";
    r = run("run " + bad);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown prefetch schedule 'later'; known: layer-ahead:K, none, oracle"),
              std::string::npos)
        << r.err;
    // the HBM cache keys moved to the placement section: the error names the new keys
    std::ofstream(bad) << R"({"backbone": "dense-4b", "sim": {"hbm_cache_policy": "lru"}})";
    r = run("run " + bad);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sim.hbm_cache_policy: this key has moved; write placement.policy"),
              std::string::npos)
        << r.err;
    r = run("study run paper-table5");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("known: paper-table4"), std::string::npos) << r.err;
}

// The table on remote memory servers: engramsim run prints the network links' utilisation, and
// bad combinations fail naming the key.
TEST(TimingCli, RunRemoteDramPrintsNetworkLinks) {
    const std::string path =
        ::testing::TempDir() + "timing_remote_" + std::to_string(getpid()) + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16},
        "sim": {"table": "remote-dram", "mechanism": "remote-gather", "memory_nodes": 4}})";
    const std::string dir = ::testing::TempDir() + "timing_remote_" + std::to_string(getpid());
    Result r = run("run " + path + " -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* line : {"memory nodes", "nic0.rx utilisation", "mem0.up utilisation",
                             "mem3.up utilisation", "overhead vs table in HBM"})
        EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
    const auto res = nlohmann::json::parse(slurp(dir + "/results.json"));
    const auto& links = res["metrics"]["link_utilization_per_link"];
    EXPECT_GT(links["nic0.rx"].get<double>(), 0);
    EXPECT_GT(links["nic0.tx"].get<double>(), 0);  // the row ids
    EXPECT_NEAR(links["nic0.rx"].get<double>(), 4 * links["mem2.up"].get<double>(), 1e-9);
    EXPECT_GT(res["metrics"]["link_utilization"]["host_link.h2d"].get<double>(), 0);
    EXPECT_EQ(res["simulated"]["fetch_mechanism"], "remote-gather");

    // The preset form of the brief's example.
    std::ofstream(path) << R"({"backbone":"dense-4b","engram":"paper-offload-100b",
        "sim":{"table":"remote-dram","mechanism":"remote-gather","memory_nodes":0}})";
    r = run("run " + path);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sim.memory_nodes"), std::string::npos) << r.err;
    std::ofstream(path) << R"({"backbone":"dense-4b","engram":"paper-offload-100b",
        "sim":{"table":"remote-dram","mechanism":"cpu-gather"}})";
    r = run("run " + path);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sim.mechanism: 'cpu-gather' with table 'remote-dram'"),
              std::string::npos)
        << r.err;
    std::ofstream(path) << R"({"backbone":"dense-4b","engram":"paper-offload-100b",
        "sim":{"table":"host-dram","mechanism":"remote-gather"}})";
    r = run("run " + path);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sim.mechanism: 'remote-gather' with table 'host-dram'"),
              std::string::npos)
        << r.err;
}

// The reproduction's JSON: calibrated baselines equal the paper's, overheads predicted.
TEST(TimingCli, StudyPaperTable4Json) {
    Result r = run("study run paper-table4 --json --no-sensitivity");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["rows"].size(), 2u);
    EXPECT_EQ(j["rows"][0]["backbone"], "dense-4b");
    EXPECT_EQ(j["rows"][1]["backbone"], "dense-8b");
    EXPECT_EQ(j["rows"][0]["paper_overhead_pct"], 1.92);
    EXPECT_EQ(j["rows"][1]["paper_overhead_pct"], 2.78);
    EXPECT_NEAR(j["rows"][0]["baseline_tok_per_s"].get<double>(), 9031.62, 1e-6);
    EXPECT_NEAR(j["rows"][1]["baseline_tok_per_s"].get<double>(), 6315.52, 1e-6);
    for (const auto& row : j["rows"]) {
        const double base = row["baseline_tok_per_s"], eng = row["engram_tok_per_s"];
        EXPECT_LT(eng, base);
        EXPECT_NEAR(row["overhead_pct"].get<double>(), (base - eng) / base * 100, 1e-9);
        // The band over the Engram run's KV cache +-2 blocks: five overheads, the prediction
        // in the middle, min and max of them.
        const auto& band = row["kv_band"];
        ASSERT_EQ(band["blocks"], 2);
        ASSERT_EQ(band["overhead_pct"].size(), 5u);
        EXPECT_EQ(band["overhead_pct"][2], row["overhead_pct"]);
        const std::vector<double> v = band["overhead_pct"];
        EXPECT_EQ(band["min_pct"].get<double>(), *std::min_element(v.begin(), v.end()));
        EXPECT_EQ(band["max_pct"].get<double>(), *std::max_element(v.begin(), v.end()));
        EXPECT_GT(band["kv_blocks"].get<int64_t>(), 1000);
    }
    // Dense-8B runs at the edge of its KV cache (preemptions): its band is not one point.
    EXPECT_LT(j["rows"][1]["kv_band"]["min_pct"].get<double>(),
              j["rows"][1]["kv_band"]["max_pct"].get<double>());
    for (const char* k : {"pcie_generation", "table_dtype", "layer_shape", "hashing", "calibration"})
        EXPECT_TRUE(j["assumptions"].contains(k)) << k;
}
