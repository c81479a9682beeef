// The sweep engine (sim/sweep/sweep.h) with stand-in evaluators: axis parsing, point order, spec
// errors, and what a crash, an error or an interruption leaves behind.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/config.h"
#include "sim/sweep/sweep.h"

namespace {

using nlohmann::json;
using engramsim::sim::SweepSpec;
namespace fs = std::filesystem;

std::string fresh_dir(const std::string& tag) {
    const std::string d = ::testing::TempDir() + "sweep_" + tag + "_" + std::to_string(getpid());
    fs::remove_all(d);
    return d;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

SweepSpec small_spec() {
    return engramsim::sim::parse_sweep_spec(
        json::parse(R"({"name": "t", "base": {"backbone": "dense-4b"},
                        "axes": [{"key": "sim.gather_threads", "values": [1, 2, 3]},
                                 {"key": "sim.schedule", "values": ["none", "oracle"]}]})"),
        "test");
}

// A stand-in for the simulator: a number made from the point's config, so every result can be
// recomputed here. Counts its calls in a file (workers are forked processes).
engramsim::sim::PointEvaluator counting(const std::string& log) {
    return [log](const json& cfg) {
        std::ofstream(log, std::ios::app) << cfg["sim"]["gather_threads"] << cfg["sim"]["schedule"]
                                          << '\n';
        const double x = cfg["sim"]["gather_threads"].get<int>() * 10 +
                         (cfg["sim"]["schedule"] == "oracle" ? 1 : 0);
        return json{{"summary", {{"throughput_tok_per_s", x}}}};
    };
}

size_t lines(const std::string& path) {
    std::ifstream in(path);
    size_t n = 0;
    for (std::string l; std::getline(in, l);) ++n;
    return n;
}

}  // namespace

TEST(Sweep, AxisValuesAreJsonWhenTheyParse) {
    const auto a = engramsim::sim::parse_axis("placement.hbm_capacity=0,10%,2GiB,true,\"7\"");
    EXPECT_EQ(a.keys, std::vector<std::string>{"placement.hbm_capacity"});
    ASSERT_EQ(a.values.size(), 5u);
    EXPECT_EQ(a.values[0], json(0));
    EXPECT_EQ(a.values[1], json("10%"));
    EXPECT_EQ(a.values[2], json("2GiB"));
    EXPECT_EQ(a.values[3], json(true));
    EXPECT_EQ(a.values[4], json("7"));
    const auto b = engramsim::sim::parse_axis("engram.engram_vocab_size=[[5,7],[11,13]]");
    ASSERT_EQ(b.values.size(), 2u);
    EXPECT_EQ(b.values[1], json::parse("[11,13]"));
    EXPECT_THROW(engramsim::sim::parse_axis("sim.table"), engramsim::config::ConfigError);
    EXPECT_THROW(engramsim::sim::parse_axis("sim.table=[1,"), engramsim::config::ConfigError);
}

