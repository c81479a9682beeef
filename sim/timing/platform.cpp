#include "sim/timing/platform.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/config.h"

namespace engramsim::sim {

using units::Dim;

double PcieModel::bulk_wire_bytes(double payload) const {
    if (payload <= 0) return 0;
    const double tlps = std::ceil(payload / max_payload_bytes);
    return std::ceil((payload + tlps * tlp_overhead_bytes) * (1 + dllp_overhead));
}

double PcieModel::small_wire_bytes(double requests, double bytes_each) const {
    const double tlps_each = std::ceil(bytes_each / max_payload_bytes);
    return std::ceil(requests * (bytes_each + tlps_each * tlp_overhead_bytes) * (1 + dllp_overhead));
}

namespace {
// Remote memory servers behind one network switch; the GPU node's NIC joins the host.
void add_network(Platform& p, const nlohmann::json& hw, int host, int memory_nodes) {
    const auto& net = hw.at("network");
    const double bw = config::quantity(net, "bandwidth_per_direction", Dim::Bandwidth);
    const double half = config::quantity(net, "latency", Dim::Time) / 2;  // per NIC-switch link
    const auto& h = hw.at("host");
    const double dram = config::quantity(h, "dram_capacity", Dim::Bytes);
    const double dram_bw = config::quantity(h, "dram_bandwidth", Dim::Bandwidth);
    const int sw = p.add_node({"netswitch", NodeKind::NetSwitch, 0, 0});
    p.add_link({"nic0.tx", "network", host, sw, bw, half});
    p.add_link({"nic0.rx", "network", sw, host, bw, half});
    for (int i = 0; i < memory_nodes; ++i) {
        const std::string name = "mem" + std::to_string(i);
        const int m = p.add_node({name, NodeKind::MemoryNode, dram, dram_bw});
        p.add_link({name + ".up", "network", m, sw, bw, half});
        p.add_link({name + ".down", "network", sw, m, bw, half});
    }
}
}  // namespace

Platform Platform::from_hardware(const nlohmann::json& hw, PcieModel pcie, int tp,
                                 int memory_nodes) {
    Platform p;
    p.pcie_ = pcie;
    const auto& gpu = hw.at("gpu");
    const int gpu_count = gpu.at("count").get<int>();
    if (tp < 1 || tp > gpu_count)
        throw config::ConfigError("sim.tensor_parallel: " + std::to_string(tp) +
                                  " GPUs; must be >= 1 and <= hardware.gpu.count (" +
                                  std::to_string(gpu_count) + ")");
    const double hbm = config::quantity(gpu, "hbm_capacity", Dim::Bytes);
    const double hbm_bw = config::quantity(gpu, "hbm_bandwidth", Dim::Bandwidth);
    const int g = p.add_node({"gpu0", NodeKind::Gpu, hbm, hbm_bw});
    const auto& host = hw.at("host");
    const int h = p.add_node({"host", NodeKind::Host,
                              config::quantity(host, "dram_capacity", Dim::Bytes),
                              config::quantity(host, "dram_bandwidth", Dim::Bandwidth)});
    const auto& hl = hw.at("host_link");
    const std::string kind = hl.at("kind").get<std::string>();
    const double bw = config::quantity(hl, "bandwidth_per_direction", Dim::Bandwidth);
    const double lat = config::quantity(hl, "latency", Dim::Time);
    const std::string prefix = kind == "pcie" ? "pcie" : "c2c";
    const int per_switch = hl.value("gpus_per_switch", 1);
    if (per_switch > 1 && kind != "pcie")
        throw config::ConfigError("hardware.host_link.gpus_per_switch: " +
                                  std::to_string(per_switch) + " with kind '" + kind +
                                  "'; PCIe switches apply to kind pcie only");
    const bool switched = tp > 1 && per_switch > 1;
    // NVLink-C2C is a cache-coherent load/store fabric, not PCIe: no TLP/DLLP accounting (its
    // own flit overhead is not modeled; the payload is what crosses).
    if (kind != "pcie") p.pcie_ = PcieModel{0, pcie.max_payload_bytes, 0};
    if (!switched) {
        p.add_link({prefix + "0.h2d", kind, h, g, bw, lat});
        p.add_link({prefix + "0.d2h", kind, g, h, bw, lat});
    }
    const auto& nv = hw.at("nvme");
    const int drives = nv.at("count").get<int>();
    for (int i = 0; i < drives; ++i) {
        const int d = p.add_node({"nvme" + std::to_string(i), NodeKind::Nvme,
                                  config::quantity(nv, "capacity", Dim::Bytes), 0});
        p.add_link({"nvme" + std::to_string(i) + ".read", "nvme", d, h,
                    config::quantity(nv, "read_bandwidth", Dim::Bandwidth),
                    config::quantity(nv, "read_latency", Dim::Time)});
        p.add_link({"nvme" + std::to_string(i) + ".write", "nvme", h, d,
                    config::quantity(nv, "write_bandwidth", Dim::Bandwidth),
                    config::quantity(nv, "read_latency", Dim::Time)});
    }
    if (tp == 1) {
        if (memory_nodes > 0) add_network(p, hw, h, memory_nodes);
        return p;
    }
    if (memory_nodes > 0)
        throw config::ConfigError("sim.tensor_parallel: " + std::to_string(tp) +
                                  " GPUs with sim.table remote-dram; remote memory is modeled "
                                  "for one GPU only (sim.tensor_parallel 1)");

    // Tensor parallelism: the other GPUs, their host links (direct or behind shared PCIe
    // switches), and the NVSwitch.
    std::vector<int> gpus = {g};
    for (int i = 1; i < tp; ++i)
        gpus.push_back(p.add_node({"gpu" + std::to_string(i), NodeKind::Gpu, hbm, hbm_bw}));
    if (switched) {
        std::vector<int> sw;
        for (int s = 0; s * per_switch < tp; ++s) {
            const std::string name = "pcie_switch" + std::to_string(s);
            sw.push_back(p.add_node({name, NodeKind::PcieSwitch, 0, 0}));
            p.add_link({name + ".h2d", kind, h, sw.back(), bw, lat});
            p.add_link({name + ".d2h", kind, sw.back(), h, bw, lat});
        }
        for (int i = 0; i < tp; ++i) {  // the GPU's own x16 leg: no latency of its own
            const int s = sw[size_t(i / per_switch)];
            p.add_link({prefix + std::to_string(i) + ".h2d", kind, s, gpus[size_t(i)], bw, 0});
            p.add_link({prefix + std::to_string(i) + ".d2h", kind, gpus[size_t(i)], s, bw, 0});
        }
    } else {
        for (int i = 1; i < tp; ++i) {
            p.add_link({prefix + std::to_string(i) + ".h2d", kind, h, gpus[size_t(i)], bw, lat});
            p.add_link({prefix + std::to_string(i) + ".d2h", kind, gpus[size_t(i)], h, bw, lat});
        }
    }
    const auto& nvl = hw.at("nvlink");
    const double nv_bw = config::quantity(nvl, "bandwidth_per_direction", Dim::Bandwidth);
    const double nv_lat = config::quantity(nvl, "latency", Dim::Time);
    const int nvs = p.add_node({"nvswitch", NodeKind::NvSwitch, 0, 0});
    for (int i = 0; i < tp; ++i) {
        p.add_link({"nvlink" + std::to_string(i) + ".up", "nvlink", gpus[size_t(i)], nvs, nv_bw,
                    nv_lat});
        p.add_link({"nvlink" + std::to_string(i) + ".down", "nvlink", nvs, gpus[size_t(i)],
                    nv_bw, nv_lat});
    }
    return p;
}

std::vector<int> Platform::gpus() const {
    std::vector<int> out;
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].kind == NodeKind::Gpu) out.push_back(int(i));
    return out;
}

