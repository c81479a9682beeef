#include "sim/placement/dense_trace.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "sim/placement/cache_policy.h"
#include "sim/placement/id_file.h"
#include "sim/placement/policy_util.h"
#include "sim/placement/remap.h"

namespace engramsim::placement {

namespace {
constexpr uint64_t kEmpty = UINT64_MAX;
constexpr uint64_t kMaxRequests = UINT32_MAX - 1;  // positions are uint32, kNever excluded
}  // namespace

namespace {

// Maps the pages of [p, p + bytes) writable now, in one call: a table read at random would
// otherwise fault every page twice (mapped to the zero page on its first read, copied on its
// first write). Where the kernel lacks MADV_POPULATE_WRITE (before 5.14) it does nothing.
void populate(void* p, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096;
    const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
    if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_POPULATE_WRITE);
#else
    (void)p, (void)bytes;
#endif
}

}  // namespace

// The slot a key's probe starts at: its hash scaled onto the capacity (multiply-shift, so the
// capacity need not be a power of 2 and reserve() sizes the table to the keys, not to the next
// power of 2 above them).
uint64_t KeyIndex::home(uint64_t key) const {
    return uint64_t((unsigned __int128)detail::fmix64(key) * capacity_ >> 64);
}

void KeyIndex::Free::operator()(Slot* p) const {
    std::free(p);
}

// A table of `capacity` empty slots: zeroed by calloc, which takes a large block
// straight from the kernel's zero pages. (Advising it onto transparent huge pages was measured
// and made replay 1.3-2.4x slower on this VM: the kernel compacts memory to find them.)
void KeyIndex::rehash(uint64_t capacity) {
    std::unique_ptr<Slot[], Free> fresh(static_cast<Slot*>(std::calloc(capacity, sizeof(Slot))));
    if (!fresh) throw std::bad_alloc();
    populate(fresh.get(), capacity * sizeof(Slot));
    std::swap(fresh, slots_);
    const uint64_t old_capacity = capacity_;
    capacity_ = capacity;
    for (uint64_t i = 0; i < old_capacity; ++i) {
        const Slot& e = fresh[i];
        if (e.key1 == 0) continue;
        uint64_t s = home(e.key1 - 1);
        while (slots_[s].key1 != 0) s = next(s);
        slots_[s] = e;
    }
}

void KeyIndex::reserve(uint64_t keys) {
    const uint64_t cap = std::max<uint64_t>(1024, (4 * keys + 2) / 3);  // at most 3/4 full
    if (cap > capacity_) rehash(cap);
}

uint32_t KeyIndex::insert(uint64_t key) {
    if (key == kEmpty) throw std::invalid_argument("row key 18446744073709551615 is reserved");
    if (4 * (uint64_t(size_) + 1) > 3 * capacity_) rehash(capacity_ ? 2 * capacity_ : 1024);
    const uint64_t key1 = key + 1;
    uint64_t s = home(key);
    while (slots_[s].key1 != 0) {
        if (slots_[s].key1 == key1) return slots_[s].id;
        s = next(s);
    }
    if (size_ == UINT32_MAX - 1)
        throw std::length_error("more than 4,294,967,294 distinct rows in one replay");
    slots_[s] = {key1, size_, 0};
    return size_++;
}

uint32_t KeyIndex::find(uint64_t key) const {
    if (!slots_ || key == kEmpty) return UINT32_MAX;
    const uint64_t key1 = key + 1;
    uint64_t s = home(key);
    while (slots_[s].key1 != 0) {
        if (slots_[s].key1 == key1) return slots_[s].id;
        s = next(s);
    }
    return UINT32_MAX;
}

namespace {

// The distinct keys of one (step, layer), in order of first occurrence: open addressing in a
// table twice the group's size, its used slots cleared after the group (a group holds a few
// thousand rows at most: the table stays in L1/L2).
class GroupFold {
public:
    // Appends to `out` each key of `rows` not seen before in `rows`.
    void fold(std::span<const uint64_t> rows, std::vector<uint64_t>& out) {
        const size_t cap = std::bit_ceil(std::max<size_t>(16, 2 * rows.size()));
        if (slots_.size() < cap) slots_.assign(cap, 0), full_.assign(cap, 0);
        const size_t mask = cap - 1;
        used_.clear();
        for (uint64_t key : rows) {
            size_t s = size_t(detail::fmix64(key)) & mask;
            while (full_[s] && slots_[s] != key) s = (s + 1) & mask;
            if (full_[s]) continue;  // a repeat within the group
            full_[s] = 1;
            slots_[s] = key;
            used_.push_back(uint32_t(s));
            out.push_back(key);
        }
        for (uint32_t s : used_) full_[s] = 0;
    }

private:
    std::vector<uint64_t> slots_;
    std::vector<uint8_t> full_;
    std::vector<uint32_t> used_;
};

}  // namespace

// The rows of every (step, layer), repeats folded within each (cache-local), then the whole
// sequence numbered in order of first sight by the partitioned remapping (remap.h) on every
// core, instead of one probe of a table of every key per lookup.
DenseTrace densify(LookupSource& source) {
    DenseTrace out;
    out.layout = source.layout();
    std::vector<uint64_t> flat;  // the requests' keys
    GroupFold fold;
    StepBatch batch;
    while (source.next(batch)) {
        ++out.steps;
        for (size_t l = 0; l < batch.rows.size(); ++l) {
            const auto& rows = batch.rows[l];
            RequestGroup g{.step = batch.step,
                           .layer = uint32_t(l),
                           .lookups = rows.size(),
                           .first = flat.size()};
            if (out.groups.size() + 1 >= UINT32_MAX)
                throw std::length_error("more than 4,294,967,294 (step, layer) groups");
            fold.fold(rows, flat);
            if (flat.size() > kMaxRequests)
                throw std::length_error("more than 4,294,967,294 requests in one replay");
            g.count = uint32_t(flat.size() - g.first);
            out.lookups += rows.size();
            out.groups.push_back(g);
        }
    }
    remap_keys(flat, out.keys, out.requests);
    return out;
}

DenseTrace densify_ids(std::span<const uint64_t> ids, double row_bytes) {
    DenseTrace out;
    out.layout.row_bytes = row_bytes;
    remap_keys(ids, out.keys, out.requests);
    out.lookups = ids.size();
    return out;
}

DenseTrace densify_id_file(const std::string& path, double row_bytes, IdOrder order) {
    const IdFile file(path);
    if (order == IdOrder::FirstSight) return densify_ids(file.ids(), row_bytes);
    DenseTrace out;
    out.layout.row_bytes = row_bytes;
    grouped_ids(file.ids(), number_keys(file.ids()), out.keys, out.requests);
    out.lookups = file.ids().size();
    return out;
}

KeyIndex index_of_keys(std::span<const uint64_t> keys) {
    KeyIndex index;
    index.reserve(keys.size());
    for (uint64_t key : keys) index.insert(key);
    return index;
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
