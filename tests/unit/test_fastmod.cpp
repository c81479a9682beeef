// FastMod against the hardware '%' on edge values and random numerators below 2^63.
#include <gtest/gtest.h>

#include <random>

#include "traces/fastmod.h"

using engramsim::FastMod;

TEST(FastMod, EdgeNumeratorsForManyDivisors) {
    std::vector<uint64_t> divisors = {2,          3,          5,           7,
                                      646403,     2262407,    78125003,    4294967291ull,
                                      4294967296, 4294967311, 1ull << 40,  (1ull << 62) + 1,
                                      (1ull << 63) - 25};
    std::mt19937_64 gen(42);
    for (int i = 0; i < 200; ++i) divisors.push_back(2 + gen() % ((1ull << 63) - 3));
    for (int i = 0; i < 200; ++i) divisors.push_back(2 + gen() % 5'000'000'000ull);
    const uint64_t top = (1ull << 63) - 1;
    for (uint64_t d : divisors) {
        FastMod fm(d);
        for (uint64_t a : {uint64_t(0), uint64_t(1), d - 1, d, d + 1, 2 * d - 1, 2 * d,
                           top, top - 1, top - top % d, top - top % d - 1}) {
            if (a > top) continue;  // 2d - 1 overflows the precondition for d near 2^63
            ASSERT_EQ(fm.mod(a), a % d) << a << " mod " << d;
        }
    }
}

TEST(FastMod, RandomNumerators) {
    std::mt19937_64 gen(7);
    for (int i = 0; i < 2000; ++i) {
        const uint64_t d = 2 + gen() % (i % 2 ? 4'000'000'000ull : (1ull << 63) - 3);
        FastMod fm(d);
        for (int j = 0; j < 500; ++j) {
            const uint64_t a = gen() >> 1;  // below 2^63
            ASSERT_EQ(fm.mod(a), a % d) << a << " mod " << d;
        }
    }
}
