// Transfers over one modeled link, timed by SimGrid: the smallest complete use of the engine,
// and the place where its link semantics are pinned down. EngramSim configures SimGrid's CM02
// network model with TCP effects removed (no latency/bandwidth factors, no TCP window bound, no
// cross-traffic), so a link of bandwidth B and latency L delivers N bytes on an idle link at
// exactly L + N / B, and flows that share a link share its bandwidth equally.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engramsim::sim {

struct LinkSpec {
    double bandwidth_bytes_per_s = 0;
    double latency_s = 0;
};

struct Transfer {
    double start_s = 0;   // when the sender starts it
    uint64_t bytes = 0;
};

// SimGrid options that give links exact bytes/latency semantics (see above).
std::vector<std::string> exact_network_options();

// Simulates every transfer from host A to host B over one link and returns each one's
// completion time (seconds). SimGrid allows one engine per process: this may be called once.
std::vector<double> simulate_link(const LinkSpec& link, const std::vector<Transfer>& transfers);

}  // namespace engramsim::sim
