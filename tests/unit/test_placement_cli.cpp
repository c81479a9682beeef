// engramsim replay and trace export as a user runs them: exact counts through the command
// against the library, the exported sequence replaying to the same numbers, errors on stderr.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>


#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"
#include "tests/cli_runner.h"

using namespace engramsim::placement;

namespace {

using Result = engramsim::test::CliResult;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }

std::string write_ids(const std::string& name, const std::vector<uint64_t>& ids) {
    const std::string path = ::testing::TempDir() + name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 8));
    return path;
}

std::vector<uint64_t> random_ids(uint64_t seed, size_t n) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<uint64_t> v;
    for (size_t i = 0; i < n; ++i) v.push_back(uint64_t(std::pow(u(rng), 2.0) * 5000) * 977 + 3);
    return v;
}

}  // namespace

TEST(PlacementCli, ReplayIdsGivesTheLibrarysExactCountsAsVersionedJson) {
    const auto ids = random_ids(3, 20000);
    const std::string path = write_ids("placement_ids.u64", ids);
    const DenseTrace tr = densify_ids(ids);
    for (const std::string policy : {"lru", "sieve", "s3fifo", "belady"}) {
        Result r =
            run("replay --ids " + path + " --policy " + policy + " --capacity 10,250 --json");
        ASSERT_EQ(r.status, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["schema_version"], 1);
        EXPECT_EQ(j["units"]["capacity"], "rows");
        EXPECT_EQ(j["input"]["requests"], ids.size());
        ASSERT_EQ(j["runs"].size(), 2u);
        const auto next = next_uses(tr.requests, tr.universe());
        for (size_t k = 0; k < 2; ++k) {
            const uint64_t cap = k == 0 ? 10 : 250;
            PolicyContext ctx{
                .capacity_rows = cap, .universe = tr.universe(), .keys = tr.keys, .next_use = next};
            const uint64_t misses = make_policy(policy, ctx)->run(tr.requests, 0);
            const auto& t = j["runs"][k]["total"];
            EXPECT_EQ(t["requests"].get<uint64_t>() - t["hbm_hits"].get<uint64_t>(), misses)
                << policy << " " << cap;
            EXPECT_EQ(j["runs"][k]["hbm_capacity_rows"], cap);
        }
    }
}

