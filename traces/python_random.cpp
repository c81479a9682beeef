#include "traces/python_random.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace engramsim::python {

// CPython seeds through MT19937's reference init_by_array (Matsumoto & Nishimura 2002) on the
// seed's 32-bit words, least significant first; std::mt19937's seed_seq constructor differs, so
// the generator is written out here (it is short).
Random::Random(uint64_t seed) {
    std::vector<uint32_t> key;
    for (uint64_t s = seed; s; s >>= 32) key.push_back(static_cast<uint32_t>(s));
    if (key.empty()) key.push_back(0);

    uint32_t* mt = mt_;
    mt[0] = 19650218u;
    for (int i = 1; i < kN; ++i)
        mt[i] = 1812433253u * (mt[i - 1] ^ (mt[i - 1] >> 30)) + uint32_t(i);
    int i = 1;
    size_t j = 0;
    for (size_t k = std::max<size_t>(kN, key.size()); k; --k) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + uint32_t(j);
        ++i, ++j;
        if (i >= kN) mt[0] = mt[kN - 1], i = 1;
        if (j >= key.size()) j = 0;
    }
    for (int k = kN - 1; k; --k) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - uint32_t(i);
        ++i;
        if (i >= kN) mt[0] = mt[kN - 1], i = 1;
    }
    mt[0] = 0x80000000u;
    index_ = kN;
}

uint32_t Random::getrandbits32() {
    constexpr int kM = 397;
    constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
    if (index_ >= kN) {
        for (int k = 0; k < kN; ++k) {
            uint32_t y = (mt_[k] & kUpper) | (mt_[(k + 1) % kN] & kLower);
            mt_[k] = mt_[(k + kM) % kN] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
        }
        index_ = 0;
    }
    uint32_t y = mt_[index_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

int64_t Random::randint(int64_t a, int64_t b) {
    if (b < a) throw std::invalid_argument("randint: empty range");
    const uint64_t width = uint64_t(b - a) + 1;
    if (width > 0xFFFFFFFFull) throw std::invalid_argument("randint: range wider than 32 bits");
    int k = 64 - __builtin_clzll(width);  // width.bit_length()
    uint64_t r = getrandbits(k);
    while (r >= width) r = getrandbits(k);
    return a + int64_t(r);
}

}  // namespace engramsim::python
