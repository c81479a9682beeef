#include "executor/attention.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace engramsim::executor {

namespace {

// Scores are clamped into [-kBig, kBig] (a NaN from an overflowing dot product becomes -kBig), so
// the softmax never subtracts infinities: every input of finite values gives finite weights.
constexpr float kBig = 1e30f;

// Partial sums of a dot product, added in one fixed order at the end; the compiler vectorizes the
// fixed-width inner loop. Two vectors' worth: with SSE 8 was faster than 16 (a cheaper final
// sum), with AVX (-march=native, FMA chains) 8 took twice as long as 16.
#if defined(__AVX__)
constexpr int kLanes = 16;
#else
constexpr int kLanes = 8;
#endif

// Positions an item is charged beyond the ones it reads (its setup and output).
constexpr uint64_t kItemOverhead = 32;

// Items per thread below which an item covers fewer kv heads, so that a decode step of few
// sequences still gives every thread work.
constexpr size_t kItemsPerThread = 8;

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("attention: " + what);
}

void require_size(size_t have, size_t want, const char* name) {
    require(have == want, std::string(name) + " has " + std::to_string(have) +
                              " values, the step needs " + std::to_string(want));
}

// a . b over n values.
inline float dot(const float* __restrict a, const float* __restrict b, int n) {
    float acc[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
    float half[kLanes / 2];
    for (int l = 0; l < kLanes / 2; ++l) half[l] = acc[l] + acc[l + kLanes / 2];
    float sum = half[0];
    for (int l = 1; l < kLanes / 2; ++l) sum += half[l];
    return sum;
}

// e^x for x <= 0: Cephes expf's range reduction and polynomial (about 1 ulp), branch-free so that
// a loop of them vectorizes. Below -87 it returns e^-87 (under 2^-125: nothing next to the
// chunk's largest weight, 1). The clamp is a bit mask on |x|'s bits: a float compare and select
// stops gcc from vectorizing the loop.
inline float exp_nonpositive(float x) {
    const int32_t bits = std::bit_cast<int32_t>(x);
    const int32_t big = -int32_t((bits & 0x7fffffff) > std::bit_cast<int32_t>(87.0f));
    x = std::bit_cast<float>((bits & ~big) | (std::bit_cast<int32_t>(-87.0f) & big));
    const float n = float(int(x * 1.44269504088896341f - 0.5f));  // nearest, as x <= 0
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    return p * std::bit_cast<float>((int32_t(n) + 127) << 23);
}

// Rows of keys or values asked for this far ahead of the one being read: an item's rows are
// runs n_kv_heads * head_dim apart (when it covers fewer than all kv heads, a stride the hardware
// prefetchers follow poorly) and cross 4 KiB pages every few rows.
constexpr size_t kAhead = 16;

inline void prefetch_span(const float* at, size_t bytes) {
    if (!at) return;
    const char* p = reinterpret_cast<const char*>(at);
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

// Value rows folded into the accumulators together, so each accumulator is loaded and stored
// once per kRows rows rather than once per row (8 was faster than 4). Each element still adds
// row after row, in order.
constexpr size_t kRows = 8;

// o[0:d) += w[r] * v[r * stride + i] for r < rows <= kRows, in the order of r.
inline void add_weighted_rows(float* __restrict o, const float* w, const float* v, size_t stride,
                              size_t rows, int d) {
    if (rows == kRows) {
        const float* __restrict vr[kRows];
        float wr[kRows];
        for (size_t r = 0; r < kRows; ++r) vr[r] = v + r * stride, wr[r] = w[r];
        for (int i = 0; i < d; ++i) {
            float x = o[i];
            for (size_t r = 0; r < kRows; ++r) x += wr[r] * vr[r][i];
            o[i] = x;
        }
        return;
    }
    for (size_t r = 0; r < rows; ++r) {
        const float wr = w[r];
        const float* __restrict vr = v + r * stride;
        for (int i = 0; i < d; ++i) o[i] += wr * vr[i];
    }
}

inline float clamp_score(float s) { return s > -kBig ? (s < kBig ? s : kBig) : -kBig; }

// x[0:n) = x / sqrt(mean(x^2) + eps) * w, the mean in double (no overflow for finite x).
void head_rms_norm(float* x, const float* w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
    const float r = float(1.0 / std::sqrt(ss / n + double(eps)));
    for (int i = 0; i < n; ++i) x[i] = x[i] * r * w[i];
}

// inv_freq[i] = theta^(-2i / head_dim), i < head_dim / 2.
std::vector<double> rope_inv_freq(int head_dim, float theta) {
    std::vector<double> f(size_t(head_dim / 2));
    for (int i = 0; i < head_dim / 2; ++i)
        f[size_t(i)] = std::pow(double(theta), -2.0 * i / head_dim);
    return f;
}

void rope_angles(const std::vector<double>& inv_freq, uint32_t pos, float* cos_out,
                 float* sin_out) {
    for (size_t i = 0; i < inv_freq.size(); ++i) {
        const double a = double(pos) * inv_freq[i];
        cos_out[i] = float(std::cos(a));
        sin_out[i] = float(std::sin(a));
    }
}

// Rotates pairs (i, i + half) of each of `heads` heads of x.
void rope_rotate(float* x, int heads, int head_dim, const float* c, const float* s) {
    const int half = head_dim / 2;
    for (int h = 0; h < heads; ++h) {
        float* a = x + size_t(h) * size_t(head_dim);
        float* b = a + half;
        for (int i = 0; i < half; ++i) {
            const float x1 = a[i], x2 = b[i];
            a[i] = x1 * c[i] - x2 * s[i];
            b[i] = x2 * c[i] + x1 * s[i];
        }
    }
}

// A per-thread buffer of at least n floats, kept between calls.
float* scratch(std::vector<float>& buf, size_t n) {
    if (buf.size() < n) buf.resize(n);
    return buf.data();
}

// One token of the step: where its request's blocks are and its absolute position.
struct TokenRef {
    const int64_t* blocks = nullptr;
    uint32_t pos = 0;
};

// Everything pass 2 reads, fixed for the step.
struct Pass2 {
    const PagedKvCache* cache;
    int layer, heads, kv_heads, group, head_dim;
    float scale;
    const float* q;
    float* out;
};

// Floats of scratch that attend_item needs for `kv_heads` kv heads.
size_t scratch_floats(const Pass2& a, int kv_heads) {
    const size_t nh = size_t(kv_heads) * size_t(a.group);
    return nh * (size_t(a.cache->shape().block_size) + size_t(a.head_dim) + 2);
}

// The outputs of kv heads [g0, g1)'s query heads for token t: online softmax over its positions
// [0, pos], one KV block at a time. Each position's key (then value) row of those kv heads, one
// contiguous run, is read once for all their query heads. Per head the arithmetic depends only
// on the position and the data: not on g0, g1, the thread or the physical blocks.
void attend_item(const Pass2& a, const TokenRef& tok, size_t t, int g0, int g1, float* scratch) {
    const KvShape& ks = a.cache->shape();
    const int G = a.group, d = a.head_dim, ng = g1 - g0, nh = ng * G;
    const size_t bs = size_t(ks.block_size), rs = ks.row_floats(), h0 = size_t(g0) * size_t(G);
    float* s = scratch;                     // [nh][block_size] scores, then weights
    float* o = s + size_t(nh) * bs;         // [nh][head_dim] weighted values
    float* m = o + size_t(nh) * size_t(d);  // [nh] running maximum
    float* l = m + nh;                      // [nh] running sum of weights
    const float* q = a.q + (t * size_t(a.heads) + h0) * size_t(d);
    std::fill(m, m + nh, -kBig);
    std::fill(l, l + nh, 0.0f);
    std::fill(o, o + size_t(nh) * size_t(d), 0.0f);
    const size_t end = size_t(tok.pos) + 1, off = size_t(g0) * size_t(d);
    const size_t span_bytes = size_t(ng) * size_t(d) * sizeof(float);  // of one row
    for (size_t j0 = 0, b = 0; j0 < end; j0 += bs, ++b) {
        const size_t n = std::min(bs, end - j0);
        const float* kb = a.cache->block_rows(tok.blocks[b], a.layer, 0) + off;
        const float* vb = a.cache->block_rows(tok.blocks[b], a.layer, 1) + off;
        // The next block's keys, read after these values (null past the token's last block).
        const float* kn =
            j0 + bs < end ? a.cache->block_rows(tok.blocks[b + 1], a.layer, 0) + off : nullptr;
        for (size_t j = 0; j < n; ++j) {
            prefetch_span(j + kAhead < n ? kb + (j + kAhead) * rs
                                         : (j + kAhead - n < n ? vb + (j + kAhead - n) * rs
                                                               : nullptr),
                          span_bytes);
            for (int g = 0, h = 0; g < ng; ++g)
                for (int e = 0; e < G; ++e, ++h)
                    s[size_t(h) * bs + j] = clamp_score(
                        dot(q + size_t(h) * d, kb + j * rs + size_t(g) * d, d) * a.scale);
        }
        for (int h = 0; h < nh; ++h) {
            float* sh = s + size_t(h) * bs;
            float mc = m[h];
            for (size_t j = 0; j < n; ++j) mc = std::max(mc, sh[j]);
            const float alpha = exp_nonpositive(m[h] - mc);
            for (size_t j = 0; j < n; ++j) sh[j] = exp_nonpositive(sh[j] - mc);
            float sum = 0;
            for (size_t j = 0; j < n; ++j) sum += sh[j];
            l[h] = l[h] * alpha + sum;
            m[h] = mc;
            if (alpha != 1.0f)
                for (float *oh = o + size_t(h) * d, *e = oh + d; oh < e; ++oh) *oh *= alpha;
        }
        for (size_t j = 0; j < n; j += kRows) {
            const size_t rows = std::min(kRows, n - j);
            for (size_t r = j; r < j + rows; ++r)
                prefetch_span(r + kAhead < n ? vb + (r + kAhead) * rs
                                             : (kn ? kn + (r + kAhead - n) * rs : nullptr),
                              span_bytes);
            for (int g = 0, h = 0; g < ng; ++g)
                for (int e = 0; e < G; ++e, ++h)
                    add_weighted_rows(o + size_t(h) * d, s + size_t(h) * bs + j,
                                      vb + j * rs + size_t(g) * d, rs, rows, d);
        }
    }
    float* out = a.out + (t * size_t(a.heads) + h0) * size_t(d);
    for (int h = 0; h < nh; ++h) {
        const float inv = 1.0f / l[h];
        for (int i = 0; i < d; ++i) out[size_t(h) * d + i] = o[size_t(h) * d + i] * inv;
    }
}

// KV heads per item: all of them (whole rows, read front to back) unless that leaves fewer than
// kItemsPerThread items per thread, then the largest divisor of kv_heads that does not.
int kv_heads_per_item(size_t tokens, int kv_heads, int threads) {
    for (int per = kv_heads; per > 1; --per)
        if (kv_heads % per == 0 &&
            tokens * size_t(kv_heads / per) >= kItemsPerThread * size_t(threads))
            return per;
    return 1;
}

// Item boundaries: part p of `parts` runs items [cut[p], cut[p + 1]), runs of equal cost.
std::vector<size_t> split_by_cost(const std::vector<uint64_t>& prefix, int parts) {
    std::vector<size_t> cut(size_t(parts) + 1);
    const uint64_t total = prefix.back();
    for (int p = 0; p <= parts; ++p) {
        const uint64_t target = total / uint64_t(parts) * uint64_t(p) +
                                total % uint64_t(parts) * uint64_t(p) / uint64_t(parts);
        cut[size_t(p)] = size_t(std::lower_bound(prefix.begin(), prefix.end(), target) -
                                prefix.begin());
    }
    cut.back() = prefix.size() - 1;
    return cut;
}

void validate_step(const AttentionShape& shape, const PagedKvCache& cache, int layer,
                   std::span<const StepSlice> slices) {
    shape.validate();
    const KvShape& ks = cache.shape();
    require(ks.n_kv_heads == shape.n_kv_heads && ks.head_dim == shape.head_dim,
            "the KV cache holds " + std::to_string(ks.n_kv_heads) + " kv heads of " +
                std::to_string(ks.head_dim) + ", the layer has " +
                std::to_string(shape.n_kv_heads) + " of " + std::to_string(shape.head_dim));
    require(layer >= 0 && layer < ks.layers,
            "layer " + std::to_string(layer) + " of " + std::to_string(ks.layers));
    for (const StepSlice& sl : slices)
        if (uint64_t(sl.first) + sl.count > cache.capacity(sl.request))
            throw std::out_of_range(
                "attention: request " + std::to_string(sl.request) + " positions [" +
                std::to_string(sl.first) + ", " + std::to_string(uint64_t(sl.first) + sl.count) +
                ") beyond its " + std::to_string(cache.capacity(sl.request)) +
                " reserved positions");
}

}  // namespace

void AttentionShape::validate() const {
    require(n_heads > 0 && n_kv_heads > 0 && head_dim > 0,
            "heads, kv heads and head_dim must be positive");
    require(n_heads % n_kv_heads == 0, std::to_string(n_heads) + " heads are not a multiple of " +
                                           std::to_string(n_kv_heads) + " kv heads");
    require(head_dim % 2 == 0, "head_dim " + std::to_string(head_dim) + " is odd");
    require(rope_theta > 0 && std::isfinite(rope_theta), "rope_theta must be positive");
    require(eps >= 0 && std::isfinite(eps), "eps must be finite and >= 0");
}

void apply_rope(std::span<float> x, int head_dim, uint32_t pos, float theta) {
    require(head_dim > 0 && head_dim % 2 == 0 && x.size() % size_t(head_dim) == 0,
            "RoPE: x is not whole heads of an even head_dim");
    const std::vector<double> inv_freq = rope_inv_freq(head_dim, theta);
    std::vector<float> c(inv_freq.size()), s(inv_freq.size());
    rope_angles(inv_freq, pos, c.data(), s.data());
    rope_rotate(x.data(), int(x.size() / size_t(head_dim)), head_dim, c.data(), s.data());
}

void attention_step(const AttentionShape& shape, PagedKvCache& cache, int layer,
                    std::span<const StepSlice> slices, std::span<float> q, std::span<float> k,
                    std::span<const float> v, std::span<const float> q_norm,
                    std::span<const float> k_norm, std::span<float> out,
                    kernels::ThreadTeam& team) {
    size_t T = 0;
    for (const StepSlice& sl : slices) T += sl.count;
    validate_step(shape, cache, layer, slices);
    const int H = shape.n_heads, KV = shape.n_kv_heads, d = shape.head_dim;
    const size_t qrow = size_t(H) * size_t(d), kvrow = size_t(KV) * size_t(d);
    require_size(q.size(), T * qrow, "q");
    require_size(k.size(), T * kvrow, "k");
    require_size(v.size(), T * kvrow, "v");
    require_size(out.size(), T * qrow, "out");
    require_size(q_norm.size(), size_t(d), "q_norm");
    require_size(k_norm.size(), size_t(d), "k_norm");
    if (T == 0) return;

    std::vector<TokenRef> toks;
    toks.reserve(T);
    for (const StepSlice& sl : slices) {
        const int64_t* blocks = cache.blocks(sl.request).data();
        for (uint32_t i = 0; i < sl.count; ++i) toks.push_back({blocks, sl.first + i});
    }

    // Pass 1, by tokens: norms, RoPE, K and V into the cache.
    const std::vector<double> inv_freq = rope_inv_freq(d, shape.rope_theta);
    const KvShape& ks = cache.shape();
    team.run([&](int part, int parts) {
        thread_local std::vector<float> buf;
        float* c = scratch(buf, size_t(d));
        float* s = c + d / 2;
        for (size_t t = T * size_t(part) / size_t(parts); t < T * size_t(part + 1) / size_t(parts);
             ++t) {
            float* qt = q.data() + t * qrow;
            float* kt = k.data() + t * kvrow;
            for (int h = 0; h < H; ++h)
                head_rms_norm(qt + size_t(h) * d, q_norm.data(), d, shape.eps);
            for (int h = 0; h < KV; ++h)
                head_rms_norm(kt + size_t(h) * d, k_norm.data(), d, shape.eps);
            rope_angles(inv_freq, toks[t].pos, c, s);
            rope_rotate(qt, H, d, c, s);
            rope_rotate(kt, KV, d, c, s);
            const size_t bs = size_t(ks.block_size), pos = toks[t].pos;
            const int64_t block = toks[t].blocks[pos / bs];
            const size_t at = (pos % bs) * kvrow;
            std::memcpy(cache.block_rows(block, layer, 0) + at, kt, kvrow * sizeof(float));
            std::memcpy(cache.block_rows(block, layer, 1) + at, v.data() + t * kvrow,
                        kvrow * sizeof(float));
        }
    });

    // Pass 2, by (token, kv heads) items in runs of equal cost.
    const int per = kv_heads_per_item(T, KV, team.threads()), items_per_token = KV / per;
    std::vector<uint64_t> prefix(T * size_t(items_per_token) + 1, 0);
    for (size_t t = 0, i = 0; t < T; ++t)
        for (int c = 0; c < items_per_token; ++c, ++i)
            prefix[i + 1] = prefix[i] + (toks[t].pos + 1 + kItemOverhead) * uint64_t(per);
    const std::vector<size_t> cut = split_by_cost(prefix, team.threads());
    const Pass2 a{&cache, layer, H, KV, H / KV, d, float(1.0 / std::sqrt(double(d))), q.data(),
                  out.data()};
    team.run([&](int part, int) {
        thread_local std::vector<float> buf;
        float* scratch_buf = scratch(buf, scratch_floats(a, per));
        for (size_t i = cut[size_t(part)]; i < cut[size_t(part) + 1]; ++i) {
            const size_t t = i / size_t(items_per_token);
            const int g0 = int(i % size_t(items_per_token)) * per;
            attend_item(a, toks[t], t, g0, g0 + per, scratch_buf);
        }
    });
}

}  // namespace engramsim::executor
