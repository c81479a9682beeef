// Capacities and quantities at the limits of 64 bits: the capacity parser (model/capacity.h, used
// by configs and the replay alike), the plausible ranges every quantity is resolved against
// (model/config.h), and row arithmetic for tables of 1e12 rows and more. Expected values are
// closed forms (powers of two, exact quotients), never the code's own output.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>

#include "model/capacity.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "sim/placement/replay.h"
#include "traces/lookups.h"

namespace {

using engramsim::capacity::Kind;
namespace capacity = engramsim::capacity;
namespace config = engramsim::config;

// The message of the std::invalid_argument `f` throws ("" if it throws none).
template <typename F>
std::string refusal(F f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(Capacity, RowCountsAreExactToTheLastSixtyFourBitValue) {
    const capacity::Capacity max = capacity::parse("18446744073709551615");
    EXPECT_EQ(max.kind, Kind::Rows);
    EXPECT_EQ(max.rows, UINT64_MAX);
    EXPECT_EQ(capacity::parse(" 9007199254740993 ").rows, (uint64_t(1) << 53) + 1);  // not a double
    EXPECT_NE(refusal([] {
                  capacity::parse("18446744073709551616");
              }).find("more rows than 64 bits count"),
              std::string::npos);
    EXPECT_NE(refusal([] { capacity::parse("1e30 rows"); }).find("more rows than 64 bits"),
              std::string::npos);
    EXPECT_NE(refusal([] { capacity::parse("2.5 rows"); }).find("not a whole number of rows"),
              std::string::npos);
}

TEST(Capacity, ByteSizesMustFitSixtyFourBits) {
    // 2^64 B = 16384 PiB does not fit; one PiB less does.
    EXPECT_NE(refusal([] { capacity::parse("16384 PiB"); }).find("does not fit 64-bit bytes"),
              std::string::npos);
    EXPECT_EQ(capacity::parse("16383 PiB").bytes, 16383.0 * double(uint64_t(1) << 50));
    EXPECT_NE(refusal([] { capacity::parse("1e17GiB"); }).find("does not fit 64-bit bytes"),
              std::string::npos);
    // Rows of 0.5 B: 2^63 B would be 2^64 rows.
    const auto c = capacity::parse("8192 PiB");
    EXPECT_NE(refusal([&] { capacity::rows(c, 0.5, 1, "8192 PiB"); }).find("more rows than 64"),
              std::string::npos);
}

TEST(Capacity, NegativeEmptyAndNonFiniteTextsNameTheProblem) {
    EXPECT_NE(refusal([] { capacity::parse("-5"); }).find("must not be negative"),
              std::string::npos);
    EXPECT_NE(refusal([] { capacity::parse("-1%"); }).find("must not be negative"),
              std::string::npos);
    EXPECT_NE(refusal([] { capacity::parse("  "); }).find("it is empty"), std::string::npos);
    EXPECT_NE(refusal([] { capacity::parse("101%"); }).find("more than 100%"), std::string::npos);
    for (const char* t : {"nan%", "inf rows", "nan", "1e400 B", "10 GiBs"})
        EXPECT_FALSE(refusal([t] { capacity::parse(t); }).empty()) << t;
    // Byte sizes need a real row size.
    const auto c = capacity::parse("1 GiB");
    for (double rb : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()})
        EXPECT_FALSE(refusal([&] { capacity::rows(c, rb, 10, "1 GiB"); }).empty()) << rb;
}

// A table past 1e12 rows: 64 heads x 2 orders x 8 layers of about 2e9 rows each.
TEST(Capacity, TablesOfATrillionRowsAndMoreCountExactly) {
    engramsim::EngramConfig e;
    e.max_ngram_size = 3;
    e.n_head_per_ngram = 64;
    e.n_embed_per_ngram = 64 * 8;
    e.engram_vocab_size = {2'000'000'000, 2'000'000'000};
    e.layer_ids = {1, 3, 5, 7, 9, 11, 13, 15};
    const engramsim::LookupLayout layout = engramsim::lookup_layout(e);
    const uint64_t tables = 64 * 2 * 8;
    // Every table is a distinct prime above its base size, within the prime gaps there.
    EXPECT_GT(layout.total_rows, tables * 2'000'000'000ull);
    EXPECT_LT(layout.total_rows, tables * 2'000'100'000ull);
    EXPECT_EQ(layout.total_rows,
              std::accumulate(layout.layer_rows.begin(), layout.layer_rows.end(), uint64_t(0)));
    const uint64_t n = layout.total_rows;
    using engramsim::placement::parse_capacity_rows;
    EXPECT_EQ(parse_capacity_rows("all", 160, n), n);
    EXPECT_EQ(parse_capacity_rows("100%", 160, n), n);
    EXPECT_EQ(parse_capacity_rows("50%", 160, uint64_t(1) << 62), uint64_t(1) << 61);
    // 1 PiB of 160-byte rows: floor(2^50 / 160) = 7036874417766.
    EXPECT_EQ(parse_capacity_rows("1 PiB", 160, n), 7036874417766ull);
    EXPECT_EQ(parse_capacity_rows("18446744073709551615", 160, n), UINT64_MAX);
}

TEST(QuantityRanges, EveryDimensionRefusesImplausibleValuesWithTheKeysPath) {
    auto problem = [](const nlohmann::json& doc) {
        try {
            config::resolve(doc, "t.json");
        } catch (const config::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const nlohmann::json base = {{"base", "h800-pcie5"}};
    auto with = [&](const std::string& sec, const std::string& key, const nlohmann::json& v) {
        nlohmann::json h = base;
        h[sec][key] = v;
        return nlohmann::json{{"hardware", h}};
    };
    // Latencies: [0 s, 1 s].
    EXPECT_EQ(problem(with("host_link", "latency", "1 s")), "");
    EXPECT_EQ(problem(with("host_link", "latency", "0 s")), "");
    EXPECT_NE(
        problem(with("host_link", "latency", "1.000001 s")).find("hardware.host_link.latency"),
        std::string::npos);
    EXPECT_NE(problem(with("host_link", "latency", "1e30 s")).find("out of range"),
              std::string::npos);
    // Bandwidths: (0, 1 PB/s].
    EXPECT_NE(problem(with("gpu", "hbm_bandwidth", "0 TB/s")).find("hardware.gpu.hbm_bandwidth"),
              std::string::npos);
    EXPECT_EQ(problem(with("gpu", "hbm_bandwidth", "1000 TB/s")), "");
    EXPECT_NE(problem(with("gpu", "hbm_bandwidth", "1001 TB/s")).find("out of range"),
              std::string::npos);
    // Bytes: below 2^64.
    EXPECT_NE(problem(with("gpu", "hbm_capacity", "16384 PiB")).find("2^64 B"), std::string::npos);
    EXPECT_NE(problem(with("gpu", "hbm_capacity", "0 B")).find("hardware.gpu.hbm_capacity"),
              std::string::npos);
    // Counts: shares in (0, 1], rates above 0, no infinities.
    EXPECT_NE(
        problem({{"sim", {{"gpu_memory_utilization", 1.5}}}}).find("sim.gpu_memory_utilization"),
        std::string::npos);
    EXPECT_NE(problem({{"sim", {{"gpu_memory_utilization", 0}}}}).find("out of range"),
              std::string::npos);
    EXPECT_NE(problem({{"sim", {{"hash_rate_per_thread", "0"}}}}).find("sim.hash_rate_per_thread"),
              std::string::npos);
    EXPECT_EQ(problem({{"sim", {{"dedup_rate_per_thread", 0}}}}), "");  // 0: not modeled
    EXPECT_NE(problem({{"engram", {{"base", "demo-v1"}, {"engram_vocab_size", {1e30, 1e30}}}}})
                  .find("engram.engram_vocab_size[0]: 1e+30 is out of range"),
              std::string::npos);
    // Every shipped preset resolves inside the ranges.
    for (const char* p :
         {"h800-pcie5", "h100-sxm", "h200", "gh200", "b200", "demo-v1", "engram-27b", "engram-40b",
          "paper-offload-100b", "dense-4b", "dense-8b", "moe-27b", "nano-vllm-512", "handbook-en"})
        EXPECT_NO_THROW(config::load(p)) << p;
}