std::vector<int> Platform::memory_nodes() const {
    std::vector<int> out;
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].kind == NodeKind::MemoryNode) out.push_back(int(i));
    return out;
}

int Platform::add_node(Node n) {
    routes_ = std::make_shared<RouteCache>();
    nodes_.push_back(std::move(n));
    return int(nodes_.size() - 1);
}

int Platform::add_link(LinkDesc l) {
    if (l.from < 0 || l.to < 0 || size_t(l.from) >= nodes_.size() ||
        size_t(l.to) >= nodes_.size() || l.from == l.to)
        throw std::invalid_argument("platform: link " + l.name + " joins unknown nodes");
    if (!(l.bandwidth_bytes_per_s > 0) || l.latency_s < 0)
        throw std::invalid_argument("platform: link " + l.name + " needs bandwidth > 0");
    routes_ = std::make_shared<RouteCache>();
    links_.push_back(std::move(l));
    return int(links_.size() - 1);
}

int Platform::node(const std::string& name) const {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].name == name) return int(i);
    std::string known;
    for (const auto& n : nodes_) known += (known.empty() ? "" : ", ") + n.name;
    throw std::invalid_argument("platform: unknown node '" + name + "'; known: " + known);
}

std::vector<int> Platform::route(int from, int to) const {
    std::lock_guard lock(routes_->mutex);
    const auto key = std::make_pair(from, to);
    if (auto it = routes_->routes.find(key); it != routes_->routes.end()) return it->second;
    return routes_->routes[key] = shortest_path(from, to);
}

