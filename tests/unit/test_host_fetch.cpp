// The host fetch executor (kernels/cpu/host_fetch.h) and the validation of the cpu-gather model
// against it (sim/validation/host_fetch.h): exact results against brute force; timings are never
// asserted (they are the measurement), only what the report derives from them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <sstream>

#include "kernels/cpu/host_fetch.h"
#include "model/config.h"
#include "sim/validation/host_fetch.h"
#include "sim/timing/plan.h"

namespace {

using namespace engramsim;
using namespace engramsim::kernels;
using nlohmann::json;

uint64_t lcg(uint64_t& s) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 17;
}

// First occurrences, by the obvious O(n log n) method.
std::vector<uint64_t> distinct_in_order(const std::vector<uint64_t>& keys) {
    std::set<uint64_t> seen;
    std::vector<uint64_t> out;
    for (uint64_t k : keys)
        if (seen.insert(k).second) out.push_back(k);
    return out;
}

TEST(HostFetch, DeduperKeepsFirstOccurrencesInOrderAcrossBatchesOfAnySize) {
    KeyDeduper d;
    std::vector<uint64_t> out;
    uint64_t s = 7;
    // Large then small then large: a small batch reuses the front of a larger table, whose
    // stale slots carry older stamps.
    for (size_t n : {size_t(50000), size_t(10), size_t(3), size_t(0), size_t(4096), size_t(70000),
                     size_t(1), size_t(300)}) {
        std::vector<uint64_t> keys(n);
        const uint64_t space = std::max<uint64_t>(1, n / 2);  // about half are repeats
        for (auto& k : keys) k = (lcg(s) % space) * 0x9e3779b97f4a7c15ull;  // large keys too
        d.unique(keys, out);
        EXPECT_EQ(out, distinct_in_order(keys)) << "batch of " << n;
    }
}

TEST(HostFetch, DeduperInverseIndexesEachKeysDistinctRow) {
    KeyDeduper d;
    std::vector<uint64_t> out, plain;
    std::vector<uint32_t> inverse;
    uint64_t s = 11;
    for (size_t n : {size_t(5000), size_t(7), size_t(0), size_t(20000)}) {
        std::vector<uint64_t> keys(n);
        for (auto& k : keys) k = lcg(s) % std::max<size_t>(1, n / 3);
        d.unique(keys, out, inverse);
        d.unique(keys, plain);
        EXPECT_EQ(out, plain) << "batch of " << n;  // the same rows, in the same order
        ASSERT_EQ(inverse.size(), keys.size());
        for (size_t j = 0; j < n; ++j) ASSERT_EQ(out[inverse[j]], keys[j]) << j;
    }
}

TEST(HostFetch, TableHoldsItsPatternAndRejectsNonsense) {
    HostTable t(1000 * 160 + 100, 160);
    EXPECT_EQ(t.rows(), 1000u);
    EXPECT_EQ(t.bytes(), 160000u);
    for (uint64_t r : {0ull, 1ull, 999ull})
        for (size_t b : {size_t(0), size_t(7), size_t(8), size_t(159)})
            EXPECT_EQ(t.data()[r * 160 + b], host_table_byte(r, b));
    EXPECT_NE(host_table_byte(0, 0) + 256 * host_table_byte(0, 1),
              host_table_byte(1, 0) + 256 * host_table_byte(1, 1));
    EXPECT_THROW(HostTable(100, 160), std::invalid_argument);  // no whole row
    EXPECT_THROW(HostTable(1000, 0), std::invalid_argument);
}

TEST(HostFetch, TeamRunsEveryPartOnceEveryTime) {
    for (int threads : {1, 2, 3}) {
        ThreadTeam team(threads);
        EXPECT_EQ(team.threads(), threads);
        std::vector<std::atomic<int>> hits(static_cast<size_t>(threads));
        for (int round = 0; round < 200; ++round)
            team.run([&](int part, int parts) {
                EXPECT_EQ(parts, threads);
                hits[size_t(part)].fetch_add(1);
            });
        for (auto& h : hits) EXPECT_EQ(h.load(), 200);
    }
    EXPECT_THROW(ThreadTeam(0), std::invalid_argument);
}

