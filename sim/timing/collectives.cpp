#include "sim/timing/collectives.h"

#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cmath>

namespace sg4 = simgrid::s4u;

namespace engramsim::sim {

uint64_t collective_chunk_bytes(const Collective& c, int tp) {
    return uint64_t(std::ceil(c.bytes / double(tp)));
}

namespace {
int ring_steps(Collective::Kind k, int tp) {
    return k == Collective::Kind::AllReduce   ? 2 * (tp - 1)
           : k == Collective::Kind::AllGather ? tp - 1
                                              : 0;
}
}  // namespace

uint64_t run_collective(const std::vector<sg4::Host*>& gpus, const Collective& c,
                        bool coalesced) {
    const int tp = int(gpus.size());
    if (tp < 2 || c.kind == Collective::Kind::None || !(c.bytes > 0)) return 0;
    const uint64_t chunk = collective_chunk_bytes(c, tp);
    uint64_t comms = 0;
    std::vector<sg4::CommPtr> step;
    if (c.kind == Collective::Kind::Gather) {
        for (int i = 1; i < tp; ++i)
            step.push_back(sg4::Comm::sendto_async(gpus[size_t(i)], gpus[0], chunk));
        sg4::Comm::wait_all(step);
        return uint64_t(tp - 1);
    }
    const int steps = ring_steps(c.kind, tp);
    if (coalesced) {
        double latency = 0;  // the ring's longest neighbour route
        for (int i = 0; i < tp; ++i) {
            std::vector<sg4::Link*> route;
            double l = 0;
            gpus[size_t(i)]->route_to(gpus[size_t((i + 1) % tp)], route, &l);
            latency = std::max(latency, l);
        }
        sg4::this_actor::sleep_for(double(steps - 1) * latency);
        for (int i = 0; i < tp; ++i)
            step.push_back(sg4::Comm::sendto_async(gpus[size_t(i)], gpus[size_t((i + 1) % tp)],
                                                   chunk * uint64_t(steps)));
        sg4::Comm::wait_all(step);
        return uint64_t(tp) + 1;
    }
    for (int s = 0; s < steps; ++s) {
        step.clear();
        for (int i = 0; i < tp; ++i)
            step.push_back(
                sg4::Comm::sendto_async(gpus[size_t(i)], gpus[size_t((i + 1) % tp)], chunk));
        sg4::Comm::wait_all(step);
        comms += uint64_t(tp);
    }
    return comms;
}

double collective_seconds(const Platform& pf, const std::vector<int>& gpus, const Collective& c) {
    const int tp = int(gpus.size());
    if (tp < 2 || c.kind == Collective::Kind::None || !(c.bytes > 0)) return 0;
    const double chunk = double(collective_chunk_bytes(c, tp));
    if (c.kind == Collective::Kind::Gather) {
        double lat = 0, bw = INFINITY;
        for (int i = 1; i < tp; ++i) {
            const auto r = pf.route(gpus[size_t(i)], gpus[0]);
            double l = 0;
            for (int k : r) {
                l += pf.links()[size_t(k)].latency_s;
                bw = std::min(bw, pf.links()[size_t(k)].bandwidth_bytes_per_s);
            }
            lat = std::max(lat, l);
        }
        return lat + double(tp - 1) * chunk / bw;  // the flows share gpu0's last link
    }
    double step = 0;
    for (int i = 0; i < tp; ++i)
        step = std::max(step, pf.transfer_s(pf.route(gpus[size_t(i)], gpus[size_t((i + 1) % tp)]),
                                            chunk));
    return double(ring_steps(c.kind, tp)) * step;
}

void add_collective_link_bytes(const Platform& pf, const std::vector<int>& gpus,
                               const Collective& c, std::vector<double>& link_bytes) {
    const int tp = int(gpus.size());
    if (tp < 2 || c.kind == Collective::Kind::None || !(c.bytes > 0)) return;
    link_bytes.resize(pf.links().size(), 0);
    const double chunk = double(collective_chunk_bytes(c, tp));
    if (c.kind == Collective::Kind::Gather) {
        for (int i = 1; i < tp; ++i)
            for (int k : pf.route(gpus[size_t(i)], gpus[0])) link_bytes[size_t(k)] += chunk;
        return;
    }
    for (int i = 0; i < tp; ++i)
        for (int k : pf.route(gpus[size_t(i)], gpus[size_t((i + 1) % tp)]))
            link_bytes[size_t(k)] += chunk * ring_steps(c.kind, tp);
}

}  // namespace engramsim::sim
