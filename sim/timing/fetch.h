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
//   remote-gather  the table is sharded evenly over M remote memory servers (sim.table
//               remote-dram): the row ids are hashed on the GPU node (host threads, or the GPU
//               with sim.hashing gpu) and each memory node receives its share, lookups / M ids of
//               4 B (one message each, all at once; bytes per node rounded up); each memory
//               node's gather threads gather its unique_rows / M rows into a send buffer (as
//               cpu-gather, with that node's DRAM bandwidth); each then RDMA-writes them straight into HBM (GPUDirect RDMA:
//               one message of the payload, memI -> netswitch -> host NIC -> GPU link), all
//               memory nodes at once, sharing the GPU node's NIC and host link. Messages carry the
//               payload only (no RDMA, InfiniBand/RoCE or PCIe TLP overhead, no per-message setup).
// With hashing on the GPU, cpu-gather and nvme first copy the row ids GPU -> host.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sim/timing/platform.h"

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
    double fixed_s = 0;  // copy setup, kernel launch, latency-bound excess, a drive fetch's dispatch
    double nvme_bytes_per_drive = 0;  // read from each drive into the host (nvme)
    // nvme: each drive's busy time for its reads at its I/O rate (I/Os / IOPS), after the
    // route latency; a read ends when both its bytes and its I/Os are through, and a drive
    // serves overlapping reads (data-parallel replicas) in turn.
    double nvme_io_s = 0;
    double nvme_read_bytes = 0;       // read from all drives: rows read x nvme_io_size (nvme)
    // nvme: host CPU the reads cost while in flight (hardware.nvme.cpu_per_read x reads), on
    // the host's cores beside whatever else runs there.
    double nvme_cpu_s = 0;
    double h2d_wire_bytes = 0;  // everything the host link carries to the GPU
    bool gpu_kernel = false;    // uva: a kernel on the GPU reads the rows (it holds SMs meanwhile)
    double payload_bytes = 0;   // rows delivered (no protocol overhead)
    // remote-gather: per memory node, all nodes at once and alike: the row ids it receives
    // (from the GPU with hashing on the GPU, else from the host), its gather, the rows it sends
    // to the GPU.
    double remote_ids_bytes_per_node = 0;
    bool remote_ids_from_gpu = false;
    double remote_gather_s = 0;
    double net_bytes_per_node = 0;
};

struct FetchParams {
    bool hash_on_gpu = false;
    double hash_rate_per_thread = 1.08e9;  // row ids / s
    int hash_threads = 1;
    // Row ids one host thread deduplicates per second (a step's repeats are fetched once); 0:
    // deduplication not modeled. The hash_threads do it, after hashing.
    double dedup_rate_per_thread = 0;
    int gather_threads = 16;
    // Per fetch, beyond its rows: waking the idle gather threads, joining them, caches and TLBs
    // others used meanwhile.
    double gather_dispatch_s = 0;
    double row_access_latency_s = 250e-9;
    double outstanding_per_thread = 2;
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
    double nvme_cpu_per_read_s = 0;  // host CPU per read (hardware.nvme.cpu_per_read)
    double nvme_fetch_dispatch_s = 0;  // fixed, per fetch that reads a drive (sim.nvme_fetch_dispatch)
    double nvme_io_bytes = 4096;
    int nvme_queue_depth = 128;
    // sim.nvme_queueing; Measured interpolates nvme_iops_at_depth (hardware.nvme.iops_at_depth).
    enum class NvmeQueueing { Knee, Linear, Measured };
    NvmeQueueing nvme_queueing = NvmeQueueing::Knee;
    std::vector<std::pair<double, double>> nvme_iops_at_depth;  // (depth, reads/s), by depth
    // hardware.gpu.kind host-cpu: the compute reads the gathered rows where they are (host
    // staging), so cpu-gather copies nothing over a link and sets up no DMA.
    bool rows_stay_on_host = false;
    // With rows_stay_on_host: what a fetch issued before its Engram layer costs the compute,
    // idled before the layer (sim.fetch_wake_penalty; PlannedFetch::compute_penalty_s).
    double fetch_wake_penalty_s = 0;
    // And per read from the drive of such a fetch (sim.fetch_wake_penalty_per_read).
    double fetch_wake_penalty_per_read_s = 0;
    int memory_nodes = 0;              // remote-gather: memory servers holding the table
    double memory_node_dram_bytes_per_s = 0;  // each one's DRAM bandwidth
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

// Host threads gathering `rows` random rows from DRAM into pinned staging (the host work of
// cpu-gather, nvme's DRAM-held rows and remote-gather after hashing): a fixed cost per fetch
// (gather_dispatch_s: idle threads woken, cold caches), then latency-bound, each of `gather_threads` threads keeping
// `outstanding_per_thread` reads of `row_access_latency_s` in flight, or DRAM-bound (touched
// 64-B lines read, staging written, at dram_bytes_per_s).
// `engramsim validate host-fetch` compares it with the gather executed on this machine.
double gather_seconds(const FetchParams& p, double rows, double row_bytes);
// Host threads (hash_threads) dropping a step's repeated row ids: lookups / rate.
double dedup_seconds(const FetchParams& p, double lookups);

// Reads per second one drive serves with nvme_queue_depth Q reads in flight, from its rated
// IOPS (the saturated rate) and its one-read latency L: knee, min(IOPS, Q / L); linear, Q / (L +
// (Q - 1) / IOPS), every read also waiting for the others at the saturated rate (equal at Q = 1);
// measured, the drive's measured rates at several depths, with the time a read spends in the
// queue (Q / rate) interpolated linearly in Q between them (so samples of either law above give
// that law back exactly), proportional to Q below the first depth and flat above the last.
double nvme_read_rate(const FetchParams& p);

// Average 64-byte lines a row of `row_bytes` touches at a uniformly random row index.
double lines_per_row(double row_bytes, double line_bytes = 64);

}  // namespace engramsim::sim
