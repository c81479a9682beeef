// The serving simulator on SimGrid against closed forms: a step whose fetch is fully hidden,
// partly hidden and not hidden; two fetches sharing the host link; the DES against each step's
// operator-DAG critical path on a real workload; causality of decode lookups; determinism; a DRAM
// cache in front of NVMe reading exactly placement replay's SSD rows.
// SimGrid allows one engine per process: every simulation runs in a forked child
// (simulate_forked).
#include <gtest/gtest.h>

#include "model/config.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "sim/placement/replay.h"
#include "sim/timing/serving.h"
#include "traces/lookups.h"
#include "traces/workload.h"

using namespace engramsim;
using namespace engramsim::sim;
using nlohmann::json;

namespace {

constexpr double kBw = 50e9, kLat = 1e-6;

// A 4-layer backbone with one Engram layer at `engram_layer`; each step's layer, embed, head
// and Engram times given; the host link is kBw / kLat per direction.
Plan synthetic_plan(int engram_layers_at_1 = 1) {
    Plan p;
    p.backbone.name = "synthetic";
    p.backbone.layers = 4;
    p.has_engram = true;
    p.platform.add_node({"gpu0", NodeKind::Gpu, 80e9, 3e12});
    p.platform.add_node({"host", NodeKind::Host, 1e12, 500e9});
    p.h2d = p.platform.add_link({"pcie0.h2d", "pcie", 1, 0, kBw, kLat});
    p.d2h = p.platform.add_link({"pcie0.d2h", "pcie", 0, 1, kBw, kLat});
    p.gpu = 0, p.host = 1;
    for (int i = 0; i < engram_layers_at_1; ++i) p.engram_layers.push_back(1);
    return p;
}

PlannedStep step(double embed, double layer, double head, double engram) {
    PlannedStep s;
    s.tokens = 1, s.seqs = 1;
    s.embed_s = embed, s.layer_s = layer, s.head_s = head;
    s.engram_gpu_s = {engram};
    return s;
}

PlannedFetch fetch(int issue_layer, double host_s, double fixed_s, double bytes,
                   int engram_index = 0) {
    PlannedFetch f;
    f.engram_index = engram_index;
    f.issue_layer = issue_layer;
    f.work.host_s = host_s;
    f.work.fixed_s = fixed_s;
    f.work.h2d_wire_bytes = bytes;
    f.unique_rows = 1;
    return f;
}

// Closed form of one fetch on an idle link: host work, fixed delay, latency + bytes / bw.
double fetch_s(double host_s, double fixed_s, double bytes) {
    return host_s + fixed_s + (kLat + bytes / kBw);
}

}  // namespace

// Fetch issued at the step start, done before layer 0 ends: the step is pure compute.
TEST(TimingFidelity, FullyHiddenFetchCostsNothing) {
    Plan p = synthetic_plan();
    PlannedStep s = step(10e-6, 100e-6, 20e-6, 5e-6);
    s.fetch = {fetch(0, 20e-6, 5e-6, 1'000'000)};  // 20 + 5 + 1 + 20 = 46 us < 110 us
    p.steps = {s};
    const DesResult r = simulate_forked(p);
    const double compute = 10e-6 + 100e-6 + 5e-6 + 3 * 100e-6 + 20e-6;
    EXPECT_DOUBLE_EQ(r.step_end_s[0], compute);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].issue_s, 0.0);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, fetch_s(20e-6, 5e-6, 1e6));
    EXPECT_DOUBLE_EQ(r.fetch[0][0].needed_s, 110e-6);
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), r.step_end_s[0]);
}

// Fetch longer than the compute it overlaps: the stall is fetch - (embed + layer 0).
TEST(TimingFidelity, PartlyHiddenFetchStallsForTheRest) {
    Plan p = synthetic_plan();
    PlannedStep s = step(10e-6, 100e-6, 20e-6, 5e-6);
    s.fetch = {fetch(0, 100e-6, 5e-6, 5'000'000)};  // 100 + 5 + 1 + 100 = 206 us
    p.steps = {s};
    const DesResult r = simulate_forked(p);
    const double f = fetch_s(100e-6, 5e-6, 5e6);
    const double stall = f - 110e-6;
    const RunMetrics m = compute_metrics(p, r);
    EXPECT_NEAR(m.stall_s, stall, 1e-15);
    EXPECT_NEAR(m.hidden_fetch_s, 110e-6, 1e-15);
    EXPECT_DOUBLE_EQ(r.step_end_s[0], f + 5e-6 + 3 * 100e-6 + 20e-6);
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), r.step_end_s[0]);
}

