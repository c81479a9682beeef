// Primality and the Engram table-size rule: each (layer, order, head) table has a distinct prime
// size, the next prime above the previous head's (starting at engram_vocab_size[n-2] - 1) that
// no earlier (layer, order, head) has taken, visited in order layers -> orders -> heads.
#pragma once

#include <cstdint>
#include <unordered_set>

namespace engramsim {

// Deterministic Miller-Rabin, exact for every 64-bit n.
bool is_prime(uint64_t n);

// The smallest prime p > start with p not in `taken` (the demo's find_next_prime).
uint64_t next_distinct_prime(uint64_t start, const std::unordered_set<uint64_t>& taken);

}  // namespace engramsim
