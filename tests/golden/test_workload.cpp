// Workloads: nano-vLLM's bench.py reproduced draw for draw (against CPython's own random), and
// corpus windows whose outputs are the real continuation.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <numeric>

#include "model/config.h"
#include "traces/tokens.h"
#include "traces/workload.h"

using namespace engramsim;
using nlohmann::json;

TEST(Workload, NanoVllmBenchIsReproducedExactly) {
    std::ifstream in(std::string(ENGRAMSIM_SOURCE_DIR) +
                     "/tests/golden/data/nanovllm_bench_seed0.json");
    const json golden = json::parse(in);
    const Workload w = make_workload(config::load("nano-vllm-512")["workload"]);
    ASSERT_EQ(w.requests.size(), 512u);
    uint64_t id_sum = 0;
    for (size_t i = 0; i < w.requests.size(); ++i) {
        EXPECT_EQ(w.requests[i].prompt.size(), golden["prompt_lens"][i].get<size_t>()) << i;
        EXPECT_EQ(w.requests[i].output.size(), golden["max_tokens"][i].get<size_t>()) << i;
        id_sum = std::accumulate(w.requests[i].prompt.begin(), w.requests[i].prompt.end(), id_sum);
    }
    EXPECT_EQ(json(w.requests[0].prompt), golden["first_prompts"][0]);
    EXPECT_EQ(json(w.requests[1].prompt), golden["first_prompts"][1]);
    EXPECT_EQ(json(w.requests.back().prompt), golden["last_prompt"]);
    EXPECT_EQ(id_sum, golden["sum_of_all_prompt_ids"].get<uint64_t>());
    for (const auto& r : w.requests)
        for (uint32_t t : r.output) ASSERT_LE(t, 10000u);
}

TEST(Workload, CorpusWindowsContinueTheRealText) {
    json spec = config::resolve(
        {{"workload", {{"kind", "corpus"}, {"num_requests", 5},
                       {"prompt_len", {{"dist", "fixed"}, {"value", 64}}},
                       {"output_len", {{"dist", "uniform"}, {"min", 10}, {"max", 40}}}}}},
        "t")["workload"];
    const Workload w = make_workload(spec);
    const auto ids = read_tokens("bundled:handbook-en-US");
    ASSERT_EQ(w.requests.size(), 5u);
    for (const auto& r : w.requests) {
        ASSERT_EQ(r.prompt.size(), 64u);
        ASSERT_GE(r.output.size(), 10u);
        ASSERT_LE(r.output.size(), 40u);
        EXPECT_EQ(r.prompt[0], 0u);  // starts at a document start (BOS)
        // prompt + output is one contiguous window of the file
        std::vector<uint32_t> window(r.prompt);
        window.insert(window.end(), r.output.begin(), r.output.end());
        EXPECT_NE(std::search(ids.begin(), ids.end(), window.begin(), window.end()), ids.end());
    }
    // Same spec, same requests.
    const Workload again = make_workload(spec);
    for (size_t i = 0; i < w.requests.size(); ++i)
        EXPECT_EQ(w.requests[i].output, again.requests[i].output);
}

TEST(Workload, LengthsFromAFile) {
    const std::string path = ::testing::TempDir() + "lens.txt";
    std::ofstream(path) << "5 7\n9\n";
    json spec = config::resolve(
        {{"workload", {{"kind", "corpus"}, {"num_requests", 4},
                       {"prompt_len", {{"dist", "file"}, {"file", path}}},
                       {"output_len", {{"dist", "fixed"}, {"value", 3}}}}}},
        "t")["workload"];
    const Workload w = make_workload(spec);
    EXPECT_EQ(w.requests[0].prompt.size(), 5u);
    EXPECT_EQ(w.requests[1].prompt.size(), 7u);
    EXPECT_EQ(w.requests[2].prompt.size(), 9u);
    EXPECT_EQ(w.requests[3].prompt.size(), 5u);  // cycled
    std::ofstream(path) << "5 x\n";
    EXPECT_THROW(make_workload(spec), config::ConfigError);
}

TEST(Workload, JsonLinesDocumentsAreTheWindowStarts) {
    // Three documents, one per line; requests start at each line's first id in turn (wrapping).
    const std::string path = ::testing::TempDir() + "docs.jsonl";
    std::ofstream(path) << "[10, 11, 12, 13, 14, 15]\n[20, 21, 22, 23, 24, 25]\n[30, 31, 32, 33]\n";
    json spec = config::resolve({{"workload",
                                  {{"kind", "corpus"},
                                   {"tokens", path},
                                   {"num_requests", 4},
                                   {"prompt_len", {{"dist", "fixed"}, {"value", 2}}},
                                   {"output_len", {{"dist", "fixed"}, {"value", 3}}}}}},
                                "t")["workload"];
    const Workload w = make_workload(spec);
    ASSERT_EQ(w.requests.size(), 4u);
    EXPECT_EQ(w.requests[0].prompt, (std::vector<uint32_t>{10, 11}));
    EXPECT_EQ(w.requests[0].output, (std::vector<uint32_t>{12, 13, 14}));
    EXPECT_EQ(w.requests[1].prompt, (std::vector<uint32_t>{20, 21}));
    // The last document is short: its window is shifted back to end at the file's end, as for
    // flat files.
    EXPECT_EQ(w.requests[2].prompt, (std::vector<uint32_t>{25, 30}));
    EXPECT_EQ(w.requests[3].prompt, (std::vector<uint32_t>{10, 11}));
}
