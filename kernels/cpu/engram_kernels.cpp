#include "kernels/cpu/engram_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace engramsim::kernels {

namespace {

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

void require_size(size_t have, size_t want, const char* name) {
    if (have != want)
        throw std::invalid_argument(std::string(name) + ": has " + std::to_string(have) +
                                    " elements, the shape needs " + std::to_string(want));
}

// Rows ahead that the gather prefetches. A stream of random rows is limited by how many cache
// misses are in flight (measured here: 236 ns to DRAM, so one miss at a time would move
// 0.3 GB/s), so the loop asks for rows this far ahead, into L2 (prefetcht1), whose miss queue is
// deeper than L1's fill buffers. 32 was the best of 16 / 32 / 64 on the development VM.
constexpr size_t kPrefetchRows = 32;

inline void prefetch_row(const uint8_t* p, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 2);
    __builtin_prefetch(p + bytes - 1, 0, 2);  // rows that straddle one more line
}

// Copies one row to the output with non-temporal 16-byte stores when both sides allow it: the
// gathered batch goes to a staging buffer that DMA or the next kernel reads, not this core, so
// write-allocating it in cache would only cost a read of the destination line.
inline void copy_row(uint8_t* dst, const uint8_t* src, size_t bytes, bool stream) {
#if defined(__SSE2__)
    if (stream) {
        for (size_t off = 0; off < bytes; off += 16)
            _mm_stream_si128(reinterpret_cast<__m128i*>(dst + off),
                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + off)));
        return;
    }
#endif
    (void)stream;
    std::memcpy(dst, src, bytes);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x * sigmoid(x); }

}  // namespace

std::string dtype_name(Dtype d) {
    switch (d) {
        case Dtype::f32: return "f32";
        case Dtype::bf16: return "bf16";
        case Dtype::f16: return "f16";
        case Dtype::fp8_e4m3: return "fp8_e4m3";
    }
    return "?";
}

Dtype dtype_from_name(const std::string& name) {
    for (Dtype d : {Dtype::f32, Dtype::bf16, Dtype::f16, Dtype::fp8_e4m3})
        if (dtype_name(d) == name) return d;
    throw std::invalid_argument("unknown dtype '" + name + "'; known: bf16, f16, f32, fp8_e4m3");
}

void hash_all_layers(const NgramHasher& hasher, std::span<const uint32_t> ids,
                     std::span<uint32_t> out) {
    const size_t per_layer = ids.size() * size_t(hasher.heads_per_layer());
    require_size(out.size(), hasher.layers().size() * per_layer, "hash_all_layers out");
    for (size_t l = 0; l < hasher.layers().size(); ++l)
        hasher.hash_layer(l, ids, out.subspan(l * per_layer, per_layer));
}

void TableView::validate() const {
    require(rows != nullptr || total_rows == 0, "table: no row data");
    require(row_values > 0, "table: row_values must be positive");
    require(head_offsets.size() == head_rows.size(),
            "table: head_offsets and head_rows differ in length");
    require(!head_offsets.empty(), "table: no heads");
    for (size_t h = 0; h < head_offsets.size(); ++h)
        require(head_offsets[h] + head_rows[h] <= total_rows,
                "table: head " + std::to_string(h) + " ends past the table's " +
                    std::to_string(total_rows) + " rows");
    if (dtype == Dtype::fp8_e4m3) {
        require(scales != nullptr, "table: fp8 rows need scales");
        require(scale_block_values > 0 && scale_block_values <= row_values,
                "table: scale_block_values must be in [1, row_values]");
    } else {
        require(scales == nullptr, "table: scales are only for fp8 rows");
    }
}

void gather_rows(const TableView& table, std::span<const uint32_t> row_ids,
                 std::span<uint8_t> out) {
    table.validate();
    const size_t heads = size_t(table.heads());
    require(row_ids.size() % heads == 0, "gather: row ids are not a whole number of tokens");
    const size_t row_bytes = table.row_bytes();
    require_size(out.size(), row_ids.size() * row_bytes, "gather out (bytes)");
    const size_t n = row_ids.size();
    auto src_of = [&](size_t i) {
        const size_t h = i % heads;
        const uint32_t r = row_ids[i];
        if (r >= table.head_rows[h])
            throw std::out_of_range("gather: row id " + std::to_string(r) + " of head " +
                                    std::to_string(h) + " is past its " +
                                    std::to_string(table.head_rows[h]) + " rows");
        return table.rows + (table.head_offsets[h] + r) * row_bytes;
    };
    const bool stream =
        row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(out.data()) % 16 == 0;
    for (size_t i = 0; i < std::min(n, kPrefetchRows); ++i) prefetch_row(src_of(i), row_bytes);
    uint8_t* dst = out.data();
    for (size_t i = 0; i < n; ++i, dst += row_bytes) {
        if (i + kPrefetchRows < n) prefetch_row(src_of(i + kPrefetchRows), row_bytes);
        copy_row(dst, src_of(i), row_bytes, stream);
    }
#if defined(__SSE2__)
    if (stream) _mm_sfence();  // streaming stores are weakly ordered: publish them
#endif
}

