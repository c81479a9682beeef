#include "traces/primes.h"

namespace engramsim {

namespace {

uint64_t mul_mod(uint64_t a, uint64_t b, uint64_t m) {
    return static_cast<uint64_t>(static_cast<unsigned __int128>(a) * b % m);
}

uint64_t pow_mod(uint64_t base, uint64_t exp, uint64_t m) {
    uint64_t result = 1;
    base %= m;
    for (; exp; exp >>= 1) {
        if (exp & 1) result = mul_mod(result, base, m);
        base = mul_mod(base, base, m);
    }
    return result;
}

}  // namespace

bool is_prime(uint64_t n) {
    if (n < 2) return false;
    constexpr uint64_t kSmall[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    for (uint64_t p : kSmall) {
        if (n == p) return true;
        if (n % p == 0) return false;
    }
    uint64_t d = n - 1;
    int s = 0;
    while ((d & 1) == 0) d >>= 1, ++s;
    // These twelve bases decide primality for all n < 3.3e24 (Sorenson & Webster 2015).
    for (uint64_t a : kSmall) {
        uint64_t x = pow_mod(a, d, n);
        if (x == 1 || x == n - 1) continue;
        bool composite = true;
        for (int r = 1; r < s && composite; ++r) {
            x = mul_mod(x, x, n);
            if (x == n - 1) composite = false;
        }
        if (composite) return false;
    }
    return true;
}

uint64_t next_distinct_prime(uint64_t start, const std::unordered_set<uint64_t>& taken) {
    for (uint64_t candidate = start + 1;; ++candidate)
        if (is_prime(candidate) && !taken.contains(candidate)) return candidate;
}

}  // namespace engramsim
