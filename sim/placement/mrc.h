// Miss-ratio curves: misses of one cache tier at many capacities over one request sequence.
//
// LRU has the stack (inclusion) property, so every capacity comes from one pass: a request's
// stack distance d is 1 + the number of distinct rows requested since the same row's previous
// request (counted with a Fenwick tree over request positions, holding one mark per row at its
// latest position and compacted when positions run out), and it hits in every LRU cache of at
// least d rows. Other policies are replayed once per capacity, in parallel on a thread pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/placement/cache_policy.h"

namespace engramsim::placement {

struct MrcPoint {
    uint64_t capacity_rows = 0;
    uint64_t requests = 0;
    uint64_t misses = 0;
    double miss_ratio() const { return requests ? double(misses) / double(requests) : 0.0; }
};

// Exact LRU stack distances: histogram[d] = requests with stack distance d (d >= 1; index 0
// unused), plus cold (first-ever) requests. Memory: O(universe).
struct StackDistances {
    std::vector<uint64_t> histogram;
    uint64_t cold = 0;
    uint64_t requests = 0;
    // Misses of an LRU cache of `capacity_rows`: cold + requests with d > capacity.
    std::vector<MrcPoint> curve(std::span<const uint64_t> capacities_rows) const;
};
StackDistances lru_stack_distances(std::span<const uint32_t> requests, uint32_t universe);

// The LRU curve at the given capacities only, in the same single pass: each distance is counted
// in its capacity bracket (a table over distances, at most 2^16 cells, then a scan past the sizes
// within the cell) instead of a histogram over every distance, which is what makes the pass
// cache-friendly. Exact, for any set of sizes; same numbers as
// lru_stack_distances(...).curve(capacities_rows). Points in the given order.
std::vector<MrcPoint> lru_mrc(std::span<const uint32_t> requests, uint32_t universe,
                              std::span<const uint64_t> capacities_rows);

// lru_mrc over a sequence handed over a slice at a time (ids below `universe`).
class LruCurve {
public:
    LruCurve(uint32_t universe, std::span<const uint64_t> capacities_rows);
    ~LruCurve();
    void add(std::span<const uint32_t> requests);
    std::vector<MrcPoint> points() const;  // in the order of capacities_rows

private:
    struct State;
    std::unique_ptr<State> s_;
};

// Misses of policy `ctx`-built `policy` at each capacity (ctx.capacity_rows is replaced), one
// replay per capacity on up to `threads` threads (0: hardware concurrency). Results are in the
// order of `capacities_rows` and do not depend on the thread count.
std::vector<MrcPoint> policy_mrc(const std::string& policy, const PolicyContext& ctx,
                                 std::span<const uint32_t> requests,
                                 std::span<const uint64_t> capacities_rows, unsigned threads = 0);

}  // namespace engramsim::placement
