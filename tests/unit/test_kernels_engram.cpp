// CPU reference Engram kernels against independent float64 computations on random inputs.
//
// Tolerances (stated once, used below):
//   dtype decode        exact: every bf16 / f16 / fp8 code against its closed-form value
//   dtype encode        exact: the nearest representable value, ties to the even code
//   gather (raw)        bit-exact; gather to float: exact (one correctly rounded multiply)
//   gate alpha / out    |err| <= 2e-6 + 1e-5 |ref|   (float32 sums of d <= 512 terms)
//   conv, fused         |err| <= 1e-5 + 2e-5 |ref|
//   gemm_nt             |err| <= k * 2^-23 * sum |a_i b_i| (float accumulation bound)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/engram_kernels.h"
#include "model/config.h"
#include "traces/tokens.h"
#include "kernels/cpu/random_inputs.h"

using namespace engramsim;
using namespace engramsim::kernels;

namespace {

// Closed-form decodes in double, written independently of dtypes.h.
double fp8_value(uint8_t b) {
    const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    if (e == 15 && m == 7) return NAN;
    const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(1.0 + m / 8.0, e - 7);
    return s ? -mag : mag;
}
double f16_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double mag;
    if (e == 31) mag = m ? NAN : INFINITY;
    else if (e == 0) mag = std::ldexp(m, -24);
    else mag = std::ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -mag : mag;
}
double bf16_value(uint16_t h) {
    const int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double mag;
    if (e == 255) mag = m ? NAN : INFINITY;
    else if (e == 0) mag = std::ldexp(m, -133);
    else mag = std::ldexp(1.0 + m / 128.0, e - 127);
    return s ? -mag : mag;
}

// Nearest code to x among `codes` (value, code) by brute force, ties to the even code.
template <typename Code>
Code nearest_code(double x, const std::vector<std::pair<double, Code>>& codes) {
    double best_err = INFINITY;
    Code best{};
    for (const auto& [v, c] : codes) {
        const double err = std::fabs(v - x);
        if (err < best_err || (err == best_err && (c & 1) == 0 && (best & 1) == 1)) {
            best_err = err;
            best = c;
        }
    }
    return best;
}

}  // namespace

TEST(KernelDtypes, DecodeEveryCodeExactly) {
    for (int b = 0; b < 256; ++b) {
        const double want = fp8_value(uint8_t(b));
        const float got = fp8_e4m3_to_float(uint8_t(b));
        if (std::isnan(want)) EXPECT_TRUE(std::isnan(got)) << b;
        else EXPECT_EQ(double(got), want) << "fp8 code " << b;
    }
    for (int h = 0; h < 65536; ++h) {
        const double f = f16_value(uint16_t(h)), g = bf16_value(uint16_t(h));
        if (std::isnan(f)) EXPECT_TRUE(std::isnan(f16_to_float(uint16_t(h))));
        else ASSERT_EQ(double(f16_to_float(uint16_t(h))), f) << "f16 code " << h;
        if (std::isnan(g)) EXPECT_TRUE(std::isnan(bf16_to_float(uint16_t(h))));
        else ASSERT_EQ(double(bf16_to_float(uint16_t(h))), g) << "bf16 code " << h;
    }
}

