#include "sim/scaleout/cluster_sim.h"

#include <simgrid/s4u.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <stdexcept>
#include <string>

#include "sim/timing/forked.h"
#include "sim/timing/link_probe.h"

namespace sg4 = simgrid::s4u;

namespace engramsim::sim::scaleout {

using nlohmann::json;

// ---- The program of one stage's step, for the DES and the critical path ----------------------

namespace {

struct Op {
    enum class Kind { Issue, Wait, Engram, Pre, Expert, Dispatch, Combine, Embed, Head,
                      PpRecv, PpSend } kind;
    int arg = 0;  // Issue / Wait: the Engram layer index; Pre / Expert / all-to-alls: layers
};

// Groups of at most layers_per_event layers over [first, last), cut at each Engram layer and at
// each fetch issue; the ops of a step on stage p.
std::vector<Op> stage_program(const ClusterPlan& plan, int p, bool fetching) {
    const ClusterLayout& L = plan.layout;
    const int first = plan.stage_first_layer(p), last = plan.stage_last_layer(p);
    std::vector<int> issue_at(plan.engram_layers.size(), -1);
    std::vector<bool> cut(size_t(last - first) + 1, false);
    for (size_t e = 0; e < plan.engram_layers.size(); ++e) {
        const int l = plan.engram_layers[e];
        if (l < first || l >= last) continue;
        cut[size_t(l - first)] = true;
        if (fetching) {
            issue_at[e] = std::max(first, plan.schedule.issue_layer(l));
            cut[size_t(issue_at[e] - first)] = true;
        }
    }
    std::vector<Op> ops;
    if (p > 0) ops.push_back({Op::Kind::PpRecv});
    auto issues = [&](int l) {
        for (size_t e = 0; e < issue_at.size(); ++e)
            if (issue_at[e] == l) ops.push_back({Op::Kind::Issue, int(e)});
    };
    issues(first);  // at the step's start, before the embedding
    if (p == 0) ops.push_back({Op::Kind::Embed});
    for (int l = first; l < last;) {
        int end = l + 1;
        while (end < last && end - l < L.layers_per_event && !cut[size_t(end - first)]) ++end;
        if (l > first) issues(l);
        for (size_t e = 0; e < plan.engram_layers.size(); ++e)
            if (plan.engram_layers[e] == l) {
                if (fetching) ops.push_back({Op::Kind::Wait, int(e)});
                ops.push_back({Op::Kind::Engram, int(e)});
            }
        const int n = end - l;
        ops.push_back({Op::Kind::Pre, n});
        if (plan.backbone.moe && L.expert_parallel > 1) {
            ops.push_back({Op::Kind::Dispatch, n});
            ops.push_back({Op::Kind::Expert, n});
            ops.push_back({Op::Kind::Combine, n});
        } else if (plan.backbone.moe) {
            ops.push_back({Op::Kind::Expert, n});
        }
        l = end;
    }
    ops.push_back({p + 1 == L.pipeline ? Op::Kind::Head : Op::Kind::PpSend});
    return ops;
}

bool fetches(const ClusterPlan& plan) {
    return plan.has_engram && !plan.table_in_hbm && !plan.schedule.free();
}

// The idle route of a flow kind from a GPU: latency and bottleneck bandwidth.
struct RouteIdle {
    double latency_s = 0, bytes_per_s = 0;
};
RouteIdle flow_route(const ClusterLayout& L, A2aFlow::Kind k) {
    if (k == A2aFlow::Kind::NvLink) return {2 * L.nvlink_latency_s, L.nvlink_bytes_per_s};
    const double bw = std::min({L.nic_bytes_per_s, L.host_link_bytes_per_s,
                                L.gpus_per_node * L.nic_bytes_per_s});
    const int fabric_links = k == A2aFlow::Kind::Leaf ? 2 : 4;
    return {2 * L.nic_latency_s + fabric_links * L.switch_link_latency_s, bw};
}

// One fetch's work for a GPU: its local rows (through the mechanism) and the remote ones.
struct FetchJob {
    FetchWork local;  // zero when no local rows
    double remote_rows = 0, ids_bytes = 0, gather_s = 0, payload_bytes = 0;
    int holder_leaf = -1;  // sharded: the peer node; memory servers: nodes + server index
};

FetchJob fetch_job(const ClusterPlan& plan, int gpu, const ClusterStep& st, size_t e) {
    const ClusterLayout& L = plan.layout;
    const double u = double(st.unique_rows[e]), lookups = double(st.lookups[e]);
    double local = u;
    FetchJob job;
    const int node = L.node_of(gpu);
    if (L.table == TableHome::Sharded && L.nodes > 1) {
        local = u / L.nodes;
        job.holder_leaf = (node + 1) % L.nodes;  // each node serves the next one's GPUs
    } else if (L.table == TableHome::MemoryServers) {
        local = 0;
        job.holder_leaf = L.nodes + node % L.memory_servers;
    }
    if (local > 0)
        job.local = plan.mechanism->plan(
            {double(st.tokens), lookups * local / std::max(1.0, u), local, plan.row_bytes});
    job.remote_rows = u - local;
    if (job.remote_rows > 0) {
        job.ids_bytes = std::ceil(job.remote_rows * 8);
        job.gather_s = gather_seconds(plan.fetch, job.remote_rows, plan.row_bytes);
        job.payload_bytes = std::ceil(job.remote_rows * plan.row_bytes);
    }
    return job;
}

// The fetch on idle links, from its issue to its rows in HBM (the DES's order, fetcher actor).
double fetch_idle_seconds(const ClusterPlan& plan, const FetchJob& j) {
    const ClusterLayout& L = plan.layout;
    const double hl = L.host_link_latency_s, hbw = L.host_link_bytes_per_s;
    const double d2h = j.local.d2h_wire_bytes > 0 ? hl + j.local.d2h_wire_bytes / hbw : 0;
    const double a = d2h, lexec_end = a + j.local.host_s;
    double ids_end = 0, rexec_end = 0, rstart = a, payload_t = 0;
    if (j.remote_rows > 0) {
        // Through the fabric at the same-leaf latency, wherever the holder is (a fetch does
        // not wait out the spine's extra links; see nic_link_latency).
        const bool server = j.holder_leaf >= L.nodes;
        const double net = 2 * (L.nic_latency_s + L.switch_link_latency_s);
        const double bw = server ? L.nic_bytes_per_s : std::min(L.nic_bytes_per_s, hbw);
        ids_end = net + (server ? 0 : hl) + j.ids_bytes / bw;
        rstart = std::max(ids_end, a);
        rexec_end = rstart + j.gather_s;
        payload_t = net + (server ? 0 : hl) + j.payload_bytes / bw;
    }
    const double lstart = std::max(lexec_end, rstart) + j.local.fixed_s;
    const double lend = j.local.h2d_wire_bytes > 0 ? lstart + hl + j.local.h2d_wire_bytes / hbw
                                                   : lstart;
    double ready = lend;
    if (j.remote_rows > 0) ready = std::max(ready, std::max(rexec_end, lstart) + payload_t);
    return ready;
}

double expert_seconds(const ClusterPlan& plan, int gpu, const ClusterStep& st) {
    return is_hot(plan, gpu) ? st.expert_hot_s : st.expert_s;
}

}  // namespace

A2aIdle a2a_idle(const ClusterPlan& plan, const std::vector<A2aFlow>& flows, double factor) {
    // Flows leave by the GPU's NVLink or its NIC: each of the two carries its flows at once.
    A2aIdle out;
    for (bool nic : {false, true}) {
        double lat = 0, bytes = 0, bw = 0;
        bool any = false;
        for (const A2aFlow& f : flows) {
            if ((f.kind != A2aFlow::Kind::NvLink) != nic) continue;
            const RouteIdle r = flow_route(plan.layout, f.kind);
            lat = std::max(lat, r.latency_s);
            bytes += f.bytes * factor;
            bw = r.bytes_per_s;
            any = true;
        }
        if (!any) continue;
        const double t = lat + bytes / bw;
        if (t > out.seconds) out = {t, lat};
    }
    return out;
}

double a2a_group_seconds(const ClusterPlan& plan, const std::vector<A2aFlow>& flows, int layers,
                         double factor) {
    if (flows.empty()) return 0;
    const A2aIdle one = a2a_idle(plan, flows, factor);
    return (layers - 1) * one.latency_s + a2a_idle(plan, flows, factor * layers).seconds;
}

// ---- The critical path ------------------------------------------------------------------------

ClusterResult analytic_cluster(const ClusterPlan& plan) {
    const ClusterLayout& L = plan.layout;
    if (L.micro_batches > 1)
        throw std::invalid_argument("analytic_cluster: one micro-batch only (overlapped "
                                    "micro-batches have no single critical path here)");
    const bool fetching = fetches(plan);
    ClusterResult r;
    std::vector<std::vector<Op>> programs;
    for (int p = 0; p < L.pipeline; ++p) programs.push_back(stage_program(plan, p, fetching));
    std::vector<double> stage_free(size_t(L.pipeline), 0);
    // Each stage's first GPU's flows, for one token at one byte a value.
    std::vector<std::vector<A2aFlow>> flows;
    for (int p = 0; p < L.pipeline; ++p) flows.push_back(a2a_flows(plan, p * L.stage_gpus, 1, 1));
    for (const ClusterStep& st : plan.steps) {
        double arrive = 0;
        for (int p = 0; p < L.pipeline; ++p) {
            const int gpu = p * L.stage_gpus;
            const double hot = is_hot(plan, gpu) ? 1 + L.routing_skew : 1;
            double t = std::max(stage_free[size_t(p)], p > 0 ? arrive : 0.0);
            if (p == 0) r.step_start_s.push_back(t);
            std::vector<double> ready(plan.engram_layers.size(), 0);
            const double tok = st.tokens;
            for (const Op& op : programs[size_t(p)]) {
                switch (op.kind) {
                    case Op::Kind::PpRecv: break;  // `arrive` above
                    case Op::Kind::Issue: {
                        const double f = fetch_idle_seconds(plan, fetch_job(plan, gpu, st, size_t(op.arg)));
                        ready[size_t(op.arg)] = t + f;
                        if (gpu == 0) r.fetch_s += f;
                        break;
                    }
                    case Op::Kind::Wait:
                        if (gpu == 0) r.stall_s += std::max(0.0, ready[size_t(op.arg)] - t);
                        t = std::max(t, ready[size_t(op.arg)]);
                        break;
                    case Op::Kind::Embed: t += st.embed_s; break;
                    case Op::Kind::Head: t += st.head_s; break;
                    case Op::Kind::Engram: t += st.engram_gpu_s; break;
                    case Op::Kind::Pre: t += st.pre_s * op.arg; break;
                    case Op::Kind::Expert: t += expert_seconds(plan, gpu, st) * op.arg; break;
                    case Op::Kind::Dispatch:
                    case Op::Kind::Combine: {
                        const double bpv = op.kind == Op::Kind::Dispatch ? L.dispatch_bytes_per_value
                                                                         : L.combine_bytes_per_value;
                        const double s =
                            a2a_group_seconds(plan, flows[size_t(p)], op.arg, hot * tok * bpv);
                        if (gpu == 0) r.a2a_s += s;
                        t += s;
                        break;
                    }
                    case Op::Kind::PpSend: {
                        // A rendezvous, as the DES's put: it starts once the next stage has
                        // finished its previous step and posted its receive; the sender waits
                        // for it (same-leaf latency between nodes).
                        const int to = gpu + L.stage_gpus;
                        t = std::max(t, stage_free[size_t(p + 1)]);
                        const RouteIdle ri = flow_route(L, L.node_of(to) == L.node_of(gpu)
                                                               ? A2aFlow::Kind::NvLink
                                                               : A2aFlow::Kind::Leaf);
                        t += ri.latency_s +
                             std::ceil(tok * plan.backbone.hidden * plan.backbone.bytes_per_value) /
                                 ri.bytes_per_s;
                        arrive = t;
                        break;
                    }
                }
            }
            stage_free[size_t(p)] = t;
            if (p + 1 == L.pipeline) r.step_end_s.push_back(t);
        }
    }
    r.makespan_s = r.step_end_s.empty() ? 0 : r.step_end_s.back();
    return r;
}

// ---- The platform -------------------------------------------------------------------------

namespace {

// SimGrid's CM02 model shares a link among flows in inverse proportion to their routes'
// latencies (its model of TCP's RTT unfairness), which an RDMA fabric does not do. So every route
// through the fabric gets the same SimGrid latency: the fabric links have none, each NIC link
// carries its own latency plus one switch link's, and a flow through the spine waits the two
// further switch links (2 x switch_link_latency) before it starts. On idle links each route's
// time is unchanged: same leaf 2 x (nic + switch), through the spine 2 x nic + 4 x switch.
double nic_link_latency(const ClusterLayout& L) { return L.nic_latency_s + L.switch_link_latency_s; }

// A simulated unit: one GPU (granularity gpu), or one node's GPUs as one (granularity node: they
// run alike, so its links carry the node's G GPUs' flows at G x each link's bandwidth, and a PCIe
// switch uplink G / gpus_per_switch x; exact while the node's GPUs are alike).
struct Units {
    int count = 0, width = 1;  // units; GPUs a unit stands for
    bool per_gpu = true;
    int gpu(int u) const { return per_gpu ? u : u * width; }  // its first GPU
};

Units units_of(const ClusterLayout& L) {
    Units u;
    u.per_gpu = L.per_gpu;
    u.width = L.per_gpu ? 1 : L.gpus_per_node;
    u.count = L.world / u.width;
    return u;
}

struct Hosts {
    std::vector<sg4::Host*> unit, nvpeer, node, rail, server;  // unit, rail: per unit
};

sg4::Link* link(sg4::NetZone* z, const std::string& name, double bw, double lat) {
    return z->create_link(name, bw)->set_latency(lat)->seal();
}

void route(sg4::NetZone* z, simgrid::kernel::routing::NetPoint* a,
           simgrid::kernel::routing::NetPoint* b, std::vector<sg4::Link*> links) {
    std::vector<sg4::LinkInRoute> r;
    for (sg4::Link* l : links) r.emplace_back(l);
    z->add_route(a, b, nullptr, nullptr, r, false);
}

// One node: an HGX-like board (see cluster_sim.h), its GPUs one host each or, by node, one host
// for all with every per-GPU link widened G times. Returns its gateway (null without a fabric).
simgrid::kernel::routing::NetPoint* build_node(sg4::NetZone* z, const ClusterLayout& L,
                                               const Units& U, int n, bool fabric, Hosts& h) {
    std::string p = "n";  // (appended, not "n" + ...: GCC 12's -Wrestrict misfires on that)
    p += std::to_string(n) + ".";
    const int G = L.gpus_per_node;
    const int hosts = U.per_gpu ? G : 1;           // GPU hosts in this zone
    const double w = U.per_gpu ? 1 : G;            // links widened
    const int switches = U.per_gpu ? G / L.gpus_per_switch : 1;
    const double sw_w = U.per_gpu ? 1 : double(G) / L.gpus_per_switch;
    sg4::Host* host = z->create_host(p + "host", 1.0);
    host->set_core_count(L.host_cores);
    h.node[size_t(n)] = host;
    simgrid::kernel::routing::NetPoint* gw = fabric ? z->create_router(p + "gw") : nullptr;
    std::vector<sg4::Link*> sw_up, sw_down;
    for (int s = 0; s < switches; ++s) {
        const std::string q = p + "sw" + std::to_string(s);
        sw_up.push_back(link(z, q + ".up", sw_w * L.host_link_bytes_per_s, L.host_link_latency_s));
        sw_down.push_back(
            link(z, q + ".down", sw_w * L.host_link_bytes_per_s, L.host_link_latency_s));
    }
    std::vector<sg4::Link*> leg_up, leg_down, nic_tx, nic_rx, nvl_up, nvl_down;
    const int first = n * hosts;  // its first unit
    for (int g = 0; g < hosts; ++g) {
        const std::string q = p + "gpu" + std::to_string(g);
        h.unit[size_t(first + g)] = z->create_host(q, 1.0);
        leg_up.push_back(link(z, q + ".leg.up", w * L.host_link_bytes_per_s, 0));
        leg_down.push_back(link(z, q + ".leg.down", w * L.host_link_bytes_per_s, 0));
        if (G > 1) {
            nvl_up.push_back(link(z, q + ".nvlink.up", w * L.nvlink_bytes_per_s, L.nvlink_latency_s));
            nvl_down.push_back(
                link(z, q + ".nvlink.down", w * L.nvlink_bytes_per_s, L.nvlink_latency_s));
        }
        if (fabric) {
            nic_tx.push_back(link(z, p + "nic" + std::to_string(g) + ".tx", w * L.nic_bytes_per_s,
                                  nic_link_latency(L)));
            nic_rx.push_back(link(z, p + "nic" + std::to_string(g) + ".rx", w * L.nic_bytes_per_s,
                                  nic_link_latency(L)));
            h.rail[size_t(first + g)] = z->create_host(p + "rail" + std::to_string(g), 1.0);
        }
    }
    auto np = [&](int g) { return h.unit[size_t(first + g)]->get_netpoint(); };
    if (!U.per_gpu && G > 1) {  // the node's NVLink traffic: out of its GPUs and back in
        h.nvpeer[size_t(n)] = z->create_host(p + "nvswitch", 1.0);
        route(z, np(0), h.nvpeer[size_t(n)]->get_netpoint(), {nvl_up[0], nvl_down[0]});
    }
    for (int g = 0; g < hosts; ++g) {
        const size_t s = size_t(U.per_gpu ? g / L.gpus_per_switch : 0);
        route(z, host->get_netpoint(), np(g), {sw_down[s], leg_down[size_t(g)]});
        route(z, np(g), host->get_netpoint(), {leg_up[size_t(g)], sw_up[s]});
        for (int k = 0; k < hosts; ++k)
            if (k != g) route(z, np(g), np(k), {nvl_up[size_t(g)], nvl_down[size_t(k)]});
        if (!fabric) continue;
        auto* rail = h.rail[size_t(first + g)]->get_netpoint();
        route(z, np(g), gw, {leg_up[size_t(g)], nic_tx[size_t(g)]});
        route(z, gw, np(g), {nic_rx[size_t(g)], leg_down[size_t(g)]});
        route(z, rail, gw, {sw_down[s], nic_tx[size_t(g)]});
        route(z, gw, rail, {nic_rx[size_t(g)], sw_up[s]});
    }
    return gw;
}

simgrid::kernel::routing::NetPoint* build_server(sg4::NetZone* z, const ClusterLayout& L, int k,
                                                 Hosts& h) {
    const std::string p = "mem" + std::to_string(k) + ".";
    sg4::Host* host = z->create_host(p + "host", 1.0);
    host->set_core_count(L.host_cores);
    h.server[size_t(k)] = host;
    auto* gw = z->create_router(p + "gw");
    route(z, host->get_netpoint(), gw,
          {link(z, p + "nic.tx", L.nic_bytes_per_s, nic_link_latency(L))});
    route(z, gw, host->get_netpoint(),
          {link(z, p + "nic.rx", L.nic_bytes_per_s, nic_link_latency(L))});
    return gw;
}

Hosts build_platform(const ClusterLayout& L, const Units& U) {
    Hosts h;
    h.unit.resize(size_t(U.count));
    h.rail.resize(size_t(U.count));
    h.nvpeer.resize(size_t(L.nodes));
    h.node.resize(size_t(L.nodes));
    h.server.resize(size_t(L.memory_servers));
    const int leaves = L.nodes + L.memory_servers;
    if (leaves == 1) {
        auto* z = sg4::create_full_zone("n0");
        build_node(z, L, U, 0, false, h);
        z->seal();
        return h;
    }
    auto leaf = [&](sg4::NetZone* fabric, const std::vector<unsigned long>&, unsigned long id)
        -> std::pair<simgrid::kernel::routing::NetPoint*, simgrid::kernel::routing::NetPoint*> {
        const int i = int(id);
        if (i >= leaves) return {fabric->create_router("pad" + std::to_string(i)), nullptr};
        const bool node = i < L.nodes;
        std::string name = node ? "n" : "mem";
        name += std::to_string(node ? i : i - L.nodes);
        auto* z = sg4::create_full_zone(name);
        z->set_parent(fabric);
        auto* gw = node ? build_node(z, L, U, i, true, h) : build_server(z, L, i - L.nodes, h);
        z->seal();
        return {z->get_netpoint(), gw};
    };
    const unsigned p = unsigned(L.leaf_nodes);
    const sg4::FatTreeParams params =
        L.spines == 0 ? sg4::FatTreeParams(1, {p}, {1}, {1})
                      : sg4::FatTreeParams(2, {p, unsigned(L.leaves)}, {1, unsigned(L.spines)},
                                           {1, 1});
    auto* fabric = sg4::create_fatTree_zone(
        "fabric", nullptr, params, sg4::ClusterCallbacks(leaf),
        L.gpus_per_node * L.nic_bytes_per_s, 0, sg4::Link::SharingPolicy::SPLITDUPLEX);
    fabric->seal();
    return h;
}

// A unit's flows of one all-to-all: its GPUs' flows summed per peer unit and route; a node's
// NVLink flows are its own (peer -1: out to its NVSwitch and back).
struct UnitFlow {
    A2aFlow::Kind kind;
    int peer;  // unit; -1: the unit itself
    double bytes;
};
std::vector<UnitFlow> unit_flows(const ClusterPlan& plan, const Units& U, int u) {
    std::vector<UnitFlow> out;
    for (int g = 0; g < U.width; ++g)
        for (const A2aFlow& f : a2a_flows(plan, U.gpu(u) + g, 1, 1)) {
            const int peer = U.per_gpu ? f.peer : plan.layout.node_of(f.peer);
            const int to = peer == u && !U.per_gpu ? -1 : peer;
            auto it = std::find_if(out.begin(), out.end(), [&](const UnitFlow& x) {
                return x.peer == to && x.kind == f.kind;
            });
            if (it == out.end())
                out.push_back({f.kind, to, f.bytes});
            else
                it->bytes += f.bytes;
        }
    return out;
}

// ---- The DES ------------------------------------------------------------------------------

char g_payload;  // mailbox puts carry no data, only their simulated size

struct Des {
    const ClusterPlan& plan;
    const ClusterLayout& L;
    Units U;
    Hosts h;
    std::vector<std::vector<Op>> programs;
    std::vector<std::vector<UnitFlow>> flows;  // per unit, one token at one byte a value
    std::vector<std::vector<A2aFlow>> first_gpu_flows;  // per unit: its first GPU's, likewise
    std::vector<sg4::Mailbox*> a2a_box;        // [(unit x M + micro-batch) x 3 + kind]
    std::vector<sg4::Mailbox*> pp_box;         // [unit x M + micro-batch]
    std::vector<sg4::SemaphorePtr> issue, ready;
    // micro_batches M > 1: per unit, its GPU stream (one micro-batch's kernels at a time) and
    // the step's end for all M.
    std::vector<sg4::MutexPtr> stream;
    std::vector<sg4::BarrierPtr> step_end;
    ClusterResult r;
    uint64_t activities = 0;
    bool fetching = false;
    uint32_t step = 0;  // the first unit's current step

