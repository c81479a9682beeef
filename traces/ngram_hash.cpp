#include "traces/ngram_hash.h"

#include <stdexcept>
#include <string>
#include <unordered_set>

#include "traces/numpy_rng.h"
#include "traces/primes.h"

namespace engramsim {

namespace {
constexpr uint64_t kLayerSeedStride = 10007;  // PRIME_1 in the demo
constexpr int kMaxNgram = 8;
}  // namespace

uint64_t NgramHasher::half_bound(uint32_t vocab) {
    uint64_t m_max = uint64_t(INT64_MAX) / vocab;
    return std::max<uint64_t>(1, m_max / 2);
}

NgramHasher::NgramHasher(const EngramConfig& config, uint32_t vocab, uint32_t pad)
    : max_ngram_size_(config.max_ngram_size),
      heads_per_ngram_(config.n_head_per_ngram),
      heads_per_layer_(config.heads_per_layer()),
      pad_id_(pad) {
    if (max_ngram_size_ < 2 || max_ngram_size_ > kMaxNgram)
        throw std::invalid_argument("max_ngram_size must be in [2, 8]");
    if (pad >= vocab) throw std::invalid_argument("pad id is outside the canonical vocabulary");
    const auto bound = static_cast<int64_t>(half_bound(vocab));

    // Multipliers: one generator per layer.
    for (int layer_id : config.layer_ids) {
        LayerHashParams p;
        p.layer_id = layer_id;
        numpy::Generator rng(config.seed + kLayerSeedStride * uint64_t(layer_id));
        for (int64_t r : rng.integers_int64(0, bound, size_t(max_ngram_size_)))
            p.multipliers.push_back(2 * uint64_t(r) + 1);
        layers_.push_back(std::move(p));
    }

    // Table sizes: distinct primes, visited layers -> orders -> heads.
    std::unordered_set<uint64_t> taken;
    for (auto& p : layers_) {
        for (int order = 2; order <= max_ngram_size_; ++order) {
            std::vector<uint64_t> heads;
            uint64_t start = config.engram_vocab_size[size_t(order - 2)] - 1;
            for (int h = 0; h < heads_per_ngram_; ++h) {
                uint64_t prime = next_distinct_prime(start, taken);
                taken.insert(prime);
                heads.push_back(prime);
                p.mods.emplace_back(prime);
                p.head_offsets.push_back(p.table_rows);
                p.table_rows += prime;
                start = prime;
            }
            p.primes.push_back(std::move(heads));
        }
    }
}

template <bool kPlain>
void NgramHasher::hash_impl(size_t layer_index, std::span<const uint32_t> ids,
                            std::span<uint32_t> out, std::span<const uint32_t> history) const {
    const LayerHashParams& p = layers_.at(layer_index);
    const int n_max = max_ngram_size_;
    const int k_heads = heads_per_ngram_;
    if (out.size() != ids.size() * size_t(heads_per_layer_))
        throw std::invalid_argument("hash_layer: output size must be tokens x heads per layer");

    // window[k] holds the canonical id at position t - k.
    uint64_t window[kMaxNgram];
    for (int k = 0; k < kMaxNgram; ++k) {
        // Before the loop shifts, window[k] is position -1 - k relative to ids[0].
        size_t back = size_t(k) + 1;
        window[k] = back <= history.size() ? history[history.size() - back] : pad_id_;
    }
    uint64_t m[kMaxNgram];
    for (int k = 0; k < n_max; ++k) m[k] = p.multipliers[size_t(k)];
    const FastMod* mods = p.mods.data();
    uint32_t* dst = out.data();

    for (size_t t = 0; t < ids.size(); ++t) {
        for (int k = n_max - 1; k > 0; --k) window[k] = window[k - 1];
        window[0] = ids[t];
        uint64_t mix = window[0] * m[0];
        for (int n = 2; n <= n_max; ++n) {
            mix ^= window[n - 1] * m[n - 1];
            const FastMod* head = mods + (n - 2) * k_heads;
            for (int h = 0; h < k_heads; ++h) {
                if constexpr (kPlain)
                    *dst++ = static_cast<uint32_t>(mix % head[h].divisor());
                else
                    *dst++ = static_cast<uint32_t>(head[h].mod(mix));
            }
        }
    }
}

void NgramHasher::hash_layer(size_t layer_index, std::span<const uint32_t> ids,
                             std::span<uint32_t> out, std::span<const uint32_t> history) const {
    hash_impl<false>(layer_index, ids, out, history);
}

void NgramHasher::hash_layer_plain(size_t layer_index, std::span<const uint32_t> ids,
                                   std::span<uint32_t> out,
                                   std::span<const uint32_t> history) const {
    hash_impl<true>(layer_index, ids, out, history);
}

}  // namespace engramsim
