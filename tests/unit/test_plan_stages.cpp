// The plan's stages alone (sim/timing/plan_stages.h): kv_budget against nano-vLLM's formula computed
// here from the config's numbers, the engine registry, stage errors, and the stages chained by
// hand against make_plan.
#include <gtest/gtest.h>

#include <cmath>

#include "model/config.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan.h"
#include "sim/timing/plan_stages.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

json config_of(const json& doc) {
    return resolve_run_config(doc, "test");
}

double q(const json& sec, const std::string& key, units::Dim dim) {
    return config::quantity(sec, key, dim);
}

// kv_budget's input from a resolved config, through the stages it depends on.
struct KvSetup {
    json cfg;
    RunChoices run;
    BackboneCosts costs;
    TablePlacement table;
    double hbm;
    KvBudget budget() const {
        return kv_budget(
            {cfg["sim"], run, costs.tpar, costs.engram_shape, table.hbm_cache_rows, hbm},
            engine(kDefaultEngine));
    }
};

KvSetup kv_setup(const json& doc) {
    json cfg = config_of(doc);
    RunChoices run = resolve_choices(cfg);
    BackboneCosts costs = backbone_costs({cfg["hardware"], cfg["sim"], cfg["backbone"], run});
    TablePlacement table = table_placement({cfg["hardware"], run});
    const double hbm = q(cfg["hardware"]["gpu"], "hbm_capacity", units::Dim::Bytes);
    return {cfg, run, costs, table, hbm};
}

}  // namespace

// Dense-4B alone on one H800: num_kv_blocks = floor((hbm x utilization - weights - activation
// peak) / (block x KV bytes per token)), with GQA's K and V per layer per token.
TEST(PlanStages, KvBudgetIsNanoVllmsFormulaForABackboneAlone) {
    const KvSetup s = kv_setup({{"backbone", "dense-4b"}});
    const json& sim = s.cfg["sim"];
    const BackboneShape bb = BackboneShape::from_json(s.cfg["backbone"]);
    const double kv_per_token = 2.0 * bb.layers * bb.n_kv_heads * bb.head_dim * bb.bytes_per_value;
    const double weights = bb.params() * bb.bytes_per_value;
    const double mbt = sim["max_num_batched_tokens"].get<int>();
    const double act = mbt * bb.activation_values_per_token(1) * bb.bytes_per_value +
                       double(sim["max_num_seqs"].get<int>()) * bb.vocab * 4;
    const double util = q(sim, "gpu_memory_utilization", units::Dim::Count);
    const double block = sim["kv_block_size"].get<int>();
    const KvBudget kv = s.budget();
    EXPECT_DOUBLE_EQ(kv.kv_bytes_per_token, kv_per_token);
    EXPECT_DOUBLE_EQ(kv.weight_bytes, weights);
    EXPECT_DOUBLE_EQ(kv.activation_peak, act);
    // The inputs agree with their closed forms to 4 ulps (above); the floor is applied to the
    // stage's own inputs, since a few ulps move it across an integer (1658 / 1659 here at -O1).
    EXPECT_EQ(kv.num_kv_blocks,
              int64_t(std::floor((s.hbm * util - kv.weight_bytes - kv.activation_peak) /
                                 (block * kv.kv_bytes_per_token))));
    EXPECT_GT(kv.num_kv_blocks, 100);
}

