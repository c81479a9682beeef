// LRU as a queue of (row, stamp) entries in access order, with lazy deletion. Each access
// appends its row with a fresh stamp and records that stamp as the row's last access
// (last_[id]; 0: not resident). An entry is live while its row's last access is its stamp, so
// the least recently used resident row is the first live entry: eviction pops entries from the
// front, skipping stale ones. It reads the queue in order (prefetching the rows' stamps ahead)
// instead of chasing a doubly-linked list's links from its tail, which on a sequence of mostly
// new rows is one dependent DRAM miss per eviction (measured: 6x slower on nano-vllm-512,
// docs/placement.md). The queue is a ring of at least 1.5 x capacity entries; when it fills,
// its live entries (at most the capacity) are compacted to its front. When the capacity covers
// every row nothing is ever evicted, and there is no queue.
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are not evicted; the victim is the least recently used row that is not
// needed in that window (found by walking the queue from its front), or, when every resident
// row is needed, the least recently used row.
#include <bit>
#include <stdexcept>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class Lru final : public CachePolicy {
public:
    explicit Lru(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)), last_(ctx.universe, 0) {
        detail::OptionReader opt("lru", ctx.options);
        lookahead_ = look_.configure("lru", opt, ctx);
        opt.finish();
        if (capacity_ > 0 && capacity_ < ctx.universe) {
            ring_.resize(std::bit_ceil(capacity_ + capacity_ / 2 + 1024));
            mask_ = ring_.size() - 1;
        }
    }

    bool access(uint32_t id, uint32_t t) override {
        return lookahead_ ? touch_lookahead(id, t) : touch(id);
    }

    uint64_t run(std::span<const uint32_t> ids, uint32_t t0) override {
        if (lookahead_) return CachePolicy::run(ids, t0);
        // Far ahead: a row's stamp is a DRAM miss and a TLB miss on a large trace, and a request
        // takes a few ns (bench_replay lru: 12 ahead 51 / 72 ms at 1% / 10%, 48 ahead 32 / 35).
        constexpr size_t kAhead = 48;
        const size_t n = ids.size();
        uint64_t misses = 0;
        size_t i = 0;
        for (; i + kAhead < n; ++i) {
            __builtin_prefetch(&last_[ids[i + kAhead]], 1);
            misses += !touch(ids[i]);
        }
        for (; i < n; ++i) misses += !touch(ids[i]);
        return misses;
    }

    bool contains(uint32_t id) const override { return last_[id] != 0; }
    bool erase(uint32_t id) override {
        if (last_[id] == 0) return false;
        last_[id] = 0;  // its entries are stale now
        --size_;
        return true;
    }
    uint64_t size() const override { return size_; }

private:
    struct Entry {
        uint32_t id, stamp;
    };

    inline bool touch(uint32_t id) {
        if (last_[id] != 0) {
            // Requested again right after itself: already the most recent, nothing moves (a hot
            // row's runs of repeats cost no queue entries).
            if (last_[id] != clock_) stamp(id);  // (no queue: clock_ stays 0, stamps are 1)
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_)
            evict_front();
        else
            ++size_;
        stamp(id);
        ++admitted_;
        return false;
    }

    // Records an access to `id` (resident after it).
    inline void stamp(uint32_t id) {
        if (ring_.empty()) {  // nothing is ever evicted: any nonzero stamp marks it resident
            last_[id] = 1;
            return;
        }
        if (clock_ == UINT32_MAX - 1)  // positions are uint32: a replay never gets here
            throw std::length_error("lru: more than 4,294,967,294 accesses");
        last_[id] = ++clock_;
        if (tail_ - head_ == ring_.size()) compact();
        ring_[tail_++ & mask_] = {id, clock_};
    }

    // Evicts the least recently used row: the first live entry.
    inline void evict_front() {
        constexpr uint64_t kAhead = 48;  // entries ahead whose rows' stamps are prefetched
        for (;;) {
            const Entry e = ring_[head_++ & mask_];
            __builtin_prefetch(&last_[ring_[(head_ + kAhead) & mask_].id]);
            if (last_[e.id] == e.stamp) {
                last_[e.id] = 0;
                victim_ = e.id;
                return;
            }
        }
    }

    // Drops the stale entries, keeping the live ones in order at the front of the queue.
    void compact() {
        constexpr uint64_t kAhead = 48;
        uint64_t w = head_;
        for (uint64_t r = head_; r < tail_; ++r) {
            __builtin_prefetch(&last_[ring_[(r + kAhead) & mask_].id]);
            const Entry e = ring_[r & mask_];
            if (last_[e.id] == e.stamp) ring_[w++ & mask_] = e;
        }
        tail_ = w;
    }

    bool touch_lookahead(uint32_t id, uint32_t t) {
        look_.note(id, t);
        if (last_[id] != 0) return touch(id);
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_) {
            while (last_[ring_[head_ & mask_].id] != ring_[head_ & mask_].stamp) ++head_;
            const uint64_t end = look_.window_end(t);
            uint64_t v = head_;  // the first live entry not needed in the window, if any
            while (v < tail_) {
                const Entry& e = ring_[v & mask_];
                if (last_[e.id] == e.stamp && !look_.needed(e.id, end)) break;
                ++v;
            }
            if (v == tail_) v = head_;  // every row is needed: plain LRU
            const uint32_t victim = ring_[v & mask_].id;
            last_[victim] = 0;
            victim_ = victim;
        } else {
            ++size_;
        }
        stamp(id);
        ++admitted_;
        return false;
    }

    bool lookahead_ = false;
    detail::Lookahead look_;

    uint64_t capacity_;
    uint64_t size_ = 0;
    std::vector<uint32_t> last_;  // stamp of each row's last access; 0: not resident
    std::vector<Entry> ring_;     // the queue: entries [head_, tail_) (indices mod its size)
    uint64_t mask_ = 0;
    uint64_t head_ = 0, tail_ = 0;
    uint32_t clock_ = 0;  // the last stamp given
};

}  // namespace

std::unique_ptr<CachePolicy> make_lru(const PolicyContext& ctx) {
    return std::make_unique<Lru>(ctx);
}

}  // namespace engramsim::placement
