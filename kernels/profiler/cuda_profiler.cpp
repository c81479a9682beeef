#include "kernels/profiler/cuda_profiler.h"

#include <cuda_runtime_api.h>
#include <cupti.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>

#include "kernels/cpu/moe_kernels.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/engram_hash_cuda.h"
#include "kernels/cuda/engram_kernels_cuda.h"
#include "kernels/cuda/moe_kernels_cuda.h"
#include "kernels/cuda/nvtx_range.h"
#include "kernels/profiler/work.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "traces/tokens.h"
#include "kernels/cpu/random_inputs.h"

namespace engramsim::profiler {

namespace {

using cuda::check_cuda;
using cuda::DeviceBuffer;
using cuda::device_filled;
using kernels::random_floats;
using kernels::Dtype;

using cuda::NvtxRange;  // domain `engramsim`, shared with the kernel entry points

// ---- CUPTI: concurrent-kernel activity records ----

struct KernelRecord {
    uint32_t correlation_id;
    uint64_t start_ns, end_ns;
};

std::mutex g_records_mutex;
std::vector<KernelRecord> g_records;

constexpr size_t kCuptiBufferBytes = size_t(8) << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kCuptiBufferBytes));
    *size = *buffer ? kCuptiBufferBytes : 0;
    *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
    CUpti_Activity* rec = nullptr;
    std::lock_guard<std::mutex> lock(g_records_mutex);
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
            rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
            g_records.push_back({k->correlationId, k->start, k->end});
        }
    }
    std::free(buffer);
}

std::string cupti_error(CUptiResult r) {
    const char* s = nullptr;
    cuptiGetResultString(r, &s);
    return s ? s : "CUPTI error " + std::to_string(int(r));
}

class SampleTimer {
public:
    SampleTimer(int samples, Provenance& pv) : samples_(samples) {
        int dev = 0;
        check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
        int l2 = 0;
        check_cuda(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), "L2 size");
        flush_ = DeviceBuffer<uint8_t>(std::max<size_t>(2 * size_t(l2), size_t(64) << 20));
        check_cuda(cudaEventCreate(&begin_), "event");
        check_cuda(cudaEventCreate(&end_), "event");
        CUptiResult r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
        if (r == CUPTI_SUCCESS) r = cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        if (r == CUPTI_SUCCESS) {
            cupti_ok_ = true;
            pv.timing = "cupti_kernel_activity";
        } else {
            pv.timing = "cuda_events";
            pv.notes.push_back("CUPTI unavailable (" + cupti_error(r) +
                               "): samples timed with CUDA events around the call, which include "
                               "launch gaps between kernels");
        }
        pv.cache_flush = "L2 flushed by a " + std::to_string(flush_.size() >> 20) +
                         " MiB cudaMemset before every sample";
    }
    ~SampleTimer() {
        if (cupti_ok_) {
            cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
            cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        }
        cudaEventDestroy(begin_);
        cudaEventDestroy(end_);
    }

    struct Result {
        SampleStats stats;
        double kernels_per_sample = 0;
    };

    // One warm-up call, then samples_ timed calls (kernel time only with CUPTI).
    Result time(const std::string& name, const std::function<void()>& call) {
        NvtxRange range(name.c_str());
        call();
        check_cuda(cudaDeviceSynchronize(), "warm-up");
        std::vector<double> s;
        double kernels = 0;
        for (int i = 0; i < samples_; ++i) {
            check_cuda(cudaMemsetAsync(flush_.get(), i & 0xff, flush_.size()), "L2 flush");
            check_cuda(cudaDeviceSynchronize(), "flush sync");
            drain();
            {
                const std::string sample_name = name + " sample";
                NvtxRange sample(sample_name.c_str());
                check_cuda(cudaEventRecord(begin_), "event");
                call();
                check_cuda(cudaEventRecord(end_), "event");
                check_cuda(cudaDeviceSynchronize(), name.c_str());
            }
            float ms = 0;
            check_cuda(cudaEventElapsedTime(&ms, begin_, end_), "elapsed");
            if (cupti_ok_) {
                const auto recs = drain();
                double ns = 0;
                for (const auto& r : recs) ns += double(r.end_ns - r.start_ns);
                kernels += double(recs.size());
                s.push_back(recs.empty() ? double(ms) * 1e-3 : ns * 1e-9);
            } else {
                s.push_back(double(ms) * 1e-3);
            }
        }
        return {SampleStats::of(std::move(s)), kernels / samples_};
    }

