// Workload statistics of a lookup trace: what decides how well a cache or a prefetcher can do.
//
// All statistics are exact (no sampling) and are computed in file order: requests one after
// another, each request's tokens in order, each token's heads in order (order 2's heads first).
//   - per layer and N-gram order: lookups, unique rows, the share of lookups served by the most
//     popular 0.1 / 1 / 10 % of the rows the trace touches, and a Zipf exponent fitted to the
//     rank-frequency curve (least squares of log count on log rank, log-spaced ranks, over the
//     ranks read at least twice);
//   - per layer: the reuse-distance histogram: for each lookup, the number of distinct rows read
//     since the previous lookup of the same row (LRU stack distance; cold first reads apart),
//     in power-of-two buckets;
//   - unique rows per decode step at batch sizes 1, 2, 4, ..., 512: requests taken B at a time
//     decode in lockstep (step s feeds generated token s of each), averaged over all such steps.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "traces/etr.h"

namespace engramsim {

struct OrderStats {
    int layer_id = 0;
    int order = 0;
    uint64_t lookups = 0;
    uint64_t unique_rows = 0;
    double top_share[3] = {0, 0, 0};  // top 0.1 %, 1 %, 10 % of touched rows
    double zipf_exponent = 0;
    double zipf_r2 = 0;
    std::vector<std::pair<uint64_t, uint64_t>> popularity;  // (rank, count), log-spaced ranks
};

struct BatchUniqueStats {
    int batch = 0;
    uint64_t steps = 0;
    double lookups_per_step = 0;              // per layer
    std::vector<double> unique_rows_per_step;  // per layer
};

struct TraceStats {
    std::string path;
    uint64_t requests = 0, tokens = 0, lookups = 0;
    double row_bytes = 0;
    uint64_t file_bytes = 0;
    std::vector<int> layer_ids;
    std::vector<OrderStats> orders;
    // reuse[l][0]: cold reads; reuse[l][1 + k]: stack distance in [2^k, 2^(k+1)) (k = 0 holds
    // distances 0 and 1: the same row read again with at most one other row in between).
    std::vector<std::vector<uint64_t>> reuse;
    std::vector<BatchUniqueStats> batches;
};

TraceStats compute_trace_stats(const std::string& trace_path);

// Versioned JSON with units.
nlohmann::json to_json(const TraceStats& stats);

// Exact LRU stack distances of a key sequence (Fenwick tree, O(n log n)): for each position, the
// number of distinct keys since the previous occurrence, or -1 for a first occurrence.
std::vector<int64_t> stack_distances(const std::vector<uint64_t>& keys);

}  // namespace engramsim