// Schedule `none`: the fetch starts when the Engram layer does and is exposed entirely.
TEST(TimingFidelity, UnhiddenFetchAddsItsWholeDuration) {
    Plan p = synthetic_plan();
    PlannedStep s = step(10e-6, 100e-6, 20e-6, 5e-6);
    s.fetch = {fetch(1, 20e-6, 5e-6, 1'000'000)};
    p.steps = {s, s};
    const DesResult r = simulate_forked(p);
    const double f = fetch_s(20e-6, 5e-6, 1e6);
    const double compute = 10e-6 + 100e-6 + 5e-6 + 3 * 100e-6 + 20e-6;
    EXPECT_DOUBLE_EQ(r.fetch[0][0].issue_s, 110e-6);
    EXPECT_DOUBLE_EQ(r.step_end_s[0], compute + f);
    EXPECT_NEAR(compute_metrics(p, r).stall_s, 2 * f, 1e-15);
    EXPECT_NEAR(r.step_end_s[1], 2 * (compute + f), 1e-15);
}

// Two fetches issued together share the link: each moves N bytes at bw / 2, so both finish
// at latency + 2N / bw, while the no-contention critical path says latency + N / bw.
TEST(TimingFidelity, TwoFetchesShareTheHostLink) {
    Plan p = synthetic_plan(2);
    PlannedStep s = step(0, 100e-6, 0, 0);
    s.engram_gpu_s = {0, 0};
    s.fetch = {fetch(0, 0, 0, 10'000'000, 0), fetch(0, 0, 0, 10'000'000, 1)};
    p.steps = {s};
    const DesResult r = simulate_forked(p);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, kLat + 2 * 1e7 / kBw);
    EXPECT_DOUBLE_EQ(r.fetch[0][1].ready_s, kLat + 2 * 1e7 / kBw);
    EXPECT_DOUBLE_EQ(r.step_end_s[0], kLat + 2 * 1e7 / kBw + 3 * 100e-6);
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), kLat + 1e7 / kBw + 3 * 100e-6);
}

// Two fetches issued together. With g seconds of host work each, sharing the host threads (the
// default) ends both at 2g; a FIFO queue serves the first in g and the second after it, at 2g.
// With B bytes to copy each, sharing the link ends both at latency + 2B / bw; one stream copies
// the first (latency + B / bw), then the second.
TEST(TimingFidelity, AFifoFetchQueueServesFetchesInIssueOrder) {
    const double g = 40e-6, bytes = 4e6, copy = kLat + bytes / kBw;
    Plan p = synthetic_plan(2);
    PlannedStep s = step(0, 1e-3, 0, 0);
    s.engram_gpu_s = {0, 0};
    s.fetch = {fetch(0, g, 0, 0, 0), fetch(0, g, 0, 0, 1)};
    p.steps = {s};
    DesResult r = simulate_forked(p);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, 2 * g);
    EXPECT_DOUBLE_EQ(r.fetch[0][1].ready_s, 2 * g);
    p.fifo_fetch_queue = true;
    r = simulate_forked(p);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, g);
    EXPECT_DOUBLE_EQ(r.fetch[0][1].ready_s, 2 * g);

    p.steps[0].fetch = {fetch(0, 0, 0, bytes, 0), fetch(0, 0, 0, bytes, 1)};
    p.fifo_fetch_queue = false;
    r = simulate_forked(p);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, kLat + 2 * bytes / kBw);
    EXPECT_DOUBLE_EQ(r.fetch[0][1].ready_s, kLat + 2 * bytes / kBw);
    p.fifo_fetch_queue = true;
    r = simulate_forked(p);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, copy);
    EXPECT_DOUBLE_EQ(r.fetch[0][1].ready_s, 2 * copy);

    // Alone, a fetch is the same under both.
    p.steps[0].fetch = {fetch(0, g, 0, bytes, 0)};
    p.steps[0].engram_gpu_s.pop_back();
    p.engram_layers.pop_back();
    EXPECT_DOUBLE_EQ(simulate_forked(p).fetch[0][0].ready_s, g + copy);
    p.fifo_fetch_queue = false;
    EXPECT_DOUBLE_EQ(simulate_forked(p).fetch[0][0].ready_s, g + copy);
}