void gather_scales(const TableView& table, std::span<const uint32_t> row_ids,
                   std::span<float> out) {
    table.validate();
    require(table.scales != nullptr, "gather_scales: the table has no scales");
    const size_t heads = size_t(table.heads());
    require(row_ids.size() % heads == 0, "gather: row ids are not a whole number of tokens");
    const size_t blocks = size_t(table.scale_blocks());
    require_size(out.size(), row_ids.size() * blocks, "gather_scales out");
    for (size_t i = 0; i < row_ids.size(); ++i) {
        const size_t h = i % heads;
        if (row_ids[i] >= table.head_rows[h])
            throw std::out_of_range("gather: row id " + std::to_string(row_ids[i]) + " of head " +
                                    std::to_string(h) + " is past its " +
                                    std::to_string(table.head_rows[h]) + " rows");
        const uint64_t row = table.head_offsets[h] + row_ids[i];
        std::copy(table.scales + row * blocks, table.scales + (row + 1) * blocks,
                  out.data() + i * blocks);
    }
}

void gather_rows_f32(const TableView& table, std::span<const uint32_t> row_ids,
                     std::span<float> out) {
    table.validate();
    const size_t heads = size_t(table.heads());
    require(row_ids.size() % heads == 0, "gather: row ids are not a whole number of tokens");
    const int rv = table.row_values;
    require_size(out.size(), row_ids.size() * size_t(rv), "gather out (values)");
    const size_t row_bytes = table.row_bytes();
    const int blocks = table.scale_blocks();
    for (size_t i = 0; i < row_ids.size(); ++i) {
        const size_t h = i % heads;
        const uint32_t r = row_ids[i];
        if (r >= table.head_rows[h])
            throw std::out_of_range("gather: row id " + std::to_string(r) + " of head " +
                                    std::to_string(h) + " is past its " +
                                    std::to_string(table.head_rows[h]) + " rows");
        const uint64_t row = table.head_offsets[h] + r;
        const uint8_t* src = table.rows + row * row_bytes;
        float* dst = out.data() + i * size_t(rv);
        for (int c = 0; c < rv; ++c) {
            float x = load_element(src, table.dtype, c);
            if (table.dtype == Dtype::fp8_e4m3)
                x *= table.scales[row * size_t(blocks) + size_t(c / table.scale_block_values)];
            dst[c] = x;
        }
    }
}

void GateShape::validate() const {
    require(branches >= 1, "gate: branches must be >= 1");
    require(dim >= 1, "gate: dim must be >= 1");
    require(eps >= 0, "gate: eps must be >= 0");
}

void engram_gate(const GateShape& s, std::span<const float> h, std::span<const float> k,
                 std::span<const float> v, std::span<const float> w_h,
                 std::span<const float> w_k, std::span<float> alpha, std::span<float> out) {
    s.validate();
    const size_t M = size_t(s.branches), d = size_t(s.dim), T = s.tokens;
    require_size(h.size(), T * M * d, "gate h");
    require_size(k.size(), T * M * d, "gate k");
    require_size(v.size(), T * d, "gate v");
    require_size(w_h.size(), M * d, "gate w_h");
    require_size(w_k.size(), M * d, "gate w_k");
    require_size(alpha.size(), T * M, "gate alpha");
    require_size(out.size(), T * M * d, "gate out");
    const float inv_sqrt_d = 1.0f / std::sqrt(float(d));
    for (size_t t = 0; t < T; ++t) {
        const float* vt = v.data() + t * d;
        for (size_t m = 0; m < M; ++m) {
            const float* ht = h.data() + (t * M + m) * d;
            const float* kt = k.data() + (t * M + m) * d;
            const float* wh = w_h.data() + m * d;
            const float* wk = w_k.data() + m * d;
            float hh = 0, kk = 0, hk = 0;
            for (size_t c = 0; c < d; ++c) {
                hh += ht[c] * ht[c];
                kk += kt[c] * kt[c];
                hk += ht[c] * wh[c] * kt[c] * wk[c];
            }
            const float rh = 1.0f / std::sqrt(hh / float(d) + s.eps);
            const float rk = 1.0f / std::sqrt(kk / float(d) + s.eps);
            float score = hk * rh * rk * inv_sqrt_d;
            if (s.signed_sqrt)
                score = std::copysign(std::sqrt(std::max(std::fabs(score), 1e-6f)), score);
            const float a = sigmoid(score);
            alpha[t * M + m] = a;
            float* o = out.data() + (t * M + m) * d;
            for (size_t c = 0; c < d; ++c) o[c] = a * vt[c];
        }
    }
}

