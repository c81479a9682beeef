#include "sim/timing/results.h"

#include "sim/timing/collectives.h"

#include <simgrid/s4u.hpp>
#include <simgrid/version.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>

#include "model/statistics.h"

namespace engramsim::sim {

namespace {

// A step on the timeline: a prefill step that also decodes (chunked prefill), a prefill, or a
// decode.
const char* step_kind(const PlannedStep& st) {
    return st.mixed ? "mixed" : st.prefill ? "prefill" : "decode";
}
// Every request's TTFT and TPOT (all arrive at t = 0).
void add_latencies(const Plan& plan, const DesResult& des, std::vector<double>& ttft,
                   std::vector<double>& tpot) {
    for (size_t r = 0; r < plan.first_step.size(); ++r) {
        if (plan.first_step[r] == UINT32_MAX) continue;
        const double first = des.step_end_s[plan.first_step[r]];
        const double last = des.step_end_s[plan.last_step[r]];
        ttft.push_back(first);  // every request arrives at t = 0 (offline benchmark)
        if (plan.output_len[r] > 1) tpot.push_back((last - first) / (plan.output_len[r] - 1));
    }
}

void set_latencies(RunMetrics& m, const std::vector<double>& ttft,
                   const std::vector<double>& tpot) {
    m.ttft_mean_s = mean(ttft), m.ttft_p50_s = nearest_rank_quantile(ttft, 0.5),
    m.ttft_p99_s = nearest_rank_quantile(ttft, 0.99);
    m.tpot_mean_s = mean(tpot), m.tpot_p50_s = nearest_rank_quantile(tpot, 0.5),
    m.tpot_p99_s = nearest_rank_quantile(tpot, 0.99);
}

// Data parallelism: each replica's metrics alone, summed; throughput and utilisations over the
// run's makespan (the latest replica's end); TTFT / TPOT over every request of every replica.
RunMetrics data_parallel_metrics(const Plan& plan, const DesResult& des) {
    RunMetrics m;
    m.makespan_s = des.makespan_s;
    m.throughput_tok_per_s = des.makespan_s > 0 ? double(plan.output_tokens) / des.makespan_s : 0;
    m.data_parallel = plan.data_parallel;
    const Platform& pf = plan.platform;
    const auto& links = pf.links();
    std::vector<double> bytes(links.size(), 0);
    std::vector<double> ttft, tpot;
    for (size_t k = 0; k < plan.replicas.size(); ++k) {
        const Plan& rp = plan.replicas[k];
        const DesResult& rd = des.replicas.at(k);
        const RunMetrics r = compute_metrics(rp, rd);
        m.compute_s += r.compute_s, m.stall_s += r.stall_s, m.host_exposed_s += r.host_exposed_s;
        m.hidden_fetch_s += r.hidden_fetch_s, m.fetch_s += r.fetch_s;
        m.steps += r.steps, m.prefill_steps += r.prefill_steps, m.mixed_steps += r.mixed_steps;
        m.lookups += r.lookups, m.unique_rows += r.unique_rows;
        m.payload_bytes += r.payload_bytes, m.h2d_wire_bytes += r.h2d_wire_bytes;
        m.d2h_wire_bytes += r.d2h_wire_bytes, m.nvme_read_bytes += r.nvme_read_bytes;
        m.rows_from_hbm += r.rows_from_hbm, m.rows_from_host_dram += r.rows_from_host_dram;
        m.rows_from_nvme += r.rows_from_nvme;
        m.replicas.push_back({pf.nodes()[size_t(rp.gpu)].name, r.makespan_s, r.stall_s, r.steps,
                              r.prefill_steps, uint64_t(rp.output_len.size()), rp.output_tokens,
                              rp.preemptions});
        for (const PlannedStep& st : rp.steps)
            for (const PlannedFetch& f : st.fetch) {
                for (int l : rp.h2d_route) bytes[size_t(l)] += f.work.h2d_wire_bytes;
                for (int l : rp.d2h_route) bytes[size_t(l)] += f.work.d2h_wire_bytes;
            }
        add_latencies(rp, rd, ttft, tpot);
    }
    auto util = [&](int l) {
        return m.makespan_s > 0
                   ? bytes[size_t(l)] / (links[size_t(l)].bandwidth_bytes_per_s * m.makespan_s)
                   : 0.0;
    };
    for (const Plan& rp : plan.replicas) {
        RunMetrics::GpuLinks g;
        g.gpu = pf.nodes()[size_t(rp.gpu)].name;
        g.host_h2d = util(rp.h2d_route.back());
        g.host_d2h = util(rp.d2h_route.front());
        m.per_gpu.push_back(g);  // no NVLink traffic: replicas do not talk to each other
    }
    for (size_t l = 0; l < links.size(); ++l)
        if (links[l].kind != "nvme") m.per_link.emplace_back(links[l].name, util(int(l)));
    m.h2d_utilization = m.per_gpu.front().host_h2d;  // gpu0's, as under tensor parallelism
    m.d2h_utilization = m.per_gpu.front().host_d2h;
    set_latencies(m, ttft, tpot);
    return m;
}

}  // namespace

namespace {

// The steps' totals: stalls, compute, fetch time, rows by tier, bytes.
void step_totals(const Plan& plan, const DesResult& des, RunMetrics& m) {
    m.steps = plan.steps.size();
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        const PlannedStep& st = plan.steps[i];
        if (st.prefill) ++m.prefill_steps;
        if (st.mixed) ++m.mixed_steps;
        double stall = 0;
        for (size_t f = 0; f < st.fetch.size(); ++f) {
            const FetchRecord& r = des.fetch[i][f];
            const double wait = std::max(0.0, r.ready_s - r.needed_s);
            stall += wait;
            m.fetch_s += r.ready_s - r.issue_s;
            m.hidden_fetch_s += (r.ready_s - r.issue_s) - wait;
            m.lookups += st.fetch[f].lookups;
            m.unique_rows += st.fetch[f].unique_rows;
            m.rows_from_hbm += st.fetch[f].hbm_hits;
            m.rows_from_host_dram += st.fetch[f].dram_rows;
            m.rows_from_nvme += st.fetch[f].ssd_rows;
            // each GPU reads its share of the rows (1/TP of them)
            m.nvme_read_bytes += st.fetch[f].work.nvme_read_bytes * plan.tensor_parallel;
            m.payload_bytes += st.fetch[f].work.payload_bytes;
            m.h2d_wire_bytes += st.fetch[f].work.h2d_wire_bytes;
            m.d2h_wire_bytes += st.fetch[f].work.d2h_wire_bytes;
            // remote-gather: the rows reach the GPU over its host link too (GPUDirect RDMA),
            // and with hashing on the GPU the ids leave over it.
            const double nodes = double(plan.memory_nodes.size());
            m.h2d_wire_bytes += nodes * st.fetch[f].work.net_bytes_per_node;
            if (st.fetch[f].work.remote_ids_from_gpu)
                m.d2h_wire_bytes += nodes * st.fetch[f].work.remote_ids_bytes_per_node;
        }
        m.stall_s += stall;
        m.compute_s += (des.step_end_s[i] - des.step_start_s[i]) - stall;
        m.host_exposed_s += des.step_start_s[i] - (i ? des.step_end_s[i - 1] : 0.0);
    }
    if (plan.has_engram && plan.table == "hbm") {
        // Every lookup is served from the HBM-resident table (no fetch).
        for (const auto& st : plan.steps) m.rows_from_hbm += uint64_t(st.tokens) *
                                                            uint64_t(plan.engram.heads_per_layer()) *
                                                            plan.engram_layers.size();
    }
}

// The host links' utilization, and per GPU and per link (the fetches and the collectives).
void link_utilization(const Plan& plan, RunMetrics& m) {
    const auto& links = plan.platform.links();
    if (m.makespan_s > 0) {
        m.h2d_utilization = m.h2d_wire_bytes /
                            (links[size_t(plan.h2d)].bandwidth_bytes_per_s * m.makespan_s);
        m.d2h_utilization = m.d2h_wire_bytes /
                            (links[size_t(plan.d2h)].bandwidth_bytes_per_s * m.makespan_s);
    }
    // Per link: every GPU's fetch share over its route, and the collectives.
    m.tensor_parallel = plan.tensor_parallel;
    const Platform& pf = plan.platform;
    std::vector<int> gpus = plan.gpus;
    if (gpus.empty()) gpus.push_back(plan.gpu);
    std::vector<double> bytes(links.size(), 0);
    std::vector<std::vector<int>> up, down;
    for (int g : gpus) {
        up.push_back(gpus.size() == 1 && !plan.h2d_route.empty() ? plan.h2d_route
                     : gpus.size() == 1 ? std::vector<int>{plan.h2d}
                                        : pf.route(plan.host, g));
        down.push_back(gpus.size() == 1 && !plan.d2h_route.empty() ? plan.d2h_route
                       : gpus.size() == 1 ? std::vector<int>{plan.d2h}
                                          : pf.route(g, plan.host));
    }
    // remote-gather: each memory node's routes from the ids' source and to gpu0.
    std::vector<std::vector<int>> ids_from_host, ids_from_gpu, rows_to_gpu;
    for (int mem : plan.memory_nodes) {
        ids_from_host.push_back(pf.route(plan.host, mem));
        ids_from_gpu.push_back(pf.route(plan.gpu, mem));
        rows_to_gpu.push_back(pf.route(mem, plan.gpu));
    }
    for (const PlannedStep& st : plan.steps) {
        for (const PlannedFetch& f : st.fetch) {
            for (size_t r = 0; r < gpus.size(); ++r) {
                for (int l : up[r]) bytes[size_t(l)] += f.work.h2d_wire_bytes;
                for (int l : down[r]) bytes[size_t(l)] += f.work.d2h_wire_bytes;
            }
            if (f.work.net_bytes_per_node > 0)
                for (size_t k = 0; k < rows_to_gpu.size(); ++k) {
                    for (int l : f.work.remote_ids_from_gpu ? ids_from_gpu[k]
                                                            : ids_from_host[k])
                        bytes[size_t(l)] += f.work.remote_ids_bytes_per_node;
                    for (int l : rows_to_gpu[k]) bytes[size_t(l)] += f.work.net_bytes_per_node;
                }
        }
        if (gpus.size() > 1)
            for (const Instr& in : engine_step_program(plan, st))
                if (in.kind == Instr::Kind::Collective)
                    add_collective_link_bytes(pf, gpus, in.collective, bytes);
    }
    auto util = [&](int l) {
        return m.makespan_s > 0 ? bytes[size_t(l)] / (links[size_t(l)].bandwidth_bytes_per_s *
                                                      m.makespan_s)
                                : 0.0;
    };
    auto find = [&](const std::string& name) {
        for (size_t l = 0; l < links.size(); ++l)
            if (links[l].name == name) return int(l);
        return -1;
    };
    for (size_t r = 0; r < gpus.size(); ++r) {
        RunMetrics::GpuLinks g;
        g.gpu = pf.nodes()[size_t(gpus[r])].name;
        g.host_h2d = util(up[r].back());
        g.host_d2h = util(down[r].front());
        if (const int u = find("nvlink" + std::to_string(r) + ".up"); u >= 0)
            g.nvlink_up = util(u);
        if (const int d = find("nvlink" + std::to_string(r) + ".down"); d >= 0)
            g.nvlink_down = util(d);
        m.per_gpu.push_back(g);
    }
    for (size_t l = 0; l < links.size(); ++l)
        if (links[l].kind != "nvme") m.per_link.emplace_back(links[l].name, util(int(l)));
    if (gpus.size() > 1) {  // the wire bytes of every GPU's share
        m.h2d_wire_bytes *= double(gpus.size());
        m.d2h_wire_bytes *= double(gpus.size());
        m.payload_bytes *= double(gpus.size());
    }
}

}  // namespace

