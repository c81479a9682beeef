#include "executor/serving_validation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>

#include "executor/calibrate.h"
#include "executor/executor.h"
#include "model/statistics.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/results.h"

namespace engramsim::executor {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

double median_of(std::vector<double> v) { return v.empty() ? 0 : median(std::move(v)); }

// What a calibration depends on: the shapes it measures at and the DRAM the gather reads (not
// which layers have Engram, nor the batch limit: calibrate covers up to 256 sequences whatever
// the config says).
std::string shape_key(const json& cfg) {
    json engram = cfg["engram"];
    engram.erase("layer_ids");
    const json key = {cfg["backbone"], engram, cfg["sim"]["gather_threads"],
                      cfg["sim"]["max_num_batched_tokens"], cfg["sim"]["table"],
                      cfg["sim"]["nvme_queue_depth"], dram_gather_bytes(cfg)};
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(key.dump()));
    return buf;
}

// The calibration for `cfg`: DIR itself when it holds one, else DIR/<shape key>/ (made now if
// missing).
std::string calibration_for(const json& cfg, const ServingOptions& opt, json& record) {
    if (fs::exists(opt.calibration_dir + "/calibration.json")) return opt.calibration_dir;
    const std::string dir = opt.calibration_dir + "/" + shape_key(cfg);
    if (!fs::exists(dir + "/calibration.json")) {
        if (opt.say) opt.say("calibrating this machine at the shapes of " + cfg["backbone"].value("name", std::string()));
        CalibrateOptions co;
        co.quick = opt.quick;
        co.say = opt.say;
        co.table_file = opt.table_file;
        record[dir] = calibrate(cfg, dir, co);
    }
    return dir;
}

json measured_json(const ExecuteMetrics& m) {
    return {{"throughput_tok_per_s", m.throughput_tok_per_s}, {"mean_step_s", m.mean_step_s},
            {"ttft_mean_s", m.ttft_mean_s}, {"tpot_mean_s", m.tpot_mean_s},
            {"stall_s", m.stall_s}, {"makespan_s", m.makespan_s}, {"steps", m.steps}};
}

// Engram minus baseline, by phase: each step's increment of its run's clock, summed over the
// steps with prompt tokens (`prefill`) and the rest (ServingOutcome::overhead_prefill_steps_s).
struct PhaseSplit {
    double prefill_s = 0, decode_s = 0;
};
PhaseSplit phase_split(const std::vector<bool>& prefill, const std::vector<double>& engram_end,
                       const std::vector<double>& base_end) {
    if (engram_end.size() != prefill.size() || base_end.size() != prefill.size())
        throw std::logic_error("phase split: the runs have " + std::to_string(engram_end.size()) +
                               " and " + std::to_string(base_end.size()) + " steps, the plan " +
                               std::to_string(prefill.size()));
    PhaseSplit p;
    for (size_t i = 0; i < prefill.size(); ++i) {
        const double d = (engram_end[i] - (i ? engram_end[i - 1] : 0)) - (base_end[i] - (i ? base_end[i - 1] : 0));
        (prefill[i] ? p.prefill_s : p.decode_s) += d;
    }
    return p;
}

std::vector<double> step_ends(const ExecuteResult& r) {
    std::vector<double> out;
    for (const StepRecord& s : r.steps) out.push_back(s.end_s);
    return out;
}

