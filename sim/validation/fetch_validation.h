// The skeleton every validation of a fetch term shares (validate host-fetch, validate
// nvme-fetch; the end-to-end `validate serving` in executor/ reuses its report head and errors):
//
//   1. the run:     the plan of a run config, refused unless it fetches what the term covers;
//                   its fetches with their row keys (collect_run_fetches);
//   2. calibrate:   the term's parameters from microbenchmarks that never see the run (each
//                   validation's own);
//   3. execute:     every fetch for real, `repeats` times, each one's medians
//                   (time_fetches), its distinct rows checked against the plan's;
//   4. predict:     the model's time for the same fetch, by the function the simulator calls;
//   5. summarise:   errors per fetch and by phase (in_phase, abs_error_percentiles), a versioned
//                   report (validation_report_head), a CSV and a plot.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace engramsim::sim {

struct Plan;

// The fetches of a run with their row keys, from the same lookup source and scheduler the
// simulator's plan counted (each fetch's unique-row count from the plan, for checking).
struct RunFetch {
    uint64_t step = 0;
    int layer = 0;  // index among the config's Engram layers
    bool prefill = false;
    size_t begin = 0, end = 0;  // into RunFetches::keys
    uint64_t plan_unique_rows = 0;
};
struct RunFetches {
    std::vector<uint64_t> keys;
    std::vector<RunFetch> fetches;
    size_t max_lookups = 0;
    std::span<const uint64_t> keys_of(const RunFetch& f) const {
        return {keys.data() + f.begin, f.end - f.begin};
    }
};
// Steps 0, stride, 2 x stride, ... (all of them with stride 1), at most max_steps (0: no limit).
RunFetches collect_run_fetches(const nlohmann::json& resolved, const Plan& plan,
                               uint64_t max_steps, uint64_t stride = 1);

// One execution of one fetch: its counts and the two parts every fetch term has, the
// deduplication and the work on the distinct rows (a gather, or the disk reads).
struct FetchTiming {
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0, work_s = 0;
};
// A fetch of the run, executed: its place in the run and the medians over the repeats.
struct TimedFetch {
    uint64_t step = 0;
    int engram_layer = 0;
    bool prefill = false;
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0, work_s = 0;
};
// Executes every fetch of `run` `repeats` times by `fetch` (passes over the whole run, so the
// medians span it) and returns each fetch's medians. Throws std::logic_error when a fetch's
// distinct rows differ from the plan's; `who` names the validation in the message, `label` the
// variant in the progress lines.
std::vector<TimedFetch> time_fetches(const RunFetches& run, int repeats, const std::string& who,
                                     const std::string& label,
                                     const std::function<FetchTiming(std::span<const uint64_t>)>& fetch,
                                     const std::function<void(const std::string&)>& say);

// (predicted - measured) / measured in percent (0 when nothing was measured).
double error_pct(double predicted, double measured);
// The p50 and p90 of absolute errors (sorted here).
struct AbsErrorPercentiles {
    double p50 = 0, p90 = 0;
};
AbsErrorPercentiles abs_error_percentiles(std::vector<double> abs_errors);
// What every validation records per fetch; each adds its term's measured and predicted work.
struct FetchSample {
    uint64_t step = 0;
    int engram_layer = 0;  // index among the config's Engram layers
    bool prefill = false;
    uint64_t lookups = 0, unique_rows = 0;
    double dedup_s = 0;            // measured: median over the repeats
    double predicted_dedup_s = 0;  // the model's
};
// The measured part of a sample: place, counts, dedup.
FetchSample sample_of(const TimedFetch& f);

// Totals over the fetches of one phase: counts, each of `columns` summed (in their order), and
// the p50 / p90 of each fetch's |error| of host work (dedup + `work`, predicted against
// measured; fetches with no measured work left out).
struct PhaseTotals {
    uint64_t fetches = 0, lookups = 0, unique_rows = 0;
    std::vector<double> sums;
    AbsErrorPercentiles host_abs_error;
};
template <class Sample>
PhaseTotals phase_totals(const std::vector<Sample>& fetches, const std::string& phase,
                         std::initializer_list<double Sample::*> columns,
                         double Sample::*measured_work, double Sample::*predicted_work);

// Whether a fetch of this phase counts under `phase` ("all", "prefill", "decode"); throws
// std::invalid_argument for another phase.
bool in_phase(bool prefill, const std::string& phase);
// schema_version, kind, producer, units, machine: the head of a validation report.
nlohmann::json validation_report_head(const std::string& kind, const std::string& producer,
                                      const nlohmann::json& units);
// Throws std::invalid_argument "<what> are lo..hi, not v" (`what` names the option, plural).
void require_range(const std::string& what, int64_t v, int64_t lo, int64_t hi);
// Throws config::ConfigError naming the key unless the run fetches every unique row (no HBM
// cache) on one GPU (TP 1, DP 1); `command` names the validation in the message.
void require_uncached_single_gpu(const Plan& plan, const std::string& command);

template <class Sample>
PhaseTotals phase_totals(const std::vector<Sample>& fetches, const std::string& phase,
                         std::initializer_list<double Sample::*> columns,
                         double Sample::*measured_work, double Sample::*predicted_work) {
    PhaseTotals t;
    t.sums.assign(columns.size(), 0);
    std::vector<double> abs_err;
    for (const Sample& f : fetches) {
        if (!in_phase(f.prefill, phase)) continue;
        ++t.fetches;
        t.lookups += f.lookups;
        t.unique_rows += f.unique_rows;
        size_t c = 0;
        for (double Sample::*col : columns) t.sums[c++] += f.*col;
        const double host = f.*measured_work + f.dedup_s;
        if (host > 0)
            abs_err.push_back(std::abs(error_pct(f.*predicted_work + f.predicted_dedup_s, host)));
    }
    t.host_abs_error = abs_error_percentiles(std::move(abs_err));
    return t;
}

}  // namespace engramsim::sim
