// LFU with dynamic aging (LFU-DA, Arlitt et al. 2000, as in Squid): a resident row's priority is
// L + f, where f counts its requests since it was admitted and L is the priority of the last
// victim (L stays 0 with aging=none: plain in-cache LFU). The lowest priority is evicted; ties
// go to the least recently used. Aging lets rows that were hot long ago leave.
//
// Heap key: priority in the high 32 bits, position of the last request in the low 32 (both are
// below the number of requests, < 2^32: a priority grows by at most one per request).
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are not evicted: the victim is the lowest-priority row not needed in that
// window (ties LRU), found by a best-first search of the heap from its root: only the children
// of needed rows are expanded, so it visits the needed rows with lower keys and their children
// (O(k log k) for k such rows), and the heap itself is not modified. With aging, L becomes that
// victim's priority (above the lowest one when needed rows were passed over). When every resident
// row is needed, the victim is plain LFU-DA's (the heap's top), as LRU's lookahead falls back to
// plain LRU. Lookahead is a separate instantiation: the plain policy's path is unchanged.
#include <algorithm>
#include <functional>
#include <stdexcept>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

template <bool kLookahead>
class Lfu final : public CachePolicy {
public:
    explicit Lfu(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)), freq_(ctx.universe, 0), heap_(ctx.universe) {
        detail::OptionReader opt("lfu", ctx.options);
        aging_ = opt.choice("aging", {"dynamic", "none"}) == "dynamic";
        const bool lookahead = look_.configure("lfu", opt, ctx);
        opt.finish();
        if (lookahead != kLookahead) throw std::logic_error("lfu: lookahead instantiation");
    }

    bool access(uint32_t id, uint32_t t) override {
        if constexpr (kLookahead) look_.note(id, t);
        if (heap_.contains(id)) {
            heap_.update(id, key(age_ + ++freq_[id], t));
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (heap_.size() == capacity_) {
            if constexpr (kLookahead) {
                const size_t i = unneeded_min(look_.window_end(t));
                victim_ = heap_.id_at(i);
                if (aging_) age_ = heap_.key_at(i) >> 32;
            } else {
                victim_ = heap_.top();
                if (aging_) age_ = heap_.top_key() >> 32;
            }
            heap_.remove(victim_);
        }
        freq_[id] = 1;
        heap_.push(id, key(age_ + 1, t));
        ++admitted_;
        return false;
    }

    bool contains(uint32_t id) const override { return heap_.contains(id); }
    bool erase(uint32_t id) override {
        if (!heap_.contains(id)) return false;
        heap_.remove(id);
        return true;
    }
    uint64_t size() const override { return heap_.size(); }

private:
    static uint64_t key(uint64_t priority, uint32_t t) {
        if (priority >> 32) throw std::overflow_error("lfu: priority beyond 2^32");
        return priority << 32 | t;
    }

    // Heap index of the lowest-key row not needed before `end`, or of the top when all are.
    // Best-first from the root: the frontier holds the children of needed rows, by key.
    size_t unneeded_min(uint64_t end) {
        const size_t n = heap_.size();
        if (!look_.needed(heap_.id_at(0), end)) return 0;
        frontier_.clear();
        const auto later = std::greater<Item>();
        auto expand = [&](size_t i) {
            for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < n; ++c) {
                frontier_.push_back({heap_.key_at(c), c});
                std::push_heap(frontier_.begin(), frontier_.end(), later);
            }
        };
        expand(0);
        while (!frontier_.empty()) {
            std::pop_heap(frontier_.begin(), frontier_.end(), later);
            const size_t i = frontier_.back().second;
            frontier_.pop_back();
            if (!look_.needed(heap_.id_at(i), end)) return i;
            expand(i);
        }
        return 0;  // every resident row is needed: plain LFU-DA
    }

    uint64_t capacity_;
    bool aging_ = true;
    uint64_t age_ = 0;  // L
    std::vector<uint32_t> freq_;
    detail::KeyedHeap heap_;
    detail::Lookahead look_;                   // lookahead only
    using Item = std::pair<uint64_t, size_t>;  // (key, heap index)
    std::vector<Item> frontier_;               // a min-heap by key
};

}  // namespace

std::unique_ptr<CachePolicy> make_lfu(const PolicyContext& ctx) {
    if (ctx.options.count("lookahead")) return std::make_unique<Lfu<true>>(ctx);
    return std::make_unique<Lfu<false>>(ctx);
}

}  // namespace engramsim::placement
