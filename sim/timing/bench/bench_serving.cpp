// Simulator speed (Google Benchmark): one serving simulation of the paper's workload, and the
// SimGrid serving loop at 1x, 10x and 100x that workload. Work is declared (steps, activities)
// and the harness derives the rates; the numbers are recorded in docs/timing.md.
//
//   PaperWorkload/plan      make_plan from scratch: workload, schedule, hashing every token,
//                           unique rows per step, op costs (caches cleared: no reuse)
//   PaperWorkload/simulate  the SimGrid run of that plan (in a forked child, as the CLI does)
//   ServingLoop/N           the SimGrid run at N x 512 requests: activities per second must stay
//                           flat as N grows (linear cost)
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "model/config.h"
#include "sim/timing/plan.h"
#include "sim/timing/serving.h"

using namespace engramsim;
using namespace engramsim::sim;

namespace {

nlohmann::json config_for(int requests) {
    return resolve_run_config({{"backbone", "dense-4b"},
                               {"engram", "paper-offload-100b"},
                               {"workload", {{"base", "nano-vllm-512"}, {"num_requests", requests}}}},
                              "bench");
}

const Plan& plan_for(int requests) {
    static std::map<int, std::unique_ptr<Plan>> plans;
    auto& p = plans[requests];
    if (!p) p = std::make_unique<Plan>(make_plan(config_for(requests)));
    return *p;
}

void PaperWorkloadPlan(benchmark::State& state) {
    // Distinct seeds defeat the plan caches, so each iteration hashes everything again.
    int64_t seed = 1000;
    for (auto _ : state) {
        auto cfg = config_for(512);
        cfg["workload"]["seed"] = seed++;
        benchmark::DoNotOptimize(make_plan(cfg).steps.size());
    }
    state.counters["tokens"] = double(plan_for(512).prompt_tokens + plan_for(512).output_tokens);
}

void PaperWorkloadSimulate(benchmark::State& state) {
    const Plan& p = plan_for(512);
    uint64_t activities = 0;
    for (auto _ : state) activities += simulate_forked(p).activities;
    state.counters["steps"] = double(p.steps.size());
    state.counters["activities/s"] =
        benchmark::Counter(double(activities), benchmark::Counter::kIsRate);
}

void ServingLoop(benchmark::State& state) {
    const Plan& p = plan_for(int(512 * state.range(0)));
    uint64_t activities = 0, steps = 0;
    for (auto _ : state) {
        activities += simulate_forked(p).activities;
        steps += p.steps.size();
    }
    state.counters["steps"] = double(p.steps.size());
    state.counters["activities/s"] =
        benchmark::Counter(double(activities), benchmark::Counter::kIsRate);
    state.counters["steps/s"] = benchmark::Counter(double(steps), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(PaperWorkloadPlan)->Name("PaperWorkload/plan")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->Iterations(3);
BENCHMARK(PaperWorkloadSimulate)->Name("PaperWorkload/simulate")->Unit(benchmark::kMillisecond)
    ->UseRealTime()->Iterations(5);
BENCHMARK(ServingLoop)->Arg(1)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Iterations(1);

BENCHMARK_MAIN();
