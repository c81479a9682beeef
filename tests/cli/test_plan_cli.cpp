// engramsim plan CONFIG -o FILE: the step plan the PyTorch harness serves. Its steps are the
// scheduler's (run here independently from the plan's KV blocks), its rows' digests are those of
// the hashed lookups (recomputed here from the hasher directly), and what a one-GPU engine cannot
// serve is refused naming the key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/cli_runner.h"
#include "sim/timing/step_plan.h"
#include "traces/ngram_hash.h"
#include "traces/schedule.h"
#include "traces/splitmix64.h"
#include "traces/tokens.h"

namespace engramsim {
namespace {

using nlohmann::json;
using test::run_engramsim;

json small_config() {
    std::ifstream in(std::string(ENGRAMSIM_SOURCE_DIR) + "/executor/configs/serving/b16-la0-preempt.json");
    return json::parse(in);
}

std::string write(const json& cfg, const std::string& tag) {
    const std::string path = test::temp_path("plan_cfg", tag) + ".json";
    std::ofstream(path) << cfg.dump();
    return path;
}

TEST(PlanCli, StepsAreTheSchedulersAndRowsTheHashersOwn) {
    const std::string cfg = write(small_config(), "ok");
    const std::string out = test::temp_path("plan_out", "ok") + ".json";
    const auto r = run_engramsim("plan " + cfg + " -o " + out);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("preemptions"), std::string::npos);
    std::ifstream in(out);
    const json plan = json::parse(in);
    EXPECT_EQ(plan["schema"], "engramsim.step_plan");
    EXPECT_EQ(plan["scheduler"]["num_kv_blocks"], 160);  // sim.num_kv_blocks

    // The scheduler, run here from the requests' lengths.
    std::vector<uint32_t> P, O;
    for (const auto& q : plan["requests"]) P.push_back(q["prompt"].size()), O.push_back(q["output"].size());
    SchedulerConfig sc;
    sc.max_num_seqs = plan["scheduler"]["max_num_seqs"];
    sc.max_num_batched_tokens = plan["scheduler"]["max_num_batched_tokens"];
    sc.kv_block_size = plan["scheduler"]["kv_block_size"];
    sc.num_kv_blocks = plan["scheduler"]["num_kv_blocks"];
    Scheduler sched(sc, P, O);
    const auto& e = plan["engram"];
    const CompressMap map(e["compress_map"].get<std::vector<uint32_t>>());
    const NgramHasher hasher(EngramConfig::from_json(plan["config"]["engram"]),
                             map.canonical_vocab_size(), e["pad_canonical"]);
    const int heads = e["heads_per_layer"];
    uint64_t preemptions = 0;
    size_t k = 0;
    while (auto step = sched.next()) {
        ASSERT_LT(k, plan["steps"].size());
        const json& s = plan["steps"][k++];
        ASSERT_EQ(s["slices"].size(), step->slices.size());
        std::set<uint64_t> distinct;
        uint64_t lookups = 0;
        for (size_t i = 0; i < step->slices.size(); ++i) {
            const StepSlice& x = step->slices[i];
            EXPECT_EQ(s["slices"][i], json::array({x.request, x.first, x.count, x.decode ? 1 : 0,
                                                   x.sample ? 1 : 0}));
            // The request's whole sequence, hashed, then the slice's positions.
            const auto& q = plan["requests"][x.request];
            std::vector<uint32_t> raw = q["prompt"].get<std::vector<uint32_t>>();
            for (uint32_t t : q["output"]) raw.push_back(t);
            const std::vector<uint32_t> ids = map.compress(raw);
            std::vector<uint32_t> local(ids.size() * size_t(heads));
            hasher.hash_layer(0, ids, local);
            const auto& L = e["layers"][0];
            for (uint32_t p = x.first; p < x.first + x.count; ++p)
                for (int h = 0; h < heads; ++h, ++lookups)
                    distinct.insert(L["base"].get<uint64_t>() + L["head_offsets"][h].get<uint64_t>() +
                                    local[size_t(p) * heads + h]);
        }
        preemptions += step->preempted.size();
        EXPECT_EQ(s["preempted"].get<std::vector<uint32_t>>(), step->preempted);
        uint64_t digest = 0;
        for (uint64_t row : distinct) digest += splitmix64(row);
        EXPECT_EQ(s["rows"][0]["lookups"], lookups);
        EXPECT_EQ(s["rows"][0]["distinct"], distinct.size());
        EXPECT_EQ(s["rows"][0]["digest"].get<uint64_t>(), digest) << "step " << k - 1;
    }
    EXPECT_EQ(k, plan["steps"].size());
    EXPECT_GT(preemptions, 0u);
    EXPECT_EQ(plan["scheduler"]["preemptions"], preemptions);
    std::filesystem::remove(cfg), std::filesystem::remove(out);
}

TEST(PlanCli, RefusesWhatOneEngineCannotServe) {
    json tp = small_config();
    tp["sim"]["tensor_parallel"] = 2;
    const std::string a = write(tp, "tp");
    auto r = run_engramsim("plan " + a + " -o /dev/null");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("sim.tensor_parallel"), std::string::npos) << r.err;
    json syn = small_config();
    syn["workload"] = {{"kind", "synthetic"}};
    const std::string b = write(syn, "syn");
    r = run_engramsim("plan " + b + " -o /dev/null");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("workload"), std::string::npos) << r.err;
    std::filesystem::remove(a), std::filesystem::remove(b);
}

TEST(PlanCli, DigestIsOrderFree) {
    const std::vector<uint64_t> a = {5, 1, 99}, b = {99, 5, 1};
    EXPECT_EQ(sim::rows_digest(a), sim::rows_digest(b));
    EXPECT_EQ(sim::rows_digest(a), splitmix64(5) + splitmix64(1) + splitmix64(99));
}

}  // namespace
}  // namespace engramsim
