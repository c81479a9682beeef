#include "kernels/profiler/cpu_profiler.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>

#include "kernels/cpu/engram_kernels.h"
#include "kernels/cpu/host_memory.h"
#include "kernels/cpu/moe_kernels.h"
#include "kernels/profiler/work.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "traces/tokens.h"
#include "kernels/cpu/random_inputs.h"

namespace engramsim::profiler {

namespace {

using namespace engramsim::kernels;

constexpr size_t kFlushBytes = size_t(64) << 20;

class Timer {
public:
    explicit Timer(int samples) : samples_(samples), flush_(kFlushBytes) {}

    // One warm-up call, then `samples` timed calls, each after evicting the caches.
    SampleStats time(const std::function<void()>& call) {
        call();
        std::vector<double> s;
        for (int i = 0; i < samples_; ++i) {
            flush();
            const auto start = std::chrono::steady_clock::now();
            call();
            s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                            .count());
        }
        return SampleStats::of(std::move(s));
    }

    void flush() {
        ++round_;
        for (size_t i = 0; i < flush_.size(); i += 64) flush_.data()[i] = uint8_t(round_);
    }

private:
    int samples_;
    HugePageBuffer flush_;
    int round_ = 0;
};

// memcpy of 256 MiB, bytes read + written: the bandwidth ceiling stored with every CPU profile.
double memcpy_bytes_per_s(Timer& timer) {
    const size_t bytes = size_t(256) << 20;
    HugePageBuffer a(bytes), b(bytes);
    const SampleStats st = timer.time([&] { std::memcpy(b.data(), a.data(), bytes); });
    return 2.0 * double(bytes) / st.median_s;
}

bool wanted(const ProfileOptions& o, const std::string& k) {
    return o.kernels.empty() || std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end();
}

KernelProfile start(const std::string& kernel, const std::string& variant, const Provenance& pv,
                    double copy_bw) {
    KernelProfile p{.kernel = kernel, .variant = variant, .provenance = pv};
    p.ceilings["copy_bytes_per_s"] = copy_bw;
    return p;
}

void add(KernelProfile& p, ProfilePoint pt, const SampleStats& st, std::ostream& log) {
    pt.stats = st;
    log << "  " << p.kernel << " [" << p.variant << "]";
    for (const auto& [k, v] : pt.dims) log << ' ' << k << '=' << v;
    log << ": median " << st.median_s * 1e6 << " us";
    if (pt.bytes > 0) log << ", " << pt.bytes / st.median_s / 1e9 << " GB/s";
    if (pt.flops > 0) log << ", " << pt.flops / st.median_s / 1e9 << " GFLOP/s";
    log << '\n';
    p.points.push_back(std::move(pt));
}

}  // namespace

void validate(const ProfileOptions& o) {
    if (o.samples < 1) throw std::invalid_argument("profile: samples must be >= 1");
    for (const auto& k : o.kernels)
        if (std::find(kernel_names().begin(), kernel_names().end(), k) == kernel_names().end()) {
            std::string known;
            for (const auto& n : kernel_names()) known += (known.empty() ? "" : ", ") + n;
            throw std::invalid_argument("unknown kernel '" + k + "'; known: " + known);
        }
}

