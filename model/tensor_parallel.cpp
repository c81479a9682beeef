#include "model/tensor_parallel.h"

#include "model/config.h"

namespace engramsim {

std::string collective_name(Collective::Kind k) {
    switch (k) {
        case Collective::Kind::AllReduce: return "all-reduce";
        case Collective::Kind::AllGather: return "all-gather";
        case Collective::Kind::Gather: return "gather";
        default: return "none";
    }
}

void TensorParallel::validate(bool has_engram) const {
    auto need = [&](int n, const std::string& what) {
        if (n % tp != 0)
            throw config::ConfigError("sim.tensor_parallel: " + std::to_string(tp) +
                                      " does not divide " + what + " (" + std::to_string(n) +
                                      "); each GPU takes an equal share");
    };
    if (tp < 1) throw config::ConfigError("sim.tensor_parallel: must be >= 1");
    if (tp == 1) return;
    need(backbone.n_heads, "backbone.attention.n_heads");
    if (!backbone.mla) need(backbone.n_kv_heads, "backbone.attention.n_kv_heads");
    if (backbone.moe) need(backbone.n_routed_experts, "backbone.mlp.n_routed_experts");
    if (has_engram) need(engram.heads, "the Engram heads per layer");
}

namespace {
double dim(const OpShape& op, const char* name) {
    const auto it = op.dims.find(name);
    return it == op.dims.end() ? 0 : it->second;
}
// A GEMM's bytes per value, from its compulsory traffic (model/cost_model.h: gemm_op).
double gemm_bpv(const OpShape& op) {
    const double m = dim(op, "m"), n = dim(op, "n"), k = dim(op, "k");
    const double values = m * k + k * n + m * n;
    return values > 0 ? op.bytes / values : 0;
}
OpShape gemm_like(const OpShape& op, double m, double n, double k) {
    OpShape out = op;
    const double bpv = gemm_bpv(op);
    out.dims["m"] = m, out.dims["n"] = n, out.dims["k"] = k;
    out.flops = 2 * m * n * k;
    out.bytes = (m * k + k * n + m * n) * bpv;
    return out;
}
}  // namespace

bool TensorParallel::mla_latent(const OpShape& op, const StepShape& s) const {
    return backbone.mla &&
           dim(op, "elements") == s.tokens * (backbone.kv_lora_rank + backbone.qk_rope_head_dim);
}

OpShape TensorParallel::column_parallel(const OpShape& g, int tp) {
    return gemm_like(g, dim(g, "m"), dim(g, "n") / tp, dim(g, "k"));
}

OpShape TensorParallel::row_parallel(const OpShape& g, int tp) {
    return gemm_like(g, dim(g, "m"), dim(g, "n"), dim(g, "k") / tp);
}

OpShape TensorParallel::divided(const OpShape& op, int tp, const std::string& divided_dim) {
    OpShape out = op;
    out.flops = op.flops / tp;
    out.bytes = op.bytes / tp;
    if (auto it = out.dims.find(divided_dim); it != out.dims.end()) it->second /= tp;
    return out;
}

namespace {

// The pieces being built: ops go into the last one, a collective closes it.
struct Pieces {
    std::vector<TpPiece> v = std::vector<TpPiece>(1);
    void put(OpShape op) { v.back().ops.push_back(std::move(op)); }
    void cut(Collective::Kind kind, double bytes) {
        v.back().after = {kind, bytes};
        v.emplace_back();
    }
};

// One GEMM of a layer. `sharded`: the activation is split over the GPUs (by head or width);
// `partial`: a row-parallel output waits for its all-reduce.
void shard_gemm(const TensorParallel& t, const OpShape& op, Pieces& p, bool& sharded,
                bool& partial) {
    const int tp = t.tp;
    switch (op.split) {
        case OpShape::Split::Column:
            p.put(TensorParallel::column_parallel(op, tp));
            sharded = true;
            break;
        case OpShape::Split::QueryHeads: {  // only the query heads split
            const BackboneShape& b = t.backbone;
            const double qk = double(b.n_heads) * (b.head_dim + b.qk_rope_head_dim);
            p.put(gemm_like(op, dim(op, "m"), dim(op, "n") - qk + qk / tp, dim(op, "k")));
            sharded = true;
            break;
        }
        case OpShape::Split::Row:
            p.put(TensorParallel::row_parallel(op, tp));
            sharded = false, partial = true;
            break;
        case OpShape::Split::Heads:
            p.put(TensorParallel::divided(op, tp, "batch"));
            sharded = true;
            break;
        case OpShape::Split::None: p.put(op); sharded = false; break;
    }
}

void shard_layer(const TensorParallel& t, const std::vector<OpShape>& ops, const StepShape& s,
                 Pieces& p) {
    const int tp = t.tp;
    const double hidden_bytes = s.tokens * t.backbone.hidden * t.backbone.bytes_per_value;
    bool sharded = false, partial = false;  // see shard_gemm
    for (const auto& op : ops) {
        if (op.kernel == "gemm") {
            shard_gemm(t, op, p, sharded, partial);
        } else if (op.kernel == "attention_prefill" || op.kernel == "attention_decode") {
            OpShape a = TensorParallel::divided(op, tp, "heads");
            if (t.backbone.mla && dim(op, "kv_heads") == 1) {
                // MLA decode: every GPU reads the whole latent cache
                const double kv = dim(op, "context") * dim(op, "head_dim") *
                                  t.backbone.bytes_per_value;
                a.bytes = kv + (op.bytes - kv) / tp;
            } else if (auto it = a.dims.find("kv_heads"); it != a.dims.end()) {
                it->second /= tp;
            }
            p.put(std::move(a));
            sharded = true;
        } else if (op.kernel == "moe_grouped_gemm" || op.kernel == "moe_permute" ||
                   op.kernel == "moe_combine") {
            // Experts divided: each GPU handles its experts' share of the routed rows.
            p.put(TensorParallel::divided(op, tp, "experts"));
            if (op.kernel != "moe_permute") partial = true;
        } else if (op.kernel == "elementwise" && sharded && !t.mla_latent(op, s)) {
            p.put(TensorParallel::divided(op, tp, "elements"));
        } else if (op.kernel == "elementwise" && !sharded && partial) {
            // the residual update needs the whole sublayer output
            p.cut(Collective::Kind::AllReduce, hidden_bytes);
            partial = false;
            p.put(op);
        } else {  // replicated: router_topk, moe_align, norms, unknown kinds
            // an unknown kind may read the hidden state: reduce first
            if (partial && op.kernel != "router_topk" && op.kernel != "moe_align" &&
                op.kernel != "gemm")
                p.cut(Collective::Kind::AllReduce, hidden_bytes), partial = false;
            p.put(op);
        }
    }
    if (partial) p.cut(Collective::Kind::AllReduce, hidden_bytes);
}

// The LM head, vocab-parallel: the logits gathered to GPU 0, which samples.
void shard_head(const TensorParallel& t, const std::vector<OpShape>& ops, const StepShape& s,
                Pieces& p) {
    const double logits = s.seqs * t.backbone.vocab * t.backbone.bytes_per_value;
    bool sharded = false;
    for (const auto& op : ops) {
        if (op.kernel == "gemm" && op.split == OpShape::Split::Column) {
            p.put(TensorParallel::column_parallel(op, t.tp));
            sharded = true;
        } else if (sharded) {
            p.cut(Collective::Kind::Gather, logits);
            sharded = false;
            p.put(op);
        } else {
            p.put(op);
        }
    }
    if (sharded) p.cut(Collective::Kind::Gather, logits);
}

// The Engram module: each GPU gathers its heads' rows, then all-gathers the memory vectors.
void shard_engram(const TensorParallel& t, const std::vector<OpShape>& ops, const StepShape& s,
                  Pieces& p) {
    const double memory = s.tokens * t.engram.d_mem * t.backbone.bytes_per_value;
    bool gathered = true;
    for (const auto& op : ops) {
        if (op.kernel == "engram_gather") {  // this GPU's heads only
            p.put(TensorParallel::divided(op, t.tp, "heads"));
            gathered = false;
        } else {
            if (!gathered) {
                p.cut(Collective::Kind::AllGather, memory);
                gathered = true;
            }
            p.put(op);
        }
    }
    if (!gathered) p.cut(Collective::Kind::AllGather, memory);
}

}  // namespace

std::vector<TpPiece> TensorParallel::shard(const std::vector<OpShape>& ops, OpList list,
                                           const StepShape& s) const {
    Pieces p;
    if (tp == 1) {
        p.v[0].ops = ops;
        return p.v;
    }
    switch (list) {
        case OpList::Embed:
            for (const auto& op : ops) p.put(op);
            p.cut(Collective::Kind::AllReduce, s.tokens * backbone.hidden * backbone.bytes_per_value);
            break;
        case OpList::Layer: shard_layer(*this, ops, s, p); break;
        case OpList::Head: shard_head(*this, ops, s, p); break;
        case OpList::Engram: shard_engram(*this, ops, s, p); break;
    }
    if (p.v.size() > 1 && p.v.back().ops.empty()) p.v.pop_back();
    return p.v;
}

double TensorParallel::weight_bytes_per_gpu() const {
    if (tp == 1) return backbone.weight_bytes();
    const BackboneShape& b = backbone;
    // Norm vectors (replicated): 2 RMSNorms and the q/k norms per layer, the final norm.
    const double norms = double(b.layers) * (2.0 * b.hidden + 2.0 * b.head_dim) + b.hidden;
    return ((b.params() - norms) / tp + norms) * b.bytes_per_value;
}

double TensorParallel::kv_bytes_per_token_per_gpu() const {
    // MLA caches one latent per token that every GPU's heads read: not divided.
    return backbone.mla ? backbone.kv_bytes_per_token() : backbone.kv_bytes_per_token() / tp;
}

}  // namespace engramsim
