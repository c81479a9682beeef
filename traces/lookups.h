// Lookups in serving order: for each engine step, for each Engram layer, the rows the step's
// tokens read. This is what placement replay (sim/placement) and the timing simulator (sim/)
// consume, whether the lookups are hashed on the fly from a workload or read from a trace file.
//
// Row keys are global across the whole Engram memory:
//   key = layer_base[l] + head_offset[l][h] + local_row
// where local_row < prime[l][h] is the hash of the token's N-gram for head h (traces/ngram_hash.h),
// head_offset[l][h] is the sum of the layer's earlier heads' primes and layer_base[l] the sum of
// the earlier layers' table rows. So keys are dense in [0, total_rows) and a key says which
// layer and head it belongs to.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/engram_config.h"
#include "traces/schedule.h"
#include "traces/workload.h"

namespace engramsim {

// What a lookup stream is about: enough to size caches and count bytes.
struct LookupLayout {
    std::vector<int> layer_ids;                      // 0-based Transformer layers
    int heads_per_layer = 0;                         // rows per token per layer
    std::vector<uint64_t> layer_base;                // first key of each layer
    std::vector<std::vector<uint64_t>> head_offset;  // [layer][head], within the layer
    std::vector<uint64_t> layer_rows;                // table rows of each layer
    uint64_t total_rows = 0;                         // all layers
    double row_bytes = 0;                            // bytes of one row (dtype and row_dim)
};

struct StepBatch {
    uint64_t step = 0;
    bool prefill = false;
    uint64_t tokens = 0;          // tokens the step feeds (all its requests)
    uint64_t context_tokens = 0;  // KV entries attended to (see traces/schedule.h)
    uint32_t finished = 0;        // requests completed by this step
    std::vector<StepSlice> slices;
    std::vector<uint32_t> preempted;  // requests preempted while scheduling the step (hashed
                                      // sources only; a trace file does not record them)
    // rows[l]: keys read at Engram layer l by the step's tokens, token-major then head, repeats
    // included (rows repeated within a step are fetched once: deduplication is the consumer's).
    std::vector<std::vector<uint64_t>> rows;
};

class LookupSource {
public:
    virtual ~LookupSource() = default;
    virtual const LookupLayout& layout() const = 0;
    // Fills `batch` with the next step (reusing its buffers); false when the stream has ended.
    virtual bool next(StepBatch& batch) = 0;
};

// The common engine of every lookup source: runs the scheduler over the requests' lengths and,
// step by step, turns each slice of each request into global keys. A subclass says what a
// request's rows are; requests are materialised when first scheduled (admission is in request
// order, preempted requests are already held) and released when their last token went through,
// so memory stays bounded by the running batch, whatever the number of requests.
class ScheduledLookups : public LookupSource {
public:
    const LookupLayout& layout() const final { return layout_; }
    bool next(StepBatch& batch) final;

protected:
    // Local row ids of one request: rows[l][token * heads_per_layer + head] for every token of
    // prompt + output (the last output token is never fed, its rows go unused).
    using RequestRows = std::vector<std::vector<uint32_t>>;

    ScheduledLookups(LookupLayout layout, const SchedulerConfig& scheduler,
                     std::vector<uint32_t> prompt_len, std::vector<uint32_t> output_len);
    // Rows of request `index` (file order); called once per request, in increasing order.
    virtual RequestRows load(uint32_t index) = 0;

private:
    LookupLayout layout_;
    std::vector<uint32_t> prompt_len_, output_len_;
    Scheduler scheduler_;
    std::unordered_map<uint32_t, RequestRows> live_;
    uint32_t next_to_load_ = 0;
};

// Hashes a workload's tokens step by step as the scheduler feeds them (exactly the ids a trace
// file would hold). Owns copies of what it needs.
std::unique_ptr<LookupSource> hashed_lookups(const EngramConfig& engram, const Workload& workload,
                                             const SchedulerConfig& scheduler);

// Lookups of any workload section: hashed from its tokens (nano-vllm, corpus) or streamed by the
// fitted generator (synthetic; the workload seed seeds the stream).
std::unique_ptr<LookupSource> make_lookups(const EngramConfig& engram,
                                           const nlohmann::json& workload_section,
                                           const SchedulerConfig& scheduler);

// `first`'s steps, then `second`'s, numbered on (second's step k becomes first_steps() + k):
// a warm-up ahead of a run, through one replay. The layouts must be the same Engram memory.
class ChainedLookups : public LookupSource {
public:
    ChainedLookups(std::unique_ptr<LookupSource> first, std::unique_ptr<LookupSource> second);
    const LookupLayout& layout() const override { return first_->layout(); }
    bool next(StepBatch& batch) override;
    // Steps `first` yielded (all of them once `second` has started).
    uint64_t first_steps() const { return first_steps_; }

private:
    std::unique_ptr<LookupSource> first_, second_;
    bool in_first_ = true;
    uint64_t first_steps_ = 0;
};

// The layout implied by an Engram config (primes computed as NgramHasher does).
LookupLayout lookup_layout(const EngramConfig& engram);

}  // namespace engramsim
