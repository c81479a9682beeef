// Python's `random` module (CPython's Mersenne Twister) for the draws nano-vLLM's benchmark
// makes: random.seed(int) and random.randint(a, b). Reproducing it bit for bit makes the
// paper's Table 4 workload (nano-vLLM bench.py) the very same prompts and lengths.
#pragma once

#include <cstdint>

namespace engramsim::python {

class Random {
public:
    // random.seed(n) for a non-negative integer n below 2^64 (init_by_array on its 32-bit words).
    explicit Random(uint64_t seed);

    // genrand_uint32: the next 32-bit Mersenne Twister output.
    uint32_t getrandbits32();
    // random.getrandbits(k), 1 <= k <= 32.
    uint32_t getrandbits(int k) { return getrandbits32() >> (32 - k); }
    // random.randint(a, b): uniform in [a, b], by rejection on getrandbits(bit_length(b - a + 1)).
    int64_t randint(int64_t a, int64_t b);

private:
    static constexpr int kN = 624;
    uint32_t mt_[kN];
    int index_ = kN;
};

}  // namespace engramsim::python