namespace {
nlohmann::json small_config(const std::string& schedule) {
    return resolve_run_config(
        {{"backbone", "dense-4b"},
         {"engram", "paper-offload-100b"},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 24}}},
         {"sim", {{"schedule", schedule}, {"gather_threads", 1}}}},
        "test");
}
}  // namespace

// A real workload (24 nano-vLLM requests; one gather thread, so some fetches stall): the DES
// agrees with the sum of the steps' critical paths, step by step, since one Engram layer's
// fetches never overlap.
TEST(TimingFidelity, DesEqualsCriticalPathWithoutContention) {
    for (const char* sched : {"layer-ahead:0", "layer-ahead:1", "none"}) {
        const Plan p = make_plan(small_config(sched));
        ASSERT_GT(p.steps.size(), 100u);
        const DesResult des = simulate_forked(p);
        const DesResult ana = analytic(p);
        ASSERT_EQ(des.step_end_s.size(), ana.step_end_s.size());
        for (size_t i = 0; i < p.steps.size(); ++i) {
            const double d = des.step_end_s[i] - des.step_start_s[i];
            EXPECT_NEAR(d, analytic_step_seconds(p, p.steps[i]), 1e-15 + 1e-12 * d)
                << sched << " step " << i;
        }
        EXPECT_NEAR(des.makespan_s, ana.makespan_s, 1e-12 * ana.makespan_s) << sched;
        EXPECT_GT(compute_metrics(p, des).stall_s, 0) << sched;  // the case is not trivial
    }
}

// No fetch is issued before its step starts (a decode token exists only once the previous
// step has ended), and layer-ahead:K issues exactly at layer K's start.
TEST(TimingFidelity, DecodeLookupsAreNeverIssuedBeforeTheirTokenExists) {
    const Plan p = make_plan(small_config("layer-ahead:0"));
    const DesResult des = simulate_forked(p);
    size_t decode_fetches = 0;
    for (size_t i = 0; i < p.steps.size(); ++i) {
        ASSERT_EQ(des.fetch[i].size(), 1u);
        const FetchRecord& f = des.fetch[i][0];
        EXPECT_EQ(f.issue_s, des.step_start_s[i]);  // layer-ahead:0 = the step start
        if (i > 0) {
            EXPECT_GE(f.issue_s, des.step_end_s[i - 1]);
        }
        EXPECT_GE(f.needed_s, f.issue_s);
        EXPECT_GE(des.step_end_s[i], f.ready_s);
        decode_fetches += !p.steps[i].prefill;
    }
    EXPECT_GT(decode_fetches, 100u);
    const Plan p1 = make_plan(small_config("layer-ahead:1"));
    const DesResult d1 = simulate_forked(p1);
    for (size_t i = 0; i < p1.steps.size(); ++i)  // issued after the embedding and layer 0
        EXPECT_DOUBLE_EQ(d1.fetch[i][0].issue_s,
                         d1.step_start_s[i] + (p1.steps[i].embed_s + p1.steps[i].layer_s));
}

// Same config, same bytes: results.json of two runs.
TEST(TimingFidelity, TwoRunsGiveIdenticalResultsBytes) {
    const auto cfg = small_config("layer-ahead:0");
    const RunOutcome a = run_config(cfg), b = run_config(cfg);
    EXPECT_EQ(results_json(a.plan, a.metrics).dump(), results_json(b.plan, b.metrics).dump());
}

