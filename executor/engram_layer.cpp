#include "executor/engram_layer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "executor/ops.h"
#include "kernels/cpu/dtypes.h"
#include "kernels/cpu/engram_kernels.h"

namespace engramsim::executor {

float table_value(uint16_t bits) { return kernels::bf16_to_float(uint16_t(bits & 0xBFFF)); }

void widen_lookups(std::span<const uint8_t> rows, std::span<const uint32_t> inverse, int heads,
                   int row_dim, std::span<float> e, kernels::ThreadTeam& team) {
    const size_t row_bytes = size_t(row_dim) * 2, tokens = inverse.size() / size_t(heads);
    parallel_rows(tokens, team, [&](size_t b, size_t end) {
        for (size_t t = b; t < end; ++t)
            for (int h = 0; h < heads; ++h) {
                const uint8_t* src = rows.data() + size_t(inverse[t * heads + h]) * row_bytes;
                float* dst = e.data() + (t * heads + h) * size_t(row_dim);
                for (int i = 0; i < row_dim; ++i) {
                    uint16_t bits;
                    std::memcpy(&bits, src + 2 * i, 2);
                    dst[i] = table_value(bits);
                }
            }
    });
}

EngramModule::EngramModule(const EngramConfig& engram, int hidden, uint64_t seed)
    : hidden_(hidden),
      d_mem_(engram.heads_per_layer() * engram.row_dim()),
      heads_(engram.heads_per_layer()),
      row_dim_(engram.row_dim()),
      kernel_(engram.kernel_size),
      dilation_(engram.max_ngram_size),
      short_conv_(engram.short_conv),
      signed_sqrt_(engram.signed_sqrt_gate) {
    if (engram.hc_mult != 1)
        throw std::invalid_argument("engram.hc_mult: the executor serves hc_mult 1 (got " +
                                    std::to_string(engram.hc_mult) + ")");
    if (engram.dtype != TableDtype::Bf16)
        throw std::invalid_argument(std::string("engram.dtype: the executor serves bf16 tables (got ") +
                                    to_string(engram.dtype) + ")");
    const size_t h = size_t(hidden);
    w_k_.resize(h * d_mem_);
    w_v_.resize(h * d_mem_);
    const float s = 1.0f / std::sqrt(float(d_mem_));
    fill_uniform(w_k_, s, seed + 1);
    fill_uniform(w_v_, s, seed + 2);
    norm_h_.assign(h, 1.0f);
    norm_k_.assign(h, 1.0f);
    conv_norm_.assign(h, 1.0f);
    conv_w_.resize(h * kernel_);
    fill_uniform(conv_w_, 0.5f, seed + 3);
}

void EngramModule::forward(std::span<const StepSlice> slices, std::span<const float> e,
                           std::span<float> h, kernels::ThreadTeam& team) {
    project(e, h.size() / size_t(hidden_));
    gate(h, team);
    convolve_into(slices, h, team);
}

void EngramModule::project(std::span<const float> e, size_t T) {
    const size_t H = size_t(hidden_);
    k_.resize(T * H), v_.resize(T * H), alpha_.resize(T), gated_.resize(T * H), y_.resize(T * H);
    linear(T, H, d_mem_, e.data(), w_k_.data(), k_.data());
    linear(T, H, d_mem_, e.data(), w_v_.data(), v_.data());
}

// The gate, token by token: the reference over each thread's token range.
void EngramModule::gate(std::span<const float> h, kernels::ThreadTeam& team) {
    const size_t T = h.size() / size_t(hidden_), H = size_t(hidden_);
    parallel_rows(T, team, [&](size_t b, size_t end) {
        kernels::GateShape g{.tokens = end - b, .branches = 1, .dim = hidden_,
                             .signed_sqrt = signed_sqrt_};
        const size_t o = b * H, n = (end - b) * H;
        kernels::engram_gate(g, h.subspan(o, n), std::span(k_).subspan(o, n),
                             std::span(v_).subspan(o, n), norm_h_, norm_k_,
                             std::span(alpha_).subspan(b, end - b),
                             std::span(gated_).subspan(o, n));
    });
}

void EngramModule::convolve_into(std::span<const StepSlice> slices, std::span<float> h,
                                 kernels::ThreadTeam& team) {
    const size_t T = h.size() / size_t(hidden_), H = size_t(hidden_);
    if (!short_conv_) {
        parallel_rows(T * H, team, [&](size_t b, size_t end) {
            for (size_t i = b; i < end; ++i) h[i] += gated_[i];
        });
        return;
    }
    // The convolution, slice by slice (each over its request's history), then the residual.
    std::vector<size_t> offset(slices.size() + 1, 0);
    for (size_t i = 0; i < slices.size(); ++i) offset[i + 1] = offset[i] + slices[i].count;
    parallel_rows(slices.size(), team, [&](size_t b, size_t end) {
        for (size_t i = b; i < end; ++i)
            convolve(slices[i], std::span(gated_).subspan(offset[i] * H, slices[i].count * H),
                     std::span(y_).subspan(offset[i] * H, slices[i].count * H));
    });
    for (size_t i = 0; i < slices.size(); ++i)  // the map is not thread-safe: one thread
        remember(slices[i], std::span(gated_).subspan(offset[i] * H, slices[i].count * H));
    parallel_rows(T * H, team, [&](size_t b, size_t end) {
        for (size_t i = b; i < end; ++i) h[i] += y_[i];
    });
}

// y = SiLU(conv(RMSNorm(x))) + x for the slice's tokens, x their gated values, over the
// request's stored earlier positions followed by the slice, with the reference kernel.
void EngramModule::convolve(const StepSlice& slice, std::span<const float> gated,
                            std::span<float> y) {
    const size_t H = size_t(hidden_), W = size_t(window());
    const auto it = history_.find(slice.request);
    if (W > 0 && slice.first > 0 && (it == history_.end() || it->second.next != slice.first))
        throw std::logic_error("engram conv: request " + std::to_string(slice.request) +
                               " resumes at position " + std::to_string(slice.first) +
                               " without the history before it");
    const size_t past = std::min<size_t>(W, slice.first);
    const size_t n = past + slice.count;
    std::vector<float> x(n * H), out(n * H);
    for (size_t j = 0; j < past; ++j) {
        const size_t pos = slice.first - past + j;
        std::memcpy(&x[j * H], &it->second.values[(pos % W) * H], H * sizeof(float));
    }
    std::memcpy(&x[past * H], gated.data(), gated.size() * sizeof(float));
    kernels::ConvShape c{.tokens = n, .seq_len = n, .branches = 1, .dim = hidden_,
                         .kernel = kernel_, .dilation = dilation_};
    kernels::engram_short_conv(c, x, conv_norm_, conv_w_, out);
    std::memcpy(y.data(), &out[past * H], y.size() * sizeof(float));
}

void EngramModule::remember(const StepSlice& slice, std::span<const float> gated) {
    const size_t H = size_t(hidden_), W = size_t(window());
    if (W == 0) return;
    History& hist = history_[slice.request];
    if (hist.values.empty()) hist.values.resize(W * H);
    const size_t keep = std::min<size_t>(W, slice.count);
    for (size_t j = slice.count - keep; j < slice.count; ++j)
        std::memcpy(&hist.values[((slice.first + j) % W) * H], &gated[j * H], H * sizeof(float));
    hist.next = slice.first + slice.count;
}

}  // namespace engramsim::executor