TEST(KernelDtypes, EncodeRoundsToNearestEven) {
    std::vector<std::pair<double, uint8_t>> fp8;
    for (int b = 0; b < 256; ++b)
        if (!std::isnan(fp8_value(uint8_t(b)))) fp8.push_back({fp8_value(uint8_t(b)), uint8_t(b)});
    std::vector<std::pair<double, uint16_t>> f16;
    for (int h = 0; h < 65536; ++h)
        if (std::isfinite(f16_value(uint16_t(h)))) f16.push_back({f16_value(uint16_t(h)), uint16_t(h)});
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> exp_u(-28, 17);
    for (int i = 0; i < 3000; ++i) {
        // Random magnitudes over the whole range, plus exact midpoints between codes.
        float x = float(std::ldexp(1.0 + (rng() % 1000) / 1000.0, int(exp_u(rng))));
        if (rng() & 1) x = -x;
        if (i % 3 == 0) {
            // The exact midpoint between two neighbouring positive fp8 values: a tie.
            const size_t j = 1 + rng() % 125;  // codes 1..126 are positive and increasing
            x = float((fp8_value(uint8_t(j)) + fp8_value(uint8_t(j + 1))) / 2);
        }
        const double xd = x;
        const double fp8_clamped = std::max(-448.0, std::min(448.0, xd));
        const uint8_t want8 = nearest_code(fp8_clamped, fp8);
        const uint8_t got8 = float_to_fp8_e4m3(x);
        // +-0 are both nearest to tiny values; compare values, not codes, there.
        ASSERT_EQ(fp8_e4m3_to_float(got8), float(fp8_value(want8))) << "fp8 of " << x;
        if (std::fabs(xd) < 65504.0) {
            const uint16_t want16 = nearest_code(xd, f16);
            ASSERT_EQ(f16_to_float(float_to_f16(x)), float(f16_value(want16))) << "f16 of " << x;
        }
        // bf16: the two neighbours by truncation, pick the nearer (even on ties).
        const uint32_t u = float_bits(x);
        const uint16_t lo = uint16_t(u >> 16), hi = uint16_t(lo + 1);
        const double dlo = std::fabs(bf16_value(lo) - xd), dhi = std::fabs(bf16_value(hi) - xd);
        const uint16_t want_bf = dlo < dhi ? lo : dhi < dlo ? hi : ((lo & 1) ? hi : lo);
        ASSERT_EQ(float_to_bf16(x), want_bf) << "bf16 of " << x;
    }
    EXPECT_EQ(fp8_e4m3_to_float(float_to_fp8_e4m3(1e6f)), 448.0f);  // saturates
    EXPECT_EQ(f16_to_float(float_to_f16(1e6f)), INFINITY);
}

TEST(KernelHash, AllLayersMatchPlainModuloPerLayer) {
    const auto cfg = EngramConfig::from_json(config::load("demo-v1")["engram"]);
    const auto map = CompressMap::load(cfg.compress_map);
    auto ids = map.compress(read_tokens("bundled:handbook-en-US"));
    ids.resize(5000);
    const NgramHasher hasher(cfg, map.canonical_vocab_size(), map(cfg.pad_id));
    const size_t per_layer = ids.size() * size_t(hasher.heads_per_layer());
    ASSERT_GE(hasher.layers().size(), 2u);
    std::vector<uint32_t> all(hasher.layers().size() * per_layer);
    hash_all_layers(hasher, ids, all);
    for (size_t l = 0; l < hasher.layers().size(); ++l) {
        std::vector<uint32_t> plain(per_layer);
        hasher.hash_layer_plain(l, ids, plain);
        EXPECT_TRUE(std::equal(plain.begin(), plain.end(), all.begin() + long(l * per_layer)))
            << "layer " << l;
    }
    std::vector<uint32_t> wrong(3);
    EXPECT_THROW(hash_all_layers(hasher, ids, wrong), std::invalid_argument);
}

