// engramsim solve's solver (sim/sweep/solve.h) against closed forms: synthetic metrics whose
// boundary is known exactly, a jagged one whose flips a brute-force scan counts, and the parsing
// of targets and ranges with their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "model/config.h"
#include "sim/sweep/solve.h"

using namespace engramsim;
using sim::SolveAnswer;
using sim::SolveOptions;
using sim::SolveRange;
using sim::SolveTarget;

namespace {

SolveRange range(double lo, double hi, bool integral, bool log_scale) {
    SolveRange r;
    r.key = "x", r.lo = lo, r.hi = hi, r.integral = integral, r.log_scale = log_scale;
    return r;
}

// Evaluates f at each x, counting the calls and the rounds.
struct Counted {
    std::function<double(double)> f;
    int calls = 0;
    std::vector<size_t> round_sizes;
    sim::SolveEvaluator evaluator() {
        return [this](const std::vector<double>& xs, int round) {
            EXPECT_EQ(size_t(round), round_sizes.size());
            round_sizes.push_back(xs.size());
            std::vector<double> out;
            for (double x : xs) out.push_back(f(x)), ++calls;
            return out;
        };
    }
};

nlohmann::json base_config() {
    return config::resolve(
        {{"backbone", "dense-4b"}, {"engram", "demo-v1"}, {"hardware", "h800-pcie5"},
         {"workload", "nano-vllm-512"},
         {"sim", {{"table", "host-dram"}, {"mechanism", "cpu-gather"}}}},
        "test");
}

}  // namespace

// x^2 / 1e6 < 4 holds below x = 2000 exactly: on whole values the bracket is 1999 / 2000.
TEST(Solve, BisectsAMonotoneMetricToAdjacentWholeValues) {
    Counted c{[](double x) { return x * x / 1e6; }};
    const SolveTarget t{"m", SolveTarget::Op::Less, 4.0};
    SolveOptions o;
    o.resolution = 0;
    const SolveAnswer a = sim::solve_boundary(range(1, 100000, true, true), t, o, c.evaluator());
    ASSERT_EQ(a.kind, SolveAnswer::Kind::Boundary);
    EXPECT_TRUE(a.monotone);
    EXPECT_EQ(a.holds_at->x, 1999);
    EXPECT_EQ(a.fails_at->x, 2000);
    EXPECT_EQ(a.fails_at->metric, 4.0);
    // Bisection: the grid, then one point a round, about log2 of the bracket the grid left.
    EXPECT_EQ(c.round_sizes.front(), 9u);
    for (size_t i = 1; i < c.round_sizes.size(); ++i) EXPECT_EQ(c.round_sizes[i], 1u);
    EXPECT_LE(c.calls, 9 + 20);
}

// A decreasing metric with a lower bound: the target holds above the boundary. A continuous key
// stops at the stated resolution, and the true boundary lies inside the bracket.
TEST(Solve, StopsAtTheResolutionWithTheBoundaryInsideTheBracket) {
    const double boundary = 37.25;  // 100 / x >= 100 / 37.25
    Counted c{[](double x) { return 100 / x; }};
    const SolveTarget t{"m", SolveTarget::Op::GreaterEqual, 100 / boundary};
    for (const bool log_scale : {false, true}) {
        SolveOptions o;
        o.resolution = 0.001;
        const SolveAnswer a = sim::solve_boundary(range(1, 1000, false, log_scale), t, o, c.evaluator());
        ASSERT_EQ(a.kind, SolveAnswer::Kind::Boundary);
        EXPECT_LT(a.holds_at->x, a.fails_at->x);  // holds below
        EXPECT_LE(a.holds_at->x, boundary);
        EXPECT_GT(a.fails_at->x, boundary);
        const double width = log_scale ? a.fails_at->x / a.holds_at->x - 1 : a.fails_at->x - a.holds_at->x;
        EXPECT_LE(width, log_scale ? 0.001 : 0.001 * 999);
        EXPECT_EQ(a.resolution_reached, width);
        EXPECT_EQ(a.resolution_relative, log_scale);
        c.round_sizes.clear();
    }
}

// j points a round split the bracket j + 1 ways: fewer rounds, the same bracket.
TEST(Solve, SeveralPointsARoundReachTheSameBracketInFewerRounds) {
    auto f = [](double x) { return std::sqrt(x); };
    const SolveTarget t{"m", SolveTarget::Op::Less, 100.5};  // x < 10100.25
    SolveOptions one, four;
    one.resolution = four.resolution = 0;
    four.per_round = 4;
    Counted a{f}, b{f};
    const SolveAnswer ra = sim::solve_boundary(range(0, 1e6, true, false), t, one, a.evaluator());
    const SolveAnswer rb = sim::solve_boundary(range(0, 1e6, true, false), t, four, b.evaluator());
    EXPECT_EQ(ra.holds_at->x, 10100);
    EXPECT_EQ(ra.fails_at->x, 10101);
    EXPECT_EQ(rb.holds_at->x, 10100);
    EXPECT_EQ(rb.fails_at->x, 10101);
    EXPECT_LT(b.round_sizes.size(), a.round_sizes.size());
}

