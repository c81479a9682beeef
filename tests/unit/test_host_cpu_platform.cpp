// The simulator's host-CPU platform (hardware.gpu.kind host-cpu), the one `validate serving`
// predicts the executor with: the rows stay in host memory (nothing crosses a link), and the
// step's compute and the fetches' host work share the host's cores. A GEMM keeps every core busy
// (OpenBLAS's team), the other ops one (the engine's compute thread), a fetch its gather threads;
// runnable threads share the cores equally, as the kernel's scheduler shares them.
//
// Checked against SimGrid here: on one core the work is conserved (a step takes its compute plus
// its fetches' host work, whenever in the step the fetch runs: a closed form); on two, every
// step's time equals a fluid reference written here from the step's program alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/serving.h"

using namespace engramsim;

namespace {

nlohmann::json cfg(const std::string& kind, const std::string& schedule,
                   const std::string& mechanism = "cpu-gather", int cores = 1) {
    nlohmann::json doc = {
        {"backbone",
         {{"base", "dense-4b"}, {"hidden_size", 256}, {"layers", 4}, {"vocab_size", 1000},
          {"attention", {{"n_heads", 4}, {"n_kv_heads", 2}, {"head_dim", 64}, {"v_head_dim", 64}}},
          {"mlp", {{"intermediate_size", 512}}}}},
        {"engram",
         {{"base", "demo-v1"}, {"engram_vocab_size", {10007, 10007}}, {"n_embed_per_ngram", 128},
          {"n_head_per_ngram", 4}, {"layer_ids", {2}}, {"hc_mult", 1}}},
        {"hardware",
         {{"base", "h800-pcie5"},
          {"gpu", {{"kind", kind}}},
          {"host", {{"sockets", 1}, {"cores_per_socket", cores}}}}},
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

double compute_penalty(const sim::Plan& plan) {
    double s = 0;
    for (const auto& st : plan.steps)
        for (const auto& f : st.fetch) s += f.compute_penalty_s;
    return s;
}

// A step's time on `cores` cores, by processor sharing, from its program alone: a run of
// `threads` threads and the fetches in flight (each of `fetch_threads` threads, its host work
// left in seconds alone) all progress at min(1, cores / their threads) of their speed alone; at
// a wait the compute idles until its fetch is done, and for a wake penalty (Idle) it idles that
// long while the fetches go on. Fetches here have host work only.
double fluid_step_seconds(const sim::Plan& plan, const sim::PlannedStep& st) {
    const double cores = plan.cpu_cores;
    struct Flight {
        int fetch;
        double left;
    };
    std::vector<Flight> flying;
    double t = 0;
    // Advance with the compute running `threads` until `left` of it is done, or idle (0
    // threads) for `left` seconds, or until fetch `until` is done when `left` is negative.
    auto advance = [&](int threads, double left, int until) {
        for (;;) {
            double demand = threads;
            demand += double(plan.fetch_threads) * double(flying.size());
            const double rate = demand > cores ? cores / demand : 1.0;
            const double own = threads > 0 ? rate : 1.0;  // an idle compute's clock runs at 1
            double dt = left >= 0 ? left / own : INFINITY;
            for (const Flight& f : flying) dt = std::min(dt, f.left / rate);
            if (!std::isfinite(dt)) return;  // waiting for a fetch already done
            t += dt;
            if (left >= 0) left -= dt * own;
            for (Flight& f : flying) f.left -= dt * rate;
            bool waited_for_is_done = false;
            std::erase_if(flying, [&](const Flight& f) {
                const bool done = f.left <= 1e-15;
                if (done && f.fetch == until) waited_for_is_done = true;
                return done;
            });
            if (left >= 0 ? left <= 1e-15 : waited_for_is_done) return;
            if (left < 0 && std::none_of(flying.begin(), flying.end(),
                                         [&](const Flight& f) { return f.fetch == until; }))
                return;
        }
    };
    for (const sim::Instr& in : sim::engine_step_program(plan, st)) {
        if (in.kind == sim::Instr::Kind::Idle) {
            EXPECT_EQ(in.seconds, st.fetch[size_t(in.fetch)].compute_penalty_s);
            advance(0, in.seconds, -1);
        } else if (in.kind == sim::Instr::Kind::Run) {
            EXPECT_GE(in.threads, 1) << "a host-cpu run names its threads";
            advance(in.threads, in.seconds, -1);
        } else if (in.kind == sim::Instr::Kind::Issue) {
            const sim::FetchWork& w = st.fetch[size_t(in.fetch)].work;
            EXPECT_EQ(w.nvme_cpu_s, 0);
            EXPECT_EQ(w.fixed_s, 0);
            if (w.host_s > 0) flying.push_back({in.fetch, w.host_s});
        } else if (in.kind == sim::Instr::Kind::Wait) {
            advance(0, -1, in.fetch);
        }
    }
    return t;
}

// Every step of run `r` as SimGrid timed it equals the fluid reference.
void expect_every_step_is_fluid(const sim::RunOutcome& r, const std::string& what) {
    ASSERT_EQ(r.des.step_start_s.size(), r.plan.steps.size());
    for (size_t i = 0; i < r.plan.steps.size(); ++i) {
        const double sim_s = r.des.step_end_s[i] - r.des.step_start_s[i];
        const double ref = fluid_step_seconds(r.plan, r.plan.steps[i]);
        ASSERT_NEAR(sim_s, ref, 1e-9 * ref) << what << " step " << i;
    }
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
        ASSERT_EQ(r.plan.cpu_cores, 1);
        const double work = host_work(r.plan);
        ASSERT_GT(work, 0);
        EXPECT_NEAR(r.metrics.makespan_s, compute + work, 1e-9 * (compute + work)) << schedule;
    }
    // On a GPU the prefetched fetch overlaps the compute instead of sharing it: faster.
    const sim::RunOutcome gpu = sim::run_config(cfg("gpu", "layer-ahead:0"));
    const sim::RunOutcome cpu = sim::run_config(cfg("host-cpu", "layer-ahead:0"));
    EXPECT_LT(gpu.metrics.stall_s, host_work(cpu.plan));
}

TEST(HostCpuPlatform, OnTwoCoresEveryStepIsTheFluidReferences) {
    const double compute =
        sim::run_config(cfg("host-cpu", "oracle", "cpu-gather", 2)).metrics.makespan_s;
    for (const std::string schedule : {"none", "layer-ahead:0", "layer-ahead:1", "layer-ahead:2"})
        for (const char* penalty : {"0 s", "300 us"}) {
            nlohmann::json c = cfg("host-cpu", schedule, "cpu-gather", 2);
            c["sim"]["fetch_wake_penalty"] = penalty;
            const sim::RunOutcome r = sim::run_config(config::resolve(c, "test"));
            ASSERT_EQ(r.plan.cpu_cores, 2);
            ASSERT_EQ(r.plan.fetch_threads, 2);  // sim.gather_threads 2
            // Both kinds of run: GEMMs on both cores, the other ops on one.
            std::set<int> threads;
            for (const auto& in : sim::engine_step_program(r.plan, r.plan.steps.back()))
                if (in.kind == sim::Instr::Kind::Run) threads.insert(in.threads);
            EXPECT_EQ(threads, (std::set<int>{1, 2}));
            expect_every_step_is_fluid(r, schedule + " " + penalty);
            const double work = host_work(r.plan), pen = compute_penalty(r.plan);
            if (schedule == "none" || schedule == "layer-ahead:2") {
                // At the Engram layer (2) the compute waits: nothing overlaps, no penalty.
                EXPECT_EQ(pen, 0) << schedule;
                EXPECT_NEAR(r.metrics.makespan_s, compute + work, 1e-9 * (compute + work));
            } else {
                // Ahead of it the fetch overlaps ops on one core, and costs less than its work;
                // the compute also loses the penalty.
                EXPECT_EQ(pen > 0, std::string(penalty) != "0 s") << schedule;
                EXPECT_LT(r.metrics.makespan_s, compute + work + pen - 1e-6) << schedule;
                EXPECT_GT(r.metrics.makespan_s, compute + pen) << schedule;
            }
        }
}

TEST(HostCpuPlatform, TheWakePenaltyChargesOnlyFetchesThatOverlapTheCompute) {
    const double P = 2e-3;
    auto with_penalty = [&](const std::string& schedule) {
        nlohmann::json c = cfg("host-cpu", schedule);
        c["sim"]["fetch_wake_penalty"] = "2 ms";
        return sim::run_config(config::resolve(c, "test"));
    };
    // Engram at layer 2: layer-ahead:0 issues before it (overlap), none and layer-ahead:2 at it.
    // On one core the compute idles the penalty before the Engram layer, and a fetch still in
    // flight takes the core meanwhile: the run is longer by at most the penalties, and every
    // step is the fluid reference's.
    for (const std::string schedule : {"none", "layer-ahead:2", "layer-ahead:0"}) {
        const sim::RunOutcome plain = sim::run_config(cfg("host-cpu", schedule));
        const sim::RunOutcome pen = with_penalty(schedule);
        uint64_t fetches = 0;
        for (const auto& st : plain.plan.steps) fetches += st.fetch.size();
        ASSERT_GT(fetches, 0u);
        const bool overlaps = schedule == "layer-ahead:0";
        for (const auto& st : pen.plan.steps)
            for (const auto& f : st.fetch) EXPECT_EQ(f.compute_penalty_s, overlaps ? P : 0) << schedule;
        if (!overlaps) {
            EXPECT_EQ(pen.metrics.makespan_s, plain.metrics.makespan_s) << schedule;
            continue;
        }
        EXPECT_GT(pen.metrics.makespan_s, plain.metrics.makespan_s + 0.5 * P * double(fetches));
        EXPECT_LE(pen.metrics.makespan_s, plain.metrics.makespan_s + P * double(fetches) + 1e-12);
        expect_every_step_is_fluid(pen, schedule);
    }
}

// With the table on disk, the per-read penalty charges each fetch issued before its layer that
// much per row read from the drive (DRAM-cache hits read none), and nothing to a fetch at its
// layer; the dispatch lengthens every fetch that reads the drive; on a table in DRAM neither
// changes anything.
TEST(HostCpuPlatform, ThePerReadWakePenaltyChargesEachReadOfAnOverlappingFetch) {
    const double P = 5e-6;
    for (const std::string table : {"nvme", "host-dram"}) {
        for (const std::string schedule : {"none", "layer-ahead:0"}) {
            nlohmann::json c = cfg("host-cpu", schedule, table == "nvme" ? "nvme" : "cpu-gather", 2);
            c["sim"]["table"] = table;
            if (table == "nvme") c["placement"] = {{"dram_capacity", "2000 rows"}, {"dram_policy", "lru"}};
            const sim::Plan plain = sim::make_plan(config::resolve(c, "test"));
            c["sim"]["fetch_wake_penalty_per_read"] = "5 us";
            c["sim"]["nvme_fetch_dispatch"] = "300 us";
            const sim::Plan pen = sim::make_plan(config::resolve(c, "test"));
            ASSERT_EQ(plain.steps.size(), pen.steps.size());
            uint64_t reads = 0, hits = 0;
            for (size_t i = 0; i < plain.steps.size(); ++i) {
                ASSERT_EQ(plain.steps[i].fetch.size(), pen.steps[i].fetch.size());
                for (size_t j = 0; j < plain.steps[i].fetch.size(); ++j) {
                    const sim::PlannedFetch& a = plain.steps[i].fetch[j];
                    const sim::PlannedFetch& b = pen.steps[i].fetch[j];
                    EXPECT_EQ(a.ssd_rows, b.ssd_rows);
                    reads += a.ssd_rows, hits += a.dram_rows;
                    const double extra = schedule == "layer-ahead:0" ? P * double(a.ssd_rows) : 0;
                    EXPECT_NEAR(b.compute_penalty_s, extra, 1e-15)
                        << table << " " << schedule << " step " << i;
                    EXPECT_EQ(b.work.host_s, a.work.host_s) << "the compute's time, not the fetch's";
                    // The dispatch: on every fetch that reads the drive, whatever the schedule.
                    EXPECT_NEAR(b.work.fixed_s, a.work.fixed_s + (a.ssd_rows > 0 ? 300e-6 : 0), 1e-15)
                        << table << " " << schedule << " step " << i;
                }
            }
            if (table == "nvme") {
                EXPECT_GT(reads, 0u);
                EXPECT_GT(hits, 0u) << "the DRAM cache served some rows";
            } else {
                EXPECT_EQ(reads, 0u);
            }
        }
    }
}

// On a host-cpu platform the drive reads' CPU (hardware.nvme.cpu_per_read) holds no core: what
// the reads cost the compute beside them is the measured penalty alone, so a step whose fetch is
// in before its Engram layer needs it takes the same time whatever the reads' CPU, but for the
// fetch's own host work that the reads' CPU delays; each fetch still lasts at least that CPU.
TEST(HostCpuPlatform, TheDriveReadsCpuHoldsNoCoreOnlyThePenaltyCharges) {
    auto run = [](const std::string& kind, const char* cpu_per_read) {
        nlohmann::json c = cfg(kind, "layer-ahead:0", "nvme", 2);
        c["sim"]["table"] = "nvme";
        c["placement"] = {{"dram_capacity", "0"}};
        c["hardware"]["nvme"]["cpu_per_read"] = cpu_per_read;
        // A slow CPU, so the layers before the Engram one can outlast its fetch.
        for (const char* k : {"bf16_dense_flops", "fp8_dense_flops"}) c["hardware"]["gpu"][k] = "20 GFLOP/s";
        c["hardware"]["gpu"]["hbm_bandwidth"] = "2 GB/s";
        return sim::run_config(config::resolve(c, "test"));
    };
    const sim::RunOutcome none = run("host-cpu", "0 s"), cpu = run("host-cpu", "20 us");
    ASSERT_EQ(none.plan.steps.size(), cpu.plan.steps.size());
    size_t hidden = 0;
    for (size_t i = 0; i < cpu.plan.steps.size(); ++i) {
        ASSERT_EQ(cpu.plan.steps[i].fetch.size(), 1u);
        const sim::FetchRecord& f = cpu.des.fetch[i][0];
        const double reads_cpu = cpu.plan.steps[i].fetch[0].work.nvme_cpu_s;
        ASSERT_GT(reads_cpu, 0) << "step " << i;
        EXPECT_GE(f.ready_s - f.issue_s, reads_cpu * (1 - 1e-12)) << "step " << i;
        if (f.ready_s > f.needed_s || none.des.fetch[i][0].ready_s > none.des.fetch[i][0].needed_s)
            continue;  // a stall: the reads' time is the step's
        ++hidden;
        // Only the fetch's host work (dedup), which now starts after the reads' CPU, moves;
        // beside it the step changes by less than that work, far less than the reads' CPU.
        const double host_s = cpu.plan.steps[i].fetch[0].work.host_s;
        ASSERT_LT(10 * host_s, reads_cpu) << "step " << i;
        EXPECT_LE(std::abs((cpu.des.step_end_s[i] - cpu.des.step_start_s[i]) -
                           (none.des.step_end_s[i] - none.des.step_start_s[i])),
                  host_s + 1e-12)
            << "step " << i;
    }
    EXPECT_GT(hidden, 0u) << "some fetch is hidden behind the layers before its own";
}

TEST(HostCpuPlatform, OneEngineOnOneHostsCores) {
    for (const char* key : {"tensor_parallel", "data_parallel"}) {
        nlohmann::json c = cfg("host-cpu", "none", "cpu-gather", 2);
        c["hardware"]["gpu"]["count"] = 2;
        c["sim"][key] = 2;
        try {
            sim::run_config(config::resolve(c, "test"));
            FAIL() << key << " 2 on a host-cpu platform was accepted";
        } catch (const config::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(std::string("sim.") + key), std::string::npos)
                << e.what();
        }
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
