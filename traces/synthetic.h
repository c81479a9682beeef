// A synthetic lookup generator fitted to a real corpus, for workloads beyond the text at hand
// (1e9 tokens and more), streamed deterministically from a seed without storing the lookups.
//
// The stream continues the fitted text: it starts from the state the model kept of the fit
// slice (the slice's distinct n-grams are the stream's first ids), so its growth from the
// fitted size on is a forecast that a held-out slice of the corpus checks.
//
// The law is the hierarchical Pitman-Yor process (Teh 2006), the standard Bayesian model of
// n-gram text. At each position:
//   - the context token is drawn from a Pitman-Yor process over the canonical vocabulary
//     (discount d1, concentration theta1): it sits at a table of a token seen before with
//     weight count - d1 x tables, else at a new table whose token is uniform over the vocabulary;
//   - the n-gram of order n extends the (n-1)-gram drawn before it (for n = 2, the token): a
//     context seen c times with s distinct successors goes on to a new n-gram with probability
//     (theta_n + d_n s) / (theta_n + c) (a restaurant per context); an old one is, with
//     probability r_n, the successor this context had last time (phrases repeat), else its j-th
//     successor by first use with P(j) ~ (j + 1)^-a_n.
// d1, theta1 and each order's d_n, theta_n are maximum-likelihood fits on the fit slice's own
// sequence of new and old events (theta may be negative, down to -d, as the PY law allows);
// r_n is the slice's share of old successors that were their context's last; a_n is set by
// simulation so that the stream's top-1% share over twice the slice's length matches the
// slice's. The state is a read count, a table count and a successor count per token, and per
// order n >= 3 a read count, a successor count, the last successor and the fit slice's successor
// count per (n-1)-gram (a 24-byte hash-map slot): it grows with the distinct (N-1)-grams, never
// with the lookups (docs/traces.md: measured memory).
//
// An n-gram id becomes one row per head through a 64-bit mix modulo the head's prime, so hash
// collisions arise as they do for real n-grams. The fit slice's n-grams keep their ids and rows
// whatever the seed; an n-gram a stream creates is keyed by its seed, so streams of two seeds
// (a run and its cache warm-up, two replicas) share the text's known n-grams, not new ones.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "model/engram_config.h"
#include "traces/lookups.h"
#include "traces/ngram_hash.h"
#include "traces/splitmix64.h"
#include "traces/tokens.h"

namespace engramsim {

// Order n >= 2: the successors of the (n-1)-gram before each position.
struct OrderLaw {
    int order = 2;
    double d = 0.5, theta = 1;       // Pitman-Yor discount and concentration of each context
    // An old successor is the context's last one with probability `repeat` (the fit slice's
    // share of such), else the j-th by first use with P ~ (j + 1)^-zipf.
    double repeat = 0;
    double zipf = 1;
    double top1_share = 0;           // fit slice: reads of its most read 1% of n-grams
    uint64_t fitted_vocabulary = 0;  // fit slice: distinct n-grams
    // The fit slice's contexts of this order, for orders >= 3 (order 2's are the tokens): the
    // (n-1)-gram's id, its reads as a context, its distinct successors and its last one.
    std::vector<uint64_t> context_id;
    std::vector<uint32_t> context_count, context_successors, context_last;
};

struct SyntheticModel {
    std::string corpus;
    uint64_t fit_tokens = 0;
    uint32_t vocabulary = 0;  // canonical ids: the base of the token process
    double token_d = 0.5, token_theta = 1;
    // The fit slice's tokens by first appearance: reads as a context, distinct successors.
    std::vector<uint32_t> token_count, token_successors, token_last;
    std::vector<OrderLaw> orders;  // orders 2..N
    int max_ngram_size() const { return 1 + int(orders.size()); }
};

// Fits the model to the first `fit_tokens` canonical ids of `canonical` (one sequence) over a
// canonical vocabulary of `vocabulary` ids.
SyntheticModel fit_synthetic(const std::vector<uint32_t>& canonical, uint64_t fit_tokens,
                             int max_ngram_size, uint32_t canonical_pad, uint32_t vocabulary);

nlohmann::json to_json(const SyntheticModel& model);
SyntheticModel synthetic_model_from_json(const nlohmann::json& j);
// Reads a model file (workload.synthetic_model); a missing or malformed file is a ConfigError
// naming that key.
SyntheticModel load_synthetic_model(const std::string& path);

// What a Pitman-Yor restaurant saw: `customers` seated at `tables` tables when `opened` more
// customers opened a new table and `joined` sat at an existing one.
struct PyEvent {
    double customers = 0, tables = 0;
    double opened = 0, joined = 0;
};

// Maximum-likelihood (discount d, concentration theta) over 0 < d < 1, theta > -d, where a
// customer opens a table with probability (theta + d tables) / (theta + customers).
std::pair<double, double> fit_pitman_yor(std::vector<PyEvent> events);

// The id of the j-th successor (by first use) of the n-gram `parent` (a token index for n = 2).
inline uint64_t successor_id(uint64_t parent, uint32_t j) {
    return splitmix64(parent * 0x9E3779B97F4A7C15ull + j);
}

// The n-gram ids of one position for orders 2..N, position after position.
class NgramChain {
public:
    NgramChain(const SyntheticModel& model, uint64_t seed);
    // ids[o] gets the id of the order o + 2 n-gram.
    void next(std::vector<uint64_t>& ids);
    // Ids of the fit slice's n-grams of `order` (the stream's state before its first position).
    static std::vector<uint64_t> fitted_ids(const SyntheticModel& model, int order);
    uint32_t distinct_tokens() const { return tokens_; }

private:
    struct Context {
        uint32_t count = 0, successors = 0, last = 0;
        uint32_t fitted = 0;  // successors known from the fit slice
    };
    // The j-th successor's id: the fit slice's successors keep their ids in every stream, new
    // ones are keyed by the stream's seed (two streams share the text's n-grams, not new ones).
    uint64_t child_id(uint64_t parent, uint32_t j, uint32_t fitted) const {
        return successor_id(j < fitted ? parent : parent ^ new_salt_, j);
    }
    uint32_t draw_token();
    void add_token(uint32_t token, int64_t count, int64_t tables);
    // The successor index a context read `count` times goes on to (updating its successors and
    // last one; the caller counts the read).
    uint32_t successor(uint64_t count, uint32_t& successors, uint32_t& last, const OrderLaw& law);

