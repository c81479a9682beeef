// Collectives among the tensor-parallel GPUs (model/tensor_parallel.h), as real SimGrid comms
// between the GPU hosts over the platform's NVLink / NVSwitch links, so they contend with
// anything else on those links. B is the whole tensor, c = ceil(B / TP) bytes one chunk:
//   all-reduce  ring (reduce-scatter, then all-gather): 2 (TP - 1) steps; in each, GPU i sends
//               one chunk to GPU (i + 1) mod TP, all at once, and the next step starts when all
//               have arrived
//   all-gather  ring: TP - 1 such steps
//   gather      every GPU but gpu0 sends its chunk to gpu0 at once (they share gpu0's link
//               from the NVSwitch)
// On idle links, with every GPU-to-GPU route GPU -> NVSwitch -> GPU (two links of latency L
// and bandwidth W): all-reduce 2 (TP - 1) x (2L + c / W), all-gather (TP - 1) x (2L + c / W),
// gather 2L + (TP - 1) x c / W (collective_seconds; tests/fidelity/test_collectives.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "model/tensor_parallel.h"
#include "sim/timing/platform.h"

namespace simgrid::s4u {
class Host;
}

namespace engramsim::sim {

// Bytes of one chunk: ceil(B / TP).
uint64_t collective_chunk_bytes(const Collective& c, int tp);

// Runs the collective from the calling SimGrid actor and returns when it has completed;
// returns the number of activities started. `coalesced` (sim.collective_comms = coalesced):
// a ring's steps become one sleep of (steps - 1) route latencies and one comm of steps x c bytes
// per GPU: the same time on idle links, steps x TP times fewer activities, but the bytes of
// all steps compete for a link at once (no per-step barrier).
uint64_t run_collective(const std::vector<simgrid::s4u::Host*>& gpus, const Collective& c,
                        bool coalesced = false);

// The collective's time on idle links, from the platform's routes between `gpus`.
double collective_seconds(const Platform& platform, const std::vector<int>& gpus,
                          const Collective& c);

// Adds the wire bytes the collective puts on each link (indexed like platform.links()).
void add_collective_link_bytes(const Platform& platform, const std::vector<int>& gpus,
                               const Collective& c, std::vector<double>& link_bytes);

}  // namespace engramsim::sim
