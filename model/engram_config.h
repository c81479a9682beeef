// The Engram memory's shape, read from a resolved "engram" config section (model/config.h).
// Field names follow engram_demo_v1.py; derived sizes are computed by the methods below.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace engramsim {

enum class TableDtype { Fp32, Bf16, Fp16, Fp8E4M3 };

struct EngramConfig {
    std::string name;
    std::vector<uint64_t> engram_vocab_size;  // base rows per head, for orders 2..N
    int max_ngram_size = 3;                   // N
    int n_embed_per_ngram = 512;              // values per token per order, all heads
    int n_head_per_ngram = 8;                 // K
    std::vector<int> layer_ids;               // 0-based Transformer layers with Engram
    uint32_t pad_id = 2;                      // raw token id
    uint64_t seed = 0;
    int kernel_size = 4;
    int hc_mult = 4;
    std::string compress_map = "bundled:deepseek-v3";
    TableDtype dtype = TableDtype::Bf16;
    bool signed_sqrt_gate = true;
    bool short_conv = true;

    // Reads a resolved "engram" section and checks what spans several keys (list lengths,
    // divisibility, distinct layers). Throws config::ConfigError naming the key path.
    static EngramConfig from_json(const nlohmann::json& engram_section);

    int orders() const { return max_ngram_size - 1; }                     // N - 1
    int heads_per_layer() const { return orders() * n_head_per_ngram; }   // rows per token
    int row_dim() const { return n_embed_per_ngram / n_head_per_ngram; }  // values per row
    double bytes_per_value() const;                                       // fp8: 1 (+ scales)
    double row_bytes() const { return row_dim() * bytes_per_value(); }
};

const char* to_string(TableDtype dtype);

}  // namespace engramsim
