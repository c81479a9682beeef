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
        return double(in.max_num_batched_tokens) * in.activation_values_per_token *
                   in.bytes_per_value +
               double(in.max_num_seqs) * in.vocab * 4 + in.engram_staging_bytes;
    }

    // num_kv_blocks = floor((hbm x gpu_memory_utilization - weights - activation peak)
    //                       / (kv_block_size x KV bytes per token))
    int64_t kv_blocks(const KvSizingInput& in) const override {
        if (in.num_kv_blocks_override >= 0) return in.num_kv_blocks_override;
        const double avail =
            in.hbm_bytes * in.gpu_memory_utilization - in.weight_bytes - in.activation_peak_bytes;
        return int64_t(std::floor(avail / (double(in.kv_block_size) * in.kv_bytes_per_token)));
    }

    SchedulerConfig scheduler_config(const nlohmann::json& sim,
                                     int64_t num_kv_blocks) const override {
        return {sim["max_num_seqs"].get<int>(), sim["max_num_batched_tokens"].get<int>(),
                sim["kv_block_size"].get<int>(), num_kv_blocks};
    }

    // Continuous batching (traces/schedule.h): prefill first, decode otherwise, preempting the
    // newest sequence when the KV cache is full.
    EngineSchedule schedule(const SchedulerConfig& sc, const std::vector<uint32_t>& prompt_len,
                            const std::vector<uint32_t>& output_len) const override {
        Scheduler scheduler(sc, prompt_len, output_len);
        EngineSchedule out;
        while (auto st = scheduler.next()) out.steps.push_back(std::move(*st));
        out.preemptions = scheduler.preemptions();
        return out;
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
