#include "sim/timing/lookup_counts.h"

#include <algorithm>
#include <bit>


namespace engramsim::sim {

namespace {
// Open-addressing set of nonzero 64-bit keys, cleared in O(inserted).
class KeySet {
public:
    void reset(size_t expected) {
        const size_t cap = std::bit_ceil(std::max<size_t>(64, expected * 2));
        if (slots_.size() < cap) slots_.assign(cap, 0);
        for (size_t i : used_) slots_[i] = 0;
        used_.clear();
        mask_ = slots_.size() - 1;
    }
    void insert(uint64_t key) {  // key != 0
        size_t i = size_t((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
        while (slots_[i] != 0) {
            if (slots_[i] == key) return;
            i = (i + 1) & mask_;
        }
        slots_[i] = key;
        used_.push_back(i);
    }
    size_t size() const { return used_.size(); }

private:
    std::vector<uint64_t> slots_;
    std::vector<size_t> used_;
    size_t mask_ = 0;
};
}  // namespace

LookupCounts count_lookups(LookupSource& source) {
    LookupCounts out;
    KeySet set;
    StepBatch batch;
    while (source.next(batch)) {
        std::vector<uint64_t> look(batch.rows.size(), 0), uniq(batch.rows.size(), 0);
        for (size_t l = 0; l < batch.rows.size(); ++l) {
            set.reset(batch.rows[l].size());
            for (uint64_t key : batch.rows[l]) set.insert(key + 1);  // 0 marks an empty slot
            look[l] = batch.rows[l].size();
            uniq[l] = set.size();
        }
        out.lookups.push_back(std::move(look));
        out.unique_rows.push_back(std::move(uniq));
    }
    return out;
}

}  // namespace engramsim::sim