namespace {

struct RandomTable {
    std::vector<uint8_t> rows;
    std::vector<float> scales;
    std::vector<uint64_t> offsets, head_rows;
    TableView view;
};

RandomTable make_table(Dtype dt, int row_values, int heads, int scale_block, uint32_t seed) {
    RandomTable t;
    std::mt19937 rng(seed);
    uint64_t total = 0;
    for (int h = 0; h < heads; ++h) {
        t.offsets.push_back(total);
        t.head_rows.push_back(50 + rng() % 60);
        total += t.head_rows.back();
    }
    const size_t rb = size_t(row_values) * size_t(dtype_size_bytes(dt));
    t.rows.resize(total * rb);
    for (auto& b : t.rows) b = uint8_t(rng());
    if (dt == Dtype::fp8_e4m3)
        for (size_t i = 0; i < t.rows.size(); ++i)
            if ((t.rows[i] & 0x7f) == 0x7f) t.rows[i] &= 0xfe;  // no NaN codes
    if (dt == Dtype::f32 || dt == Dtype::bf16 || dt == Dtype::f16) {
        // Random bytes make NaNs; write finite random values instead.
        for (size_t i = 0; i < total * size_t(row_values); ++i) {
            const float x = std::ldexp(float(int(rng() % 2001) - 1000), -int(rng() % 20));
            uint8_t* p = t.rows.data() + i * size_t(dtype_size_bytes(dt));
            if (dt == Dtype::f32) std::memcpy(p, &x, 4);
            else {
                const uint16_t h = dt == Dtype::bf16 ? float_to_bf16(x) : float_to_f16(x);
                std::memcpy(p, &h, 2);
            }
        }
    }
    t.view = TableView{.rows = t.rows.data(), .total_rows = total, .dtype = dt,
                       .row_values = row_values, .head_offsets = t.offsets,
                       .head_rows = t.head_rows};
    if (dt == Dtype::fp8_e4m3) {
        t.view.scale_block_values = scale_block;
        t.scales = random_floats(total * size_t(t.view.scale_blocks()), seed + 1, 0.001f, 3.0f);
        t.view.scales = t.scales.data();
    }
    return t;
}

double decode_double(Dtype dt, const uint8_t* p) {
    switch (dt) {
        case Dtype::f32: { float f; std::memcpy(&f, p, 4); return f; }
        case Dtype::bf16: { uint16_t h; std::memcpy(&h, p, 2); return bf16_value(h); }
        case Dtype::f16: { uint16_t h; std::memcpy(&h, p, 2); return f16_value(h); }
        case Dtype::fp8_e4m3: return fp8_value(*p);
    }
    return 0;
}

}  // namespace

TEST(KernelGather, RawAndWidenedRowsEveryDtype) {
    struct Case { Dtype dt; int values; int block; };
    for (Case c : {Case{Dtype::f32, 20, 0}, Case{Dtype::bf16, 80, 0}, Case{Dtype::f16, 33, 0},
                   Case{Dtype::fp8_e4m3, 64, 64}, Case{Dtype::fp8_e4m3, 80, 32}}) {
        SCOPED_TRACE(dtype_name(c.dt) + " block " + std::to_string(c.block));
        const int heads = 6;
        RandomTable t = make_table(c.dt, c.values, heads, c.block, 11);
        const size_t T = 77;
        std::mt19937 rng(3);
        std::vector<uint32_t> ids(T * heads);
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = uint32_t(rng() % t.head_rows[i % heads]);
        const size_t rb = t.view.row_bytes();
        std::vector<uint8_t> raw(ids.size() * rb);
        gather_rows(t.view, ids, raw);
        std::vector<float> wide(ids.size() * size_t(c.values));
        gather_rows_f32(t.view, ids, wide);
        for (size_t i = 0; i < ids.size(); ++i) {
            const uint64_t row = t.offsets[i % heads] + ids[i];
            const uint8_t* src = t.rows.data() + row * rb;
            ASSERT_EQ(0, std::memcmp(raw.data() + i * rb, src, rb)) << "row " << i;
            for (int v = 0; v < c.values; ++v) {
                double want = decode_double(c.dt, src + size_t(v) * size_t(dtype_size_bytes(c.dt)));
                if (c.dt == Dtype::fp8_e4m3)
                    want *= double(t.scales[row * size_t(t.view.scale_blocks()) + size_t(v / c.block)]);
                ASSERT_EQ(wide[i * size_t(c.values) + size_t(v)], float(want));
            }
        }
        if (c.dt == Dtype::fp8_e4m3) {
            const size_t blocks = size_t(t.view.scale_blocks());
            std::vector<float> sc(ids.size() * blocks);
            gather_scales(t.view, ids, sc);
            for (size_t i = 0; i < ids.size(); ++i)
                for (size_t b = 0; b < blocks; ++b)
                    ASSERT_EQ(sc[i * blocks + b], t.scales[(t.offsets[i % heads] + ids[i]) * blocks + b]);
        } else {
            std::vector<float> sc(ids.size());
            EXPECT_THROW(gather_scales(t.view, ids, sc), std::invalid_argument);
        }
        ids[5] = uint32_t(t.head_rows[5]);  // one past head 5's table
        EXPECT_THROW(gather_rows(t.view, ids, raw), std::out_of_range);
    }
    RandomTable t = make_table(Dtype::fp8_e4m3, 16, 2, 8, 1);
    t.view.scales = nullptr;
    EXPECT_THROW(t.view.validate(), std::invalid_argument);
}

