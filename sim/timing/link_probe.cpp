#include "sim/timing/link_probe.h"

#include <simgrid/s4u.hpp>

#include <stdexcept>

namespace sg4 = simgrid::s4u;

namespace engramsim::sim {

std::vector<std::string> exact_network_options() {
    return {"--cfg=network/model:CM02",
            "--cfg=network/latency-factor:1",
            "--cfg=network/bandwidth-factor:1",
            "--cfg=network/TCP-gamma:0",
            "--cfg=network/crosstraffic:0",
            "--log=root.thresh:warning"};
}

std::vector<double> simulate_link(const LinkSpec& spec, const std::vector<Transfer>& transfers) {
    if (sg4::Engine::is_initialized())
        throw std::logic_error("simulate_link: SimGrid allows one engine per process");
    std::vector<std::string> args = {"engramsim"};
    for (auto& o : exact_network_options()) args.push_back(o);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    int argc = int(argv.size());
    sg4::Engine engine(&argc, argv.data());

    auto* zone = sg4::create_full_zone("link");
    auto* a = zone->create_host("A", 1e9);
    auto* b = zone->create_host("B", 1e9);
    auto* link = zone->create_link("L", spec.bandwidth_bytes_per_s)->set_latency(spec.latency_s);
    link->seal();
    zone->add_route(a->get_netpoint(), b->get_netpoint(), nullptr, nullptr,
                    {sg4::LinkInRoute(link)}, true);
    zone->seal();

    std::vector<double> done(transfers.size(), -1);
    for (size_t i = 0; i < transfers.size(); ++i) {
        sg4::Actor::create("sender" + std::to_string(i), a, [&, i] {
            sg4::this_actor::sleep_until(transfers[i].start_s);
            sg4::Comm::sendto(a, b, transfers[i].bytes);
            done[i] = sg4::Engine::get_clock();
        });
    }
    engine.run();
    return done;
}

}  // namespace engramsim::sim
