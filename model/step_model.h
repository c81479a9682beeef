// One engine step of a dense Transformer with Engram layers: which operators run, in which
// order, and how long each takes (model/cost_model.h). Plain descriptions, no simulator.
//
// A step feeds `tokens` tokens of `seqs` sequences (a prefill step feeds whole prompts, a decode
// step one token per sequence). The GPU stream runs: embedding, then every layer (at an Engram
// layer the Engram module first: gather from the staged rows, projections, gate, short conv),
// then the final norm and the LM head over the sequences' last tokens (nano-vLLM computes logits
// only for those). The operator DAG of a step (StepDag) adds the fetch chain beside the GPU
// stream; its critical path is the step time when nothing contends.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/cost_model.h"
#include "model/engram_config.h"
#include "model/op_shape.h"

namespace engramsim {

// The backbone's shape, from a resolved "backbone" section (dense GQA models; MoE and MLA are
// rejected with a clear error).
struct BackboneShape {
    std::string name;
    int layers = 0;
    int hidden = 0;
    int n_heads = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    int intermediate = 0;
    int vocab = 0;
    double bytes_per_value = 2;
    bool tied_embeddings = false;  // the schema has no field: dense-4b (Qwen3-4B) is tied

    static BackboneShape from_json(const nlohmann::json& backbone_section);
    double params() const;            // weights (tied vocab matrix counted once)
    double weight_bytes() const { return params() * bytes_per_value; }
    double kv_bytes_per_token() const;  // all layers, K and V
};

// What one step feeds: from traces/schedule.h's Step.
struct StepShape {
    bool prefill = false;
    double tokens = 0;          // tokens fed
    double seqs = 0;            // sequences in the step
    double context_tokens = 0;  // KV entries attended to (decode), summed over sequences
    double causal_pairs = 0;    // prefill: sum over sequences of n (n + 1) / 2
};

// Engram work per step at one Engram layer, on the GPU stream (the fetch is separate).
struct EngramGpuShape {
    int d_mem = 0;         // values per token (heads x row_dim)
    int heads = 0;         // rows per token
    double row_bytes = 0;  // bytes of one row
    bool short_conv = true;
    int kernel_size = 4;
    int hc_mult = 1;
    static EngramGpuShape from_config(const EngramConfig& engram);
};

// Op lists: one Transformer layer, the head (final norm + LM head + sampling), the embedding,
// and the Engram module at one layer.
std::vector<OpShape> layer_ops(const BackboneShape& b, const StepShape& s);
std::vector<OpShape> embed_ops(const BackboneShape& b, const StepShape& s);
std::vector<OpShape> head_ops(const BackboneShape& b, const StepShape& s);
std::vector<OpShape> engram_ops(const EngramGpuShape& e, const BackboneShape& b,
                                const StepShape& s);
double total_seconds(const CostModel& cost, const std::vector<OpShape>& ops);

// The operator DAG of one step as a Boost.Graph graph; vertices carry durations, edges are
// dependencies. critical_path_s() is the longest path (the step time without contention).
class StepDag {
public:
    StepDag();
    ~StepDag();
    StepDag(const StepDag&) = delete;
    StepDag& operator=(const StepDag&) = delete;

    // A vertex of `seconds` duration; returns its id.
    int add(std::string name, double seconds);
    void depends(int after, int before);  // `after` starts once `before` has finished
    size_t size() const;
    // Longest path from any source to any sink, summing durations in topological order.
    // Throws std::logic_error on a cycle.
    double critical_path_s() const;
    // Finish time of one vertex on that schedule (as-soon-as-possible).
    double finish_s(int vertex) const;

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace engramsim