    explicit Des(const ClusterPlan& p) : plan(p), L(p.layout), U(units_of(p.layout)) {}

    // The first unit's span from `start` to now.
    void span(ClusterSpan::Kind k, double start, uint32_t at_step) {
        r.spans.push_back({k, at_step, start, sg4::Engine::get_clock()});
    }
    void span(ClusterSpan::Kind k, double start) { span(k, start, step); }

    // Its mailbox of flow kind k (pairwise: one for all) for micro-batch m.
    size_t box(int unit, int m, A2aFlow::Kind k) const {
        return (size_t(unit) * size_t(L.micro_batches) + size_t(m)) * 3 +
               (L.pairwise ? 0 : size_t(k));
    }

    void all_to_all(int u, int m, const ClusterStep& st, const Op& op) {
        const double bpv = op.kind == Op::Kind::Dispatch ? L.dispatch_bytes_per_value
                                                         : L.combine_bytes_per_value;
        const auto& fl = flows[size_t(u)];
        if (fl.empty()) return;
        const double scale = double(st.tokens) / L.micro_batches * bpv;  // one micro-batch's
        const double t0 = sg4::Engine::get_clock();
        // The slowest route's latency on idle links, from the unit's first GPU.
        const double lat = a2a_idle(plan, first_gpu_flows[size_t(u)], scale).latency_s;
        if (op.arg > 1) sg4::this_actor::sleep_for((op.arg - 1) * lat), ++activities;
        std::vector<sg4::CommPtr> comms;
        std::vector<char*> slots(fl.size());
        // The gets first, so that each flow starts when its sender puts it.
        for (size_t i = 0; i < fl.size(); ++i) {
            if (fl[i].peer < 0) continue;
            comms.push_back(a2a_box[box(u, m, fl[i].kind)]->get_async(&slots[i]));
        }
        for (bool spine : {false, true}) {
            bool slept = false;
            for (const UnitFlow& f : fl) {
                if ((f.kind == A2aFlow::Kind::Spine) != spine) continue;
                if (spine && !slept) {  // the spine's two further switch links (see above)
                    sg4::this_actor::sleep_for(2 * L.switch_link_latency_s), ++activities;
                    slept = true;
                }
                // Skew: the hot GPU receives more in the dispatch and sends more in the combine.
                const int to = f.peer < 0 ? u : f.peer;
                const bool hot = op.kind == Op::Kind::Dispatch ? is_hot(plan, U.gpu(to))
                                                               : is_hot(plan, U.gpu(u));
                const auto bytes =
                    uint64_t(std::ceil(f.bytes * scale * op.arg * (hot ? 1 + L.routing_skew : 1)));
                if (f.peer < 0) {
                    comms.push_back(sg4::Comm::sendto_async(h.unit[size_t(u)],
                                                            h.nvpeer[size_t(L.node_of(U.gpu(u)))],
                                                            bytes));
                } else {
                    comms.push_back(a2a_box[box(f.peer, m, f.kind)]->put_async(&g_payload, bytes));
                }
                ++activities;
            }
        }
        sg4::Comm::wait_all(comms);
        if (u == 0 && m == 0) {
            r.a2a_s += sg4::Engine::get_clock() - t0;
            span(op.kind == Op::Kind::Dispatch ? ClusterSpan::Kind::Dispatch
                                               : ClusterSpan::Kind::Combine,
                 t0);
        }
    }

