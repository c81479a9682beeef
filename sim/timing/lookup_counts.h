// Per step and Engram layer: how many rows the step's tokens read and how many distinct rows
// that is (a row read twice in one step is fetched once), counted over a lookup source
// (traces/lookups.h: real hashes of the workload's tokens as the scheduler feeds them, history
// included, or a trace file, or the synthetic generator).
#pragma once

#include <cstdint>
#include <vector>

#include "traces/lookups.h"

namespace engramsim::sim {

struct LookupCounts {
    // [step][engram layer index]
    std::vector<std::vector<uint64_t>> lookups;
    std::vector<std::vector<uint64_t>> unique_rows;
};

LookupCounts count_lookups(LookupSource& source);

}  // namespace engramsim::sim