TEST(Solve, SaysWhenTheTargetHoldsOrFailsOverTheWholeRange) {
    Counted c{[](double x) { return x; }};
    const SolveOptions o;
    EXPECT_EQ(sim::solve_boundary(range(1, 10, false, false), {"m", SolveTarget::Op::Less, 11}, o,
                                  c.evaluator()).kind,
              SolveAnswer::Kind::HoldsEverywhere);
    c.round_sizes.clear();
    const SolveAnswer fails =
        sim::solve_boundary(range(1, 10, false, false), {"m", SolveTarget::Op::Greater, 10}, o, c.evaluator());
    EXPECT_EQ(fails.kind, SolveAnswer::Kind::FailsEverywhere);
    EXPECT_EQ(fails.rounds, 1);  // the grid alone
    EXPECT_FALSE(fails.holds_at.has_value());
}

// A sawtooth (as throughput is in KV blocks when preemption sets in): the check finds the pair
// against the ends' direction, and the sweep reports exactly the flips a brute-force scan of its
// points finds.
TEST(Solve, FallsBackToASweepWhereTheMetricIsNotMonotoneAndReportsEveryFlip) {
    auto saw = [](double x) { return x / 100 + 3 * std::fmod(x, 17.0) / 17; };
    Counted c{saw};
    const SolveTarget t{"m", SolveTarget::Op::Less, 4.0};
    SolveOptions o;
    o.grid = 9, o.fallback_points = 41;
    const SolveAnswer a = sim::solve_boundary(range(0, 400, true, false), t, o, c.evaluator());
    ASSERT_EQ(a.kind, SolveAnswer::Kind::NotMonotone);
    EXPECT_FALSE(a.monotone);
    ASSERT_TRUE(a.against.has_value());
    EXPECT_LT(a.against->second.metric, a.against->first.metric);  // the ends rise; this pair falls
    // Brute force over the same points.
    std::set<double> xs;
    for (const auto& p : a.points) xs.insert(p.x);
    EXPECT_GE(xs.size(), 41u);
    std::vector<std::pair<double, double>> flips;
    double prev = -1;
    for (double x : xs) {
        if (prev >= 0 && (saw(prev) < 4.0) != (saw(x) < 4.0)) flips.push_back({prev, x});
        prev = x;
    }
    ASSERT_EQ(a.flips.size(), flips.size());
    EXPECT_GT(flips.size(), 1u);
    for (size_t i = 0; i < flips.size(); ++i) {
        EXPECT_EQ(a.flips[i].first.x, flips[i].first);
        EXPECT_EQ(a.flips[i].second.x, flips[i].second);
    }
}

// A limit (the table outgrows the memory it is placed in: the config is refused) counts as the
// target failing: the answer is the last value that fits.
TEST(Solve, ARefusedConfigFailsTheTargetAndMayOnlyLieAtAnEnd) {
    Counted fits{[](double x) { return x <= 700 ? x / 1000 : std::nan(""); }};
    SolveOptions o;
    o.resolution = 0;
    const SolveTarget t{"m", SolveTarget::Op::Less, 5.0};  // holds wherever the config is served
    const SolveAnswer a = sim::solve_boundary(range(1, 4096, true, true), t, o, fits.evaluator());
    ASSERT_EQ(a.kind, SolveAnswer::Kind::Boundary);
    EXPECT_EQ(a.holds_at->x, 700);
    EXPECT_EQ(a.fails_at->x, 701);
    EXPECT_TRUE(std::isnan(a.fails_at->metric));
    // Refused points in the middle of the range: not one flip, so a sweep.
    Counted holes{[](double x) { return x > 100 && x < 200 ? std::nan("") : x; }};
    o.fallback_points = 11;
    const SolveAnswer b = sim::solve_boundary(range(0, 1000, true, false), {"m", SolveTarget::Op::Less, 2000}, o,
                                              holes.evaluator());
    EXPECT_EQ(b.kind, SolveAnswer::Kind::NotMonotone);
    EXPECT_FALSE(b.against.has_value());
    EXPECT_EQ(b.flips.size(), 2u);  // holds, refused, holds
}

// A flat metric whose last digits wiggle (0.677% overhead moving by 1e-7 as a table grows) is
// monotone for the check; a jump of 0.1% is not.
TEST(Solve, WigglesBelowATenThousandthOfTheMetricAreFlat) {
    Counted flat{[](double x) { return x <= 5000 ? 0.677 + 1e-7 * std::sin(x) : std::nan(""); }};
    SolveOptions o;
    o.resolution = 0;
    const SolveTarget t{"m", SolveTarget::Op::Less, 1.0};
    const SolveAnswer a = sim::solve_boundary(range(1, 1e6, true, true), t, o, flat.evaluator());
    ASSERT_EQ(a.kind, SolveAnswer::Kind::Boundary);
    EXPECT_TRUE(a.monotone);
    EXPECT_EQ(a.holds_at->x, 5000);
    EXPECT_EQ(a.fails_at->x, 5001);
    Counted jump{[](double x) { return x > 300 && x < 400 ? 0.677 * 0.999 : 0.677 + x * 1e-9; }};
    const SolveAnswer b = sim::solve_boundary(range(0, 1000, true, false), t, o, jump.evaluator());
    EXPECT_FALSE(b.monotone);
}

