// Belady's MIN: on a miss with the cache full, evict the resident row whose next request is
// farthest in the future (exact next-use times from the trace). With admission=bypass (default)
// the requested row itself competes: if its own next use is at least as far as every resident
// row's, it is served without being admitted. That is the optimum for a cache that may bypass,
// so no other policy here (static pinning and set-associative LFU decline rows too) can have
// fewer misses. admission=always is the classic demand-paging MIN.
#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class Belady final : public CachePolicy {
public:
    explicit Belady(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)), next_use_(ctx.next_use), heap_(ctx.universe) {
        detail::OptionReader opt("belady", ctx.options);
        bypass_ = opt.choice("admission", {"bypass", "always"}) == "bypass";
        opt.finish();
    }

    bool access(uint32_t id, uint32_t t) override {
        const uint32_t nu = next_use_.empty() ? kNever : next_use_[t];
        if (heap_.contains(id)) {
            heap_.update(id, key(nu, id));
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (heap_.size() == capacity_) {
            const uint32_t far = heap_.top();
            if (bypass_ && nu >= next_of(heap_.top_key())) return false;
            victim_ = far;
            heap_.remove(far);
        }
        heap_.push(id, key(nu, id));
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
    // Min-heap key whose top is the farthest next use, ties to the smaller id (deterministic).
    static uint64_t key(uint32_t next_use, uint32_t id) {
        return uint64_t(UINT32_MAX - next_use) << 32 | id;
    }
    static uint32_t next_of(uint64_t k) { return UINT32_MAX - uint32_t(k >> 32); }

    uint64_t capacity_;
    bool bypass_ = true;
    std::span<const uint32_t> next_use_;
    detail::KeyedHeap heap_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_belady(const PolicyContext& ctx) {
    return std::make_unique<Belady>(ctx);
}

}  // namespace engramsim::placement
