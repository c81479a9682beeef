#include "sim/placement/dense_trace.h"

#include <stdexcept>
#include <string>

#include "sim/placement/cache_policy.h"
#include "sim/placement/policy_util.h"

namespace engramsim::placement {

namespace {
constexpr uint64_t kEmpty = UINT64_MAX;
constexpr uint64_t kMaxRequests = UINT32_MAX - 1;  // positions are uint32, kNever excluded
}  // namespace

uint64_t KeyIndex::home(uint64_t key) const {
    return detail::fmix64(key) & mask_;
}

void KeyIndex::grow() {
    const size_t cap = slots_.empty() ? 1024 : slots_.size() * 2;
    std::vector<Slot> old(cap, Slot{kEmpty, 0, 0});
    old.swap(slots_);
    mask_ = cap - 1;
    for (const Slot& e : old) {
        if (e.key == kEmpty) continue;
        uint64_t s = home(e.key);
        while (slots_[s].key != kEmpty) s = (s + 1) & mask_;
        slots_[s] = e;
    }
}

uint32_t KeyIndex::insert(uint64_t key) {
    bool seen = false;
    return insert(key, 0, seen);
}

uint32_t KeyIndex::insert(uint64_t key, uint32_t stamp, bool& seen_with_stamp) {
    if (key == kEmpty) throw std::invalid_argument("row key 18446744073709551615 is reserved");
    if (4 * (uint64_t(size_) + 1) > 3 * slots_.size()) grow();  // at most 3/4 full
    uint64_t s = home(key);
    while (slots_[s].key != kEmpty) {
        if (slots_[s].key == key) {
            seen_with_stamp = stamp != 0 && slots_[s].stamp == stamp;
            slots_[s].stamp = stamp;
            return slots_[s].id;
        }
        s = (s + 1) & mask_;
    }
    seen_with_stamp = false;
    if (size_ == UINT32_MAX - 1)
        throw std::length_error("more than 4,294,967,294 distinct rows in one replay");
    slots_[s] = {key, size_, stamp};
    return size_++;
}

uint32_t KeyIndex::find(uint64_t key) const {
    if (slots_.empty() || key == kEmpty) return UINT32_MAX;
    uint64_t s = home(key);
    while (slots_[s].key != kEmpty) {
        if (slots_[s].key == key) return slots_[s].id;
        s = (s + 1) & mask_;
    }
    return UINT32_MAX;
}

DenseTrace densify(LookupSource& source) {
    DenseTrace out;
    out.layout = source.layout();
    StepBatch batch;
    while (source.next(batch)) {
        ++out.steps;
        for (size_t l = 0; l < batch.rows.size(); ++l) {
            const auto& rows = batch.rows[l];
            RequestGroup g{.step = batch.step,
                           .layer = uint32_t(l),
                           .lookups = rows.size(),
                           .first = out.requests.size()};
            if (out.groups.size() + 1 >= UINT32_MAX)
                throw std::length_error("more than 4,294,967,294 (step, layer) groups");
            const uint32_t stamp = uint32_t(out.groups.size() + 1);
            constexpr size_t kAhead = 8;
            for (size_t k = 0; k < rows.size(); ++k) {
                if (k + kAhead < rows.size()) out.index.prefetch(rows[k + kAhead]);
                const uint64_t key = rows[k];
                bool repeat = false;
                const uint32_t id = out.index.insert(key, stamp, repeat);
                if (id == out.keys.size()) out.keys.push_back(key);
                if (repeat) continue;
                out.requests.push_back(id);
            }
            if (out.requests.size() > kMaxRequests)
                throw std::length_error("more than 4,294,967,294 requests in one replay");
            g.count = uint32_t(out.requests.size() - g.first);
            out.lookups += rows.size();
            out.groups.push_back(g);
        }
    }
    return out;
}

DenseTrace densify_ids(std::span<const uint64_t> ids, double row_bytes) {
    if (ids.size() > kMaxRequests)
        throw std::length_error("more than 4,294,967,294 requests in one replay");
    DenseTrace out;
    out.layout.row_bytes = row_bytes;
    out.requests.reserve(ids.size());
    for (size_t k = 0; k < ids.size(); ++k) {
        if (k + 8 < ids.size()) out.index.prefetch(ids[k + 8]);
        const uint64_t key = ids[k];
        const uint32_t id = out.index.insert(key);
        if (id == out.keys.size()) out.keys.push_back(key);
        out.requests.push_back(id);
    }
    out.lookups = ids.size();
    return out;
}

std::vector<uint64_t> step_starts(const DenseTrace& trace) {
    std::vector<uint64_t> out;
    for (size_t i = 0; i < trace.groups.size(); ++i)
        if (i == 0 || trace.groups[i].step != trace.groups[i - 1].step)
            out.push_back(trace.groups[i].first);
    return out;
}

std::vector<uint32_t> next_uses(std::span<const uint32_t> requests, uint32_t universe) {
    std::vector<uint32_t> next(requests.size());
    std::vector<uint32_t> last(universe, kNever);
    for (size_t t = requests.size(); t-- > 0;) {
        next[t] = last[requests[t]];
        last[requests[t]] = uint32_t(t);
    }
    return next;
}

std::vector<uint64_t> request_counts(std::span<const uint32_t> requests, uint32_t universe) {
    std::vector<uint64_t> counts(universe, 0);
    for (uint32_t id : requests) ++counts[id];
    return counts;
}

}  // namespace engramsim::placement