private:
    // Delivers and takes every kernel record completed so far.
    std::vector<KernelRecord> drain() {
        if (!cupti_ok_) return {};
        cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
        std::lock_guard<std::mutex> lock(g_records_mutex);
        std::vector<KernelRecord> out;
        out.swap(g_records);
        return out;
    }

    int samples_;
    bool cupti_ok_ = false;
    DeviceBuffer<uint8_t> flush_;
    cudaEvent_t begin_ = nullptr, end_ = nullptr;
};

Provenance device_provenance() {
    Provenance pv = host_provenance();
    pv.device_kind = "cuda";
    int dev = 0;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
    pv.device_name = prop.name;
    pv.sm_count = prop.multiProcessorCount;
    pv.l2_bytes = prop.l2CacheSize;
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev) == cudaSuccess)
        pv.sm_clock_mhz = khz / 1000.0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) == cudaSuccess)
        pv.memory_clock_mhz = khz / 1000.0;
    int v = 0;
    auto version = [](int x) { return std::to_string(x / 1000) + "." + std::to_string(x % 1000 / 10); };
    if (cudaDriverGetVersion(&v) == cudaSuccess) pv.driver_version = "CUDA driver API " + version(v);
    if (cudaRuntimeGetVersion(&v) == cudaSuccess) pv.cuda_runtime_version = version(v);
    pv.notes.push_back("compute capability " + std::to_string(prop.major) + "." +
                       std::to_string(prop.minor));
    return pv;
}

bool wanted(const ProfileOptions& o, const std::string& k) {
    return o.kernels.empty() || std::find(o.kernels.begin(), o.kernels.end(), k) != o.kernels.end();
}

struct Run {
    SampleTimer& timer;
    const Provenance& pv;
    const std::map<std::string, double>& ceilings;
    std::ostream& log;

    KernelProfile start(const std::string& kernel, const std::string& variant) const {
        return KernelProfile{.kernel = kernel, .variant = variant, .provenance = pv,
                             .ceilings = ceilings};
    }
    void add(KernelProfile& p, ProfilePoint pt, const std::function<void()>& call) const {
        std::string name = p.kernel + " " + p.variant;
        for (const auto& [k, v] : pt.dims) name += " " + k + "=" + std::to_string(long(v));
        const auto r = timer.time(name, call);
        pt.stats = r.stats;
        pt.kernels_per_sample = r.kernels_per_sample;
        log << "  " << name << ": median " << r.stats.median_s * 1e6 << " us";
        if (pt.bytes > 0) {
            log << ", " << pt.bytes / r.stats.median_s / 1e9 << " GB/s";
            if (ceilings.count("copy_bytes_per_s"))
                log << " (" << 100 * pt.bytes / r.stats.median_s / ceilings.at("copy_bytes_per_s")
                    << "% of device copy)";
        }
        if (pt.flops > 0) log << ", " << pt.flops / r.stats.median_s / 1e12 << " TFLOP/s";
        log << '\n';
        p.points.push_back(std::move(pt));
    }
};

}  // namespace

bool cuda_available(std::string* why) { return cuda::device_available(why); }