namespace {

struct GateRef {
    std::vector<double> alpha, out;
};

GateRef gate_f64(const GateShape& s, const std::vector<float>& h, const std::vector<float>& k,
                 const std::vector<float>& v, const std::vector<float>& wh,
                 const std::vector<float>& wk) {
    const size_t M = size_t(s.branches), d = size_t(s.dim);
    GateRef r{std::vector<double>(s.tokens * M), std::vector<double>(s.tokens * M * d)};
    for (size_t t = 0; t < s.tokens; ++t)
        for (size_t m = 0; m < M; ++m) {
            double hh = 0, kk = 0;
            for (size_t c = 0; c < d; ++c) {
                hh += double(h[(t * M + m) * d + c]) * h[(t * M + m) * d + c];
                kk += double(k[(t * M + m) * d + c]) * k[(t * M + m) * d + c];
            }
            const double rh = 1 / std::sqrt(hh / double(d) + s.eps);
            const double rk = 1 / std::sqrt(kk / double(d) + s.eps);
            double dot = 0;
            for (size_t c = 0; c < d; ++c)
                dot += (h[(t * M + m) * d + c] * rh * wh[m * d + c]) *
                       (k[(t * M + m) * d + c] * rk * wk[m * d + c]);
            double sc = dot / std::sqrt(double(d));
            if (s.signed_sqrt) sc = (sc < 0 ? -1 : 1) * std::sqrt(std::max(std::fabs(sc), 1e-6));
            const double a = 1 / (1 + std::exp(-sc));
            r.alpha[t * M + m] = a;
            for (size_t c = 0; c < d; ++c) r.out[(t * M + m) * d + c] = a * v[t * d + c];
        }
    return r;
}

std::vector<double> conv_f64(const ConvShape& s, const std::vector<double>& x,
                             const std::vector<float>& nw, const std::vector<float>& cw) {
    const size_t M = size_t(s.branches), d = size_t(s.dim), K = size_t(s.kernel);
    std::vector<double> xn(x.size()), y(x.size());
    for (size_t tm = 0; tm < s.tokens * M; ++tm) {
        double ss = 0;
        for (size_t c = 0; c < d; ++c) ss += x[tm * d + c] * x[tm * d + c];
        const double r = 1 / std::sqrt(ss / double(d) + s.eps);
        for (size_t c = 0; c < d; ++c) xn[tm * d + c] = x[tm * d + c] * r * nw[(tm % M) * d + c];
    }
    for (size_t t = 0; t < s.tokens; ++t)
        for (size_t m = 0; m < M; ++m)
            for (size_t c = 0; c < d; ++c) {
                double acc = 0;
                for (size_t j = 0; j < K; ++j) {
                    const long src = long(t % s.seq_len) - long((K - 1 - j) * size_t(s.dilation));
                    if (src < 0) continue;
                    const size_t ts = t - (t % s.seq_len) + size_t(src);
                    acc += cw[(m * d + c) * K + j] * xn[(ts * M + m) * d + c];
                }
                const size_t i = (t * M + m) * d + c;
                y[i] = acc / (1 + std::exp(-acc)) + x[i];
            }
    return y;
}

void expect_close(std::span<const float> got, const std::vector<double>& want, double abs_tol,
                  double rel_tol, const char* what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        ASSERT_LE(std::fabs(got[i] - want[i]), abs_tol + rel_tol * std::fabs(want[i]))
            << what << " [" << i << "] got " << got[i] << " want " << want[i];
}

}  // namespace

