// engramsim execute, calibrate and validate serving, run as a user runs them, on a tiny config:
// the files they write, what they refuse, and that validate serving predicts the very steps it
// then executes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "model/units.h"
#include "tests/cli_runner.h"

namespace {

using nlohmann::json;
using Result = engramsim::test::CliResult;

Result run(const std::string& args) { return engramsim::test::run_engramsim(args); }

std::string temp(const std::string& name) {
    return ::testing::TempDir() + "executor_cli_" + std::to_string(getpid()) + "_" + name;
}

json tiny() {
    return {{"backbone",
             {{"base", "dense-4b"}, {"name", "tiny"}, {"hidden_size", 64}, {"layers", 2},
              {"vocab_size", 512}, {"dtype", "fp32"},
              {"attention", {{"n_heads", 4}, {"n_kv_heads", 2}, {"head_dim", 16}, {"v_head_dim", 16}}},
              {"mlp", {{"intermediate_size", 128}}}}},
            {"engram",
             {{"base", "demo-v1"}, {"engram_vocab_size", {4001, 4001}}, {"n_embed_per_ngram", 32},
              {"n_head_per_ngram", 2}, {"layer_ids", {1}}, {"hc_mult", 1}}},
            {"hardware", "h800-pcie5"},
            {"workload",
             {{"base", "nano-vllm-512"}, {"num_requests", 4},
              {"prompt_len", {{"min", 8}, {"max", 24}}}, {"output_len", {{"min", 8}, {"max", 12}}}}},
            {"sim",
             {{"table", "host-dram"}, {"mechanism", "cpu-gather"}, {"schedule", "layer-ahead:0"},
              {"gather_threads", 1}, {"max_num_seqs", 4}, {"max_num_batched_tokens", 128}}}};
}

std::string write_config(const std::string& name, const json& cfg) {
    const std::string path = temp(name + ".json");
    std::ofstream(path) << cfg.dump();
    return path;
}

json read_json(const std::string& path) {
    std::ifstream f(path);
    return json::parse(f);
}

}  // namespace

TEST(ExecutorCli, ExecuteWritesResultsStepsAndATimeline) {
    const std::string cfg = write_config("exec", tiny()), out = temp("exec_out");
    const Result r = run("execute " + cfg + " -q -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("overhead vs no Engram"), std::string::npos) << r.out;
    const json res = read_json(out + "/results.json");
    EXPECT_EQ(res["schema"], "engramsim.execute");
    EXPECT_EQ(res["version"], 1);
    const uint64_t steps = res["run"]["metrics"]["steps"].get<uint64_t>();
    EXPECT_GT(steps, 0u);
    EXPECT_EQ(res["no_engram"]["metrics"]["steps"].get<uint64_t>(), steps);  // the same schedule
    EXPECT_GT(res["run"]["metrics"]["throughput_tok_per_s"].get<double>(), 0);
    EXPECT_GT(res["run"]["metrics"]["lookups"].get<uint64_t>(), 0u);
    std::ifstream csv(out + "/steps.csv");
    std::string line;
    uint64_t rows = 0;
    std::getline(csv, line);
    EXPECT_EQ(line.rfind("step,prefill,tokens", 0), 0u) << line;
    while (std::getline(csv, line)) ++rows;
    EXPECT_EQ(rows, steps);  // one Engram layer: one row per step
    // The baseline's steps beside them: as many, none at an Engram layer.
    std::ifstream base(out + "/no_engram_steps.csv");
    std::getline(base, line);
    EXPECT_EQ(line.rfind("step,prefill,tokens", 0), 0u) << line;
    uint64_t base_rows = 0, base_engram_rows = 0;
    while (std::getline(base, line)) {
        ++base_rows;
        std::vector<std::string> col;
        for (size_t b = 0, e; b <= line.size(); b = e + 1) {
            e = std::min(line.find(',', b), line.size());
            col.push_back(line.substr(b, e - b));
        }
        ASSERT_EQ(col.size(), 18u) << line;
        base_engram_rows += !col[8].empty();  // engram_layer
    }
    EXPECT_EQ(base_rows, steps);
    EXPECT_EQ(base_engram_rows, 0u);
    EXPECT_TRUE(read_json(out + "/timeline.json").contains("traceEvents"));
}

TEST(ExecutorCli, ExecuteRefusesWhatItCannotServeNamingTheKey) {
    json c = tiny();
    c["sim"]["table"] = "remote-dram";
    c["sim"]["mechanism"] = "remote-gather";
    Result r = run("execute " + write_config("remote", c) + " -q");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.err.rfind("engramsim: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("sim.table"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
    c["sim"]["table"] = "nvme";  // on disk, a DRAM cache in front with an oracle's policy
    c["sim"]["mechanism"] = "nvme";
    c["placement"] = {{"dram_capacity", "50%"}, {"dram_policy", "belady"}};
    r = run("execute " + write_config("cached", c) + " -q");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("placement.dram_policy"), std::string::npos) << r.err;
}

TEST(ExecutorCli, ValidateServingRefusesEveryBadConfigBeforeCalibratingAny) {
    // A text the binary does not carry, and a table larger than this machine's memory, listed
    // after a good config: refused before anything is calibrated (no calibration folder made),
    // naming the file and what is wrong.
    json text = tiny();
    text["workload"] = {{"kind", "corpus"}, {"tokens", "bundled:handbook-pt-BR"}, {"num_requests", 2},
                        {"prompt_len", {{"min", 8}, {"max", 24}}}, {"output_len", {{"min", 8}, {"max", 12}}}};
    json big = tiny();
    big["engram"]["engram_vocab_size"] = {int64_t(1) << 31, int64_t(1) << 31};  // 275 GB of table
    const std::string good = write_config("good", tiny()), cal = temp("never-calibrated");
    for (const auto& [name, cfg, what] :
         {std::tuple{"text", text, "handbook-pt-BR"}, std::tuple{"big", big, "more than the"}}) {
        const std::string bad = write_config(name, cfg);
        const Result r = run("validate serving " + good + " " + bad + " --quick --calibration " + cal);
        EXPECT_EQ(r.status, 1) << name;
        EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("calibrating"), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(cal)) << name;
        std::filesystem::remove(bad);
    }
    std::filesystem::remove(good);
}

