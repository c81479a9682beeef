#include "model/step_model.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>

#include "model/config.h"

namespace engramsim {

using Split = OpShape::Split;

namespace {
double dtype_bytes(const std::string& dtype) {
    if (dtype == "fp32") return 4;
    if (dtype == "fp8_e4m3") return 1;
    return 2;
}
}  // namespace

BackboneShape BackboneShape::from_json(const nlohmann::json& sec) {
    BackboneShape b;
    b.name = sec.value("name", std::string());
    const std::string mlp_kind = sec.at("mlp").at("kind").get<std::string>();
    const std::string attn_kind = sec.at("attention").at("kind").get<std::string>();
    if (mlp_kind != "dense" && mlp_kind != "moe")
        throw config::ConfigError("backbone.mlp.kind: '" + mlp_kind +
                                  "' is not supported (dense or moe)");
    if (attn_kind != "gqa" && attn_kind != "mla")
        throw config::ConfigError("backbone.attention.kind: '" + attn_kind +
                                  "' is not supported (gqa or mla)");
    b.mla = attn_kind == "mla";
    b.moe = mlp_kind == "moe";
    b.layers = sec.at("layers").get<int>();
    b.hidden = sec.at("hidden_size").get<int>();
    b.vocab = sec.at("vocab_size").get<int>();
    const auto& at = sec["attention"];
    b.n_heads = at.at("n_heads").get<int>();
    b.n_kv_heads = at.at("n_kv_heads").get<int>();
    b.head_dim = at.at("head_dim").get<int>();
    b.q_lora_rank = at.value("q_lora_rank", 0);
    b.kv_lora_rank = at.value("kv_lora_rank", 0);
    b.qk_rope_head_dim = at.value("qk_rope_head_dim", 0);
    b.v_head_dim = at.value("v_head_dim", 0);
    const auto& mlp = sec["mlp"];
    b.intermediate = mlp.at("intermediate_size").get<int>();
    b.n_shared_experts = mlp.value("n_shared_experts", 0);
    b.n_routed_experts = mlp.value("n_routed_experts", 0);
    b.top_k = mlp.value("top_k", 0);
    b.moe_intermediate = mlp.value("moe_intermediate_size", 0);
    b.hc_mult = sec.value("hc_mult", 1);
    b.bytes_per_value = dtype_bytes(sec.at("dtype").get<std::string>());
    if (b.mla) {
        if (b.kv_lora_rank < 1 || b.v_head_dim < 1)
            throw config::ConfigError("backbone.attention: MLA needs kv_lora_rank >= 1 and "
                                      "v_head_dim >= 1");
    } else if (b.n_kv_heads < 1) {
        throw config::ConfigError("backbone: n_kv_heads and mlp.intermediate_size must be >= 1");
    }
    if (b.moe) {
        if (b.n_routed_experts < 1 || b.moe_intermediate < 1)
            throw config::ConfigError("backbone.mlp: MoE needs n_routed_experts >= 1 and "
                                      "moe_intermediate_size >= 1");
        if (b.top_k < 1 || b.top_k > b.n_routed_experts)
            throw config::ConfigError("backbone.mlp.top_k: must be in [1, n_routed_experts = " +
                                      std::to_string(b.n_routed_experts) + "]; got " +
                                      std::to_string(b.top_k));
        if (b.intermediate != 0)
            throw config::ConfigError("backbone.mlp.intermediate_size: must be 0 with kind moe "
                                      "(every layer is an MoE layer; the schema has no "
                                      "first-dense-layers field)");
    } else if (b.intermediate < 1) {
        throw config::ConfigError("backbone: n_kv_heads and mlp.intermediate_size must be >= 1");
    }
    if (b.hc_mult < 1) throw config::ConfigError("backbone.hc_mult: must be >= 1");
    // The schema has no tie field (docs/presets.md): Qwen3-4B ties its embeddings.
    b.tied_embeddings = b.name == "dense-4b" || sec.value("base", std::string()) == "dense-4b";
    return b;
}

double BackboneShape::attention_params_per_layer() const {
    const double h = hidden, H = n_heads;
    if (!mla) {
        const double q = H * head_dim, kv = double(n_kv_heads) * head_dim;
        return h * q + 2 * h * kv + q * h + 2.0 * head_dim;  // q, k, v, o, q/k norms
    }
    const double qk = head_dim + qk_rope_head_dim, L = kv_lora_rank;
    const double q_part = q_lora_rank > 0
                              ? h * q_lora_rank + q_lora_rank + double(q_lora_rank) * H * qk
                              : h * H * qk;
    return q_part + h * (L + qk_rope_head_dim) + L + L * H * (head_dim + v_head_dim) +
           H * v_head_dim * h;
}

double BackboneShape::mhc_params_per_layer() const {
    if (hc_mult <= 1) return 0;
    const double M = hc_mult, n = M * hidden, c = 2 * M + M * M;
    return 2 * (n * c + c + 3 + n);  // two sublayers
}

namespace {
double mlp_params_per_layer(const BackboneShape& b, bool active_only) {
    if (!b.moe) return 3.0 * b.hidden * b.intermediate;
    const double router = double(b.hidden) * b.n_routed_experts + b.n_routed_experts;
    const double experts = b.n_shared_experts + (active_only ? b.top_k : b.n_routed_experts);
    return router + experts * b.expert_params();
}
}  // namespace

double BackboneShape::params() const {
    const double h = hidden;
    const double layer = attention_params_per_layer() + mlp_params_per_layer(*this, false) +
                         2 * h + mhc_params_per_layer();
    const double vocab_matrix = double(vocab) * h;
    return layers * layer + h + vocab_matrix * (tied_embeddings ? 1 : 2);
}

double BackboneShape::active_params() const {
    const double h = hidden;
    const double layer = attention_params_per_layer() + mlp_params_per_layer(*this, true) +
                         2 * h + mhc_params_per_layer();
    return layers * layer + h + double(vocab) * h;  // the LM head; the embedding is a lookup
}

double BackboneShape::kv_bytes_per_token() const {
    if (mla) return double(layers) * (kv_lora_rank + qk_rope_head_dim) * bytes_per_value;
    return double(layers) * 2 * n_kv_heads * head_dim * bytes_per_value;
}

double BackboneShape::activation_values_per_token(double tp) const {
    if (!mla && !moe && hc_mult == 1) {  // as sim/timing/plan.cpp always summed it
        const double q = double(n_heads) * head_dim, kvw = double(n_kv_heads) * head_dim;
        return q / tp + 2 * kvw / tp + 2.0 * intermediate / tp + 2.0 * hidden;
    }
    // Attention: q, k, v as prefill attention reads them (MLA decompresses K and V).
    double attn;
    if (mla) {
        const double qk = double(n_heads) * (head_dim + qk_rope_head_dim);
        attn = 2 * qk + double(n_heads) * v_head_dim;
    } else {
        const double q = double(n_heads) * head_dim, kvw = double(n_kv_heads) * head_dim;
        attn = q + 2 * kvw;
    }
    // MLP: dense gate/up; MoE: each assignment's and shared expert's gate/up, plus the
    // permuted input and output rows of the routed experts.
    const double mlp = moe ? 2.0 * (top_k + n_shared_experts) * moe_intermediate +
                                 2.0 * top_k * hidden
                           : 2.0 * intermediate;
    return attn / tp + mlp / tp + 2.0 * hidden * hc_mult;
}

double expected_distinct_experts(double tokens, int experts, int top_k) {
    if (experts < 1 || top_k < 0 || top_k > experts)
        throw std::invalid_argument("expected_distinct_experts: need 0 <= top_k <= experts");
    if (!(tokens > 0)) return 0;
    const double E = experts;
    return E * (1 - std::pow(1 - double(top_k) / E, tokens));
}

EngramGpuShape EngramGpuShape::from_config(const EngramConfig& e) {
    return {.d_mem = e.heads_per_layer() * e.row_dim(),
            .heads = e.heads_per_layer(),
            .row_bytes = e.row_bytes(),
            .short_conv = e.short_conv,
            .kernel_size = e.kernel_size,
            .hc_mult = e.hc_mult};
}

double engram_activation_bytes_per_token(const EngramGpuShape& e, const BackboneShape& b) {
    const double H = b.hidden, M = std::max(1, e.hc_mult), by = b.bytes_per_value, f32 = 4;
    const double stream = M * H * by;           // h, live throughout
    const double kv = (M + 1) * H * by;         // the fused projections k (M) and v
    const double norm_temps = 2 * M * H * f32;  // x.float() and the fp32 product
    const double rows = double(e.heads) * e.row_bytes;
    double peak = stream + rows + kv;                                   // projecting
    peak = std::max(peak, stream + kv + norm_temps);                    // RMSNorm(h)
    peak = std::max(peak, stream + kv + M * H * by + norm_temps);       // RMSNorm(k)
    peak = std::max(peak, stream + kv + 3 * M * H * by);                // hn, kn, hn * kn
    peak = std::max(peak, stream + kv + 2 * M * H * by);                // gate * v, the output
    if (e.short_conv)  // v~ and RMSNorm(v~) (fp32), then the conv's output and SiLU
        peak = std::max({peak, stream + M * H * by + M * H * by + norm_temps,
                         stream + 3 * M * H * by});
    return peak;
}

namespace {

// Before a sublayer: residual add + RMSNorm (hc_mult 1), or the mHC maps: the coefficient
// projection of the flattened M x hidden stream (its RMSNorm folds into the GEMM's output
// scale), sigmoid + Sinkhorn-Knopp on the 2M + M^2 coefficients (fp32, 20 iterations of 2
// normalisations), the pre-mix of the M branches into one hidden-wide input, RMSNorm.
void sublayer_pre(const BackboneShape& b, double T, std::vector<OpShape>& ops) {
    const double h = b.hidden, bpv = b.bytes_per_value;
    if (b.hc_mult <= 1) {
        ops.push_back(elementwise_op(T * h, 2, 2, bpv, 4));  // residual add + RMSNorm
        return;
    }
    const double M = b.hc_mult, c = 2 * M + M * M;
    ops.push_back(gemm_op(T, c, M * h, bpv));                 // mHC coefficients
    ops.push_back(elementwise_op(T * c, 1, 1, 4, 2 * 20 * 2 + 4));  // sigmoid + Sinkhorn
    ops.push_back(elementwise_op(T * M * h, 1, 1 / M, bpv, 2));     // pre-mix: M branches -> 1
    ops.push_back(elementwise_op(T * h, 1, 1, bpv, 4));              // RMSNorm
}

// After a sublayer with hc_mult M > 1: H <- H_res H + H_post y (reads the M-wide stream and
// y, writes the stream). With hc_mult 1 the residual add folds into the next sublayer_pre.
void sublayer_post(const BackboneShape& b, double T, std::vector<OpShape>& ops) {
    if (b.hc_mult <= 1) return;
    const double M = b.hc_mult;
    ops.push_back(elementwise_op(T * M * b.hidden, 1 + 1 / M, 1, b.bytes_per_value, 2 * M + 2));
}

void gqa_ops(const BackboneShape& b, const StepShape& s, std::vector<OpShape>& ops) {
    const double T = s.tokens, h = b.hidden, bpv = b.bytes_per_value;
    const double q = double(b.n_heads) * b.head_dim, kv = double(b.n_kv_heads) * b.head_dim;
    ops.push_back(split_as(gemm_op(T, q + 2 * kv, h, bpv), Split::Column));  // fused QKV
    ops.push_back(elementwise_op(T * (q + kv), 1, 1, bpv, 8));  // q/k RMSNorm + RoPE
    ops.push_back(elementwise_op(T * 2 * kv, 1, 1, bpv, 0));  // store K, V into the paged cache
    auto decode = [&](double tokens, double seqs, double context) {
        OpShape attn;
        attn.kernel = "attention_decode";
        attn.dims = {{"seqs", seqs}, {"context", context},
                     {"heads", double(b.n_heads)}, {"kv_heads", double(b.n_kv_heads)},
                     {"head_dim", double(b.head_dim)}};
        attn.flops = 4 * q * context;
        attn.bytes = context * 2 * kv * bpv + 2 * tokens * q * bpv;
        ops.push_back(attn);
    };
    if (s.prefill) {
        const double Tp = s.prefill_tokens > 0 ? s.prefill_tokens : T;
        OpShape attn;
        attn.kernel = "attention_prefill";
        attn.dims = {{"tokens", Tp}, {"heads", double(b.n_heads)}, {"head_dim", double(b.head_dim)}};
        attn.flops = 4 * q * s.causal_pairs;
        attn.bytes = Tp * (2 * q + 2 * kv) * bpv + s.prefill_prior * 2 * kv * bpv;
        ops.push_back(attn);
        if (s.decode_seqs > 0) decode(s.decode_seqs, s.decode_seqs, s.decode_context);  // mixed
    } else {
        decode(T, s.seqs, s.context_tokens);
    }
    ops.push_back(split_as(gemm_op(T, h, q, bpv), Split::Row));  // output projection
}

// A per-head batched matmul (T tokens x heads, each head its own k x n weight).
OpShape per_head_gemm(double T, double heads, double n, double k, double bpv) {
    OpShape op;
    op.kernel = "gemm";
    op.dims = {{"m", T}, {"n", n}, {"k", k}, {"batch", heads}};
    op.flops = 2 * T * heads * n * k;
    op.bytes = (T * heads * k + heads * k * n + T * heads * n) * bpv;
    op.split = Split::Heads;
    return op;
}

// MLA as DeepSeek-V2/V3 serve it (vLLM / SGLang / FlashMLA). Prefill decompresses the new
// tokens' latents to per-head K (nope) and V and runs causal attention with q/k width
// head_dim + rope and v width v_head_dim. Decode uses weight absorption: W_UK folds into the
// query (q_nope -> latent space), attention runs MQA-style over the cached latent (one shared
// kv_lora_rank + rope "head"; the output stays in latent space), W_UV expands the output.
void mla_ops(const BackboneShape& b, const StepShape& s, std::vector<OpShape>& ops) {
    const double T = s.tokens, h = b.hidden, bpv = b.bytes_per_value, H = b.n_heads;
    const double L = b.kv_lora_rank, R = b.qk_rope_head_dim, dn = b.head_dim,
                 dv = b.v_head_dim, qk = dn + R;
    if (b.q_lora_rank > 0) {
        const double Q = b.q_lora_rank;
        ops.push_back(gemm_op(T, Q + L + R, h, bpv));           // fused q_a + kv_a down-projection
        ops.push_back(elementwise_op(T * (Q + L), 1, 1, bpv, 4));  // q_a_norm, kv_a_norm
        ops.push_back(split_as(gemm_op(T, H * qk, Q, bpv), Split::Column));  // q_b up-projection
    } else {
        ops.push_back(split_as(gemm_op(T, H * qk + L + R, h, bpv), Split::QueryHeads));  // q + kv_a
        ops.push_back(elementwise_op(T * L, 1, 1, bpv, 4));      // kv_a_norm
    }
    if (R > 0) ops.push_back(elementwise_op(T * (H + 1) * R, 1, 1, bpv, 6));  // RoPE q_pe, k_pe
    ops.push_back(elementwise_op(T * (L + R), 1, 1, bpv, 0));  // store the latent in the cache
    auto decode = [&](double tokens, double seqs, double context) {
        ops.push_back(per_head_gemm(tokens, H, L, dn, bpv));  // q_nope x W_UK (absorbed)
        OpShape attn;
        attn.kernel = "attention_decode";
        attn.dims = {{"seqs", seqs}, {"context", context}, {"heads", H},
                     {"kv_heads", 1}, {"head_dim", L + R}, {"v_head_dim", L}};
        attn.flops = 2 * H * (L + R) * context + 2 * H * L * context;
        attn.bytes = context * (L + R) * bpv + tokens * H * (2 * L + R) * bpv;
        ops.push_back(attn);
        ops.push_back(per_head_gemm(tokens, H, dv, L, bpv));  // latent output x W_UV
    };
    if (s.prefill) {
        // A chunk decompresses its earlier chunks' latents too (prefill_prior entries).
        const double Tp = s.prefill_tokens > 0 ? s.prefill_tokens : T;
        ops.push_back(split_as(gemm_op(Tp + s.prefill_prior, H * (dn + dv), L, bpv),
                               Split::Column));  // kv_b
        OpShape attn;
        attn.kernel = "attention_prefill";
        attn.dims = {{"tokens", Tp}, {"heads", H}, {"head_dim", qk}, {"v_head_dim", dv}};
        attn.flops = 2 * H * (qk + dv) * s.causal_pairs;
        attn.bytes = (Tp + s.prefill_prior) * H * (qk + dv) * bpv +
                     Tp * H * (qk + dv) * bpv;  // q, k, v read; o written
        ops.push_back(attn);
        if (s.decode_seqs > 0) decode(s.decode_seqs, s.decode_seqs, s.decode_context);  // mixed
    } else {
        decode(T, s.seqs, s.context_tokens);
    }
    ops.push_back(split_as(gemm_op(T, h, H * dv, bpv), Split::Row));  // output projection
}

void dense_mlp_ops(const BackboneShape& b, double T, std::vector<OpShape>& ops) {
    const double h = b.hidden, bpv = b.bytes_per_value;
    ops.push_back(split_as(gemm_op(T, 2.0 * b.intermediate, h, bpv), Split::Column));  // gate, up
    ops.push_back(elementwise_op(T * b.intermediate, 2, 1, bpv, 4));  // SiLU * up
    // Priced from a profile of the activation itself where one measures it (a CPU engine's
    // calibration: its scalar exp costs several times what the elementwise rate says).
    ops.back().group = "swiglu_act";
    ops.back().group_dims = {{"tokens", T}, {"intermediate", double(b.intermediate)}};
    ops.push_back(split_as(gemm_op(T, h, b.intermediate, bpv), Split::Row));  // down
}

}  // namespace

std::vector<OpShape> moe_ops(const BackboneShape& b, double T) {
    const double h = b.hidden, bpv = b.bytes_per_value, E = b.n_routed_experts, k = b.top_k,
                 I = b.moe_intermediate, S = double(b.n_shared_experts) * I;
    std::vector<OpShape> ops;
    ops.push_back(gemm_op(T, E, h, bpv));  // router logits
    OpShape router;
    router.kernel = "router_topk";
    router.dims = {{"tokens", T}, {"experts", E}, {"top_k", k}};
    router.dtype = "f32";
    router.flops = T * E * 4;
    router.bytes = T * (4 * E + 8 * k);  // fp32 logits in, expert ids + weights out
    ops.push_back(router);
    OpShape align;
    align.kernel = "moe_align";
    align.dims = router.dims;
    align.dtype = "i32";
    align.bytes = T * k * 4 * 3;
    ops.push_back(align);
    OpShape permute;  // each token's row copied to its k expert segments
    permute.kernel = "moe_permute";
    permute.dims = {{"tokens", T}, {"hidden", h}, {"top_k", k}};
    permute.bytes = (T * h + T * k * h) * bpv + T * k * 4;
    ops.push_back(permute);
    if (S > 0) {  // shared experts: one dense SwiGLU of n_shared x moe_intermediate
        ops.push_back(split_as(gemm_op(T, 2 * S, h, bpv), Split::Column));
        ops.push_back(elementwise_op(T * S, 2, 1, bpv, 4));
        ops.push_back(split_as(gemm_op(T, h, S, bpv), Split::Row));
    }
    OpShape grouped;  // fused SwiGLU per expert over its rows; only touched experts' weights
    grouped.kernel = "moe_grouped_gemm";
    grouped.dims = {{"tokens", T}, {"experts", E}, {"top_k", k}, {"hidden", h},
                    {"intermediate", I}};
    grouped.flops = T * k * 3 * 2 * h * I;
    grouped.bytes = (expected_distinct_experts(T, b.n_routed_experts, b.top_k) *
                         b.expert_params() +
                     2 * T * k * h) *
                    bpv;
    ops.push_back(grouped);
    OpShape combine;  // weighted sum of the k expert rows, plus the shared experts' output
    combine.kernel = "moe_combine";
    combine.dims = {{"tokens", T}, {"hidden", h}, {"top_k", k}};
    combine.flops = 2 * T * k * h + (S > 0 ? T * h : 0);
    combine.bytes = (T * k * h + (S > 0 ? 2 : 1) * T * h) * bpv + 8 * T * k;
    ops.push_back(combine);
    return ops;
}

std::vector<OpShape> layer_ops(const BackboneShape& b, const StepShape& s) {
    const double T = s.tokens;
    std::vector<OpShape> ops;
    sublayer_pre(b, T, ops);
    if (b.mla)
        mla_ops(b, s, ops);
    else
        gqa_ops(b, s, ops);
    sublayer_post(b, T, ops);
    sublayer_pre(b, T, ops);
    if (b.moe) {
        const auto m = moe_ops(b, T);
        ops.insert(ops.end(), m.begin(), m.end());
    } else {
        dense_mlp_ops(b, T, ops);
    }
    sublayer_post(b, T, ops);
    return ops;
}

std::vector<OpShape> embed_ops(const BackboneShape& b, const StepShape& s) {
    // With mHC the embedding initialises all hc_mult branches of the stream.
    return {elementwise_op(s.tokens * b.hidden, 1, double(b.hc_mult), b.bytes_per_value, 0)};
}

std::vector<OpShape> head_ops(const BackboneShape& b, const StepShape& s) {
    const double S = s.seqs, bpv = b.bytes_per_value;
    std::vector<OpShape> ops;
    if (b.hc_mult <= 1) {
        ops.push_back(elementwise_op(S * b.hidden, 2, 1, bpv, 4));  // final residual add + RMSNorm
    } else {
        const double M = b.hc_mult;
        ops.push_back(elementwise_op(S * M * b.hidden, 1, 1 / M, bpv, 1));  // merge the branches
        ops.push_back(elementwise_op(S * b.hidden, 1, 1, bpv, 4));         // final RMSNorm
    }
    ops.push_back(split_as(gemm_op(S, b.vocab, b.hidden, bpv), Split::Column));  // LM head, last tokens
    ops.push_back(elementwise_op(S * double(b.vocab), 2, 0, 4, 4));  // fp32 logits: temperature, sample
    return ops;
}

std::vector<OpShape> engram_ops(const EngramGpuShape& e, const BackboneShape& b,
                                const StepShape& s) {
    const double T = s.tokens, h = b.hidden, bpv = b.bytes_per_value, M = e.hc_mult;
    std::vector<OpShape> ops;
    OpShape expand;  // staged unique rows -> each token's concatenated rows (in HBM)
    expand.kernel = "engram_gather";
    expand.dims = {{"tokens", T}, {"heads", double(e.heads)}, {"row_bytes", e.row_bytes}};
    expand.bytes = 2 * T * e.heads * e.row_bytes;
    ops.push_back(expand);
    ops.push_back(gemm_op(T, h * M, e.d_mem, bpv));     // keys W_K (one per branch)
    ops.push_back(gemm_op(T, h, e.d_mem, bpv));         // value W_V
    // The gate (one fused kernel, where a profile measures it as one).
    const size_t gate_from = ops.size();
    ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(h)
    ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(k)
    ops.push_back(elementwise_op(T * h * M, 2, 0, bpv, 2));  // dot / sqrt(d)
    ops.push_back(elementwise_op(T * M, 1, 1, 4, 8));        // signed sqrt + sigmoid
    ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 1));  // gate * v
    for (size_t i = gate_from; i < ops.size(); ++i)
        ops[i].group = "engram_gate", ops[i].group_dims = {{"tokens", T}, {"hidden", h}, {"branches", M}};
    // The short conv with the residual (one fused kernel, likewise).
    const size_t conv_from = ops.size();
    if (e.short_conv) {
        ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(v~)
        ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 2.0 * e.kernel_size));  // conv
        ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 5));  // SiLU + v~
    }
    ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 1));  // H <- H + Y
    if (e.short_conv)
        for (size_t i = conv_from; i < ops.size(); ++i)
            ops[i].group = s.prefill ? "engram_conv" : "engram_conv_decode",
            ops[i].group_dims = {{"tokens", T}, {"hidden", h}, {"kernel", double(e.kernel_size)}};
    return ops;
}

