// What a serving run reports, computed from the plan and the simulator's times: throughput as
// the engine counts it (output tokens / makespan, nano-vLLM bench.py), TTFT and TPOT per
// request, the step-time breakdown (GPU compute, exposed fetch stall, fetch hidden under
// compute), link utilisation and rows per tier. Written as versioned JSON (results.json) and as
// a Chrome-trace / Perfetto timeline.
#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sim/timing/plan.h"
#include "sim/timing/serving.h"

namespace engramsim::sim {

inline constexpr int kResultsSchemaVersion = 1;

struct RunMetrics {
    double makespan_s = 0;
    double throughput_tok_per_s = 0;  // output tokens / makespan
    double ttft_mean_s = 0, ttft_p50_s = 0, ttft_p99_s = 0;
    double tpot_mean_s = 0, tpot_p50_s = 0, tpot_p99_s = 0;
    double compute_s = 0;        // GPU busy, all steps
    double stall_s = 0;          // GPU waiting for fetches
    double host_exposed_s = 0;   // GPU waiting for the engine's host work between steps
    double hidden_fetch_s = 0;   // fetch time overlapped with compute
    double fetch_s = 0;          // issue -> ready, summed
    uint64_t steps = 0, prefill_steps = 0;
    uint64_t mixed_steps = 0;  // prefill steps that also decode (chunked prefill)
    uint64_t lookups = 0, unique_rows = 0;
    double payload_bytes = 0, h2d_wire_bytes = 0, d2h_wire_bytes = 0;
    double nvme_read_bytes = 0;  // read from the drives (rows x sim.nvme_io_size), all GPUs
    double h2d_utilization = 0, d2h_utilization = 0;  // wire bytes / (bandwidth x makespan)
    uint64_t rows_from_hbm = 0, rows_from_host_dram = 0, rows_from_nvme = 0;
    // Tensor parallelism: the degree, each GPU's links (wire bytes / (bandwidth x makespan)):
    // its own host link leg per direction and its NVLink pair to the NVSwitch; and every
    // non-drive link by name (PCIe switch uplinks included). h2d/d2h_utilization above are
    // gpu0's; h2d/d2h_wire_bytes are summed over the GPUs.
    int tensor_parallel = 1;
    struct GpuLinks {
        std::string gpu;
        double host_h2d = 0, host_d2h = 0, nvlink_up = 0, nvlink_down = 0;
    };
    std::vector<GpuLinks> per_gpu;
    std::vector<std::pair<std::string, double>> per_link;  // platform link order
    // Data parallelism (sim.data_parallel = D > 1): D replicas, each on its own GPU (per_gpu
    // then has gpu0..gpu{D-1}'s links; per_link sums every replica's bytes; utilisations are
    // over the run's makespan, the latest replica's end). Each replica's own makespan, steps
    // and requests. D = 1: data_parallel 1 and no replicas (results.json unchanged).
    int data_parallel = 1;
    struct Replica {
        std::string gpu;
        double makespan_s = 0, stall_s = 0;
        uint64_t steps = 0, prefill_steps = 0, requests = 0, output_tokens = 0, preemptions = 0;
    };
    std::vector<Replica> replicas;
};

RunMetrics compute_metrics(const Plan& plan, const DesResult& des);

// results.json: schema_version, units, machine (where the simulator ran), the resolved config,
// the metrics, and `extra` (comparisons such as overheads) merged in at the top level.
nlohmann::json results_json(const Plan& plan, const RunMetrics& m,
                            const nlohmann::json& extra = nlohmann::json::object());

nlohmann::json metrics_json(const RunMetrics& m);

// The serving metrics an engine measures too (tok/s, mean step, TTFT and TPOT means, stall,
// makespan, steps), flat, in seconds: what a prediction is compared on (validate serving, the
// step plan's `prediction`).
nlohmann::json serving_metrics_json(const RunMetrics& m);

// Chrome trace format (chrome://tracing, ui.perfetto.dev): one track for the GPU stream (steps,
// stalls), one per fetch for the host and link. Under tensor parallelism (TP > 1) a third GPU
// track, "collectives", holds one slice per collective the engine ran (DesResult::collectives,
// SimGrid clock at its start and completion), named by kind (all-reduce, all-gather, gather),
// args: step, op list (embed, layer, engram, head), layer, index in the step, the kernel it
// follows, bytes (whole tensor), chunk_bytes, tp. TP = 1 writes the same bytes as before.
// Under data parallelism each replica k gets its own pair of processes: "gpuk stream" (steps,
// stalls) and "Engram fetch: host and link, gpuk".
void write_timeline(const Plan& plan, const DesResult& des, std::ostream& out);

// The simulator host, for results' "machine" section: OS, CPU model, SimGrid version.
nlohmann::json machine_json();

}  // namespace engramsim::sim
