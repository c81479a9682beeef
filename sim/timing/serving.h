// The serving loop on SimGrid: one engine actor on the GPU runs each planned step's program
// (sim/timing/plan.h) step after step, as nano-vLLM's engine loop does; each issued fetch is an actor
// on the host that moves its bytes over the platform's links (sim/timing/platform.h) and does its host
// work there; the engine waits for a fetch at its Engram layer. SimGrid (S4U, CM02 with exact
// link semantics) decides when everything happens and how contending transfers share links.
// Under tensor parallelism (Plan::tensor_parallel > 1) the one engine actor drives every GPU in
// lockstep: segments are one GPU's time, collectives run as comms between the GPU hosts
// (sim/timing/collectives.h), and each issue starts one fetch actor per GPU, ready when the last is.
// Under data parallelism (Plan::replicas, sim.data_parallel > 1) each replica has its own engine
// actor on its own GPU, all in one SimGrid engine: their fetches share the host (a multicore
// host of Plan::host_cores cores), the PCIe switch uplinks and the drives.
//
// SimGrid allows one engine per process, so simulate() may run once per process;
// simulate_forked() runs it in a forked child and returns its result, so a study can run any
// number of configurations (each simulation also gets a clean engine: no state leaks between
// runs, and results are byte-identical whatever ran before).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/timing/plan.h"

namespace engramsim::sim {

struct FetchRecord {
    double issue_s = 0;   // fetch issued (>= its step's start: causality)
    double ready_s = 0;   // rows in HBM
    double needed_s = 0;  // GPU reached the Engram layer
};

// One collective as the engine ran it (TP > 1 only): its step, its place among that step's
// collectives (program order, step_program) and the SimGrid clock when the engine started it
// and when its last comm arrived.
struct CollectiveRecord {
    uint32_t step = 0, index = 0;
    double start_s = 0, end_s = 0;
};

struct DesResult {
    std::vector<double> step_start_s, step_end_s;
    std::vector<std::vector<FetchRecord>> fetch;  // [step][fetch]
    std::vector<CollectiveRecord> collectives;    // every collective run, in order (simulate)
    double makespan_s = 0;
    uint64_t activities = 0;  // SimGrid activities started (execs, sleeps, comms)
    // Data parallelism (Plan::replicas): each replica's steps, fetches and makespan, in replica
    // order; the fields above then hold no steps, makespan_s is the latest replica's end and
    // activities the total.
    std::vector<DesResult> replicas;
};

DesResult simulate(const Plan& plan);
DesResult simulate_forked(const Plan& plan);

// The same run without SimGrid: step times from each step's operator-DAG critical path, steps
// back to back. Equal to simulate() whenever no two transfers or host works overlap.
DesResult analytic(const Plan& plan);

}  // namespace engramsim::sim
