// The executor's paged KV cache and attention (executor/kv_cache.h, executor/attention.h): block
// bookkeeping counted exactly, rows that never alias, and attention step by step (whole prefills,
// chunked prefills, decodes mixed in one step, preemption) against a plain full-sequence
// computation in double, written here without a cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "executor/attention.h"
#include "executor/kv_cache.h"

namespace {

using namespace engramsim;
using namespace engramsim::executor;
using kernels::ThreadTeam;

uint64_t lcg(uint64_t& s) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 17;
}

// Uniform in [lo, hi).
float uniform(uint64_t& s, float lo, float hi) {
    return lo + (hi - lo) * float(double(lcg(s) & ((1ull << 40) - 1)) / double(1ull << 40));
}

std::vector<float> random_vector(size_t n, uint64_t& s, float lo, float hi) {
    std::vector<float> v(n);
    for (float& x : v) x = uniform(s, lo, hi);
    return v;
}

// ---- KV cache ----

KvShape small_kv_shape() {
    KvShape s;
    s.layers = 3;
    s.n_kv_heads = 2;
    s.head_dim = 4;
    s.block_size = 4;
    s.num_blocks = 6;
    return s;
}

TEST(KvCache, BytesFollowTheShapeAndBadShapesAreRejected) {
    KvShape s = small_kv_shape();
    EXPECT_EQ(s.bytes(), size_t(6 * 4 * 3 * 2 * 2 * 4 * 4));
    for (int field = 0; field < 5; ++field) {
        KvShape bad = small_kv_shape();
        if (field == 0) bad.layers = 0;
        if (field == 1) bad.n_kv_heads = -1;
        if (field == 2) bad.head_dim = 0;
        if (field == 3) bad.block_size = 0;
        if (field == 4) bad.num_blocks = 0;
        EXPECT_THROW(PagedKvCache{bad}, std::invalid_argument) << "field " << field;
    }
}

TEST(KvCache, ReserveAndReleaseCountBlocksExactly) {
    PagedKvCache c(small_kv_shape());  // 6 blocks of 4 positions
    EXPECT_EQ(c.free_blocks(), 6);
    EXPECT_EQ(c.capacity(7), 0u);
    c.reserve(7, 1);
    EXPECT_EQ(c.free_blocks(), 5);
    EXPECT_EQ(c.capacity(7), 4u);
    c.reserve(7, 4);  // still one block
    EXPECT_EQ(c.free_blocks(), 5);
    c.reserve(7, 5);
    EXPECT_EQ(c.free_blocks(), 4);
    EXPECT_EQ(c.capacity(7), 8u);
    c.reserve(7, 2);  // never shrinks
    EXPECT_EQ(c.capacity(7), 8u);
    c.reserve(4000000000u, 9);  // any uint32 id
    EXPECT_EQ(c.free_blocks(), 1);
    EXPECT_EQ(c.capacity(4000000000u), 12u);
    c.reserve(9, 0);  // nothing to hold
    EXPECT_EQ(c.capacity(9), 0u);
    EXPECT_EQ(c.free_blocks(), 1);
    c.release(7);
    EXPECT_EQ(c.free_blocks(), 3);
    EXPECT_EQ(c.capacity(7), 0u);
    c.release(7);  // holds nothing: no-op
    c.release(12345);
    EXPECT_EQ(c.free_blocks(), 3);
    c.release(4000000000u);
    EXPECT_EQ(c.free_blocks(), 6);
}

TEST(KvCache, OutOfBlocksThrowsNamingTheRequestAndChangesNothing) {
    PagedKvCache c(small_kv_shape());
    c.reserve(1, 16);  // 4 blocks
    c.reserve(42, 4);  // 1 block
    try {
        c.reserve(42, 13);  // needs 3 more, 1 free
        FAIL() << "no throw";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("KV cache: out of blocks"), std::string::npos) << what;
        EXPECT_NE(what.find("request 42"), std::string::npos) << what;
        EXPECT_NE(what.find("3 more blocks"), std::string::npos) << what;
        EXPECT_NE(what.find("1 of 6 are free"), std::string::npos) << what;
    }
    EXPECT_EQ(c.free_blocks(), 1);
    EXPECT_EQ(c.capacity(42), 4u);
    c.reserve(42, 8);  // the last block still fits
    EXPECT_EQ(c.free_blocks(), 0);
    EXPECT_THROW(c.reserve(43, 1), std::runtime_error);
}

