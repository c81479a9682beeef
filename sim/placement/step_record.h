// What placement replay hands the timing simulator: for each engine step and Engram layer, where
// the step's rows were served from and what had to move between tiers. A plain struct; counts
// are rows (every row of the table has the same size), bytes are rows x row_bytes.
//
// Within a (step, layer) a row read several times is fetched once: unique_rows counts the
// distinct rows, and hbm_hits + dram_rows + ssd_rows == unique_rows.
#pragma once

#include <cstdint>

namespace engramsim::placement {

struct StepRecord {
    uint64_t step = 0;              // engine step index (StepBatch::step)
    uint32_t layer = 0;             // index into LookupLayout::layer_ids (not the layer id)
    uint64_t lookups = 0;           // row reads by the step's tokens, repeats included
    uint64_t unique_rows = 0;       // distinct rows among them
    uint64_t hbm_hits = 0;          // unique rows served from the HBM cache
    uint64_t dram_rows = 0;         // unique rows read from host DRAM (then sent to the GPU)
    uint64_t ssd_rows = 0;          // unique rows read from NVMe (SSD -> host -> GPU)
    uint64_t promoted_rows = 0;     // rows admitted into the HBM cache
    uint64_t evicted_rows = 0;      // rows the HBM cache dropped to make room
    uint64_t demoted_rows = 0;      // exclusive tiers: HBM victims written back to DRAM
    uint64_t invalidated_rows = 0;  // inclusive tiers: HBM rows dropped because DRAM evicted them
    double host_to_gpu_bytes = 0;   // over PCIe / C2C: (dram_rows + ssd_rows) x row_bytes
    double ssd_to_host_bytes = 0;   // NVMe reads: ssd_rows x row_bytes
    double gpu_to_host_bytes = 0;   // write-backs: demoted_rows x row_bytes
};

}  // namespace engramsim::placement