// With the paper's Engram layer and an HBM cache: the projections, the cache's rows and the
// staging buffer for one full prefill's rows come out of the KV cache.
TEST(PlanStages, KvBudgetChargesTheEngramAndItsHbmCache) {
    const KvSetup plain = kv_setup({{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"}});
    const KvSetup cached = kv_setup({{"backbone", "dense-4b"},
                                     {"engram", "paper-offload-100b"},
                                     {"placement", {{"hbm_capacity", "1GiB"}}}});
    const EngramGpuShape& e = plain.costs.engram_shape;
    const BackboneShape& bb = plain.run.backbone;
    const double projections = double(plain.run.engram_layers.size()) * e.d_mem * bb.hidden *
                               (e.hc_mult + 1) * bb.bytes_per_value;
    const double staging =
        double(plain.cfg["sim"]["max_num_batched_tokens"].get<int>()) * e.heads * e.row_bytes;
    const KvBudget a = plain.budget(), b = cached.budget();
    EXPECT_DOUBLE_EQ(a.engram_weight_bytes, projections);
    EXPECT_DOUBLE_EQ(a.weight_bytes, bb.weight_bytes() + projections);
    const KvSetup none = kv_setup({{"backbone", "dense-4b"}});
    EXPECT_DOUBLE_EQ(a.activation_peak, none.budget().activation_peak + staging);
    ASSERT_GT(cached.table.hbm_cache_rows, 0u);
    const double cache_b = double(cached.table.hbm_cache_rows) * plain.run.engram.row_bytes();
    EXPECT_LE(cache_b, 1024.0 * 1024 * 1024);
    EXPECT_DOUBLE_EQ(b.weight_bytes, a.weight_bytes + cache_b);
    EXPECT_LT(b.num_kv_blocks, a.num_kv_blocks);
}

// The Engram module's warm-up tensors, walked in closed form: at its largest (the RMSNorm of
// k) the stream h, the fused [k; v], the normalized h and two fp32 temporaries live at once,
// hidden x (b (3M + 1) + 8M) bytes per token. Dense-4B with the paper's layer (M 1, bf16):
// 16 x 2560 = 40,960 B, under the backbone's 61,440 B (its MLP): the peak, and the KV cache,
// do not move. DeepSeek-V4.1-Flash (M 4, fp8 activations): 5120 x (13 + 32) = 230,400 B per
// token, above its backbone's share at TP 4: the module sets the warm-up peak.
TEST(PlanStages, TheEngramModulesWarmUpTensorsSetThePeakOnlyWhenLarger) {
    const KvSetup dense = kv_setup({{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"}});
    const KvBudget a = dense.budget();
    EXPECT_DOUBLE_EQ(a.engram_activation_bytes_per_token, 16.0 * 2560);
    EXPECT_DOUBLE_EQ(a.backbone_activation_bytes_per_token, 30720.0 * 2);
    const KvSetup none = kv_setup({{"backbone", "dense-4b"}});
    const EngramGpuShape& e = dense.costs.engram_shape;
    const double mbt = dense.cfg["sim"]["max_num_batched_tokens"].get<int>();
    EXPECT_DOUBLE_EQ(a.activation_peak,
                     none.budget().activation_peak + mbt * e.heads * e.row_bytes);

    const KvSetup v41 = kv_setup({{"backbone", "deepseek-v41-flash"},
                                  {"engram", "deepseek-v41-flash-engram"},
                                  {"hardware", {{"base", "b200"}, {"gpu", {{"count", 4}}}}},
                                  {"sim", {{"tensor_parallel", 4}}}});
    const KvBudget b = v41.budget();
    EXPECT_DOUBLE_EQ(b.engram_activation_bytes_per_token, 5120.0 * (13 + 32));
    EXPECT_GT(b.engram_activation_bytes_per_token, b.backbone_activation_bytes_per_token);
    const double vocab = double(v41.run.backbone.vocab);
    const double seqs = v41.cfg["sim"]["max_num_seqs"].get<int>();
    const EngramGpuShape& e4 = v41.costs.engram_shape;
    EXPECT_DOUBLE_EQ(b.activation_peak, mbt * 230400.0 + seqs * vocab * 4 +
                                            mbt * e4.heads * e4.row_bytes / 4);
}

// sim.num_kv_blocks >= 0 is taken as given; an HBM too small says what took it.
TEST(PlanStages, KvBudgetOverrideAndTheNoRoomError) {
    EXPECT_EQ(kv_setup({{"backbone", "dense-4b"}, {"sim", {{"num_kv_blocks", 7}}}})
                  .budget()
                  .num_kv_blocks,
              7);
    try {
        kv_setup({{"backbone", "dense-4b"}, {"sim", {{"gpu_memory_utilization", 0.05}}}}).budget();
        FAIL() << "expected the no-room error";
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("no HBM left for the KV cache"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("sim.gpu_memory_utilization 0.05"), std::string::npos)
            << e.what();
    }
}

TEST(PlanStages, EngineRegistryNamesTheKnownEnginesForAnUnknownOne) {
    EXPECT_STREQ(engine("nano-vllm").name(), "nano-vllm");
    EXPECT_EQ(&engine(kDefaultEngine), &engine("nano-vllm"));  // one instance
    for (size_t i = 1; i < engines().size(); ++i)
        EXPECT_LT(std::string(engines()[i - 1].name), engines()[i].name);
    try {
        engine("vllm");
        FAIL() << "expected UnknownEngine";
    } catch (const UnknownEngine& e) {
        EXPECT_EQ(std::string(e.what()), "unknown engine 'vllm'; known: nano-vllm, vllm-v1");
    }
}

// The engine's schedule is traces/schedule.h's nano-vLLM scheduler, step for step.
TEST(PlanStages, NanoVllmScheduleIsTheScheduler) {
    const std::vector<uint32_t> prompt = {100, 7, 300, 41}, output = {5, 9, 2, 30};
    const SchedulerConfig sc{2, 512, 16, 40};  // 640 tokens of KV: preemptions
    const EngineSchedule s = engine("nano-vllm").schedule(sc, prompt, output);
    Scheduler ref(sc, prompt, output);
    size_t n = 0;
    while (auto st = ref.next()) {
        ASSERT_LT(n, s.steps.size());
        EXPECT_EQ(s.steps[n].tokens, st->tokens);
        EXPECT_EQ(s.steps[n].slices.size(), st->slices.size());
        ++n;
    }
    EXPECT_EQ(n, s.steps.size());
    EXPECT_EQ(s.preemptions, ref.preemptions());
}

TEST(PlanStages, ResolveAndPlacementRefuseMismatchesByKey) {
    auto error = [](const json& doc, bool placement) -> std::string {
        try {
            const json cfg = config_of(doc);
            const RunChoices run = resolve_choices(cfg);
            if (placement) table_placement({cfg["hardware"], run});
        } catch (const config::ConfigError& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_EQ(error({{"backbone", "dense-4b"}, {"sim", {{"mechanism", "nvme"}}}}, false)
                  .rfind("sim.mechanism: 'nvme' with table 'host-dram'", 0),
              0u);
    EXPECT_EQ(error({{"backbone", "dense-4b"},
                     {"engram", "paper-offload-100b"},
                     {"placement", {{"dram_capacity", "1GiB"}}}},
                    true)
                  .rfind("placement.dram_capacity:", 0),
              0u);
    EXPECT_EQ(error({{"backbone", "dense-4b"}, {"engram", "paper-offload-100b"}}, true), "");
}

// The stages chained by hand give make_plan's steps.
TEST(PlanStages, ChainedStagesAreMakePlan) {
    const json cfg = config_of({{"backbone", "dense-4b"},
                                {"engram", "paper-offload-100b"},
                                {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}}});
    const Engine& eng = engine(kDefaultEngine);
    const RunChoices run = resolve_choices(cfg);
    const PlatformStage where = build_platform({cfg["hardware"], cfg["sim"], run});
    const BackboneCosts costs = backbone_costs({cfg["hardware"], cfg["sim"], cfg["backbone"], run});
    const TablePlacement table = table_placement({cfg["hardware"], run});
    const double hbm = where.platform.nodes()[size_t(where.gpu)].memory_bytes;
    const KvBudget kv = kv_budget(
        {cfg["sim"], run, costs.tpar, costs.engram_shape, table.hbm_cache_rows, hbm}, eng);
    const ServedWork work = workload_and_lookups({cfg, run, kv.num_kv_blocks}, eng);
    const PlacementRecords records = placement_replay({cfg["workload"], run, table, work});
    EXPECT_EQ(records, nullptr);  // no cache
    const FetchStage fetch =
        fetch_work({cfg["hardware"], cfg["sim"], run, where, costs.kernel_floor_s});
    const PlannedSteps steps = plan_steps({cfg["sim"], run, costs, table, work, records, fetch});
    const Plan plan = make_plan(cfg);
    ASSERT_EQ(steps.steps.size(), plan.steps.size());
    EXPECT_EQ(work.schedule->steps.size(), plan.steps.size());
    EXPECT_EQ(kv.num_kv_blocks, plan.num_kv_blocks);
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        EXPECT_EQ(steps.steps[i].layer_s, plan.steps[i].layer_s);
        ASSERT_EQ(steps.steps[i].fetch.size(), plan.steps[i].fetch.size());
        for (size_t f = 0; f < plan.steps[i].fetch.size(); ++f)
            EXPECT_EQ(steps.steps[i].fetch[f].unique_rows, plan.steps[i].fetch[f].unique_rows);
    }
    EXPECT_EQ(steps.first_step, plan.first_step);
    EXPECT_EQ(steps.last_step, plan.last_step);
}
