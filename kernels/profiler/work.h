// The dims, bytes and FLOPs of one call of each profiled kernel, shared by the CPU and CUDA
// profilers so both describe a shape the same way (and the way model/op_shape.h's OpShape
// does). Bytes are compulsory traffic (each input read once, each output written once, fp32
// activations unless stated); FLOPs count a multiply-add as two.
#pragma once

#include <string>
#include <vector>

#include "kernels/profiler/profile.h"

namespace engramsim::profiler {

// Kernel names `engramsim profile --kernels` accepts, in run order.
inline const std::vector<std::string>& kernel_names() {
    static const std::vector<std::string> names = {
        "engram_hash", "engram_gather", "engram_gate", "engram_conv", "engram_gate_conv",
        "gemm",        "router_topk",   "moe_align",   "moe_grouped_gemm", "moe_combine"};
    return names;
}

inline ProfilePoint hash_work(double tokens, double heads) {
    return {.dims = {{"tokens", tokens}, {"heads", heads}}, .dtype = "u32",
            .bytes = 4 * tokens + 4 * tokens * heads, .flops = 0};
}

inline ProfilePoint gather_work(double tokens, double heads, double row_bytes,
                                const std::string& dtype) {
    return {.dims = {{"tokens", tokens}, {"heads", heads}, {"row_bytes", row_bytes}},
            .dtype = dtype, .bytes = tokens * heads * (2 * row_bytes + 4), .flops = 0};
}

// Gate: read h and k ([T][M][d]) and v ([T][d]), write out [T][M][d]; per (t, m, c) three
// products summed (h^2, k^2, h w_h k w_k: 7 FLOPs) and one scaling multiply.
inline ProfilePoint gate_work(double tokens, double dim, double branches) {
    const double n = tokens * dim * branches;
    return {.dims = {{"tokens", tokens}, {"hidden", dim}, {"branches", branches}},
            .dtype = "f32", .bytes = 4 * (3 * n + tokens * dim), .flops = 8 * n};
}

// Short conv: hidden = M * d channels; read x, write y; per element a K-tap FMA chain, the
// norm (3), SiLU (4) and the residual add.
inline ProfilePoint conv_work(double tokens, double hidden, double kernel) {
    const double n = tokens * hidden;
    return {.dims = {{"tokens", tokens}, {"hidden", hidden}, {"kernel", kernel}},
            .dtype = "f32", .bytes = 4 * 2 * n, .flops = n * (2 * kernel + 8)};
}

// Fused gate -> conv -> residual: read h, k, v, write out once.
inline ProfilePoint gate_conv_work(double tokens, double dim, double branches, double kernel) {
    const double n = tokens * dim * branches;
    return {.dims = {{"tokens", tokens}, {"hidden", dim}, {"branches", branches}},
            .dtype = "f32", .bytes = 4 * (3 * n + tokens * dim),
            .flops = 8 * n + n * (2 * kernel + 12)};
}

inline ProfilePoint gemm_work(double m, double n, double k) {
    return {.dims = {{"m", m}, {"n", n}, {"k", k}}, .dtype = "f32",
            .bytes = 4 * (m * k + n * k + m * n), .flops = 2 * m * n * k};
}

inline ProfilePoint router_work(double tokens, double experts, double top_k) {
    return {.dims = {{"tokens", tokens}, {"experts", experts}, {"top_k", top_k}}, .dtype = "f32",
            .bytes = tokens * (4 * experts + 8 * top_k), .flops = tokens * experts * 4};
}

inline ProfilePoint align_work(double tokens, double experts, double top_k) {
    return {.dims = {{"tokens", tokens}, {"experts", experts}, {"top_k", top_k}}, .dtype = "i32",
            .bytes = tokens * top_k * 4 * 3, .flops = 0};
}

// Grouped SwiGLU over T * k assignments: X W1^T (2I x H), SwiGLU, act W2^T (H x I); weights
// read once, activations in and out.
inline ProfilePoint grouped_gemm_work(double tokens, double experts, double top_k, double hidden,
                                      double intermediate) {
    const double rows = tokens * top_k;
    return {.dims = {{"tokens", tokens}, {"experts", experts}, {"top_k", top_k},
                     {"hidden", hidden}, {"intermediate", intermediate}},
            .dtype = "f32",
            .bytes = 4 * (experts * 3 * hidden * intermediate + 2 * rows * hidden),
            .flops = 6 * rows * hidden * intermediate};
}

inline ProfilePoint combine_work(double tokens, double hidden, double top_k) {
    return {.dims = {{"tokens", tokens}, {"hidden", hidden}, {"top_k", top_k}}, .dtype = "f32",
            .bytes = 4 * (tokens * top_k * hidden + tokens * hidden) + 8 * tokens * top_k,
            .flops = 2 * tokens * top_k * hidden};
}

}  // namespace engramsim::profiler