TEST(KvCache, ReleasedBlocksAreReusedAndAssignmentIsDeterministic) {
    auto play = [](PagedKvCache& c) {
        c.reserve(1, 8);
        c.reserve(2, 3);
        c.reserve(1, 9);
        c.release(2);
        c.reserve(3, 12);
    };
    PagedKvCache a(small_kv_shape()), b(small_kv_shape());
    play(a);
    play(b);
    for (uint32_t r : {1u, 2u, 3u}) {
        const auto ba = a.blocks(r), bb = b.blocks(r);
        EXPECT_TRUE(std::equal(ba.begin(), ba.end(), bb.begin(), bb.end())) << "request " << r;
    }
    // A fresh pool hands out 0, 1, 2, ...; request 2's block (2) went back and came out first.
    EXPECT_EQ(std::vector<int64_t>(a.blocks(1).begin(), a.blocks(1).end()),
              (std::vector<int64_t>{0, 1, 3}));
    EXPECT_EQ(std::vector<int64_t>(a.blocks(3).begin(), a.blocks(3).end()),
              (std::vector<int64_t>{2, 4, 5}));
    EXPECT_EQ(a.free_blocks(), 0);
    a.release(1);
    a.reserve(9, 12);
    EXPECT_EQ(std::vector<int64_t>(a.blocks(9).begin(), a.blocks(9).end()),
              (std::vector<int64_t>{0, 1, 3}));
}

TEST(KvCache, RowsOfDifferentLayersRequestsAndPositionsNeverAlias) {
    const KvShape s = small_kv_shape();
    PagedKvCache c(s);
    // Interleaved growth, so requests' blocks alternate in the pool.
    c.reserve(5, 3);
    c.reserve(6, 4);
    c.reserve(5, 6);
    c.reserve(8, 5);
    c.reserve(6, 7);
    ASSERT_EQ(c.free_blocks(), 0);
    const size_t n = s.row_floats();
    auto pattern = [](int layer, uint32_t req, uint32_t pos, int kv, size_t i) {
        return float((((layer * 16 + int(req)) * 16 + int(pos)) * 2 + kv) * 16 + int(i));
    };
    const uint32_t reqs[] = {5, 6, 8};
    for (int layer = 0; layer < s.layers; ++layer)
        for (uint32_t r : reqs)
            for (uint32_t p = 0; p < c.capacity(r); ++p)
                for (size_t i = 0; i < n; ++i) {
                    c.key(layer, r, p)[i] = pattern(layer, r, p, 0, i);
                    c.value(layer, r, p)[i] = pattern(layer, r, p, 1, i);
                }
    const PagedKvCache& cc = c;
    for (int layer = 0; layer < s.layers; ++layer)
        for (uint32_t r : reqs)
            for (uint32_t p = 0; p < c.capacity(r); ++p)
                for (size_t i = 0; i < n; ++i) {
                    ASSERT_EQ(cc.key(layer, r, p)[i], pattern(layer, r, p, 0, i));
                    ASSERT_EQ(cc.value(layer, r, p)[i], pattern(layer, r, p, 1, i));
                }
    EXPECT_THROW(c.key(0, 5, c.capacity(5)), std::out_of_range);
    EXPECT_THROW(c.value(s.layers, 5, 0), std::out_of_range);
    EXPECT_THROW(c.key(0, 99, 0), std::out_of_range);
}

// ---- attention: the reference ----

// One request's raw projections at one layer (all its positions), the reference output and the
// executor's output, [len][heads * head_dim].
struct Sequence {
    uint32_t id = 0;
    uint32_t len = 0;
    std::vector<float> q, k, v;
    std::vector<double> ref;
    std::vector<float> out;
};

struct LayerData {
    std::vector<float> q_norm, k_norm;
    std::vector<Sequence> seqs;
    Sequence& seq(uint32_t id) {
        for (Sequence& s : seqs)
            if (s.id == id) return s;
        throw std::logic_error("no request " + std::to_string(id));
    }
};