    // Micro-batch m of unit u (m = 0 only, with micro_batches 1): every step's program on its
    // share of the sequences. Micro-batch 0 issues the step's fetches; all M wait for them.
    void unit_actor(int u, int m) {
        const int x = U.gpu(u);
        const int p = x / L.stage_gpus;
        const bool first_unit = x % L.stage_gpus == 0, first = u == 0 && m == 0;
        const int M = L.micro_batches;
        auto run = [&](double s) {
            if (s <= 0) return;
            const double t0 = sg4::Engine::get_clock();
            if (M > 1) stream[size_t(u)]->lock();
            sg4::this_actor::execute(s);
            if (M > 1) stream[size_t(u)]->unlock();
            ++activities;
            if (first) r.compute_s += s, span(ClusterSpan::Kind::Compute, t0);
        };
        const int stage_units = L.stage_gpus / U.width;
        for (size_t i = 0; i < plan.steps.size(); ++i) {
            const ClusterStep& st = plan.steps[i];
            if (first) r.step_start_s[i] = sg4::Engine::get_clock(), step = uint32_t(i);
            for (const Op& op : programs[size_t(p)]) {
                switch (op.kind) {
                    case Op::Kind::PpRecv: {
                        char* slot = nullptr;
                        pp_box[size_t(u * M + m)]->get_async(&slot)->wait();
                        break;
                    }
                    case Op::Kind::Issue:
                        if (m == 0) issue[size_t(u)]->release();
                        break;
                    case Op::Kind::Wait: {
                        const double t = sg4::Engine::get_clock();
                        ready[size_t(u)]->acquire();
                        if (first && sg4::Engine::get_clock() > t)
                            r.stall_s += sg4::Engine::get_clock() - t,
                                span(ClusterSpan::Kind::Stall, t);
                        break;
                    }
                    case Op::Kind::Embed: run(st.embed_s); break;
                    case Op::Kind::Head: run(st.head_s); break;
                    case Op::Kind::Engram: run(st.engram_gpu_s); break;
                    case Op::Kind::Pre: run(st.pre_s * op.arg); break;
                    case Op::Kind::Expert: {  // a node waits for its slowest (hot) GPU
                        double e = st.expert_s;
                        for (int g = 0; g < U.width; ++g) e = std::max(e, expert_seconds(plan, x + g, st));
                        run(e * op.arg);
                        break;
                    }
                    case Op::Kind::Dispatch:
                    case Op::Kind::Combine: all_to_all(u, m, st, op); break;
                    case Op::Kind::PpSend: {
                        const double t0 = sg4::Engine::get_clock();
                        pp_box[size_t((u + stage_units) * M + m)]
                            ->put_async(&g_payload,
                                        uint64_t(std::ceil(U.width * double(st.tokens) / M *
                                                           plan.backbone.hidden *
                                                           plan.backbone.bytes_per_value)))
                            ->wait();
                        ++activities;
                        if (first) span(ClusterSpan::Kind::Pipeline, t0);
                        break;
                    }
                }
            }
            if (M > 1) step_end[size_t(u)]->wait();  // the step ends when all M have
            if (first_unit && m == 0 && p + 1 == L.pipeline)
                r.step_end_s[i] = sg4::Engine::get_clock();
        }
    }

