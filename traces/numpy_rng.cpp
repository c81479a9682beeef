#include "traces/numpy_rng.h"

#include <stdexcept>

namespace engramsim::numpy {

namespace {

// Constants of numpy/random/bit_generator.pyx (SeedSequence).
constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr int kXShift = 16;

// PCG64's 128-bit LCG multiplier (PCG_DEFAULT_MULTIPLIER_128).
constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(0x2360ED051FC65DA4ull) << 64) | 0x4385DF649FCCF645ull;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
    value ^= hash_const;
    hash_const *= kMultA;
    value *= hash_const;
    value ^= value >> kXShift;
    return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t result = kMixMultL * x - kMixMultR * y;
    result ^= result >> kXShift;
    return result;
}

}  // namespace

std::vector<uint32_t> seed_words(uint64_t seed) {
    if (seed == 0) return {0};
    std::vector<uint32_t> words;
    for (; seed != 0; seed >>= 32) words.push_back(static_cast<uint32_t>(seed));
    return words;
}

std::vector<uint32_t> seed_words(std::string_view decimal) {
    if (decimal.empty()) throw std::invalid_argument("seed: empty");
    std::vector<uint32_t> words = {0};  // little-endian base 2^32
    for (char ch : decimal) {
        if (ch < '0' || ch > '9')
            throw std::invalid_argument("seed: not a non-negative decimal integer");
        uint64_t carry = uint64_t(ch - '0');
        for (uint32_t& w : words) {
            uint64_t v = uint64_t(w) * 10 + carry;
            w = static_cast<uint32_t>(v);
            carry = v >> 32;
        }
        if (carry) words.push_back(static_cast<uint32_t>(carry));
    }
    return words;
}

SeedSequence::SeedSequence(uint64_t seed) : SeedSequence(seed_words(seed)) {}

SeedSequence::SeedSequence(const std::vector<uint32_t>& entropy) {
    uint32_t hash_const = kInitA;
    for (size_t i = 0; i < pool_.size(); ++i)
        pool_[i] = hashmix(i < entropy.size() ? entropy[i] : 0u, hash_const);
    for (size_t src = 0; src < pool_.size(); ++src)
        for (size_t dst = 0; dst < pool_.size(); ++dst)
            if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
    for (size_t src = pool_.size(); src < entropy.size(); ++src)
        for (size_t dst = 0; dst < pool_.size(); ++dst)
            pool_[dst] = mix(pool_[dst], hashmix(entropy[src], hash_const));
}

std::vector<uint32_t> SeedSequence::generate_state_u32(size_t n_words) const {
    std::vector<uint32_t> state(n_words);
    uint32_t hash_const = kInitB;
    for (size_t i = 0; i < n_words; ++i) {
        uint32_t v = pool_[i % pool_.size()];
        v ^= hash_const;
        hash_const *= kMultB;
        v *= hash_const;
        v ^= v >> kXShift;
        state[i] = v;
    }
    return state;
}

std::vector<uint64_t> SeedSequence::generate_state_u64(size_t n_words) const {
    auto words = generate_state_u32(2 * n_words);
    std::vector<uint64_t> out(n_words);
    for (size_t i = 0; i < n_words; ++i)
        out[i] = uint64_t(words[2 * i]) | (uint64_t(words[2 * i + 1]) << 32);
    return out;
}

Pcg64::Pcg64(const SeedSequence& seq) {
    // numpy: val = seed_seq.generate_state(4, uint64); seed = (val[0] << 64) | val[1],
    // stream = (val[2] << 64) | val[3]; then pcg_setseq_128_srandom_r.
    auto val = seq.generate_state_u64(4);
    unsigned __int128 initstate = (static_cast<unsigned __int128>(val[0]) << 64) | val[1];
    unsigned __int128 initseq = (static_cast<unsigned __int128>(val[2]) << 64) | val[3];
    state_ = 0;
    inc_ = (initseq << 1) | 1;
    state_ = state_ * kPcgMultiplier + inc_;
    state_ += initstate;
    state_ = state_ * kPcgMultiplier + inc_;
}

uint64_t Pcg64::next_u64() {
    state_ = state_ * kPcgMultiplier + inc_;
    // XSL-RR output: xor the halves, rotate right by the top 6 bits.
    uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
    unsigned rot = static_cast<unsigned>(state_ >> 122);
    return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t Pcg64::next_u32() {
    if (has_u32_) {
        has_u32_ = false;
        return u32_;
    }
    uint64_t next = next_u64();
    has_u32_ = true;
    u32_ = static_cast<uint32_t>(next >> 32);
    return static_cast<uint32_t>(next);
}

std::vector<int64_t> Generator::integers_int64(int64_t low, int64_t high, size_t n) {
    if (high <= low) throw std::invalid_argument("integers: high must be greater than low");
    // NumPy draws offset + bounded(rng) with rng = high - low - 1 (inclusive range).
    const uint64_t rng = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) - 1;
    std::vector<int64_t> out(n);
    for (size_t i = 0; i < n; ++i) {
        uint64_t draw;
        if (rng == 0) {
            draw = 0;
        } else if (rng <= 0xFFFFFFFFull) {
            if (rng == 0xFFFFFFFFull) {
                draw = bitgen_.next_u32();
            } else {
                // Lemire's method on 32-bit words.
                const uint32_t rng_excl = static_cast<uint32_t>(rng) + 1;
                uint64_t m = uint64_t(bitgen_.next_u32()) * rng_excl;
                uint32_t leftover = static_cast<uint32_t>(m);
                if (leftover < rng_excl) {
                    const uint32_t threshold = (UINT32_MAX - static_cast<uint32_t>(rng)) % rng_excl;
                    while (leftover < threshold) {
                        m = uint64_t(bitgen_.next_u32()) * rng_excl;
                        leftover = static_cast<uint32_t>(m);
                    }
                }
                draw = m >> 32;
            }
        } else {
            // Lemire's method on 64-bit words (rng < 2^63 - 1 here, never the full range).
            const uint64_t rng_excl = rng + 1;
            unsigned __int128 m = static_cast<unsigned __int128>(bitgen_.next_u64()) * rng_excl;
            uint64_t leftover = static_cast<uint64_t>(m);
            if (leftover < rng_excl) {
                const uint64_t threshold = (UINT64_MAX - rng) % rng_excl;
                while (leftover < threshold) {
                    m = static_cast<unsigned __int128>(bitgen_.next_u64()) * rng_excl;
                    leftover = static_cast<uint64_t>(m);
                }
            }
            draw = static_cast<uint64_t>(m >> 64);
        }
        out[i] = static_cast<int64_t>(static_cast<uint64_t>(low) + draw);
    }
    return out;
}

}  // namespace engramsim::numpy
