#include "traces/schedule.h"

#include <algorithm>
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
        // A prefill must fit in one step unless it is chunked; a preempted request re-prefills
        // up to prompt + output - 1 tokens, which only a bounded KV cache can cause.
        const uint32_t longest_prefill =
            bounded ? prompt_len[i] + output_len[i] - 1 : prompt_len[i];
        const bool chunks = config_.policy == SchedulePolicy::ChunkedPrefill &&
                            config_.chunked_prefill;
        if (!chunks && longest_prefill > uint32_t(config_.max_num_batched_tokens))
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
    return config_.policy == SchedulePolicy::ChunkedPrefill ? next_chunked()
                                                            : next_prefill_first();
}

std::optional<Step> Scheduler::next_prefill_first() {
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
            step.slices.push_back({id, s.len() - 1, 1, true});
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
    step.sampled = uint32_t(step.slices.size());
    step.preempted = std::move(preempted_now_);
    preempted_now_.clear();
    return step;
}

void Scheduler::free_seq(uint32_t id) {
    free_blocks_ += seqs_[id].blocks;
    seqs_[id].blocks = 0;
}

// vLLM V1's _preempt_request: the KV freed, nothing computed, back to the front of the waiting
// queue. A request that had already produced its last token (async scheduling: its outputs not
// yet processed) is then finished instead: vLLM drops it from the waiting queue when it
// processes those outputs, before any later scheduling could pick it.
void Scheduler::preempt_chunked(uint32_t id) {
    Seq& s = seqs_[id];
    free_seq(id);
    s.computed = 0;
    ++preemptions_;
    preempted_now_.push_back(id);
    if (s.finishing)
        s.finishing = false;
    else
        waiting_.push_front(id);
}

std::optional<Step> Scheduler::next_chunked() {
    const auto budget_limit = uint32_t(config_.max_num_batched_tokens);
    const auto cap = [&](uint32_t n, uint32_t budget) {
        if (config_.long_prefill_token_threshold > 0)
            n = std::min(n, uint32_t(config_.long_prefill_token_threshold));
        return std::min(n, budget);
    };
    Step step;
    for (;;) {
        if (waiting_.empty() && running_.empty()) return std::nullopt;
        uint32_t budget = budget_limit;
        bool preempted_any = false;
        // The running requests first, in order.
        for (size_t i = 0; i < running_.size() && budget > 0;) {
            const uint32_t id = running_[i];
            Seq& s = seqs_[id];
            if (s.finishing) {  // async: its last token is still in flight
                ++i;
                continue;
            }
            const uint32_t n = cap(s.len() - s.computed, budget);
            int64_t need = 0;
            bool scheduled = true;
            while ((need = blocks_for(s.computed + n) - s.blocks) > free_blocks_) {
                const uint32_t victim = running_.back();  // the lowest priority: the last
                running_.pop_back();
                preempt_chunked(victim);
                preempted_any = true;
                if (victim == id) {
                    scheduled = false;
                    break;
                }
            }
            if (!scheduled) break;
            free_blocks_ -= need;
            s.blocks += need;
            step.slices.push_back({id, s.computed, n});
            budget -= n;
            ++i;
        }
        // Then the waiting ones, unless this step preempted.
        while (!preempted_any && !waiting_.empty() && budget > 0) {
            if (running_.size() >= size_t(config_.max_num_seqs)) break;
            const uint32_t id = waiting_.front();
            Seq& s = seqs_[id];
            uint32_t n = cap(s.len(), UINT32_MAX);  // the threshold, then the budget
            if (!config_.chunked_prefill && n > budget) break;
            n = std::min(n, budget);
            const int64_t need = blocks_for(n);
            if (need > free_blocks_) break;
            waiting_.pop_front();
            running_.push_back(id);
            free_blocks_ -= need;
            s.blocks = need;
            step.slices.push_back({id, 0, n});
            budget -= n;
        }
        // Async scheduling: the previous step's outputs are processed only now, after this
        // step was scheduled; its finished requests leave the running queue and free their KV.
        bool released = false;
        for (uint32_t id : finishing_) {
            if (!seqs_[id].finishing) continue;  // preempted meanwhile: already freed
            seqs_[id].finishing = false;
            free_seq(id);
            for (auto it = running_.begin(); it != running_.end(); ++it)
                if (*it == id) {
                    running_.erase(it);
                    break;
                }
            released = true;
        }
        finishing_.clear();
        if (!step.slices.empty()) break;
        // Nothing to run: an engine with nothing scheduled runs no step (the released
        // requests' room is for the next scheduling).
        if (!released && !(waiting_.empty() && running_.empty()))
            throw std::logic_error("scheduler: nothing schedulable (KV cache too small)");
        step.preempted.insert(step.preempted.end(), preempted_now_.begin(), preempted_now_.end());
        preempted_now_.clear();
    }
    step.index = step_index_++;
    // Postprocess: a slice that reaches its sequence's end samples the next token.
    for (StepSlice& sl : step.slices) {
        Seq& s = seqs_[sl.request];
        sl.decode = sl.count == 1 && s.generated > 0 && sl.first + 1 == s.len();
        s.computed += sl.count;
        sl.sample = s.computed == s.len();
        step.prefill |= !sl.decode;
        step.tokens += sl.count;
        step.context_tokens += sl.first + sl.count;
        if (!sl.sample) continue;
        ++step.sampled;
        if (++s.generated < s.output) continue;
        ++step.finished;
        if (config_.async_scheduling) {
            s.finishing = true;
            finishing_.push_back(sl.request);
        } else {
            free_seq(sl.request);
            for (auto it = running_.begin(); it != running_.end(); ++it)
                if (*it == sl.request) {
                    running_.erase(it);
                    break;
                }
        }
    }
    step.preempted.insert(step.preempted.end(), preempted_now_.begin(), preempted_now_.end());
    preempted_now_.clear();
    return step;
}

}  // namespace engramsim
