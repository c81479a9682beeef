// CUDA Engram kernels against their CPU references (kernels/cpu/engram_kernels.h). Skipped,
// saying why, where no GPU is.
//
// Tolerances: hash and raw gather bit-exact; gather to float bit-exact (decode is exact and the
// fp8 scale is one correctly rounded multiply on both sides); gate |err| <= 1e-6 + 1e-5 |ref|
// (reduction order and expf vs std::exp; 3e-5 absolute with the signed square root, whose slope
// magnifies rounding near zero); conv and fused |err| <= 1e-5 + 1e-4 |ref|; cuBLAS
// projection |err| <= 2 k 2^-24 sum |a b| (both sides accumulate in float, in different orders).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu/engram_kernels.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/engram_hash_cuda.h"
#include "kernels/cuda/engram_kernels_cuda.h"
#include "model/config.h"
#include "traces/tokens.h"
#include "tests/device/device_test_util.h"

using namespace engramsim;
using cuda::DeviceBuffer;
using test::expect_close;
using test::random_floats;

TEST(DeviceEngram, HashAllLayersBitExact) {
    REQUIRE_GPU();
    for (const char* preset : {"demo-v1", "engram-27b"}) {
        SCOPED_TRACE(preset);
        const auto cfg = EngramConfig::from_json(config::load(preset)["engram"]);
        const auto map = CompressMap::load(cfg.compress_map);
        const auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
        const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
        std::vector<uint32_t> cpu(hasher.layers().size() * ids.size() *
                                  size_t(hasher.heads_per_layer()));
        kernels::hash_all_layers(hasher, ids, cpu);
        const cuda::DeviceHashParams params(hasher);
        DeviceBuffer<uint32_t> d_ids(ids), d_out(cpu.size());
        cuda::hash_all_layers(params, d_ids.get(), ids.size(), d_out.get());
        EXPECT_EQ(d_out.download(), cpu);
    }
}

TEST(DeviceEngram, GatherEveryDtypeFromDeviceAndPinnedHost) {
    REQUIRE_GPU();
    struct Case { kernels::Dtype dt; int values; int block; };
    for (Case c : {Case{kernels::Dtype::f32, 20, 0}, Case{kernels::Dtype::bf16, 80, 0},
                   Case{kernels::Dtype::f16, 33, 0}, Case{kernels::Dtype::fp8_e4m3, 256, 128},
                   Case{kernels::Dtype::fp8_e4m3, 80, 80}}) {
        SCOPED_TRACE(kernels::dtype_name(c.dt));
        const int heads = 16;
        std::mt19937 rng(17);
        std::vector<uint64_t> offsets, rows;
        uint64_t total = 0;
        for (int h = 0; h < heads; ++h) {
            offsets.push_back(total);
            rows.push_back(1000 + rng() % 500);
            total += rows.back();
        }
        const size_t rb = size_t(c.values) * size_t(kernels::dtype_size_bytes(c.dt));
        std::vector<uint8_t> data(total * rb);
        for (auto& b : data) b = uint8_t(rng() & 0x3f);  // small exponents: finite in every dtype
        kernels::TableView view{.rows = data.data(), .total_rows = total, .dtype = c.dt,
                                .row_values = c.values, .head_offsets = offsets,
                                .head_rows = rows};
        std::vector<float> scales;
        if (c.dt == kernels::Dtype::fp8_e4m3) {
            view.scale_block_values = c.block;
            scales = random_floats(total * size_t(view.scale_blocks()), 3, 0.01f, 2.0f);
            view.scales = scales.data();
        }
        const size_t T = 3000;
        std::vector<uint32_t> ids(T * heads);
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint32_t(rng() % rows[i % heads]);
        std::vector<uint8_t> cpu_raw(ids.size() * rb);
        std::vector<float> cpu_f32(ids.size() * size_t(c.values));
        kernels::gather_rows(view, ids, cpu_raw);
        kernels::gather_rows_f32(view, ids, cpu_f32);

        DeviceBuffer<uint8_t> d_rows(data), d_raw(cpu_raw.size());
        DeviceBuffer<float> d_scales(scales), d_f32(cpu_f32.size());
        DeviceBuffer<uint32_t> d_ids(ids), d_bad(std::vector<uint32_t>{0});
        const auto table = cuda::DeviceTable::from_view(view, d_rows.get(), d_scales.get());
        cuda::gather_rows(table, d_ids.get(), ids.size(), d_raw.get(), d_bad.get());
        cuda::gather_rows_f32(table, d_ids.get(), ids.size(), d_f32.get(), d_bad.get());
        EXPECT_EQ(d_raw.download(), cpu_raw);
        EXPECT_EQ(d_f32.download(), cpu_f32);
        EXPECT_EQ(d_bad.download()[0], 0u);
        if (c.dt == kernels::Dtype::fp8_e4m3) {
            std::vector<float> cpu_sc(ids.size() * size_t(view.scale_blocks()));
            kernels::gather_scales(view, ids, cpu_sc);
            DeviceBuffer<float> d_sc(cpu_sc.size());
            cuda::gather_scales(table, d_ids.get(), ids.size(), d_sc.get());
            EXPECT_EQ(d_sc.download(), cpu_sc);
        }

        // The same table in mapped pinned host memory, read through UVA.
        cuda::MappedHostBuffer<uint8_t> pinned(data.size());
        std::memcpy(pinned.host(), data.data(), data.size());
        const auto host_table = cuda::DeviceTable::from_view(view, pinned.device_ptr(), d_scales.get());
        DeviceBuffer<uint8_t> d_raw2(cpu_raw.size());
        cuda::gather_rows(host_table, d_ids.get(), ids.size(), d_raw2.get());
        EXPECT_EQ(d_raw2.download(), cpu_raw);

        // Out-of-range ids are counted and their rows zero-filled, never read.
        ids[7] = uint32_t(rows[7]);
        d_ids.upload(ids);
        cuda::gather_rows(table, d_ids.get(), ids.size(), d_raw.get(), d_bad.get());
        EXPECT_EQ(d_bad.download()[0], 1u);
    }
}