TEST(PlacementCli, MrcPrintsTheOnePassCurve) {
    const auto ids = random_ids(4, 5000);
    const std::string path = write_ids("placement_mrc.u64", ids);
    const DenseTrace tr = densify_ids(ids);
    Result r = run("replay --ids " + path + " --mrc --mrc-points 10 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["mrc"]["points"].size(), 10u);
    for (const auto& p : j["mrc"]["points"]) {
        PolicyContext ctx{.capacity_rows = p["capacity_rows"], .universe = tr.universe()};
        EXPECT_EQ(p["misses"].get<uint64_t>(), make_policy("lru", ctx)->run(tr.requests, 0));
    }
    // With one capacity, the run beside the curve is read off it: the replay's own numbers.
    for (const std::string cap : {"0", "37", "1000000"}) {
        Result with = run("replay --ids " + path + " --mrc --mrc-points 10 --capacity " + cap + " --json");
        Result alone = run("replay --ids " + path + " --capacity " + cap + " --json");
        ASSERT_EQ(with.status, 0) << with.err;
        ASSERT_EQ(alone.status, 0) << alone.err;
        EXPECT_EQ(nlohmann::json::parse(with.out)["runs"], nlohmann::json::parse(alone.out)["runs"])
            << cap;
        EXPECT_EQ(nlohmann::json::parse(with.out)["mrc"]["points"].size(), 10u);
    }
    Result s = run("replay --ids " + path + " --policy sieve --mrc --capacity 5,50,500 --json");
    ASSERT_EQ(s.status, 0) << s.err;
    const auto k = nlohmann::json::parse(s.out);
    ASSERT_EQ(k["mrc"]["points"].size(), 3u);
    PolicyContext ctx{.capacity_rows = 50, .universe = tr.universe()};
    EXPECT_EQ(k["mrc"]["points"][1]["misses"].get<uint64_t>(),
              make_policy("sieve", ctx)->run(tr.requests, 0));
}

TEST(PlacementCli, PlotWritesTheJsonTheCurveAsCsvAndFigures) {
    const auto ids = random_ids(6, 5000);
    const std::string path = write_ids("placement_plot.u64", ids);
    const std::string dir = ::testing::TempDir() + "placement_plot_" + std::to_string(getpid());
    Result r = run("replay --ids " + path + " --mrc --mrc-points 7 --plot " + dir + " --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto printed = nlohmann::json::parse(r.out);
    std::ifstream in(dir + "/replay.json");
    ASSERT_TRUE(in) << "no replay.json";
    EXPECT_EQ(nlohmann::json::parse(in), printed);
    for (const char* png : {"/mrc.png"}) {
        std::ifstream f(dir + png, std::ios::binary);
        char magic[8] = {};
        f.read(magic, 8);
        EXPECT_EQ(std::string(magic + 1, 3), "PNG") << png;
    }
    std::ifstream csv(dir + "/mrc.csv");
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line, "policy,capacity_rows,capacity_bytes_B,requests,misses,miss_ratio");
    size_t i = 0;
    for (; std::getline(csv, line); ++i) {
        ASSERT_LT(i, printed["mrc"]["points"].size());
        const auto& p = printed["mrc"]["points"][i];
        EXPECT_EQ(line, "lru," + std::to_string(p["capacity_rows"].get<uint64_t>()) + "," +
                            p["capacity_bytes"].dump() + "," + std::to_string(ids.size()) + "," +
                            std::to_string(p["misses"].get<uint64_t>()) + "," +
                            p["miss_ratio"].dump());
    }
    EXPECT_EQ(i, 7u);
}

TEST(PlacementCli, ExportedSequenceReplaysToTheSameCounts) {
    const std::string wl = ::testing::TempDir() + "placement_workload.json";
    std::ofstream(wl) << R"({"workload": {"kind": "nano-vllm", "num_requests": 4, "seed": 1,
        "prompt_len": {"dist": "uniform", "min": 20, "max": 40},
        "output_len": {"dist": "uniform", "min": 20, "max": 30}}})";
    const std::string u64 = ::testing::TempDir() + "placement_export.u64";
    const std::string og = ::testing::TempDir() + "placement_export.oracleGeneral";
    Result e = run("trace export --engram demo-v1 --workload " + wl + " --format u64 -o " + u64);
    ASSERT_EQ(e.status, 0) << e.err;
    Result o =
        run("trace export --engram demo-v1 --workload " + wl + " --format oracleGeneral -o " + og);
    ASSERT_EQ(o.status, 0) << o.err;
    Result a = run("replay --engram demo-v1 --workload " + wl + " --capacity 300 --json");
    Result b = run("replay --ids " + u64 + " --capacity 300 --json");
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
    EXPECT_EQ(ja["runs"][0]["total"]["hbm_hits"], jb["runs"][0]["total"]["hbm_hits"]);
    EXPECT_EQ(ja["runs"][0]["total"]["requests"], jb["runs"][0]["total"]["requests"]);
    // oracleGeneral: 24-byte records, same ids, next access pointing at the next same id
    std::ifstream in(og, std::ios::binary | std::ios::ate);
    const auto bytes = uint64_t(in.tellg());
    const uint64_t n = ja["runs"][0]["total"]["requests"];
    ASSERT_EQ(bytes, n * 24);
    in.seekg(0);
    std::vector<char> buf(bytes);
    in.read(buf.data(), std::streamsize(bytes));
    std::vector<uint64_t> ids(n);
    std::ifstream(u64, std::ios::binary)
        .read(reinterpret_cast<char*>(ids.data()), std::streamsize(n * 8));
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t id;
        int64_t nv;
        uint32_t size;
        std::memcpy(&id, buf.data() + i * 24 + 4, 8);
        std::memcpy(&size, buf.data() + i * 24 + 12, 4);
        std::memcpy(&nv, buf.data() + i * 24 + 16, 8);
        ASSERT_EQ(id, ids[i]);
        EXPECT_EQ(size, 128u);  // demo-v1: 64 bf16 values
        if (nv >= 0) {
            ASSERT_EQ(ids[uint64_t(nv)], id);
        }
    }
}

TEST(PlacementCli, ErrorsNameWhatIsWrong) {
    const std::string path = write_ids("placement_err.u64", random_ids(5, 100));
    Result r = run("replay --ids " + path + " --policy lur");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown policy 'lur'; known: belady, lfu, lru"), std::string::npos)
        << r.err;
    Result c = run("replay --ids " + path + " --capacity 10XB");
    EXPECT_EQ(c.status, 1);
    EXPECT_NE(c.err.find("capacity '10XB'"), std::string::npos) << c.err;
    Result n = run("replay");
    EXPECT_EQ(n.status, 1);
    EXPECT_NE(n.err.find("give exactly one input"), std::string::npos) << n.err;
    Result d = run("replay --ids " + path + " --dram 10 --dram-policy belady");
    EXPECT_EQ(d.status, 1);
    EXPECT_NE(d.err.find("cannot manage DRAM"), std::string::npos) << d.err;
}