std::vector<KernelProfile> profile_cuda(const ProfileOptions& o, std::ostream& log) {
    validate(o);
    Provenance pv = device_provenance();
    SampleTimer timer(o.samples, pv);
    std::map<std::string, double> ceilings;
    std::vector<KernelProfile> out;

    // Ceilings, same run: device copy (1 GiB, read + written) and a dense cuBLAS fp32 GEMM at the
    // MoE prefill shape (T = 8192 tokens x top-6 rows, n = 2 x 1536, k = 2560).
    {
        NvtxRange phase("ceilings");
        const size_t bytes = size_t(1) << 30;
        DeviceBuffer<uint8_t> a(bytes), b(bytes);
        cudaEvent_t e0, e1;
        check_cuda(cudaEventCreate(&e0), "event");
        check_cuda(cudaEventCreate(&e1), "event");
        std::vector<double> s;
        for (int i = 0; i < std::max(o.samples, 10); ++i) {
            check_cuda(cudaEventRecord(e0), "event");
            check_cuda(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice), "copy");
            check_cuda(cudaEventRecord(e1), "event");
            check_cuda(cudaEventSynchronize(e1), "sync");
            float ms = 0;
            check_cuda(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
            s.push_back(double(ms) * 1e-3);
        }
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        ceilings["copy_bytes_per_s"] = 2.0 * double(bytes) / SampleStats::of(s).median_s;
        log << "device copy ceiling: " << ceilings["copy_bytes_per_s"] / 1e9 << " GB/s\n";

        const size_t m = 8192 * 6, n = 2 * 1536, k = 2560;
        DeviceBuffer<float> A = device_filled(m * k), B = device_filled(n * k), C(m * n);
        const auto r = timer.time("ceiling cublas sgemm", [&] {
            cuda::dense_gemm_nt(m, n, k, A.get(), B.get(), C.get());
        });
        ceilings["gemm_flop_per_s"] = 2.0 * double(m) * double(n) * double(k) / r.stats.median_s;
        log << "cuBLAS fp32 GEMM ceiling: " << ceilings["gemm_flop_per_s"] / 1e12 << " TFLOP/s\n";
    }
    Run run{timer, pv, ceilings, log};

    if (wanted(o, "engram_hash")) {
        NvtxRange phase("engram_hash");
        const auto cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
        const auto map = CompressMap::load(cfg.compress_map);
        const auto all = map.compress(read_tokens("bundled:handbook-en-US"));
        const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
        const cuda::DeviceHashParams params(hasher);
        DeviceBuffer<uint32_t> d_ids(all);
        DeviceBuffer<uint32_t> d_out(all.size() * size_t(params.layers() * params.heads_per_layer()));
        KernelProfile p = run.start("engram_hash", "cuda/demo-v1-all-layers");
        for (size_t T : {4096, 16384, 65536, 262144}) {
            T = std::min(T, all.size());
            run.add(p, hash_work(double(T), params.layers() * params.heads_per_layer()),
                    [&] { cuda::hash_all_layers(params, d_ids.get(), T, d_out.get()); });
        }
        out.push_back(std::move(p));
    }

    if (wanted(o, "engram_gather")) {
        NvtxRange phase("engram_gather");
        const int heads = 16, values = 80;
        struct Variant { Dtype dt; bool uva; };
        for (Variant var : {Variant{Dtype::bf16, false}, Variant{Dtype::fp8_e4m3, false},
                            Variant{Dtype::f32, false}, Variant{Dtype::bf16, true}}) {
            const size_t row_bytes = size_t(values) * size_t(kernels::dtype_size_bytes(var.dt));
            // 4 GiB in HBM (far beyond L2); 2 GiB of pinned host memory for the UVA variant.
            const size_t table_bytes = var.uva ? size_t(2) << 30 : size_t(4) << 30;
            const uint64_t per_head = table_bytes / row_bytes / heads;
            std::vector<uint64_t> offsets, rows;
            for (int h = 0; h < heads; ++h) {
                offsets.push_back(uint64_t(h) * per_head);
                rows.push_back(per_head);
            }
            DeviceBuffer<uint8_t> d_table(var.uva ? 0 : per_head * heads * row_bytes);
            std::unique_ptr<cuda::MappedHostBuffer<uint8_t>> h_table;
            if (var.uva) h_table = std::make_unique<cuda::MappedHostBuffer<uint8_t>>(per_head * heads * row_bytes);
            else check_cuda(cudaMemset(d_table.get(), 0x11, d_table.size()), "table init");
            std::vector<float> scales;
            if (var.dt == Dtype::fp8_e4m3) scales.assign(per_head * heads, 1.0f);
            DeviceBuffer<float> d_scales(scales);
            cuda::DeviceTable t;
            t.rows = var.uva ? h_table->device_ptr() : d_table.get();
            t.total_rows = per_head * heads;
            t.dtype = var.dt;
            t.row_values = values;
            t.heads = heads;
            for (int h = 0; h < heads; ++h) {
                t.head_offsets[h] = offsets[size_t(h)];
                t.head_rows[h] = rows[size_t(h)];
            }
            t.scales = d_scales.get();
            t.scale_block_values = var.dt == Dtype::fp8_e4m3 ? values : 0;
            const std::string variant =
                std::string(var.uva ? "cuda-uva/" : "cuda/") + kernels::dtype_name(var.dt);
            KernelProfile p = run.start("engram_gather", variant);
            std::mt19937_64 rng(1);
            const std::vector<size_t> shapes = var.uva ? std::vector<size_t>{1024, 4096, 16384}
                                                       : std::vector<size_t>{1024, 4096, 16384, 65536};
            for (size_t T : shapes) {
                std::vector<uint32_t> ids(T * heads);
                for (auto& id : ids) id = uint32_t(rng() % per_head);
                DeviceBuffer<uint32_t> d_ids(ids);
                DeviceBuffer<uint8_t> d_out(ids.size() * row_bytes);
                run.add(p, gather_work(double(T), heads, double(row_bytes), kernels::dtype_name(var.dt)),
                        [&] { cuda::gather_rows(t, d_ids.get(), ids.size(), d_out.get()); });
            }
            out.push_back(std::move(p));
        }
    }

    // Gate / conv / fused at the paper's shape: 4 hyper-connection branches of hidden 2560.
    const int M = 4, d = 2560;
    if (wanted(o, "engram_gate") || wanted(o, "engram_conv") || wanted(o, "engram_gate_conv")) {
        NvtxRange phase("engram_gate_conv");
        KernelProfile gate = run.start("engram_gate", "cuda");
        KernelProfile conv = run.start("engram_conv", "cuda");
        KernelProfile fused = run.start("engram_gate_conv", "cuda");
        const auto w = random_floats(size_t(M) * d, 4), cw = random_floats(size_t(M) * d * 4, 5);
        DeviceBuffer<float> dw(w), dcw(cw);
        for (size_t T : {1024, 4096, 16384}) {
            const size_t n = T * M * d;
            DeviceBuffer<float> dh = device_filled(n), dk = device_filled(n), dv = device_filled(T * d);
            DeviceBuffer<float> dout(n), dalpha(T * M), dmsv(T), dscr(T * M);
            const kernels::GateShape g{.tokens = T, .branches = M, .dim = d};
            const kernels::ConvShape c{.tokens = T, .seq_len = T, .branches = M, .dim = d};
            if (wanted(o, "engram_gate"))
                run.add(gate, gate_work(double(T), d, M), [&] {
                    cuda::engram_gate(g, dh.get(), dk.get(), dv.get(), dw.get(), dw.get(),
                                      dalpha.get(), dout.get());
                });
            if (wanted(o, "engram_conv"))
                run.add(conv, conv_work(double(T), double(M) * d, 4), [&] {
                    cuda::engram_short_conv(c, dh.get(), dw.get(), dcw.get(), dout.get(), dscr.get());
                });
            if (wanted(o, "engram_gate_conv"))
                run.add(fused, gate_conv_work(double(T), d, M, 4), [&] {
                    cuda::engram_gate_conv_residual(g, c, dh.get(), dk.get(), dv.get(), dw.get(),
                                                    dw.get(), dw.get(), dcw.get(), dout.get(),
                                                    dalpha.get(), dmsv.get());
                });
        }
        if (wanted(o, "engram_gate")) out.push_back(std::move(gate));
        if (wanted(o, "engram_conv")) out.push_back(std::move(conv));
        if (wanted(o, "engram_gate_conv")) out.push_back(std::move(fused));
    }

    if (wanted(o, "gemm")) {
        // Key / value projections fused: e [T][1280] -> (M + 1) x 2560 outputs.
        NvtxRange phase("gemm");
        KernelProfile p = run.start("gemm", "cuda/cublas-sgemm");
        const size_t n = size_t(M + 1) * d, k = 1280;
        DeviceBuffer<float> db = device_filled(n * k);
        for (size_t m : {256, 1024, 4096, 16384}) {
            DeviceBuffer<float> da = device_filled(m * k), dc(m * n);
            run.add(p, gemm_work(double(m), double(n), double(k)),
                    [&] { cuda::gemm_nt(m, n, k, da.get(), db.get(), dc.get()); });
        }
        out.push_back(std::move(p));
    }

    const int E = 72, K = 6;
    const size_t H = 2560, I = 1536;
    if (wanted(o, "router_topk") || wanted(o, "moe_align") || wanted(o, "moe_combine")) {
        NvtxRange phase("moe_router_align_combine");
        KernelProfile router = run.start("router_topk", "cuda");
        KernelProfile align = run.start("moe_align", "cuda/deterministic");
        KernelProfile comb = run.start("moe_combine", "cuda");
        for (size_t T : {1024, 4096, 16384}) {
            const auto logits = random_floats(T * E, 1);
            std::vector<int32_t> ids(T * K);
            std::vector<float> w(T * K);
            kernels::router_topk_softmax(logits, T, E, K, true, ids, w);
            DeviceBuffer<float> dl(logits), dw(T * K);
            DeviceBuffer<int32_t> di(T * K);
            if (wanted(o, "router_topk"))
                run.add(router, router_work(double(T), E, K), [&] {
                    cuda::router_topk_softmax(dl.get(), T, E, K, true, di.get(), dw.get());
                });
            di.upload(ids);
            dw.upload(w);
            cuda::AlignWorkspace ws(ids.size(), E);
            const size_t cap = cuda::AlignWorkspace::max_slots(ids.size(), E, 1);
            DeviceBuffer<int32_t> sorted(cap), pos(ids.size());
            if (wanted(o, "moe_align"))
                run.add(align, align_work(double(T), E, K), [&] {
                    cuda::align_tokens(di.get(), ids.size(), E, 1, ws, sorted.get(), cap, pos.get());
                });
            cuda::align_tokens(di.get(), ids.size(), E, 1, ws, sorted.get(), cap, pos.get());
            if (wanted(o, "moe_combine")) {
                DeviceBuffer<float> y = device_filled(ids.size() * H), dout(T * H);
                run.add(comb, combine_work(double(T), double(H), K), [&] {
                    cuda::combine(y.get(), H, K, pos.get(), dw.get(), T, dout.get());
                });
            }
        }
        if (wanted(o, "router_topk")) out.push_back(std::move(router));
        if (wanted(o, "moe_align")) out.push_back(std::move(align));
        if (wanted(o, "moe_combine")) out.push_back(std::move(comb));
    }

    if (wanted(o, "moe_grouped_gemm")) {
        // cuBLAS grouped GEMM baseline, fp32, 72 experts of hidden 2560 / intermediate 1536.
        NvtxRange phase("moe_grouped_gemm");
        KernelProfile p = run.start("moe_grouped_gemm", "cuda/cublas-grouped-fp32");
        DeviceBuffer<float> w1 = device_filled(size_t(E) * 2 * I * H),
                        w2 = device_filled(size_t(E) * H * I);
        std::mt19937 rng(3);
        for (size_t T : {512, 2048, 8192}) {
            std::vector<int32_t> ids(T * K);
            for (size_t t = 0; t < T; ++t)  // k distinct experts per token, uniform
                for (int j = 0; j < K; ++j) ids[t * K + size_t(j)] = int32_t((t * 13 + size_t(j) * 12 + rng() % 12) % E);
            const auto a = kernels::align_tokens(ids, E, 1);
            const size_t rows = size_t(a.expert_offsets.back());
            DeviceBuffer<float> x = device_filled(rows * H), gu(rows * 2 * I), act(rows * I), y(rows * H);
            run.add(p, grouped_gemm_work(double(T), E, K, double(H), double(I)), [&] {
                cuda::grouped_swiglu_cublas(x.get(), a.expert_offsets, H, I, w1.get(), w2.get(),
                                            gu.get(), act.get(), y.get());
            });
        }
        out.push_back(std::move(p));
    }
    return out;
}

}  // namespace engramsim::profiler
