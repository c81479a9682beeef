// The simulator's host-CPU platform (hardware.gpu.kind host-cpu), the one `validate serving`
// predicts the executor with: the rows stay in host memory (nothing crosses a link), and the
// step's compute and the fetches' host work share the host's one SimGrid core. On one core the
// work is conserved: a step takes its compute plus its fetches' host work, whenever in the step
// the fetch runs (a closed form, checked against SimGrid here).
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/serving.h"

using namespace engramsim;

namespace {

nlohmann::json cfg(const std::string& kind, const std::string& schedule,
                   const std::string& mechanism = "cpu-gather") {
    nlohmann::json doc = {
        {"backbone",
         {{"base", "dense-4b"}, {"hidden_size", 256}, {"layers", 4}, {"vocab_size", 1000},
          {"attention", {{"n_heads", 4}, {"n_kv_heads", 2}, {"head_dim", 64}, {"v_head_dim", 64}}},
          {"mlp", {{"intermediate_size", 512}}}}},
        {"engram",
         {{"base", "demo-v1"}, {"engram_vocab_size", {10007, 10007}}, {"n_embed_per_ngram", 128},
          {"n_head_per_ngram", 4}, {"layer_ids", {2}}, {"hc_mult", 1}}},
        {"hardware", {{"base", "h800-pcie5"}, {"gpu", {{"kind", kind}}}}},
        {"workload",
         {{"base", "nano-vllm-512"}, {"num_requests", 8},
          {"prompt_len", {{"min", 16}, {"max", 64}}}, {"output_len", {{"min", 16}, {"max", 32}}}}},
        {"sim",
         {{"table", "host-dram"}, {"mechanism", mechanism}, {"schedule", schedule},
          {"gather_threads", 2}, {"max_num_seqs", 8}, {"num_kv_blocks", 64}}}};
    return config::resolve(doc, "test");
}

double host_work(const sim::Plan& plan) {
    double s = 0;
    for (const auto& st : plan.steps)
        for (const auto& f : st.fetch) s += f.work.host_s;
    return s;
}

}  // namespace

TEST(HostCpuPlatform, RowsStayInHostMemory) {
    const sim::RunOutcome r = sim::run_config(cfg("host-cpu", "layer-ahead:0"));
    ASSERT_TRUE(r.plan.compute_on_host);
    ASSERT_FALSE(r.plan.steps.empty());
    double host = 0;
    for (const auto& st : r.plan.steps)
        for (const auto& f : st.fetch) {
            EXPECT_EQ(f.work.h2d_wire_bytes, 0) << "no copy over a link";
            EXPECT_EQ(f.work.fixed_s, 0) << "no DMA to set up";
            host += f.work.host_s;
        }
    EXPECT_GT(host, 0);
    EXPECT_EQ(r.metrics.h2d_wire_bytes, 0);
    // The same config on a GPU copies every fetch over PCIe.
    const sim::RunOutcome g = sim::run_config(cfg("gpu", "layer-ahead:0"));
    EXPECT_FALSE(g.plan.compute_on_host);
    EXPECT_GT(g.metrics.h2d_wire_bytes, 0);
}

TEST(HostCpuPlatform, ComputeAndFetchShareOneCoreSoWorkIsConserved) {
    // Oracle: fetches cost nothing, so its makespan is the compute alone.
    const double compute = sim::run_config(cfg("host-cpu", "oracle")).metrics.makespan_s;
    for (const std::string schedule : {"none", "layer-ahead:0", "layer-ahead:1"}) {
        const sim::RunOutcome r = sim::run_config(cfg("host-cpu", schedule));
        const double work = host_work(r.plan);
        ASSERT_GT(work, 0);
        EXPECT_NEAR(r.metrics.makespan_s, compute + work, 1e-9 * (compute + work)) << schedule;
    }
    // On a GPU the prefetched fetch overlaps the compute instead of sharing it: faster.
    const sim::RunOutcome gpu = sim::run_config(cfg("gpu", "layer-ahead:0"));
    const sim::RunOutcome cpu = sim::run_config(cfg("host-cpu", "layer-ahead:0"));
    EXPECT_LT(gpu.metrics.stall_s, host_work(cpu.plan));
}

TEST(HostCpuPlatform, TheWakePenaltyChargesOnlyFetchesThatOverlapTheCompute) {
    const double P = 2e-3;
    auto with_penalty = [&](const std::string& schedule) {
        nlohmann::json c = cfg("host-cpu", schedule);
        c["sim"]["fetch_wake_penalty"] = "2 ms";
        return sim::run_config(config::resolve(c, "test"));
    };
    // Engram at layer 2: layer-ahead:0 issues before it (overlap), none and layer-ahead:2 at it.
    for (const std::string schedule : {"none", "layer-ahead:2", "layer-ahead:0"}) {
        const sim::RunOutcome plain = sim::run_config(cfg("host-cpu", schedule));
        const sim::RunOutcome pen = with_penalty(schedule);
        uint64_t fetches = 0;
        for (const auto& st : plain.plan.steps) fetches += st.fetch.size();
        ASSERT_GT(fetches, 0u);
        const double extra = schedule == "layer-ahead:0" ? P * double(fetches) : 0;
        EXPECT_NEAR(pen.metrics.makespan_s, plain.metrics.makespan_s + extra,
                    1e-9 * pen.metrics.makespan_s) << schedule;
    }
}

TEST(HostCpuPlatform, OnlyCpuGatherComputesWhereTheRowsAre) {
    try {
        sim::run_config(cfg("host-cpu", "layer-ahead:0", "uva"));
        FAIL() << "uva on a host-cpu platform was accepted";
    } catch (const config::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("sim.mechanism"), std::string::npos) << e.what();
    }
}