// replay --config takes the placement section of a run config (or a file with only that
// section); the same settings given as flags print the same bytes, and flags given explicitly
// override the file's keys.
TEST(PlacementCli, ConfigFileEqualsTheSameFlagsAndFlagsOverrideIt) {
    const std::string wl = ::testing::TempDir() + "placement_config_workload.json";
    std::ofstream(wl) << R"({"workload": {"kind": "nano-vllm", "num_requests": 4, "seed": 2,
        "prompt_len": {"dist": "uniform", "min": 20, "max": 40},
        "output_len": {"dist": "uniform", "min": 20, "max": 30}}})";
    const std::string cfg = ::testing::TempDir() + "placement_config_run.json";
    std::ofstream(cfg) << R"({"backbone": "dense-4b",
        "sim": {"table": "nvme", "mechanism": "nvme"},
        "placement": {"hbm_capacity": "300", "policy": "sa-lru",
                      "policy_options": {"ways": "4", "lookahead": "2"},
                      "dram_capacity": "2000 rows", "dram_policy": "s3fifo",
                      "tiers": "exclusive"}})";
    const std::string input = "replay --engram demo-v1 --workload " + wl + " --json ";
    Result a = run(input + "--config " + cfg);
    Result b = run(input +
                   "--capacity 300 --policy sa-lru --policy-options ways=4,lookahead=2 "
                   "--dram '2000 rows' --dram-policy s3fifo --tiers exclusive");
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
    const auto j = nlohmann::json::parse(a.out);
    EXPECT_EQ(j["placement"],
              nlohmann::json({{"hbm_capacity", "300"},
                              {"policy", "sa-lru"},
                              {"policy_options", {{"ways", "4"}, {"lookahead", "2"}}},
                              {"dram_capacity", "2000 rows"},
                              {"dram_policy", "s3fifo"},
                              {"dram_policy_options", nlohmann::json::object()},
                              {"tiers", "exclusive"},
                              {"profile_fraction", 1.0}}));
    EXPECT_EQ(j["runs"][0]["hbm_capacity_rows"], 300);
    EXPECT_GT(j["runs"][0]["total"]["ssd_rows"].get<uint64_t>(), 0u);  // the DRAM cache is used
    EXPECT_GT(j["runs"][0]["total"]["demoted_rows"].get<uint64_t>(), 0u);  // exclusive

    // a file with only the placement section; explicit flags win over its keys
    const std::string only = ::testing::TempDir() + "placement_config_only.json";
    std::ofstream(only) << R"({"placement": {"hbm_capacity": "1%", "policy": "sa-lfu",
        "policy_options": {"ways": "8"}, "dram_capacity": "2000 rows", "tiers": "exclusive"}})";
    Result c = run(input + "--config " + only + " --capacity 120 --policy lru --policy-options "
                           "lookahead=1 --tiers inclusive");
    Result d = run(input + "--capacity 120 --policy lru --policy-options lookahead=1 "
                           "--dram '2000 rows' --tiers inclusive");
    ASSERT_EQ(c.status, 0) << c.err;
    ASSERT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(c.out, d.out);

    // the default capacity of a placement section is 0 (no HBM cache), not replay's 1%
    const std::string empty = ::testing::TempDir() + "placement_config_empty.json";
    std::ofstream(empty) << R"({"placement": {}})";
    Result e = run(input + "--config " + empty);
    ASSERT_EQ(e.status, 0) << e.err;
    EXPECT_EQ(nlohmann::json::parse(e.out)["runs"][0]["hbm_capacity_rows"], 0);
}

TEST(PlacementCli, ConfigErrorsNameTheFileAndThePath) {
    const std::string ids = write_ids("placement_config_err.u64", random_ids(6, 100));
    auto with = [&](const std::string& name, const std::string& text) {
        const std::string path = ::testing::TempDir() + name;
        std::ofstream(path) << text;
        return run("replay --ids " + ids + " --config " + path);
    };
    Result k = with("pc_key.json", R"({"placement": {"hbm_capcity": "10"}})");
    EXPECT_EQ(k.status, 1);
    EXPECT_NE(k.err.find("pc_key.json: placement.hbm_capcity: unknown key; did you mean "
                         "hbm_capacity?"),
              std::string::npos)
        << k.err;
    Result c = with("pc_cap.json", R"({"placement": {"dram_capacity": "2 GiBs"}})");
    EXPECT_EQ(c.status, 1);
    EXPECT_NE(c.err.find("pc_cap.json: placement.dram_capacity: capacity '2 GiBs'"),
              std::string::npos)
        << c.err;
    Result n = with("pc_none.json", R"({"sim": {}})");
    EXPECT_EQ(n.status, 1);
    EXPECT_NE(n.err.find("pc_none.json: has no \"placement\" section"), std::string::npos)
        << n.err;
    Result s = with("pc_static.json",
                    R"({"placement": {"policy": "static", "policy_options": {"lookahead": "1"}}})");
    EXPECT_EQ(s.status, 1);
    EXPECT_NE(s.err.find("lookahead does not apply"), std::string::npos) << s.err;
}