double total_seconds(const CostModel& cost, const std::vector<OpShape>& ops) {
    double t = 0;
    for (size_t i = 0; i < ops.size();) {
        const OpShape& op = ops[i];
        if (!op.group.empty()) {  // a group a profile measures as one kernel: priced once
            OpShape fused;
            fused.kernel = op.group;
            fused.dims = op.group_dims;
            fused.dtype = op.dtype;
            if (const auto s = cost.profiled_seconds(fused)) {
                t += *s;
                while (i < ops.size() && ops[i].group == fused.kernel) ++i;
                continue;
            }
        }
        t += cost.seconds(op);
        ++i;
    }
    return t;
}

// ---- StepDag ------------------------------------------------------------------------------

struct StepDag::Impl {
    struct V {
        std::string name;
        double seconds = 0;
    };
    using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, V>;
    Graph g;
    std::vector<double> finish() const {
        std::vector<Graph::vertex_descriptor> order;
        try {
            boost::topological_sort(g, std::back_inserter(order));
        } catch (const boost::not_a_dag&) {
            throw std::logic_error("step DAG has a cycle");
        }
        std::vector<double> done(boost::num_vertices(g), 0);
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
            double start = 0;
            for (auto [e, end] = boost::in_edges(*it, g); e != end; ++e)
                start = std::max(start, done[boost::source(*e, g)]);
            done[*it] = start + g[*it].seconds;
        }
        return done;
    }
};

StepDag::StepDag() : impl_(new Impl) {}
StepDag::~StepDag() { delete impl_; }
int StepDag::add(std::string name, double seconds) {
    return int(boost::add_vertex(Impl::V{std::move(name), seconds}, impl_->g));
}
void StepDag::depends(int after, int before) { boost::add_edge(before, after, impl_->g); }
size_t StepDag::size() const { return boost::num_vertices(impl_->g); }
double StepDag::critical_path_s() const {
    const auto done = impl_->finish();
    return done.empty() ? 0 : *std::max_element(done.begin(), done.end());
}
double StepDag::finish_s(int vertex) const { return impl_->finish().at(size_t(vertex)); }

}  // namespace engramsim
