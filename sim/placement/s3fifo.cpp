// S3-FIFO (Yang et al., SOSP 2023): a small FIFO S (a fraction `small` of the capacity, default
// 10%), a main FIFO M (the rest) and a ghost FIFO G of recently evicted ids (as many entries as M
// has rows, ids only). Each resident row has a counter, incremented on a hit and capped at 3.
//   miss:  if the row is in G it leaves G and enters M, else it enters S (counter 0), after
//          one eviction if the cache is full.
//   evict: from S while |S| >= small capacity (or M is empty): S's oldest row moves to M with its
//          counter reset when it was hit at least `move_threshold` times in S (no slot freed,
//          go on), else it leaves the cache and enters G. Otherwise from M: its oldest row goes
//          back to M's head with its counter minus one when the counter is positive, else it
//          leaves the cache.
// Queues hold (row, generation) entries; erase() bumps the row's generation, so entries of rows
// that left are skipped when they reach the tail.
#include <cmath>
#include <deque>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class S3Fifo final : public CachePolicy {
public:
    explicit S3Fifo(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)),
          where_(ctx.universe, kOut),
          freq_(ctx.universe, 0),
          gen_(ctx.universe, 0),
          ghost_gen_(ctx.universe, 0) {
        detail::OptionReader opt("s3fifo", ctx.options);
        const double small = opt.fraction("small", 0.1);
        threshold_ = uint8_t(opt.integer("move_threshold", 1, 1, 3));
        opt.finish();
        small_capacity_ = std::max<uint64_t>(1, uint64_t(std::floor(small * double(capacity_))));
        ghost_capacity_ = capacity_ - std::min(capacity_, small_capacity_);
    }

    bool access(uint32_t id, uint32_t) override {
        if (where_[id] != kOut) {
            if (freq_[id] < 3) ++freq_[id];
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (small_size_ + main_size_ == capacity_) victim_ = evict();
        freq_[id] = 0;
        if (ghost_gen_[id] != 0) {  // in G
            ghost_gen_[id] = 0;
            --ghost_size_;
            enqueue(main_, id, kMain);
        } else {
            enqueue(small_, id, kSmall);
        }
        ++admitted_;
        return false;
    }

    bool contains(uint32_t id) const override { return where_[id] != kOut; }
    bool erase(uint32_t id) override {
        if (where_[id] == kOut) return false;
        (where_[id] == kSmall ? small_size_ : main_size_)--;
        where_[id] = kOut;
        ++gen_[id];
        return true;
    }
    uint64_t size() const override { return small_size_ + main_size_; }

private:
    enum : uint8_t { kOut, kSmall, kMain };
    struct Entry {
        uint32_t id, gen;
    };

    void enqueue(std::deque<Entry>& q, uint32_t id, uint8_t where) {
        where_[id] = where;
        ++gen_[id];
        q.push_back({id, gen_[id]});
        (where == kSmall ? small_size_ : main_size_)++;
    }
    // Oldest live entry of q, removed from the queue and from the cache's bookkeeping.
    uint32_t pop(std::deque<Entry>& q) {
        while (true) {
            const Entry e = q.front();
            q.pop_front();
            if (gen_[e.id] != e.gen) continue;  // stale: the row left or moved
            (where_[e.id] == kSmall ? small_size_ : main_size_)--;
            where_[e.id] = kOut;
            return e.id;
        }
    }
    void to_ghost(uint32_t id) {
        if (ghost_capacity_ == 0) return;
        ghost_gen_[id] = ++ghost_clock_;
        ghost_.push_back({id, ghost_gen_[id]});
        ++ghost_size_;
        while (ghost_size_ > ghost_capacity_) {
            const Entry e = ghost_.front();
            ghost_.pop_front();
            if (ghost_gen_[e.id] != e.gen) continue;
            ghost_gen_[e.id] = 0;
            --ghost_size_;
        }
        // drop stale entries at the front so the queue stays near its live size
        while (!ghost_.empty() && ghost_gen_[ghost_.front().id] != ghost_.front().gen)
            ghost_.pop_front();
    }
    uint32_t evict() {
        while (true) {
            if (small_size_ >= small_capacity_ || main_size_ == 0) {
                const uint32_t t = pop(small_);
                if (freq_[t] >= threshold_) {
                    freq_[t] = 0;
                    enqueue(main_, t, kMain);
                    continue;
                }
                to_ghost(t);
                return t;
            }
            const uint32_t t = pop(main_);
            if (freq_[t] > 0) {
                --freq_[t];
                enqueue(main_, t, kMain);
                continue;
            }
            return t;
        }
    }

    uint64_t capacity_, small_capacity_ = 1, ghost_capacity_ = 0;
    uint8_t threshold_ = 1;
    uint64_t small_size_ = 0, main_size_ = 0, ghost_size_ = 0;
    uint32_t ghost_clock_ = 0;
    std::vector<uint8_t> where_, freq_;
    std::vector<uint32_t> gen_, ghost_gen_;  // ghost_gen_ 0: not in G
    std::deque<Entry> small_, main_, ghost_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_s3fifo(const PolicyContext& ctx) {
    return std::make_unique<S3Fifo>(ctx);
}

}  // namespace engramsim::placement
