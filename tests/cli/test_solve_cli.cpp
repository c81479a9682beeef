// engramsim solve as a user runs it: the boundary a brute-force sweep of every value finds,
// the same simulations point for point, a resumed solve giving the same bytes, clear errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/cli_runner.h"

namespace {

using nlohmann::json;
using Result = engramsim::test::CliResult;
namespace fs = std::filesystem;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }
std::string tmp(const std::string& tag) { return engramsim::test::temp_path("solvecli", tag); }
json read_json(const std::string& path) { return json::parse(engramsim::test::read_file(path)); }

// 16 requests of the paper's workload with the paper's 100B layer in host DRAM: 0.1 s a run.
std::string small_config() {
    const std::string path = tmp("config") + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16}})";
    return path;
}

std::string num(double x) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", x);
    return buf;
}

}  // namespace

// Every gather-thread count from 1 to 16 swept, the bound set between two neighbours: the solver
// must stop on exactly those two, with exactly the sweep's numbers at every point it ran.
TEST(SolveCli, FindsTheBoundaryABruteForceSweepOfEveryValueFinds) {
    const std::string cfg = small_config(), sweep = tmp("brute"), out = tmp("solve");
    std::string values;
    for (int t = 1; t <= 16; ++t) {
        if (t > 1) values += ',';
        values += std::to_string(t);
    }
    const Result s = run("sweep " + cfg + " --axis sim.gather_threads=" + values + " -j 2 -o " + sweep);
    ASSERT_EQ(s.status, 0) << s.err;
    std::map<int, double> m;
    const json brute = read_json(sweep + "/results.json");
    for (const auto& p : brute["points"])
        m[p["axes"]["sim.gather_threads"].get<int>()] = p["summary"]["overhead_vs_table_in_hbm_pct"].get<double>();
    ASSERT_EQ(m.size(), 16u);
    for (int t = 2; t <= 16; ++t) ASSERT_LE(m[t], m[t - 1]) << "the brute force is not monotone at " << t;
    ASSERT_LT(m[6], m[5]);
    const double bound = (m[5] + m[6]) / 2;  // holds from 6 threads up

    const Result r = run("solve " + cfg + " --target 'overhead_vs_hbm < " + num(bound) +
                         "' --vary sim.gather_threads=1..16 -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("smallest sim.gather_threads"), std::string::npos) << r.out;
    const json j = read_json(out + "/solve.json");
    EXPECT_EQ(j["kind"], "engramsim.solve");
    EXPECT_EQ(j["schema_version"], 1);
    ASSERT_EQ(j["answers"].size(), 1u);
    const json& a = j["answers"][0];
    EXPECT_EQ(a["answer"], "boundary");
    EXPECT_TRUE(a["monotone"].get<bool>());
    EXPECT_EQ(a["holds_at"]["value"], 6);
    EXPECT_EQ(a["fails_at"]["value"], 5);
    EXPECT_LT(a["runs"].get<int>(), 16);  // fewer runs than the brute force
    for (const auto& p : a["points"])
        EXPECT_EQ(p["metric"].get<double>(), m[p["value"].get<int>()]) << p;  // the same simulation
    EXPECT_TRUE(fs::exists(out + "/solve.csv"));
}

// A solve killed part way (here: a round's point and the results removed) finishes with --resume
// to the same bytes; without --resume the folder is refused.
TEST(SolveCli, ResumesToTheSameBytesAndRefusesAFolderInUse) {
    const std::string cfg = small_config(), out = tmp("resume");
    const std::string args = "solve " + cfg + " --target 'overhead_vs_hbm < 0.05%' --vary sim.gather_threads=1..16 " +
                             "--vary hardware=h800-pcie5,h200 -j 2 -o " + out;
    ASSERT_EQ(run(args).status, 0);
    const std::string first = engramsim::test::read_file(out + "/solve.json");
    fs::remove(out + "/solve.json");
    ASSERT_TRUE(fs::remove(out + "/combination-001/round-01/points/00000.json"));
    const Result again = run(args);
    EXPECT_NE(again.status, 0);
    EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
    const Result resumed = run(args + " --resume");
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    EXPECT_EQ(engramsim::test::read_file(out + "/solve.json"), first);
}

TEST(SolveCli, SaysWhenTheTargetHoldsOverTheWholeRange) {
    const Result r = run("solve " + small_config() + " --target 'overhead < 50%' --vary sim.gather_threads=1..4 -o " +
                         tmp("holds"));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("holds over the whole range"), std::string::npos) << r.out;
}