    // A unit's fetches, one at a time in issue order (cluster_sim.h); a node's GPUs' at once.
    void fetcher_actor(int u) {
        const int x = U.gpu(u), node = L.node_of(x), w = U.width;
        sg4::Host* gpu = h.unit[size_t(u)];
        sg4::Host* host = h.node[size_t(node)];
        auto exec = [w](sg4::Host* on, double s) {
            sg4::ExecPtr x = sg4::Exec::init();
            x->set_flops_amount(s);
            x->set_host(on);
            if (w > 1) x->set_thread_count(w);
            x->start();
            return x;
        };
        // The Engram layers of this unit's pipeline stage, in issue order.
        const int stage = x / L.stage_gpus;
        std::vector<size_t> mine;
        for (size_t e = 0; e < plan.engram_layers.size(); ++e)
            if (plan.engram_layers[e] >= plan.stage_first_layer(stage) &&
                plan.engram_layers[e] < plan.stage_last_layer(stage))
                mine.push_back(e);
        for (size_t i = 0; i < plan.steps.size(); ++i)
            for (size_t e : mine) {
                const ClusterStep& st = plan.steps[i];
                issue[size_t(u)]->acquire();
                const double t0 = sg4::Engine::get_clock();
                const FetchJob j = fetch_job(plan, x, st, e);
                sg4::Host *holder_src = nullptr, *holder_cpu = nullptr;
                if (j.remote_rows > 0) {
                    if (j.holder_leaf >= L.nodes) {
                        holder_src = holder_cpu = h.server[size_t(j.holder_leaf - L.nodes)];
                    } else {  // the holder's NIC on this GPU's rail
                        holder_src = h.rail[size_t(U.per_gpu ? j.holder_leaf * L.gpus_per_node +
                                                                   x % L.gpus_per_node
                                                             : j.holder_leaf)];
                        holder_cpu = h.node[size_t(j.holder_leaf)];
                    }
                }
                sg4::CommPtr ids;
                if (holder_src) {
                    ids = sg4::Comm::sendto_async(gpu, holder_src, uint64_t(w * j.ids_bytes));
                    ++activities;
                }
                if (j.local.d2h_wire_bytes > 0) {
                    sg4::Comm::sendto(gpu, host, uint64_t(std::ceil(w * j.local.d2h_wire_bytes)));
                    ++activities;
                }
                sg4::ExecPtr lexec, rexec;
                if (j.local.host_s > 0) lexec = exec(host, j.local.host_s), ++activities;
                if (ids) {
                    ids->wait();
                    rexec = exec(holder_cpu, j.gather_s);
                    ++activities;
                }
                if (lexec) lexec->wait();
                if (j.local.fixed_s > 0) sg4::this_actor::sleep_for(j.local.fixed_s), ++activities;
                sg4::CommPtr lcomm, rcomm;
                if (j.local.h2d_wire_bytes > 0) {
                    lcomm = sg4::Comm::sendto_async(
                        host, gpu, uint64_t(std::ceil(w * j.local.h2d_wire_bytes)));
                    ++activities;
                }
                if (rexec) {
                    rexec->wait();
                    rcomm = sg4::Comm::sendto_async(holder_src, gpu, uint64_t(w * j.payload_bytes));
                    ++activities;
                }
                if (lcomm) lcomm->wait();
                if (rcomm) rcomm->wait();
                if (u == 0)
                    r.fetch_s += sg4::Engine::get_clock() - t0,
                        span(ClusterSpan::Kind::Fetch, t0, uint32_t(i));
                for (int k = 0; k < L.micro_batches; ++k) ready[size_t(u)]->release();
            }
    }
};

}  // namespace

ClusterResult simulate_cluster(const ClusterPlan& plan) {
    if (sg4::Engine::is_initialized())
        throw std::logic_error("simulate_cluster: SimGrid allows one engine per process "
                               "(use simulate_cluster_forked)");
    const auto wall0 = std::chrono::steady_clock::now();
    std::vector<std::string> args = {"engramsim"};
    for (auto& o : exact_network_options()) args.push_back(o);
    args.push_back("--cfg=contexts/stack-size:128");  // thousands of actors, shallow stacks
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    int argc = int(argv.size());
    sg4::Engine engine(&argc, argv.data());

    Des des(plan);
    const ClusterLayout& L = plan.layout;
    des.h = build_platform(L, des.U);
    des.fetching = fetches(plan);
    for (int p = 0; p < L.pipeline; ++p) des.programs.push_back(stage_program(plan, p, des.fetching));
    for (int u = 0; u < des.U.count; ++u) {
        des.flows.push_back(unit_flows(plan, des.U, u));
        des.first_gpu_flows.push_back(a2a_flows(plan, des.U.gpu(u), 1, 1));
        for (int m = 0; m < L.micro_batches; ++m) {
            const std::string name = std::to_string(u) + "." + std::to_string(m);
            for (int k = 0; k < 3; ++k)
                des.a2a_box.push_back(sg4::Mailbox::by_name("a2a" + name + "." + std::to_string(k)));
            des.pp_box.push_back(sg4::Mailbox::by_name("pp" + name));
        }
        des.issue.push_back(sg4::Semaphore::create(0));
        des.ready.push_back(sg4::Semaphore::create(0));
        if (L.micro_batches > 1) {
            des.stream.push_back(sg4::Mutex::create());
            des.step_end.push_back(sg4::Barrier::create(unsigned(L.micro_batches)));
        }
    }
    des.r.step_start_s.assign(plan.steps.size(), 0);
    des.r.step_end_s.assign(plan.steps.size(), 0);
    for (int u = 0; u < des.U.count; ++u) {
        for (int m = 0; m < L.micro_batches; ++m)
            sg4::Actor::create("unit" + std::to_string(u) + "." + std::to_string(m),
                               des.h.unit[size_t(u)], [&des, u, m] { des.unit_actor(u, m); });
        if (des.fetching)  // (a unit whose stage has no Engram layer fetches nothing)
            sg4::Actor::create("fetch" + std::to_string(u),
                               des.h.node[size_t(L.node_of(des.U.gpu(u)))],
                               [&des, u] { des.fetcher_actor(u); });
    }
    const auto run0 = std::chrono::steady_clock::now();
    des.r.setup_s = std::chrono::duration<double>(run0 - wall0).count();
    engine.run();
    des.r.makespan_s = sg4::Engine::get_clock();
    des.r.activities = des.activities;
    des.r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - run0).count();
    return des.r;
}