TEST(KernelGate, MatchesFloat64WithAndWithoutSignedSqrt) {
    for (bool ssqrt : {true, false}) {
        const GateShape s{.tokens = 37, .branches = 4, .dim = 96, .signed_sqrt = ssqrt};
        const size_t M = 4, d = 96;
        auto h = random_floats(s.tokens * M * d, 1), k = random_floats(s.tokens * M * d, 2);
        auto v = random_floats(s.tokens * d, 3);
        auto wh = random_floats(M * d, 4, 0.5f, 1.5f), wk = random_floats(M * d, 5, 0.5f, 1.5f);
        std::vector<float> alpha(s.tokens * M), out(s.tokens * M * d);
        engram_gate(s, h, k, v, wh, wk, alpha, out);
        const GateRef ref = gate_f64(s, h, k, v, wh, wk);
        expect_close(alpha, ref.alpha, 2e-6, 1e-5, "alpha");
        expect_close(out, ref.out, 2e-6, 1e-5, "out");
        // The signed square root pushes gates away from 0.5: check the two forms differ.
        double spread = 0;
        for (double a : ref.alpha) spread += std::fabs(a - 0.5);
        EXPECT_GT(spread, 0.01 * double(ref.alpha.size()));
    }
    std::vector<float> small(3);
    const GateShape s{.tokens = 1, .branches = 1, .dim = 4};
    EXPECT_THROW(engram_gate(s, small, small, small, small, small, small, small),
                 std::invalid_argument);
}

TEST(KernelConv, MatchesFloat64AndStaysInsideSequences) {
    const ConvShape s{.tokens = 60, .seq_len = 20, .branches = 2, .dim = 48, .kernel = 4,
                      .dilation = 3};
    const size_t n = s.tokens * 2 * 48;
    auto x = random_floats(n, 8);
    auto nw = random_floats(2 * 48, 9, 0.5f, 1.5f), cw = random_floats(2 * 48 * 4, 10);
    std::vector<float> y(n);
    engram_short_conv(s, x, nw, cw, y);
    expect_close(y, conv_f64(s, std::vector<double>(x.begin(), x.end()), nw, cw), 1e-5, 2e-5, "y");
    // Changing the last token of sequence 0 must not move any output of sequence 1.
    auto x2 = x;
    for (size_t i = 19 * 96; i < 20 * 96; ++i) x2[i] += 1.0f;
    std::vector<float> y2(n);
    engram_short_conv(s, x2, nw, cw, y2);
    for (size_t i = 20 * 96; i < n; ++i) ASSERT_EQ(y[i], y2[i]);
    ConvShape bad = s;
    bad.seq_len = 7;
    EXPECT_THROW(engram_short_conv(bad, x, nw, cw, y), std::invalid_argument);
}

TEST(KernelFused, GateConvResidualMatchesFloat64) {
    const GateShape g{.tokens = 24, .branches = 4, .dim = 64};
    const ConvShape c{.tokens = 24, .seq_len = 12, .branches = 4, .dim = 64};
    const size_t n = 24 * 4 * 64;
    auto h = random_floats(n, 21), k = random_floats(n, 22), v = random_floats(24 * 64, 23);
    auto wh = random_floats(256, 24, 0.5f, 1.5f), wk = random_floats(256, 25, 0.5f, 1.5f);
    auto nw = random_floats(256, 26, 0.5f, 1.5f), cw = random_floats(256 * 4, 27);
    std::vector<float> out(n);
    engram_gate_conv_residual(g, c, h, k, v, wh, wk, nw, cw, out);
    const GateRef gr = gate_f64(g, h, k, v, wh, wk);
    auto want = conv_f64(c, gr.out, nw, cw);
    for (size_t i = 0; i < n; ++i) want[i] += h[i];
    expect_close(out, want, 1e-5, 2e-5, "fused");
}

TEST(KernelGemm, PlainLoopWithinFloatAccumulationBound) {
    const size_t m = 9, n = 13, k = 300;
    auto a = random_floats(m * k, 31), b = random_floats(n * k, 32);
    std::vector<float> c(m * n);
    gemm_nt(m, n, k, a, b, c);
    for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) {
            double exact = 0, mag = 0;
            for (size_t p = 0; p < k; ++p) {
                exact += double(a[i * k + p]) * b[j * k + p];
                mag += std::fabs(double(a[i * k + p]) * b[j * k + p]);
            }
            ASSERT_LE(std::fabs(c[i * n + j] - exact), double(k) * std::ldexp(1.0, -23) * mag);
        }
}
