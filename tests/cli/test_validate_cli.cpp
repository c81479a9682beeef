// engramsim validate host-fetch as a user runs it: files, table, errors. The measured times are
// this machine's and are never asserted; what follows from them is (tests/unit/test_host_fetch).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/cli_runner.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

engramsim::test::CliResult run(const std::string& args) {
    return engramsim::test::run_engramsim(args);
}

std::string tmp(const std::string& tag) {
    const std::string p =
        ::testing::TempDir() + "validatecli_" + tag + "_" + std::to_string(getpid());
    fs::remove_all(p);
    return p;
}

std::string config(const std::string& tag, const std::string& sim) {
    const std::string path = tmp(tag) + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 4}, "sim": )"
                        << sim << "}";
    return path;
}

const char* kSmall = " --table 8MiB --repeats 1 --idle-us 0";

}  // namespace

TEST(ValidateCli, WritesTheReportAndItsFetchTable) {
    const std::string dir = tmp("out");
    const auto r = run("validate host-fetch " + config("ok", "{}") + kSmall +
                       " --threads 1,2 --steps 5 -o " + dir + " --plot " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("calibration (microbenchmarks, not the run)"), std::string::npos);
    EXPECT_NE(r.out.find("sim.outstanding_per_thread"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("pass 1/1 over 5 fetches"), std::string::npos) << r.err;  // progress
    const json j = json::parse(engramsim::test::read_file(dir + "/validation.json"));
    EXPECT_EQ(j["kind"], "engramsim.host_fetch_validation");
    ASSERT_EQ(j["runs"].size(), 2u);
    EXPECT_EQ(j["runs"][0]["fetches"], 5);
    EXPECT_EQ(j["resolved_config"]["workload"]["num_requests"], 4);
    const std::string csv = engramsim::test::read_file(dir + "/fetches.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 5);
    EXPECT_GT(fs::file_size(dir + "/host_fetch_validation.png"), 1000u);
    const json plotted = json::parse(engramsim::test::read_file(dir + "/host_fetch_validation.json"));
    EXPECT_EQ(plotted["fetches"].size(), 2u * 5);  // one row per thread count and fetch
    EXPECT_FALSE(plotted.contains("resolved_config"));
}

TEST(ValidateCli, BadInputFailsWithTheReason) {
    auto r = run("validate host-fetch " + config("nvme", R"({"table": "nvme", "mechanism": "nvme"})") +
                 kSmall);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("sim.table"), std::string::npos) << r.err;
    r = run("validate host-fetch " + config("t0", "{}") + kSmall + " --threads 0");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("thread counts are 1..1024"), std::string::npos) << r.err;
    r = run("validate host-fetch " + config("tb", "{}") + " --table lots");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("--table: 'lots' is not a size"), std::string::npos) << r.err;
    r = run("validate host-fetch " + config("tk", R"({"gather_thread": 2})") + kSmall);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("gather_threads"), std::string::npos) << r.err;  // the nearest key
}

// ---- validate nvme-fetch ----

namespace {

// A table file in the working directory (the build tree): a tmpfs /tmp may refuse O_DIRECT.
std::string nvme_file(const std::string& tag) {
    return "validatecli_nvme_" + tag + "_" + std::to_string(getpid()) + ".bin";
}

bool refuses_direct_io(const engramsim::test::CliResult& r) {
    return r.status != 0 && r.err.find("cannot open for direct reads") != std::string::npos;
}

const char* kNvme = R"({"table": "nvme", "mechanism": "nvme"})";

// The small run with its table on NVMe and nothing cached in DRAM.
std::string nvme_config(const std::string& tag, const std::string& sim = kNvme) {
    const std::string path = tmp(tag) + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 4},
        "placement": {"dram_capacity": "0"}, "sim": )"
                        << sim << "}";
    return path;
}

}  // namespace