// ---- Running in a forked child ------------------------------------------------------------

namespace {
void put_doubles(std::string& buf, const std::vector<double>& v) {
    const uint64_t n = v.size();
    buf.append(reinterpret_cast<const char*>(&n), sizeof n);
    buf.append(reinterpret_cast<const char*>(v.data()), n * sizeof(double));
}
std::vector<double> take_doubles(const std::string& buf, size_t& at) {
    uint64_t n = 0;
    if (at + sizeof n > buf.size()) throw std::runtime_error("simulate_cluster_forked: short result");
    std::memcpy(&n, buf.data() + at, sizeof n);
    at += sizeof n;
    if (at + n * sizeof(double) > buf.size())
        throw std::runtime_error("simulate_cluster_forked: short result");
    std::vector<double> v(n);
    if (n) std::memcpy(v.data(), buf.data() + at, n * sizeof(double));
    at += n * sizeof(double);
    return v;
}
}  // namespace

ClusterResult simulate_cluster_forked(const ClusterPlan& plan) {
    const std::string buf = run_in_child(
        [&plan] {
            const ClusterResult r = simulate_cluster(plan);
            std::string b;
            put_doubles(b, r.step_start_s);
            put_doubles(b, r.step_end_s);
            put_doubles(b, {r.makespan_s, r.a2a_s, r.stall_s, r.fetch_s, r.compute_s,
                            double(r.activities), r.wall_s, r.setup_s});
            std::vector<double> spans;  // kind, step, start, end
            for (const ClusterSpan& sp : r.spans)
                spans.insert(spans.end(), {double(sp.kind), double(sp.step), sp.start_s, sp.end_s});
            put_doubles(b, spans);
            return b;
        },
        "cluster simulation");
    size_t at = 0;
    ClusterResult r;
    r.step_start_s = take_doubles(buf, at);
    r.step_end_s = take_doubles(buf, at);
    const auto s = take_doubles(buf, at);
    if (s.size() != 8) throw std::runtime_error("simulate_cluster_forked: short result");
    r.makespan_s = s[0], r.a2a_s = s[1], r.stall_s = s[2], r.fetch_s = s[3], r.compute_s = s[4];
    r.activities = uint64_t(s[5]);
    r.wall_s = s[6];
    r.setup_s = s[7];
    const auto spans = take_doubles(buf, at);
    for (size_t i = 0; i + 3 < spans.size(); i += 4)
        r.spans.push_back({ClusterSpan::Kind(uint32_t(spans[i])), uint32_t(spans[i + 1]),
                           spans[i + 2], spans[i + 3]});
    return r;
}

