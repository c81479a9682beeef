// Engram's multiplicative-XOR N-gram hash (docs/ENGRAM.md section 1), bit-exact with
// engram_demo_v1.py's NgramHashMapping.
//
// For Engram layer l: multipliers m_0..m_{N-1} = 2 * default_rng(seed + 10007 l).integers(0,
// half_bound, N) + 1; for order n the mix at position t is
//   mix_n(t) = (x_t m_0) xor (x_{t-1} m_1) xor ... xor (x_{t-n+1} m_{n-1})
// over canonical ids x (positions before the sequence start read the canonical pad id), and head
// k of order n reads local row mix_n(t) mod p_{l,n,k}. Row ids are local to their head's table;
// a token reads (N-1) * K rows per layer, ordered by order then head.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/engram_config.h"
#include "traces/fastmod.h"

namespace engramsim {

struct LayerHashParams {
    int layer_id = 0;
    std::vector<uint64_t> multipliers;         // m_0..m_{N-1}, odd, below 2^63 / vocab
    std::vector<std::vector<uint64_t>> primes;  // [order - 2][head]: table rows of each head
    std::vector<FastMod> mods;                  // flattened [order - 2][head]
    std::vector<uint64_t> head_offsets;         // first row of each head in the layer's table
    uint64_t table_rows = 0;                    // sum of the layer's primes
};

// A 64-bit fingerprint of the n-gram ending at position t (canonical ids, `pad` before the
// start), for counting distinct n-grams; unlike the row hash it is not reduced to a table.
inline uint64_t ngram_fingerprint(std::span<const uint32_t> ids, size_t t, int n, uint32_t pad) {
    uint64_t key = 0;
    for (int k = 0; k < n; ++k) {
        const uint64_t x = t >= size_t(k) ? ids[t - size_t(k)] : pad;
        key = key * 0x9E3779B97F4A7C15ull ^ (x + 1);
    }
    return key;
}

class NgramHasher {
public:
    // `canonical_vocab_size` sets the multiplier bound; `canonical_pad_id` fills positions
    // before the sequence start.
    NgramHasher(const EngramConfig& config, uint32_t canonical_vocab_size,
                uint32_t canonical_pad_id);

    // max(1, (INT64_MAX / vocab) / 2): keeps every product x * m below 2^63.
    static uint64_t half_bound(uint32_t canonical_vocab_size);

    const std::vector<LayerHashParams>& layers() const { return layers_; }
    int max_ngram_size() const { return max_ngram_size_; }
    int heads_per_layer() const { return heads_per_layer_; }
    uint32_t pad_id() const { return pad_id_; }

    // Row ids of layer `layer_index` (index into layers(), not the layer id) for canonical ids
    // `ids`, continuing after `history` (up to N-1 canonical ids that precede ids[0], oldest
    // first; missing positions read the pad id). `out` must hold ids.size() * heads_per_layer()
    // entries: token-major, then order, then head.
    void hash_layer(size_t layer_index, std::span<const uint32_t> ids, std::span<uint32_t> out,
                    std::span<const uint32_t> history = {}) const;

    // The same with the hardware '%' for each head: the plain implementation, kept as the
    // benchmark baseline and as an independent cross-check of FastMod.
    void hash_layer_plain(size_t layer_index, std::span<const uint32_t> ids,
                          std::span<uint32_t> out, std::span<const uint32_t> history = {}) const;

private:
    template <bool kPlain>
    void hash_impl(size_t layer_index, std::span<const uint32_t> ids, std::span<uint32_t> out,
                   std::span<const uint32_t> history) const;

    std::vector<LayerHashParams> layers_;
    int max_ngram_size_ = 3;
    int heads_per_ngram_ = 8;
    int heads_per_layer_ = 16;
    uint32_t pad_id_ = 0;
};

}  // namespace engramsim
