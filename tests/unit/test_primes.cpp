// is_prime against a sieve, and the demo's distinct-next-prime rule.
#include <gtest/gtest.h>

#include "traces/primes.h"

using engramsim::is_prime;
using engramsim::next_distinct_prime;

TEST(Primes, MatchesSieveBelowTwoMillion) {
    const size_t n = 2'000'000;
    std::vector<bool> composite(n, false);
    composite[0] = composite[1] = true;
    for (size_t i = 2; i * i < n; ++i)
        if (!composite[i])
            for (size_t j = i * i; j < n; j += i) composite[j] = true;
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(is_prime(i), !composite[i]) << i;
}

TEST(Primes, LargeKnownValues) {
    EXPECT_TRUE(is_prime(2305843009213693951ull));    // 2^61 - 1, Mersenne prime
    EXPECT_TRUE(is_prime(18446744073709551557ull));   // largest prime below 2^64
    EXPECT_FALSE(is_prime(18446744073709551559ull));  // 2^64 - 57: between the largest prime and 2^64
    EXPECT_FALSE(is_prime(3215031751ull));            // strong pseudoprime to bases 2, 3, 5, 7
    EXPECT_FALSE(is_prime(3825123056546413051ull));   // strong pseudoprime to bases 2..23
    EXPECT_FALSE(is_prime(4294967297ull));            // 2^32 + 1 = 641 x 6700417
}

TEST(Primes, NextDistinctPrimeSkipsTakenOnes) {
    std::unordered_set<uint64_t> taken;
    EXPECT_EQ(next_distinct_prime(646399, taken), 646403u);  // demo: base 646400 - 1
    taken = {646403, 646411};
    EXPECT_EQ(next_distinct_prime(646399, taken), 646421u);
    EXPECT_EQ(next_distinct_prime(1, {}), 2u);
    EXPECT_EQ(next_distinct_prime(2, {}), 3u);
}
