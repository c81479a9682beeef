// The C++ default_rng against NumPy 1.24.2 itself: the shared vectors (raw PCG64 outputs and
// integers() for several seeds and bounds) and tests/golden/data/numpy_extra.json (rejection
// paths, the 32-bit buffer carried across calls, SeedSequence words); see README.md there.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "traces/numpy_rng.h"

using engramsim::numpy::Generator;
using engramsim::numpy::Pcg64;
using engramsim::numpy::SeedSequence;
using engramsim::numpy::seed_words;
using nlohmann::json;

namespace {

json load(const std::string& name) {
    std::ifstream in(std::string(ENGRAMSIM_SOURCE_DIR) + "/tests/golden/data/" + name);
    return json::parse(in);
}

uint64_t u64(const json& s) { return std::stoull(s.get<std::string>()); }

}  // namespace

TEST(NumpyRng, SeedWordsOfDecimalStrings) {
    EXPECT_EQ(seed_words("0"), std::vector<uint32_t>{0});
    EXPECT_EQ(seed_words("4294967301"), (std::vector<uint32_t>{5, 1}));
    EXPECT_EQ(seed_words("18446744073709551619"), (std::vector<uint32_t>{3, 0, 1}));
    EXPECT_EQ(seed_words("123456789"), seed_words(uint64_t(123456789)));
    EXPECT_THROW(seed_words("-1"), std::invalid_argument);
    EXPECT_THROW(seed_words(""), std::invalid_argument);
}

TEST(NumpyRng, SharedVectorsRawOutputs) {
    const json golden = load("numpy_default_rng.json");
    ASSERT_GE(golden["cases"].size(), 5u);
    for (const auto& c : golden["cases"]) {
        SCOPED_TRACE("seed " + c["seed"].get<std::string>());
        Pcg64 bitgen{SeedSequence(seed_words(c["seed"].get<std::string>()))};
        for (const auto& raw : c["raw_uint64"]) EXPECT_EQ(bitgen.next_u64(), u64(raw));
    }
}

TEST(NumpyRng, SharedVectorsIntegers) {
    const json golden = load("numpy_default_rng.json");
    size_t checked = 0;
    for (const auto& c : golden["cases"]) {
        for (const auto& draw : c["integers"]) {
            SCOPED_TRACE("seed " + c["seed"].get<std::string>() + " high " +
                         draw["high"].get<std::string>());
            Generator rng{SeedSequence(seed_words(c["seed"].get<std::string>()))};
            auto values = rng.integers_int64(0, int64_t(u64(draw["high"])), draw["values"].size());
            for (size_t i = 0; i < values.size(); ++i) {
                EXPECT_EQ(uint64_t(values[i]), u64(draw["values"][i]));
                ++checked;
            }
        }
    }
    EXPECT_GE(checked, 300u);
}

TEST(NumpyRng, ExtraVectorsSeedSequenceWords) {
    const json golden = load("numpy_extra.json");
    for (const auto& c : golden["cases"]) {
        SCOPED_TRACE("seed " + c["seed"].get<std::string>());
        SeedSequence seq(seed_words(c["seed"].get<std::string>()));
        for (size_t i = 0; i < 4; ++i) EXPECT_EQ(seq.pool()[i], c["pool"][i].get<uint32_t>());
        auto state = seq.generate_state_u32(8);
        for (size_t i = 0; i < 8; ++i) EXPECT_EQ(state[i], c["state_u32"][i].get<uint32_t>());
    }
}

TEST(NumpyRng, ExtraVectorsRejectionAndBufferedSequences) {
    const json golden = load("numpy_extra.json");
    ASSERT_GE(golden["cases"].size(), 7u);
    for (const auto& c : golden["cases"]) {
        Generator rng{SeedSequence(seed_words(c["seed"].get<std::string>()))};
        for (const auto& draw : c["sequence"]) {
            SCOPED_TRACE("seed " + c["seed"].get<std::string>() + " high " +
                         draw["high"].get<std::string>());
            auto values = rng.integers_int64(0, int64_t(u64(draw["high"])), draw["values"].size());
            for (size_t i = 0; i < values.size(); ++i)
                EXPECT_EQ(uint64_t(values[i]), u64(draw["values"][i]));
        }
    }
}

TEST(NumpyRng, RejectsEmptyRange) {
    Generator rng(0);
    EXPECT_THROW(rng.integers_int64(5, 5, 1), std::invalid_argument);
}