// ---- Metrics and results ------------------------------------------------------------------

ClusterMetrics cluster_metrics(const ClusterPlan& plan, const ClusterResult& r) {
    ClusterMetrics m;
    m.makespan_s = r.makespan_s;
    m.output_tokens = double(plan.output_tokens) * plan.ranks();
    if (r.makespan_s > 0) {
        m.throughput_tok_per_s = m.output_tokens / r.makespan_s;
        m.per_gpu_tok_per_s = m.throughput_tok_per_s / plan.layout.world;
        m.a2a_share = r.a2a_s / r.makespan_s;
        m.stall_share = r.stall_s / r.makespan_s;
    }
    double sum = 0, dsum = 0;
    uint64_t decode = 0;
    for (size_t i = 0; i < plan.steps.size() && i < r.step_end_s.size(); ++i) {
        const double d = r.step_end_s[i] - r.step_start_s[i];
        sum += d;
        if (!plan.steps[i].prefill) dsum += d, ++decode;
        for (uint64_t u : plan.steps[i].unique_rows) m.unique_rows_per_gpu += double(u);
    }
    m.steps = plan.steps.size();
    m.prefill_steps = m.steps - decode;
    double decode_seqs = 0;
    for (size_t i = 0; i < plan.steps.size(); ++i)
        if (!plan.steps[i].prefill) decode_seqs += plan.steps[i].seqs;
    m.decode_tok_per_s_per_gpu = dsum > 0 ? decode_seqs / dsum * plan.ranks() / plan.layout.world : 0;
    // The fabric's bytes from GPU 0: its all-to-alls' NIC flows on every MoE layer it runs, its
    // Engram rows from other nodes.
    const ClusterLayout& L = plan.layout;
    const int layers = plan.stage_last_layer(0) - plan.stage_first_layer(0);
    for (const ClusterStep& st : plan.steps) {
        for (const A2aFlow& f : a2a_flows(plan, 0, st.tokens, 1))
            if (f.kind != A2aFlow::Kind::NvLink)
                m.a2a_network_bytes_per_gpu +=
                    f.bytes * (L.dispatch_bytes_per_value + L.combine_bytes_per_value) * layers;
        if (fetches(plan))
            for (size_t e = 0; e < st.unique_rows.size(); ++e)
                m.engram_network_bytes_per_gpu += fetch_job(plan, 0, st, e).payload_bytes;
    }
    const double net = m.a2a_network_bytes_per_gpu + m.engram_network_bytes_per_gpu;
    m.engram_network_share = net > 0 ? m.engram_network_bytes_per_gpu / net : 0;
    const double table = double(plan.table_rows) * plan.row_bytes;
    m.table_bytes_per_node = plan.table_in_hbm                          ? 0
                             : L.table == TableHome::Replicated          ? table
                             : L.table == TableHome::Sharded             ? table / L.nodes
                                                                         : 0;
    m.mean_step_s = m.steps ? sum / double(m.steps) : 0;
    m.mean_decode_step_s = decode ? dsum / double(decode) : 0;
    m.events_per_s = r.wall_s > 0 ? double(r.activities) / r.wall_s : 0;
    return m;
}