RunMetrics compute_metrics(const Plan& plan, const DesResult& des) {
    if (!plan.replicas.empty()) return data_parallel_metrics(plan, des);
    RunMetrics m;
    m.makespan_s = des.makespan_s;
    m.throughput_tok_per_s = des.makespan_s > 0 ? double(plan.output_tokens) / des.makespan_s : 0;
    step_totals(plan, des, m);
    link_utilization(plan, m);
    std::vector<double> ttft, tpot;
    add_latencies(plan, des, ttft, tpot);
    set_latencies(m, ttft, tpot);
    return m;
}

nlohmann::json serving_metrics_json(const RunMetrics& m) {
    return {{"throughput_tok_per_s", m.throughput_tok_per_s},
            {"mean_step_s", m.steps ? m.makespan_s / double(m.steps) : 0},
            {"ttft_mean_s", m.ttft_mean_s}, {"tpot_mean_s", m.tpot_mean_s},
            {"stall_s", m.stall_s}, {"makespan_s", m.makespan_s}, {"steps", m.steps}};
}

nlohmann::json metrics_json(const RunMetrics& m) {
    nlohmann::json per_gpu = nlohmann::json::array(), per_link = nlohmann::json::object();
    for (const auto& g : m.per_gpu)
        per_gpu.push_back({{"gpu", g.gpu}, {"host_link.h2d", g.host_h2d},
                           {"host_link.d2h", g.host_d2h}, {"nvlink.up", g.nvlink_up},
                           {"nvlink.down", g.nvlink_down}});
    for (const auto& [name, u] : m.per_link) per_link[name] = u;
    nlohmann::json j = {{"makespan_s", m.makespan_s},
            {"throughput_tok_per_s", m.throughput_tok_per_s},
            {"ttft_s", {{"mean", m.ttft_mean_s}, {"p50", m.ttft_p50_s}, {"p99", m.ttft_p99_s}}},
            {"tpot_s", {{"mean", m.tpot_mean_s}, {"p50", m.tpot_p50_s}, {"p99", m.tpot_p99_s}}},
            {"breakdown_s",
             {{"compute", m.compute_s}, {"exposed_fetch_stall", m.stall_s},
              {"exposed_host_work", m.host_exposed_s},
              {"hidden_fetch", m.hidden_fetch_s}, {"fetch_total", m.fetch_s}}},
            {"steps", {{"total", m.steps}, {"prefill", m.prefill_steps},
                       {"decode", m.steps - m.prefill_steps}, {"mixed", m.mixed_steps}}},
            {"fetch", {{"lookups", m.lookups}, {"unique_rows", m.unique_rows},
                       {"payload_bytes", m.payload_bytes}, {"h2d_wire_bytes", m.h2d_wire_bytes},
                       {"d2h_wire_bytes", m.d2h_wire_bytes},
                       {"nvme_read_bytes", m.nvme_read_bytes}}},
            {"link_utilization", {{"host_link.h2d", m.h2d_utilization},
                                  {"host_link.d2h", m.d2h_utilization}}},
            {"tensor_parallel", m.tensor_parallel},
            {"link_utilization_per_gpu", per_gpu},
            {"link_utilization_per_link", per_link},
            {"rows_by_tier", {{"hbm", m.rows_from_hbm}, {"host-dram", m.rows_from_host_dram},
                              {"nvme", m.rows_from_nvme}}}};
    if (m.data_parallel > 1) {  // absent at D = 1 (results.json as before)
        j["data_parallel"] = m.data_parallel;
        j["replicas"] = nlohmann::json::array();
        for (const auto& r : m.replicas)
            j["replicas"].push_back(
                {{"gpu", r.gpu},
                 {"makespan_s", r.makespan_s},
                 {"exposed_fetch_stall_s", r.stall_s},
                 {"steps", {{"total", r.steps}, {"prefill", r.prefill_steps},
                            {"decode", r.steps - r.prefill_steps}}},
                 {"requests", r.requests},
                 {"output_tokens", r.output_tokens},
                 {"preemptions", r.preemptions}});
    }
    return j;
}

