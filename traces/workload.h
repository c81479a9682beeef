// Serving workloads: the requests an inference engine is given, each a prompt and the tokens it
// will generate. Lookups depend only on tokens, so a workload fixes every Engram lookup.
//
// Sources (config section "workload", see model/config.cpp):
//   nano-vllm  nano-vLLM's bench.py, bit for bit: random.seed(seed); each prompt has
//              randint(100, 1024) ids drawn by randint(0, 10000); then each request's
//              max_tokens = randint(100, 1024). This is what the Engram paper's Table 4 ran.
//              The generated ids (unknowable without the model) are drawn uniformly from the
//              same id range by a second, independent generator (seed + 1), so the prompts and
//              lengths stay identical to nano-vLLM's.
//   corpus     real text: each request takes a window of a token file starting at a document
//              start (BOS); the prompt is its first P tokens and the generated tokens are the
//              real continuation that follows, so decode lookups follow real text.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace engramsim {

struct Request {
    uint32_t id = 0;
    std::vector<uint32_t> prompt;  // raw token ids fed at prefill
    std::vector<uint32_t> output;  // raw token ids the model generates, in order
};

struct Workload {
    std::string description;
    uint64_t seed = 0;
    std::vector<Request> requests;

    uint64_t prompt_tokens() const;
    uint64_t output_tokens() const;
};

// nano-vLLM bench.py with `num_seqs` requests (the paper: 512), lengths uniform in
// [min_len, max_input_len] / [min_len, max_output_len], prompt ids uniform in [0, max_token_id].
Workload nano_vllm_workload(size_t num_seqs, uint64_t seed = 0, int min_len = 100,
                            int max_input_len = 1024, int max_output_len = 1024,
                            uint32_t max_token_id = 10000);

// Builds a workload from a resolved "workload" config section (kinds nano-vllm and corpus; a
// synthetic workload has lengths but no tokens: see make_lookups in traces/lookups.h).
Workload make_workload(const nlohmann::json& workload_section);

// The prompt and output lengths of a workload's requests.
void request_lengths(const Workload& workload, std::vector<uint32_t>& prompt_len,
                     std::vector<uint32_t>& output_len);

// The prompt and output lengths a workload section draws (any kind).
void workload_lengths(const nlohmann::json& workload_section, std::vector<uint32_t>& prompt_len,
                      std::vector<uint32_t>& output_len);

}  // namespace engramsim
