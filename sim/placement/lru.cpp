// LRU over flat arrays indexed by dense row id: one 8-byte node (prev, next) per row, a circular
// doubly-linked list through a sentinel. A row is resident when its next link is set. run()
// prefetches the nodes of rows a few requests ahead: the trace is known in advance.
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are not evicted; the victim is the least recently used row that is not
// needed in that window (found by walking from the LRU end), or, when every resident row is
// needed, the least recently used row.
#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class Lru final : public CachePolicy {
public:
    explicit Lru(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)),
          head_(ctx.universe),
          nodes_(size_t(ctx.universe) + 1, Node{kNoRow, kNoRow}) {
        detail::OptionReader opt("lru", ctx.options);
        lookahead_ = look_.configure("lru", opt, ctx);
        opt.finish();
        nodes_[head_] = {head_, head_};
    }

    bool access(uint32_t id, uint32_t t) override {
        return lookahead_ ? touch_lookahead(id, t) : touch(id);
    }

    uint64_t run(std::span<const uint32_t> ids, uint32_t t0) override {
        if (lookahead_) return CachePolicy::run(ids, t0);
        constexpr size_t kAhead = 12;
        const size_t n = ids.size();
        uint64_t misses = 0;
        size_t i = 0;
        for (; i + kAhead < n; ++i) {
            __builtin_prefetch(&nodes_[ids[i + kAhead]], 1);
            misses += !touch(ids[i]);
        }
        for (; i < n; ++i) misses += !touch(ids[i]);
        return misses;
    }

    bool contains(uint32_t id) const override { return nodes_[id].next != kNoRow; }
    bool erase(uint32_t id) override {
        if (nodes_[id].next == kNoRow) return false;
        unlink(id);
        nodes_[id] = {kNoRow, kNoRow};
        --size_;
        return true;
    }
    uint64_t size() const override { return size_; }

private:
    struct Node {
        uint32_t prev, next;
    };

    inline void unlink(uint32_t id) {
        const Node n = nodes_[id];
        nodes_[n.prev].next = n.next;
        nodes_[n.next].prev = n.prev;
    }
    inline void push_front(uint32_t id) {
        const uint32_t first = nodes_[head_].next;
        nodes_[id] = {head_, first};
        nodes_[first].prev = id;
        nodes_[head_].next = id;
    }
    inline bool touch(uint32_t id) {
        if (nodes_[id].next != kNoRow) {
            if (nodes_[head_].next != id) {
                unlink(id);
                push_front(id);
            }
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_) {
            const uint32_t tail = nodes_[head_].prev;
            unlink(tail);
            nodes_[tail] = {kNoRow, kNoRow};
            victim_ = tail;
        } else {
            ++size_;
        }
        push_front(id);
        ++admitted_;
        return false;
    }

    bool touch_lookahead(uint32_t id, uint32_t t) {
        look_.note(id, t);
        if (nodes_[id].next != kNoRow) return touch(id);
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_) {
            const uint64_t end = look_.window_end(t);
            uint32_t v = nodes_[head_].prev;
            while (v != head_ && look_.needed(v, end)) v = nodes_[v].prev;
            if (v == head_) v = nodes_[head_].prev;  // every row is needed: plain LRU
            unlink(v);
            nodes_[v] = {kNoRow, kNoRow};
            victim_ = v;
        } else {
            ++size_;
        }
        push_front(id);
        ++admitted_;
        return false;
    }

    bool lookahead_ = false;
    detail::Lookahead look_;

    uint64_t capacity_;
    uint64_t size_ = 0;
    uint32_t head_;  // sentinel: head_.next is the most recent row, head_.prev the least
    std::vector<Node> nodes_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_lru(const PolicyContext& ctx) {
    return std::make_unique<Lru>(ctx);
}

}  // namespace engramsim::placement
