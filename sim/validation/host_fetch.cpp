#include "sim/validation/host_fetch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

#include "kernels/cpu/host_fetch.h"
#include "model/config.h"
#include "model/statistics.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "traces/lookups.h"

namespace engramsim::sim {

using nlohmann::json;

FetchParams HostCalibration::params(int threads) const {
    FetchParams p;
    p.gather_threads = threads;
    p.row_access_latency_s = row_latency_s;
    p.outstanding_per_thread = outstanding_per_thread;
    p.dram_bytes_per_s = dram_bytes_per_s;
    p.dedup_rate_per_thread = dedup_rate_per_thread;
    p.hash_threads = 1;
    for (const auto& l : lines)
        if (l.threads == threads) p.gather_dispatch_s = l.fixed_s;
    return p;
}

json HostCalibration::to_json() const {
    json lines_j = json::array();
    for (const auto& l : lines)
        lines_j.push_back({{"threads", l.threads},
                           {"per_row_s", l.per_row_s},
                           {"fixed_s", l.fixed_s},
                           {"sizes_rows", l.sizes},
                           {"median_s", l.median_s}});
    return {{"table_rows", table_rows},
            {"row_bytes", row_bytes},
            {"row_latency_s", row_latency_s},
            {"gather_lines", lines_j},
            {"gather_rows_per_s_one_thread", gather_rows_per_s},
            {"outstanding_per_thread", outstanding_per_thread},
            {"all_threads", all_threads},
            {"gather_rows_per_s_all_threads", all_threads_rows_per_s},
            {"dram_bytes_per_s", dram_bytes_per_s},
            {"memcpy_bytes_per_s", memcpy_bytes_per_s},
            {"dedup_rate_per_thread", dedup_rate_per_thread},
            {"methods",
             {{"row_latency_s", "pointer chase through distinct random rows, one line each"},
              {"gather_lines",
               "uniform random rows gathered after idle_before_each_fetch_us of sleep, each size "
               "repeated, sizes interleaved; least squares through each size's median time, "
               "weighted by 1 / time^2"},
              {"outstanding_per_thread", "one thread's rows/s (1 / per_row_s) x row_latency_s"},
              {"gather_dispatch_s", "the line's fixed_s for the fetch's thread count"},
              {"dram_bytes_per_s",
               "all_threads' rows/s x (touched lines x 64 + row bytes)"},
              {"memcpy_bytes_per_s", "memcpy, bytes read + written per second (reference only)"},
              {"dedup_rate_per_thread", "one thread, 64Ki-key batches, about 12% repeats"}}}};
}

namespace {

json summary_json(const HostValidationSummary& s) {
    return {{"fetches", s.fetches},
            {"lookups", s.lookups},
            {"unique_rows", s.unique_rows},
            {"measured_gather_s", s.measured_s},
            {"predicted_gather_s", s.predicted_s},
            {"gather_error_pct", s.error_pct},
            {"measured_dedup_s", s.dedup_s},
            {"predicted_dedup_s", s.predicted_dedup_s},
            {"dedup_error_pct", s.dedup_error_pct},
            {"host_error_pct", s.host_error_pct},
            {"host_abs_error_p50_pct", s.abs_error_p50_pct},
            {"host_abs_error_p90_pct", s.abs_error_p90_pct}};
}

}  // namespace

HostValidationSummary summarize(const HostValidationRun& run, const std::string& phase) {
    using F = HostFetchSample;
    const PhaseTotals t = phase_totals<F>(
        run.fetches, phase, {&F::gather_s, &F::predicted_s, &F::dedup_s, &F::predicted_dedup_s},
        &F::gather_s, &F::predicted_s);
    HostValidationSummary s{t.fetches, t.lookups, t.unique_rows, t.sums[0], t.sums[1],
                            t.sums[2], t.sums[3]};
    s.error_pct = error_pct(s.predicted_s, s.measured_s);
    s.dedup_error_pct = error_pct(s.predicted_dedup_s, s.dedup_s);
    s.host_error_pct = error_pct(s.predicted_s + s.predicted_dedup_s, s.measured_s + s.dedup_s);
    s.abs_error_p50_pct = t.host_abs_error.p50, s.abs_error_p90_pct = t.host_abs_error.p90;
    return s;
}

HostValidation validate_host_fetch(const json& resolved, const HostValidationOptions& opt) {
    if (opt.threads.empty()) throw std::invalid_argument("host validation: no thread count");
    for (int t : opt.threads) require_range("host validation: thread counts", t, 1, 1024);
    require_range("host validation: repeats", opt.repeats, 1, 101);
    require_range("host validation: idle times (us)", opt.idle_us, 0, 1000000);
    auto say = [&](const std::string& s) {
        if (opt.progress) opt.progress(s);
    };

    const Plan plan = make_plan(resolved);
    if (!plan.has_engram)
        throw config::ConfigError("engram: the config has no Engram layer, so nothing to fetch");
    if (plan.table != "host-dram")
        throw config::ConfigError("sim.table: validate host-fetch runs a table in host DRAM, not " +
                                  plan.table);
    if (plan.mechanism != "cpu-gather")
        throw config::ConfigError("sim.mechanism: validate host-fetch checks cpu-gather, not " +
                                  plan.mechanism);
    require_uncached_single_gpu(plan, "validate host-fetch");

    say("collecting the run's row keys");
    const RunFetches run_fetches = collect_run_fetches(resolved, plan, opt.max_steps);
    const std::vector<RunFetch>& fetches = run_fetches.fetches;
    const size_t max_lookups = run_fetches.max_lookups;

    HostValidation v;
    v.config = resolved;
    v.repeats = opt.repeats;
    v.idle_us = opt.idle_us;
    const size_t row_bytes = size_t(plan.engram.row_bytes());
    say("allocating and filling the table (" + std::to_string(opt.table_bytes >> 20) + " MiB)");
    kernels::HostTable table(opt.table_bytes, row_bytes);
    v.table_bytes = table.bytes();

    // Calibration: microbenchmarks only, nothing of the run.
    say("calibrating: row latency, gather rates, DRAM traffic, dedup rate, thread dispatch");
    HostCalibration& cal = v.calibration;
    cal.table_rows = table.rows();
    cal.row_bytes = double(row_bytes);
    cal.row_latency_s = kernels::measure_row_latency(table, opt.chase_hops, 0xc0ffee);
    std::vector<uint64_t> sizes;
    for (uint64_t n : opt.calibration_sizes)
        if (n <= table.rows()) sizes.push_back(n);
    if (sizes.size() < 2) sizes = {std::max<uint64_t>(1, table.rows() / 4), table.rows()};
    std::vector<int> line_threads = opt.threads;
    line_threads.push_back(1);
    std::sort(line_threads.begin(), line_threads.end());
    line_threads.erase(std::unique(line_threads.begin(), line_threads.end()), line_threads.end());
    for (int t : line_threads) {
        const auto g = kernels::measure_gather_line(table, t, sizes, opt.calibration_repeats,
                                                    opt.idle_us, 0xbeef + uint64_t(t));
        cal.lines.push_back({t, g.per_row_s, g.fixed_s, g.sizes, g.median_s});
    }
    cal.gather_rows_per_s = 1 / cal.lines.front().per_row_s;
    cal.outstanding_per_thread = cal.gather_rows_per_s * cal.row_latency_s;
    cal.all_threads = cal.lines.back().threads;
    cal.all_threads_rows_per_s = 1 / cal.lines.back().per_row_s;
    cal.dram_bytes_per_s = cal.all_threads_rows_per_s *
                           (lines_per_row(double(row_bytes)) * 64 + double(row_bytes));
    cal.memcpy_bytes_per_s = kernels::measure_copy_bandwidth(
        size_t(std::min<uint64_t>(uint64_t(256) << 20, table.bytes())), cal.all_threads, 3);
    cal.dedup_rate_per_thread = kernels::measure_dedup_rate(1 << 16, 1 << 23, 0xd00d);

    for (int threads : opt.threads) {
        kernels::HostFetchExecutor exec(table, threads);
        exec.reserve_staging(max_lookups * row_bytes);
        const FetchParams model = cal.params(threads);
        // One untimed pass over the first fetches warms code and staging.
        for (size_t i = 0; i < std::min<size_t>(fetches.size(), 16); ++i)
            exec.fetch(run_fetches.keys_of(fetches[i]));
        const std::vector<TimedFetch> timed = time_fetches(
            run_fetches, opt.repeats, "host validation", std::to_string(threads) + " thread(s)",
            [&](std::span<const uint64_t> keys) {
                if (opt.idle_us > 0)
                    std::this_thread::sleep_for(std::chrono::microseconds(opt.idle_us));
                const auto t = exec.fetch(keys);
                return FetchTiming{t.lookups, t.unique_rows, t.dedup_s, t.gather_s};
            },
            say);
        HostValidationRun run;
        run.threads = threads;
        for (const TimedFetch& f : timed) {
            HostFetchSample s;
            static_cast<FetchSample&>(s) = sample_of(f);
            s.gather_s = f.work_s;
            s.predicted_s = gather_seconds(model, double(s.unique_rows), double(row_bytes));
            s.predicted_dedup_s = dedup_seconds(model, double(s.lookups));
            run.fetches.push_back(s);
        }
        v.runs.push_back(std::move(run));
    }
    return v;
}

json HostValidation::to_json(const std::string& producer) const {
    json runs_j = json::array();
    for (const auto& run : runs) {
        const auto all = summarize(run, "all");
        json j = summary_json(all);
        j["threads"] = run.threads;
        j["dedup_share_of_host_work"] =
            all.measured_s + all.dedup_s > 0 ? all.dedup_s / (all.measured_s + all.dedup_s) : 0;
        j["gather_dispatch_s"] = calibration.params(run.threads).gather_dispatch_s;
        // The model's gather at this thread count: DRAM-bound (the most threads' rate) or
        // latency-bound (threads x one thread's rate).
        j["dram_bound"] =
            run.threads * calibration.gather_rows_per_s > calibration.all_threads_rows_per_s;
        j["by_phase"] = {{"prefill", summary_json(summarize(run, "prefill"))},
                         {"decode", summary_json(summarize(run, "decode"))}};
        runs_j.push_back(j);
    }
    json j = validation_report_head("engramsim.host_fetch_validation", producer,
                                    {{"time", "s"},
                                     {"bytes", "B"},
                                     {"rate", "rows/s"},
                                     {"bandwidth", "B/s"},
                                     {"error", "percent, (predicted - measured) / measured"}});
    j.update(json{{"table_bytes", table_bytes},
            {"repeats", repeats},
            {"idle_before_each_fetch_us", idle_us},
            {"calibration", calibration.to_json()},
            {"model",
             "host work = sim::dedup_seconds (lookups / dedup rate) + sim::gather_seconds "
             "(dispatch + max(unique_rows x row_latency / (threads x "
             "outstanding_per_thread), unique_rows x (touched lines x 64 + row bytes) / DRAM "
             "bandwidth))"},
            {"not_validated", "hashing (bench_hash measures it), the DMA copy and the GPU side"},
            {"runs", runs_j},
            {"resolved_config", config}});
    return j;
}

void HostValidation::write_csv(std::ostream& out) const {
    out << "threads,step,engram_layer,phase,lookups,unique_rows,measured_dedup_s,"
           "predicted_dedup_s,measured_gather_s,predicted_gather_s\n";
    out.precision(9);
    for (const auto& run : runs)
        for (const auto& f : run.fetches)
            out << run.threads << ',' << f.step << ',' << f.engram_layer << ','
                << (f.prefill ? "prefill" : "decode") << ',' << f.lookups << ',' << f.unique_rows
                << ',' << f.dedup_s << ',' << f.predicted_dedup_s << ',' << f.gather_s << ','
                << f.predicted_s << '\n';
}

}  // namespace engramsim::sim
