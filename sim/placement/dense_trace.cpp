#include "sim/placement/dense_trace.h"

#include <sys/mman.h>

#include <algorithm>
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
    bool seen = false;
    return insert(key, 0, seen);
}

uint32_t KeyIndex::insert(uint64_t key, uint32_t stamp, bool& seen_with_stamp) {
    if (key == kEmpty) throw std::invalid_argument("row key 18446744073709551615 is reserved");
    if (4 * (uint64_t(size_) + 1) > 3 * capacity_) rehash(capacity_ ? 2 * capacity_ : 1024);
    const uint64_t key1 = key + 1;
    uint64_t s = home(key);
    while (slots_[s].key1 != 0) {
        if (slots_[s].key1 == key1) {
            seen_with_stamp = stamp != 0 && slots_[s].stamp == stamp;
            slots_[s].stamp = stamp;
            return slots_[s].id;
        }
        s = next(s);
    }
    seen_with_stamp = false;
    if (size_ == UINT32_MAX - 1)
        throw std::length_error("more than 4,294,967,294 distinct rows in one replay");
    slots_[s] = {key1, size_, stamp};
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
