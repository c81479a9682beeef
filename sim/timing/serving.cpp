#include "sim/timing/serving.h"

#include <simgrid/s4u.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "sim/timing/collectives.h"
#include "sim/timing/forked.h"
#include "sim/timing/link_probe.h"

namespace sg4 = simgrid::s4u;

namespace engramsim::sim {

namespace {

// One engine's step loop (nano-vLLM's engine loop), run by its actor on its GPU: each step's
// program; fetch actors on `host` move each issue's bytes to every GPU of `gpus`.
void engine_loop(const Plan& plan, DesResult& res, sg4::Host* host,
                 const std::vector<sg4::Host*>& gpus, const std::vector<sg4::Host*>& drives,
                 const std::vector<double>& drive_latency,
                 const std::vector<sg4::Host*>& mems, uint64_t& activities) {
    const size_t n = plan.steps.size();
    std::vector<std::vector<sg4::ActorPtr>> inflight;  // [fetch][gpu]
    // sim.fetch_queue fifo: per GPU, one queue for its fetches' host work and one for their
    // copies to it (a CUDA stream); SimGrid's mutex wakes its waiters in the order they came.
    struct Queues {
        sg4::MutexPtr host, stream;
    };
    std::vector<Queues> queues;
    if (plan.fifo_fetch_queue)
        for (size_t g = 0; g < gpus.size(); ++g)
            queues.push_back({sg4::Mutex::create(), sg4::Mutex::create()});
    // The engine's host work (PlannedStep::host_s). Synchronous: before each step's GPU work.
    // Overlapped (async scheduling): a scheduler actor prepares step i once it has prepared
    // step i - 1 and step i - 2's outputs are back (a queue of two steps in flight), and the GPU
    // starts step i once it is prepared and step i - 1 is done.
    const bool host_work = std::any_of(plan.steps.begin(), plan.steps.end(),
                                       [](const PlannedStep& s) { return s.host_s > 0; });
    sg4::SemaphorePtr prepared, finished;
    if (host_work && plan.overlaps_host) {
        prepared = sg4::Semaphore::create(0);
        finished = sg4::Semaphore::create(0);
        sg4::Actor::create("scheduler", host, [&plan, prepared, finished, &activities] {
            for (size_t i = 0; i < plan.steps.size(); ++i) {
                if (i >= 2) finished->acquire();
                sg4::this_actor::sleep_for(plan.steps[i].host_s);
                ++activities;
                prepared->release();
            }
        });
    }
    for (size_t i = 0; i < n; ++i) {
        const PlannedStep& st = plan.steps[i];
        if (prepared)
            prepared->acquire();
        else if (host_work)
            sg4::this_actor::sleep_for(st.host_s), ++activities;
        res.step_start_s[i] = sg4::Engine::get_clock();
        res.fetch[i].assign(st.fetch.size(), {});
        inflight.assign(st.fetch.size(), {});
        uint32_t collective_index = 0;
        for (const Instr& in : engine_step_program(plan, st)) {
            switch (in.kind) {
                case Instr::Kind::Run:
                    if (in.threads > 1)  // host-cpu: a run on several of the host's cores
                        sg4::this_actor::thread_execute(sg4::this_actor::get_host(), in.seconds,
                                                        in.threads);
                    else
                        sg4::this_actor::execute(run_seconds(in));
                    ++activities;
                    break;
                case Instr::Kind::Issue: {
                    FetchRecord* rec = &res.fetch[i][size_t(in.fetch)];
                    rec->issue_s = sg4::Engine::get_clock();
                    const FetchWork w = st.fetch[size_t(in.fetch)].work;
                    // One actor per GPU, each moving its share to its GPU; the fetch is
                    // ready when the last one is.
                    for (size_t g = 0; g < gpus.size(); ++g)
                        inflight[size_t(in.fetch)].push_back(sg4::Actor::create(
                            "fetch", host,
                            [w, rec, gpu = gpus[g], host, &drives, &drive_latency, &mems,
                             &activities, q = queues.empty() ? Queues{} : queues[g],
                             threads = plan.fetch_threads, sm_share = plan.uva_sm_share,
                             on_host = plan.compute_on_host] {
                                if (w.d2h_wire_bytes > 0) {
                                    sg4::Comm::sendto(gpu, host, uint64_t(w.d2h_wire_bytes));
                                    ++activities;
                                }
                                if (w.nvme_bytes_per_drive > 0) {  // all drives at once
                                    // Each drive: its bytes over its link and, on the drive (one
                                    // core: overlapping reads take turns), its I/Os after the route
                                    // latency; the read is done when both are.
                                    std::vector<sg4::CommPtr> reads;
                                    std::vector<sg4::ActorPtr> ios;
                                    // The host CPU the reads cost, on the host meanwhile. On
                                    // a host-cpu platform the read lasts at least that, but it
                                    // holds no core: what the reads cost the compute beside them
                                    // is measured whole (PlannedFetch::compute_penalty_s), and a
                                    // barrier-bound BLAS team loses more than its fair share.
                                    sg4::ExecPtr cpu;
                                    const double cpu_until = sg4::Engine::get_clock() + w.nvme_cpu_s;
                                    if (w.nvme_cpu_s > 0 && !on_host)
                                        cpu = sg4::this_actor::exec_async(w.nvme_cpu_s);
                                    for (size_t k = 0; k < drives.size(); ++k) {
                                        reads.push_back(sg4::Comm::sendto_async(
                                            drives[k], host, uint64_t(w.nvme_bytes_per_drive)));
                                        if (w.nvme_io_s > 0)
                                            ios.push_back(sg4::Actor::create(
                                                "io", drives[k],
                                                [lat = drive_latency[k], io = w.nvme_io_s] {
                                                    sg4::this_actor::sleep_for(lat);
                                                    sg4::this_actor::execute(io);
                                                }));
                                    }
                                    sg4::Comm::wait_all(reads);
                                    for (auto& a : ios) a->join();
                                    if (cpu) cpu->wait(), ++activities;
                                    if (on_host && sg4::Engine::get_clock() < cpu_until)
                                        sg4::this_actor::sleep_until(cpu_until), ++activities;
                                    activities += drives.size() + 2 * ios.size();
                                }
                                if (q.host) q.host->lock();
                                if (threads > 1)  // host-cpu: its gather threads' cores
                                    sg4::this_actor::thread_execute(host, w.host_s, threads);
                                else
                                    sg4::this_actor::execute(w.host_s);
                                if (q.host) q.host->unlock();
                                if (q.stream) q.stream->lock();
                                // A UVA gather kernel holds a share of the GPU's SMs while its
                                // reads are in flight: an execution on the GPU beside the
                                // compute, its priority set so the two share the GPU as s to
                                // 1 - s (SimGrid shares a host in proportion to priorities).
                                sg4::ExecPtr sms;
                                if (w.gpu_kernel && sm_share > 0)
                                    sms = sg4::Exec::init()
                                              ->set_host(gpu)
                                              ->set_flops_amount(1e30)
                                              ->set_priority(sm_share / (1 - sm_share))
                                              ->start();
                                sg4::this_actor::sleep_for(w.fixed_s);
                                activities += 2;
                                if (w.h2d_wire_bytes > 0) {
                                    sg4::Comm::sendto(host, gpu, uint64_t(w.h2d_wire_bytes));
                                    ++activities;
                                }
                                if (sms) sms->cancel(), ++activities;
                                if (q.stream) q.stream->unlock();
                                if (w.net_bytes_per_node > 0) {  // remote-gather
                                    // Every memory node at once: receive its ids, gather on
                                    // its own CPU, RDMA-write its rows into the GPU.
                                    sg4::Host* ids_from = w.remote_ids_from_gpu ? gpu : host;
                                    std::vector<sg4::ActorPtr> nodes;
                                    for (sg4::Host* m : mems)
                                        nodes.push_back(
                                            sg4::Actor::create("remote", m, [w, m, gpu, ids_from] {
                                                if (w.remote_ids_bytes_per_node > 0)
                                                    sg4::Comm::sendto(
                                                        ids_from, m,
                                                        uint64_t(w.remote_ids_bytes_per_node));
                                                sg4::this_actor::execute(w.remote_gather_s);
                                                sg4::Comm::sendto(m, gpu,
                                                                  uint64_t(w.net_bytes_per_node));
                                            }));
                                    for (auto& a : nodes) a->join();
                                    activities += 3 * mems.size();
                                }
                                rec->ready_s = std::max(rec->ready_s, sg4::Engine::get_clock());
                            }));
                    break;
                }
                case Instr::Kind::Idle:  // the compute's time lost to the fetch, no core held
                    sg4::this_actor::sleep_for(in.seconds);
                    ++activities;
                    break;
                case Instr::Kind::Wait:
                    res.fetch[i][size_t(in.fetch)].needed_s = sg4::Engine::get_clock();
                    for (auto& a : inflight[size_t(in.fetch)]) a->join();
                    inflight[size_t(in.fetch)].clear();
                    break;
                case Instr::Kind::Collective: {
                    const double start = sg4::Engine::get_clock();
                    activities +=
                        run_collective(gpus, in.collective, plan.coalesce_collectives);
                    res.collectives.push_back({uint32_t(i), collective_index++, start,
                                               sg4::Engine::get_clock()});
                    break;
                }
            }
        }
        res.step_end_s[i] = sg4::Engine::get_clock();
        if (finished) finished->release();
    }
}

}  // namespace

DesResult simulate(const Plan& plan) {
    if (sg4::Engine::is_initialized())
        throw std::logic_error("simulate: SimGrid allows one engine per process "
                               "(use simulate_forked)");
    std::vector<std::string> args = {"engramsim"};
    for (auto& o : exact_network_options()) args.push_back(o);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    int argc = int(argv.size());
    sg4::Engine engine(&argc, argv.data());

    // Hosts run "seconds of work" at speed 1: an op's cost-model time is its amount.
    auto* zone = sg4::create_full_zone("machine");
    const Platform& pf = plan.platform;
    std::vector<sg4::Host*> hosts;
    for (const auto& n : pf.nodes()) hosts.push_back(zone->create_host(n.name, 1.0));
    // Under TP every GPU's fetch has its own host threads: one core per GPU, so concurrent
    // host work of different GPUs does not share a core (fetches of one GPU still do).
    const int tp = std::max(1, int(plan.gpus.size()));
    if (tp > 1 && plan.replicas.empty()) hosts[size_t(plan.host)]->set_core_count(tp);
    // Data parallelism: the replicas' fetches share the host's cores. Each fetch's host work
    // (one gather of sim.gather_threads threads) runs at speed 1 on one SimGrid core; the host
    // has floor(host cores / gather_threads) of them, so more concurrent gathers share them.
    if (!plan.replicas.empty()) hosts[size_t(plan.host)]->set_core_count(plan.host_cores);
    // A CPU engine's host: its real cores, each at speed 1 (a run of `threads` cores alone takes
    // its seconds); concurrent runs share them in proportion to their threads, as the kernel's
    // scheduler shares cores among runnable threads.
    if (plan.compute_on_host) hosts[size_t(plan.host)]->set_core_count(plan.cpu_cores);
    std::vector<sg4::Link*> links;
    for (const auto& l : pf.links())
        links.push_back(zone->create_link(l.name, l.bandwidth_bytes_per_s)
                            ->set_latency(l.latency_s)
                            ->seal());
    for (size_t a = 0; a < hosts.size(); ++a)
        for (size_t b = 0; b < hosts.size(); ++b) {
            if (a == b) continue;
            std::vector<int> route;
            try {
                route = pf.route(int(a), int(b));
            } catch (const std::invalid_argument&) {
                continue;
            }
            std::vector<sg4::LinkInRoute> in_route;
            for (int l : route) in_route.emplace_back(links[size_t(l)]);
            zone->add_route(hosts[a]->get_netpoint(), hosts[b]->get_netpoint(), nullptr, nullptr,
                            in_route, false);
        }
    zone->seal();

    DesResult res;
    const size_t n = plan.steps.size();
    res.step_start_s.resize(n);
    res.step_end_s.resize(n);
    res.fetch.resize(n);
    sg4::Host* host = hosts[size_t(plan.host)];
    // A CPU engine (hardware.gpu.kind host-cpu) computes on the host: its steps and the fetches'
    // host work are executions on the same host of Plan::cpu_cores cores. A GEMM keeps every
    // core busy and a fetch beside it slows it; an op on the one compute thread leaves the
    // other cores to a fetch.
    sg4::Host* gpu = plan.compute_on_host ? host : hosts[size_t(plan.gpu)];
    std::vector<sg4::Host*> gpus;  // gpu0..gpu{TP-1}
    if (!plan.compute_on_host)
        for (int g : plan.gpus) gpus.push_back(hosts[size_t(g)]);
    if (gpus.empty()) gpus.push_back(gpu);
    std::vector<sg4::Host*> drives;
    std::vector<double> drive_latency;  // route latency drive -> host
    for (int d : plan.nvme) {
        drives.push_back(hosts[size_t(d)]);
        drive_latency.push_back(pf.transfer_s(pf.route(d, plan.host), 0));
    }
    std::vector<sg4::Host*> mems;  // remote memory servers (table remote-dram)
    for (int m : plan.memory_nodes) mems.push_back(hosts[size_t(m)]);
    uint64_t activities = 0;

    if (plan.replicas.empty()) {
        sg4::Actor::create("engine", gpu, [&] {
            engine_loop(plan, res, host, gpus, drives, drive_latency, mems, activities);
        });
    } else {
        // Data parallelism: one engine actor per replica on its own GPU, all sharing the
        // host (its cores: plan.host_cores), the links and the drives.
        res.replicas.resize(plan.replicas.size());
        for (size_t k = 0; k < plan.replicas.size(); ++k) {
            const Plan& rp = plan.replicas[k];
            DesResult& rr = res.replicas[k];
            rr.step_start_s.resize(rp.steps.size());
            rr.step_end_s.resize(rp.steps.size());
            rr.fetch.resize(rp.steps.size());
            sg4::Host* rgpu = hosts[size_t(rp.gpu)];
            sg4::Actor::create("engine" + std::to_string(k), rgpu, [&, rgpu, k] {
                engine_loop(plan.replicas[k], res.replicas[k], host, {rgpu}, drives, drive_latency, mems,
                            activities);
            });
        }
    }
    engine.run();
    res.makespan_s = n ? res.step_end_s.back() : 0;
    for (DesResult& r : res.replicas) {
        r.makespan_s = r.step_end_s.empty() ? 0 : r.step_end_s.back();
        res.makespan_s = std::max(res.makespan_s, r.makespan_s);
    }
    res.activities = activities;
    return res;
}

DesResult analytic(const Plan& plan) {
    DesResult res;
    for (const Plan& rp : plan.replicas) {  // data parallelism: each replica alone
        res.replicas.push_back(analytic(rp));
        res.makespan_s = std::max(res.makespan_s, res.replicas.back().makespan_s);
    }
    if (!plan.replicas.empty()) return res;
    // The host's work as the simulator's engine loop runs it (engine_loop): before each step,
    // or prepared ahead (step i after step i - 1's preparation and step i - 2's end).
    double t = 0, host_done = 0;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
        const PlannedStep& st = plan.steps[i];
        if (plan.overlaps_host) {
            host_done = std::max(host_done, i >= 2 ? res.step_end_s[i - 2] : 0.0) + st.host_s;
            t = std::max(t, host_done);
        } else {
            t += st.host_s;
        }
        res.step_start_s.push_back(t);
        t += analytic_step_seconds(plan, st);
        res.step_end_s.push_back(t);
    }
    res.fetch.resize(plan.steps.size());
    res.makespan_s = t;
    return res;
}

