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
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are needed and do not leave the cache. Eviction runs as above except that
//   - a needed row S would evict moves to M instead (counter reset, as a promoted row; not to G),
//   - a needed row M would evict (counter 0) goes back to M's head with its counter 0,
//   - it also evicts from S when every row of M is needed with counter 0 (M would only cycle).
// When every resident row is needed, the victim is plain S3-FIFO's, as LRU's lookahead falls
// back to plain LRU (the state is untouched until a row not needed is known to exist: a scan of
// S then M that stops at the first such row). With a row not needed, eviction ends: each pop
// either evicts, moves a row out of S, lowers a counter, or keeps a needed row of M, and M is
// kept at most once round (|M| pops in a row) before S is taken. Lookahead is a separate
// instantiation: the plain policy's path is unchanged.
#include <cmath>
#include <deque>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

template <bool kLookahead>
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
        const bool lookahead = look_.configure("s3fifo", opt, ctx);
        opt.finish();
        if (lookahead != kLookahead) throw std::logic_error("s3fifo: lookahead instantiation");
        small_capacity_ = std::max<uint64_t>(1, uint64_t(std::floor(small * double(capacity_))));
        ghost_capacity_ = capacity_ - std::min(capacity_, small_capacity_);
    }

    bool access(uint32_t id, [[maybe_unused]] uint32_t t) override {
        if constexpr (kLookahead) look_.note(id, t);
        if (where_[id] != kOut) {
            if (freq_[id] < 3) ++freq_[id];
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (small_size_ + main_size_ == capacity_) {
            if constexpr (kLookahead)
                victim_ = evict_lookahead(look_.window_end(t));
            else
                victim_ = evict();
        }
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

    // Whether a resident row is not needed before `end` (stops at the first one found).
    bool any_free(uint64_t end) const {
        for (const std::deque<Entry>* q : {&small_, &main_})
            for (const Entry& e : *q)
                if (gen_[e.id] == e.gen && !look_.needed(e.id, end)) return true;
        return false;
    }
    uint32_t evict_lookahead(uint64_t end) {
        if (!any_free(end)) return evict();
        uint64_t kept = 0;  // rows of M kept in a row since M last changed otherwise
        while (true) {
            if (small_size_ >= small_capacity_ || main_size_ == 0 || kept == main_size_) {
                const uint32_t t = pop(small_);
                const bool needed = look_.needed(t, end);
                if (freq_[t] >= threshold_ || needed) {
                    // a needed row joining an M that is all needed with counters 0 keeps it so
                    const bool all_needed = kept == main_size_;
                    freq_[t] = 0;
                    enqueue(main_, t, kMain);
                    kept = needed && all_needed ? main_size_ : 0;
                    continue;
                }
                to_ghost(t);
                return t;
            }
            const uint32_t t = pop(main_);
            if (freq_[t] > 0) {
                --freq_[t];
                enqueue(main_, t, kMain);
                kept = 0;
                continue;
            }
            if (look_.needed(t, end)) {
                enqueue(main_, t, kMain);
                ++kept;
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
    detail::Lookahead look_;  // lookahead only
};

}  // namespace

std::unique_ptr<CachePolicy> make_s3fifo(const PolicyContext& ctx) {
    if (ctx.options.count("lookahead")) return std::make_unique<S3Fifo<true>>(ctx);
    return std::make_unique<S3Fifo<false>>(ctx);
}

}  // namespace engramsim::placement
