// The tiny run config the executor's tests serve (a 3-layer, hidden-64 GQA backbone with Engram
// layers 0 and 2, tables of 2003 rows per head, 6 short requests, the table in host DRAM;
// unresolved: a test changes what it needs, then resolves it), and what execute() says when it
// refuses one.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <string>

#include "executor/executor.h"

inline nlohmann::json tiny_executor_doc(int max_num_seqs, int64_t num_kv_blocks,
                                        const std::string& schedule) {
    return {
        {"backbone",
         {{"base", "dense-4b"}, {"name", "tiny"}, {"hidden_size", 64}, {"layers", 3},
          {"vocab_size", 512}, {"dtype", "fp32"},
          {"attention", {{"n_heads", 4}, {"n_kv_heads", 2}, {"head_dim", 16}, {"v_head_dim", 16}}},
          {"mlp", {{"intermediate_size", 128}}}}},
        {"engram",
         {{"base", "demo-v1"}, {"engram_vocab_size", {2003, 2003}}, {"n_embed_per_ngram", 32},
          {"n_head_per_ngram", 2}, {"layer_ids", {0, 2}}, {"hc_mult", 1}}},
        {"hardware", "h800-pcie5"},
        {"workload",
         {{"base", "nano-vllm-512"}, {"num_requests", 6},
          {"prompt_len", {{"min", 4}, {"max", 20}}}, {"output_len", {{"min", 4}, {"max", 12}}}}},
        {"sim",
         {{"table", "host-dram"}, {"mechanism", "cpu-gather"}, {"schedule", schedule},
          {"gather_threads", 2}, {"max_num_seqs", max_num_seqs}, {"kv_block_size", 4},
          {"num_kv_blocks", num_kv_blocks}, {"max_num_batched_tokens", 64}}}};
}

// What execute() says when it refuses `cfg`, or "(no error)".
inline std::string refusal_of(const nlohmann::json& cfg) {
    try {
        engramsim::executor::execute(cfg, {});
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}
