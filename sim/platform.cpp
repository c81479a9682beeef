#include "sim/platform.h"

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

Platform Platform::from_hardware(const nlohmann::json& hw, PcieModel pcie) {
    Platform p;
    p.pcie_ = pcie;
    const auto& gpu = hw.at("gpu");
    if (gpu.at("count").get<int>() != 1)
        throw config::ConfigError("hardware.gpu.count: the timing simulator models one GPU "
                                  "(the shared PCIe switch uplink of 8-GPU boards is not "
                                  "modeled)");
    const int g = p.add_node({"gpu0", NodeKind::Gpu, config::quantity(gpu, "hbm_capacity",
                                                                      Dim::Bytes),
                              config::quantity(gpu, "hbm_bandwidth", Dim::Bandwidth)});
    const auto& host = hw.at("host");
    const int h = p.add_node({"host", NodeKind::Host,
                              config::quantity(host, "dram_capacity", Dim::Bytes),
                              config::quantity(host, "dram_bandwidth", Dim::Bandwidth)});
    const auto& hl = hw.at("host_link");
    const std::string kind = hl.at("kind").get<std::string>();
    const double bw = config::quantity(hl, "bandwidth_per_direction", Dim::Bandwidth);
    const double lat = config::quantity(hl, "latency", Dim::Time);
    const std::string prefix = kind == "pcie" ? "pcie0" : "c2c0";
    // NVLink-C2C is a cache-coherent load/store fabric, not PCIe: no TLP/DLLP accounting (its
    // own flit overhead is not modeled; the payload is what crosses).
    if (kind != "pcie") p.pcie_ = PcieModel{0, pcie.max_payload_bytes, 0};
    p.add_link({prefix + ".h2d", kind, h, g, bw, lat});
    p.add_link({prefix + ".d2h", kind, g, h, bw, lat});
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
    return p;
}

int Platform::add_node(Node n) {
    nodes_.push_back(std::move(n));
    return int(nodes_.size() - 1);
}

int Platform::add_link(LinkDesc l) {
    if (l.from < 0 || l.to < 0 || size_t(l.from) >= nodes_.size() ||
        size_t(l.to) >= nodes_.size() || l.from == l.to)
        throw std::invalid_argument("platform: link " + l.name + " joins unknown nodes");
    if (!(l.bandwidth_bytes_per_s > 0) || l.latency_s < 0)
        throw std::invalid_argument("platform: link " + l.name + " needs bandwidth > 0");
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
    using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS,
                                        boost::no_property,
                                        boost::property<boost::edge_weight_t, double>>;
    Graph graph(nodes_.size());
    std::vector<Graph::edge_descriptor> edges;
    for (const auto& l : links_)  // hop cost 1 ns keeps zero-latency routes shortest in hops
        edges.push_back(boost::add_edge(l.from, l.to, l.latency_s + 1e-9, graph).first);
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
                (best < 0 || links_[i].latency_s < links_[size_t(best)].latency_s))
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
                                {"kind", n.kind == NodeKind::Gpu    ? "gpu"
                                         : n.kind == NodeKind::Host ? "host"
                                                                    : "nvme"},
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
