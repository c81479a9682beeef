// Fetch mechanisms: how one step's Engram rows get from host DRAM into HBM. Each is a named,
// parameterised model that turns a step's lookups into work for the simulator: host CPU time,
// bytes on each link direction, and fixed delays. Registered by name; make_fetch_mechanism
// fails with the list of names.
//
//   cpu-gather  host threads gather the step's unique rows from the table into pinned staging
//               (random DRAM reads: latency-bound by TLB misses and page walks, or bandwidth-
//               bound), then one DMA copy host -> GPU.
//   uva         a GPU kernel reads each unique row from pinned host memory through unified
//               virtual addressing: many small PCIe reads (per-read TLP overhead), at most
//               `uva_outstanding_reads` in flight, each a round trip of the link latency.
//   nvme        the table is on the NVMe drives: each unique row is one I/O of nvme_io_size,
//               spread evenly over the drives, bounded by each drive's IOPS and by queue depth
//               / latency (Little's law); the rows land in pinned host staging, then one DMA
//               copy host -> GPU. Rows host DRAM holds (FetchInput::dram_rows: the whole table,
//               or a DRAM cache's hits) are not read from the drives: host threads gather them
//               into the staging as cpu-gather does, after the drives' reads (not overlapped).
// With hashing on the GPU, cpu-gather and nvme first copy the row ids GPU -> host.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sim/platform.h"

namespace engramsim::sim {

// One fetch: one Engram layer of one step.
struct FetchInput {
    double tokens = 0;       // tokens the step feeds
    double lookups = 0;      // rows read, repeats included (tokens x heads)
    double unique_rows = 0;  // rows fetched (repeats within a step fetched once)
    double row_bytes = 0;
    // nvme: rows of unique_rows that host DRAM holds (gathered, not read from the drives).
    // The other mechanisms read every row from DRAM and ignore it.
    double dram_rows = 0;
};

// The work of one fetch, in the order it happens.
struct FetchWork {
    double d2h_wire_bytes = 0;  // row ids to the host (hashing on GPU + cpu-gather)
    double host_s = 0;          // host CPU: hashing, gathering
    double fixed_s = 0;         // copy setup, kernel launch, latency-bound excess
    double nvme_bytes_per_drive = 0;  // read from each drive into the host (nvme)
    double nvme_read_bytes = 0;       // read from all drives: rows read x nvme_io_size (nvme)
    double h2d_wire_bytes = 0;  // everything the host link carries to the GPU
    double payload_bytes = 0;   // rows delivered (no protocol overhead)
};

struct FetchParams {
    bool hash_on_gpu = false;
    double hash_rate_per_thread = 1.08e9;  // row ids / s
    int hash_threads = 1;
    int gather_threads = 16;
    double row_access_latency_s = 250e-9;
    int outstanding_per_thread = 2;
    double dram_bytes_per_s = 0;
    double dma_setup_s = 5e-6;
    double uva_read_granularity = 64;
    int uva_outstanding_reads = 768;
    double link_bytes_per_s = 0;
    double link_latency_s = 0;
    double kernel_floor_s = 3e-6;
    PcieModel pcie;
    int nvme_drives = 0;
    double nvme_iops_per_drive = 0;
    double nvme_read_bytes_per_s = 0;  // per drive
    double nvme_latency_s = 0;
    double nvme_io_bytes = 4096;
    int nvme_queue_depth = 128;
};

class FetchMechanism {
public:
    virtual ~FetchMechanism() = default;
    virtual std::string name() const = 0;
    virtual FetchWork plan(const FetchInput& in) const = 0;
};

std::unique_ptr<FetchMechanism> make_fetch_mechanism(const std::string& name,
                                                     const FetchParams& params);
std::vector<std::string> fetch_mechanism_names();

// Average 64-byte lines a row of `row_bytes` touches at a uniformly random row index.
double lines_per_row(double row_bytes, double line_bytes = 64);

}  // namespace engramsim::sim
