// engramsim sweep and the spec-file studies as a user runs them: results agree with
// engramsim run point for point, a killed sweep resumes to the same bytes, errors are clear.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/cli_runner.h"

namespace {

using nlohmann::json;
using Result = engramsim::test::CliResult;
namespace fs = std::filesystem;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }

std::string tmp(const std::string& tag) { return engramsim::test::temp_path("sweepcli", tag); }

std::string slurp(const std::string& path) { return engramsim::test::read_file(path); }

// 16 requests of the paper's workload with the paper's 100B layer.
std::string small_config() {
    const std::string path = tmp("config") + ".json";
    std::ofstream(path) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16}})";
    return path;
}

const char* kAxes = " --axis sim.schedule=none,layer-ahead:0 --axis sim.gather_threads=1,16";

}  // namespace

TEST(SweepCli, EachPointIsWhatEngramsimRunGives) {
    const std::string cfg = small_config(), dir = tmp("a");
    Result r = run("sweep " + cfg + kAxes + " -o " + dir + " -j 2");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("sim.schedule"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("[4/4] "), std::string::npos) << r.err;  // progress on stderr
    const json res = json::parse(slurp(dir + "/results.json"));
    EXPECT_EQ(res["schema_version"], 1);
    EXPECT_EQ(res["units"]["summary"]["stall_s"], "s");
    ASSERT_EQ(res["points"].size(), 4u);
    // Point 0 (schedule none, 1 gather thread) through engramsim run, with the same two keys.
    const std::string one = tmp("one") + ".json";
    std::ofstream(one) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "nano-vllm-512", "num_requests": 16},
        "sim": {"schedule": "none", "gather_threads": 1}})";
    r = run("run " + one + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json single = json::parse(r.out);
    const json& p0 = res["points"][0];
    EXPECT_EQ(p0["axes"]["sim.schedule"], "none");
    EXPECT_EQ(p0["metrics"], single["metrics"]);
    for (const char* k : {"throughput_tok_per_s", "table_in_hbm_tok_per_s", "no_engram_tok_per_s",
                          "overhead_vs_table_in_hbm_pct", "overhead_vs_no_engram_pct"})
        EXPECT_EQ(p0["summary"][k], single["comparison"][k]) << k;
    // The fetch is exposed with schedule none and one gather thread: the point must show it.
    EXPECT_GT(p0["summary"]["stall_s"].get<double>(), 0);
    // The CSV has one row per point and the units in its header.
    const std::string csv = slurp(dir + "/results.csv");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
    EXPECT_NE(csv.find("stall_s [s]"), std::string::npos);
}

TEST(SweepCli, PointsThatDifferInPlacementShareTheirReferences) {
    // Real text (rows repeat, so an HBM cache hits), 16 requests.
    const std::string cfg = tmp("refs_cfg") + ".json", dir = tmp("refs");
    std::ofstream(cfg) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "handbook-en", "num_requests": 16}})";
    Result r = run("sweep " + cfg + " --axis placement.hbm_capacity=0,20000 -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    size_t refs = 0;
    for (const auto& e : fs::directory_iterator(dir + "/references")) refs += e.is_regular_file();
    EXPECT_EQ(refs, 2u);  // one no-Engram run and one table-in-HBM run serve both points
    const json res = json::parse(slurp(dir + "/results.json"));
    // engramsim run of point 1 simulates its references with its own placement section: the
    // shared references must give the same numbers.
    const std::string one = tmp("refs_one") + ".json";
    std::ofstream(one) << R"({"backbone": "dense-4b", "engram": "paper-offload-100b",
        "workload": {"base": "handbook-en", "num_requests": 16},
        "placement": {"hbm_capacity": "20000"}})";
    r = run("run " + one + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json single = json::parse(r.out);
    const json& p1 = res["points"][1];
    EXPECT_GT(p1["summary"]["rows_from_hbm"].get<uint64_t>(), 0u);
    for (const char* k : {"throughput_tok_per_s", "table_in_hbm_tok_per_s", "no_engram_tok_per_s",
                          "overhead_vs_table_in_hbm_pct", "overhead_vs_no_engram_pct"})
        EXPECT_EQ(p1["summary"][k], single["comparison"][k]) << k;
}

