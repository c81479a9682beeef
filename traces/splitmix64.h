// SplitMix64 (Steele, Lea and Flood 2014): the 64-bit finaliser the synthetic generator and the
// host fetch executor draw their deterministic streams from.
#pragma once

#include <cstdint>

namespace engramsim {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

}  // namespace engramsim