// Per-head RMSNorm then RoPE, in double, of `heads` heads of x at position pos.
std::vector<double> norm_rope(const float* x, int heads, const AttentionShape& s,
                              const std::vector<float>& w, uint32_t pos) {
    const int d = s.head_dim, half = d / 2;
    std::vector<double> y(size_t(heads * d));
    for (int h = 0; h < heads; ++h) {
        const float* xh = x + h * d;
        double* yh = y.data() + h * d;
        double ss = 0;
        for (int i = 0; i < d; ++i) ss += double(xh[i]) * xh[i];
        const double r = 1.0 / std::sqrt(ss / d + double(s.eps));
        std::vector<double> n(static_cast<size_t>(d));
        for (int i = 0; i < d; ++i) n[size_t(i)] = xh[i] * r * w[size_t(i)];
        for (int i = 0; i < half; ++i) {
            const double a = pos * std::pow(double(s.rope_theta), -2.0 * i / d);
            yh[i] = n[size_t(i)] * std::cos(a) - n[size_t(i + half)] * std::sin(a);
            yh[i + half] = n[size_t(i + half)] * std::cos(a) + n[size_t(i)] * std::sin(a);
        }
    }
    return y;
}

// Causal softmax attention over the whole sequence, no cache.
void compute_reference(const AttentionShape& s, const LayerData& ld, Sequence& seq) {
    const int H = s.n_heads, KV = s.n_kv_heads, d = s.head_dim, G = H / KV;
    std::vector<std::vector<double>> qs, ks;
    for (uint32_t p = 0; p < seq.len; ++p) {
        qs.push_back(norm_rope(seq.q.data() + size_t(p) * H * d, H, s, ld.q_norm, p));
        ks.push_back(norm_rope(seq.k.data() + size_t(p) * KV * d, KV, s, ld.k_norm, p));
    }
    seq.ref.assign(size_t(seq.len) * H * d, 0.0);
    std::vector<double> score(seq.len);
    for (uint32_t p = 0; p < seq.len; ++p)
        for (int h = 0; h < H; ++h) {
            const int g = h / G;
            double mx = -1e300;
            for (uint32_t j = 0; j <= p; ++j) {
                double dot = 0;
                for (int i = 0; i < d; ++i) dot += qs[p][size_t(h * d + i)] * ks[j][size_t(g * d + i)];
                score[j] = dot / std::sqrt(double(d));
                mx = std::max(mx, score[j]);
            }
            double sum = 0;
            for (uint32_t j = 0; j <= p; ++j) sum += (score[j] = std::exp(score[j] - mx));
            double* o = seq.ref.data() + (size_t(p) * H + h) * d;
            for (uint32_t j = 0; j <= p; ++j)
                for (int i = 0; i < d; ++i)
                    o[i] += score[j] / sum * seq.v[(size_t(j) * KV + g) * d + i];
        }
}

// Layers of random requests: q, k uniform in [-1, 1), v too, norm weights in [0.5, 2.5).
std::vector<LayerData> make_layers(const AttentionShape& s, int layers,
                                   const std::vector<std::pair<uint32_t, uint32_t>>& id_len,
                                   uint64_t seed) {
    std::vector<LayerData> out(static_cast<size_t>(layers));
    for (LayerData& ld : out) {
        ld.q_norm = random_vector(size_t(s.head_dim), seed, 0.5f, 2.5f);
        ld.k_norm = random_vector(size_t(s.head_dim), seed, 0.5f, 2.5f);
        for (auto [id, len] : id_len) {
            Sequence q;
            q.id = id;
            q.len = len;
            q.q = random_vector(size_t(len) * s.n_heads * s.head_dim, seed, -1, 1);
            q.k = random_vector(size_t(len) * s.n_kv_heads * s.head_dim, seed, -1, 1);
            q.v = random_vector(size_t(len) * s.n_kv_heads * s.head_dim, seed, -1, 1);
            q.out.assign(size_t(len) * s.n_heads * s.head_dim,
                         std::numeric_limits<float>::quiet_NaN());
            compute_reference(s, ld, q);
            ld.seqs.push_back(std::move(q));
        }
    }
    return out;
}

