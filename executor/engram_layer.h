// One Engram module of the real executor, on the CPU (docs/ENGRAM.md section 1, steps 5-7): the
// step's rows, already fetched and deduplicated, widened to the tokens' memory vectors e_t; the
// key and value projections (OpenBLAS); the gate and the short convolution of the CPU references
// (kernels/cpu/engram_kernels.h); the result added into the residual stream.
//
// Decode feeds one token per sequence, but the short convolution reads (kernel - 1) x dilation
// earlier positions: each request keeps those positions' gated values (a ring), and each slice is
// convolved over that history followed by its own tokens, with the reference kernel. So a
// request served in any number of steps gives what the reference gives over its whole sequence
// (tests/unit/test_executor.cpp checks it).
//
// The table's bytes are the fetch validations' stand-in pattern (kernels/cpu/host_fetch.h), not
// trained values. Widened as bf16 with the exponent's top bit cleared, every value is finite and
// below 2 in magnitude: the arithmetic is the real one, on harmless numbers.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/host_fetch.h"
#include "model/engram_config.h"
#include "traces/schedule.h"

namespace engramsim::executor {

// A stored 16-bit table value as the executor reads it (see above).
float table_value(uint16_t bits);

// rows [unique][row_bytes] (bf16 values) and inverse [T * heads] (the unique row of each lookup,
// token-major then head) -> e [T][heads * row_dim].
void widen_lookups(std::span<const uint8_t> rows, std::span<const uint32_t> inverse, int heads,
                   int row_dim, std::span<float> e, kernels::ThreadTeam& team);

class EngramModule {
public:
    // Seeded random weights (same seed, same weights) for a backbone of width `hidden`. Throws
    // std::invalid_argument for what the executor cannot serve (mHC, a dtype other than bf16).
    EngramModule(const EngramConfig& engram, int hidden, uint64_t seed);

    int hidden() const { return hidden_; }
    int d_mem() const { return d_mem_; }
    int heads() const { return heads_; }
    int row_dim() const { return row_dim_; }

    // h [T][hidden] <- h + ShortConv(gate(h, k, v)) for the step's tokens (slices back to back),
    // e [T][d_mem] their memory vectors. The requests' convolution histories advance.
    void forward(std::span<const StepSlice> slices, std::span<const float> e, std::span<float> h,
                 kernels::ThreadTeam& team);

    // forward() in its three parts, for calibration to time each as the executor runs it:
    // the key and value projections of e (GEMMs), the gate (RMSNorms, dot, sigmoid, gate * v)
    // of the projected step into the gated values, and the short convolution of the gated
    // values with the residual into h (the histories advance).
    void project(std::span<const float> e, size_t tokens);
    void gate(std::span<const float> h, kernels::ThreadTeam& team);
    void convolve_into(std::span<const StepSlice> slices, std::span<float> h,
                       kernels::ThreadTeam& team);

    // The weights, for references: [hidden][d_mem] each, gate norms [hidden], the short conv's
    // norm [hidden] and taps [hidden][kernel].
    std::span<const float> w_k() const { return w_k_; }
    std::span<const float> w_v() const { return w_v_; }
    std::span<const float> norm_h() const { return norm_h_; }
    std::span<const float> norm_k() const { return norm_k_; }
    std::span<const float> conv_norm() const { return conv_norm_; }
    std::span<const float> conv_w() const { return conv_w_; }
    int kernel() const { return kernel_; }
    int dilation() const { return dilation_; }
    bool short_conv() const { return short_conv_; }
    bool signed_sqrt() const { return signed_sqrt_; }

    // Forgets a request's history (finished, or preempted: it prefills again from position 0).
    void release(uint32_t request) { history_.erase(request); }

private:
    struct History {
        std::vector<float> values;  // window x hidden, position p at row p % window
        uint32_t next = 0;          // the position after the last one stored
    };
    int window() const { return (kernel_ - 1) * dilation_; }
    void convolve(const StepSlice& slice, std::span<const float> gated, std::span<float> y);
    void remember(const StepSlice& slice, std::span<const float> gated);

    int hidden_ = 0, d_mem_ = 0, heads_ = 0, row_dim_ = 0;
    int kernel_ = 4, dilation_ = 3;
    bool short_conv_ = true, signed_sqrt_ = true;
    std::vector<float> w_k_, w_v_;         // [hidden][d_mem]
    std::vector<float> norm_h_, norm_k_;   // gate RMSNorm weights [hidden]
    std::vector<float> conv_norm_, conv_w_;  // [hidden], [hidden][kernel]
    std::unordered_map<uint32_t, History> history_;
    std::vector<float> k_, v_, alpha_, gated_, y_;  // step scratch
};

}  // namespace engramsim::executor
