// A bit-exact C++ reimplementation of numpy.random.default_rng(seed).integers(...) for the
// draws Engram makes: SeedSequence -> PCG64 (XSL-RR 128/64) -> bounded integers by Lemire's
// multiply-shift with rejection, including NumPy's switch to 32-bit draws for ranges that fit
// in 32 bits (which consume half of a 64-bit output each, keeping the other half buffered).
//
// Engram's per-layer hash multipliers come from
//   rng = numpy.random.default_rng(seed + 10007 * layer)
//   r = rng.integers(0, half_bound, size=N, dtype=numpy.int64)
// so reproducing NumPy exactly is what makes row ids match the reference demo bit for bit.
// Verified against NumPy 1.24.2 vectors in tests/golden/data (see tests/golden/README.md).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace engramsim::numpy {

// numpy.random.SeedSequence(entropy) with no spawn key and the default pool size of 4 words.
class SeedSequence {
public:
    // `entropy` is the seed's 32-bit words, least significant first (NumPy's int -> uint32
    // array conversion); a seed of 0 is the single word {0}.
    explicit SeedSequence(const std::vector<uint32_t>& entropy);
    explicit SeedSequence(uint64_t seed);

    // generate_state(n_words, uint32).
    std::vector<uint32_t> generate_state_u32(size_t n_words) const;
    // generate_state(n_words, uint64): pairs of 32-bit words, little-endian.
    std::vector<uint64_t> generate_state_u64(size_t n_words) const;

    const std::array<uint32_t, 4>& pool() const { return pool_; }

private:
    std::array<uint32_t, 4> pool_{};
};

// The seed's 32-bit words, least significant first (seed 0 -> {0}).
std::vector<uint32_t> seed_words(uint64_t seed);
// The same for a non-negative decimal integer of any size ("18446744073709551619");
// throws std::invalid_argument on anything else.
std::vector<uint32_t> seed_words(std::string_view decimal);

// numpy.random.PCG64 seeded from a SeedSequence.
class Pcg64 {
public:
    explicit Pcg64(const SeedSequence& seq);

    uint64_t next_u64();  // bit_generator.random_raw()
    uint32_t next_u32();  // low half of a fresh 64-bit output, then its high half

private:
    unsigned __int128 state_ = 0;
    unsigned __int128 inc_ = 0;
    bool has_u32_ = false;
    uint32_t u32_ = 0;
};

// numpy.random.Generator over PCG64: the integer draws Engram needs.
class Generator {
public:
    explicit Generator(uint64_t seed) : bitgen_(SeedSequence(seed)) {}
    explicit Generator(const SeedSequence& seq) : bitgen_(seq) {}

    // Generator.integers(low, high, size=n, dtype=np.int64): uniform in [low, high), high > low.
    std::vector<int64_t> integers_int64(int64_t low, int64_t high, size_t n);

    Pcg64& bit_generator() { return bitgen_; }

private:
    Pcg64 bitgen_;
};

}  // namespace engramsim::numpy