TEST(ValidateCli, NvmeFetchWritesTheReportWithTheThreeQueueingLaws) {
    const std::string dir = tmp("nvme_out"), file = nvme_file("ok");
    const auto r = run("validate nvme-fetch " + nvme_config("nvme_ok") + " --file " + file +
                       " --size 4MiB --steps 3 --queue-depth 1,3 --saturation-depth 4 -o " + dir +
                       " --plot " + dir);
    if (refuses_direct_io(r)) GTEST_SKIP() << "this file system refuses direct I/O: " << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("calibration (microbenchmarks, not the run)"), std::string::npos);
    EXPECT_NE(r.out.find("To simulate this drive, \"hardware\": {\"nvme\": {"), std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("queue depth 3: pass 1/1 over"), std::string::npos) << r.err;
    const json j = json::parse(engramsim::test::read_file(dir + "/validation.json"));
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["kind"], "engramsim.nvme_fetch_validation");
    const json& c = j["calibration"];
    EXPECT_EQ(c["io_bytes"], 4096);
    EXPECT_EQ(c["file_bytes"], 4 << 20);
    ASSERT_EQ(j["runs"].size(), 2u);
    const double L = c["read_latency_s"], iops = c["random_read_iops"], bw = c["read_bytes_per_s"];
    // The curve: depth 1 from the latency, 2 (the power of 2 below the saturation depth that is
    // not validated), the saturation depth's rate.
    const json& curve = c["iops_curve"];
    ASSERT_EQ(curve.size(), 3u);
    EXPECT_EQ(curve[0]["queue_depth"], 1);
    EXPECT_DOUBLE_EQ(curve[0]["iops"].get<double>(), 1 / L);
    EXPECT_EQ(curve[1]["queue_depth"], 2);
    EXPECT_GT(curve[1]["iops"].get<double>(), 0);
    EXPECT_EQ(curve[2]["queue_depth"], 4);
    EXPECT_DOUBLE_EQ(curve[2]["iops"].get<double>(), iops);
    const double r2 = curve[1]["iops"];
    for (const json& run : j["runs"]) {
        const double q = run["queue_depth"];
        // The model's rates are the three laws' closed forms of the calibrated parameters; the
        // curve's at depth 3: a read's time in the queue (depth / rate) half way from 2 to 4.
        EXPECT_DOUBLE_EQ(run["model_iops"].get<double>(), std::min(iops, q / L));
        EXPECT_DOUBLE_EQ(run["model_iops_linear"].get<double>(), q / (L + (q - 1) / iops));
        EXPECT_NEAR(run["model_iops_measured"].get<double>(),
                    q == 1 ? 1 / L : 3 / ((2 / r2 + 4 / iops) / 2), 1e-9 * iops);
        EXPECT_EQ(run["on_curve"], q == 1);
        // Each fetch's prediction: its unique rows at that rate, or their bytes at the bandwidth.
        const double rows = run["unique_rows"];
        EXPECT_NEAR(run["predicted_read_s"].get<double>(),
                    std::max(rows * 4096 / bw, rows / std::min(iops, q / L)),
                    1e-9 * run["predicted_read_s"].get<double>() * double(run["fetches"]));
        EXPECT_GT(run["measured_read_s"].get<double>(), 0);
        EXPECT_DOUBLE_EQ(run["measured_iops"].get<double>(),
                         rows / run["measured_read_s"].get<double>());
    }
    EXPECT_EQ(j["runs"][0]["unique_rows"], j["runs"][1]["unique_rows"]);
    EXPECT_EQ(j["resolved_config"]["sim"]["table"], "nvme");
    const std::string csv = engramsim::test::read_file(dir + "/fetches.csv");
    const size_t fetches = j["runs"][0]["fetches"];
    EXPECT_EQ(size_t(std::count(csv.begin(), csv.end(), '\n')), 1 + 2 * fetches);
    EXPECT_NE(csv.find("predicted_read_linear_s,predicted_read_measured_s\n"), std::string::npos);
    EXPECT_GT(fs::file_size(dir + "/nvme_fetch_validation.png"), 1000u);
    // The drive as hardware keys: every rate measured, each validated depth's (depth 1 among them
    // here, else 1 / latency) and the curve's.
    const json& hw = j["hardware_nvme"];
    EXPECT_EQ(hw["iops_at_depth"]["2"], std::to_string(std::llround(r2)));
    for (const json& at : c["iops_at_validated_depths"])
        EXPECT_EQ(hw["iops_at_depth"][std::to_string(at["queue_depth"].get<int>())],
                  std::to_string(std::llround(at["iops"].get<double>())));
    EXPECT_EQ(hw["iops_at_depth"]["4"], std::to_string(std::llround(iops)));
    // ... which a run config takes as they are, with the measured queueing law.
    const std::string sim_cfg = tmp("nvme_sim") + ".json";
    std::ofstream(sim_cfg) << json{{"backbone", "dense-4b"},
                                   {"engram", "paper-offload-100b"},
                                   {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 4}}},
                                   {"hardware", {{"base", "h800-pcie5"}, {"nvme", hw}}},
                                   {"placement", {{"dram_capacity", "0"}}},
                                   {"sim", {{"table", "nvme"},
                                            {"mechanism", "nvme"},
                                            {"nvme_queueing", "measured"},
                                            {"nvme_queue_depth", 3}}}}
                                  .dump();
    const auto sim_run = run("run " + sim_cfg + " --json");
    ASSERT_EQ(sim_run.status, 0) << sim_run.err;
    EXPECT_GT(json::parse(sim_run.out)["metrics"]["throughput_tok_per_s"].get<double>(), 0);
    EXPECT_TRUE(fs::exists(dir + "/plot_nvme_validation.py"));  // left beside it to rerun
    fs::remove(file);
}

TEST(ValidateCli, NvmeFetchBadInputFailsWithTheReason) {
    auto r = run("validate nvme-fetch " + config("nv_dram", "{}") + " --file " + nvme_file("x"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("sim.table: validate nvme-fetch runs a table on NVMe"), std::string::npos)
        << r.err;
    r = run("validate nvme-fetch " + config("nv_cache", kNvme) + " --file " + nvme_file("x"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("placement.dram_capacity"), std::string::npos) << r.err;
    r = run("validate nvme-fetch " + nvme_config("nv_nofile"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("--file is required"), std::string::npos) << r.err;
    r = run("validate nvme-fetch " + nvme_config("nv_q") + " --file " + nvme_file("x") +
            " --queue-depth 0");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("queue depths are 1..1024"), std::string::npos) << r.err;
    r = run("validate nvme-fetch " +
            nvme_config("nv_law",
                        R"({"table": "nvme", "mechanism": "nvme", "nvme_queueing": "lineer"})") +
            " --file " + nvme_file("x"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("linear"), std::string::npos) << r.err;  // names the valid choices
    EXPECT_FALSE(fs::exists(nvme_file("x")));  // nothing written for a refused config
}
