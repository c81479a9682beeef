// The executor's DRAM cache in front of a table file (sim.table nvme, placement.dram_capacity
// less than the table): `capacity_rows` rows of host memory, kept by the project's own cache
// policies (sim/placement/cache_policy.h, placement.dram_policy), so the engine hits exactly
// where the simulator's placement replay says it does.
//
// A fetch's distinct rows are offered to the policy in their order of first occurrence (the
// order the replay sees them). A hit is copied from its slot into the staging; a miss is read
// from the file (kernels/cpu/block_io.h) and, if the policy admits it, copied into the slot the
// policy's victim leaves (or a free one). Every decision is online: the policy sees the past
// only. The dense row ids the policies index by are taken from the run's trace, densified before
// the run as the replay densifies it: a memory-saving numbering, not a look ahead.
//
// Fetches of several Engram layers may run on their own prefetcher threads at once. The cache
// serves them one at a time, in the order their tickets were taken (the engine's issue order:
// step by step, layer by layer, the replay's order), so the decisions do not depend on which
// thread ran first.
#pragma once

#include <condition_variable>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "kernels/cpu/block_io.h"
#include "kernels/cpu/host_memory.h"
#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"

namespace engramsim::executor {

struct CacheFetchTimes {
    uint64_t hits = 0, misses = 0;
    double decide_s = 0;  // the policy's decisions
    double hit_s = 0;     // hits copied from their slots into the staging
    double read_s = 0;    // misses read from the file into the staging
    double fill_s = 0;    // admitted misses copied into their slots
};

class DramRowCache {
public:
    // `trace`: the run's lookups, densified (borrowed; it must outlive the cache). Throws
    // placement::PolicyError for an unknown policy or option.
    DramRowCache(const placement::DenseTrace& trace, uint64_t capacity_rows, size_t row_bytes,
                 const std::string& policy, const std::map<std::string, std::string>& options);

    // A place in the order fetches are served; taken by the engine's thread when it issues.
    uint64_t ticket() {
        std::lock_guard lock(mu_);
        return next_ticket_++;
    }
    // Serves the distinct rows `unique` into `disk`'s staging (row i at position i), after every
    // earlier ticket. Throws std::logic_error for a row not in the trace.
    CacheFetchTimes serve(uint64_t ticket, std::span<const uint64_t> unique,
                          kernels::BlockFetchExecutor& disk);

private:
    const placement::DenseTrace& trace_;
    placement::KeyIndex index_;  // the trace's keys -> dense ids
    size_t row_bytes_;
    std::unique_ptr<placement::CachePolicy> policy_;
    kernels::HugePageBuffer buffer_;
    std::vector<uint32_t> slot_of_;  // dense id -> slot, or kNoSlot
    uint32_t next_free_ = 0;
    uint32_t position_ = 0;  // the policy's request positions
    std::vector<uint32_t> hit_at_, hit_slot_, miss_at_, fill_slot_;
    std::vector<uint64_t> miss_rows_;
    std::mutex mu_;
    std::condition_variable turn_;
    uint64_t next_ticket_ = 0, serving_ = 0;
};

}  // namespace engramsim::executor