void write_cluster_timeline(const ClusterPlan& plan, const ClusterResult& r, std::ostream& out) {
    static const char* names[] = {"compute", "dispatch", "combine", "Engram stall", "fetch",
                                  "pipeline send"};
    const std::string unit = plan.layout.per_gpu ? "gpu 0" : "node 0's GPUs (alike)";
    // Microseconds, as the Chrome trace format wants; pid 1 the unit's stream, pid 2 its fetches.
    out << std::setprecision(17) << "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n"
        << R"({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": ")" << unit
        << R"( stream"}},)" << "\n"
        << R"({"name": "process_name", "ph": "M", "pid": 2, "args": {"name": ")" << unit
        << R"(: Engram fetches"}})";
    for (size_t i = 0; i < r.step_start_s.size() && i < plan.steps.size(); ++i) {
        const double t0 = r.step_start_s[i] * 1e6, t1 = r.step_end_s[i] * 1e6;
        out << ",\n{\"name\": \"" << (plan.steps[i].prefill ? "prefill" : "decode") << " step " << i
            << "\", \"ph\": \"X\", \"pid\": 1, \"tid\": 1, \"ts\": " << t0
            << ", \"dur\": " << (t1 - t0) << ", \"args\": {\"tokens\": " << plan.steps[i].tokens
            << ", \"seqs\": " << plan.steps[i].seqs << "}}";
    }
    for (const ClusterSpan& sp : r.spans) {
        const bool fetch = sp.kind == ClusterSpan::Kind::Fetch;
        out << ",\n{\"name\": \"" << names[size_t(sp.kind)] << "\", \"ph\": \"X\", \"pid\": "
            << (fetch ? 2 : 1) << ", \"tid\": " << (fetch ? 1 : 2) << ", \"ts\": " << sp.start_s * 1e6
            << ", \"dur\": " << (sp.end_s - sp.start_s) * 1e6 << ", \"args\": {\"step\": " << sp.step
            << "}}";
    }
    out << "\n]}\n";
}

