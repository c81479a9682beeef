#include "executor/calibrate.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "executor/attention.h"
#include "executor/backbone.h"
#include "executor/engram_layer.h"
#include "executor/executor.h"
#include "executor/kv_cache.h"
#include "executor/ops.h"
#include "executor/prefetcher.h"
#include "model/statistics.h"
#include "kernels/cpu/block_io.h"
#include "kernels/cpu/host_fetch.h"
#include "traces/lookups.h"
#include "kernels/profiler/profile.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "model/resources.h"
#include "model/step_model.h"
#include "model/units.h"

namespace engramsim::executor {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Streams a buffer larger than the caches (64 MiB: twice this machine's 32 MiB L3), so the
// next call finds its operands in DRAM, as a step does: a step's weights (0.11 GiB for
// cpu-small) and KV cache outgrow the caches, so each op reads them from DRAM. Calibrated with
// warm caches, the first prediction of cpu-small was 36% fast (docs/executor.md).
void flush_caches() {
    static std::vector<uint64_t> junk(size_t(64) << 17);  // 64 MiB
    static uint64_t round = 0;
    ++round;
    for (size_t i = 0; i < junk.size(); i += 8) junk[i] += round;  // one write per line
}


// The stats of each of `calls`, sampled in `rounds` rounds of one call each, in order (after one
// untimed round), the caches flushed before every sample.
std::vector<profiler::SampleStats> time_in_rounds(int rounds, const std::vector<std::function<void()>>& calls) {
    for (const auto& c : calls) c();
    std::vector<std::vector<double>> s(calls.size());
    for (int r = 0; r < rounds; ++r)
        for (size_t i = 0; i < calls.size(); ++i) {
            flush_caches();
            const auto t0 = Clock::now();
            calls[i]();
            s[i].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
    std::vector<profiler::SampleStats> out;
    for (auto& v : s) out.push_back(profiler::SampleStats::of(v));
    return out;
}

// The stats of `fn` over `repeats` calls, after one untimed call, caches flushed before each.
profiler::SampleStats time_calls(int repeats, const std::function<void()>& fn) {
    return time_in_rounds(repeats, {fn}).front();
}

profiler::KernelProfile new_profile(const std::string& kernel, const std::string& variant) {
    profiler::KernelProfile p;
    p.kernel = kernel;
    p.variant = variant;
    p.provenance = profiler::host_provenance();
    p.provenance.device_kind = "cpu";
    p.provenance.timing = "cpu_steady_clock";
    p.provenance.cache_flush = "64 MiB streamed before each sample (caches cold, as in a step)";
    p.provenance.notes = {"engramsim calibrate: the executor's own code (executor/), its default "
                          "threads (compute 1, OpenBLAS all cores)"};
    return p;
}

std::vector<double> grid(double hi, bool quick) {
    std::vector<double> g;
    for (double m = 1; m < hi; m *= quick ? 4 : 2) g.push_back(m);
    g.push_back(hi);
    return g;
}

// gemm at every (n, k) the step model prices for this backbone and Engram, m up to the most
// rows such a GEMM gets in a step.
profiler::KernelProfile profile_gemm(const BackboneShape& b, const EngramConfig* e, int max_tokens,
                                     int max_seqs, const CalibrateOptions& opt) {
    std::map<std::pair<double, double>, double> shapes;  // (n, k) -> largest m
    auto add = [&](const std::vector<OpShape>& ops, double m) {
        for (const OpShape& op : ops)
            if (op.kernel == "gemm") {
                double& hi = shapes[{op.dims.at("n"), op.dims.at("k")}];
                hi = std::max(hi, m);
            }
    };
    StepShape s{.prefill = true, .tokens = 1, .seqs = 1, .context_tokens = 1, .causal_pairs = 1};
    add(layer_ops(b, s), max_tokens);
    add(head_ops(b, s), max_seqs);
    if (e) add(engram_ops(EngramGpuShape::from_config(*e), b, s), max_tokens);
    profiler::KernelProfile p = new_profile("gemm", "cpu-openblas/f32");
    p.provenance.notes.push_back(
        "points sampled in rounds (every point once per round, caches flushed before each "
        "sample), so each median spans the whole calibration, not one moment of a shared VM");
    struct Operands {
        std::vector<float> x, w, y;
    };
    std::vector<std::unique_ptr<Operands>> operands;
    std::vector<std::function<void()>> calls;
    for (const auto& [nk, hi] : shapes) {
        const auto [n, k] = nk;
        operands.push_back(std::make_unique<Operands>(
            Operands{std::vector<float>(size_t(hi * k), 0.01f), std::vector<float>(size_t(n * k), 0.01f),
                     std::vector<float>(size_t(hi * n))}));
        Operands* o = operands.back().get();
        for (double m : grid(hi, opt.quick)) {
            profiler::ProfilePoint pt;
            pt.dims = {{"m", m}, {"n", n}, {"k", k}};
            pt.dtype = "f32";
            pt.flops = 2 * m * n * k;
            pt.bytes = (m * k + k * n + m * n) * 4;
            p.points.push_back(pt);
            calls.push_back([o, m, n = n, k = k] {
                linear(size_t(m), size_t(n), size_t(k), o->x.data(), o->w.data(), o->y.data());
            });
        }
    }
    if (opt.say) opt.say("gemm: " + std::to_string(calls.size()) + " shapes, " +
                         std::to_string(opt.repeats) + " rounds");
    const auto stats = time_in_rounds(opt.repeats, calls);
    for (size_t i = 0; i < stats.size(); ++i) p.points[i].stats = stats[i];
    return p;
}

// attention_step over `slices` with K/V already cached; returns the stats.
profiler::SampleStats time_attention(const AttentionShape& a, PagedKvCache& cache,
                                     const std::vector<StepSlice>& slices, int repeats) {
    size_t T = 0;
    for (const auto& s : slices) T += s.count;
    const size_t q = size_t(a.n_heads) * a.head_dim, kv = size_t(a.n_kv_heads) * a.head_dim;
    std::vector<float> qv(T * q, 0.1f), kvv(T * kv, 0.1f), vv(T * kv, 0.1f), out(T * q);
    std::vector<float> qn(a.head_dim, 1.0f), kn(a.head_dim, 1.0f);
    kernels::ThreadTeam team(1);
    return time_calls(repeats, [&] {
        attention_step(a, cache, 0, slices, qv, kvv, vv, qn, kn, out, team);
    });
}

std::pair<profiler::KernelProfile, profiler::KernelProfile> profile_attention(
    const BackboneShape& b, int max_tokens, int max_seqs, const CalibrateOptions& opt) {
    const AttentionShape a{.n_heads = b.n_heads, .n_kv_heads = b.n_kv_heads, .head_dim = b.head_dim};
    const double qd = double(b.n_heads) * b.head_dim, kvd = double(b.n_kv_heads) * b.head_dim;
    profiler::KernelProfile dec = new_profile("attention_decode", "cpu/f32");
    profiler::KernelProfile pre = new_profile("attention_prefill", "cpu/f32");
    // Decode: total context C over S sequences (C / S each).
    for (double C : opt.quick ? std::vector<double>{4096, 65536} : std::vector<double>{1024, 8192, 65536}) {
        for (double S = 1; S <= std::min<double>(max_seqs, C / 16); S *= 4) {
            if (opt.say) opt.say("attention decode: " + std::to_string(int(S)) + " sequences, context " + std::to_string(int(C)));
            const uint32_t per = uint32_t(C / S);
            PagedKvCache cache({.layers = 1, .n_kv_heads = b.n_kv_heads, .head_dim = b.head_dim,
                                .block_size = 256, .num_blocks = int64_t(S) * (per / 256 + 2)});
            std::vector<StepSlice> sl;
            for (uint32_t r = 0; r < uint32_t(S); ++r) cache.reserve(r, per), sl.push_back({r, per - 1, 1});
            profiler::ProfilePoint pt;
            pt.dims = {{"seqs", S}, {"context", S * per}, {"heads", double(b.n_heads)},
                       {"kv_heads", double(b.n_kv_heads)}, {"head_dim", double(b.head_dim)}};
            pt.flops = 4 * qd * S * per;
            pt.bytes = S * per * 2 * kvd * 4 + 2 * S * qd * 4;
            pt.stats = time_attention(a, cache, sl, opt.repeats);
            dec.points.push_back(pt);
        }
    }
    // Prefill: one sequence of T tokens. "sequences": 1, a dim no op states and the same on
    // every point, keeps the points one curve along tokens and makes the simulator scale its
    // time by FLOPs, which follow the causal pairs of the op's own sequences. (A dim that
    // differed per point made each point its own curve, and the simulator priced every prefill
    // from the 16-token point: 1.4 s too slow on cpu-small's first step.)
    for (double T : grid(std::min(max_tokens, 8192), true)) {
        if (T < 16) continue;
        if (opt.say) opt.say("attention prefill: " + std::to_string(int(T)) + " tokens");
        PagedKvCache cache({.layers = 1, .n_kv_heads = b.n_kv_heads, .head_dim = b.head_dim,
                            .block_size = 256, .num_blocks = int64_t(T) / 256 + 2});
        cache.reserve(0, uint32_t(T));
        profiler::ProfilePoint pt;
        pt.dims = {{"tokens", T}, {"heads", double(b.n_heads)}, {"head_dim", double(b.head_dim)},
                   {"sequences", 1}};
        pt.flops = 4 * qd * T * (T + 1) / 2;
        pt.bytes = T * (2 * qd + 2 * kvd) * 4;
        pt.stats = time_attention(a, cache, {{0, 0, uint32_t(T)}}, T > 2048 ? 2 : opt.repeats);
        pre.points.push_back(pt);
    }
    return {dec, pre};
}

profiler::KernelProfile profile_engram_gather(const EngramConfig& e, int max_tokens,
                                              const CalibrateOptions& opt) {
    profiler::KernelProfile p = new_profile("engram_gather", "cpu/bf16");
    const int heads = e.heads_per_layer(), rd = e.row_dim();
    kernels::ThreadTeam team(1);
    for (double T : grid(max_tokens, true)) {
        const size_t n = size_t(T) * heads;
        std::vector<uint8_t> rows(n * size_t(rd) * 2, 0x3c);
        std::vector<uint32_t> inverse(n);
        for (size_t i = 0; i < n; ++i) inverse[i] = uint32_t(i);
        std::vector<float> out(n * size_t(rd));
        profiler::ProfilePoint pt;
        pt.dims = {{"tokens", T}, {"heads", double(heads)}, {"row_bytes", e.row_bytes()}};
        pt.dtype = "bf16";
        pt.bytes = 2 * T * heads * e.row_bytes();
        pt.stats = time_calls(opt.repeats, [&] { widen_lookups(rows, inverse, heads, rd, out, team); });
        p.points.push_back(pt);
    }
    return p;
}

// The Engram module's non-GEMM parts as the executor runs them (EngramModule::gate and
// convolve_into, one compute thread): engram_gate at T tokens; engram_conv for a prefill (one
// sequence of T new tokens); engram_conv_decode for S sequences of one new token each over
// their history window, which the executor's convolution computes again for every new token.
// The roofline priced these from one elementwise rate and undercounted them (docs/executor.md).
std::vector<profiler::KernelProfile> profile_engram_module(const EngramConfig& e, int hidden,
                                                           int max_tokens, int max_seqs,
                                                           const CalibrateOptions& opt) {
    EngramModule m(e, hidden, 1);
    kernels::ThreadTeam team(1);
    const double H = hidden, K = e.kernel_size;
    profiler::KernelProfile gate = new_profile("engram_gate", "cpu/f32");
    profiler::KernelProfile conv = new_profile("engram_conv", "cpu/f32");
    profiler::KernelProfile dec = new_profile("engram_conv_decode", "cpu/f32");
    for (auto* p : {&gate, &conv, &dec})
        p->provenance.notes.push_back("the executor's EngramModule, weights seeded, inputs constant");
    auto point = [&](double T, const std::map<std::string, double>& dims, profiler::SampleStats st) {
        profiler::ProfilePoint pt;
        pt.dims = dims;
        pt.dims["tokens"] = T;
        pt.dtype = "bf16";  // as the step model names the Engram ops (the table's dtype)
        pt.stats = st;
        return pt;
    };
    std::vector<float> emb, h;
    auto ready = [&](size_t T) {  // the step's projections and gate done, as forward() has them
        emb.assign(T * size_t(m.d_mem()), 0.01f);
        h.assign(T * size_t(hidden), 0.5f);
        m.project(emb, T);
        m.gate(h, team);
    };
    for (double T : grid(max_tokens, true)) {
        ready(size_t(T));
        gate.points.push_back(point(T, {{"hidden", H}, {"branches", 1}},
                                    time_calls(opt.repeats, [&] { m.gate(h, team); })));
        const std::vector<StepSlice> one = {{0, 0, uint32_t(T)}};
        conv.points.push_back(point(T, {{"hidden", H}, {"kernel", K}}, time_calls(opt.repeats, [&] {
                                        m.release(0);  // a new sequence: no history
                                        m.convolve_into(one, h, team);
                                    })));
    }
    const uint32_t window = uint32_t((e.kernel_size - 1) * e.max_ngram_size);
    for (double S : grid(max_seqs, true)) {
        // Each sequence with a full history window, then one new token per sequence per call.
        std::vector<StepSlice> slices;
        for (uint32_t r = 0; r < uint32_t(S); ++r) m.release(r), slices.push_back({r, 0, window + 1});
        ready(size_t(S) * (window + 1));
        m.convolve_into(slices, h, team);
        for (auto& sl : slices) sl.first = window + 1, sl.count = 1;
        ready(size_t(S));
        dec.points.push_back(point(S, {{"hidden", H}, {"kernel", K}}, time_calls(opt.repeats, [&] {
                                       m.convolve_into(slices, h, team);
                                       for (auto& sl : slices) ++sl.first;
                                   })));
    }
    return {gate, conv, dec};
}

// The MLP's activation, SiLU(gate) * up, as the executor runs it (silu_mul, one compute thread)
// at T tokens: a scalar exp per element, about 7 ns each on this machine against the ~1 ns the
// elementwise rate (an RMSNorm's bytes per second) prices it at (docs/executor.md).
profiler::KernelProfile profile_swiglu(const BackboneShape& b, int max_tokens,
                                       const CalibrateOptions& opt) {
    profiler::KernelProfile p = new_profile("swiglu_act", "cpu/f32");
    p.provenance.notes.push_back("the executor's silu_mul, inputs seeded uniform in [-4, 4)");
    kernels::ThreadTeam team(1);
    const size_t inter = size_t(b.intermediate);
    for (double T : grid(max_tokens, true)) {
        std::vector<float> gate_up(size_t(T) * 2 * inter), out(size_t(T) * inter);
        fill_uniform(gate_up, 4.0f, 0x5e1u);
        profiler::ProfilePoint pt;
        pt.dims = {{"tokens", T}, {"intermediate", double(inter)}};
        pt.dtype = "f32";
        pt.bytes = T * double(inter) * 3 * 4;  // gate and up read, the product written
        pt.flops = T * double(inter) * 4;
        pt.stats = time_calls(opt.repeats, [&] { silu_mul(gate_up, inter, out, team); });
        p.points.push_back(pt);
    }
    return p;
}

double best_flop_rate(const profiler::KernelProfile& gemm) {
    double best = 0;
    for (const auto& pt : gemm.points) best = std::max(best, pt.flops / pt.stats.median_s);
    return best;
}

// Bytes per second of RMSNorm over 16 Mi values on one thread (read + write).
double elementwise_rate(int repeats) {
    const size_t n = size_t(1) << 24, dim = 1024;
    std::vector<float> x(n, 0.5f), y(n), w(dim, 1.0f);
    kernels::ThreadTeam team(1);
    const auto s = time_calls(repeats, [&] { rms_norm(x, w, 1e-6f, y, team); });
    return 2.0 * n * 4 / s.median_s;
}

// One tiny op, as the executor calls it: the fixed cost the roofline adds to every op.
double op_floor(int repeats) {
    std::vector<float> x(64, 0.5f), y(64), w(64, 1.0f);
    kernels::ThreadTeam team(1);
    const auto s = time_calls(repeats * 10, [&] { rms_norm(x, w, 1e-6f, y, team); });
    return s.median_s;
}

// `lookups` keys, distinct in practice (44 random bits): a decode step's lookups.
std::vector<uint64_t> wake_keys(size_t lookups) {
    std::vector<uint64_t> keys(lookups);
    uint64_t s = 0x5eed;
    for (auto& k : keys) k = (s = s * 6364136223846793005ULL + 1442695040888963407ULL) >> 20;
    return keys;
}

// What a prefetch issued at a decode step's start costs the compute beyond its own work.
// `compute` is a 16-sequence decode step's compute, timed alone and with a fetch of `keys`
// handed to the config's own prefetcher `pf` just before it (then waited for after it),
// alternating; the penalty is the median of the trials' differences (each pair of samples taken
// back to back, so a slow spell of the shared machine moves both) less `charged_s`, what the
// simulator already charges that compute for the fetch (default: the fetch's own time alone), at
// least 0. From DRAM, `pf` is the gather team and the compute the step's GEMMs: a gather's host
// work slows GEMMs on every core by its own time. From the drive, `pf` is the reader threads (one
// direct read in flight each; every completion wakes one) and the compute the whole decode
// step (DecodeStep), and nothing is charged: the simulator's only cost of the reads to
// the compute is this penalty.
struct WakePenalty {
    double reads = 0;  // the fetch's keys (from the drive: its reads)
    double compute_alone_s = 0, compute_beside_fetch_s = 0, fetch_alone_s = 0,
           paired_difference_s = 0, penalty_s = 0;
};
// One WakePenalty per key set, all measured in the same rounds (each round times every set's
// pair and fetch in turn), so a slow spell of the machine meets every size.
std::vector<WakePenalty> measure_wake_penalties(const std::function<void()>& compute, Prefetcher& pf,
                                                const std::vector<std::vector<uint64_t>>& key_sets,
                                                int trials,
                                                std::optional<double> charged_s = std::nullopt) {
    const size_t n = key_sets.size();
    std::vector<std::vector<double>> alone(n), beside(n), fetch(n), difference(n);
    compute();
    for (const auto& keys : key_sets) pf.fetch(keys);
    for (int t = 0; t < trials; ++t)
        for (size_t k = 0; k < n; ++k) {
            auto t0 = Clock::now();
            compute();
            alone[k].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
            t0 = Clock::now();
            pf.issue(key_sets[k]);
            compute();
            pf.wait();
            beside[k].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
            difference[k].push_back(beside[k].back() - alone[k].back());
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the prefetcher idles, as between steps
            t0 = Clock::now();
            pf.fetch(key_sets[k]);
            fetch[k].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
    std::vector<WakePenalty> out(n);
    for (size_t k = 0; k < n; ++k) {
        WakePenalty& w = out[k];
        w.reads = double(key_sets[k].size());
        w.compute_alone_s = median(alone[k]), w.compute_beside_fetch_s = median(beside[k]);
        w.fetch_alone_s = median(fetch[k]);
        w.paired_difference_s = median(difference[k]);
        w.penalty_s = std::max(0.0, w.paired_difference_s - charged_s.value_or(w.fetch_alone_s));
    }
    return out;
}

// A line through (reads, seconds) points by least squares, neither term below 0 (a negative
// slope: the mean, fixed): a disk fetch's time alone in its reads, and for reference its penalty.
struct Line {
    double fixed_s = 0, per_read_s = 0;
};
Line fit_line(const std::vector<std::pair<double, double>>& pts) {
    double mx = 0, my = 0;
    for (const auto& [x, y] : pts) mx += x, my += y;
    mx /= double(pts.size()), my /= double(pts.size());
    double sxx = 0, sxy = 0;
    for (const auto& [x, y] : pts) sxx += (x - mx) * (x - mx), sxy += (x - mx) * (y - my);
    Line l;
    l.per_read_s = sxx > 0 ? std::max(0.0, sxy / sxx) : 0.0;
    l.fixed_s = std::max(0.0, my - l.per_read_s * mx);
    return l;
}

// The GEMMs of every layer of a 16-sequence decode step at the config's shapes, each layer its
// own weights: the compute a DRAM prefetch's penalty is measured beside.
class DecodeGemms {
public:
    explicit DecodeGemms(const BackboneShape& b)
        : H_(b.hidden), I_(b.intermediate), q_(size_t(b.n_heads) * b.head_dim),
          kv_(size_t(b.n_kv_heads) * b.head_dim), layers_(b.layers) {
        for (auto& w : layers_)
            w.qkv.assign((q_ + 2 * kv_) * H_, 0.01f), w.o.assign(H_ * q_, 0.01f),
                w.gu.assign(2 * I_ * H_, 0.01f), w.d.assign(H_ * I_, 0.01f);
        x_.assign(kSeqs * std::max({H_, I_, q_}), 0.01f);
        y_.resize(kSeqs * std::max(2 * I_, q_ + 2 * kv_));
    }
    void operator()() {
        for (auto& w : layers_) {
            linear(kSeqs, q_ + 2 * kv_, H_, x_.data(), w.qkv.data(), y_.data());
            linear(kSeqs, H_, q_, x_.data(), w.o.data(), y_.data());
            linear(kSeqs, 2 * I_, H_, x_.data(), w.gu.data(), y_.data());
            linear(kSeqs, H_, I_, x_.data(), w.d.data(), y_.data());
        }
    }
    static constexpr size_t kSeqs = 16;

private:
    struct W {
        std::vector<float> qkv, o, gu, d;
    };
    size_t H_, I_, q_, kv_;
    std::vector<W> layers_;
    std::vector<float> x_, y_;
};

// A whole 16-sequence decode step as the executor computes it (its own Backbone: embedding,
// every layer with attention over the paged KV cache, the LM head), each sequence at `context`
// tokens: the compute a disk prefetch's penalty is measured beside. Not the GEMMs alone: the
// fetch overlaps the step's one-thread ops (attention, norms) too, and the simulator charges the
// penalty whole, whatever it overlaps (docs/executor.md, "A disk prefetch beside a whole decode
// step").
class DecodeStep {
public:
    DecodeStep(const BackboneShape& b, int block_size, uint32_t context)
        : backbone_(b, 0x5eed), cache_(kv_shape(b, block_size, context)), team_(1),
          h_(DecodeGemms::kSeqs * size_t(b.hidden)) {
        for (uint32_t r = 0; r < DecodeGemms::kSeqs; ++r) {
            cache_.reserve(r, context + 1);
            slices_.push_back({r, context, 1, /*decode=*/true, /*sample=*/true});
            tokens_.push_back(r * 7919u);
            last_.push_back(r);
        }
    }
    void operator()() {
        backbone_.embed(tokens_, h_);
        for (int l = 0; l < backbone_.shape().layers; ++l)
            backbone_.layer(l, slices_, h_, cache_, team_);
        backbone_.head(h_, last_, team_);
    }

private:
    static KvShape kv_shape(const BackboneShape& b, int block_size, uint32_t context) {
        const int64_t blocks_each = (int64_t(context) + 1 + block_size - 1) / block_size;
        return {.layers = b.layers, .n_kv_heads = b.n_kv_heads, .head_dim = b.head_dim,
                .block_size = block_size, .num_blocks = blocks_each * int64_t(DecodeGemms::kSeqs)};
    }
    Backbone backbone_;
    PagedKvCache cache_;
    kernels::ThreadTeam team_;  // the engine's one compute thread (BLAS threads: OpenBLAS's own)
    std::vector<StepSlice> slices_;
    std::vector<uint32_t> tokens_;
    std::vector<size_t> last_;
    std::vector<float> h_;
};

// The context each sequence of the disk penalty's decode step attends to: the middle of the
// workload's prompt lengths (256 where it names none).
uint32_t decode_context(const json& cfg) {
    const json& p = cfg.at("workload").value("prompt_len", json::object());
    if (!p.contains("min") || !p.contains("max")) return 256;
    return (p["min"].get<uint32_t>() + p["max"].get<uint32_t>()) / 2;
}

// CPU time of this process so far, all threads, user and system.
double process_cpu_s() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// The drive under the table file: read latency at depth 1, random reads per second at several
// depths (the curve sim.nvme_queueing measured interpolates), sequential bandwidth.
// The table file the executor reads (written once, then reused), opened for direct reads.
std::unique_ptr<kernels::BlockFile> open_table_file(const json& cfg, const CalibrateOptions& opt) {
    const LookupLayout layout = lookup_layout(EngramConfig::from_json(cfg.at("engram")));
    const uint64_t bytes = uint64_t(layout.total_rows * layout.row_bytes);
    const size_t io = size_t(config::quantity(cfg["sim"], "nvme_io_size", units::Dim::Bytes));
    const std::string path = opt.table_file.empty() ? default_table_file(bytes) : opt.table_file;
    return std::make_unique<kernels::BlockFile>(path, (bytes + io - 1) / io * io, io);
}

json measure_drive(const json& cfg, const kernels::BlockFile& file, const CalibrateOptions& opt) {
    const std::string& path = file.path();
    if (opt.say) opt.say("the drive under " + path + ": latency, reads per second by depth, bandwidth");
    const int qd = cfg["sim"]["nvme_queue_depth"].get<int>();
    // In rounds, every depth once per round, each depth's rate the median of its rounds: one
    // sample of a few thousand reads lasts 50 ms at depth 32, and on a shared disk a single one
    // made the curve fall from 75K reads/s at depth 16 to 51K at 32. The CPU a read costs is
    // sampled in the same rounds.
    const int rounds = opt.quick ? 3 : 7;
    const std::set<int> depths = {1, 4, 16, 64, qd};
    const uint64_t cpu_reads = uint64_t(std::max(qd * 40, opt.quick ? 1000 : 2000));
    std::map<int, std::vector<double>> iops;
    std::vector<double> cpu;
    for (int r = 0; r < rounds; ++r) {
        const uint64_t round_seed = 0x9e37u * uint64_t(r);  // other blocks each round
        for (int d : depths)
            iops[d].push_back(kernels::measure_read_iops(
                file, d, uint64_t(std::max(d * 40, opt.quick ? 1000 : 3000)),
                0xd15c + uint64_t(d) + round_seed));
        // The host CPU the reads cost at the engine's depth: the process's CPU time (user and
        // system) over a run of them, per read.
        const double cpu0 = process_cpu_s();
        kernels::measure_read_iops(file, qd, cpu_reads, 0xc9u + round_seed);
        cpu.push_back((process_cpu_s() - cpu0) / double(cpu_reads));
    }
    json at_depth = json::object(), samples = json::object();
    for (const auto& [d, v] : iops) {
        at_depth[std::to_string(d)] = std::to_string(median(v));
        samples[std::to_string(d)] = v;
    }
    return {{"file", path},
            {"cpu_per_read_s", median(cpu)},
            {"cpu_per_read_samples_s", cpu},
            {"read_latency_s", kernels::measure_read_latency(file, opt.quick ? 500 : 2000, 0x1a7)},
            {"iops_at_depth", at_depth},
            {"iops_at_depth_samples", samples},
            {"rounds", rounds},
            {"queue_depth", qd},
            {"iops_at_queue_depth", median(iops[qd])},
            {"read_bytes_per_s", kernels::measure_read_bandwidth(file, size_t(1) << 20, 4, uint64_t(256) << 20)}};
}

void write_json(const std::string& path, const json& j) {
    std::ofstream f(path);
    f << j.dump(2) << '\n';
    if (!f.flush()) throw std::runtime_error(path + ": write failed");
}

std::string q(double v, units::Dim d) { return units::format(v, d); }

}  // namespace

json calibrate(const json& cfg, const std::string& dir, const CalibrateOptions& opt) {
    namespace fs = std::filesystem;
    const BackboneShape b = BackboneShape::from_json(cfg.at("backbone"));
    const EngramConfig e = EngramConfig::from_json(cfg.at("engram"));
    const bool has_engram = !e.layer_ids.empty();
    const json& simc = cfg.at("sim");
    const int max_tokens = simc.at("max_num_batched_tokens").get<int>();
    // Up to 256 sequences whatever the config's limit, so one calibration serves configs that
    // differ only in it (validate serving).
    const int max_seqs = std::max(256, simc.at("max_num_seqs").get<int>());
    const int gather_threads = simc.at("gather_threads").get<int>();
    const int reps = opt.quick ? 3 : opt.repeats;  // gemm: rounds
    CalibrateOptions o = opt;
    o.repeats = reps;
    fs::create_directories(dir + "/profiles");

    const auto gemm = profile_gemm(b, has_engram ? &e : nullptr, max_tokens, max_seqs, o);
    const auto [dec, pre] = profile_attention(b, max_tokens, max_seqs, o);
    std::vector<profiler::KernelProfile> profiles = {gemm, dec, pre};
    if (b.intermediate > 0) {
        if (opt.say) opt.say("the MLP's activation (SiLU * up)");
        profiles.push_back(profile_swiglu(b, max_tokens, o));
    }
    if (has_engram) {
        profiles.push_back(profile_engram_gather(e, max_tokens, o));
        if (opt.say) opt.say("the Engram module: gate, short conv (prefill, decode)");
        for (auto& p : profile_engram_module(e, b.hidden, max_tokens, max_seqs, o)) profiles.push_back(p);
    }
    for (const auto& p : profiles) profiler::write_profile(p, dir + "/profiles");

    if (opt.say) opt.say("elementwise rate, op floor");
    const double flops = best_flop_rate(gemm), ew = elementwise_rate(reps), floor_s = op_floor(reps);

    // The cpu-gather model, as validate host-fetch calibrates it, on a table of the size the
    // executor gathers from (the table in DRAM, or the DRAM cache in front of a table file; at
    // least 4,096 rows; 256 MiB with nothing gathered from DRAM): a row's latency grows with the
    // table, past what the TLB reaches (190 ns in 256 MiB, 363 ns in 6 GiB here).
    const size_t row_bytes = size_t(std::max(2.0, has_engram ? e.row_bytes() : 128.0));
    const uint64_t dram_bytes = has_engram ? dram_gather_bytes(cfg) : 0;
    const uint64_t gather_table_bytes =
        dram_bytes > 0 ? std::max<uint64_t>(dram_bytes, 4096 * uint64_t(row_bytes)) : uint64_t(256) << 20;
    if (opt.say)
        opt.say("gather model on a table of " + std::to_string(gather_table_bytes >> 20) +
                " MiB: row latency, gather line, dedup rate");
    kernels::HostTable table(gather_table_bytes, row_bytes);
    const double row_latency = kernels::measure_row_latency(table, 1 << 18, 0xc0ffee);
    const std::vector<uint64_t> sizes = {64, 256, 1024, 4096, 16384, 65536};
    const auto line1 = kernels::measure_gather_line(table, 1, sizes, opt.quick ? 5 : 9, 0, 0xbeef);
    const auto lineT = gather_threads == 1 ? line1
                                           : kernels::measure_gather_line(table, gather_threads, sizes,
                                                                          opt.quick ? 5 : 9, 0, 0xbeef + 1);
    const double outstanding = row_latency / line1.per_row_s;
    const double dram_bw = (1.0 / lineT.per_row_s) * (std::ceil(double(row_bytes) / 64) * 64 + double(row_bytes));
    const double dedup = kernels::measure_dedup_rate(1 << 16, 1 << 22, 0xd00d);
    const int cores = std::max(1, int(std::thread::hardware_concurrency()));
    if (opt.say) opt.say("a prefetch beside the compute: the wake penalty");
    const std::vector<uint64_t> keys = wake_keys(16 * size_t(has_engram ? e.heads_per_layer() : 0));
    const int trials = opt.quick ? 31 : 61;
    const bool on_disk = has_engram && simc.at("table") == "nvme";
    WakePenalty wake;  // from DRAM, with the config's own gather team
    json drive = json::object();
    std::vector<WakePenalty> disk_wake;  // the drive's: 2, 8 and 16 sequences' lookups
    Line disk_line, free_line, fetch_line;  // the penalty's (charged, free) and the fetch's time alone
    double dispatch = 0;         // sim.nvme_fetch_dispatch
    if (on_disk) {
        const auto file = open_table_file(cfg, o);
        drive = measure_drive(cfg, *file, o);
        if (opt.say) opt.say("a prefetch from the drive beside a decode step: the wake penalty, fixed and per read");
        Prefetcher pf(*file, row_bytes, simc.at("nvme_queue_depth").get<int>());
        // Beside a whole decode step, each sequence at the workload's middle prompt length; the
        // whole paired difference is the penalty (the simulator charges the reads nothing else).
        DecodeStep step(b, simc.at("kv_block_size").get<int>(), decode_context(cfg));
        std::vector<std::vector<uint64_t>> sets;
        for (size_t seqs : {2, 8, 16})
            sets.emplace_back(keys.begin(), keys.begin() + std::ptrdiff_t(seqs * e.heads_per_layer()));
        disk_wake = measure_wake_penalties([&] { step(); }, pf, sets, trials, /*charged_s=*/0.0);
        std::vector<std::pair<double, double>> penalty, alone;
        for (const WakePenalty& w : disk_wake)
            penalty.emplace_back(w.reads, w.penalty_s), alone.emplace_back(w.reads, w.fetch_alone_s);
        // The line's slope is each read's CPU (cpu_per_read, measured over thousands of reads):
        // the compute loses a read's whole CPU, as the executions show (docs/executor.md). Its
        // fixed part: the sizes' mean paired difference less their reads' CPU, at least 0. The
        // free least-squares line is kept for reference; from three sizes of 16 to 128 reads
        // its slope moved from 8 to 26 us a read between calibrations, too loose to extrapolate
        // to a prefill's thousands of reads.
        free_line = fit_line(penalty);
        disk_line.per_read_s = drive["cpu_per_read_s"].get<double>();
        double rest = 0;
        for (const WakePenalty& w : disk_wake) rest += w.penalty_s - w.reads * disk_line.per_read_s;
        disk_line.fixed_s = std::max(0.0, rest / double(disk_wake.size()));
        // What a fetch takes beyond its reads: the fetch line's fixed part less the one read
        // latency the simulator charges each fetch (its reads then cost what the drive curve and
        // cpu_per_read say).
        fetch_line = fit_line(alone);
        dispatch = std::max(0.0, fetch_line.fixed_s - drive["read_latency_s"].get<double>());
    } else if (has_engram) {
        Prefetcher pf(table, gather_threads, /*background=*/true);  // as the engine's layer-ahead schedules
        DecodeGemms gemms(b);
        wake = measure_wake_penalties([&] { gemms(); }, pf, {keys}, trials).front();
    }
    const uint64_t mem_total = resources::total_memory_bytes();
    const uint64_t mem_avail = resources::available_memory_bytes();
    const profiler::Provenance prov = profiler::host_provenance();

    json hw = cfg.at("hardware");
    hw["name"] = "this-machine-cpu";
    hw["base"] = "";
    hw["description"] = "This machine's CPU as the accelerator (engramsim calibrate, " + prov.date_utc + ")";
    hw["assumptions"] = json::array({
        "gpu.kind host-cpu: the host's cores compute; fetched rows stay in host memory (no link)",
        "gpu.bf16_dense_flops: the best float32 GEMM rate measured (OpenBLAS, all cores); only "
        "ops no profile covers use it",
        "gpu.hbm_bandwidth: one thread's RMSNorm read + write rate, the rate of the executor's "
        "elementwise ops (one compute thread)",
        "host_link: not crossed (1000 TB/s and 0 s are placeholders the range check accepts)"});
    hw["sources"] = json::object();
    hw["gpu"]["kind"] = "host-cpu";
    hw["gpu"]["model"] = prov.device_name;
    hw["gpu"]["count"] = 1;
    hw["gpu"]["sm_count"] = cores;
    hw["gpu"]["bf16_dense_flops"] = q(flops, units::Dim::FlopRate);
    hw["gpu"]["fp8_dense_flops"] = q(flops, units::Dim::FlopRate);
    hw["gpu"]["hbm_bandwidth"] = q(std::floor(ew), units::Dim::Bandwidth);
    hw["gpu"]["hbm_capacity"] = q(double(mem_avail), units::Dim::Bytes);
    hw["host"]["cpu"] = prov.device_name;
    hw["host"]["sockets"] = 1;
    hw["host"]["cores_per_socket"] = cores;
    hw["host"]["dram_capacity"] = q(double(mem_total), units::Dim::Bytes);
    hw["host"]["dram_bandwidth"] = q(std::floor(dram_bw), units::Dim::Bandwidth);
    if (on_disk) {
        hw["nvme"]["model"] = "this machine's disk, measured on the table file with direct I/O";
        hw["nvme"]["count"] = 1;
        hw["nvme"]["read_latency"] = q(drive["read_latency_s"].get<double>(), units::Dim::Time);
        hw["nvme"]["random_read_iops"] = drive["iops_at_queue_depth"].get<double>();
        hw["nvme"]["read_bandwidth"] = q(std::floor(drive["read_bytes_per_s"].get<double>()), units::Dim::Bandwidth);
        hw["nvme"]["iops_at_depth"] = drive["iops_at_depth"];
        hw["nvme"]["cpu_per_read"] = q(drive["cpu_per_read_s"].get<double>(), units::Dim::Time);
    }
    hw["host_link"]["bandwidth_per_direction"] = "1000 TB/s";
    hw["host_link"]["latency"] = "0 s";

    const json sim_keys = {
        {"profiles", fs::absolute(dir + "/profiles").string()},
        {"row_access_latency", q(row_latency, units::Dim::Time)},
        {"outstanding_per_thread", outstanding},
        {"gather_dispatch", q(std::max(0.0, lineT.fixed_s), units::Dim::Time)},
        {"dedup_rate_per_thread", dedup},
        {"gather_threads", gather_threads},
        {"gemm_efficiency", 1},
        {"attention_efficiency", 1},
        {"memory_efficiency", 1},
        {"kernel_floor", q(floor_s, units::Dim::Time)},
        {"dma_setup", "0 s"},
        // On disk the line's fixed part (the per-read part below).
        {"fetch_wake_penalty", q(on_disk ? disk_line.fixed_s : wake.penalty_s, units::Dim::Time)}};
    json sim_out = sim_keys;
    if (on_disk) {
        sim_out["nvme_queueing"] = "measured";
        sim_out["fetch_wake_penalty_per_read"] = q(disk_line.per_read_s, units::Dim::Time);
        sim_out["nvme_fetch_dispatch"] = q(dispatch, units::Dim::Time);
    }
    write_json(dir + "/hardware.json", hw);
    write_json(dir + "/sim.json", sim_out);
    json wake_json;
    if (!on_disk) {
        wake_json = {{"decode_gemms_alone_s", wake.compute_alone_s},
                     {"decode_gemms_beside_a_fetch_s", wake.compute_beside_fetch_s},
                     {"fetch_alone_s", wake.fetch_alone_s},
                     {"paired_difference_s", wake.paired_difference_s},
                     {"penalty_s", wake.penalty_s}};
    } else {
        wake_json = {{"fixed_s", disk_line.fixed_s}, {"per_read_s", disk_line.per_read_s},
                     {"free_line", {{"fixed_s", free_line.fixed_s}, {"per_read_s", free_line.per_read_s}}},
                     {"fetch_alone_line", {{"fixed_s", fetch_line.fixed_s}, {"per_read_s", fetch_line.per_read_s}}},
                     {"dispatch_s", dispatch},
                     {"sizes", json::array()}};
        for (const WakePenalty& w : disk_wake)
            wake_json["sizes"].push_back({{"reads", w.reads},
                                          {"decode_step_alone_s", w.compute_alone_s},
                                          {"decode_step_beside_a_fetch_s", w.compute_beside_fetch_s},
                                          {"fetch_alone_s", w.fetch_alone_s},
                                          {"paired_difference_s", w.paired_difference_s}});
    }
    json cal = {{"schema", "engramsim.calibration"},
                {"version", kCalibrationVersion},
                {"provenance", profiler::to_json(prov)},
                {"measured",
                 {{"gemm_best_flop_per_s", flops},
                  {"elementwise_bytes_per_s", ew},
                  {"op_floor_s", floor_s},
                  {"row_latency_s", row_latency},
                  {"gather_table_bytes", table.bytes()},
                  {"gather_line_1_thread", {{"per_row_s", line1.per_row_s}, {"fixed_s", line1.fixed_s}}},
                  {"gather_line", {{"threads", gather_threads}, {"per_row_s", lineT.per_row_s}, {"fixed_s", lineT.fixed_s}}},
                  {"outstanding_per_thread", outstanding},
                  {"dram_bytes_per_s", dram_bw},
                  {"dedup_keys_per_s", dedup},
                  {on_disk ? "disk_fetch_wake" : "fetch_wake", wake_json},
                  {"memory_total_bytes", mem_total},
                  {"memory_available_bytes", mem_avail}}},
                {"hardware", hw},
                {"sim", sim_out},
                {"drive", drive},
                {"profiles", json::array()}};
    for (const auto& p : profiles) cal["profiles"].push_back(p.kernel + " (" + std::to_string(p.points.size()) + " points)");
    write_json(dir + "/calibration.json", cal);
    return cal;
}

json apply_calibration(const json& cfg, const std::string& dir) {
    auto read = [&](const std::string& name) {
        std::ifstream f(dir + "/" + name);
        if (!f) throw std::runtime_error(dir + "/" + name + ": no calibration there (engramsim calibrate -o " + dir + ")");
        return json::parse(f);
    };
    json out = cfg;
    // The executor's weights and KV cache are float32 whatever the backbone's dtype says (see
    // docs/executor.md): the prediction prices what runs.
    out["backbone"]["dtype"] = "fp32";
    out["hardware"] = read("hardware.json");
    const json sim_keys = read("sim.json");
    for (const auto& [k, v] : sim_keys.items()) out["sim"][k] = v;
    out["sim"]["num_kv_blocks"] = kv_blocks(cfg);
    return config::resolve(out, dir);
}

}  // namespace engramsim::executor
