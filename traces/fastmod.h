// Remainder by a runtime-constant divisor without a hardware division.
//
// Engram hashes reduce a 63-bit mix modulo one prime per head, millions of times per second.
// A 64-bit `div` costs tens of cycles; this uses Granlund & Montgomery's round-up reciprocal
// (PLDI 1994, Theorem 4.2): for numerators below 2^63 and l = ceil(log2 d), the magic
// m = ceil(2^(63+l) / d) fits in 64 bits and q = (a * m) >> (63 + l) is exactly a / d. The
// remainder is then a - q * d: one high multiply, one shift, one multiply and one subtraction.
// Usable from CUDA device code as well (ENGRAMSIM_HD).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ENGRAMSIM_HD __host__ __device__
#else
#define ENGRAMSIM_HD
#endif

namespace engramsim {

class FastMod {
public:
    FastMod() = default;

    // Precondition: 2 <= divisor < 2^63.
    explicit FastMod(uint64_t divisor) : divisor_(divisor) {
        int l = 64 - __builtin_clzll(divisor - 1);  // ceil(log2 divisor), >= 1
        shift_ = l - 1;
        // m = ceil(2^(63+l) / d) = floor((2^(63+l) - 1) / d) + 1, computed in 128 bits.
        unsigned __int128 numerator = (static_cast<unsigned __int128>(1) << (63 + l)) - 1;
        magic_ = static_cast<uint64_t>(numerator / divisor) + 1;
    }

    // a mod divisor, for a < 2^63 (Engram mixes are products below 2^63, xor-ed).
    ENGRAMSIM_HD uint64_t mod(uint64_t a) const {
        uint64_t q = mulhi(a, magic_) >> shift_;
        return a - q * divisor_;
    }

    ENGRAMSIM_HD uint64_t divisor() const { return divisor_; }

private:
    ENGRAMSIM_HD static uint64_t mulhi(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
        return __umul64hi(a, b);
#else
        return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
    }

    uint64_t divisor_ = 1;
    uint64_t magic_ = 0;
    int shift_ = 0;
};

}  // namespace engramsim