// Every thread count stages exactly the unique rows, in first-seen order, byte for byte.
TEST(HostFetch, FetchStagesTheUniqueRowsByteForByteWithAnyThreadCountAndJoin) {
    HostTable table(uint64_t(4099) * 96, 96);
    std::vector<uint64_t> keys(20000);
    uint64_t s = 11;
    for (auto& k : keys) k = lcg(s) % 30000;  // keys beyond the table wrap onto its rows
    const auto unique = distinct_in_order(keys);
    for (int threads : {1, 2, 3})
      for (bool sleep_to_join : {false, true}) {  // a background prefetcher sleeps to join
        HostFetchExecutor exec(table, threads, sleep_to_join);
        const HostFetchTimes t = exec.fetch(keys);
        EXPECT_EQ(t.lookups, keys.size());
        ASSERT_EQ(t.unique_rows, unique.size());
        ASSERT_EQ(exec.staging().size(), unique.size() * 96);
        ASSERT_EQ(exec.last_rows().size(), unique.size());
        for (size_t i = 0; i < unique.size(); ++i) {
            const uint64_t row = unique[i] % table.rows();
            ASSERT_EQ(exec.last_rows()[i], row);
            for (size_t b = 0; b < 96; ++b)
                ASSERT_EQ(exec.staging()[i * 96 + b], host_table_byte(row, b))
                    << threads << " threads, sleep_to_join " << sleep_to_join << ", row " << i
                    << " byte " << b;
        }
        EXPECT_GE(t.gather_s, 0);
        EXPECT_GE(t.dedup_s, 0);
      }
}

// The gather line's fit: a line is recovered exactly; where the small sizes' fixed cost, noisy,
// makes the weighted slope negative (a table in the caches, a busy machine), a row costs the
// slope between the two largest sizes; a time that does not grow with the rows is an error.
TEST(HostFetch, GatherLineFitKeepsARowsCostPositive) {
    const std::vector<uint64_t> sizes = {64, 256, 1024, 4096, 16384, 65536};
    std::vector<double> line;
    for (uint64_t n : sizes) line.push_back(2e-6 + double(n) * 5e-9);
    const GatherLine exact = fit_gather_line(sizes, line);
    EXPECT_NEAR(exact.per_row_s, 5e-9, 5e-9 * 1e-9);
    EXPECT_NEAR(exact.fixed_s, 2e-6, 2e-6 * 1e-9);
    // Falling times at the small sizes: the weighted slope is negative (-1.7e-10 s a row).
    const std::vector<double> noisy = {100e-6, 80e-6, 60e-6, 40e-6, 41e-6, 45e-6};
    const GatherLine g = fit_gather_line(sizes, noisy);
    EXPECT_DOUBLE_EQ(g.per_row_s, (45e-6 - 41e-6) / (65536 - 16384));
    EXPECT_GE(g.fixed_s, 0);
    EXPECT_EQ(g.median_s, noisy);
    try {
        fit_gather_line({64, 256}, {10e-6, 9e-6});
        ADD_FAILURE() << "a gather that gets faster with more rows was fitted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("does not grow with its rows"), std::string::npos) << e.what();
    }
    EXPECT_THROW(fit_gather_line({64}, {1e-6}), std::invalid_argument);
}

TEST(HostFetch, CalibrationRejectsBadArguments) {
    HostTable table(64 * 160, 160);
    EXPECT_THROW(measure_row_latency(table, 1, 1), std::invalid_argument);
    EXPECT_THROW(measure_gather_line(table, 1, {16}, 1, 0, 1), std::invalid_argument);
    EXPECT_THROW(measure_gather_line(table, 1, {16, 16}, 1, 0, 1), std::invalid_argument);
    EXPECT_THROW(measure_gather_line(table, 1, {0, 16}, 1, 0, 1), std::invalid_argument);
    EXPECT_THROW(measure_dedup_rate(100, 10, 1), std::invalid_argument);
    EXPECT_THROW(measure_copy_bandwidth(0, 1, 1), std::invalid_argument);
    // The chase overwrites rows; fill() restores the pattern.
    EXPECT_GT(measure_row_latency(table, 64, 3), 0);
    table.fill();
    EXPECT_EQ(table.data()[5 * 160 + 3], host_table_byte(5, 3));
}

