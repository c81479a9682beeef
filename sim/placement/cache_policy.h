// A cache policy decides which rows one cache tier (the HBM cache, or DRAM when it holds less than
// the whole table) keeps. It sees a sequence of requests for rows and answers hit or miss; on a
// miss it may admit the row, evicting at most one other.
//
// Rows are dense ids in [0, universe): placement replay (sim/placement/dense_trace.h) remaps the
// global row keys of a trace to dense ids on first sight, so every per-row array a policy holds is
// sized by the rows the trace touches, never by the table (a 1T-parameter table has 1e10+ rows).
// Capacities are in rows (all rows of an Engram table have the same size).
//
// Policies are registered by name in policy_registry.cpp, one line each; make_policy() with an
// unknown name throws PolicyError listing the known names.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace engramsim::placement {

inline constexpr uint32_t kNoRow = UINT32_MAX;  // "no row" (no victim)
inline constexpr uint32_t kNever = UINT32_MAX;  // next use beyond the end of the sequence

struct PolicyError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// What a policy is built from. Spans are borrowed: they must outlive the policy.
struct PolicyContext {
    uint64_t capacity_rows = 0;  // rows the tier holds; 0 = no cache (every request misses)
    uint32_t universe = 0;       // dense ids are < universe
    // Original global row key of each dense id (size universe). Set-associative policies hash it
    // for the set index, so their placement does not depend on the order rows were first seen.
    std::span<const uint64_t> keys;
    // next_use[t]: position of the next request for the same row after position t, or kNever.
    // Only for a tier that sees the trace's own request sequence (the HBM cache); oracle
    // policies (belady, lookahead options) require it.
    std::span<const uint32_t> next_use;
    // First request position of each engine step, ascending (for lookahead windows measured in
    // steps). Empty: every request is its own step (a plain id sequence).
    std::span<const uint64_t> step_first;
    // Frequency of each dense id in a profiling window or warm-up trace (size universe); the
    // static policy pins the most frequent rows. Empty for other policies.
    std::span<const uint64_t> profile_counts;
    // Or, instead of counts, each dense id's rank in a profile ranked elsewhere (0 = most
    // requested; UINT64_MAX = not in the profile): static pins the ids ranked below its
    // capacity. A warm-up trace is ranked over all of its own rows, so rows the replayed trace
    // never touches still take their places.
    std::span<const uint64_t> profile_rank;
    // Policy options "key" -> "value" (e.g. "admission" -> "bypass", "ways" -> "16"). A policy
    // rejects keys it does not know (PolicyError naming the known keys).
    std::map<std::string, std::string> options;
};

class CachePolicy {
public:
    virtual ~CachePolicy() = default;

    // The request at position `t` of the sequence is for row `id` (< universe). Positions
    // increase by one per request (the policy may rely on it: next_use is indexed by t).
    // Returns true on a hit. On a miss the row is admitted unless the policy's admission rule
    // declines; if admitting evicted a row, victim() names it until the next call.
    virtual bool access(uint32_t id, uint32_t t) = 0;

    // Requests ids[i] at positions t0 + i, in order, as access() would; returns the misses.
    // Policies override it with a loop that prefetches the state of upcoming rows.
    virtual uint64_t run(std::span<const uint32_t> ids, uint32_t t0);

    // Whether `id` is resident.
    virtual bool contains(uint32_t id) const = 0;
    // Removes `id` if resident (a move to another tier or a back-invalidation, not an eviction:
    // victim() is unchanged). Returns whether it was resident.
    virtual bool erase(uint32_t id) = 0;
    // Rows resident now (<= capacity).
    virtual uint64_t size() const = 0;

    uint32_t victim() const { return victim_; }
    // Rows admitted so far (misses that entered the cache). Every admission into a full cache
    // evicts one row, so evictions = admissions - growth of size() when nothing was erased.
    uint64_t admitted() const { return admitted_; }

protected:
    uint32_t victim_ = kNoRow;
    uint64_t admitted_ = 0;
};

// One registered policy.
struct PolicyInfo {
    const char* name;
    const char* help;  // one line, with its options
    bool needs_next_use;
    std::unique_ptr<CachePolicy> (*make)(const PolicyContext&);
};

// Every registered policy, sorted by name.
const std::vector<PolicyInfo>& policies();
// The policy called `name`; throws PolicyError "unknown policy 'lur'; known: belady, lfu, ...".
const PolicyInfo& policy_info(const std::string& name);
// Whether the policy decides from the requests it has already seen alone: not an oracle (next-use
// times: belady, a lookahead option) and no profile of the trace (static). Such a policy can run
// online (the executor's DRAM cache) or while the trace is still being read. Throws PolicyError
// for an unknown name.
bool decides_online(const std::string& name, const std::map<std::string, std::string>& options);

// policy_info(name).make(ctx), after checking that oracle policies get next_use.
std::unique_ptr<CachePolicy> make_policy(const std::string& name, const PolicyContext& ctx);

// Parses "key=value,key=value" policy options (empty text: none).
std::map<std::string, std::string> parse_policy_options(const std::string& text);

}  // namespace engramsim::placement