std::vector<KernelProfile> profile_cpu(const ProfileOptions& o, std::ostream& log) {
    validate(o);
    Provenance pv = host_provenance();
    pv.device_kind = "cpu";
    pv.timing = "cpu_steady_clock";
    pv.cache_flush = "64 MiB buffer written between samples";
    pv.notes.push_back("CPU reference kernels (kernels/cpu), one thread");
    Timer timer(o.samples);
    const double copy_bw = memcpy_bytes_per_s(timer);
    log << "memcpy ceiling: " << copy_bw / 1e9 << " GB/s (read + write)\n";
    std::vector<KernelProfile> out;

    if (wanted(o, "engram_hash")) {
        const auto cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
        const auto map = CompressMap::load(cfg.compress_map);
        const auto all = map.compress(read_tokens("bundled:handbook-en-US"));
        const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
        KernelProfile p = start("engram_hash", "cpu/demo-v1", pv, copy_bw);
        for (size_t T : {1024, 4096, 16384, 65536}) {
            std::span<const uint32_t> ids(all.data(), std::min(T, all.size()));
            std::vector<uint32_t> rows(ids.size() * size_t(hasher.heads_per_layer()));
            const auto st = timer.time([&] { hasher.hash_layer(0, ids, rows); });
            add(p, hash_work(double(ids.size()), hasher.heads_per_layer()), st, log);
        }
        out.push_back(std::move(p));
    }

    if (wanted(o, "engram_gather")) {
        // A 512 MiB table (beyond the private caches; uniform random rows), 16 heads of 80 values.
        for (Dtype dt : {Dtype::bf16, Dtype::fp8_e4m3, Dtype::f32}) {
            const int heads = 16, values = 80;
            const size_t row_bytes = size_t(values) * size_t(dtype_size_bytes(dt));
            const uint64_t per_head = (size_t(512) << 20) / row_bytes / heads;
            HugePageBuffer table(per_head * heads * row_bytes);
            std::vector<uint64_t> offsets, rows;
            for (int h = 0; h < heads; ++h) {
                offsets.push_back(uint64_t(h) * per_head);
                rows.push_back(per_head);
            }
            std::vector<float> scales;
            TableView view{.rows = table.data(), .total_rows = per_head * heads, .dtype = dt,
                           .row_values = values, .head_offsets = offsets, .head_rows = rows};
            if (dt == Dtype::fp8_e4m3) {
                scales.assign(per_head * heads, 1.0f);
                view.scales = scales.data();
                view.scale_block_values = values;
            }
            KernelProfile p = start("engram_gather", "cpu/" + dtype_name(dt), pv, copy_bw);
            std::mt19937_64 rng(1);
            for (size_t T : {256, 1024, 4096, 16384}) {
                std::vector<uint32_t> ids(T * heads);
                for (auto& id : ids) id = uint32_t(rng() % per_head);
                HugePageBuffer dst(ids.size() * row_bytes);
                const auto st = timer.time([&] { gather_rows(view, ids, dst.span()); });
                add(p, gather_work(double(T), heads, double(row_bytes), dtype_name(dt)), st, log);
            }
            out.push_back(std::move(p));
        }
    }

    const int M = 4, d = 1024;
    if (wanted(o, "engram_gate") || wanted(o, "engram_gate_conv")) {
        KernelProfile gate = start("engram_gate", "cpu", pv, copy_bw);
        KernelProfile fused = start("engram_gate_conv", "cpu", pv, copy_bw);
        for (size_t T : {64, 256, 1024}) {
            const size_t n = T * M * d;
            auto h = random_floats(n, 1), k = random_floats(n, 2), v = random_floats(T * d, 3);
            auto w = random_floats(size_t(M) * d, 4), cw = random_floats(size_t(M) * d * 4, 5);
            std::vector<float> alpha(T * M), y(n);
            const GateShape g{.tokens = T, .branches = M, .dim = d};
            const ConvShape c{.tokens = T, .seq_len = T, .branches = M, .dim = d};
            if (wanted(o, "engram_gate"))
                add(gate, gate_work(double(T), d, M),
                    timer.time([&] { engram_gate(g, h, k, v, w, w, alpha, y); }), log);
            if (wanted(o, "engram_gate_conv"))
                add(fused, gate_conv_work(double(T), d, M, 4),
                    timer.time([&] { engram_gate_conv_residual(g, c, h, k, v, w, w, w, cw, y); }),
                    log);
        }
        if (wanted(o, "engram_gate")) out.push_back(std::move(gate));
        if (wanted(o, "engram_gate_conv")) out.push_back(std::move(fused));
    }

    if (wanted(o, "engram_conv")) {
        KernelProfile p = start("engram_conv", "cpu", pv, copy_bw);
        for (size_t T : {64, 256, 1024}) {
            const size_t n = T * M * d;
            auto x = random_floats(n, 1), nw = random_floats(size_t(M) * d, 2);
            auto cw = random_floats(size_t(M) * d * 4, 3);
            std::vector<float> y(n);
            const ConvShape c{.tokens = T, .seq_len = T, .branches = M, .dim = d};
            add(p, conv_work(double(T), double(M * d), 4),
                timer.time([&] { engram_short_conv(c, x, nw, cw, y); }), log);
        }
        out.push_back(std::move(p));
    }

    if (wanted(o, "gemm")) {
        // The key / value projection: e [T][1280] -> [T][512], plain loop.
        KernelProfile p = start("gemm", "cpu/plain-loop", pv, copy_bw);
        for (size_t m : {16, 64}) {
            const size_t n = 512, k = 1280;
            auto a = random_floats(m * k, 1), b = random_floats(n * k, 2);
            std::vector<float> c(m * n);
            add(p, gemm_work(double(m), double(n), double(k)),
                timer.time([&] { gemm_nt(m, n, k, a, b, c); }), log);
        }
        out.push_back(std::move(p));
    }

    const int E = 72, K = 6;
    if (wanted(o, "router_topk")) {
        KernelProfile p = start("router_topk", "cpu", pv, copy_bw);
        for (size_t T : {256, 1024, 4096}) {
            auto logits = random_floats(T * E, 1);
            std::vector<int32_t> ids(T * K);
            std::vector<float> w(T * K);
            add(p, router_work(double(T), E, K),
                timer.time([&] { router_topk_softmax(logits, T, E, K, true, ids, w); }), log);
        }
        out.push_back(std::move(p));
    }

    if (wanted(o, "moe_align")) {
        KernelProfile p = start("moe_align", "cpu/deterministic", pv, copy_bw);
        std::mt19937 rng(3);
        for (size_t T : {256, 1024, 4096}) {
            std::vector<int32_t> ids(T * K);
            for (auto& e : ids) e = int32_t(rng() % E);
            add(p, align_work(double(T), E, K),
                timer.time([&] { (void)align_tokens(ids, E, 16); }), log);
        }
        out.push_back(std::move(p));
    }

    if (wanted(o, "moe_grouped_gemm") || wanted(o, "moe_combine")) {
        // Small enough for a plain loop: 8 experts, top-2, hidden 256, intermediate 128.
        const int e8 = 8, k2 = 2;
        const size_t H = 256, I = 128;
        KernelProfile gg = start("moe_grouped_gemm", "cpu/plain-loop", pv, copy_bw);
        KernelProfile cb = start("moe_combine", "cpu", pv, copy_bw);
        std::mt19937 rng(4);
        auto w1 = random_floats(size_t(e8) * 2 * I * H, 1), w2 = random_floats(size_t(e8) * H * I, 2);
        for (size_t T : {16, 64}) {
            std::vector<int32_t> ids(T * k2);
            for (size_t t = 0; t < T; ++t) {
                ids[t * 2] = int32_t(rng() % e8);
                ids[t * 2 + 1] = int32_t((ids[t * 2] + 1 + rng() % (e8 - 1)) % e8);
            }
            const auto a = align_tokens(ids, e8, 1);
            auto x = random_floats(T * H, 3);
            std::vector<float> xp(size_t(a.expert_offsets.back()) * H), yp(xp.size()), y(T * H);
            auto wts = random_floats(T * k2, 4);
            permute_rows(x, H, k2, a.sorted_assignments, xp);
            if (wanted(o, "moe_grouped_gemm"))
                add(gg, grouped_gemm_work(double(T), e8, k2, double(H), double(I)),
                    timer.time([&] { grouped_swiglu(xp, a.expert_offsets, H, I, w1, w2, yp); }),
                    log);
            if (wanted(o, "moe_combine"))
                add(cb, combine_work(double(T), double(H), k2),
                    timer.time([&] { combine(yp, H, k2, a.position_of_assignment, wts, y); }), log);
        }
        if (wanted(o, "moe_grouped_gemm")) out.push_back(std::move(gg));
        if (wanted(o, "moe_combine")) out.push_back(std::move(cb));
    }
    return out;
}

}  // namespace engramsim::profiler