TEST(SolveCli, RefusesBadInputClearly) {
    const std::string cfg = small_config();
    struct Case {
        std::string args, expect;
    } cases[] = {
        {"--target 'overhed < 1%' --vary sim.gather_threads=1..16", "did you mean overhead"},
        {"--target 'overhead < 1%' --vary sim.gather_thread=1..16", "did you mean sim.gather_threads"},
        {"--target 'overhead < 1%' --vary sim.gather_threads=16..1", "lower to a higher"},
        {"--target 'overhead < 1%' --vary sim.gather_threads=1,2", "KEY=LO..HI"},
        {"--target 'overhead < 1%' --vary sim.gather_threads=1..4 --vary sim.nvme_queue_depth=1..4", "one key"},
        {"--target 'overhead ~ 1%' --vary sim.gather_threads=1..16", "METRIC OP BOUND"},
    };
    for (const auto& c : cases) {
        const Result r = run("solve " + cfg + " " + c.args + " -o " + tmp("bad"));
        EXPECT_NE(r.status, 0) << c.args;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << "\n" << r.err;
    }
}

// A solve study of one's own (engramsim study run FILE.json): one solve per target over the
// listed combinations, each answer the one engramsim solve gives for that target alone.
TEST(SolveCli, ASolveStudyAnswersEachTargetAsSolveDoes) {
    const std::string study = tmp("study") + ".json", out = tmp("study_out");
    std::ofstream(study) << R"({"name": "threads", "description": "fewest gather threads",
        "base": {"backbone": "dense-4b", "engram": "paper-offload-100b",
                 "workload": {"base": "nano-vllm-512", "num_requests": 16}},
        "solve": {"targets": ["overhead_vs_hbm < 0.05%", "overhead_vs_hbm < 0.1%"],
                  "vary": "sim.gather_threads=1..16"},
        "axes": [{"key": "hardware", "values": ["h800-pcie5", "h200"]}]})";
    const Result r = run("study run " + study + " -j 2 -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = read_json(out + "/results.json");
    EXPECT_EQ(j["kind"], "engramsim.solve_study");
    ASSERT_EQ(j["rows"].size(), 2u);  // the two machines
    const char* targets[] = {"overhead_vs_hbm < 0.05%", "overhead_vs_hbm < 0.1%"};
    for (int t = 0; t < 2; ++t) {
        const std::string alone = tmp("alone") + std::to_string(t);
        const Result s = run("solve " + small_config() + " --target '" + targets[t] +
                             "' --vary sim.gather_threads=1..16 --vary hardware=h800-pcie5,h200 -j 2 -o " + alone);
        ASSERT_EQ(s.status, 0) << s.err;
        const json a = read_json(alone + "/solve.json");
        for (size_t c = 0; c < 2; ++c) {
            const json& in_study = j["rows"][c]["answers"][t]["answer"];
            EXPECT_EQ(in_study["holds_at"]["value"], a["answers"][c]["holds_at"]["value"]) << targets[t] << " " << c;
            EXPECT_EQ(in_study["fails_at"]["value"], a["answers"][c]["fails_at"]["value"]) << targets[t] << " " << c;
            EXPECT_TRUE(in_study["holds_at"].contains("summary"));  // the run's summary rides along
        }
    }
    EXPECT_NE(r.out.find("overhead_vs_hbm < 0.1%"), std::string::npos) << r.out;
}
