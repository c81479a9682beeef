// engramsim validate host-fetch as a user runs it: files, table, errors. The measured times are
// this machine's and are never asserted; what follows from them is (tests/unit/test_host_fetch).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

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
                       " --threads 1,2 --steps 5 -o " + dir);
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
