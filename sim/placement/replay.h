// Placement replay: the public API of sim/placement.
//
// Serves a trace's requests (dense_trace.h) through up to three tiers, row by row, in serving
// order, and records for every (step, layer) what each tier served and what moved (step_record.h):
//
//   HBM cache   `hbm_rows` rows managed by a cache policy (cache_policy.h); 0 = no GPU cache.
//   host DRAM   the whole table when dram_rows >= the table's rows (the default); otherwise a
//               second cache managed by its own policy, and the rest lives only on
//   NVMe SSD    which always holds the whole (read-only) table.
//
// With a DRAM cache the tiers are either
//   inclusive   every HBM miss is looked up in DRAM (DRAM sees only HBM misses); an SSD read
//               fills DRAM on its way to the GPU; when DRAM evicts a row the HBM cache holds,
//               the HBM copy is dropped too (back-invalidation), so HBM stays a subset of DRAM.
//   exclusive   a row is in at most one of HBM and DRAM: a DRAM row admitted into HBM leaves
//               DRAM, an HBM victim is written back into DRAM (demotion, GPU -> host bytes), and
//               a row HBM declines stays in (or, read from SSD, is filled into) DRAM.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"
#include "sim/placement/mrc.h"
#include "sim/placement/step_record.h"

namespace engramsim::placement {

inline constexpr uint64_t kAllRows = UINT64_MAX;

enum class Inclusion { Inclusive, Exclusive };

struct TierConfig {
    uint64_t hbm_rows = 0;
    std::string policy = "lru";  // HBM cache policy
    std::map<std::string, std::string> options;
    uint64_t dram_rows = kAllRows;  // >= table rows: DRAM holds the whole table
    std::string dram_policy = "lru";
    std::map<std::string, std::string> dram_options;
    Inclusion inclusion = Inclusion::Inclusive;
    // The static policy's profile: rows ranked by their requests in the first `profile_fraction`
    // of the trace (1 = the whole trace, an oracle ranking), unless `profile_ranks` is given
    // (per dense id, e.g. from a warm-up trace: profile_ranks_for()).
    double profile_fraction = 1.0;
    std::vector<uint64_t> profile_ranks;
    bool step_records = true;  // keep one StepRecord per (step, layer)
};

// Totals over a set of requests (one layer, or all).
struct TierTotals {
    uint64_t lookups = 0;   // row reads, repeats within a step included
    uint64_t requests = 0;  // unique rows per (step, layer), summed: what the caches saw
    uint64_t hbm_hits = 0;
    uint64_t dram_rows = 0;
    uint64_t ssd_rows = 0;
    uint64_t promoted_rows = 0;
    uint64_t evicted_rows = 0;
    uint64_t demoted_rows = 0;
    uint64_t invalidated_rows = 0;

    void add(const StepRecord& r);
    // Object hit ratios: HBM hits / requests; DRAM hits / requests that reached DRAM.
    double hbm_hit_ratio() const;
    double dram_hit_ratio() const;
};

struct ReplayResult {
    uint64_t hbm_capacity_rows = 0;
    uint64_t dram_capacity_rows = 0;  // kAllRows: the whole table
    double row_bytes = 0;
    TierTotals total;
    std::vector<TierTotals> layers;  // per layer index; one entry for a plain id sequence
    std::vector<StepRecord> steps;   // per (step, layer) when step_records
};

// Replays `trace` through the tiers. Throws PolicyError for unknown policies or options, or a
// policy that cannot manage the tier it is given (belady on DRAM).
ReplayResult replay(const DenseTrace& trace, const TierConfig& tiers);

// What a replay's input held, for its reports.
struct InputFacts {
    uint64_t lookups = 0;     // row reads
    uint64_t requests = 0;    // what the caches saw: one per lookup, or unique rows per (step, layer)
    uint64_t steps = 0;
    uint64_t distinct_rows = 0;
    uint64_t table_rows = 0;  // the table's rows; a plain sequence's distinct rows
    double row_bytes = 1;
    std::vector<int> layer_ids;  // 0-based Transformer layers (none for a plain sequence)
    bool per_lookup = true;  // a plain sequence (no steps): one request per lookup
};
InputFacts facts_of(const DenseTrace& trace);

// An id file replayed through `tiers` in one pass, where the HBM policy decides from the order
// of the requests alone (replays_in_one_pass): the keys are numbered on every core
// (placement/remap.h) and handed to the policy as numbered, with no first-sight ids and no
// request array, so the policy's loop runs as soon as the numbers exist. The same result as
// densify_id_file then replay, bit for bit (tested for every such policy: the numbering of rows
// cannot change what a policy deciding from their order does). `facts` describes the file.
// Elsewhere (a DRAM tier, next uses, keys or a profile at the start: belady, lookahead, sa-*,
// static) it is densify_id_file then replay.
ReplayResult replay_id_file(const std::string& path, double row_bytes, const TierConfig& tiers,
                            InputFacts& facts);
// Whether replay_id_file replays these tiers in one pass.
bool replays_in_one_pass(const TierConfig& tiers);

// An id file's LRU curve at the capacities sizes_for(distinct rows) returns, in one pass as its
// keys are numbered, as replay_id_file replays (an LRU curve cannot depend on how rows are
// numbered): the same points as lru_mrc over densify_id_file's requests (tested). `facts`
// describes the file.
std::vector<MrcPoint> lru_curve_of_id_file(
    const std::string& path, double row_bytes,
    const std::function<std::vector<uint64_t>(uint64_t distinct_rows)>& sizes_for,
    InputFacts& facts);

// What replay() gives for a plain sequence of `table_rows` distinct rows through plain LRU
// (tiers.policy "lru" with no options, DRAM holding the table) at tiers.hbm_rows, from the LRU
// curve's point at that capacity (mrc.h): its misses, every miss admitted (none with no cache),
// and the cache left holding min(capacity, rows). LRU's stack property: no second pass (tested
// equal to replay()).
ReplayResult lru_result_from_curve(const MrcPoint& at_capacity, uint64_t table_rows,
                                   double row_bytes, const TierConfig& tiers);

// Capacity text -> rows: "all", "N%" of the table's rows, a byte size with a unit ("10GiB",
// "1.5 TB"; rounded down to whole rows of row_bytes), or rows ("1000000", "2.5M rows").
// Throws std::invalid_argument naming the accepted forms.
uint64_t parse_capacity_rows(const std::string& text, double row_bytes, uint64_t table_rows);

// Ranks from a warm-up trace, per dense id of `trace`: all the warm-up's rows are ranked by their
// requests (folded per (step, layer) as densify does; descending, ties to the smaller key), and
// each row of `trace` gets its rank there, or UINT64_MAX if the warm-up never reads it. Memory:
// the warm-up's distinct rows.
std::vector<uint64_t> profile_ranks_for(const DenseTrace& trace, LookupSource& warmup);

}  // namespace engramsim::placement