// ---- Running in a forked child ------------------------------------------------------------

namespace {
static_assert(std::is_trivially_copyable_v<CollectiveRecord>);
void put(std::string& buf, const void* p, size_t n) { buf.append(static_cast<const char*>(p), n); }
template <class T>
void put(std::string& buf, T v) { put(buf, &v, sizeof v); }
template <class T>
T take(const std::string& buf, size_t& at) {
    if (at + sizeof(T) > buf.size()) throw std::runtime_error("simulate_forked: short result");
    T v;
    std::memcpy(&v, buf.data() + at, sizeof v);
    at += sizeof v;
    return v;
}

// A DesResult through the pipe (replicas recursively).
void put_result(std::string& buf, const DesResult& r) {
    put(buf, uint64_t(r.step_start_s.size()));
    for (size_t i = 0; i < r.step_start_s.size(); ++i) {
        put(buf, r.step_start_s[i]);
        put(buf, r.step_end_s[i]);
        put(buf, uint64_t(r.fetch[i].size()));
        for (const auto& f : r.fetch[i]) put(buf, f);
    }
    put(buf, r.makespan_s);
    put(buf, r.activities);
    put(buf, uint64_t(r.collectives.size()));
    put(buf, r.collectives.data(), r.collectives.size() * sizeof(CollectiveRecord));
    put(buf, uint64_t(r.replicas.size()));
    for (const DesResult& rr : r.replicas) put_result(buf, rr);
}

DesResult take_result(const std::string& buf, size_t& at) {
    DesResult r;
    const auto steps = take<uint64_t>(buf, at);
    r.step_start_s.resize(steps);
    r.step_end_s.resize(steps);
    r.fetch.resize(steps);
    for (size_t i = 0; i < steps; ++i) {
        r.step_start_s[i] = take<double>(buf, at);
        r.step_end_s[i] = take<double>(buf, at);
        const auto nf = take<uint64_t>(buf, at);
        for (size_t f = 0; f < nf; ++f) r.fetch[i].push_back(take<FetchRecord>(buf, at));
    }
    r.makespan_s = take<double>(buf, at);
    r.activities = take<uint64_t>(buf, at);
    r.collectives.resize(take<uint64_t>(buf, at));
    const size_t bytes = r.collectives.size() * sizeof(CollectiveRecord);
    if (at + bytes > buf.size()) throw std::runtime_error("simulate_forked: short result");
    if (bytes) std::memcpy(r.collectives.data(), buf.data() + at, bytes);
    at += bytes;
    r.replicas.resize(take<uint64_t>(buf, at));
    for (DesResult& rr : r.replicas) rr = take_result(buf, at);
    return r;
}
}  // namespace

DesResult simulate_forked(const Plan& plan) {
    const std::string buf = run_in_child(
        [&plan] {
            std::string b;
            put_result(b, simulate(plan));
            return b;
        },
        "simulation");
    size_t at = 0;
    return take_result(buf, at);
}

}  // namespace engramsim::sim