ServingOutcome one_case(const ServingCase& c, const ServingOptions& opt, json& calibrations) {
    const json& cfg = c.config;
    ServingOutcome o;
    o.name = c.name;
    o.schedule = cfg["sim"]["schedule"].get<std::string>();
    o.table = cfg["sim"]["table"].get<std::string>();
    o.workload = cfg["workload"]["kind"].get<std::string>();
    o.max_num_seqs = cfg["sim"]["max_num_seqs"].get<int>();
    o.engram_layers = int(cfg["engram"]["layer_ids"].size());

    // 1. Predict, from the calibration alone.
    const std::string cal = calibration_for(cfg, opt, calibrations);
    const json pcfg = apply_calibration(cfg, cal);
    if (opt.say) opt.say(c.name + ": predicting");
    const sim::RunOutcome pred = sim::run_config(pcfg);
    const sim::RunOutcome pred_base = sim::run_config(sim::without_engram(pcfg));

    // 2. Execute: the Engram run and the baseline, alternating.
    ExecuteOptions eo;
    eo.table_file = opt.table_file;
    std::vector<double> tps, base_tps;
    std::optional<ExecuteResult> first, first_base;
    for (int i = 0; i < opt.repeat; ++i) {
        if (opt.say) opt.say(c.name + ": executing, pair " + std::to_string(i + 1) + " of " + std::to_string(opt.repeat));
        eo.engram = true;
        ExecuteResult r = execute(cfg, eo);
        tps.push_back(metrics_of(r).throughput_tok_per_s);
        eo.engram = false;
        ExecuteResult base = execute(cfg, eo);
        base_tps.push_back(metrics_of(base).throughput_tok_per_s);
        o.measured_overhead_runs.push_back(sim::overhead_pct(base_tps.back(), tps.back()));
        if (!first) first = std::move(r), first_base = std::move(base);
    }
    std::vector<InterleavedResult> interleaved;
    for (int i = 0; i < opt.interleaved; ++i) {
        if (opt.say) opt.say(c.name + ": executing interleaved, " + std::to_string(i + 1) + " of " + std::to_string(opt.interleaved));
        InterleavedResult both = execute_interleaved(cfg, eo);
        o.measured_overhead_interleaved.push_back(
            sim::overhead_pct(metrics_of(both.baseline).throughput_tok_per_s,
                              metrics_of(both.engram).throughput_tok_per_s));
        interleaved.push_back(std::move(both));
    }
    for (int i = 0; i < opt.controls; ++i) {
        if (opt.say) opt.say(c.name + ": executing the A/A control, " + std::to_string(i + 1) + " of " + std::to_string(opt.controls));
        const InterleavedResult aa = execute_interleaved(cfg, eo, /*control=*/true);
        o.control_overhead.push_back(sim::overhead_pct(metrics_of(aa.baseline).throughput_tok_per_s,
                                                       metrics_of(aa.engram).throughput_tok_per_s));
    }
    if (!opt.timeline_dir.empty()) {
        fs::create_directories(opt.timeline_dir);
        const std::string base = opt.timeline_dir + "/" + c.name;
        std::ofstream p(base + ".predicted.timeline.json"), e(base + ".measured.timeline.json");
        sim::write_timeline(pred.plan, pred.des, p);
        write_timeline(*first, e);
        if (!p.flush() || !e.flush()) throw std::runtime_error(base + ".*.timeline.json: write failed");
    }
    const ExecuteMetrics m = metrics_of(*first);
    const sim::RunMetrics& p = pred.metrics;
    if (pred.des.step_start_s.size() != first->steps.size())
        throw std::logic_error(c.name + ": the simulator planned " +
                               std::to_string(pred.des.step_start_s.size()) + " steps, the executor ran " +
                               std::to_string(first->steps.size()));
    o.steps = first->steps.size();
    o.preemptions = first->preemptions;

    o.tok_per_s = {p.throughput_tok_per_s, median_of(tps)};
    o.no_engram_tok_per_s = {pred_base.metrics.throughput_tok_per_s, median_of(base_tps)};
    o.mean_step_s = {p.steps ? p.makespan_s / double(p.steps) : 0, m.mean_step_s};
    o.ttft_s = {p.ttft_mean_s, m.ttft_mean_s};
    o.tpot_s = {p.tpot_mean_s, m.tpot_mean_s};
    o.stall_s = {p.stall_s, m.stall_s};
    double module_s = 0, fetch_s = 0;
    for (size_t i = 0; i < pred.plan.steps.size(); ++i) {
        for (double e : pred.plan.steps[i].engram_gpu_s) module_s += e;
        for (const sim::FetchRecord& f : pred.des.fetch[i]) fetch_s += f.ready_s - f.issue_s;
    }
    o.engram_module_s = {module_s, m.engram_compute_s};
    o.fetch_s = {fetch_s, m.fetch_s};
    for (const sim::PlannedStep& st : pred.plan.steps)
        for (const sim::PlannedFetch& f : st.fetch) {
            o.unique_rows_predicted += f.unique_rows;
            if (first->dram_cache_rows > 0) o.cache_hits_predicted += f.dram_rows;
        }
    o.unique_rows_measured = m.unique_rows, o.cache_hits_measured = m.cache_hits;
    o.overhead_pct = {sim::overhead_pct(o.no_engram_tok_per_s.predicted, o.tok_per_s.predicted),
                      median_of(o.measured_overhead_interleaved.empty() ? o.measured_overhead_runs
                                                                        : o.measured_overhead_interleaved)};
    // Where the overhead lies, by phase.
    std::vector<bool> prefill;
    for (const sim::PlannedStep& st : pred.plan.steps) prefill.push_back(st.prefill);
    o.prefill_steps = uint64_t(std::count(prefill.begin(), prefill.end(), true));
    const PhaseSplit ps = phase_split(prefill, pred.des.step_end_s, pred_base.des.step_end_s);
    const ExecuteResult* split_engram = &*first;
    const ExecuteResult* split_base = &*first_base;
    if (!interleaved.empty()) {
        std::vector<size_t> order(interleaved.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return o.measured_overhead_interleaved[a] < o.measured_overhead_interleaved[b];
        });
        const InterleavedResult& mid = interleaved[order[(order.size() - 1) / 2]];
        split_engram = &mid.engram, split_base = &mid.baseline;
    }
    const PhaseSplit ms = phase_split(prefill, step_ends(*split_engram), step_ends(*split_base));
    o.overhead_prefill_steps_s = {ps.prefill_s, ms.prefill_s};
    o.overhead_decode_steps_s = {ps.decode_s, ms.decode_s};
    o.split_engram_makespan_predicted_s = pred.des.step_end_s.empty() ? 0 : pred.des.step_end_s.back();
    o.split_engram_makespan_measured_s = split_engram->makespan_s();
    // 3. Step by step.
    std::vector<double> abs_err;
    double signed_sum = 0;  // the bias
    for (size_t i = 0; i < o.steps; ++i) {
        const double ps = pred.des.step_end_s[i] - pred.des.step_start_s[i];
        const double ms = first->steps[i].end_s - first->steps[i].start_s;
        o.step_predicted_s.push_back(ps), o.step_measured_s.push_back(ms);
        const double e = (ps - ms) / ms * 100;
        abs_err.push_back(std::fabs(e)), signed_sum += e;
    }
    const sim::AbsErrorPercentiles pe = sim::abs_error_percentiles(std::move(abs_err));
    o.step_error_p50_pct = pe.p50, o.step_error_p90_pct = pe.p90;
    o.step_error_mean_pct = o.steps ? signed_sum / double(o.steps) : 0;
    o.predicted_metrics = sim::serving_metrics_json(p);
    o.measured_metrics = measured_json(m);
    return o;
}

