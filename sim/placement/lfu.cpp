// LFU with dynamic aging (LFU-DA, Arlitt et al. 2000, as in Squid): a resident row's priority is
// L + f, where f counts its requests since it was admitted and L is the priority of the last
// victim (L stays 0 with aging=none: plain in-cache LFU). The lowest priority is evicted; ties
// go to the least recently used. Aging lets rows that were hot long ago leave.
//
// Heap key: priority in the high 32 bits, position of the last request in the low 32 (both are
// below the number of requests, < 2^32: a priority grows by at most one per request).
#include <stdexcept>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class Lfu final : public CachePolicy {
public:
    explicit Lfu(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)), freq_(ctx.universe, 0), heap_(ctx.universe) {
        detail::OptionReader opt("lfu", ctx.options);
        aging_ = opt.choice("aging", {"dynamic", "none"}) == "dynamic";
        opt.finish();
    }

    bool access(uint32_t id, uint32_t t) override {
        if (heap_.contains(id)) {
            heap_.update(id, key(age_ + ++freq_[id], t));
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (heap_.size() == capacity_) {
            victim_ = heap_.top();
            if (aging_) age_ = heap_.top_key() >> 32;
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

    uint64_t capacity_;
    bool aging_ = true;
    uint64_t age_ = 0;  // L
    std::vector<uint32_t> freq_;
    detail::KeyedHeap heap_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_lfu(const PolicyContext& ctx) {
    return std::make_unique<Lfu>(ctx);
}

}  // namespace engramsim::placement
