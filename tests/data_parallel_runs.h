// The small data-parallel runs the DP tests share: Dense-4B with the paper's 100B layer on an
// HGX board (h100-sxm with `gpus` GPUs; the preset has one), `requests` of nano-vLLM's workload.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "sim/timing/plan.h"

namespace engramsim::test {

inline nlohmann::json hgx_run(const nlohmann::json& sim, int requests,
                              const std::string& hw = "h100-sxm", int gpus = 8) {
    return sim::resolve_run_config(
        {{"backbone", "dense-4b"},
         {"engram", "paper-offload-100b"},
         {"hardware", {{"base", hw}, {"gpu", {{"count", gpus}}}}},
         {"workload", {{"base", "nano-vllm-512"}, {"num_requests", requests}}},
         {"sim", sim}},
        "test");
}

}  // namespace engramsim::test
