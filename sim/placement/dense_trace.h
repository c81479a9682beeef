// A lookup trace made ready for replay: global row keys remapped to dense ids (in order of first
// sight), rows repeated within a (step, layer) folded into one request, and the request sequence
// every tier policy sees. Memory is proportional to the requests and the distinct rows touched,
// never to the table: a key is only ever a hash-map key. Keys are numbered on every core by radix
// partitions (remap.h); the key index below only searches a trace's keys by key.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "traces/lookups.h"

namespace engramsim::placement {

// Global row key -> dense id, open addressing (keys are table rows; UINT64_MAX is reserved).
// Slots hold key + 1, so a slot of zeros is empty: the table is allocated zeroed by the kernel
// (no pass writing "empty" over it), and reserve() sizes it once.
class KeyIndex {
public:
    KeyIndex() = default;
    KeyIndex(KeyIndex&&) noexcept = default;
    KeyIndex& operator=(KeyIndex&&) noexcept = default;
    // Room for `keys` distinct keys without growing (at most 3/4 full).
    void reserve(uint64_t keys);
    // The dense id of `key`, assigning the next id on first sight.
    uint32_t insert(uint64_t key);
    // The dense id of `key`, or UINT32_MAX when it was never inserted.
    uint32_t find(uint64_t key) const;
    uint32_t size() const { return size_; }

private:
    struct Slot {
        uint64_t key1;  // key + 1; 0: empty
        uint32_t id;
        uint32_t unused;
    };
    struct Free {
        void operator()(Slot* p) const;
    };
    uint64_t home(uint64_t key) const;
    uint64_t next(uint64_t slot) const { return slot + 1 == capacity_ ? 0 : slot + 1; }
    void rehash(uint64_t capacity);
    std::unique_ptr<Slot[], Free> slots_;  // key and id side by side: one cache line per probe
    uint64_t capacity_ = 0;
    uint32_t size_ = 0;
};

// The requests of one (step, layer): requests[first, first + count).
struct RequestGroup {
    uint64_t step = 0;
    uint32_t layer = 0;    // index into layout.layer_ids
    uint64_t lookups = 0;  // before folding repeats
    uint64_t first = 0;
    uint32_t count = 0;
};

struct DenseTrace {
    LookupLayout layout;               // empty for a plain id sequence
    std::vector<uint64_t> keys;        // dense id -> global row key
    std::vector<uint32_t> requests;    // what the caches see, in serving order
    std::vector<RequestGroup> groups;  // per (step, layer), in order; empty for an id sequence
    uint64_t lookups = 0;              // row reads before folding repeats
    uint64_t steps = 0;

    uint32_t universe() const { return uint32_t(keys.size()); }
    // Rows of the table: layout.total_rows, or the distinct ids of a plain sequence.
    uint64_t table_rows() const { return layout.total_rows ? layout.total_rows : keys.size(); }
    double row_bytes() const { return layout.row_bytes; }
};

// Reads `source` to its end. Each (step, layer)'s rows become one request each, in order of first
// occurrence within the step. Throws std::length_error past 2^32 - 1 requests or distinct rows.
DenseTrace densify(LookupSource& source);

// A plain sequence: one request per id, no steps, no folding (for comparison with other cache
// simulators). row_bytes is what byte counts use.
DenseTrace densify_ids(std::span<const uint64_t> ids, double row_bytes = 1);
// The same from a file of little-endian uint64 ids (id_file.h: mapped, not copied). Throws
// std::runtime_error naming the file when it cannot be read, is empty or is not a whole number
// of ids.
// With IdOrder::Grouped the dense ids are grouped by the keys' hash partitions instead of
// numbered in order of first sight (placement/remap.h: no random reads to number them), for a
// replay the numbering of rows cannot change: a policy deciding from the order of requests, keys
// and next uses alone, or an LRU curve.
enum class IdOrder { FirstSight, Grouped };
DenseTrace densify_id_file(const std::string& path, double row_bytes = 1,
                           IdOrder order = IdOrder::FirstSight);
// An index of `keys` (key -> its position): a trace's keys searched by key (a warm-up's ranks,
// the executor's DRAM row cache).
KeyIndex index_of_keys(std::span<const uint64_t> keys);

// First request position of each step (groups of one step are adjacent), ascending.
std::vector<uint64_t> step_starts(const DenseTrace& trace);

// next_use[t] = the next position after t with the same id, or kNever.
std::vector<uint32_t> next_uses(std::span<const uint32_t> requests, uint32_t universe);

// Requests per dense id over requests[0, end).
std::vector<uint64_t> request_counts(std::span<const uint32_t> requests, uint32_t universe);

}  // namespace engramsim::placement