TEST(ExecutorCli, ExecuteServesTheBaselineInterleavedOnRequest) {
    const std::string cfg = write_config("interleaved", tiny()), out = temp("interleaved_out");
    const Result r = run("execute " + cfg + " -q --interleaved -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    const json res = read_json(out + "/results.json");
    EXPECT_EQ(res["baseline_served"], "interleaved");
    EXPECT_EQ(res["no_engram"]["metrics"]["steps"], res["run"]["metrics"]["steps"]);
    EXPECT_EQ(res["no_engram"]["metrics"]["lookups"].get<uint64_t>(), 0u);
    EXPECT_GT(res["run"]["metrics"]["lookups"].get<uint64_t>(), 0u);
    // Interleaved with nothing is refused.
    const Result bad = run("execute " + cfg + " -q --interleaved --no-baseline");
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.err.find("--no-baseline"), std::string::npos) << bad.err;
}

TEST(ExecutorCli, ValidateServingPredictsTheStepsItExecutesAndReusesItsCalibration) {
    const std::string cfg = write_config("validate", tiny());
    const std::string cal = temp("cal"), out = temp("val_out");
    const Result r = run("validate serving " + cfg + " --quick --calibration " + cal + " -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("tok/s |error|"), std::string::npos) << r.out;
    const json v = read_json(out + "/validation.json");
    EXPECT_EQ(v["kind"], "engramsim.serving_validation");
    EXPECT_EQ(v["schema_version"], 1);
    EXPECT_TRUE(v["machine"].contains("simgrid")) << v["machine"];
    ASSERT_EQ(v["cases"].size(), 1u);
    const json& c = v["cases"][0];
    EXPECT_EQ(c["step_times"].size(), c["measured"]["steps"].get<size_t>());
    EXPECT_EQ(c["predicted"]["steps"], c["measured"]["steps"]);
    for (const auto& s : c["step_times"]) {
        EXPECT_GT(s[0].get<double>(), 0);  // predicted
        EXPECT_GT(s[1].get<double>(), 0);  // measured
    }
    EXPECT_EQ(v["calibrations_made"].size(), 1u);
    // The MLP's activation is calibrated as the executor runs it, at the config's width, up to
    // the step's token budget (the step model prices SiLU * up from it).
    std::vector<double> act_tokens;
    for (const auto& f : std::filesystem::recursive_directory_iterator(cal))
        if (f.path().filename() == "swiglu_act.cpu-f32.json") {
            const json profile = read_json(f.path().string());
            for (const auto& pt : profile["points"]) {
                EXPECT_EQ(pt["dims"]["intermediate"], 128.0) << pt;
                EXPECT_GT(pt["median_s"].get<double>(), 0) << pt;
                act_tokens.push_back(pt["dims"]["tokens"].get<double>());
            }
        }
    ASSERT_FALSE(act_tokens.empty()) << "no swiglu_act profile under " << cal;
    EXPECT_EQ(act_tokens.front(), 1.0);
    EXPECT_EQ(act_tokens.back(), 128.0);
    // --quick: one interleaved execution, whose overhead is the measured one.
    const json& oh = c["overhead_vs_no_engram_pct"];
    EXPECT_EQ(oh["measured_from"], "interleaved runs");
    ASSERT_EQ(oh["measured_interleaved"].size(), 1u);
    EXPECT_EQ(oh["measured"], oh["measured_interleaved"][0]);
    EXPECT_TRUE(v["summary"].contains("overhead_rank_kendall_tau"));
    // Where the overhead lies: the phases cover every step, and add up to the makespans'
    // difference, which is the overhead: 100 x (Engram - baseline) / Engram, on each side (the
    // measured split is the interleaved run the overhead comes from).
    const json& ph = c["overhead_by_phase_s"];
    const uint64_t with_prompt = ph["steps_with_prompt_tokens"]["steps"].get<uint64_t>();
    EXPECT_GE(with_prompt, 1u);
    EXPECT_EQ(with_prompt + ph["decode_only_steps"]["steps"].get<uint64_t>(), c["steps"].get<uint64_t>());
    for (const char* side : {"predicted", "measured"}) {
        const double diff = ph["steps_with_prompt_tokens"][side].get<double>() +
                            ph["decode_only_steps"][side].get<double>();
        EXPECT_NEAR(100 * diff / ph["engram_makespan_s"][side].get<double>(),
                    oh[side].get<double>(), 1e-6) << side;
    }
    EXPECT_NE(r.out.find("where the overhead lies, by phase"), std::string::npos) << r.out;
    // The Engram path, summed: a stall is the tail of a fetch, never more than the fetches'
    // issue-to-ready time, on either side; the modules compute on both.
    const json& path = c["engram_path_s"];
    for (const char* side : {"predicted", "measured"}) {
        EXPECT_GT(path["module_compute"][side].get<double>(), 0) << side;
        EXPECT_GT(path["fetch_issue_to_ready"][side].get<double>(), 0) << side;
        EXPECT_LE(path["stall"][side].get<double>(),
                  path["fetch_issue_to_ready"][side].get<double>() * (1 + 1e-9)) << side;
        EXPECT_EQ(path["stall"][side], c["stall_s"][side]) << side;
    }
    EXPECT_NE(r.out.find("the Engram path, summed over the run"), std::string::npos) << r.out;
    for (const char* which : {"predicted", "measured"})  // both runs as Perfetto timelines
        EXPECT_TRUE(read_json(out + "/timelines/" + std::filesystem::path(cfg).stem().string() +
                              "." + which + ".timeline.json")
                        .contains("traceEvents")) << which;
    // The gather model was measured on a table of the size the executor gathers from (its
    // table in DRAM, as execute reports it).
    const Result ex = run("execute " + cfg + " -q --no-baseline --json");
    ASSERT_EQ(ex.status, 0) << ex.err;
    const uint64_t table = json::parse(ex.out)["run"]["bytes"]["engram_table"].get<uint64_t>();
    ASSERT_GT(table, 0u);
    ASSERT_EQ(v["calibrations_made"].size(), 1u);
    const json made = v["calibrations_made"].begin().value();
    EXPECT_EQ(made["measured"]["gather_table_bytes"].get<uint64_t>(), table) << made["measured"];
    // The calibration was written and is reused: the second run makes none.
    const Result again = run("validate serving " + cfg + " --quick --calibration " + cal + " --json");
    ASSERT_EQ(again.status, 0) << again.err;
    EXPECT_EQ(json::parse(again.out)["calibrations_made"].size(), 0u);
    // A calibration older than this build's (version 1 measured the disk penalty another way) is
    // refused when named as the folder itself, before anything executes.
    const std::string made_dir = v["calibrations_made"].begin().key();
    json old = read_json(made_dir + "/calibration.json");
    EXPECT_EQ(old["version"], 4);
    old["version"] = 1;
    std::ofstream(made_dir + "/calibration.json") << old.dump();
    const Result stale = run("validate serving " + cfg + " --quick --calibration " + made_dir);
    EXPECT_NE(stale.status, 0);
    EXPECT_NE(stale.err.find("is version 1, older than this build's 4"), std::string::npos) << stale.err;
    EXPECT_NE(stale.err.find("engramsim calibrate CONFIG -o " + made_dir), std::string::npos) << stale.err;
    EXPECT_EQ(stale.out.find("tok/s"), std::string::npos) << "nothing predicted or executed";
}

// The table in a file read cold with direct I/O, beside the build (a tmpfs /tmp may refuse
// O_DIRECT): the same steps and rows as from DRAM, the rows now from the file.
TEST(ExecutorCli, ExecuteReadsATableFileWithDirectIo) {
    json c = tiny();
    const std::string dram_out = temp("dram_out"), disk_out = temp("disk_out");
    ASSERT_EQ(run("execute " + write_config("dram", c) + " -q --no-baseline -o " + dram_out).status, 0);
    c["sim"]["table"] = "nvme";
    c["sim"]["mechanism"] = "nvme";
    c["sim"]["nvme_queue_depth"] = 4;
    c["placement"] = {{"dram_capacity", "0"}};
    const std::string file = "executor_cli_table_" + std::to_string(getpid()) + ".bin";
    const Result r = run("execute " + write_config("disk", c) + " -q --no-baseline --table-file " +
                         file + " -o " + disk_out);
    std::filesystem::remove(file);
    if (r.status != 0 && r.err.find("direct") != std::string::npos)
        GTEST_SKIP() << "this file system refuses direct I/O: " << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
    const json dram = read_json(dram_out + "/results.json"), disk = read_json(disk_out + "/results.json");
    EXPECT_NE(disk["run"]["table"].get<std::string>().find("direct I/O"), std::string::npos);
    EXPECT_EQ(disk["run"]["rows_digest"], dram["run"]["rows_digest"]);  // the same rows
    EXPECT_EQ(disk["run"]["metrics"]["steps"], dram["run"]["metrics"]["steps"]);
    EXPECT_EQ(disk["run"]["metrics"]["unique_rows"], dram["run"]["metrics"]["unique_rows"]);
}

// A quantity as calibrate writes it ("692.4 us"), in seconds: units::format's text parses back
// to the very same double.
double seconds_of(const json& q) {
    return engramsim::units::parse(q.get<std::string>(), engramsim::units::Dim::Time);
}

// With the table on disk, calibrate measures the config's own prefetcher (the drive's reader
// threads) beside a whole decode step, at three fetch sizes (2, 8 and 16 sequences' lookups) in
// the same rounds, and charges it as a line (nothing subtracted: the simulator charges the reads
// nothing else): each read's CPU a read, and the rest of the paired differences, on average and
// at least 0, a fetch; and from the same sizes' fetch times alone, what a fetch takes beyond its
// reads (sim.nvme_fetch_dispatch).
TEST(ExecutorCli, CalibrateMeasuresADiskPrefetchBesideADecodeStep) {
    json c = tiny();
    c["sim"]["table"] = "nvme";
    c["sim"]["mechanism"] = "nvme";
    c["sim"]["nvme_queue_depth"] = 4;
    c["placement"] = {{"dram_capacity", "0"}};
    const std::string file = "executor_cli_cal_table_" + std::to_string(getpid()) + ".bin";
    const std::string out = temp("disk_cal");
    const Result r = run("calibrate " + write_config("disk_cal", c) + " --quick --table-file " + file +
                         " -o " + out);
    std::filesystem::remove(file);
    if (r.status != 0 && r.err.find("direct") != std::string::npos)
        GTEST_SKIP() << "this file system refuses direct I/O: " << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
    const json cal = read_json(out + "/calibration.json"), sim = read_json(out + "/sim.json");
    EXPECT_EQ(cal["version"], 4);
    const json& w = cal["measured"]["disk_fetch_wake"];
    ASSERT_TRUE(w.is_object()) << cal["measured"];
    ASSERT_EQ(w["sizes"].size(), 3u) << w;
    // A size's penalty: its median paired difference, at least 0 (nothing charged besides).
    auto penalty = [](const json& z) { return std::max(0.0, z["paired_difference_s"].get<double>()); };
    double n = 0, mx = 0, my = 0;
    for (const json& z : w["sizes"]) mx += z["reads"].get<double>(), my += penalty(z), ++n;
    mx /= n, my /= n;
    double sxx = 0, sxy = 0;
    for (const json& z : w["sizes"]) {
        const double x = z["reads"].get<double>() - mx;
        sxx += x * x, sxy += x * (penalty(z) - my);
        EXPECT_GT(z["decode_step_alone_s"].get<double>(), 0) << z;
    }
    // 2, 8 and 16 sequences' lookups: 2 orders x 2 heads each.
    EXPECT_EQ(w["sizes"][0]["reads"], 2 * 4);
    EXPECT_EQ(w["sizes"][1]["reads"], 8 * 4);
    EXPECT_EQ(w["sizes"][2]["reads"], 16 * 4);
    // The free line, for reference.
    const double free_slope = std::max(0.0, sxy / sxx);
    EXPECT_NEAR(w["free_line"]["per_read_s"].get<double>(), free_slope, 1e-15);
    EXPECT_NEAR(w["free_line"]["fixed_s"].get<double>(), std::max(0.0, my - free_slope * mx), 1e-12);
    // The charged line: each read's CPU, and the rest of the paired differences, on average.
    const double slope = cal["drive"]["cpu_per_read_s"].get<double>();
    double rest = 0;
    for (const json& z : w["sizes"])
        rest += penalty(z) - z["reads"].get<double>() * slope;
    const double fixed = std::max(0.0, rest / n);
    EXPECT_EQ(w["per_read_s"].get<double>(), slope);
    EXPECT_NEAR(w["fixed_s"].get<double>(), fixed, 1e-12);
    // The fetch's own time beyond its reads: the line through the sizes' times alone, its fixed
    // part less the drive's read latency, at least 0.
    double fy = 0;
    for (const json& z : w["sizes"]) fy += z["fetch_alone_s"].get<double>();
    fy /= n;
    double fxy = 0;
    for (const json& z : w["sizes"])
        fxy += (z["reads"].get<double>() - mx) * (z["fetch_alone_s"].get<double>() - fy);
    const double fslope = std::max(0.0, fxy / sxx), ffixed = std::max(0.0, fy - fslope * mx);
    EXPECT_NEAR(w["fetch_alone_line"]["fixed_s"].get<double>(), ffixed, 1e-12);
    const double dispatch = std::max(0.0, ffixed - cal["drive"]["read_latency_s"].get<double>());
    EXPECT_NEAR(w["dispatch_s"].get<double>(), dispatch, 1e-12);
    // sim.json holds the very numbers calibration.json does, as the simulator reads them.
    EXPECT_EQ(seconds_of(sim["nvme_fetch_dispatch"]), w["dispatch_s"].get<double>()) << sim;
    EXPECT_EQ(seconds_of(sim["fetch_wake_penalty"]), w["fixed_s"].get<double>()) << sim;
    EXPECT_EQ(seconds_of(sim["fetch_wake_penalty_per_read"]), w["per_read_s"].get<double>()) << sim;
    // The drive's curve: each depth's rate the median of its rounds (an odd count: the middle
    // sample), as the hardware section says; the CPU a read costs likewise.
    const json& drive = cal["drive"];
    const int rounds = drive["rounds"].get<int>();
    ASSERT_EQ(rounds % 2, 1);
    const json hw = read_json(out + "/hardware.json");
    auto middle = [&](std::vector<double> v) {
        EXPECT_EQ(v.size(), size_t(rounds));
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const char* d : {"1", "4", "16", "64"}) {
        const double m = middle(drive["iops_at_depth_samples"][d].get<std::vector<double>>());
        EXPECT_EQ(drive["iops_at_depth"][d], std::to_string(m)) << d;
        EXPECT_EQ(hw["nvme"]["iops_at_depth"][d], std::to_string(m)) << d;
    }
    EXPECT_EQ(drive["cpu_per_read_s"].get<double>(),
              middle(drive["cpu_per_read_samples_s"].get<std::vector<double>>()));
}
