// The registry: one line per engine. Keep the table sorted by name.
#include <map>
#include <mutex>

#include "sim/timing/engine.h"

namespace engramsim::sim {

// Factories, one per file (sim/engine_<name>.cpp).
std::unique_ptr<Engine> make_nano_vllm_engine();
std::unique_ptr<Engine> make_vllm_v1_engine();

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
