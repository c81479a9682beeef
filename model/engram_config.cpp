#include "model/engram_config.h"

#include <set>

#include "model/config.h"

namespace engramsim {

EngramConfig EngramConfig::from_json(const nlohmann::json& s) {
    auto fail = [](const std::string& key, const std::string& what) {
        throw config::ConfigError("engram." + key + ": " + what);
    };
    EngramConfig c;
    c.name = s.at("name").get<std::string>();
    c.max_ngram_size = s.at("max_ngram_size").get<int>();
    c.n_embed_per_ngram = s.at("n_embed_per_ngram").get<int>();
    c.n_head_per_ngram = s.at("n_head_per_ngram").get<int>();
    c.pad_id = s.at("pad_id").get<uint32_t>();
    c.seed = s.at("seed").get<uint64_t>();
    c.kernel_size = s.at("kernel_size").get<int>();
    c.hc_mult = s.at("hc_mult").get<int>();
    c.compress_map = s.at("compress_map").get<std::string>();
    c.signed_sqrt_gate = s.at("gate").get<std::string>() == "signed-sqrt";
    c.short_conv = s.at("short_conv").get<bool>();
    const std::string dtype = s.at("dtype").get<std::string>();
    c.dtype = dtype == "fp32"   ? TableDtype::Fp32
              : dtype == "fp16" ? TableDtype::Fp16
              : dtype == "bf16" ? TableDtype::Bf16
                                : TableDtype::Fp8E4M3;

    const auto& sizes = s.at("engram_vocab_size");
    if (sizes.size() != size_t(c.orders()))
        fail("engram_vocab_size", "has " + std::to_string(sizes.size()) +
                                      " entries; max_ngram_size " +
                                      std::to_string(c.max_ngram_size) + " needs one per order 2.." +
                                      std::to_string(c.max_ngram_size) + " (" +
                                      std::to_string(c.orders()) + ")");
    for (size_t i = 0; i < sizes.size(); ++i) {
        if (!sizes[i].is_number_integer())
            fail("engram_vocab_size[" + std::to_string(i) + "]", "must be a whole number of rows");
        uint64_t rows = sizes[i].get<uint64_t>();
        // Row ids are stored as uint32 (a 1T-parameter table with 80-value rows and 16 heads
        // needs 7.8e8 rows per head); the next primes must stay below 2^32 too.
        if (rows < 2 || rows > 4'000'000'000ull)
            fail("engram_vocab_size[" + std::to_string(i) + "]",
                 std::to_string(rows) + " rows per head is outside [2, 4e9]");
        c.engram_vocab_size.push_back(rows);
    }
    // Resolution bounds these; from_json may also see a trace's metadata, unresolved.
    if (c.max_ngram_size < 2) fail("max_ngram_size", "must be >= 2");
    if (c.n_head_per_ngram < 1) fail("n_head_per_ngram", "must be >= 1");
    if (c.n_embed_per_ngram < 1) fail("n_embed_per_ngram", "must be >= 1");
    if (c.n_embed_per_ngram % c.n_head_per_ngram != 0)
        fail("n_embed_per_ngram", std::to_string(c.n_embed_per_ngram) +
                                      " is not divisible by n_head_per_ngram " +
                                      std::to_string(c.n_head_per_ngram));
    std::set<int> seen;
    for (const auto& id : s.at("layer_ids")) {
        int layer = id.get<int>();
        if (layer < 0) fail("layer_ids", "layer ids are 0-based and must not be negative");
        if (!seen.insert(layer).second)
            fail("layer_ids", "layer " + std::to_string(layer) + " is listed twice");
        c.layer_ids.push_back(layer);
    }
    if (c.layer_ids.empty()) fail("layer_ids", "at least one layer is needed");
    return c;
}

double EngramConfig::bytes_per_value() const {
    switch (dtype) {
        case TableDtype::Fp32: return 4;
        case TableDtype::Bf16:
        case TableDtype::Fp16: return 2;
        case TableDtype::Fp8E4M3: return 1;
    }
    return 2;
}

const char* to_string(TableDtype dtype) {
    switch (dtype) {
        case TableDtype::Fp32: return "fp32";
        case TableDtype::Bf16: return "bf16";
        case TableDtype::Fp16: return "fp16";
        case TableDtype::Fp8E4M3: return "fp8_e4m3";
    }
    return "?";
}

}  // namespace engramsim
