// Static frequency-ranked pinning: the `capacity` rows most requested in a profiling window (or a
// separate warm-up trace) are pinned before replay starts and never change. Ranking is by count,
// descending, ties to the smaller row key; rows never seen in the profile are not pinned. A miss
// is served from the tier below without admission.
//
// It never evicts, so lookahead=W (keep rows needed soon) does not apply: the option is rejected
// with an error saying so rather than listed as unknown.
#include <algorithm>
#include <numeric>

#include "sim/placement/policy_util.h"

namespace engramsim::placement {
namespace {

class StaticPin final : public CachePolicy {
public:
    explicit StaticPin(const PolicyContext& ctx) : pinned_(ctx.universe, false) {
        if (ctx.options.count("lookahead"))
            throw PolicyError("policy static: lookahead does not apply: static pins a fixed set "
                              "of rows and never evicts");
        detail::OptionReader("static", ctx.options).finish();
        if (!ctx.profile_rank.empty()) {
            if (ctx.profile_rank.size() != ctx.universe)
                throw PolicyError("policy static: profile ranks cover " +
                                  std::to_string(ctx.profile_rank.size()) + " rows, the trace " +
                                  std::to_string(ctx.universe));
            for (uint32_t id = 0; id < ctx.universe; ++id)
                if (ctx.profile_rank[id] < ctx.capacity_rows) pinned_[id] = true, ++size_;
            return;
        }
        const auto& counts = ctx.profile_counts;
        if (!counts.empty() && counts.size() != ctx.universe)
            throw PolicyError("policy static: profile counts cover " +
                              std::to_string(counts.size()) + " rows, the trace " +
                              std::to_string(ctx.universe));
        std::vector<uint32_t> ids;
        for (uint32_t id = 0; id < counts.size(); ++id)
            if (counts[id] > 0) ids.push_back(id);
        const uint64_t take = std::min<uint64_t>(detail::usable_capacity(ctx), ids.size());
        auto key = [&](uint32_t id) { return ctx.keys.empty() ? uint64_t(id) : ctx.keys[id]; };
        std::partial_sort(
            ids.begin(), ids.begin() + ptrdiff_t(take), ids.end(), [&](uint32_t a, uint32_t b) {
                return counts[a] != counts[b] ? counts[a] > counts[b] : key(a) < key(b);
            });
        for (uint64_t i = 0; i < take; ++i) pinned_[ids[i]] = true;
        size_ = take;
    }

    bool access(uint32_t id, uint32_t) override {
        victim_ = kNoRow;
        return pinned_[id];
    }
    bool contains(uint32_t id) const override { return pinned_[id]; }
    bool erase(uint32_t id) override {
        if (!pinned_[id]) return false;
        pinned_[id] = false;
        --size_;
        return true;
    }
    uint64_t size() const override { return size_; }

private:
    std::vector<bool> pinned_;
    uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<CachePolicy> make_static(const PolicyContext& ctx) {
    return std::make_unique<StaticPin>(ctx);
}

}  // namespace engramsim::placement