nlohmann::json machine_json() {
    nlohmann::json j;
    utsname u{};
    if (uname(&u) == 0) j["os"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
    std::ifstream cpu("/proc/cpuinfo");
    for (std::string line; std::getline(cpu, line);)
        if (line.rfind("model name", 0) == 0) {
            j["cpu"] = line.substr(line.find(':') + 2);
            break;
        }
    j["simgrid"] = std::to_string(SIMGRID_VERSION_MAJOR) + "." +
                   std::to_string(SIMGRID_VERSION_MINOR) + "." +
                   std::to_string(SIMGRID_VERSION_PATCH);
    return j;
}

nlohmann::json results_json(const Plan& plan, const RunMetrics& m, const nlohmann::json& extra) {
    nlohmann::json j;
    j["schema_version"] = kResultsSchemaVersion;
    j["units"] = {{"time", "s"}, {"throughput", "output tokens/s"}, {"bytes", "B"},
                  {"utilization", "fraction of raw link bandwidth"}};
    j["machine"] = machine_json();
    j["simulated"] = {{"platform", plan.platform.to_json()},
                      {"num_kv_blocks", plan.num_kv_blocks},
                      {"kv_bytes_per_token", plan.kv_bytes_per_token},
                      {"weight_bytes", plan.weight_bytes},
                      {"preemptions", plan.preemptions},
                      {"prompt_tokens", plan.prompt_tokens},
                      {"output_tokens", plan.output_tokens},
                      {"prefetch_schedule", plan.schedule.name()},
                      {"fetch_mechanism", plan.mechanism},
                      {"engram", plan.has_engram},
                      {"tensor_parallel", plan.tensor_parallel}};
    if (plan.data_parallel > 1) {
        j["simulated"]["data_parallel"] = plan.data_parallel;
        j["simulated"]["host_cores_for_gathers"] = plan.host_cores;
    }
    j["metrics"] = metrics_json(m);
    for (const auto& [k, v] : extra.items()) j[k] = v;
    j["config"] = plan.config;
    return j;
}

namespace {

// Data parallelism: per replica k, process 2k + 1 (its GPU stream: steps, stalls) and 2k + 2
// (its fetches), SimGrid times of the one shared engine.
void write_data_parallel_timeline(const Plan& plan, const DesResult& des, std::ostream& out) {
    out << std::setprecision(17) << "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
    bool first = true;
    auto sep = [&] {
        if (!first) out << ",\n";
        first = false;
    };
    for (size_t k = 0; k < plan.replicas.size(); ++k) {
        const std::string gpu = plan.platform.nodes()[size_t(plan.replicas[k].gpu)].name;
        sep();
        out << "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": " << 2 * k + 1
            << ", \"args\": {\"name\": \"" << gpu << " stream (replica " << k << ")\"}},\n"
            << "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": " << 2 * k + 2
            << ", \"args\": {\"name\": \"Engram fetch: host and link, " << gpu << "\"}}";
    }
    for (size_t k = 0; k < plan.replicas.size(); ++k) {
        const Plan& rp = plan.replicas[k];
        const DesResult& rd = des.replicas.at(k);
        const size_t gpu_pid = 2 * k + 1, fetch_pid = 2 * k + 2;
        for (size_t i = 0; i < rp.steps.size(); ++i) {
            const PlannedStep& st = rp.steps[i];
            const double t0 = rd.step_start_s[i] * 1e6, t1 = rd.step_end_s[i] * 1e6;
            sep();
            out << "{\"name\": \"" << step_kind(st) << " step " << i
                << "\", \"ph\": \"X\", \"pid\": " << gpu_pid << ", \"tid\": 1, \"ts\": " << t0
                << ", \"dur\": " << (t1 - t0) << ", \"args\": {\"tokens\": " << st.tokens
                << ", \"seqs\": " << st.seqs << ", \"replica\": " << k << "}}";
            for (size_t f = 0; f < st.fetch.size(); ++f) {
                const FetchRecord& r = rd.fetch[i][f];
                out << ",\n{\"name\": \"fetch L"
                    << rp.engram_layers[size_t(st.fetch[f].engram_index)]
                    << "\", \"ph\": \"X\", \"pid\": " << fetch_pid << ", \"tid\": " << (f + 1)
                    << ", \"ts\": " << r.issue_s * 1e6
                    << ", \"dur\": " << (r.ready_s - r.issue_s) * 1e6
                    << ", \"args\": {\"unique_rows\": " << st.fetch[f].unique_rows
                    << ", \"wire_bytes\": " << st.fetch[f].work.h2d_wire_bytes << "}}";
                if (r.ready_s > r.needed_s)
                    out << ",\n{\"name\": \"stall\", \"ph\": \"X\", \"pid\": " << gpu_pid
                        << ", \"tid\": 2, \"ts\": " << r.needed_s * 1e6
                        << ", \"dur\": " << (r.ready_s - r.needed_s) * 1e6 << "}";
            }
        }
    }
    out << "\n]}\n";
}

}  // namespace

void write_timeline(const Plan& plan, const DesResult& des, std::ostream& out) {
    if (!plan.replicas.empty()) return write_data_parallel_timeline(plan, des, out);
    // Microseconds, as the Chrome trace format wants; pid 1 = GPU, pid 2 = host / link.
    out << std::setprecision(17) << "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
    out << R"({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "gpu0 stream"}},)"
        << "\n"
        << R"x({"name": "process_name", "ph": "M", "pid": 2, "args": {"name": "Engram fetch: host and link"}})x";
    // TP > 1: the TP group's collectives (one engine drives every GPU in lockstep, so one
    // track for the group), from the simulator's records, matched to the step programs.
    const bool collectives = plan.tensor_parallel > 1 && !des.collectives.empty();
    if (collectives)
        out << ",\n{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 3, "
               "\"args\": {\"name\": \"collectives gpu0..gpu"
            << plan.tensor_parallel - 1 << " (NVLink, "
            << (plan.coalesce_collectives ? "coalesced" : "ring-steps") << ")\"}}";
    size_t next = 0;  // into des.collectives
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        const PlannedStep& st = plan.steps[i];
        const double t0 = des.step_start_s[i] * 1e6, t1 = des.step_end_s[i] * 1e6;
        out << ",\n{\"name\": \"" << step_kind(st) << " step " << i
            << "\", \"ph\": \"X\", \"pid\": 1, \"tid\": 1, \"ts\": " << t0
            << ", \"dur\": " << (t1 - t0) << ", \"args\": {\"tokens\": " << st.tokens
            << ", \"seqs\": " << st.seqs << "}}";
        for (size_t f = 0; f < st.fetch.size(); ++f) {
            const FetchRecord& r = des.fetch[i][f];
            out << ",\n{\"name\": \"fetch L" << plan.engram_layers[size_t(st.fetch[f].engram_index)]
                << "\", \"ph\": \"X\", \"pid\": 2, \"tid\": " << (f + 1)
                << ", \"ts\": " << r.issue_s * 1e6 << ", \"dur\": " << (r.ready_s - r.issue_s) * 1e6
                << ", \"args\": {\"unique_rows\": " << st.fetch[f].unique_rows
                << ", \"wire_bytes\": "
                << st.fetch[f].work.h2d_wire_bytes +
                       double(plan.memory_nodes.size()) * st.fetch[f].work.net_bytes_per_node
                << "}}";
            if (r.ready_s > r.needed_s)
                out << ",\n{\"name\": \"stall\", \"ph\": \"X\", \"pid\": 1, \"tid\": 2, \"ts\": "
                    << r.needed_s * 1e6 << ", \"dur\": " << (r.ready_s - r.needed_s) * 1e6 << "}";
        }
        if (!collectives) continue;
        uint32_t index = 0;
        for (const Instr& in : engine_step_program(plan, st)) {
            if (in.kind != Instr::Kind::Collective) continue;
            const uint32_t k = index++;
            while (next < des.collectives.size() &&
                   (des.collectives[next].step < i ||
                    (des.collectives[next].step == i && des.collectives[next].index < k)))
                ++next;
            if (next == des.collectives.size()) break;
            const CollectiveRecord& c = des.collectives[next];
            if (c.step != i || c.index != k) continue;  // not run (nothing to move)
            out << ",\n{\"name\": \"" << collective_name(in.collective.kind)
                << "\", \"ph\": \"X\", \"pid\": 1, \"tid\": 3, \"ts\": " << c.start_s * 1e6
                << ", \"dur\": " << (c.end_s - c.start_s) * 1e6 << ", \"args\": {\"step\": " << i
                << ", \"op\": \"" << (in.op ? in.op : "") << "\"";
            if (in.layer >= 0) out << ", \"layer\": " << in.layer;
            out << ", \"index\": " << k;
            if (in.segment && !in.segment->after_kernel.empty())
                out << ", \"after_kernel\": \"" << in.segment->after_kernel << "\"";
            out << ", \"bytes\": " << in.collective.bytes
                << ", \"chunk_bytes\": " << collective_chunk_bytes(in.collective, plan.tensor_parallel)
                << ", \"tp\": " << plan.tensor_parallel << "}}";
            ++next;
        }
    }
    out << "\n]}\n";
}

}  // namespace engramsim::sim
