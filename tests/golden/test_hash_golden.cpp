// Row ids bit-exact with the reference demo: the shared golden files (an independent NumPy
// implementation of engram_demo_v1.py's NgramHashMapping) reproduced exactly, multipliers,
// primes, canonical ids and every row id, through the library and through `engramsim trace hash
// --json`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <memory>

#include "model/config.h"
#include "model/engram_config.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

using namespace engramsim;
using nlohmann::json;

namespace {

std::string golden_path(const std::string& name) {
    return std::string(ENGRAMSIM_SOURCE_DIR) + "/tests/golden/data/" + name;
}

json load(const std::string& name) {
    std::ifstream in(golden_path(name));
    return json::parse(in);
}

// The golden config must be the demo-v1 preset: same sizes, orders, heads, layers, pad, seed.
EngramConfig demo_config(const json& golden_config) {
    EngramConfig cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    EXPECT_EQ(json(cfg.engram_vocab_size), golden_config["engram_vocab_size"]);
    EXPECT_EQ(cfg.max_ngram_size, golden_config["max_ngram_size"].get<int>());
    EXPECT_EQ(cfg.n_head_per_ngram, golden_config["n_head_per_ngram"].get<int>());
    EXPECT_EQ(json(cfg.layer_ids), golden_config["layer_ids"]);
    EXPECT_EQ(cfg.pad_id, golden_config["pad_id"].get<uint32_t>());
    EXPECT_EQ(cfg.seed, golden_config["seed"].get<uint64_t>());
    return cfg;
}

class HashGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(HashGolden, LibraryReproducesEveryRowId) {
    const json golden = load(GetParam());
    const EngramConfig cfg = demo_config(golden["config"]);
    const CompressMap map = CompressMap::load(cfg.compress_map);
    EXPECT_EQ(map.canonical_vocab_size(), golden["compressed_vocab_size"].get<uint32_t>());
    EXPECT_EQ(map(cfg.pad_id), golden["compressed_pad_id"].get<uint32_t>());

    const auto raw = golden["config"]["token_ids"].get<std::vector<uint32_t>>();
    const auto ids = map.compress(raw);
    EXPECT_EQ(ids, golden["compressed_ids"].get<std::vector<uint32_t>>());

    const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
    ASSERT_EQ(hasher.layers().size(), golden["layers"].size());
    size_t compared = 0;
    for (size_t l = 0; l < hasher.layers().size(); ++l) {
        const auto& p = hasher.layers()[l];
        const json& g = golden["layers"][std::to_string(p.layer_id)];
        EXPECT_EQ(json(p.multipliers), g["multipliers"]);
        EXPECT_EQ(json(p.primes), g["primes"]);

        std::vector<uint32_t> fast(ids.size() * size_t(hasher.heads_per_layer()));
        std::vector<uint32_t> plain(fast.size());
        hasher.hash_layer(l, ids, fast);
        hasher.hash_layer_plain(l, ids, plain);
        EXPECT_EQ(fast, plain);
        const auto& rows = g["row_ids"];
        ASSERT_EQ(rows.size(), ids.size());
        for (size_t t = 0; t < ids.size(); ++t) {
            ASSERT_EQ(rows[t].size(), size_t(hasher.heads_per_layer()));
            for (size_t h = 0; h < rows[t].size(); ++h, ++compared)
                ASSERT_EQ(fast[t * rows[t].size() + h], rows[t][h].get<uint32_t>())
                    << "layer " << p.layer_id << " token " << t << " head " << h;
        }
    }
    EXPECT_EQ(compared, ids.size() * 32);
}

TEST_P(HashGolden, CommandLineJsonMatchesGolden) {
    const json golden = load(GetParam());
    // Write the golden token ids as a JSON token file and hash it with the CLI.
    // One file per parameter: CTest runs the parameters in parallel processes.
    const std::string tokens = ::testing::TempDir() + "golden_tokens_" + GetParam();
    std::ofstream(tokens) << golden["config"]["token_ids"].dump();
    const std::string cmd = std::string(ENGRAMSIM_BINARY) +
                            " trace hash --engram demo-v1 --json --tokens " + tokens;
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    ASSERT_TRUE(pipe);
    std::string out;
    char buf[65536];
    while (size_t n = fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
    const json got = json::parse(out);
    EXPECT_EQ(got["compressed_vocab_size"], golden["compressed_vocab_size"]);
    EXPECT_EQ(got["compressed_pad_id"], golden["compressed_pad_id"]);
    EXPECT_EQ(got["compressed_ids"], golden["compressed_ids"]);
    EXPECT_EQ(got["layers"], golden["layers"]);
    EXPECT_EQ(got["config"]["token_ids"], golden["config"]["token_ids"]);
}

INSTANTIATE_TEST_SUITE_P(Files, HashGolden,
                         ::testing::Values("demo_v1_sentence.json",
                                           "demo_v1_handbook_en_512.json"),
                         [](const auto& info) {
                             return info.param.find("sentence") != std::string::npos ? "sentence"
                                                                                     : "handbook";
                         });

// Hashing a sequence in pieces, each continuing after the previous piece's last N-1 ids, gives
// the same row ids as hashing it whole (what a decode step does with one new token).
TEST(HashStreaming, ChunksWithHistoryEqualWholeSequence) {
    const EngramConfig cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const CompressMap map = CompressMap::load(cfg.compress_map);
    auto raw = read_tokens("bundled:handbook-en-US");
    raw.resize(3000);
    const auto ids = map.compress(raw);
    const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
    const size_t heads = size_t(hasher.heads_per_layer());
    std::vector<uint32_t> whole(ids.size() * heads);
    hasher.hash_layer(1, ids, whole);

    std::vector<uint32_t> pieces;
    const size_t sizes[] = {1, 2, 5, 1, 997, 3, 1991};
    size_t begin = 0;
    for (size_t len : sizes) {
        std::span<const uint32_t> chunk(ids.data() + begin, len);
        std::span<const uint32_t> history(ids.data() + (begin >= 2 ? begin - 2 : 0),
                                          std::min<size_t>(begin, 2));
        std::vector<uint32_t> out(len * heads);
        hasher.hash_layer(1, chunk, out, history);
        pieces.insert(pieces.end(), out.begin(), out.end());
        begin += len;
    }
    ASSERT_EQ(begin, ids.size());
    EXPECT_EQ(pieces, whole);
}

}  // namespace