// One engine step over every layer: reserve, gather the slices' rows, attend, scatter outputs.
void run_step(const AttentionShape& s, PagedKvCache& cache, std::vector<LayerData>& layers,
              const std::vector<StepSlice>& slices, ThreadTeam& team) {
    for (const StepSlice& sl : slices) cache.reserve(sl.request, sl.first + sl.count);
    const size_t qrow = size_t(s.n_heads) * s.head_dim, kvrow = size_t(s.n_kv_heads) * s.head_dim;
    for (int layer = 0; layer < int(layers.size()); ++layer) {
        LayerData& ld = layers[size_t(layer)];
        std::vector<float> q, k, v;
        for (const StepSlice& sl : slices) {
            const Sequence& seq = ld.seq(sl.request);
            q.insert(q.end(), seq.q.begin() + sl.first * qrow,
                     seq.q.begin() + (sl.first + sl.count) * qrow);
            k.insert(k.end(), seq.k.begin() + sl.first * kvrow,
                     seq.k.begin() + (sl.first + sl.count) * kvrow);
            v.insert(v.end(), seq.v.begin() + sl.first * kvrow,
                     seq.v.begin() + (sl.first + sl.count) * kvrow);
        }
        std::vector<float> out(q.size());
        attention_step(s, cache, layer, slices, q, k, v, ld.q_norm, ld.k_norm, out, team);
        size_t t = 0;
        for (const StepSlice& sl : slices) {
            Sequence& seq = ld.seq(sl.request);
            std::copy(out.begin() + t * qrow, out.begin() + (t + sl.count) * qrow,
                      seq.out.begin() + sl.first * qrow);
            t += sl.count;
        }
    }
}