    uint32_t vocabulary_;
    double token_d_, token_theta_;
    std::vector<OrderLaw> laws_;  // without the fit slice's contexts (moved into the maps)
    uint64_t rng_state_;
    uint64_t new_salt_;
    uint32_t tokens_ = 0;  // distinct tokens (indices 0 .. tokens_-1)
    uint64_t positions_ = 0, tables_ = 0;
    std::vector<uint64_t> token_count_;
    std::vector<uint32_t> token_successors_, token_last_, token_fitted_;
    struct Node {
        int64_t count = 0, tables = 0;  // one cache line holds both sums of a Fenwick node
    };
    std::vector<Node> tree_;                                        // Fenwick tree over tokens
    std::vector<absl::flat_hash_map<uint64_t, Context>> contexts_;  // orders 3..N
};

// Streams synthetic row ids: for each token, every layer's heads_per_layer local row ids, laid
// out like NgramHasher::hash_layer's output. Deterministic in (model, hasher's tables, seed).
class SyntheticStream {
public:
    SyntheticStream(const SyntheticModel& model, const NgramHasher& tables, uint64_t seed);

    // Rows of the next `tokens` tokens: out[l] gets tokens x heads_per_layer local row ids.
    void next(size_t tokens, std::vector<std::vector<uint32_t>>& out);
    uint64_t position() const { return t_; }
    // Rows of the fit slice's n-grams in layer `layer`, keyed (head << 40) | row.
    std::vector<uint64_t> fitted_row_keys(size_t layer) const;

private:
    uint32_t row(size_t layer, size_t head, uint64_t id) const;

    std::vector<std::vector<uint64_t>> salt_;  // [layer][head]: the row mix's per-head key
    SyntheticModel model_;
    const NgramHasher& tables_;
    uint64_t t_ = 0;
    NgramChain chain_;
};

// Curves that compare the synthetic stream with held-out text: unique rows per order (mean over
// its heads, layer 0) at checkpoints at or beyond the fitted size, counting the fit slice's rows,
// and the top 0.1 / 1 / 10 % shares of the lookups beyond the fitted size.
struct GrowthCurve {
    std::vector<uint64_t> tokens;                  // checkpoints
    std::vector<std::vector<double>> unique_rows;  // [order - 2][checkpoint]
    std::vector<std::vector<double>> top_share;    // [order - 2][3]
};

// The real text hashed with `tables` (layer 0): the first `fit_tokens` tokens are the fit slice.
GrowthCurve corpus_growth(const std::vector<uint32_t>& canonical, const NgramHasher& tables,
                          uint64_t fit_tokens, const std::vector<uint64_t>& checkpoints);
// The same for the synthetic stream, which continues the model's fit slice.
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