TEST(SweepCli, AKilledSweepResumesToTheSameBytes) {
    const std::string cfg = small_config(), clean = tmp("clean"), dir = tmp("killed");
    ASSERT_EQ(run("sweep " + cfg + kAxes + " -o " + clean).status, 0);

    // Kill the sweep (and its workers) once its first point is on disk.
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        const std::string cmd = std::string(ENGRAMSIM_BINARY) + " sweep " + cfg + kAxes + " -o " +
                                dir + " >/dev/null 2>&1";
        execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    for (int i = 0; i < 6000 && !fs::exists(dir + "/points/00000.json"); ++i) usleep(10000);
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(fs::exists(dir + "/points/00000.json"));
    // What is on disk is whole: every point file parses.
    for (const auto& e : fs::directory_iterator(dir + "/points")) {
        if (e.path().extension() == ".json") {
            EXPECT_TRUE(json::accept(slurp(e.path().string()))) << e.path();
        }
    }

    Result r = run("sweep " + cfg + kAxes + " -o " + dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("already holds a sweep; pass --resume"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("points into"), std::string::npos) << r.err;  // no banner for a refusal
    size_t kept = 0;
    for (const auto& e : fs::directory_iterator(dir + "/points"))
        kept += e.path().extension() == ".json";
    r = run("sweep " + cfg + kAxes + " -o " + dir + " --resume");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("4 points into " + dir + "/ (" + std::to_string(kept) +
                         " done before, kept)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find("[1/4]"), std::string::npos) << r.err;  // point 0 was not run again
    EXPECT_EQ(slurp(dir + "/results.csv"), slurp(clean + "/results.csv"));
    EXPECT_EQ(slurp(dir + "/results.json"), slurp(clean + "/results.json"));

    r = run("sweep " + cfg + " --axis sim.schedule=none -o " + dir + " --resume");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("holds a different sweep"), std::string::npos) << r.err;
}

TEST(SweepCli, BadAxesFailBeforeAnythingRuns) {
    const std::string cfg = small_config(), dir = tmp("bad");
    Result r = run("sweep " + cfg + " --axis sim.tabel=nvme -o " + dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_TRUE(r.out.empty());
    EXPECT_NE(r.err.find("sim.tabel: unknown key; did you mean table?"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir));
    r = run("sweep " + cfg + " --axis placement.hbm_capacity=0,lots -o " + dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sweep point 1 (placement.hbm_capacity=lots)"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir));
    r = run("sweep " + cfg + " -o " + dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("give at least one --axis"), std::string::npos) << r.err;
}

TEST(SweepCli, AFailedPointIsReportedAndTheOthersKept) {
    const std::string cfg = small_config(), dir = tmp("fail");
    // Remote memory is modeled for one GPU only: the TP = 2 point fails when it is planned.
    Result r = run("sweep " + cfg +
                   " --axis sim.table=remote-dram --axis sim.mechanism=remote-gather"
                   " --axis sim.tensor_parallel=1,2 --no-references -o " + dir);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("1 of 2 points failed"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("remote memory is modeled for one GPU only"), std::string::npos) << r.out;
    const json res = json::parse(slurp(dir + "/results.json"));
    EXPECT_GT(res["points"][0]["summary"]["throughput_tok_per_s"].get<double>(), 0);
    EXPECT_FALSE(res["points"][0]["summary"].contains("no_engram_tok_per_s"));
    EXPECT_NE(res["points"][1]["error"].get<std::string>().find("sim.tensor_parallel"),
              std::string::npos);
}

TEST(SweepCli, SweepFilesAndStudies) {
    const std::string spec = tmp("spec") + ".json", dir = tmp("spec_out");
    std::ofstream(spec) << R"({"name": "threads", "base": ")" + small_config() + R"(",
        "axes": [{"key": "sim.gather_threads", "values": [1, 4]}], "references": false})";
    Result r = run("sweep " + spec + " -o " + dir + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json res = json::parse(r.out);
    EXPECT_EQ(res["sweep"]["name"], "threads");
    EXPECT_EQ(res, json::parse(slurp(dir + "/results.json")));

    r = run("study list");
    ASSERT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("paper-table4"), std::string::npos);
    EXPECT_NE(r.out.find("zipf-hierarchy"), std::string::npos);
    r = run("study run zipf-hierarchy --list");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("zipf-hierarchy: 80 points"), std::string::npos) << r.out;
    r = run("study run cache-policy --list");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("cache-policy: 72 points"), std::string::npos) << r.out;
    r = run("study run engram-budget --list");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("engram-budget: 72 points"), std::string::npos) << r.out;
    r = run("study run engram-deployment --list");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("engram-deployment: 36 points"), std::string::npos) << r.out;
    r = run("study run zipf-hierarchi");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("did you mean zipf-hierarchy?"), std::string::npos) << r.err;
    // The study the binary carries is the file in studies/.
    EXPECT_EQ(json::parse(slurp(std::string(ENGRAMSIM_SOURCE_DIR) +
                                "/studies/zipf-hierarchy/study.json"))["axes"].size(),
              4u);
}

TEST(SweepCli, ZippedAxesVaryKeysTogether) {
    // moe-27b has four residual branches, so its Engram layer needs hc_mult 4: the two keys must
    // move together, which a zipped axis does (two separate axes would make invalid points).
    const std::string dir = tmp("zip");
    Result r = run("sweep " + small_config() +
                   R"( --axis 'backbone,engram.hc_mult=[["dense-4b",1],["moe-27b",4]]')" +
                   " --no-references --plot -o " + dir);
    ASSERT_EQ(r.status, 0) << r.err;
    const json res = json::parse(slurp(dir + "/results.json"));
    ASSERT_EQ(res["points"].size(), 2u);
    EXPECT_EQ(res["points"][1]["axes"]["backbone"], "moe-27b");
    EXPECT_EQ(res["points"][1]["axes"]["engram.hc_mult"], 4);
    EXPECT_GT(res["points"][1]["summary"]["throughput_tok_per_s"].get<double>(), 0);
    EXPECT_TRUE(fs::exists(dir + "/sweep.png"));
    const std::string csv = slurp(dir + "/results.csv");
    EXPECT_EQ(csv.substr(0, csv.find(",throughput")), "index,backbone,engram.hc_mult");
    r = run("sweep " + small_config() +
            R"( --axis 'backbone,engram.hc_mult=[["dense-4b",1],["moe-27b",4]]' --axis backbone=dense-8b -o )" +
            tmp("zip2"));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("backbone is already varied"), std::string::npos) << r.err;
}
