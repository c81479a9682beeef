// `engramsim profile` as a user runs it: one JSON per kernel with provenance and statistics, the
// CPU fallback announced, bad kernel names rejected with the list. Run with --cpu so the result
// does not depend on whether this machine has a GPU.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/kernel_profiles.h"

namespace fs = std::filesystem;

namespace {

struct Result {
    int status;
    std::string out, err;
};

Result run(const std::string& args, const fs::path& dir) {
    const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
    const std::string cmd = std::string(ENGRAMSIM_BINARY) + " " + args + " >" + out.string() +
                            " 2>" + err.string();
    const int rc = std::system(cmd.c_str());
    auto slurp = [](const fs::path& p) {
        std::ifstream in(p);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    return {WEXITSTATUS(rc), slurp(out), slurp(err)};
}

}  // namespace

TEST(ProfileCli, WritesOneProfilePerKernelWithProvenance) {
    const fs::path dir = fs::temp_directory_path() / ("engramsim_profile_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const fs::path prof = dir / "profiles";
    const Result r = run("profile --cpu --kernels moe_align,router_topk --samples 3 -o " + prof.string(), dir);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("memcpy ceiling"), std::string::npos) << r.err;
    const fs::path align = prof / "moe_align.cpu-deterministic.json";
    ASSERT_TRUE(fs::exists(align)) << r.out;
    ASSERT_TRUE(fs::exists(prof / "router_topk.cpu.json"));
    EXPECT_FALSE(fs::exists(prof / "engram_gate.cpu.json"));  // not asked for
    std::ifstream in(align);
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j.at("schema"), "engramsim.kernel_profile");
    EXPECT_EQ(j.at("provenance").at("device_kind"), "cpu");
    EXPECT_EQ(j.at("provenance").at("timing"), "cpu_steady_clock");
    EXPECT_FALSE(j.at("provenance").at("commit").get<std::string>().empty());
    EXPECT_FALSE(j.at("provenance").at("date_utc").get<std::string>().empty());
    EXPECT_GT(j.at("ceilings").at("copy_bytes_per_s").get<double>(), 0);
    ASSERT_EQ(j.at("points").size(), 3u);
    for (const auto& p : j.at("points")) {
        EXPECT_EQ(p.at("samples"), 3);
        EXPECT_LE(p.at("min_s").get<double>(), p.at("median_s").get<double>());
        EXPECT_LE(p.at("median_s").get<double>(), p.at("max_s").get<double>());
    }
    // What the profiler wrote, the cost model's lookup reads.
    const auto kp = engramsim::KernelProfiles::load_dir(prof.string());
    EXPECT_TRUE(kp.seconds({.kernel = "moe_align", .dims = {{"tokens", 2000}, {"experts", 72}, {"top_k", 6}}}));

    const Result bad = run("profile --cpu --kernels moe_algn -o " + prof.string(), dir);
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.err.find("unknown kernel 'moe_algn'; known: engram_hash"), std::string::npos) << bad.err;
    fs::remove_all(dir);
}
