// engramsim run with tensor parallelism as a user runs it: a TP = 4 config on an 8-GPU h100-sxm
// prints the degree and each GPU's link utilisation and writes them to results.json; invalid
// degrees fail on stderr naming sim.tensor_parallel.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <tuple>

#include "tests/cli_runner.h"

using engramsim::test::run_engramsim;

namespace {
std::string write_config(const std::string& name, int tp, int count = 8) {
    const std::string path =
        ::testing::TempDir() + "tp_cli_" + name + "_" + std::to_string(getpid()) + ".json";
    std::ofstream(path) << nlohmann::json{
        {"backbone", "dense-8b"},
        {"engram", "paper-offload-100b"},
        {"hardware", {{"base", "h100-sxm"}, {"gpu", {{"count", count}}}}},
        {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 16}}},
        {"sim", {{"tensor_parallel", tp}, {"collective_comms", "coalesced"}}}};
    return path;
}
}  // namespace

TEST(TensorParallelCli, RunPrintsTheDegreeAndPerGpuLinks) {
    const std::string cfg = write_config("ok", 4);
    const std::string dir = ::testing::TempDir() + "tp_cli_out_" + std::to_string(getpid());
    const auto r = run_engramsim("run " + cfg + " -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("tensor parallel (GPUs)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("gpu3 host h2d / NVLink up"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("pcie_switch1.h2d utilisation"), std::string::npos) << r.out;
    const auto j = nlohmann::json::parse(std::ifstream(dir + "/results.json"));
    EXPECT_EQ(j["simulated"]["tensor_parallel"], 4);
    EXPECT_EQ(j["metrics"]["tensor_parallel"], 4);
    EXPECT_EQ(j["metrics"]["link_utilization_per_gpu"].size(), 4u);
    EXPECT_GT(j["metrics"]["link_utilization_per_link"]["nvlink2.up"].get<double>(), 0);
}

TEST(TensorParallelCli, InvalidDegreesNameTheKey) {
    for (auto [name, tp, count] : {std::tuple{"zero", 0, 8}, std::tuple{"many", 2, 1},
                                   std::tuple{"uneven", 3, 8}}) {
        const auto r = run_engramsim("run " + write_config(name, tp, count));
        EXPECT_EQ(r.status, 1) << name;
        EXPECT_TRUE(r.out.empty()) << name;
        EXPECT_NE(r.err.find("sim.tensor_parallel"), std::string::npos) << name << ": " << r.err;
    }
}