// Oracle and the HBM-resident table fetch nothing; the in-DRAM run is never faster.
TEST(TimingFidelity, OracleIsTheLowerBound) {
    const auto cfg = small_config("layer-ahead:0");
    const double dram = run_config(cfg).metrics.makespan_s;
    const double oracle = run_config(with_key(cfg, "sim.schedule", "oracle")).metrics.makespan_s;
    const double hbm = run_config(with_key(cfg, "sim.table", "hbm")).metrics.makespan_s;
    EXPECT_EQ(oracle, hbm);
    EXPECT_GT(dram, oracle);
}

// NVMe -> host -> GPU: every drive reads its share at once (each on its own link), then the
// host work, the fixed delay and the copy over the host link, back to back.
TEST(TimingFidelity, NvmeFetchReadsAllDrivesThenCopies) {
    Plan p = synthetic_plan();
    const double nv_bw = 6.4e9, nv_lat = 80e-6;
    for (int d = 0; d < 2; ++d) {
        const int n = p.platform.add_node({"nvme" + std::to_string(d), NodeKind::Nvme, 3.84e12, 0});
        p.platform.add_link({"nvme" + std::to_string(d) + ".read", "nvme", n, 1, nv_bw, nv_lat});
        p.nvme.push_back(n);
    }
    PlannedStep s = step(10e-6, 100e-6, 20e-6, 5e-6);
    PlannedFetch f = fetch(0, 20e-6, 5e-6, 1'000'000);
    f.work.nvme_bytes_per_drive = 4096.0 * 1000;
    s.fetch = {f};
    p.steps = {s};
    const DesResult r = simulate_forked(p);
    const double ready = (nv_lat + 4096.0 * 1000 / nv_bw) + fetch_s(20e-6, 5e-6, 1e6);
    EXPECT_DOUBLE_EQ(r.fetch[0][0].ready_s, ready);
    EXPECT_DOUBLE_EQ(r.step_end_s[0], ready + 5e-6 + 3 * 100e-6 + 20e-6);
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), r.step_end_s[0]);

    // IOPS-bound: the drives' I/O time (1 ms) exceeds their link time (0.64 ms); the read ends
    // after the route latency plus the I/O time.
    p.steps[0].fetch[0].work.nvme_io_s = 1e-3;
    const DesResult io = simulate_forked(p);
    EXPECT_DOUBLE_EQ(io.fetch[0][0].ready_s, (nv_lat + 1e-3) + fetch_s(20e-6, 5e-6, 1e6));
    EXPECT_DOUBLE_EQ(analytic_step_seconds(p, p.steps[0]), io.step_end_s[0]);
}

// Two reads at once from the same drives (two Engram layers' fetches here; data-parallel
// replicas in a run) take turns on each drive: both end after the latency plus twice the I/O
// time, not once.
TEST(TimingFidelity, OverlappingNvmeReadsShareTheDrivesIoRate) {
    Plan p = synthetic_plan(2);
    const double nv_bw = 6.4e9, nv_lat = 80e-6, io_s = 1e-3;
    for (int d = 0; d < 2; ++d) {
        const int n = p.platform.add_node({"nvme" + std::to_string(d), NodeKind::Nvme, 3.84e12, 0});
        p.platform.add_link({"nvme" + std::to_string(d) + ".read", "nvme", n, 1, nv_bw, nv_lat});
        p.nvme.push_back(n);
    }
    PlannedStep s = step(10e-6, 100e-6, 20e-6, 5e-6);
    s.engram_gpu_s = {5e-6, 5e-6};
    for (int e = 0; e < 2; ++e) {
        PlannedFetch f = fetch(0, 0, 0, 0, e);
        f.work.nvme_bytes_per_drive = 4096.0;
        f.work.nvme_io_s = io_s;
        s.fetch.push_back(f);
    }
    p.steps = {s};
    const DesResult r = simulate_forked(p);
    for (int e = 0; e < 2; ++e) EXPECT_DOUBLE_EQ(r.fetch[0][size_t(e)].ready_s, nv_lat + 2 * io_s);
    // One read alone: once.
    p.steps[0].fetch.pop_back();
    p.steps[0].engram_gpu_s.pop_back();
    p.engram_layers.pop_back();
    EXPECT_DOUBLE_EQ(simulate_forked(p).fetch[0][0].ready_s, nv_lat + io_s);
}