std::vector<int> Platform::shortest_path(int from, int to) const {
    using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS,
                                        boost::no_property,
                                        boost::property<boost::edge_weight_t, double>>;
    Graph graph(nodes_.size());
    // Routes never transit a GPU; between two GPUs they never cross a PCIe switch (NVLink).
    const bool gpu_to_gpu = nodes_[size_t(from)].kind == NodeKind::Gpu &&
                            nodes_[size_t(to)].kind == NodeKind::Gpu;
    auto usable = [&](const LinkDesc& l) {
        if (nodes_[size_t(l.from)].kind == NodeKind::Gpu && l.from != from) return false;
        if (nodes_[size_t(l.to)].kind == NodeKind::Gpu && l.to != to) return false;
        if (gpu_to_gpu && (nodes_[size_t(l.from)].kind == NodeKind::PcieSwitch ||
                           nodes_[size_t(l.to)].kind == NodeKind::PcieSwitch))
            return false;
        return true;
    };
    for (const auto& l : links_)  // hop cost 1 ns keeps zero-latency routes shortest in hops
        if (usable(l)) boost::add_edge(l.from, l.to, l.latency_s + 1e-9, graph);
    std::vector<Graph::vertex_descriptor> pred(nodes_.size());
    std::vector<double> dist(nodes_.size());
    boost::dijkstra_shortest_paths(graph, from,
                                   boost::predecessor_map(pred.data()).distance_map(dist.data()));
    if (from != to && pred[size_t(to)] == size_t(to))
        throw std::invalid_argument("platform: no route from " + nodes_[size_t(from)].name +
                                    " to " + nodes_[size_t(to)].name);
    std::vector<int> path;
    for (size_t v = size_t(to); v != size_t(from); v = pred[v]) {
        // the cheapest link from pred[v] to v
        int best = -1;
        for (size_t i = 0; i < links_.size(); ++i)
            if (size_t(links_[i].from) == pred[v] && size_t(links_[i].to) == v &&
                usable(links_[i]) && (best < 0 || links_[i].latency_s < links_[size_t(best)].latency_s))
                best = int(i);
        path.push_back(best);
    }
    std::reverse(path.begin(), path.end());
    return path;
}

double Platform::transfer_s(const std::vector<int>& route, double bytes) const {
    double lat = 0, bw = INFINITY;
    for (int l : route) {
        lat += links_[size_t(l)].latency_s;
        bw = std::min(bw, links_[size_t(l)].bandwidth_bytes_per_s);
    }
    return lat + bytes / bw;
}

nlohmann::json Platform::to_json() const {
    nlohmann::json out = {{"nodes", nlohmann::json::array()}, {"links", nlohmann::json::array()}};
    for (const auto& n : nodes_)
        out["nodes"].push_back({{"name", n.name},
                                {"kind", n.kind == NodeKind::Gpu          ? "gpu"
                                         : n.kind == NodeKind::Host       ? "host"
                                         : n.kind == NodeKind::Nvme       ? "nvme"
                                         : n.kind == NodeKind::PcieSwitch ? "pcie-switch"
                                         : n.kind == NodeKind::NvSwitch   ? "nvswitch"
                                         : n.kind == NodeKind::MemoryNode ? "memory-node"
                                                                          : "network-switch"},
                                {"memory_bytes", n.memory_bytes},
                                {"memory_bytes_per_s", n.memory_bytes_per_s}});
    for (const auto& l : links_)
        out["links"].push_back({{"name", l.name}, {"kind", l.kind},
                                {"from", nodes_[size_t(l.from)].name},
                                {"to", nodes_[size_t(l.to)].name},
                                {"bandwidth_bytes_per_s", l.bandwidth_bytes_per_s},
                                {"latency_s", l.latency_s}});
    return out;
}

}  // namespace engramsim::sim
