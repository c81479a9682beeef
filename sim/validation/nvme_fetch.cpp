#include "sim/validation/nvme_fetch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "kernels/cpu/block_io.h"
#include "model/config.h"
#include "model/statistics.h"
#include "sim/validation/fetch_validation.h"
#include "sim/timing/plan.h"

namespace engramsim::sim {

using nlohmann::json;

namespace {

json summary_json(const NvmeValidationSummary& s) {
    return {{"fetches", s.fetches},
            {"lookups", s.lookups},
            {"unique_rows", s.unique_rows},
            {"measured_read_s", s.read_s},
            {"predicted_read_s", s.predicted_read_s},
            {"read_error_pct", s.read_error_pct},
            {"predicted_read_linear_s", s.predicted_read_linear_s},
            {"read_error_linear_pct", s.read_error_linear_pct},
            {"host_error_linear_pct", s.host_error_linear_pct},
            {"predicted_read_measured_s", s.predicted_read_measured_s},
            {"read_error_measured_pct", s.read_error_measured_pct},
            {"host_error_measured_pct", s.host_error_measured_pct},
            {"measured_dedup_s", s.dedup_s},
            {"predicted_dedup_s", s.predicted_dedup_s},
            {"host_error_pct", s.host_error_pct},
            {"host_abs_error_p50_pct", s.abs_error_p50_pct},
            {"host_abs_error_p90_pct", s.abs_error_p90_pct}};
}

}  // namespace

FetchParams NvmeCalibration::params(int queue_depth, FetchParams::NvmeQueueing law) const {
    FetchParams p;
    p.nvme_queueing = law;
    p.hash_threads = 1;
    p.dedup_rate_per_thread = dedup_rate_per_thread;
    p.nvme_drives = 1;
    p.nvme_iops_per_drive = random_read_iops;
    p.nvme_read_bytes_per_s = read_bytes_per_s;
    p.nvme_latency_s = read_latency_s;
    p.nvme_io_bytes = io_bytes;
    p.nvme_queue_depth = queue_depth;
    for (const auto& [d, r] : curve) p.nvme_iops_at_depth.push_back({double(d), r});
    // Not timed here (no DRAM-held rows, no GPU link); set so the mechanism accepts the params.
    p.dram_bytes_per_s = p.link_bytes_per_s = read_bytes_per_s;
    return p;
}

bool NvmeCalibration::on_curve(int depth) const {
    return std::any_of(curve.begin(), curve.end(), [&](const auto& c) { return c.first == depth; });
}

std::vector<int> nvme_curve_depths(int saturation_depth, const std::vector<int>& validated,
                                   const std::vector<int>& extra) {
    std::vector<int> d{1, saturation_depth};
    if (!extra.empty())
        d.insert(d.end(), extra.begin(), extra.end());
    else
        for (int q = 2; q < saturation_depth; q *= 2)
            if (std::find(validated.begin(), validated.end(), q) == validated.end()) d.push_back(q);
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    return d;
}

json NvmeCalibration::to_json() const {
    auto rates = [](const std::vector<std::pair<int, double>>& v) {
        json a = json::array();
        for (const auto& [d, r] : v) a.push_back({{"queue_depth", d}, {"iops", r}});
        return a;
    };
    return {{"file", file},
            {"file_bytes", file_bytes},
            {"io_bytes", io_bytes},
            {"row_bytes", row_bytes},
            {"read_latency_s", read_latency_s},
            {"saturation_depth", saturation_depth},
            {"random_read_iops", random_read_iops},
            {"read_bytes_per_s", read_bytes_per_s},
            {"dedup_rate_per_thread", dedup_rate_per_thread},
            {"iops_at_validated_depths", rates(iops_at_depth)},
            {"iops_curve", rates(curve)},
            {"methods",
             {{"read_latency_s",
               "direct reads of random blocks one at a time, mean (1 / the rate at depth 1)"},
              {"random_read_iops",
               "direct reads of random blocks, saturation_depth threads each with one in flight"},
              {"read_bytes_per_s", "sequential 1 MiB direct reads, 8 in flight"},
              {"iops_at_validated_depths",
               "as random_read_iops at each validated depth "
               "(reference: not used by the model)"},
              {"iops_curve",
               "depth 1: 1 / read_latency_s; others as random_read_iops at that "
               "depth (sim.nvme_queueing measured)"},
              {"dedup_rate_per_thread", "one thread, 64Ki-key batches, about 12% repeats"}}}};
}

json NvmeCalibration::hardware_nvme() const {
    auto count = [](double x) { return std::to_string(std::llround(x)); };
    json at = json::object();
    for (const auto& [d, r] : curve) at[std::to_string(d)] = count(r);
    for (const auto& [d, r] : iops_at_depth) at[std::to_string(d)] = count(r);
    char lat[32], bw[32];
    std::snprintf(lat, sizeof lat, "%.1f us", read_latency_s * 1e6);
    std::snprintf(bw, sizeof bw, "%.2f GB/s", read_bytes_per_s / 1e9);
    return {{"count", 1},
            {"read_latency", lat},
            {"random_read_iops", count(random_read_iops)},
            {"read_bandwidth", bw},
            {"iops_at_depth", at}};
}

NvmeValidationSummary summarize(const NvmeValidationRun& run, const std::string& phase) {
    using F = NvmeFetchSample;
    const PhaseTotals t = phase_totals<F>(
        run.fetches, phase,
        {&F::read_s, &F::predicted_read_s, &F::dedup_s, &F::predicted_dedup_s,
         &F::predicted_read_linear_s, &F::predicted_read_measured_s},
        &F::read_s, &F::predicted_read_s);
    NvmeValidationSummary s{t.fetches, t.lookups,  t.unique_rows, t.sums[0],
                            t.sums[1], t.sums[2], t.sums[3],     t.sums[4], t.sums[5]};
    const double host = s.read_s + s.dedup_s;
    s.read_error_pct = error_pct(s.predicted_read_s, s.read_s);
    s.host_error_pct = error_pct(s.predicted_read_s + s.predicted_dedup_s, host);
    s.read_error_linear_pct = error_pct(s.predicted_read_linear_s, s.read_s);
    s.host_error_linear_pct = error_pct(s.predicted_read_linear_s + s.predicted_dedup_s, host);
    s.read_error_measured_pct = error_pct(s.predicted_read_measured_s, s.read_s);
    s.host_error_measured_pct = error_pct(s.predicted_read_measured_s + s.predicted_dedup_s, host);
    s.abs_error_p50_pct = t.host_abs_error.p50, s.abs_error_p90_pct = t.host_abs_error.p90;
    return s;
}

namespace {

void check_options(const NvmeValidationOptions& opt) {
    if (opt.file.empty()) throw std::invalid_argument("nvme validation: no table file");
    if (opt.queue_depths.empty()) throw std::invalid_argument("nvme validation: no queue depth");
    for (int q : opt.queue_depths) require_range("nvme validation: queue depths", q, 1, 1024);
    require_range("nvme validation: saturation depths", opt.saturation_depth, 1, 1024);
    for (int q : opt.curve_depths) require_range("nvme validation: curve depths", q, 1, 1024);
    require_range("nvme validation: repeats", opt.repeats, 1, 101);
    if (opt.steps < 1) throw std::invalid_argument("nvme validation: at least one step");
}

// The run config's plan, refused unless it reads every fetched row from one drive.
Plan uncached_nvme_plan(const json& resolved) {
    Plan plan = make_plan(resolved);
    if (!plan.has_engram)
        throw config::ConfigError("engram: the config has no Engram layer, so nothing to fetch");
    if (plan.table != "nvme")
        throw config::ConfigError("sim.table: validate nvme-fetch runs a table on NVMe (nvme), "
                                  "not " + plan.table);
    if (plan.dram_cache_rows > 0)
        throw config::ConfigError(
            "placement.dram_capacity: validate nvme-fetch reads every unique row from the drive "
            "(0); validate host-fetch checks the DRAM side");
    require_uncached_single_gpu(plan, "validate nvme-fetch");
    return plan;
}

// The drive's parameters from microbenchmarks on the file, none of which sees the run.
NvmeCalibration calibrate_drive(const kernels::BlockFile& file, const NvmeValidationOptions& opt,
                                size_t row_bytes, const std::function<void(const std::string&)>& say) {
    const std::vector<int> curve_depths =
        nvme_curve_depths(opt.saturation_depth, opt.queue_depths, opt.curve_depths);
    std::string curve_list;
    for (int d : curve_depths) {
        if (!curve_list.empty()) curve_list += ',';
        curve_list += std::to_string(d);
    }
    say("calibrating: read latency, IOPS at depths " + curve_list +
        ", sequential bandwidth, dedup rate");
    NvmeCalibration cal;
    cal.file = opt.file;
    cal.file_bytes = file.blocks() * file.io_bytes();
    cal.io_bytes = double(file.io_bytes());
    cal.row_bytes = double(row_bytes);
    // A short untimed warm-up: the first reads of a file pay for metadata and a cold device.
    (void)kernels::measure_read_latency(file, 64, 0x5eed);
    cal.read_latency_s = kernels::measure_read_latency(file, opt.latency_reads, 0x1a7e);
    cal.saturation_depth = opt.saturation_depth;
    cal.random_read_iops =
        kernels::measure_read_iops(file, opt.saturation_depth,
                                   std::max<uint64_t>(opt.iops_reads, uint64_t(opt.saturation_depth)),
                                   0x10b5);
    cal.read_bytes_per_s = kernels::measure_read_bandwidth(file, size_t(1) << 20, 8,
                                                           std::min<uint64_t>(cal.file_bytes, uint64_t(1) << 30));
    cal.dedup_rate_per_thread = kernels::measure_dedup_rate(1 << 16, 1 << 23, 0xd00d);
    auto iops_at = [&](int q) {
        return kernels::measure_read_iops(file, q, std::max<uint64_t>(opt.iops_reads, uint64_t(q)),
                                          0x10b5 + uint64_t(q));
    };
    for (int q : curve_depths)
        cal.curve.push_back({q, q == 1                      ? 1 / cal.read_latency_s
                                : q == opt.saturation_depth ? cal.random_read_iops
                                                            : iops_at(q)});
    for (int q : opt.queue_depths) cal.iops_at_depth.push_back({q, iops_at(q)});
    return cal;
}

// The run's fetches at queue depth q: executed, then predicted by each queueing law.
NvmeValidationRun validate_depth(const kernels::BlockFile& file, const RunFetches& rf, int q,
                                 const NvmeCalibration& cal, const NvmeValidationOptions& opt,
                                 const std::function<void(const std::string&)>& say) {
    const size_t row_bytes = size_t(cal.row_bytes);
    kernels::BlockFetchExecutor exec(file, row_bytes, q);
    for (const RunFetch& f : rf.fetches) exec.warm(rf.keys_of(f));
    const std::vector<TimedFetch> timed = time_fetches(
        rf, opt.repeats, "nvme validation", "queue depth " + std::to_string(q),
        [&](std::span<const uint64_t> keys) {
            const auto t = exec.fetch(keys);
            return FetchTiming{t.lookups, t.unique_rows, t.dedup_s, t.read_s};
        },
        say);
    using Q = FetchParams::NvmeQueueing;
    const auto knee = make_fetch_mechanism("nvme", cal.params(q, Q::Knee));
    const auto linear = make_fetch_mechanism("nvme", cal.params(q, Q::Linear));
    const auto measured = make_fetch_mechanism("nvme", cal.params(q, Q::Measured));
    // The drive's part of the fetch as the simulator times it on an idle route of zero latency
    // (a local disk): its bytes at the read bandwidth or its I/Os at their rate.
    auto drive_s = [&](const FetchWork& w) {
        return std::max(w.nvme_bytes_per_drive / cal.read_bytes_per_s, w.nvme_io_s);
    };
    NvmeValidationRun run;
    run.queue_depth = q;
    for (const TimedFetch& f : timed) {
        NvmeFetchSample s;
        static_cast<FetchSample&>(s) = sample_of(f);
        s.read_s = f.work_s;
        FetchInput in;
        in.lookups = double(s.lookups);
        in.unique_rows = double(s.unique_rows);
        in.row_bytes = double(row_bytes);
        const FetchWork w = knee->plan(in);
        s.predicted_dedup_s = w.host_s;
        s.predicted_read_s = drive_s(w);
        s.predicted_read_linear_s = drive_s(linear->plan(in));
        s.predicted_read_measured_s = drive_s(measured->plan(in));
        run.fetches.push_back(s);
    }
    return run;
}

}  // namespace

NvmeValidation validate_nvme_fetch(const json& resolved, const NvmeValidationOptions& opt) {
    check_options(opt);
    auto say = [&](const std::string& s) {
        if (opt.progress) opt.progress(s);
    };
    const Plan plan = uncached_nvme_plan(resolved);
    NvmeValidation v;
    v.config = resolved;
    v.repeats = opt.repeats;
    v.step_stride = std::max<uint64_t>(1, (plan.steps.size() + opt.steps - 1) / opt.steps);
    say("collecting the row keys of " + std::to_string(opt.steps) + " steps (every " +
        std::to_string(v.step_stride) + ")");
    const RunFetches rf = collect_run_fetches(resolved, plan, opt.steps, v.step_stride);

    const auto io_bytes = size_t(config::quantity(resolved.at("sim"), "nvme_io_size", units::Dim::Bytes));
    say("opening " + opt.file + " (" + std::to_string(opt.file_bytes >> 20) +
        " MiB; written once with a pattern when missing or smaller)");
    kernels::BlockFile file(opt.file, opt.file_bytes, io_bytes);
    v.calibration = calibrate_drive(file, opt, size_t(plan.engram.row_bytes()), say);
    for (int q : opt.queue_depths)
        v.runs.push_back(validate_depth(file, rf, q, v.calibration, opt, say));
    return v;
}

json NvmeValidation::to_json(const std::string& producer) const {
    json runs_j = json::array();
    for (const auto& run : runs) {
        json j = summary_json(summarize(run, "all"));
        j["queue_depth"] = run.queue_depth;
        j["model_iops"] = nvme_read_rate(calibration.params(run.queue_depth));
        j["model_iops_linear"] =
            nvme_read_rate(calibration.params(run.queue_depth, FetchParams::NvmeQueueing::Linear));
        j["model_iops_measured"] = nvme_read_rate(
            calibration.params(run.queue_depth, FetchParams::NvmeQueueing::Measured));
        j["on_curve"] = calibration.on_curve(run.queue_depth);
        // The rate the run's reads achieved: next to iops_at_validated_depths (the same depth
        // measured minutes before) it is the drive's repeatability, the floor under every law.
        const auto all = summarize(run, "all");
        j["measured_iops"] = all.read_s > 0 ? double(all.unique_rows) / all.read_s : 0.0;
        j["by_phase"] = {{"prefill", summary_json(summarize(run, "prefill"))},
                         {"decode", summary_json(summarize(run, "decode"))}};
        runs_j.push_back(j);
    }
    json j = validation_report_head("engramsim.nvme_fetch_validation", producer,
                                    {{"time", "s"},
                                     {"bytes", "B"},
                                     {"rate", "reads/s"},
                                     {"bandwidth", "B/s"},
                                     {"error", "percent, (predicted - measured) / measured"}});
    j.update(json{{"repeats", repeats},
                  {"step_stride", step_stride},
                  {"calibration", calibration.to_json()},
                  {"hardware_nvme", calibration.hardware_nvme()},
                  {"model",
                   "host work = sim::dedup_seconds (lookups / dedup rate) + the drive's read: "
                   "max(unique_rows x io_bytes / read bandwidth, unique_rows / rate), the nvme "
                   "mechanism's plan with one drive; rate (sim::nvme_read_rate) knee: "
                   "min(random_read_iops, Q / read_latency), linear: Q / (read_latency + (Q - 1) / "
                   "random_read_iops), measured: calibration.iops_curve with Q / rate linear in Q "
                   "between its depths (a run with on_curve true was calibrated at its own "
                   "depth)"},
                  {"not_validated", "the DMA copy to the GPU, several drives, hashing"},
                  {"runs", runs_j},
                  {"resolved_config", config}});
    return j;
}

void NvmeValidation::write_csv(std::ostream& out) const {
    out << "queue_depth,step,engram_layer,phase,lookups,unique_rows,measured_dedup_s,"
           "predicted_dedup_s,measured_read_s,predicted_read_s,predicted_read_linear_s,"
           "predicted_read_measured_s\n";
    out.precision(9);
    for (const auto& run : runs)
        for (const auto& f : run.fetches)
            out << run.queue_depth << ',' << f.step << ',' << f.engram_layer << ','
                << (f.prefill ? "prefill" : "decode") << ',' << f.lookups << ',' << f.unique_rows
                << ',' << f.dedup_s << ',' << f.predicted_dedup_s << ',' << f.read_s << ','
                << f.predicted_read_s << ',' << f.predicted_read_linear_s << ','
                << f.predicted_read_measured_s << '\n';
}

}  // namespace engramsim::sim
