// nano-vLLM (github.com/GeeeekExplorer/nano-vllm), as the paper's Table 4 ran it.
#include <cmath>

#include "model/config.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan.h"

namespace engramsim::sim {

namespace {

class NanoVllm final : public Engine {
public:
    const char* name() const override { return "nano-vllm"; }

    // The warm-up runs one max_num_batched_tokens prefill: its largest live tensors, plus
    // max_num_seqs fp32 logits, plus the Engram's buffer for one step's unique rows.
    double activation_peak(const ActivationInput& in) const override {
        return warmup_activation_peak(in);
    }

    // num_kv_blocks = floor((hbm x gpu_memory_utilization - weights - activation peak)
    //                       / (kv_block_size x KV bytes per token))
    int64_t kv_blocks(const KvSizingInput& in) const override { return kv_blocks_after_warmup(in); }

    SchedulerConfig scheduler_config(const nlohmann::json& sim,
                                     int64_t num_kv_blocks) const override {
        return {sim["max_num_seqs"].get<int>(), sim["max_num_batched_tokens"].get<int>(),
                sim["kv_block_size"].get<int>(), num_kv_blocks};
    }

    // Continuous batching (traces/schedule.h): prefill first, decode otherwise, preempting the
    // newest sequence when the KV cache is full.
    EngineSchedule schedule(const SchedulerConfig& sc, const std::vector<uint32_t>& prompt_len,
                            const std::vector<uint32_t>& output_len) const override {
        return run_scheduler(sc, prompt_len, output_len);
    }

    // One synchronous step (schedule, run the model, sample, then the next): the model's
    // program as the plan lays it out, nothing of the engine's own between steps.
    std::vector<Instr> step_program(const Plan& plan, const PlannedStep& step) const override {
        return sim::step_program(plan, step);
    }

    // model_runner.py: decode replays a graph captured per batch size (whole model); prefill
    // runs eagerly; enforce_eager runs everything eagerly. No piecewise graphs.
    GraphMode graph_mode(const std::string& cuda_graphs, bool decode_only) const override {
        if (cuda_graphs == "piecewise")
            throw config::ConfigError("sim.cuda_graphs: nano-vllm captures whole-model graphs "
                                      "(full) or none; piecewise is vllm-v1's");
        return cuda_graphs == "full" && decode_only ? GraphMode::Full : GraphMode::Eager;
    }

    // A host copy cannot sit inside a graph: rows the host gathers or reads (cpu-gather, nvme,
    // remote-gather) split the graph at their Engram layer, a wait between the two; a UVA
    // gather is a kernel and stays inside.
    bool engram_splits_graph(const std::string& mechanism, bool fetching) const override {
        return fetching && mechanism != "uva";
    }
};

}  // namespace

std::unique_ptr<Engine> make_nano_vllm_engine() {
    return std::make_unique<NanoVllm>();
}

}  // namespace engramsim::sim