json small_run(int requests) {
    return sim::resolve_run_config(
        {{"backbone", "dense-4b"},
         {"engram", "paper-offload-100b"},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", requests}}}},
        "test");
}

// The report's predictions are the simulator's own functions on the simulator's own counts,
// for every fetch; the totals and the files follow from them.
TEST(HostValidation, PredictsEveryFetchWithTheSimulatorsModelAndCounts) {
    const json cfg = small_run(6);
    sim::HostValidationOptions o;
    o.threads = {1, 2};
    o.table_bytes = uint64_t(16) << 20;
    o.repeats = 2;
    o.idle_us = 0;
    o.chase_hops = 4096;
    o.calibration_sizes = {256, 1024, 4096};
    o.calibration_repeats = 3;
    const sim::HostValidation v = sim::validate_host_fetch(cfg, o);

    const sim::Plan plan = sim::make_plan(cfg);
    ASSERT_EQ(v.runs.size(), 2u);
    const double row_bytes = plan.engram.row_bytes();
    for (const auto& run : v.runs) {
        ASSERT_EQ(run.fetches.size(), plan.steps.size());  // one Engram layer: a fetch per step
        const sim::FetchParams model = v.calibration.params(run.threads);
        EXPECT_EQ(model.gather_threads, run.threads);
        uint64_t unique = 0;
        for (size_t i = 0; i < run.fetches.size(); ++i) {
            const auto& f = run.fetches[i];
            EXPECT_EQ(f.step, i);
            EXPECT_EQ(f.prefill, plan.steps[i].prefill);
            EXPECT_EQ(f.lookups, plan.steps[i].fetch.at(0).lookups);
            EXPECT_EQ(f.unique_rows, plan.steps[i].fetch.at(0).unique_rows);
            EXPECT_EQ(f.predicted_s, sim::gather_seconds(model, double(f.unique_rows), row_bytes));
            EXPECT_EQ(f.predicted_dedup_s, double(f.lookups) / v.calibration.dedup_rate_per_thread);
            unique += f.unique_rows;
        }
        const auto all = sim::summarize(run, "all");
        const auto pre = sim::summarize(run, "prefill"), dec = sim::summarize(run, "decode");
        EXPECT_EQ(all.unique_rows, unique);
        EXPECT_EQ(pre.fetches + dec.fetches, all.fetches);
        EXPECT_DOUBLE_EQ(all.host_error_pct,
                         100 * ((all.predicted_s + all.predicted_dedup_s) /
                                    (all.measured_s + all.dedup_s) -
                                1));
    }
    // Calibration: the model's latency-bound rate for one thread is the measured line's slope;
    // each thread count's fixed cost is its line's intercept.
    const auto& c = v.calibration;
    ASSERT_EQ(c.lines.size(), 2u);
    EXPECT_EQ(c.lines[0].threads, 1);
    EXPECT_EQ(c.lines[0].sizes, (std::vector<uint64_t>{256, 1024, 4096}));
    EXPECT_DOUBLE_EQ(c.gather_rows_per_s, 1 / c.lines[0].per_row_s);
    EXPECT_DOUBLE_EQ(c.outstanding_per_thread, c.gather_rows_per_s * c.row_latency_s);
    EXPECT_EQ(v.calibration.params(2).gather_dispatch_s, c.lines[1].fixed_s);
    EXPECT_EQ(c.all_threads, 2);
    EXPECT_DOUBLE_EQ(c.all_threads_rows_per_s, 1 / c.lines[1].per_row_s);
    for (const auto& l : c.lines) {  // each line: least squares through its medians, 1 / t^2
        ASSERT_EQ(l.median_s.size(), 3u);
        double sw = 0, swx = 0, swy = 0, swxx = 0, swxy = 0;
        for (size_t k = 0; k < 3; ++k) {
            const double x = double(l.sizes[k]), y = l.median_s[k], w = 1 / (y * y);
            sw += w, swx += w * x, swy += w * y, swxx += w * x * x, swxy += w * x * y;
        }
        const double b = (sw * swxy - swx * swy) / (sw * swxx - swx * swx);
        EXPECT_NEAR(l.per_row_s, b, 1e-9 * std::abs(b));
        EXPECT_NEAR(l.fixed_s, std::max(0.0, (swy - b * swx) / sw), 1e-12);
    }

    const json j = v.to_json("test build");
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["kind"], "engramsim.host_fetch_validation");
    EXPECT_EQ(j["producer"], "test build");
    EXPECT_TRUE(j["units"].contains("time"));
    ASSERT_EQ(j["runs"].size(), 2u);
    EXPECT_EQ(j["runs"][1]["threads"], 2);
    EXPECT_EQ(j["runs"][0]["fetches"], plan.steps.size());
    std::ostringstream csv;
    v.write_csv(csv);
    const std::string text = csv.str();
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 2 * long(plan.steps.size()));
    EXPECT_EQ(text.rfind("threads,step,engram_layer,phase,lookups,unique_rows,", 0), 0u);
}

TEST(HostValidation, RefusesWhatItCannotValidateNamingTheKey) {
    sim::HostValidationOptions o;
    o.table_bytes = 1 << 20;
    auto expect_key = [&](const json& change, const std::string& key) {
        json cfg = small_run(2);
        cfg.merge_patch(change);
        try {
            sim::validate_host_fetch(sim::resolve_run_config(cfg, "test"), o);
            ADD_FAILURE() << "accepted " << change.dump();
        } catch (const config::ConfigError& e) {
            EXPECT_EQ(std::string(e.what()).rfind(key, 0), 0u) << e.what();
        }
    };
    expect_key({{"sim", {{"table", "nvme"}, {"mechanism", "nvme"}}}}, "sim.table");
    expect_key({{"sim", {{"mechanism", "uva"}}}}, "sim.mechanism");
    expect_key({{"placement", {{"hbm_capacity", "1M rows"}}}}, "placement.hbm_capacity");
    o.threads = {0};
    EXPECT_THROW(sim::validate_host_fetch(small_run(2), o), std::invalid_argument);
}

}  // namespace
