// A synthetic lookup generator fitted to a real corpus, for workloads beyond the text at hand
// (1e9 tokens and more), streamed deterministically from a seed without storing anything but a
// small window per N-gram order.
//
// The model, per N-gram order n (the orders are generated independently):
//   - vocabulary growth (Heaps): the number of distinct n-grams after t tokens is K t^beta, so
//     position t starts a new n-gram with probability K (t^beta - (t-1)^beta);
//   - popularity (Zipf-Mandelbrot): an n-gram that is not new is, with probability 1 - rho, the
//     one of rank r among the V seen so far, P(r) ~ (r + q)^-s (ranks follow first appearance);
//   - reuse (burstiness): otherwise (probability rho) it repeats the n-gram of a position drawn
//     uniformly among the last W positions.
// K and beta are fitted by least squares of log V on log t, s and q by least squares of
// log count on log(rank + q) (q on a grid), rho so that the share of short reuses (within W
// positions) matches the corpus. An n-gram id becomes one row per head through a seeded 64-bit
// mix modulo the head's prime, so hash collisions arise as they do for real n-grams.
//
// The fit is validated on a held-out slice: the model is fitted on the first `fit_tokens` of the
// corpus and predicts the unique-row and top-k-share curves over the whole corpus.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "model/engram_config.h"
#include "traces/lookups.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

namespace engramsim {

struct OrderModel {
    int order = 2;
    double heaps_k = 0, heaps_beta = 0;  // V(t) = K t^beta
    double zipf_s = 1, zipf_q = 0;       // P(rank r) ~ (r + q)^-s
    double reuse_rho = 0;                // probability of a copy from the recent window
    int reuse_window = 512;              // W positions
    double short_reuse_share = 0;        // corpus: share of non-new positions reused within W
};

struct SyntheticModel {
    std::string corpus;
    uint64_t fit_tokens = 0;
    std::vector<OrderModel> orders;  // orders 2..N
};

// Fits the model to the first `fit_tokens` canonical ids of `canonical` (one sequence).
SyntheticModel fit_synthetic(const std::vector<uint32_t>& canonical, uint64_t fit_tokens,
                             int max_ngram_size, uint32_t canonical_pad);

nlohmann::json to_json(const SyntheticModel& model);
SyntheticModel synthetic_model_from_json(const nlohmann::json& j);

// The n-gram ids of one order, position after position, drawn by the model above.
class NgramIdSource {
public:
    NgramIdSource(const OrderModel& model, uint64_t seed);
    uint64_t next();

private:
    OrderModel model_;
    uint64_t rng_state_ = 0;
    uint64_t t_ = 0;                // positions drawn
    uint64_t vocabulary_ = 0;       // ids issued (ids are 0, 1, ... in order of first use)
    std::vector<uint64_t> window_;  // ring of the last W ids
};

// Streams synthetic row ids: for each token, every layer's heads_per_layer local row ids, laid
// out like NgramHasher::hash_layer's output. Deterministic in (model, hasher's tables, seed).
class SyntheticStream {
public:
    SyntheticStream(const SyntheticModel& model, const NgramHasher& tables, uint64_t seed);

    // Rows of the next `tokens` tokens: out[l] gets tokens x heads_per_layer local row ids.
    void next(size_t tokens, std::vector<std::vector<uint32_t>>& out);
    uint64_t position() const { return t_; }

private:
    const NgramHasher& tables_;
    uint64_t seed_;
    uint64_t t_ = 0;
    std::vector<NgramIdSource> orders_;
};

// Curves that compare a stream of row ids with the corpus: unique rows per order (mean over its
// heads, layer 0) at checkpoints, and top 0.1 / 1 / 10 % shares at the end.
struct GrowthCurve {
    std::vector<uint64_t> tokens;                 // checkpoints
    std::vector<std::vector<double>> unique_rows;  // [order - 2][checkpoint]
    std::vector<std::vector<double>> top_share;    // [order - 2][3]
};

// Unique-row growth of real text hashed with `tables` (layer 0).
GrowthCurve corpus_growth(const std::vector<uint32_t>& canonical, const NgramHasher& tables,
                          const std::vector<uint64_t>& checkpoints);
// The same for the synthetic stream.
GrowthCurve synthetic_growth(const SyntheticModel& model, const NgramHasher& tables,
                             uint64_t seed, const std::vector<uint64_t>& checkpoints);

// Requests of a workload served with synthetic rows: each request's tokens take the next slice
// of the stream when it is admitted (file order), so memory stays bounded by the running batch.
std::unique_ptr<LookupSource> synthetic_lookups(const SyntheticModel& model,
                                                const EngramConfig& engram,
                                                std::vector<uint32_t> prompt_len,
                                                std::vector<uint32_t> output_len,
                                                const SchedulerConfig& scheduler, uint64_t seed);

}  // namespace engramsim
