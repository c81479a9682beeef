// vLLM's V1 engine (github.com/vllm-project/vllm, vllm/v1/core/sched/scheduler.py and
// vllm/v1/worker/gpu_model_runner.py): chunked prefill under one token budget per step, async
// scheduling, preemption by recomputation.
#include <cmath>

#include "sim/timing/engine.h"
#include "sim/timing/plan.h"

namespace engramsim::sim {

namespace {

class VllmV1 final : public Engine {
public:
    const char* name() const override { return "vllm-v1"; }

    // profile_run: one dummy forward of max_num_batched_tokens tokens, then a dummy sampler run
    // over max_num_seqs fp32 logits; the Engram's staging buffer is live through it. The same
    // terms as nano-vLLM's warm-up (which prefills max_num_batched_tokens tokens too).
    double activation_peak(const ActivationInput& in) const override {
        return warmup_activation_peak(in);
    }

    // determine_available_memory: total x gpu_memory_utilization - the profiled peak (weights
    // and activations), divided into blocks.
    int64_t kv_blocks(const KvSizingInput& in) const override { return kv_blocks_after_warmup(in); }

    SchedulerConfig scheduler_config(const nlohmann::json& sim,
                                     int64_t num_kv_blocks) const override {
        SchedulerConfig sc{sim["max_num_seqs"].get<int>(), sim["max_num_batched_tokens"].get<int>(),
                           sim["kv_block_size"].get<int>(), num_kv_blocks};
        sc.policy = SchedulePolicy::ChunkedPrefill;
        sc.chunked_prefill = sim["enable_chunked_prefill"].get<bool>();
        sc.long_prefill_token_threshold = sim["long_prefill_token_threshold"].get<int>();
        sc.async_scheduling = sim["async_scheduling"].get<bool>();
        return sc;
    }

    EngineSchedule schedule(const SchedulerConfig& sc, const std::vector<uint32_t>& prompt_len,
                            const std::vector<uint32_t>& output_len) const override {
        return run_scheduler(sc, prompt_len, output_len);
    }

    std::vector<Instr> step_program(const Plan& plan, const PlannedStep& step) const override {
        return sim::step_program(plan, step);
    }

    // Async scheduling (EngineCore.step_with_batch_queue): step n + 1 is scheduled while step n
    // runs, and step n's outputs are processed after that.
    bool overlaps_host(const nlohmann::json& sim) const override {
        return sim["async_scheduling"].get<bool>();
    }

    // CUDAGraphMode: NONE; PIECEWISE (attention outside the graph pieces); FULL_AND_PIECEWISE
    // (full graphs for uniform decode batches, piecewise for the rest).
    GraphMode graph_mode(const std::string& cuda_graphs, bool decode_only) const override {
        if (cuda_graphs == "none") return GraphMode::Eager;
        return cuda_graphs == "full" && decode_only ? GraphMode::Full : GraphMode::Piecewise;
    }

    // vLLM's Engram lookup runs eagerly, as a break in CUDA-graph capture.
    bool engram_splits_graph(const std::string&, bool) const override { return true; }
};

}  // namespace

std::unique_ptr<Engine> make_vllm_v1_engine() {
    return std::make_unique<VllmV1>();
}

}  // namespace engramsim::sim
