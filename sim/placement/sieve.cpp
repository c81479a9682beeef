// SIEVE (Zhang et al., NSDI 2024): one FIFO queue, new rows enter at the head; a hit only sets
// the row's visited bit. To evict, a hand walks from where it last stopped (initially the tail,
// the oldest row) toward the head, clearing visited bits, and evicts the first unvisited row;
// past the head it wraps to the tail. The hand then rests on the evicted row's newer neighbour.
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are not evicted. The hand walks as above, clearing the visited bit of every
// row it passes, but does not stop at a needed row: it evicts the first unvisited row that is not
// needed (after a full lap, when every row it had passed was visited, the first row not needed).
// When every resident row is needed, the visited bits the walk cleared are restored and the
// victim is plain SIEVE's (the first unvisited row from the hand), as LRU's lookahead falls back
// to plain LRU. Lookahead is a separate instantiation: the plain policy's path is unchanged.
#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

template <bool kLookahead>
class Sieve final : public CachePolicy {
public:
    explicit Sieve(const PolicyContext& ctx)
        : capacity_(detail::usable_capacity(ctx)),
          sentinel_(ctx.universe),
          nodes_(size_t(ctx.universe) + 1, Node{kNoRow, kNoRow}),
          visited_(ctx.universe, 0) {
        detail::OptionReader opt("sieve", ctx.options);
        const bool lookahead = look_.configure("sieve", opt, ctx);
        opt.finish();
        if (lookahead != kLookahead) throw std::logic_error("sieve: lookahead instantiation");
        nodes_[sentinel_] = {sentinel_, sentinel_};
    }

    bool access(uint32_t id, [[maybe_unused]] uint32_t t) override {
        if constexpr (kLookahead) look_.note(id, t);
        if (nodes_[id].next != kNoRow) {
            visited_[id] = 1;
            return true;
        }
        victim_ = kNoRow;
        if (capacity_ == 0) return false;
        if (size_ == capacity_) {
            uint32_t o;
            if constexpr (kLookahead)
                o = walk_lookahead(look_.window_end(t));
            else
                o = walk();
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
    // The row the hand would evict; clears the visited bits it passes.
    uint32_t walk() {
        uint32_t o = hand_ == kNoRow ? nodes_[sentinel_].prev : hand_;
        while (visited_[o]) {
            visited_[o] = 0;
            o = nodes_[o].prev;  // toward the head (newer)
            if (o == sentinel_) o = nodes_[sentinel_].prev;
        }
        return o;
    }
    // The same walk passing over rows needed before `end`. Until it has passed a row that is not
    // needed, it records the bits it clears: if a full lap finds every row needed, it restores
    // them and walks as plain SIEVE. Once a row not needed has been passed (its bit cleared), the
    // walk reaches an unvisited row that is not needed within one more lap.
    uint32_t walk_lookahead(uint64_t end) {
        uint32_t o = hand_ == kNoRow ? nodes_[sentinel_].prev : hand_;
        bool free_seen = false;
        uint64_t passed = 0;
        cleared_.clear();
        while (true) {
            if (!look_.needed(o, end)) {
                if (!visited_[o]) return o;
                free_seen = true;
            }
            if (visited_[o]) {
                visited_[o] = 0;
                if (!free_seen) cleared_.push_back(o);
            }
            o = nodes_[o].prev;
            if (o == sentinel_) o = nodes_[sentinel_].prev;
            if (!free_seen && ++passed == size_) {  // every resident row is needed
                for (const uint32_t r : cleared_) visited_[r] = 1;
                return walk();
            }
        }
    }

    uint64_t capacity_;
    uint64_t size_ = 0;
    uint32_t sentinel_;
    uint32_t hand_ = kNoRow;  // kNoRow: start at the tail
    std::vector<Node> nodes_;
    std::vector<uint8_t> visited_;
    detail::Lookahead look_;         // lookahead only
    std::vector<uint32_t> cleared_;  // lookahead only: bits cleared before a free row was seen
};

}  // namespace

std::unique_ptr<CachePolicy> make_sieve(const PolicyContext& ctx) {
    if (ctx.options.count("lookahead")) return std::make_unique<Sieve<true>>(ctx);
    return std::make_unique<Sieve<false>>(ctx);
}

}  // namespace engramsim::placement
