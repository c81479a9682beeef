// Simulator cost at scale (Google Benchmark): DeepSeek-V3 with DeepSeek-V4.1-Flash's Engram
// table replicated, expert parallelism over every GPU, a decode-heavy workload on every
// attention rank (32 requests, 100-200 prompt tokens, 100-128 output tokens: 127 steps), on
// 1, 8, 32 and 128 H200 nodes (8 to 1024 GPUs). Each case is one SimGrid run in a forked child,
// timed by the run's own wall clock (engine.run(), the platform's construction apart); the
// harness reports activities (executions, sleeps, comms) per second, which must stay within 2x
// from 8 to 1024 GPUs. Cluster/gpu/N runs one actor per GPU instead of per node, for comparison.
// The numbers are recorded in docs/scaleout.md.
#include <benchmark/benchmark.h>

#include "model/config.h"
#include "sim/scaleout/cluster_sim.h"
#include "sim/timing/plan.h"

using namespace engramsim;
using namespace engramsim::sim;
using namespace engramsim::sim::scaleout;

namespace {

ClusterPlan plan_for(int nodes, const char* granularity) {
    return make_cluster_plan(resolve_run_config(
        {{"backbone", "deepseek-v3"},
         {"engram", {{"base", "deepseek-v41-flash-engram"}, {"hc_mult", 1}}},
         {"hardware", "h200"},
         {"workload",
          {{"base", "nano-vllm-512"},
           {"num_requests", 32},
           {"prompt_len", {{"dist", "uniform"}, {"min", 100}, {"max", 200}}},
           {"output_len", {{"dist", "uniform"}, {"min", 100}, {"max", 128}}}}},
         {"cluster", {{"nodes", nodes}, {"granularity", granularity}}}},
        "bench"));
}

void Cluster(benchmark::State& state, const char* granularity) {
    const ClusterPlan plan = plan_for(int(state.range(0)), granularity);
    uint64_t activities = 0;
    double run = 0, setup = 0;
    for (auto _ : state) {
        const ClusterResult r = simulate_cluster_forked(plan);
        state.SetIterationTime(r.wall_s);
        activities += r.activities;
        run += r.wall_s;
        setup += r.setup_s;
    }
    state.counters["gpus"] = plan.layout.world;
    state.counters["steps"] = double(plan.steps.size());
    state.counters["activities"] = double(activities) / double(state.iterations());
    state.counters["events_per_s"] = double(activities) / run;
    state.counters["setup_s"] = setup / double(state.iterations());
}

}  // namespace

BENCHMARK_CAPTURE(Cluster, node, "node")
    ->Arg(1)->Arg(8)->Arg(32)->Arg(128)
    ->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(Cluster, gpu, "gpu")
    ->Arg(1)->Arg(8)->Arg(32)
    ->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

BENCHMARK_MAIN();
