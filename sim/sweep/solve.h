// engramsim solve: where a target flips as one config key varies over a range ("the largest
// Engram table under 1% overhead", "the least DRAM cache for a TPOT p99 under 50 ms").
//
// The solver assumes the metric is monotone in the key and bisects: a first grid over the
// range (both ends included), then rounds of points inside the bracket where the target flips,
// until the bracket is as narrow as the resolution asks. It checks the assumption on every point
// it has: where the metric moves against the direction its ends set by more than 0.01% of its
// magnitude (a flat metric's last digits wiggle; preemption makes
// throughput jagged in KV blocks), it says where and falls back to a sweep of the whole range,
// reporting every flip among its points. Each round's points go to an evaluator as one batch, so
// they run in parallel and resume like a sweep's (the CLI runs each round as a sweep).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/units.h"

namespace engramsim::sim {

inline constexpr int kSolveSchemaVersion = 1;

// "METRIC OP BOUND": OP one of < <= > >=; METRIC a sweep point's summary column
// ("overhead_vs_no_engram_pct") or a leaf of its metrics ("tpot_s.p99"), or an alias:
// overhead (vs no Engram), overhead_vs_hbm, throughput / tok/s, ttft_p99, tpot_p99, ...;
// BOUND a number, with "%" for a percentage and a time unit for a time ("50 ms").
struct SolveTarget {
    enum class Op { Less, LessEqual, Greater, GreaterEqual };
    std::string metric;  // canonical: a summary column or a dotted metrics leaf
    Op op = Op::Less;
    double bound = 0;    // in the metric's base unit (%, s, tok/s, ...)
    bool holds(double value) const;
    std::string text() const;  // "overhead_vs_no_engram_pct < 1"
};
// Throws std::invalid_argument naming the nearest known metric for an unknown one.
SolveTarget parse_target(const std::string& text);
// Every metric a target may name, canonical names.
const std::vector<std::string>& solve_metrics();
// The metric's value in a sweep point's record ({"summary", "metrics"}); nothing if absent.
std::optional<double> metric_of(const nlohmann::json& record, const std::string& metric);

// One config key over [lo, hi], in its base unit (rows, bytes, seconds, a plain number).
struct SolveRange {
    std::string key;
    double lo = 0, hi = 0;
    bool integral = false;   // whole values only (integer keys, row counts, bytes)
    bool log_scale = false;  // points spaced geometrically (lo > 0 and hi / lo >= 16)
    // How a value is written into the config: "number" (a JSON number), "percent" ("12.5%"),
    // or "quantity" (with the unit of `dim`: "64 GiB", "25 GB/s", "2 us").
    std::string form = "number";
    units::Dim dim = units::Dim::Count;
    int list_entries = 0;  // > 0: the key holds a list; every entry gets the value
    nlohmann::json config_value(double x) const;
    std::string value_text(double x) const;  // as config_value writes it, for tables
};
// "KEY=LO..HI" against the (resolved) base config, whose declaration gives the key's type and
// unit. Throws config::ConfigError naming the key (unknown, not numeric) or the range (lo >= hi,
// bad numbers).
SolveRange parse_range(const std::string& text, const nlohmann::json& base);
// Is this --vary text a range ("KEY=LO..HI") rather than a list of values?
bool is_range_text(const std::string& text);

struct SolveOptions {
    int grid = 9;              // the first round's points, both ends included (>= 2)
    int per_round = 1;         // points per later round: 1 bisects; k splits the bracket k + 1 ways
    double resolution = 0.01;  // the bracket to reach: hi / lo - 1 (log scale) or a fraction of
                               // the range (linear); whole-valued keys stop at adjacent values
    int fallback_points = 33;  // the sweep of the whole range when the metric is not monotone
    int max_rounds = 64;
};

struct SolvePoint {
    double x = 0, metric = 0;  // metric NaN: refused
    bool holds = false;
};

struct SolveAnswer {
    enum class Kind { Boundary, HoldsEverywhere, FailsEverywhere, NotMonotone };
    Kind kind = Kind::Boundary;
    std::vector<SolvePoint> points;  // every point evaluated, by x
    // Boundary: the two adjacent points the target flips between (the one where it holds, the
    // one where it does not), and the bracket's width reached (relative on a log scale: b/a - 1;
    // else in the key's unit).
    std::optional<SolvePoint> holds_at, fails_at;
    double resolution_reached = 0;
    bool resolution_relative = false;
    // The monotonicity check: the first pair of points that went against the ends' direction.
    bool monotone = true;
    std::optional<std::pair<SolvePoint, SolvePoint>> against;
    // NotMonotone: every adjacent pair of the sweep the target flips between.
    std::vector<std::pair<SolvePoint, SolvePoint>> flips;
    int rounds = 0;
    std::string kind_name() const;  // "boundary", "holds over the whole range", ...
};

// The metric at each x of one round (x in the range's base unit; round 0 is the grid); NaN
// where the point's config is refused (a table larger than the memory it is placed in): there
// the target fails, and refused points must lie at one end of the range.
using SolveEvaluator = std::function<std::vector<double>(const std::vector<double>& xs, int round)>;

SolveAnswer solve_boundary(const SolveRange& range, const SolveTarget& target,
                           const SolveOptions& options, const SolveEvaluator& evaluate);

// The answer as JSON (points, bracket, check), values also as the config writes them.
nlohmann::json to_json(const SolveAnswer& a, const SolveRange& range);

}  // namespace engramsim::sim
