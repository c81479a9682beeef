// Continuous batching, step by step, as nano-vLLM's scheduler does it (and vLLM's V0 default):
// prefill-first, at most `max_num_seqs` sequences and `max_num_batched_tokens` prefill tokens per
// step, a paged KV cache of `num_kv_blocks` blocks of `kv_block_size` tokens, preemption by
// recomputation when the cache is full (the newest running sequence goes back to the front of
// the waiting queue and later prefills its prompt plus what it had generated). Every request
// runs to its full output length (ignore_eos, as in the benchmark). Prefix caching is not
// modeled (the benchmark's random prompts share no blocks).
//
// The schedule depends only on lengths, never on time: every request is waiting at t = 0, as in
// an offline throughput benchmark. So placement replay (which rows each step reads) and the
// timing simulator (how long each step takes) see the very same steps.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace engramsim {

struct SchedulerConfig {
    int max_num_seqs = 512;               // nano-vLLM default
    int max_num_batched_tokens = 16384;   // nano-vLLM default
    int kv_block_size = 256;              // tokens per KV block (nano-vLLM default)
    int64_t num_kv_blocks = -1;           // KV cache capacity; -1: unlimited
};

// The tokens one request feeds the model in one step: positions [first, first + count) of its
// sequence (prompt, then generated tokens). A prefill feeds the prompt (plus, after a preemption,
// the tokens generated so far); a decode feeds the last generated token.
struct StepSlice {
    uint32_t request = 0;
    uint32_t first = 0;
    uint32_t count = 0;
};

struct Step {
    uint64_t index = 0;
    bool prefill = false;
    std::vector<StepSlice> slices;
    uint64_t tokens = 0;          // sum of slice counts
    uint64_t context_tokens = 0;  // KV entries attended to, summed over the step's sequences
    uint32_t finished = 0;        // requests that produced their last token in this step
    std::vector<uint32_t> preempted;  // requests preempted while scheduling this step (their KV freed)
};

class Scheduler {
public:
    // `prompt_len[i]` and `output_len[i]` (>= 1) of request i. Throws std::invalid_argument if a
    // request can never be scheduled (prompt + output beyond the KV cache, or a prompt longer
    // than max_num_batched_tokens).
    Scheduler(SchedulerConfig config, std::vector<uint32_t> prompt_len,
              std::vector<uint32_t> output_len);

    // The next step, or nullopt when every request has finished.
    std::optional<Step> next();

    uint64_t preemptions() const { return preemptions_; }

private:
    struct Seq {
        uint32_t prompt = 0, output = 0;
        uint32_t generated = 0;  // output tokens produced so far
        int64_t blocks = 0;      // KV blocks held
        uint32_t len() const { return prompt + generated; }
    };
    int64_t blocks_for(uint32_t tokens) const;
    void preempt(uint32_t id);

    SchedulerConfig config_;
    std::vector<Seq> seqs_;
    std::vector<uint32_t> preempted_now_;  // filled by preempt() during next()
    std::deque<uint32_t> waiting_, running_;
    int64_t free_blocks_ = 0;
    uint64_t step_index_ = 0;
    uint64_t preemptions_ = 0;
};

}  // namespace engramsim
