// Data parallelism on one node (sim.data_parallel): the workload split round-robin over the
// replicas, the totals, the config errors, the results' replicas, D = 1 unchanged.
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "tests/data_parallel_runs.h"
#include "sim/timing/results.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

// h100-sxm with 8 GPUs (an HGX board; the preset has one), 21 requests by default.
json small_run(const json& sim, const std::string& hw = "h100-sxm", int requests = 21,
               int gpus = 8) {
    return engramsim::test::hgx_run(sim, requests, hw, gpus);
}

std::string error_of(const json& sim, const std::string& hw = "h100-sxm", int gpus = 8) {
    try {
        make_plan(small_run(sim, hw, 21, gpus));
    } catch (const config::ConfigError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// Request r goes to replica r mod D: each replica's requests are the workload's, in order, and
// all output tokens are served once.
TEST(DataParallel, RoundRobinSplitKeepsEveryRequestAndToken) {
    const json cfg = small_run({{"data_parallel", 4}});
    const Workload wl = make_workload(cfg["workload"]);
    const Plan p = make_plan(cfg);
    ASSERT_EQ(p.replicas.size(), 4u);
    EXPECT_EQ(p.data_parallel, 4);
    EXPECT_TRUE(p.steps.empty());
    EXPECT_EQ(p.output_tokens, wl.output_tokens());
    EXPECT_EQ(p.prompt_tokens, wl.prompt_tokens());
    uint64_t out = 0;
    for (size_t k = 0; k < 4; ++k) {
        const Plan& r = p.replicas[k];
        // 21 requests: replica 0 gets 6 (0, 4, ..., 20), the others 5.
        ASSERT_EQ(r.output_len.size(), k == 0 ? 6u : 5u);
        for (size_t i = 0; i < r.output_len.size(); ++i)
            EXPECT_EQ(r.output_len[i], wl.requests[k + 4 * i].output.size());
        EXPECT_EQ(r.gpu, p.platform.node("gpu" + std::to_string(k)));
        EXPECT_EQ(r.gpus, std::vector<int>{r.gpu});
        EXPECT_EQ(r.platform.nodes().size(), p.platform.nodes().size());
        out += r.output_tokens;
    }
    EXPECT_EQ(out, wl.output_tokens());
    // The metrics: every replica's output over the latest end; TTFT over all 21 requests.
    const RunOutcome o = run_config(cfg);
    uint64_t served = 0, requests = 0, steps = 0;
    double latest = 0;
    for (const auto& r : o.metrics.replicas) {
        served += r.output_tokens;
        requests += r.requests;
        steps += r.steps;
        latest = std::max(latest, r.makespan_s);
    }
    EXPECT_EQ(served, wl.output_tokens());
    EXPECT_EQ(requests, 21u);
    EXPECT_EQ(steps, o.metrics.steps);
    EXPECT_EQ(o.metrics.makespan_s, latest);
    EXPECT_DOUBLE_EQ(o.metrics.throughput_tok_per_s, double(wl.output_tokens()) / latest);
    EXPECT_EQ(o.metrics.per_gpu.size(), 4u);
    // results.json: the replicas array and the degree; the references keep D.
    const json j = results_json(o.plan, o.metrics);
    EXPECT_EQ(j["simulated"]["data_parallel"], 4);
    ASSERT_EQ(j["metrics"]["replicas"].size(), 4u);
    EXPECT_EQ(j["metrics"]["replicas"][1]["gpu"], "gpu1");
    EXPECT_EQ(j["metrics"]["replicas"][1]["makespan_s"], o.metrics.replicas[1].makespan_s);
    EXPECT_EQ(make_plan(with_key(cfg, "sim.table", "hbm")).replicas.size(), 4u);
    EXPECT_EQ(make_plan(without_engram(cfg)).replicas.size(), 4u);
    // The timeline: two processes per replica.
    std::ostringstream tl;
    write_timeline(o.plan, o.des, tl);
    const json t = json::parse(tl.str());
    int processes = 0;
    for (const auto& e : t["traceEvents"]) processes += e["name"] == "process_name";
    EXPECT_EQ(processes, 8);
}

// D = 1, given or not, is the one-engine run: same plan, same result.
TEST(DataParallel, OneReplicaIsTheSingleEngineRun) {
    const json absent = small_run(json::object());
    EXPECT_EQ(absent["sim"]["data_parallel"], 1);  // the default, resolved
    const json one = small_run({{"data_parallel", 1}});
    EXPECT_EQ(one["sim"]["data_parallel"], 1);
    const RunOutcome a = run_config(absent), b = run_config(one);
    EXPECT_TRUE(a.plan.replicas.empty());
    EXPECT_TRUE(b.plan.replicas.empty());
    EXPECT_EQ(a.metrics.makespan_s, b.metrics.makespan_s);
    EXPECT_EQ(metrics_json(a.metrics), metrics_json(b.metrics));
    EXPECT_FALSE(metrics_json(a.metrics).contains("replicas"));
}

// Errors name the keys.
TEST(DataParallel, ConfigErrorsNameTheKeys) {
    std::string e = error_of({{"data_parallel", 9}});  // 8 GPUs
    EXPECT_NE(e.find("sim.data_parallel"), std::string::npos) << e;
    EXPECT_NE(e.find("hardware.gpu.count"), std::string::npos) << e;
    e = error_of({{"data_parallel", 2}, {"tensor_parallel", 2}});
    EXPECT_NE(e.find("sim.data_parallel"), std::string::npos) << e;
    EXPECT_NE(e.find("sim.tensor_parallel"), std::string::npos) << e;
    e = error_of({{"data_parallel", 2}, {"table", "remote-dram"}, {"mechanism", "remote-gather"}});
    EXPECT_NE(e.find("sim.data_parallel"), std::string::npos) << e;
    EXPECT_NE(e.find("sim.table"), std::string::npos) << e;
    e = error_of({{"data_parallel", 2}}, "h100-sxm", 1);  // the preset's one GPU
    EXPECT_NE(e.find("sim.data_parallel"), std::string::npos) << e;
    EXPECT_NE(e.find("hardware.gpu.count"), std::string::npos) << e;
    try {  // below 1: the schema's bound
        small_run({{"data_parallel", 0}});
        ADD_FAILURE() << "data_parallel 0 accepted";
    } catch (const config::ConfigError& ex) {
        EXPECT_NE(std::string(ex.what()).find("sim.data_parallel"), std::string::npos);
    }
    try {  // more replicas than requests
        make_plan(small_run({{"data_parallel", 8}}, "h100-sxm", 5));
        ADD_FAILURE() << "empty replica accepted";
    } catch (const config::ConfigError& ex) {
        EXPECT_NE(std::string(ex.what()).find("sim.data_parallel"), std::string::npos);
    }
}