void expect_matches_reference(const std::vector<LayerData>& layers) {
    for (size_t layer = 0; layer < layers.size(); ++layer)
        for (const Sequence& seq : layers[layer].seqs) {
            size_t bad = 0;
            double worst = 0;
            for (size_t i = 0; i < seq.out.size(); ++i) {
                const double err = std::abs(double(seq.out[i]) - seq.ref[i]) /
                                   std::max(1.0, std::abs(seq.ref[i]));
                if (!(err <= 1e-4)) ++bad;  // NaN (never written) counts as bad
                if (err > worst) worst = err;
            }
            EXPECT_EQ(bad, 0u) << "layer " << layer << " request " << seq.id << ": worst error "
                               << worst;
        }
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

AttentionShape gqa_shape(int heads, int kv_heads, int head_dim) {
    AttentionShape s;
    s.n_heads = heads;
    s.n_kv_heads = kv_heads;
    s.head_dim = head_dim;
    return s;
}

KvShape kv_for(const AttentionShape& s, int layers, int block_size, int64_t blocks) {
    KvShape k;
    k.layers = layers;
    k.n_kv_heads = s.n_kv_heads;
    k.head_dim = s.head_dim;
    k.block_size = block_size;
    k.num_blocks = blocks;
    return k;
}

// ---- attention ----

TEST(Attention, RopeRotatesEachPairByItsClosedFormAngle) {
    // head_dim 4: pair (0, 2) by pos * theta^0, pair (1, 3) by pos * theta^(-1/2); two heads.
    const float theta = 10000.0f;
    const uint32_t pos = 7;
    std::vector<float> x = {0.3f, -1.2f, 0.8f, 2.5f, 1.0f, 0.0f, 0.0f, -1.0f};
    const std::vector<float> x0 = x;
    apply_rope(x, 4, pos, theta);
    const double a0 = 7.0, a1 = 7.0 / 100.0;
    for (int h = 0; h < 2; ++h) {
        const float* r = x0.data() + 4 * h;
        const float* y = x.data() + 4 * h;
        EXPECT_NEAR(y[0], r[0] * std::cos(a0) - r[2] * std::sin(a0), 1e-6);
        EXPECT_NEAR(y[2], r[2] * std::cos(a0) + r[0] * std::sin(a0), 1e-6);
        EXPECT_NEAR(y[1], r[1] * std::cos(a1) - r[3] * std::sin(a1), 1e-6);
        EXPECT_NEAR(y[3], r[3] * std::cos(a1) + r[1] * std::sin(a1), 1e-6);
    }
    std::vector<float> z = x0;
    apply_rope(z, 4, 0, theta);  // position 0: the identity
    EXPECT_TRUE(bit_equal(z, x0));
    EXPECT_THROW(apply_rope(z, 3, 1, theta), std::invalid_argument);
}

TEST(Attention, WholePrefillInOneStepMatchesTheReference) {
    const AttentionShape s = gqa_shape(4, 1, 128);
    auto layers = make_layers(s, 1, {{3, 100}}, 11);
    PagedKvCache cache(kv_for(s, 1, 32, 4));
    ThreadTeam team(2);
    run_step(s, cache, layers, {{3, 0, 100}}, team);
    expect_matches_reference(layers);
}

// Requests A (id 0), B (id 1000000007) and C (id 5): A and B prefilled whole in step 0, then
// decoded one token per step; C joins in step 3 with a prefill in two chunks (steps 3 and 4) and
// then decodes. Every step but the last few has several slices.
std::vector<std::vector<StepSlice>> mixed_schedule() {
    const uint32_t A = 0, B = 1000000007u, C = 5;
    std::vector<std::vector<StepSlice>> steps;
    steps.push_back({{A, 0, 24}, {B, 0, 50}});
    for (uint32_t i = 1; i <= 20; ++i) {
        std::vector<StepSlice> st;
        if (24 + i - 1 < 40) st.push_back({A, 24 + i - 1, 1});
        if (i == 3) st.push_back({C, 0, 12});
        st.push_back({B, 50 + i - 1, 1});
        if (i == 4) st.push_back({C, 12, 10});
        if (i >= 5 && 22 + i - 5 < 30) st.push_back({C, 22 + i - 5, 1});
        steps.push_back(st);
    }
    return steps;
}

const std::vector<std::pair<uint32_t, uint32_t>> kMixedRequests = {
    {0, 40}, {1000000007u, 70}, {5, 30}};

class AttentionMixed : public ::testing::TestWithParam<int> {};

TEST_P(AttentionMixed, PrefillThenDecodeMixedWithOtherRequestsMatchesTheReference) {
    const AttentionShape s = gqa_shape(8, 2, GetParam());  // GQA ratio 4
    auto layers = make_layers(s, 2, kMixedRequests, 21);
    PagedKvCache cache(kv_for(s, 2, 16, 12));  // blocks of 16: tables of up to 5 blocks
    ThreadTeam team(2);
    for (const auto& step : mixed_schedule()) run_step(s, cache, layers, step, team);
    expect_matches_reference(layers);
}

// 64 and 128 as Qwen3; 20 leaves a tail after the dot product's vector-wide partial sums.
INSTANTIATE_TEST_SUITE_P(HeadDims, AttentionMixed, ::testing::Values(64, 128, 20));

// With 4 kv heads the items differ too: C's chunked-prefill steps (12 and 14 tokens) give one
// thread items of all 4 kv heads and three threads items of 2, decode steps items of 1.
TEST(Attention, ResultsAreIdenticalBitForBitWithOneAndThreeThreads) {
    const AttentionShape s = gqa_shape(16, 4, 64);
    auto one = make_layers(s, 2, kMixedRequests, 31);
    auto three = one;
    PagedKvCache c1(kv_for(s, 2, 16, 12)), c3(kv_for(s, 2, 16, 12));
    ThreadTeam t1(1), t3(3);
    for (const auto& step : mixed_schedule()) {
        run_step(s, c1, one, step, t1);
        run_step(s, c3, three, step, t3);
    }
    for (size_t layer = 0; layer < one.size(); ++layer)
        for (size_t i = 0; i < one[layer].seqs.size(); ++i) {
            const Sequence& a = one[layer].seqs[i];
            const Sequence& b = three[layer].seqs[i];
            EXPECT_TRUE(bit_equal(a.out, b.out)) << "layer " << layer << " request " << a.id;
            for (uint32_t p = 0; p < a.len; ++p)
                ASSERT_EQ(std::memcmp(c1.key(int(layer), a.id, p), c3.key(int(layer), a.id, p),
                                      s.n_kv_heads * s.head_dim * sizeof(float)),
                          0);
        }
    expect_matches_reference(three);
}

TEST(Attention, RecomputeAfterPreemptionEqualsTheFirstTimeBitForBit) {
    const AttentionShape s = gqa_shape(8, 2, 64);
    const uint32_t A = 1, B = 2, D = 3;
    auto layers = make_layers(s, 2, {{A, 40}, {B, 32}, {D, 20}}, 41);
    PagedKvCache cache(kv_for(s, 2, 16, 9));
    ThreadTeam team(2);
    run_step(s, cache, layers, {{A, 0, 40}, {B, 0, 20}}, team);
    for (uint32_t p = 20; p < 30; ++p) run_step(s, cache, layers, {{B, p, 1}}, team);
    std::vector<std::vector<float>> first;
    for (const LayerData& ld : layers) first.push_back(ld.seqs[0].out);
    const std::vector<int64_t> blocks_before(cache.blocks(A).begin(), cache.blocks(A).end());

    cache.release(A);  // preempted: D takes A's first two blocks, A comes back on others
    run_step(s, cache, layers, {{D, 0, 20}, {B, 30, 1}}, team);
    for (LayerData& ld : layers)
        std::fill(ld.seqs[0].out.begin(), ld.seqs[0].out.end(), -1.0f);
    run_step(s, cache, layers, {{B, 31, 1}, {A, 0, 40}}, team);
    const std::vector<int64_t> blocks_after(cache.blocks(A).begin(), cache.blocks(A).end());
    ASSERT_NE(blocks_before, blocks_after);  // else the test would prove nothing
    for (size_t layer = 0; layer < layers.size(); ++layer)
        EXPECT_TRUE(bit_equal(layers[layer].seqs[0].out, first[layer])) << "layer " << layer;
    expect_matches_reference(layers);
}

TEST(Attention, HugeFiniteInputsGiveFiniteOutputs) {
    for (float w : {1e3f, 1e19f}) {
        const AttentionShape s = gqa_shape(4, 2, 64);
        uint64_t seed = 51;
        LayerData ld;
        ld.q_norm = random_vector(64, seed, -w, w);
        ld.k_norm = random_vector(64, seed, -w, w);
        const uint32_t L = 40;
        std::vector<float> q = random_vector(L * 4 * 64, seed, -1e30f, 1e30f);
        std::vector<float> k = random_vector(L * 2 * 64, seed, -1e30f, 1e30f);
        std::vector<float> v = random_vector(L * 2 * 64, seed, -1, 1);
        std::vector<float> out(q.size());
        PagedKvCache cache(kv_for(s, 1, 16, 3));
        cache.reserve(0, L);
        ThreadTeam team(1);
        const StepSlice sl{0, 0, L};
        attention_step(s, cache, 0, {&sl, 1}, q, k, v, ld.q_norm, ld.k_norm, out, team);
        for (float x : out) {
            ASSERT_TRUE(std::isfinite(x)) << "weights " << w;
            ASSERT_LE(std::abs(x), 1.0f + 1e-5f) << "weights " << w;  // a convex mix of v
        }
    }
}

TEST(Attention, RejectsInconsistentShapesAndSlicesBeyondTheReservation) {
    const AttentionShape s = gqa_shape(4, 2, 8);
    PagedKvCache cache(kv_for(s, 1, 4, 4));
    cache.reserve(0, 4);
    ThreadTeam team(1);
    std::vector<float> q(4 * 4 * 8), k(4 * 2 * 8), v(4 * 2 * 8), out(4 * 4 * 8), w(8, 1.0f);
    const StepSlice ok{0, 0, 4}, past{0, 1, 4};
    EXPECT_NO_THROW(attention_step(s, cache, 0, {&ok, 1}, q, k, v, w, w, out, team));
    EXPECT_THROW(attention_step(s, cache, 0, {&past, 1}, q, k, v, w, w, out, team),
                 std::out_of_range);
    EXPECT_THROW(attention_step(s, cache, 1, {&ok, 1}, q, k, v, w, w, out, team),
                 std::invalid_argument);
    std::vector<float> short_q(q.size() - 1);
    EXPECT_THROW(attention_step(s, cache, 0, {&ok, 1}, short_q, k, v, w, w, out, team),
                 std::invalid_argument);
    AttentionShape bad = s;
    bad.n_heads = 3;
    EXPECT_THROW(attention_step(bad, cache, 0, {&ok, 1}, q, k, v, w, w, out, team),
                 std::invalid_argument);
    bad = s;
    bad.n_kv_heads = 1;  // not what the cache holds
    bad.n_heads = 4;
    EXPECT_THROW(attention_step(bad, cache, 0, {&ok, 1}, q, k, v, w, w, out, team),
                 std::invalid_argument);
}

}  // namespace