double ClusterRun::overhead_vs_table_in_hbm_pct() const {
    if (!table_in_hbm || !(table_in_hbm->throughput_tok_per_s > 0)) return 0;
    return (table_in_hbm->throughput_tok_per_s - metrics.throughput_tok_per_s) /
           table_in_hbm->throughput_tok_per_s * 100;
}

ClusterRun run_cluster(const json& resolved, bool reference) {
    ClusterRun run{make_cluster_plan(resolved), {}, {}, std::nullopt};
    run.result = simulate_cluster_forked(run.plan);
    run.metrics = cluster_metrics(run.plan, run.result);
    if (reference && run.plan.has_engram && !run.plan.table_in_hbm) {
        const ClusterPlan ref = with_table_in_hbm(run.plan);
        run.table_in_hbm = cluster_metrics(ref, simulate_cluster_forked(ref));
    }
    return run;
}

json cluster_results_json(const ClusterRun& run) {
    const ClusterPlan& plan = run.plan;
    const ClusterResult& r = run.result;
    const ClusterMetrics& m = run.metrics;
    const ClusterLayout& L = plan.layout;
    const char* table = L.table == TableHome::Replicated ? "replicated"
                        : L.table == TableHome::Sharded  ? "sharded"
                                                         : "memory-servers";
    json j = {
        {"schema", "engramsim.cluster-results"},
        {"schema_version", 1},
        {"backbone", plan.backbone.name},
        {"engram", plan.has_engram ? json(plan.engram.name) : json(nullptr)},
        {"hardware", plan.config["hardware"].value("name", std::string())},
        {"workload", plan.config["workload"].value("name", std::string())},
        {"layout",
         {{"nodes", L.nodes}, {"gpus_per_node", L.gpus_per_node}, {"gpus", L.world},
          {"pipeline_parallel", L.pipeline}, {"attention_data_parallel", plan.ranks()},
          {"expert_parallel", L.expert_parallel}, {"expert_replicas", L.expert_replicas},
          {"engram_table", table}, {"memory_servers", L.memory_servers},
          {"micro_batches", L.micro_batches},
          {"routing_skew", L.routing_skew}}},
        {"fabric",
         {{"topology", L.topology}, {"nodes_per_leaf", L.leaf_nodes}, {"leaves", L.leaves},
          {"spines", L.spines}, {"oversubscription", L.oversubscription},
          {"nic_bytes_per_s", L.nic_bytes_per_s}, {"nic_latency_s", L.nic_latency_s},
          {"switch_link_latency_s", L.switch_link_latency_s},
          {"collectives", L.pairwise ? "pairwise" : "coalesced"},
          {"layers_per_event", L.layers_per_event}}},
        {"per_gpu",
         {{"weight_bytes", plan.weight_bytes_per_gpu}, {"kv_blocks", plan.num_kv_blocks},
          {"requests", plan.requests}, {"prompt_tokens", plan.prompt_tokens},
          {"output_tokens", plan.output_tokens}, {"preemptions", plan.preemptions}}},
        {"metrics",
         {{"makespan_s", m.makespan_s},
          {"output_tokens", m.output_tokens},
          {"throughput_tok_per_s", m.throughput_tok_per_s},
          {"per_gpu_tok_per_s", m.per_gpu_tok_per_s},
          {"mean_step_s", m.mean_step_s},
          {"mean_decode_step_s", m.mean_decode_step_s},
          {"decode_tok_per_s_per_gpu", m.decode_tok_per_s_per_gpu},
          {"a2a_network_bytes_per_gpu", m.a2a_network_bytes_per_gpu},
          {"engram_network_bytes_per_gpu", m.engram_network_bytes_per_gpu},
          {"engram_network_share", m.engram_network_share},
          {"table_bytes_per_node", m.table_bytes_per_node},
          {"steps", m.steps},
          {"prefill_steps", m.prefill_steps},
          {"all_to_all_share", m.a2a_share},
          {"engram_stall_share", m.stall_share},
          {"gpu0_all_to_all_s", r.a2a_s},
          {"gpu0_stall_s", r.stall_s},
          {"gpu0_fetch_s", r.fetch_s},
          {"gpu0_compute_s", r.compute_s},
          {"unique_rows_per_gpu", m.unique_rows_per_gpu}}},
        {"simulator",
         {{"activities", r.activities}, {"setup_s", r.setup_s}, {"run_s", r.wall_s},
          {"events_per_s", m.events_per_s}}},
    };
    if (run.table_in_hbm)
        j["comparison"] = {
            {"table_in_hbm_per_gpu_tok_per_s", run.table_in_hbm->per_gpu_tok_per_s},
            {"overhead_vs_table_in_hbm_pct", run.overhead_vs_table_in_hbm_pct()}};
    return j;
}

}  // namespace engramsim::sim::scaleout