TEST(Solve, ParsesTargetsWithAliasesAndUnits) {
    const SolveTarget a = sim::parse_target("overhead < 1%");
    EXPECT_EQ(a.metric, "overhead_vs_no_engram_pct");
    EXPECT_EQ(a.op, SolveTarget::Op::Less);
    EXPECT_EQ(a.bound, 1.0);
    const SolveTarget b = sim::parse_target("tpot_p99<=50 ms");
    EXPECT_EQ(b.metric, "tpot_s.p99");
    EXPECT_EQ(b.op, SolveTarget::Op::LessEqual);
    EXPECT_DOUBLE_EQ(b.bound, 0.05);
    const SolveTarget c = sim::parse_target("throughput_tok_per_s >= 2.5K");
    EXPECT_EQ(c.op, SolveTarget::Op::GreaterEqual);
    EXPECT_EQ(c.bound, 2500.0);
    EXPECT_TRUE(c.holds(2500) && !c.holds(2499.9));
    // The metric read from a sweep point's record, summary first, then the metrics' leaves.
    const nlohmann::json rec = {{"summary", {{"overhead_vs_no_engram_pct", 0.5}}},
                                {"metrics", {{"tpot_s", {{"p99", 0.04}}}}}};
    EXPECT_EQ(sim::metric_of(rec, a.metric), 0.5);
    EXPECT_EQ(sim::metric_of(rec, b.metric), 0.04);
    EXPECT_FALSE(sim::metric_of(rec, "stall_s").has_value());
}

TEST(Solve, RefusesAnUnknownMetricNamingTheNearest) {
    try {
        sim::parse_target("overhead_vs_no_engram < 1");  // an alias: fine
        sim::parse_target("overhed_vs_no_engram_pct < 1");
        FAIL() << "accepted an unknown metric";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("did you mean overhead_vs_no_engram_pct"), std::string::npos) << e.what();
    }
    EXPECT_THROW(sim::parse_target("overhead = 1"), std::invalid_argument);
    EXPECT_THROW(sim::parse_target("tpot_p99 < 5 parsecs"), std::invalid_argument);
}

TEST(Solve, ParsesRangesByTheKeysDeclaredType) {
    const nlohmann::json base = base_config();
    const SolveRange rows = sim::parse_range("engram.engram_vocab_size=1M..1B", base);
    EXPECT_EQ(rows.lo, 1e6);
    EXPECT_EQ(rows.hi, 1e9);
    EXPECT_TRUE(rows.integral);
    EXPECT_TRUE(rows.log_scale);
    EXPECT_EQ(rows.list_entries, 2);  // every N-gram order's table
    EXPECT_EQ(rows.config_value(2500000.4), nlohmann::json({2500000, 2500000}));
    // The value goes into a config that resolves.
    EXPECT_NO_THROW(config::resolve(nlohmann::json{{"engram", {{"base", "demo-v1"}, {"engram_vocab_size", rows.config_value(3e6)}}}}, "t"));

    const SolveRange bytes = sim::parse_range("placement.dram_capacity=1GiB..64GiB", base);
    EXPECT_EQ(bytes.form, "quantity");
    EXPECT_EQ(bytes.dim, units::Dim::Bytes);
    EXPECT_EQ(bytes.lo, 1073741824.0);
    EXPECT_EQ(bytes.config_value(2147483648.0), "2 GiB");
    const SolveRange pct = sim::parse_range("placement.hbm_capacity=0%..50%", base);
    EXPECT_EQ(pct.form, "percent");
    EXPECT_FALSE(pct.log_scale);
    EXPECT_EQ(pct.config_value(12.5), "12.5%");
    const SolveRange threads = sim::parse_range("sim.gather_threads=1..8", base);
    EXPECT_TRUE(threads.integral);
    EXPECT_EQ(threads.config_value(3), 3);
    EXPECT_TRUE(sim::is_range_text("a.b=1..2"));
    EXPECT_FALSE(sim::is_range_text("a.b=1,2"));
}

TEST(Solve, RefusesRangesItCannotSolveNamingTheKey) {
    const nlohmann::json base = base_config();
    auto error_of = [&](const std::string& text) -> std::string {
        try {
            sim::parse_range(text, base);
        } catch (const config::ConfigError& e) {
            return e.what();
        }
        return "(no error)";
    };
    EXPECT_NE(error_of("sim.gather_thread=1..8").find("did you mean sim.gather_threads"), std::string::npos)
        << error_of("sim.gather_thread=1..8");
    EXPECT_NE(error_of("sim.schedule=1..8").find("list"), std::string::npos) << error_of("sim.schedule=1..8");
    EXPECT_NE(error_of("sim.gather_threads=8..1").find("lower to a higher"), std::string::npos);
    EXPECT_NE(error_of("placement.dram_capacity=1 parsec..2GiB").find("placement.dram_capacity"), std::string::npos);
}