// Ranks of `v` (0 = smallest), ties by order.
std::vector<size_t> ranks(const std::vector<double>& v) {
    std::vector<size_t> idx(v.size()), r(v.size());
    for (size_t i = 0; i < v.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    for (size_t i = 0; i < idx.size(); ++i) r[idx[i]] = i;
    return r;
}

}  // namespace

std::vector<std::string> default_serving_configs(bool quick) {
    const fs::path dir = fs::path(ENGRAMSIM_SOURCE_DIR) / "executor/configs/serving";
    std::vector<std::string> out;
    if (fs::is_directory(dir))
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().extension() == ".json" &&
                (!quick || e.path().filename().string().rfind("quick-", 0) == 0))
                out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

ServingSummary validate_serving(const std::vector<ServingCase>& cases, const ServingOptions& opt) {
    ServingSummary s;
    s.calibration = json::object();
    for (const ServingCase& c : cases) s.outcomes.push_back(one_case(c, opt, s.calibration));
    std::vector<double> tok, step, po, mo;
    for (const auto& o : s.outcomes) {
        tok.push_back(std::fabs(o.tok_per_s.error_pct()));
        step.push_back(std::fabs(o.mean_step_s.error_pct()));
        const double miss = std::fabs(o.overhead_pct.predicted - o.overhead_pct.measured);
        s.overhead_within_target += miss <= std::max(1.0, 0.2 * std::fabs(o.overhead_pct.measured));
        po.push_back(o.overhead_pct.predicted), mo.push_back(o.overhead_pct.measured);
        s.rows_exact += o.rows_exact();
    }
    s.tok_error_median_pct = median_of(tok);
    s.step_error_median_pct = median_of(step);
    s.tok_error_worst_pct = tok.empty() ? 0 : *std::max_element(tok.begin(), tok.end());
    s.step_error_worst_pct = step.empty() ? 0 : *std::max_element(step.begin(), step.end());
    s.same_overhead_rank = ranks(po) == ranks(mo);
    s.overhead_rank_tau = kendall_tau_b(po, mo);
    return s;
}

namespace {
json steps_of(const ServingOutcome& o) {
    json a = json::array();
    for (size_t i = 0; i < o.step_measured_s.size(); ++i)
        a.push_back({o.step_predicted_s[i], o.step_measured_s[i]});
    return a;
}
}  // namespace

