// FBGEMM-style N-way set-associative caches (the TBE "LXU" cache): the capacity is split into
// sets of `ways` slots (sets = capacity / ways, at least one; a capacity that is not a multiple
// of ways leaves the remainder unused), and a row may only live in set fmix64(key) mod sets,
// the 64-bit MurmurHash3 finalizer of its global row key. A miss fills a free way of the set,
// else replaces:
//   sa-lru  the way used least recently;
//   sa-lfu  the way with the lowest count (ties: least recently used). Counts are per row and
//           kept for every row ever requested, resident or not (FBGEMM's lfu_state). With
//           admission=frequency (default, as FBGEMM's LFU insert) the row replaces it only when
//           its own count, this request included, is higher; otherwise it bypasses the cache.
//
// Option lookahead=W (needs next-use times): rows requested again within the current step or
// the next W steps are not evicted while a way of the same set holds a row that is not needed:
// the victim is the set's least recently used (sa-lru) or lowest-count, ties LRU (sa-lfu) way
// whose row is not needed; when every way of the set is needed, the plain rule's victim. With
// admission=frequency the new row is compared with that victim. Lookahead is a separate
// instantiation: the plain policy's path is unchanged.
#include <stdexcept>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

template <bool kLfu, bool kLookahead>
class SetAssoc final : public CachePolicy {
public:
    explicit SetAssoc(const PolicyContext& ctx, const char* name) : slot_of_(ctx.universe, kNoRow) {
        detail::OptionReader opt(name, ctx.options);
        ways_ = uint32_t(opt.integer("ways", 32, 1, 1u << 16));
        if constexpr (kLfu)
            admit_by_count_ = opt.choice("admission", {"frequency", "always"}) == "frequency";
        const bool lookahead = look_.configure(name, opt, ctx);
        opt.finish();
        if (lookahead != kLookahead)
            throw std::logic_error(std::string(name) + ": lookahead instantiation");
        const uint64_t cap = ctx.capacity_rows;
        if (cap == 0) {
            sets_ = 0;
        } else if (cap < ways_) {
            ways_ = uint32_t(cap);
            sets_ = 1;
        } else {
            sets_ = cap / ways_;
        }
        slots_.assign(sets_ * ways_, kNoRow);
        stamp_.assign(sets_ * ways_, 0);
        if constexpr (kLfu) {
            count_.assign(ctx.universe, 0);
            slot_count_.assign(sets_ * ways_, 0);
        }
        if (sets_ > 0) {  // each row's set, hashed once
            set_of_.resize(ctx.universe);
            for (uint32_t id = 0; id < ctx.universe; ++id)
                set_of_[id] =
                    uint32_t(detail::fmix64(ctx.keys.empty() ? id : ctx.keys[id]) % sets_);
        }
    }

    bool access(uint32_t id, uint32_t t) override {
        if constexpr (kLookahead) look_.note(id, t);
        if constexpr (kLfu) ++count_[id];
        const uint32_t slot = slot_of_[id];
        if (slot != kNoRow) {
            stamp_[slot] = uint64_t(t) + 1;
            if constexpr (kLfu) slot_count_[slot] = count_[id];
            return true;
        }
        victim_ = kNoRow;
        if (sets_ == 0) return false;
        const uint64_t base = uint64_t(set_of_[id]) * ways_;
        uint64_t pick = base;
        for (uint64_t w = base; w < base + ways_; ++w) {
            if (slots_[w] == kNoRow) {
                pick = w;
                break;
            }
            if (replace_before(w, pick)) pick = w;
        }
        if constexpr (kLookahead)
            if (slots_[pick] != kNoRow) pick = unneeded_pick(base, pick, look_.window_end(t));
        if (slots_[pick] != kNoRow) {
            if constexpr (kLfu)
                if (admit_by_count_ && count_[id] <= slot_count_[pick]) return false;
            victim_ = slots_[pick];
            slot_of_[victim_] = kNoRow;
        } else {
            ++size_;
        }
        slots_[pick] = id;
        slot_of_[id] = uint32_t(pick);
        stamp_[pick] = uint64_t(t) + 1;
        if constexpr (kLfu) slot_count_[pick] = count_[id];
        ++admitted_;
        return false;
    }

    bool contains(uint32_t id) const override { return slot_of_[id] != kNoRow; }
    bool erase(uint32_t id) override {
        const uint32_t slot = slot_of_[id];
        if (slot == kNoRow) return false;
        slots_[slot] = kNoRow;
        slot_of_[id] = kNoRow;
        --size_;
        return true;
    }
    uint64_t size() const override { return size_; }

private:
    // Whether occupied way a is a better victim than occupied way b.
    bool replace_before(uint64_t a, uint64_t b) const {
        if constexpr (kLfu) {
            const uint64_t ca = slot_count_[a], cb = slot_count_[b];
            if (ca != cb) return ca < cb;
        }
        return stamp_[a] < stamp_[b];
    }

    // The set (every way occupied) starting at `base`: the best victim among the ways whose row
    // is not needed before `end`, or `plain` (the plain rule's victim) when every one is needed.
    uint64_t unneeded_pick(uint64_t base, uint64_t plain, uint64_t end) const {
        if (!look_.needed(slots_[plain], end)) return plain;
        uint64_t pick = UINT64_MAX;
        for (uint64_t w = base; w < base + ways_; ++w)
            if (!look_.needed(slots_[w], end) && (pick == UINT64_MAX || replace_before(w, pick)))
                pick = w;
        return pick == UINT64_MAX ? plain : pick;
    }

    uint32_t ways_ = 32;
    uint64_t sets_ = 0;
    bool admit_by_count_ = true;
    uint64_t size_ = 0;
    std::vector<uint32_t> slots_;       // [set * ways + way] -> row, kNoRow when free
    std::vector<uint64_t> stamp_;       // last request position + 1
    std::vector<uint32_t> slot_of_;     // row -> slot (a real cache scans the set; same result)
    std::vector<uint64_t> count_;       // sa-lfu: requests per row, all time
    std::vector<uint64_t> slot_count_;  // sa-lfu: count_ of each slot's row, beside the slot
    std::vector<uint32_t> set_of_;      // row -> set
    detail::Lookahead look_;            // lookahead only
};

}  // namespace

std::unique_ptr<CachePolicy> make_sa_lru(const PolicyContext& ctx) {
    if (ctx.options.count("lookahead"))
        return std::make_unique<SetAssoc<false, true>>(ctx, "sa-lru");
    return std::make_unique<SetAssoc<false, false>>(ctx, "sa-lru");
}
std::unique_ptr<CachePolicy> make_sa_lfu(const PolicyContext& ctx) {
    if (ctx.options.count("lookahead"))
        return std::make_unique<SetAssoc<true, true>>(ctx, "sa-lfu");
    return std::make_unique<SetAssoc<true, false>>(ctx, "sa-lfu");
}

}  // namespace engramsim::placement
