// The registry: one line per engine. Keep the table sorted by name.
#include <cmath>
#include <map>
#include <mutex>

#include "sim/timing/engine.h"

namespace engramsim::sim {

// Factories, one per file (sim/engine_<name>.cpp).
std::unique_ptr<Engine> make_nano_vllm_engine();
std::unique_ptr<Engine> make_vllm_v1_engine();

double warmup_activation_peak(const ActivationInput& in) {
    return double(in.max_num_batched_tokens) * in.activation_values_per_token * in.bytes_per_value +
           double(in.max_num_seqs) * in.vocab * 4 + in.engram_staging_bytes;
}

int64_t kv_blocks_after_warmup(const KvSizingInput& in) {
    if (in.num_kv_blocks_override >= 0) return in.num_kv_blocks_override;
    const double avail =
        in.hbm_bytes * in.gpu_memory_utilization - in.weight_bytes - in.activation_peak_bytes;
    return int64_t(std::floor(avail / (double(in.kv_block_size) * in.kv_bytes_per_token)));
}

EngineSchedule run_scheduler(const SchedulerConfig& sc, const std::vector<uint32_t>& prompt_len,
                             const std::vector<uint32_t>& output_len) {
    Scheduler scheduler(sc, prompt_len, output_len);
    EngineSchedule out;
    while (auto st = scheduler.next()) out.steps.push_back(std::move(*st));
    out.preemptions = scheduler.preemptions();
    return out;
}

const std::vector<EngineInfo>& engines() {
    static const std::vector<EngineInfo> all = {
        {"nano-vllm",
         "nano-vLLM: KV cache sized after a warm-up run, continuous batching with preemption",
         make_nano_vllm_engine},
        {"vllm-v1",
         "vLLM V1: chunked prefill under one token budget per step, async scheduling, "
         "preemption by recomputation",
         make_vllm_v1_engine},
    };
    return all;
}

const Engine& engine(const std::string& name) {
    static std::mutex mutex;
    static std::map<std::string, std::unique_ptr<Engine>> made;
    for (const auto& e : engines())
        if (name == e.name) {
            std::lock_guard lock(mutex);
            auto& slot = made[name];
            if (!slot) slot = e.make();
            return *slot;
        }
    std::string known;
    for (const auto& e : engines()) known += (known.empty() ? "" : ", ") + std::string(e.name);
    throw UnknownEngine("unknown engine '" + name + "'; known: " + known);
}

}  // namespace engramsim::sim
