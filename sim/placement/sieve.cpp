// SIEVE (Zhang et al., NSDI 2024): one FIFO queue, new rows enter at the head; a hit only sets
// the row's visited bit. To evict, a hand walks from where it last stopped (initially the tail,
// the oldest row) toward the head, clearing visited bits, and evicts the first unvisited row;
// past the head it wraps to the tail. The hand then rests on the evicted row's newer neighbour.
#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class Sieve final : public CachePolicy {
public:
    explicit Sieve(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)),
          sentinel_(ctx.universe),
          nodes_(size_t(ctx.universe) + 1, Node{kNoRow, kNoRow}),
          visited_(ctx.universe, 0) {
        detail::OptionReader("sieve", ctx.options).finish();
        nodes_[sentinel_] = {sentinel_, sentinel_};
    }

    bool access(uint32_t id, uint32_t) override {
        if (nodes_[id].next != kNoRow) {
            visited_[id] = 1;
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_) {
            uint32_t o = hand_ == kNoRow ? nodes_[sentinel_].prev : hand_;
            while (visited_[o]) {
                visited_[o] = 0;
                o = nodes_[o].prev;  // toward the head (newer)
                if (o == sentinel_) o = nodes_[sentinel_].prev;
            }
            const uint32_t newer = nodes_[o].prev;
            hand_ = newer == sentinel_ ? kNoRow : newer;
            remove(o);
            victim_ = o;
        } else {
            ++size_;
        }
        push_head(id);
        ++admitted_;
        return false;
    }

    bool contains(uint32_t id) const override { return nodes_[id].next != kNoRow; }
    bool erase(uint32_t id) override {
        if (nodes_[id].next == kNoRow) return false;
        if (hand_ == id) {
            const uint32_t newer = nodes_[id].prev;
            hand_ = newer == sentinel_ ? kNoRow : newer;
        }
        remove(id);
        --size_;
        return true;
    }
    uint64_t size() const override { return size_; }

private:
    // List order: sentinel.next is the head (newest), sentinel.prev the tail (oldest); a node's
    // prev is its newer neighbour, next its older one.
    struct Node {
        uint32_t prev, next;
    };
    void remove(uint32_t id) {
        const Node n = nodes_[id];
        nodes_[n.prev].next = n.next;
        nodes_[n.next].prev = n.prev;
        nodes_[id] = {kNoRow, kNoRow};
        visited_[id] = 0;
    }
    void push_head(uint32_t id) {
        const uint32_t first = nodes_[sentinel_].next;
        nodes_[id] = {sentinel_, first};
        nodes_[first].prev = id;
        nodes_[sentinel_].next = id;
        visited_[id] = 0;
    }

    uint64_t capacity_;
    uint64_t size_ = 0;
    uint32_t sentinel_;
    uint32_t hand_ = kNoRow;  // kNoRow: start at the tail
    std::vector<Node> nodes_;
    std::vector<uint8_t> visited_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_sieve(const PolicyContext& ctx) {
    return std::make_unique<Sieve>(ctx);
}

}  // namespace engramsim::placement
