#include "sim/validation/fetch_validation.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/config.h"
#include "model/statistics.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "traces/lookups.h"

namespace engramsim::sim {

using nlohmann::json;

RunFetches collect_run_fetches(const json& resolved, const Plan& plan, uint64_t max_steps,
                               uint64_t stride) {
    if (stride < 1) throw std::invalid_argument("collect_run_fetches: stride is at least 1");
    const json& simc = resolved.at("sim");
    SchedulerConfig sc{simc.at("max_num_seqs").get<int>(),
                       simc.at("max_num_batched_tokens").get<int>(),
                       simc.at("kv_block_size").get<int>(), plan.num_kv_blocks};
    auto source = make_lookups(plan.engram, resolved.at("workload"), sc);
    RunFetches out;
    StepBatch batch;
    uint64_t taken = 0;
    for (uint64_t step = 0; source->next(batch); ++step) {
        if (step >= plan.steps.size())
            throw std::logic_error("run fetches: more steps than the plan has");
        if (step % stride != 0) continue;
        if (max_steps && taken >= max_steps) break;
        ++taken;
        const PlannedStep& ps = plan.steps[size_t(step)];
        for (size_t l = 0; l < batch.rows.size(); ++l) {
            RunFetch f{step, int(l), batch.prefill, out.keys.size(), 0, 0};
            out.keys.insert(out.keys.end(), batch.rows[l].begin(), batch.rows[l].end());
            f.end = out.keys.size();
            out.max_lookups = std::max(out.max_lookups, f.end - f.begin);
            const auto it = std::find_if(ps.fetch.begin(), ps.fetch.end(),
                                         [&](const PlannedFetch& p) { return p.engram_index == int(l); });
            if (it == ps.fetch.end())
                throw std::logic_error("run fetches: the plan does not fetch step " +
                                       std::to_string(step) + " layer " + std::to_string(l));
            f.plan_unique_rows = it->unique_rows;
            out.fetches.push_back(f);
        }
    }
    if (out.fetches.empty()) throw std::invalid_argument("run fetches: the run has no fetch");
    return out;
}

std::vector<TimedFetch> time_fetches(const RunFetches& run, int repeats, const std::string& who,
                                     const std::string& label,
                                     const std::function<FetchTiming(std::span<const uint64_t>)>& fetch,
                                     const std::function<void(const std::string&)>& say) {
    const size_t n = run.fetches.size();
    std::vector<std::vector<double>> dedup(n), work(n);
    std::vector<TimedFetch> out(n);
    for (int r = 0; r < repeats; ++r) {
        if (say)
            say(label + ": pass " + std::to_string(r + 1) + "/" + std::to_string(repeats) +
                " over " + std::to_string(n) + " fetches");
        for (size_t i = 0; i < n; ++i) {
            const RunFetch& f = run.fetches[i];
            const FetchTiming t = fetch(run.keys_of(f));
            if (t.unique_rows != f.plan_unique_rows)
                throw std::logic_error(who + ": step " + std::to_string(f.step) + " layer " +
                                       std::to_string(f.layer) + " has " +
                                       std::to_string(t.unique_rows) +
                                       " unique rows, the plan counted " +
                                       std::to_string(f.plan_unique_rows));
            dedup[i].push_back(t.dedup_s);
            work[i].push_back(t.work_s);
            out[i] = {f.step, f.layer, f.prefill, t.lookups, t.unique_rows, 0, 0};
        }
    }
    for (size_t i = 0; i < n; ++i) out[i].dedup_s = median(dedup[i]), out[i].work_s = median(work[i]);
    return out;
}

FetchSample sample_of(const TimedFetch& f) {
    return {f.step, f.engram_layer, f.prefill, f.lookups, f.unique_rows, f.dedup_s, 0};
}

double error_pct(double predicted, double measured) {
    return measured > 0 ? 100 * (predicted / measured - 1) : 0;
}

AbsErrorPercentiles abs_error_percentiles(std::vector<double> abs_errors) {
    std::sort(abs_errors.begin(), abs_errors.end());
    return {percentile_sorted(abs_errors, 0.5), percentile_sorted(abs_errors, 0.9)};
}

bool in_phase(bool prefill, const std::string& phase) {
    if (phase == "all") return true;
    if (phase != "prefill" && phase != "decode")
        throw std::invalid_argument("summarize: phase is all, prefill or decode");
    return prefill == (phase == "prefill");
}

json validation_report_head(const std::string& kind, const std::string& producer,
                            const json& units) {
    return {{"schema_version", 1},
            {"kind", kind},
            {"producer", producer},
            {"units", units},
            {"machine", machine_json()}};
}

void require_range(const std::string& what, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        throw std::invalid_argument(what + " are " + std::to_string(lo) + ".." +
                                    std::to_string(hi) + ", not " + std::to_string(v));
}

void require_uncached_single_gpu(const Plan& plan, const std::string& command) {
    if (plan.hbm_cache_rows > 0)
        throw config::ConfigError("placement.hbm_capacity: " + command +
                                  " needs every unique row fetched (0)");
    if (plan.tensor_parallel != 1 || plan.data_parallel != 1)
        throw config::ConfigError(std::string(plan.tensor_parallel != 1 ? "sim.tensor_parallel"
                                                                         : "sim.data_parallel") +
                                  ": " + command + " runs one GPU's fetches (1)");
}

}  // namespace engramsim::sim
