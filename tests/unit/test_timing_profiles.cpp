// Measured kernel profiles feed the simulator: with sim.profiles set, the kernels a profile
// covers take the profile's (interpolated) time instead of the roofline's, and nothing else moves.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

// A profile of the Engram gather (staged rows -> each token's rows) that takes `seconds` at any
// token count, for the paper-offload-100b row shape (16 heads x 160 B).
std::string gather_profile_dir(const std::string& name, double seconds) {
    const auto dir = std::filesystem::path(::testing::TempDir()) / name;
    std::filesystem::create_directories(dir);
    nlohmann::json points = nlohmann::json::array();
    for (double tokens : {1.0, 1e6})
        points.push_back({{"dims", {{"tokens", tokens}, {"heads", 16.0}, {"row_bytes", 160.0}}},
                          {"dtype", "bf16"},
                          {"bytes", 2 * tokens * 16 * 160},
                          {"flops", 0.0},
                          {"median_s", seconds}});
    const nlohmann::json profile = {
        {"schema", "engramsim.kernel_profile"},
        {"version", 1},
        {"kernel", "engram_gather"},
        {"variant", "test"},
        {"provenance", {{"device_name", "test device"}}},
        {"points", points}};
    std::ofstream(dir / "engram_gather.test.json") << profile.dump();
    return dir.string();
}

Plan plan_with(const std::string& profiles) {
    return make_plan(resolve_run_config(
        {{"backbone", "dense-4b"},
         {"engram", "paper-offload-100b"},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 16}}},
         {"sim", {{"schedule", "oracle"}, {"profiles", profiles}}}},
        "test"));
}

}  // namespace

TEST(TimingProfiles, ProfiledKernelTakesTheProfileTime) {
    const Plan one_ms = plan_with(gather_profile_dir("p1", 1e-3));
    const Plan three_ms = plan_with(gather_profile_dir("p3", 3e-3));
    const Plan roofline = plan_with("");
    ASSERT_EQ(one_ms.steps.size(), three_ms.steps.size());
    ASSERT_GT(one_ms.steps.size(), 50u);
    for (size_t i = 0; i < one_ms.steps.size(); ++i) {
        // Exactly the gather's difference; the backbone is untouched.
        EXPECT_NEAR(three_ms.steps[i].engram_gpu_s[0] - one_ms.steps[i].engram_gpu_s[0], 2e-3,
                    1e-12);
        EXPECT_DOUBLE_EQ(three_ms.steps[i].layer_s, roofline.steps[i].layer_s);
        EXPECT_GT(one_ms.steps[i].engram_gpu_s[0], roofline.steps[i].engram_gpu_s[0]);
    }
    // The free (oracle) fetch leaves the GPU stream as the critical path: the makespan moves
    // by the same 2 ms per step.
    const double d = analytic(three_ms).makespan_s - analytic(one_ms).makespan_s;
    EXPECT_NEAR(d, 2e-3 * double(one_ms.steps.size()), 1e-9);
}

TEST(TimingProfiles, MissingFolderIsAConfigError) {
    try {
        plan_with("/nonexistent/profiles");
        FAIL() << "expected an error";
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("sim.profiles: profiles: no folder"),
                  std::string::npos)
            << e.what();
    }
}