json to_json(const ServingSummary& s, const std::string& producer) {
    auto vs = [](const Versus& v) {
        return json{{"predicted", v.predicted}, {"measured", v.measured}, {"error_pct", v.error_pct()}};
    };
    json cases = json::array();
    for (const auto& o : s.outcomes)
        cases.push_back({{"name", o.name},
                         {"schedule", o.schedule},
                         {"table", o.table},
                         {"workload", o.workload},
                         {"max_num_seqs", o.max_num_seqs},
                         {"engram_layers", o.engram_layers},
                         {"steps", o.steps},
                         {"preemptions", o.preemptions},
                         {"throughput_tok_per_s", vs(o.tok_per_s)},
                         {"no_engram_tok_per_s", vs(o.no_engram_tok_per_s)},
                         {"mean_step_s", vs(o.mean_step_s)},
                         {"ttft_mean_s", vs(o.ttft_s)},
                         {"tpot_mean_s", vs(o.tpot_s)},
                         {"stall_s", vs(o.stall_s)},
                         {"engram_path_s",
                          {{"module_compute", vs(o.engram_module_s)},
                           {"fetch_issue_to_ready", vs(o.fetch_s)},
                           {"stall", vs(o.stall_s)}}},
                         {"overhead_by_phase_s",
                          {{"steps_with_prompt_tokens",
                            {{"steps", o.prefill_steps}, {"predicted", o.overhead_prefill_steps_s.predicted},
                             {"measured", o.overhead_prefill_steps_s.measured}}},
                           {"decode_only_steps",
                            {{"steps", o.steps - o.prefill_steps}, {"predicted", o.overhead_decode_steps_s.predicted},
                             {"measured", o.overhead_decode_steps_s.measured}}},
                           {"engram_makespan_s",
                            {{"predicted", o.split_engram_makespan_predicted_s},
                             {"measured", o.split_engram_makespan_measured_s}}},
                           {"what", "Engram run minus baseline, each step's increment of its run's clock, "
                                    "summed by phase (together the makespans' difference); measured: the "
                                    "interleaved execution at the median overhead (the lower middle of an "
                                    "even count), or the first separate pair"}}},
                         {"overhead_vs_no_engram_pct",
                          {{"predicted", o.overhead_pct.predicted},
                           {"measured", o.overhead_pct.measured},
                           {"miss_points", o.overhead_pct.predicted - o.overhead_pct.measured},
                           {"measured_from", o.measured_overhead_interleaved.empty() ? "separate runs" : "interleaved runs"},
                           {"measured_runs", o.measured_overhead_runs},
                           {"measured_interleaved", o.measured_overhead_interleaved},
                           {"a_a_control", o.control_overhead}}},
                         {"rows",
                          {{"unique", {{"predicted", o.unique_rows_predicted}, {"measured", o.unique_rows_measured}}},
                           {"dram_cache_hits", {{"predicted", o.cache_hits_predicted}, {"measured", o.cache_hits_measured}}},
                           {"exact", o.rows_exact()}}},
                         {"step_error_pct",
                          {{"abs_p50", o.step_error_p50_pct}, {"abs_p90", o.step_error_p90_pct},
                           {"mean_signed", o.step_error_mean_pct}}},
                         {"predicted", o.predicted_metrics},
                         {"measured", o.measured_metrics},
                         {"step_columns", {"predicted_s", "measured_s"}},
                         {"step_times", steps_of(o)}});
    json j = sim::validation_report_head(
        "engramsim.serving_validation", producer,
        {{"time", "s"},
         {"throughput", "output tokens per second (tok_per_s)"},
         {"overhead", "percent of the no-Engram throughput"},
         {"error", "percent, (predicted - measured) / measured; overhead misses in points"}});
    j.update(json{
        {"summary",
         {{"cases", s.outcomes.size()},
          {"throughput_abs_error_pct", {{"median", s.tok_error_median_pct}, {"worst", s.tok_error_worst_pct}}},
          {"mean_step_abs_error_pct", {{"median", s.step_error_median_pct}, {"worst", s.step_error_worst_pct}}},
          {"overhead_within_target", s.overhead_within_target},
          {"same_overhead_rank", s.same_overhead_rank},
          {"overhead_rank_kendall_tau", s.overhead_rank_tau},
          {"rows_exact", s.rows_exact},
          {"targets", "median |error| <= 10%, worst <= 20% (tok/s, mean step); overhead within "
                      "max(1 point, 20% of measured); the same overhead ranking"}}},
        {"cases", cases},
        {"calibrations_made", s.calibration}});
    return j;
}

void write_steps_csv(const ServingSummary& s, std::ostream& out) {
    out << "case,step,predicted_s,measured_s,error_pct\n";
    out.precision(9);
    for (const auto& o : s.outcomes)
        for (size_t i = 0; i < o.step_measured_s.size(); ++i)
            out << o.name << ',' << i << ',' << o.step_predicted_s[i] << ',' << o.step_measured_s[i]
                << ',' << (o.step_predicted_s[i] - o.step_measured_s[i]) / o.step_measured_s[i] * 100
                << '\n';
}

}  // namespace engramsim::executor
