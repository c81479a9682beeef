// The simulated machine: GPU(s) with HBM, the host (CPU sockets and DRAM), NVMe drives, and the
// links between them, one per direction. The topology is a Boost.Graph directed graph; the
// route between two nodes is its shortest path by latency (hops break ties), and SimGrid gets
// exactly those routes. Links carry exact bytes/latency semantics (sim/timing/link_probe.h): N bytes on
// an idle link take latency + N / bandwidth; flows on a link share it equally.
//
// PCIe links carry the raw per-direction rate of the preset; what a transfer costs on the wire
// (TLP framing and headers, DLLPs) is added to its bytes by PcieModel, so small payloads pay
// their real transaction overhead. Wire bytes are whole bytes (rounded up). An NVLink-C2C host
// link carries the payload only (its flit overhead is not modeled).
//
// Tensor parallelism (sim.tensor_parallel = TP > 1, hardware.gpu.count >= TP): nodes gpu0..gpu{TP-1},
// each with its own host link pair; with host_link.gpus_per_switch = G > 1 (HGX boards: 2) GPU i
// sits behind PCIe switch node pcie_switch{i / G}, whose one uplink pair to the host carries the
// preset's bandwidth and latency and is shared by its GPUs (each GPU's leg to the switch: same
// bandwidth, zero latency, so one GPU alone on a switch sees exactly the direct link); an
// NVSwitch node joins the GPUs, link pair nvlinkI.up / nvlinkI.down per GPU at
// hardware.nvlink.bandwidth_per_direction and hardware.nvlink.latency per hop. TP = 1 builds
// exactly the one-GPU platform (gpu0, host, nvme*, pcie0.* or c2c0.*, nvme*.*).
//
// Remote memory (sim.table remote-dram, memory_nodes = M >= 1): nodes mem0..mem{M-1} (each with
// the host's DRAM capacity and bandwidth) and a node netswitch; link pairs memI.up / memI.down
// (memI <-> netswitch) and nic0.tx / nic0.rx (host <-> netswitch: the GPU node's NIC) at
// hardware.network.bandwidth_per_direction, each with half of hardware.network.latency (NIC to NIC
// through the switch). GPUDirect RDMA: the NIC sits on the GPU's PCIe, so a memory node's bytes
// take memI.up, nic0.rx, then the GPU's own host link (pcie0.h2d): the route memI -> netswitch ->
// host -> gpu0. Without remote memory none of this is built (the platform is as before).
//
// Routes never transit a GPU, and a route between two GPUs never crosses a PCIe switch (GPU
// traffic takes NVLink, as NCCL routes it when NVLink is present).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace engramsim::sim {

enum class NodeKind { Gpu, Host, Nvme, PcieSwitch, NvSwitch, MemoryNode, NetSwitch };

struct Node {
    std::string name;  // "gpu0", "host", "nvme0"
    NodeKind kind = NodeKind::Gpu;
    double memory_bytes = 0;          // HBM or DRAM capacity (0 for drives' own cache)
    double memory_bytes_per_s = 0;    // HBM or DRAM bandwidth
};

struct LinkDesc {
    std::string name;  // "pcie0.h2d"
    std::string kind;  // "pcie", "nvlink-c2c", "nvme", "nvlink", "network"
    int from = 0, to = 0;  // node indices
    double bandwidth_bytes_per_s = 0;
    double latency_s = 0;
};

// Bytes on the wire of a PCIe transfer (per direction): each TLP carries up to max_payload
// bytes and tlp_overhead bytes of framing, header, sequence number and LCRC; DLLPs take a
// further share of the link time.
struct PcieModel {
    double tlp_overhead_bytes = 24;
    double max_payload_bytes = 256;
    double dllp_overhead = 0.04;
    // One bulk transfer of `payload` bytes (a DMA copy).
    double bulk_wire_bytes(double payload) const;
    // `requests` separate reads of `bytes_each` (<= max_payload) each.
    double small_wire_bytes(double requests, double bytes_each) const;
};

class Platform {
public:
    // From a resolved "hardware" section: gpu0 (HBM), host (all sockets' DRAM), nvme0..n-1; a
    // host link per direction (PCIe or NVLink-C2C), one link per drive to the host.
    // `tensor_parallel` GPUs are modeled (1 <= it <= hardware.gpu.count, else a ConfigError
    // naming sim.tensor_parallel).
    // `memory_nodes` > 0 adds that many remote memory servers behind a network switch (see
    // above); 0 builds no network.
    static Platform from_hardware(const nlohmann::json& hardware, PcieModel pcie = {},
                                  int tensor_parallel = 1, int memory_nodes = 0);

    int add_node(Node n);
    int add_link(LinkDesc l);  // a directed link
    const std::vector<Node>& nodes() const { return nodes_; }
    const std::vector<LinkDesc>& links() const { return links_; }
    int node(const std::string& name) const;  // throws naming the known nodes
    std::vector<int> gpus() const;            // GPU node indices, gpu0 first
    std::vector<int> memory_nodes() const;    // remote memory servers, mem0 first
    // Link indices from `from` to `to` along the shortest path; throws when unreachable.
    // Computed once per pair and kept (the cache is shared by copies, safe across threads, and
    // dropped when a node or link is added).
    std::vector<int> route(int from, int to) const;
    // Idle-link time of `bytes` along a route: sum of latencies + bytes / min bandwidth.
    double transfer_s(const std::vector<int>& route, double bytes) const;

    const PcieModel& pcie() const { return pcie_; }
    nlohmann::json to_json() const;

private:
    std::vector<Node> nodes_;
    std::vector<LinkDesc> links_;
    PcieModel pcie_;
    struct RouteCache {
        std::mutex mutex;
        std::map<std::pair<int, int>, std::vector<int>> routes;
    };
    std::shared_ptr<RouteCache> routes_ = std::make_shared<RouteCache>();
    std::vector<int> shortest_path(int from, int to) const;
};

}  // namespace engramsim::sim