// A table on NVMe with host DRAM holding all of it, none of it, or a cache of some rows (with an
// HBM cache in front): the drives read nothing, every fetched row, or exactly the SSD rows of a
// separate placement replay of the same lookups (same steps), x nvme_io_size.
TEST(TimingFidelity, DramCacheInFrontOfNvmeReadsOnlyPlacementReplaysSsdRows) {
    auto config = [](const json& placement) {
        return resolve_run_config({{"backbone", "dense-4b"},
                                   {"engram", "paper-offload-100b"},
                                   {"workload", {{"base", "nano-vllm-512"}, {"num_requests", 16}}},
                                   {"sim", {{"table", "nvme"}, {"mechanism", "nvme"}}},
                                   {"placement", placement}},
                                  "test");
    };
    const double io = 4096;  // sim.nvme_io_size default

    const RunOutcome all = run_config(config({{"dram_capacity", "all"}}));
    EXPECT_GT(all.metrics.unique_rows, 0u);
    EXPECT_EQ(all.metrics.nvme_read_bytes, 0);
    EXPECT_EQ(all.metrics.rows_from_nvme, 0u);
    EXPECT_EQ(all.metrics.rows_from_host_dram, all.metrics.unique_rows);
    for (const auto& st : all.plan.steps)
        for (const auto& f : st.fetch) ASSERT_EQ(f.work.nvme_bytes_per_drive, 0);

    const RunOutcome none = run_config(config({{"dram_capacity", "0"}}));
    EXPECT_EQ(none.metrics.unique_rows, all.metrics.unique_rows);
    EXPECT_EQ(none.metrics.rows_from_nvme, none.metrics.unique_rows);
    EXPECT_EQ(none.metrics.nvme_read_bytes, double(none.metrics.unique_rows) * io);
    EXPECT_GT(none.metrics.makespan_s, all.metrics.makespan_s);

    // The same lookups replayed on their own, with the steps of a run's scheduler.
    auto trace_of = [](const Plan& p) {
        const json& c = p.config;
        const SchedulerConfig sc{c["sim"]["max_num_seqs"].get<int>(),
                                 c["sim"]["max_num_batched_tokens"].get<int>(),
                                 c["sim"]["kv_block_size"].get<int>(), p.num_kv_blocks};
        const Workload wl = make_workload(c["workload"]);
        return placement::densify(*hashed_lookups(p.engram, wl, sc));
    };
    const uint32_t distinct = trace_of(none.plan).universe();
    const uint64_t hbm = distinct / 4, dram = distinct / 2;
    const RunOutcome mid = run_config(config({{"hbm_capacity", std::to_string(hbm) + " rows"},
                                              {"dram_capacity", std::to_string(dram)},
                                              {"dram_policy", "s3fifo"}}));
    placement::TierConfig tiers;
    tiers.hbm_rows = hbm;
    tiers.dram_rows = dram;
    tiers.dram_policy = "s3fifo";
    const placement::ReplayResult ref = placement::replay(trace_of(mid.plan), tiers);
    ASSERT_GT(ref.total.ssd_rows, 0u);
    ASSERT_GT(ref.total.dram_rows, 0u);
    ASSERT_GT(ref.total.hbm_hits, 0u) << ref.total.dram_rows << " " << ref.total.ssd_rows;
    EXPECT_EQ(mid.metrics.rows_from_hbm, ref.total.hbm_hits);
    EXPECT_EQ(mid.metrics.rows_from_host_dram, ref.total.dram_rows);
    EXPECT_EQ(mid.metrics.rows_from_nvme, ref.total.ssd_rows);
    EXPECT_EQ(mid.metrics.nvme_read_bytes, double(ref.total.ssd_rows) * io);
    EXPECT_EQ(metrics_json(mid.metrics)["fetch"]["nvme_read_bytes"].get<double>(),
              double(ref.total.ssd_rows) * io);
    EXPECT_LT(mid.metrics.nvme_read_bytes, none.metrics.nvme_read_bytes);
}
