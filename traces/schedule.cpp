#include "traces/schedule.h"

#include <stdexcept>
#include <string>

namespace engramsim {

Scheduler::Scheduler(SchedulerConfig config, std::vector<uint32_t> prompt_len,
                     std::vector<uint32_t> output_len)
    : config_(config) {
    if (prompt_len.size() != output_len.size())
        throw std::invalid_argument("scheduler: one prompt and one output length per request");
    if (config_.max_num_seqs < 1 || config_.max_num_batched_tokens < 1 || config_.kv_block_size < 1)
        throw std::invalid_argument("scheduler: limits must be positive");
    const bool bounded = config_.num_kv_blocks >= 0;
    free_blocks_ = bounded ? config_.num_kv_blocks : INT64_MAX;
    for (size_t i = 0; i < prompt_len.size(); ++i) {
        const std::string who = "scheduler: request " + std::to_string(i) + ": ";
        if (prompt_len[i] < 1 || output_len[i] < 1)
            throw std::invalid_argument(who + "prompt and output need at least one token");
        // A prefill must fit in one step; a preempted request re-prefills up to
        // prompt + output - 1 tokens, which only a bounded KV cache can cause.
        const uint32_t longest_prefill =
            bounded ? prompt_len[i] + output_len[i] - 1 : prompt_len[i];
        if (longest_prefill > uint32_t(config_.max_num_batched_tokens))
            throw std::invalid_argument(who + "a prefill of up to " +
                                        std::to_string(longest_prefill) +
                                        " tokens exceeds max_num_batched_tokens " +
                                        std::to_string(config_.max_num_batched_tokens));
        if (bounded && blocks_for(prompt_len[i] + output_len[i]) > config_.num_kv_blocks)
            throw std::invalid_argument(who + "needs more KV blocks than the cache has (" +
                                        std::to_string(config_.num_kv_blocks) + ")");
        seqs_.push_back({prompt_len[i], output_len[i], 0, 0});
        waiting_.push_back(uint32_t(i));
    }
}

int64_t Scheduler::blocks_for(uint32_t tokens) const {
    return (int64_t(tokens) + config_.kv_block_size - 1) / config_.kv_block_size;
}

void Scheduler::preempt(uint32_t id) {
    free_blocks_ += seqs_[id].blocks;
    seqs_[id].blocks = 0;
    preempted_now_.push_back(id);
    waiting_.push_front(id);
    ++preemptions_;
}

std::optional<Step> Scheduler::next() {
    if (waiting_.empty() && running_.empty()) return std::nullopt;
    Step step;
    step.index = step_index_++;
    std::vector<uint32_t> scheduled;

    // Prefill: admit waiting sequences in order while they fit.
    uint64_t batched = 0;
    while (!waiting_.empty() && scheduled.size() < size_t(config_.max_num_seqs)) {
        const uint32_t id = waiting_.front();
        const uint32_t len = seqs_[id].len();
        const int64_t need = blocks_for(len);
        if (batched + len > uint64_t(config_.max_num_batched_tokens) || need > free_blocks_) break;
        waiting_.pop_front();
        free_blocks_ -= need;
        seqs_[id].blocks = need;
        batched += len;
        scheduled.push_back(id);
        running_.push_back(id);
        step.slices.push_back({id, 0, len});
        step.context_tokens += len;
    }
    step.prefill = !scheduled.empty();

    if (!step.prefill) {
        // Decode: every running sequence feeds its last token; make room by preempting the
        // newest running sequences when a new KV block is needed and none is free.
        std::deque<uint32_t> kept;
        while (!running_.empty() && scheduled.size() < size_t(config_.max_num_seqs)) {
            const uint32_t id = running_.front();
            running_.pop_front();
            Seq& s = seqs_[id];
            // The token fed now is at position len() - 1; its KV entry needs a new block when
            // it starts one.
            const bool needs_block = (s.len() - 1) % uint32_t(config_.kv_block_size) == 0;
            bool preempted_self = false;
            while (needs_block && free_blocks_ < 1) {
                if (!running_.empty()) {
                    preempt(running_.back());
                    running_.pop_back();
                } else {
                    preempt(id);
                    preempted_self = true;
                    break;
                }
            }
            if (preempted_self) continue;
            if (needs_block) --free_blocks_, ++s.blocks;
            scheduled.push_back(id);
            kept.push_back(id);
            step.slices.push_back({id, s.len() - 1, 1});
            step.context_tokens += s.len();
        }
        // Scheduled sequences go back to the front, in order (nano-vLLM's extendleft(reversed)).
        for (auto it = kept.rbegin(); it != kept.rend(); ++it) running_.push_front(*it);
    }
    if (scheduled.empty())
        throw std::logic_error("scheduler: nothing schedulable (KV cache too small)");

    // Postprocess: each scheduled sequence produced one token.
    for (uint32_t id : scheduled) {
        Seq& s = seqs_[id];
        ++s.generated;
        if (s.generated == s.output) {
            free_blocks_ += s.blocks;
            s.blocks = 0;
            ++step.finished;
            for (auto it = running_.begin(); it != running_.end(); ++it)
                if (*it == id) {
                    running_.erase(it);
                    break;
                }
        }
    }
    for (const auto& sl : step.slices) step.tokens += sl.count;
    step.preempted = std::move(preempted_now_);
    preempted_now_.clear();
    return step;
}

}  // namespace engramsim
