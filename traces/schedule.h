// Continuous batching, step by step, as two engines schedule it. Every request is waiting at
// t = 0 and runs to its full output length (ignore_eos, as in an offline throughput benchmark);
// prefix caching is not modeled (the benchmark's random prompts share no blocks). The schedule
// depends only on lengths, never on time, so placement replay (which rows each step reads) and
// the timing simulator (how long each step takes) see the very same steps.
//
// PrefillFirst, nano-vLLM's scheduler (and vLLM's V0 default): a step prefills waiting sequences
// (whole prompts, at most `max_num_seqs` sequences and `max_num_batched_tokens` tokens) or, when
// none fits, decodes every running sequence; preemption by recomputation when the cache is full
// (the newest running sequence goes back to the front of the waiting queue and later prefills
// its prompt plus what it had generated).
//
// ChunkedPrefill, vLLM V1's scheduler (vllm/v1/core/sched/scheduler.py, FCFS): one token budget
// of `max_num_batched_tokens` per step, spent first on the running requests in order (a decode
// token each, or the next chunk of a prompt still being prefilled), then, if nothing was
// preempted, on waiting requests while fewer than `max_num_seqs` run. A prompt longer than the
// budget left is cut into chunks; a chunk that does not reach the sequence's end samples no
// token. A request that cannot get its KV blocks preempts the last running request (itself
// last), which goes back to the front of the waiting queue and later recomputes everything.
// With async scheduling the engine schedules step n + 1 before it has processed step n's
// outputs, so a request's last token frees its KV blocks and its running slot one step late.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace engramsim {

enum class SchedulePolicy { PrefillFirst, ChunkedPrefill };

struct SchedulerConfig {
    int max_num_seqs = 512;               // nano-vLLM default
    int max_num_batched_tokens = 16384;   // nano-vLLM default
    int kv_block_size = 256;              // tokens per KV block (nano-vLLM default)
    int64_t num_kv_blocks = -1;           // KV cache capacity; -1: unlimited
    SchedulePolicy policy = SchedulePolicy::PrefillFirst;
    // ChunkedPrefill only (vLLM's SchedulerConfig fields of the same names):
    bool chunked_prefill = true;           // enable_chunked_prefill
    int long_prefill_token_threshold = 0;  // > 0: at most this many tokens of one request a step
    bool async_scheduling = false;         // outputs processed one step late (see above)
};

// The tokens one request feeds the model in one step: positions [first, first + count) of its
// sequence (prompt, then generated tokens). A prefill feeds the prompt (plus, after a preemption,
// the tokens generated so far); a decode feeds the last generated token.
struct StepSlice {
    uint32_t request = 0;
    uint32_t first = 0;
    uint32_t count = 0;
    bool decode = false;  // one token at the sequence's end, after it has generated (else a prefill)
    bool sample = true;   // it reaches the sequence's end, so the step samples its next token
};

struct Step {
    uint64_t index = 0;
    bool prefill = false;  // some slice is a prefill (with ChunkedPrefill, decodes may share it)
    std::vector<StepSlice> slices;
    uint64_t tokens = 0;          // sum of slice counts
    uint64_t context_tokens = 0;  // KV entries attended to, summed over the step's sequences
    uint32_t finished = 0;        // requests that produced their last token in this step
    uint32_t sampled = 0;         // slices that produced a token (nano-vLLM: every slice)
    std::vector<uint32_t> preempted;  // requests preempted while scheduling this step (their KV freed)
};

class Scheduler {
public:
    // `prompt_len[i]` and `output_len[i]` (>= 1) of request i. Throws std::invalid_argument if a
    // request can never be scheduled (prompt + output beyond the KV cache, or, without chunked
    // prefill, a prompt longer than max_num_batched_tokens).
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
        uint32_t computed = 0;   // ChunkedPrefill: tokens whose KV is in the cache
        bool finishing = false;  // ChunkedPrefill, async: produced its last token, not yet freed
        uint32_t len() const { return prompt + generated; }
    };
    int64_t blocks_for(uint32_t tokens) const;
    void preempt(uint32_t id);
    std::optional<Step> next_prefill_first();
    std::optional<Step> next_chunked();
    void preempt_chunked(uint32_t id);
    void free_seq(uint32_t id);

    SchedulerConfig config_;
    std::vector<Seq> seqs_;
    std::vector<uint32_t> preempted_now_;  // filled by preempt() during next()
    std::deque<uint32_t> waiting_, running_;
    std::vector<uint32_t> finishing_;  // ChunkedPrefill, async: last tokens of the previous step
    int64_t free_blocks_ = 0;
    uint64_t step_index_ = 0;
    uint64_t preemptions_ = 0;
};

}  // namespace engramsim