TEST(Sweep, ZippedKeysVaryTogether) {
    const auto a = engramsim::sim::parse_axis(
        R"(backbone,engram.hc_mult=[["dense-4b", 1], ["moe-27b", 4]])");
    ASSERT_EQ(a.keys, (std::vector<std::string>{"backbone", "engram.hc_mult"}));
    ASSERT_EQ(a.values.size(), 2u);
    EXPECT_EQ(a.name(), "backbone+engram.hc_mult");
    const auto s1 = a.settings(1);
    ASSERT_EQ(s1.size(), 2u);
    EXPECT_EQ(s1[0].second, "moe-27b");
    EXPECT_EQ(s1[1].second, 4);
    // A value with the wrong number of entries names its place.
    try {
        engramsim::sim::parse_axis(R"(backbone,engram.hc_mult=[["dense-4b", 1], ["moe-27b"]])");
        ADD_FAILURE() << "accepted";
    } catch (const engramsim::config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("values[1]: must be an array of 2 values, one per key"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(engramsim::sim::parse_axis("backbone,engram.hc_mult=dense-4b,1"),
                 engramsim::config::ConfigError);
    // Expanded with another axis: 2 x 2 points, the zipped keys moving together.
    const SweepSpec spec = engramsim::sim::parse_sweep_spec(
        json::parse(R"({"base": {"backbone": "dense-4b", "engram": "paper-offload-100b"},
                        "axes": [{"keys": ["backbone", "engram.hc_mult"],
                                  "values": [["dense-4b", 1], ["moe-27b", 4]]},
                                 {"key": "sim.schedule", "values": ["none", "oracle"]}]})"),
        "test");
    EXPECT_EQ(spec.columns(), (std::vector<std::string>{"backbone", "engram.hc_mult", "sim.schedule"}));
    const auto points = engramsim::sim::expand_sweep(spec);
    ASSERT_EQ(points.size(), 4u);
    EXPECT_EQ(points[2].label(), "backbone=moe-27b, engram.hc_mult=4, sim.schedule=none");
    EXPECT_EQ(points[2].config["engram"]["hc_mult"], 4);
    EXPECT_EQ(points[2].config["backbone"]["hc_mult"], 4);
    EXPECT_EQ(points[1].config["engram"]["hc_mult"], 1);
    EXPECT_EQ(engramsim::sim::sweep_csv(spec, {}).substr(0, 45),
              "index,backbone,engram.hc_mult,sim.schedule,th");
}

TEST(Sweep, PointsVaryTheLastAxisFastest) {
    const auto points = engramsim::sim::expand_sweep(small_spec());
    ASSERT_EQ(points.size(), 6u);
    for (size_t i = 0; i < points.size(); ++i) {
        EXPECT_EQ(points[i].index, i);
        EXPECT_EQ(points[i].config["sim"]["gather_threads"], int(i / 2) + 1);
        EXPECT_EQ(points[i].config["sim"]["schedule"], i % 2 ? "oracle" : "none");
    }
    EXPECT_EQ(points[3].label(), "sim.gather_threads=2, sim.schedule=oracle");
    // The rest of the config is the resolved base's.
    EXPECT_EQ(points[0].config["backbone"], points[5].config["backbone"]);
}

TEST(Sweep, SpecErrorsNameTheJsonPathAndTheNearestKey) {
    auto message = [](const std::string& text) {
        try {
            engramsim::sim::expand_sweep(
                engramsim::sim::parse_sweep_spec(json::parse(text), "spec.json"));
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    EXPECT_EQ(message(R"({"base": "dense-4b", "axis": []})"),
              "spec.json: axis: unknown key; did you mean axes?");
    EXPECT_EQ(message(R"({"base": "dense-4b", "axes": [{"key": "sim.table", "value": [1]}]})"),
              "spec.json: axes[0].value: unknown key; did you mean values?");
    EXPECT_EQ(message(R"({"base": "dense-4b", "axes": []})"),
              "spec.json: axes: must be a non-empty array of {\"key\", \"values\"}");
    EXPECT_NE(message(R"({"base": "dense-4b", "axes": [{"key": "sim.tabel", "values": ["hbm"]}]})")
                  .find("sweep point 0 (sim.tabel=hbm): sim.tabel: unknown key; did you mean "
                        "table?"),
              std::string::npos);
    EXPECT_NE(message(R"({"base": "dense-4b", "axes": [{"key": "sim.table", "values": ["hbm"]},
                                                       {"key": "sim.table", "values": ["nvme"]}]})")
                  .find("axes[1]: 'sim.table' is already varied by axis 0"),
              std::string::npos);
}

TEST(Sweep, EveryPointIsWrittenWholeAndJobsDoNotChangeTheBytes) {
    const SweepSpec spec = small_spec();
    std::string csv[2], results[2];
    for (int jobs : {1, 3}) {
        const std::string dir = fresh_dir("jobs" + std::to_string(jobs));
        const auto recs = engramsim::sim::run_sweep(spec, {dir, jobs, false, {}},
                                                    counting(dir + ".log"));
        ASSERT_EQ(recs.size(), 6u);
        EXPECT_EQ(lines(dir + ".log"), 6u);
        for (size_t i = 0; i < recs.size(); ++i) {
            EXPECT_EQ(recs[i]["index"], i);
            EXPECT_EQ(recs[i]["summary"]["throughput_tok_per_s"], double((i / 2 + 1) * 10 + i % 2));
            char name[48];
            std::snprintf(name, sizeof name, "/points/%05zu.json", i);
            EXPECT_EQ(json::parse(slurp(dir + name)), recs[i]);
        }
        csv[jobs > 1] = engramsim::sim::sweep_csv(spec, recs);
        results[jobs > 1] = engramsim::sim::sweep_results_json(spec, recs).dump();
    }
    EXPECT_EQ(csv[0], csv[1]);
    EXPECT_EQ(results[0], results[1]);
    EXPECT_EQ(csv[0].substr(0, csv[0].find('\n')),
              "index,sim.gather_threads,sim.schedule,throughput_tok_per_s [output tokens/s],"
              "table_in_hbm_tok_per_s [output tokens/s],no_engram_tok_per_s [output tokens/s],"
              "overhead_vs_table_in_hbm_pct [%],overhead_vs_no_engram_pct [%],makespan_s [s],"
              "ttft_mean_s [s],tpot_mean_s [s],compute_s [s],stall_s [s],hidden_fetch_s [s],"
              "lookups [lookups],unique_rows [rows],rows_from_hbm [rows],"
              "rows_from_host_dram [rows],rows_from_nvme [rows],h2d_utilization [fraction],"
              "weight_bytes [B per GPU],kv_cache_bytes [B per GPU],"
              "num_kv_blocks [blocks],preemptions [preemptions],table_bytes [B],error");
}

TEST(Sweep, ACrashLosesOnlyItsOwnPointAndResumeRunsOnlyWhatIsMissing) {
    const SweepSpec spec = small_spec();
    const std::string dir = fresh_dir("crash");
    // Point 2's worker dies (as an out-of-memory kill would), point 4's evaluation throws.
    auto crashing = [good = counting(dir + ".log")](const json& cfg) {
        if (cfg["sim"]["gather_threads"] == 2 && cfg["sim"]["schedule"] == "none") raise(SIGKILL);
        if (cfg["sim"]["gather_threads"] == 3 && cfg["sim"]["schedule"] == "none")
            throw std::runtime_error("no such hardware");
        return good(cfg);
    };
    auto recs = engramsim::sim::run_sweep(spec, {dir, 2, false, {}}, crashing);
    EXPECT_EQ(recs[2]["error"], "its worker was killed by signal 9");
    EXPECT_FALSE(fs::exists(dir + "/points/00002.json"));
    EXPECT_EQ(recs[4]["error"], "no such hardware");
    EXPECT_TRUE(fs::exists(dir + "/points/00004.json"));
    EXPECT_EQ(lines(dir + ".log"), 4u);

    // A torn file (as a disk error would leave) is detected, not misread.
    std::ofstream(dir + "/points/00005.json") << R"({"index": 5, "axes": {"sim.gat)";

    // Without --resume the folder is refused; a different sweep is refused even with it.
    EXPECT_THROW(engramsim::sim::run_sweep(spec, {dir, 1, false, {}}, counting(dir + ".log")),
                 std::runtime_error);
    SweepSpec other = spec;
    other.axes[1].values.pop_back();
    try {
        engramsim::sim::run_sweep(other, {dir, 1, true, {}}, counting(dir + ".log"));
        ADD_FAILURE() << "a different sweep was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("holds a different sweep"), std::string::npos);
    }

    // Another build may not finish it: its points would mix two builds' results.
    try {
        engramsim::sim::SweepOptions other_build{dir, 1, true, {}, "engramsim 9.9 (other)"};
        engramsim::sim::run_sweep(spec, other_build, counting(dir + ".log"));
        ADD_FAILURE() << "another build resumed the sweep";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("was written by an unnamed build, not by this build "
                                             "(engramsim 9.9 (other))"),
                  std::string::npos)
            << e.what();
    }

    size_t reused = 0;
    std::vector<size_t> ran;
    engramsim::sim::SweepOptions opt{dir, 1, true, [&](const engramsim::sim::SweepProgress& p) {
                                         reused = p.reused;
                                         ran.push_back(p.point->index);
                                     }};
    recs = engramsim::sim::run_sweep(spec, opt, counting(dir + ".log"));
    EXPECT_EQ(ran, (std::vector<size_t>{2, 4, 5}));  // the killed, the failed, the torn
    EXPECT_EQ(reused, 3u);
    EXPECT_EQ(lines(dir + ".log"), 7u);
    const std::string clean = fresh_dir("clean");
    EXPECT_EQ(engramsim::sim::sweep_csv(spec, recs),
              engramsim::sim::sweep_csv(
                  spec, engramsim::sim::run_sweep(spec, {clean, 1, false, {}}, counting(clean + ".log"))));
}