TEST(DeviceEngram, GateConvFusedProjection) {
    REQUIRE_GPU();
    const size_t T = 300, M = 4, d = 512;
    for (bool ssqrt : {true, false}) {
        const kernels::GateShape g{.tokens = T, .branches = int(M), .dim = int(d), .signed_sqrt = ssqrt};
        auto h = random_floats(T * M * d, 1), k = random_floats(T * M * d, 2);
        auto v = random_floats(T * d, 3);
        auto wh = random_floats(M * d, 4, 0.5f, 1.5f), wk = random_floats(M * d, 5, 0.5f, 1.5f);
        std::vector<float> alpha(T * M), out(T * M * d);
        kernels::engram_gate(g, h, k, v, wh, wk, alpha, out);
        DeviceBuffer<float> dh(h), dk(k), dv(v), dwh(wh), dwk(wk), dalpha(alpha.size()),
            dout(out.size()), dmsv(T);
        cuda::engram_gate(g, dh.get(), dk.get(), dv.get(), dwh.get(), dwk.get(), dalpha.get(),
                          dout.get(), dmsv.get());
        // The signed square root has slope 1 / (2 sqrt|s|), up to 500 at its 1e-6 floor: a
        // float rounding difference in s is magnified there, hence the wider absolute bound.
        const double abs_tol = ssqrt ? 3e-5 : 1e-6;
        expect_close(dalpha.download(), alpha, abs_tol, 1e-5, "alpha");
        expect_close(dout.download(), out, abs_tol, 1e-5, "gated value");

        const kernels::ConvShape c{.tokens = T, .seq_len = 100, .branches = int(M), .dim = int(d)};
        auto nw = random_floats(M * d, 6, 0.5f, 1.5f), cw = random_floats(M * d * 4, 7);
        std::vector<float> y(T * M * d), fused(T * M * d);
        kernels::engram_short_conv(c, h, nw, cw, y);
        kernels::engram_gate_conv_residual(g, c, h, k, v, wh, wk, nw, cw, fused);
        DeviceBuffer<float> dnw(nw), dcw(cw), dy(y.size()), dscratch(T * M), dfused(y.size());
        cuda::engram_short_conv(c, dh.get(), dnw.get(), dcw.get(), dy.get(), dscratch.get());
        expect_close(dy.download(), y, 1e-5, 1e-4, "conv");
        cuda::engram_gate_conv_residual(g, c, dh.get(), dk.get(), dv.get(), dwh.get(), dwk.get(),
                                        dnw.get(), dcw.get(), dfused.get(), dalpha.get(),
                                        dmsv.get());
        expect_close(dfused.download(), fused, 1e-5, 1e-4, "fused");
    }
    // Key projection: e [T][1280] -> k [T][512].
    const size_t m = 257, n = 512, kk = 1280;
    auto a = random_floats(m * kk, 8), b = random_floats(n * kk, 9);
    std::vector<float> ref(m * n);
    kernels::gemm_nt(m, n, kk, a, b, ref);
    DeviceBuffer<float> da(a), db(b), dc(ref.size());
    cuda::gemm_nt(m, n, kk, da.get(), db.get(), dc.get());
    const auto got = dc.download();
    for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) {
            double mag = 0;
            for (size_t p = 0; p < kk; ++p) mag += std::fabs(double(a[i * kk + p]) * b[j * kk + p]);
            ASSERT_LE(std::fabs(got[i * n + j] - ref[i * n + j]), 2 * double(kk) * std::ldexp(1.0, -24) * mag);
        }
}