void ConvShape::validate() const {
    require(branches >= 1 && dim >= 1, "conv: branches and dim must be >= 1");
    require(kernel >= 1 && dilation >= 1, "conv: kernel and dilation must be >= 1");
    require(seq_len >= 1, "conv: seq_len must be >= 1");
    require(tokens % seq_len == 0, "conv: tokens must be a whole number of sequences");
    require(eps >= 0, "conv: eps must be >= 0");
}

void engram_short_conv(const ConvShape& s, std::span<const float> x,
                       std::span<const float> norm_w, std::span<const float> conv_w,
                       std::span<float> y) {
    s.validate();
    const size_t M = size_t(s.branches), d = size_t(s.dim), T = s.tokens, K = size_t(s.kernel);
    require_size(x.size(), T * M * d, "conv x");
    require_size(norm_w.size(), M * d, "conv norm_w");
    require_size(conv_w.size(), M * d * K, "conv conv_w");
    require_size(y.size(), T * M * d, "conv y");
    // Normalized input, computed once per (token, branch).
    std::vector<float> xn(x.size());
    for (size_t tm = 0; tm < T * M; ++tm) {
        const float* xi = x.data() + tm * d;
        const float* w = norm_w.data() + (tm % M) * d;
        float ss = 0;
        for (size_t c = 0; c < d; ++c) ss += xi[c] * xi[c];
        const float r = 1.0f / std::sqrt(ss / float(d) + s.eps);
        for (size_t c = 0; c < d; ++c) xn[tm * d + c] = xi[c] * r * w[c];
    }
    // Channels innermost (contiguous in x and y); taps accumulate in increasing j per channel.
    std::vector<float> acc(d);
    for (size_t t = 0; t < T; ++t) {
        const size_t pos = t % s.seq_len;  // position inside its sequence
        for (size_t m = 0; m < M; ++m) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (size_t j = 0; j < K; ++j) {
                const size_t back = (K - 1 - j) * size_t(s.dilation);
                if (back > pos) continue;  // before the sequence start: zero padding
                const float* src = xn.data() + ((t - back) * M + m) * d;
                const float* w = conv_w.data() + m * d * K + j;
                for (size_t c = 0; c < d; ++c) acc[c] += w[c * K] * src[c];
            }
            const size_t base = (t * M + m) * d;
            for (size_t c = 0; c < d; ++c) y[base + c] = silu(acc[c]) + x[base + c];
        }
    }
}

void engram_gate_conv_residual(const GateShape& gate, const ConvShape& conv,
                               std::span<const float> h, std::span<const float> k,
                               std::span<const float> v, std::span<const float> w_h,
                               std::span<const float> w_k, std::span<const float> norm_w,
                               std::span<const float> conv_w, std::span<float> out) {
    require(conv.tokens == gate.tokens && conv.branches == gate.branches && conv.dim == gate.dim,
            "fused gate/conv: the two shapes disagree on tokens, branches or dim");
    const size_t n = gate.tokens * size_t(gate.branches) * size_t(gate.dim);
    require_size(out.size(), n, "fused out");
    std::vector<float> alpha(gate.tokens * size_t(gate.branches));
    std::vector<float> gated(n);
    engram_gate(gate, h, k, v, w_h, w_k, alpha, gated);
    engram_short_conv(conv, gated, norm_w, conv_w, out);
    for (size_t i = 0; i < n; ++i) out[i] += h[i];
}

void gemm_nt(size_t m, size_t n, size_t k, std::span<const float> a, std::span<const float> b,
             std::span<float> c) {
    require_size(a.size(), m * k, "gemm A");
    require_size(b.size(), n * k, "gemm B");
    require_size(c.size(), m * n, "gemm C");
    for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) {
            float acc = 0;
            const float* ai = a.data() + i * k;
            const float* bj = b.data() + j * k;
            for (size_t p = 0; p < k; ++p) acc += ai[p] * bj[p];
            c[i * n + j] = acc;
        }
}

}  // namespace engramsim::kernels
