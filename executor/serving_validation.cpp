#include "executor/serving_validation.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
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

// The version of the calibration in `dir`, 0 where it has none.
int calibration_version(const std::string& dir) {
    std::ifstream f(dir + "/calibration.json");
    if (!f) return 0;
    const json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
    return j.is_object() && j.contains("version") && j["version"].is_number_integer() ? j["version"].get<int>() : 0;
}

// The calibration for `cfg`: DIR itself when it holds one, else DIR/<shape key>/ (made now if
// missing, or made again where it is older than this build's: kCalibrationVersion).
std::string calibration_for(const json& cfg, const ServingOptions& opt, json& record) {
    const auto old = [](const std::string& dir, int version) {
        return "calibration " + dir + " is version " + std::to_string(version) +
               ", older than this build's " + std::to_string(kCalibrationVersion);
    };
    if (fs::exists(opt.calibration_dir + "/calibration.json")) {
        if (const int v = calibration_version(opt.calibration_dir); v < kCalibrationVersion)
            throw std::runtime_error(old(opt.calibration_dir, v) + ": make it again (engramsim calibrate CONFIG -o " +
                                     opt.calibration_dir + ")");
        return opt.calibration_dir;
    }
    const std::string dir = opt.calibration_dir + "/" + shape_key(cfg);
    const bool exists = fs::exists(dir + "/calibration.json");
    const int version = exists ? calibration_version(dir) : 0;
    const bool stale = exists && version < kCalibrationVersion;
    if (stale && opt.say) opt.say(old(dir, version) + ": measuring again");
    if (!exists || stale) {
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

// One config between its prediction and its last execution: the prediction, and every
// execution's measurements so far.
struct CaseRun {
    const ServingCase* c = nullptr;
    sim::RunOutcome pred, pred_base;
    std::vector<double> tps, base_tps;                // separate runs, tok/s
    std::vector<double> pair_overhead, interleaved_overhead, control_overhead;
    std::optional<ExecuteResult> first, first_base;   // the first separate pair, in full
    // Each interleaved execution's step ends (Engram run, baseline), for the phase split.
    std::vector<std::pair<std::vector<double>, std::vector<double>>> interleaved_ends;
};

// 1. Predict, from the calibration alone (made now if there is none).
CaseRun predict_case(const ServingCase& c, const ServingOptions& opt, json& calibrations) {
    CaseRun r;
    r.c = &c;
    const std::string cal = calibration_for(c.config, opt, calibrations);
    const json pcfg = apply_calibration(c.config, cal);
    if (opt.say) opt.say(c.name + ": predicting");
    r.pred = sim::run_config(pcfg);
    r.pred_base = sim::run_config(sim::without_engram(pcfg));
    return r;
}

// 2. Execute the config's share of round `round`: a separate pair (the Engram run, then the
// baseline) while round < repeat, an interleaved execution while round < interleaved, an A/A
// control while round < controls.
void execute_round(CaseRun& r, int round, const ServingOptions& opt) {
    const json& cfg = r.c->config;
    const std::string& name = r.c->name;
    auto of = [](int i, int n) { return std::to_string(i + 1) + " of " + std::to_string(n); };
    ExecuteOptions eo;
    eo.table_file = opt.table_file;
    if (round < opt.repeat) {
        if (opt.say) opt.say(name + ": executing, pair " + of(round, opt.repeat));
        eo.engram = true;
        ExecuteResult e = execute(cfg, eo);
        r.tps.push_back(metrics_of(e).throughput_tok_per_s);
        eo.engram = false;
        ExecuteResult base = execute(cfg, eo);
        r.base_tps.push_back(metrics_of(base).throughput_tok_per_s);
        r.pair_overhead.push_back(sim::overhead_pct(r.base_tps.back(), r.tps.back()));
        if (!r.first) {
            r.first = std::move(e), r.first_base = std::move(base);
            if (!opt.timeline_dir.empty()) {
                fs::create_directories(opt.timeline_dir);
                const std::string stem = opt.timeline_dir + "/" + name;
                std::ofstream p(stem + ".predicted.timeline.json"), m(stem + ".measured.timeline.json");
                sim::write_timeline(r.pred.plan, r.pred.des, p);
                write_timeline(*r.first, m);
                if (!p.flush() || !m.flush()) throw std::runtime_error(stem + ".*.timeline.json: write failed");
            }
        }
    }
    if (round < opt.interleaved) {
        if (opt.say) opt.say(name + ": executing interleaved, " + of(round, opt.interleaved));
        const InterleavedResult both = execute_interleaved(cfg, eo);
        r.interleaved_overhead.push_back(sim::overhead_pct(
            metrics_of(both.baseline).throughput_tok_per_s, metrics_of(both.engram).throughput_tok_per_s));
        r.interleaved_ends.emplace_back(step_ends(both.engram), step_ends(both.baseline));
    }
    if (round < opt.controls) {
        if (opt.say) opt.say(name + ": executing the A/A control, " + of(round, opt.controls));
        const InterleavedResult aa = execute_interleaved(cfg, eo, /*control=*/true);
        r.control_overhead.push_back(sim::overhead_pct(metrics_of(aa.baseline).throughput_tok_per_s,
                                                       metrics_of(aa.engram).throughput_tok_per_s));
    }
}

// 3. Compare: the prediction beside what the executions so far measured (at least one pair).
ServingOutcome outcome_of(const CaseRun& r) {
    const json& cfg = r.c->config;
    const sim::RunOutcome& pred = r.pred;
    const sim::RunOutcome& pred_base = r.pred_base;
    const ExecuteResult* first = &*r.first;
    ServingOutcome o;
    o.name = r.c->name;
    o.schedule = cfg["sim"]["schedule"].get<std::string>();
    o.table = cfg["sim"]["table"].get<std::string>();
    o.workload = cfg["workload"]["kind"].get<std::string>();
    o.max_num_seqs = cfg["sim"]["max_num_seqs"].get<int>();
    o.engram_layers = int(cfg["engram"]["layer_ids"].size());
    o.measured_overhead_runs = r.pair_overhead;
    o.measured_overhead_interleaved = r.interleaved_overhead;
    o.control_overhead = r.control_overhead;
    const ExecuteMetrics m = metrics_of(*first);
    const sim::RunMetrics& p = pred.metrics;
    if (pred.des.step_start_s.size() != first->steps.size())
        throw std::logic_error(o.name + ": the simulator planned " +
                               std::to_string(pred.des.step_start_s.size()) + " steps, the executor ran " +
                               std::to_string(first->steps.size()));
    o.steps = first->steps.size();
    o.preemptions = first->preemptions;

    o.tok_per_s = {p.throughput_tok_per_s, median_of(r.tps)};
    o.no_engram_tok_per_s = {pred_base.metrics.throughput_tok_per_s, median_of(r.base_tps)};
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
    std::vector<double> engram_ends = step_ends(*first), base_ends = step_ends(*r.first_base);
    if (!r.interleaved_ends.empty()) {
        std::vector<size_t> order(r.interleaved_ends.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return r.interleaved_overhead[a] < r.interleaved_overhead[b];
        });
        const auto& mid = r.interleaved_ends[order[(order.size() - 1) / 2]];
        engram_ends = mid.first, base_ends = mid.second;
    }
    const PhaseSplit ms = phase_split(prefill, engram_ends, base_ends);
    o.overhead_prefill_steps_s = {ps.prefill_s, ms.prefill_s};
    o.overhead_decode_steps_s = {ps.decode_s, ms.decode_s};
    o.split_engram_makespan_predicted_s = pred.des.step_end_s.empty() ? 0 : pred.des.step_end_s.back();
    o.split_engram_makespan_measured_s = engram_ends.empty() ? 0 : engram_ends.back();
    // Step by step.
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

ServingSummary summarize(std::vector<ServingOutcome> outcomes) {
    ServingSummary s;
    s.outcomes = std::move(outcomes);
    std::vector<double> tok, step, po, mo;
    for (const auto& o : s.outcomes) {
        tok.push_back(std::fabs(o.tok_per_s.error_pct()));
        step.push_back(std::fabs(o.mean_step_s.error_pct()));
        const double miss = std::fabs(o.overhead_pct.predicted - o.overhead_pct.measured);
        s.overhead_within_target += miss <= std::max(1.0, 0.2 * std::fabs(o.overhead_pct.measured));
        po.push_back(o.overhead_pct.predicted), mo.push_back(o.overhead_pct.measured);
        s.rows_exact += o.rows_exact();
        const std::vector<double>& runs = o.measured_overhead_interleaved;
        if (runs.size() >= 2) {
            const auto [lo, hi] = std::minmax_element(runs.begin(), runs.end());
            s.overhead_outside_band += o.overhead_pct.predicted < *lo || o.overhead_pct.predicted > *hi;
            const double confidence = 1 - std::ldexp(1.0, 1 - int(runs.size()));
            s.band_confidence = s.band_cases++ ? std::min(s.band_confidence, confidence) : confidence;
        }
    }
    s.tok_error_median_pct = median_of(tok);
    s.step_error_median_pct = median_of(step);
    s.tok_error_worst_pct = tok.empty() ? 0 : *std::max_element(tok.begin(), tok.end());
    s.step_error_worst_pct = step.empty() ? 0 : *std::max_element(step.begin(), step.end());
    s.same_overhead_rank = ranks(po) == ranks(mo);
    s.overhead_rank_tau = kendall_tau_b(po, mo);
    return s;
}

ServingSummary validate_serving(const std::vector<ServingCase>& cases, const ServingOptions& opt) {
    if (opt.repeat < 1)
        throw std::invalid_argument("validate serving: at least one separate pair per config (repeat " +
                                    std::to_string(opt.repeat) + ")");
    // Every prediction before any execution.
    json calibrations = json::object();
    std::vector<CaseRun> runs;
    runs.reserve(cases.size());
    for (const ServingCase& c : cases) runs.push_back(predict_case(c, opt, calibrations));
    // Then the executions in rounds, each config's share of a round in turn, so a config's runs
    // spread over the whole validation rather than one spell of a shared machine.
    const int rounds = std::max({opt.repeat, opt.interleaved, opt.controls});
    auto summary_after = [&](int done) {
        std::vector<ServingOutcome> outcomes;
        for (const CaseRun& r : runs) outcomes.push_back(outcome_of(r));
        ServingSummary s = summarize(std::move(outcomes));
        s.calibration = calibrations;
        s.rounds_done = done, s.rounds = rounds;
        return s;
    };
    for (int round = 0; round < rounds; ++round) {
        for (CaseRun& r : runs) execute_round(r, round, opt);
        if (opt.on_round && round + 1 < rounds) opt.on_round(summary_after(round + 1));
    }
    return summary_after(rounds);
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
          {"overhead_outside_measured_band",
           {{"cases", s.overhead_outside_band}, {"of", s.band_cases},
            {"band_confidence", s.band_confidence},
            {"what", "predictions outside their interleaved executions' band (lowest to highest "
                     "measured overhead), which holds the median with probability 1 - 2^(1-n) "
                     "for n independent executions; counted where n >= 2"}}},
          {"same_overhead_rank", s.same_overhead_rank},
          {"overhead_rank_kendall_tau", s.overhead_rank_tau},
          {"rows_exact", s.rows_exact},
          {"rounds", {{"done", s.rounds_done}, {"of", s.rounds}}},
          {"complete", s.rounds_done == s.rounds},
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
