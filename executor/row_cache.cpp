#include "executor/row_cache.h"

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace engramsim::executor {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kNoSlot = UINT32_MAX;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

DramRowCache::DramRowCache(const placement::DenseTrace& trace, uint64_t capacity_rows,
                           size_t row_bytes, const std::string& policy,
                           const std::map<std::string, std::string>& options)
    : trace_(trace),
      index_(placement::index_of_keys(trace.keys)),
      row_bytes_(row_bytes),
      buffer_(size_t(std::min<uint64_t>(capacity_rows, trace.universe())) * row_bytes),
      slot_of_(trace.universe(), kNoSlot) {
    if (capacity_rows >= kNoSlot)
        throw std::invalid_argument("DRAM row cache: at most 4,294,967,294 rows");
    placement::PolicyContext ctx{.capacity_rows = capacity_rows,
                                 .universe = trace.universe(),
                                 .keys = trace.keys,
                                 .options = options};
    policy_ = placement::make_policy(policy, ctx);
}

CacheFetchTimes DramRowCache::serve(uint64_t ticket, std::span<const uint64_t> unique,
                                    kernels::BlockFetchExecutor& disk) {
    std::unique_lock lock(mu_);
    turn_.wait(lock, [&] { return serving_ == ticket; });
    // The next ticket's turn comes when this one ends, however it ends (a failed read too).
    struct NextTurn {
        DramRowCache& c;
        std::unique_lock<std::mutex>& lock;
        ~NextTurn() {
            ++c.serving_;
            lock.unlock();
            c.turn_.notify_all();
        }
    } next_turn{*this, lock};
    CacheFetchTimes t;
    // Decisions, in the rows' order: a hit names its slot; a miss is read, and filled into the
    // slot its admission took (the victim's, or the next free one) when the policy admits it.
    auto t0 = Clock::now();
    hit_at_.clear(), hit_slot_.clear(), miss_at_.clear(), miss_rows_.clear(), fill_slot_.clear();
    for (size_t i = 0; i < unique.size(); ++i) {
        const uint32_t id = index_.find(unique[i]);
        if (id == UINT32_MAX)
            throw std::logic_error("DRAM row cache: row " + std::to_string(unique[i]) +
                                   " is not in the run's trace");
        if (policy_->access(id, position_++)) {
            hit_at_.push_back(uint32_t(i));
            hit_slot_.push_back(slot_of_[id]);
            continue;
        }
        miss_at_.push_back(uint32_t(i));
        miss_rows_.push_back(unique[i]);
        uint32_t slot = kNoSlot;
        if (policy_->contains(id)) {
            const uint32_t v = policy_->victim();
            if (v != placement::kNoRow && v != id) {
                slot = slot_of_[v];
                slot_of_[v] = kNoSlot;
            } else {
                slot = next_free_++;
            }
            slot_of_[id] = slot;
        }
        fill_slot_.push_back(slot);
    }
    t.hits = hit_at_.size(), t.misses = miss_at_.size();
    t.decide_s = since(t0);
    // The data: hits before fills, so a slot evicted in this fetch is read before it is reused;
    // fills in decision order, so a slot taken twice ends with its last row.
    disk.stage(unique.size());
    t0 = Clock::now();
    for (size_t j = 0; j < hit_at_.size(); ++j)
        std::memcpy(disk.staging_row(hit_at_[j]), buffer_.data() + size_t(hit_slot_[j]) * row_bytes_,
                    row_bytes_);
    t.hit_s = since(t0);
    if (!miss_rows_.empty()) t.read_s = disk.read_at(miss_rows_, miss_at_);
    t0 = Clock::now();
    for (size_t j = 0; j < miss_at_.size(); ++j)
        if (fill_slot_[j] != kNoSlot)
            std::memcpy(buffer_.data() + size_t(fill_slot_[j]) * row_bytes_,
                        disk.staging_row(miss_at_[j]), row_bytes_);
    t.fill_s = since(t0);
    return t;
}

}  // namespace engramsim::executor
