#include "model/step_model.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "model/config.h"

namespace engramsim {

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
    if (sec.at("mlp").at("kind") != "dense")
        throw config::ConfigError("backbone.mlp.kind: the timing simulator models dense "
                                  "backbones only (Table 4); '" +
                                  sec["mlp"]["kind"].get<std::string>() + "' is not supported");
    if (sec.at("attention").at("kind") != "gqa")
        throw config::ConfigError("backbone.attention.kind: the timing simulator models GQA "
                                  "attention only; 'mla' is not supported");
    b.layers = sec.at("layers").get<int>();
    b.hidden = sec.at("hidden_size").get<int>();
    b.vocab = sec.at("vocab_size").get<int>();
    b.n_heads = sec["attention"].at("n_heads").get<int>();
    b.n_kv_heads = sec["attention"].at("n_kv_heads").get<int>();
    b.head_dim = sec["attention"].at("head_dim").get<int>();
    b.intermediate = sec["mlp"].at("intermediate_size").get<int>();
    b.bytes_per_value = dtype_bytes(sec.at("dtype").get<std::string>());
    if (b.n_kv_heads < 1 || b.intermediate < 1)
        throw config::ConfigError("backbone: n_kv_heads and mlp.intermediate_size must be >= 1");
    // The schema has no tie field (docs/presets.md): Qwen3-4B ties its embeddings.
    b.tied_embeddings = b.name == "dense-4b" || sec.value("base", std::string()) == "dense-4b";
    return b;
}

double BackboneShape::params() const {
    const double h = hidden, q = double(n_heads) * head_dim, kv = double(n_kv_heads) * head_dim;
    const double layer = h * q + 2 * h * kv + q * h + 2.0 * head_dim + 3 * h * intermediate +
                         2 * h;
    const double vocab_matrix = double(vocab) * h;
    return layers * layer + h + vocab_matrix * (tied_embeddings ? 1 : 2);
}

double BackboneShape::kv_bytes_per_token() const {
    return double(layers) * 2 * n_kv_heads * head_dim * bytes_per_value;
}

EngramGpuShape EngramGpuShape::from_config(const EngramConfig& e) {
    return {.d_mem = e.heads_per_layer() * e.row_dim(),
            .heads = e.heads_per_layer(),
            .row_bytes = e.row_bytes(),
            .short_conv = e.short_conv,
            .kernel_size = e.kernel_size,
            .hc_mult = e.hc_mult};
}

std::vector<OpShape> layer_ops(const BackboneShape& b, const StepShape& s) {
    const double T = s.tokens, h = b.hidden, bpv = b.bytes_per_value;
    const double q = double(b.n_heads) * b.head_dim, kv = double(b.n_kv_heads) * b.head_dim;
    std::vector<OpShape> ops;
    ops.push_back(elementwise_op(T * h, 2, 2, bpv, 4));       // residual add + input RMSNorm
    ops.push_back(gemm_op(T, q + 2 * kv, h, bpv));            // fused QKV projection
    ops.push_back(elementwise_op(T * (q + kv), 1, 1, bpv, 8));  // q/k RMSNorm + RoPE
    ops.push_back(elementwise_op(T * 2 * kv, 1, 1, bpv, 0));  // store K, V into the paged cache
    OpShape attn;
    if (s.prefill) {
        attn.kernel = "attention_prefill";
        attn.dims = {{"tokens", T}, {"heads", double(b.n_heads)}, {"head_dim", double(b.head_dim)}};
        attn.flops = 4 * q * s.causal_pairs;
        attn.bytes = T * (2 * q + 2 * kv) * bpv;
    } else {
        attn.kernel = "attention_decode";
        attn.dims = {{"seqs", s.seqs}, {"context", s.context_tokens},
                     {"heads", double(b.n_heads)}, {"kv_heads", double(b.n_kv_heads)},
                     {"head_dim", double(b.head_dim)}};
        attn.flops = 4 * q * s.context_tokens;
        attn.bytes = s.context_tokens * 2 * kv * bpv + 2 * T * q * bpv;
    }
    ops.push_back(attn);
    ops.push_back(gemm_op(T, h, q, bpv));                          // output projection
    ops.push_back(elementwise_op(T * h, 2, 2, bpv, 4));            // residual add + post RMSNorm
    ops.push_back(gemm_op(T, 2.0 * b.intermediate, h, bpv));       // gate + up
    ops.push_back(elementwise_op(T * b.intermediate, 2, 1, bpv, 4));  // SiLU * up
    ops.push_back(gemm_op(T, h, b.intermediate, bpv));             // down
    return ops;
}

std::vector<OpShape> embed_ops(const BackboneShape& b, const StepShape& s) {
    return {elementwise_op(s.tokens * b.hidden, 1, 1, b.bytes_per_value, 0)};
}

std::vector<OpShape> head_ops(const BackboneShape& b, const StepShape& s) {
    const double S = s.seqs, bpv = b.bytes_per_value;
    return {elementwise_op(S * b.hidden, 2, 1, bpv, 4),   // final residual add + RMSNorm
            gemm_op(S, b.vocab, b.hidden, bpv),            // LM head on each sequence's last token
            elementwise_op(S * double(b.vocab), 2, 0, 4, 4)};  // fp32 logits: temperature, sample
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
    ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(h)
    ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(k)
    ops.push_back(elementwise_op(T * h * M, 2, 0, bpv, 2));  // dot / sqrt(d)
    ops.push_back(elementwise_op(T * M, 1, 1, 4, 8));        // signed sqrt + sigmoid
    ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 1));  // gate * v
    if (e.short_conv) {
        ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 4));  // RMSNorm(v~)
        ops.push_back(elementwise_op(T * h * M, 1, 1, bpv, 2.0 * e.kernel_size));  // conv
        ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 5));  // SiLU + v~
    }
    ops.push_back(elementwise_op(T * h * M, 2, 1, bpv, 1));  // H <- H + Y
    return ops;
}

double total_seconds(const CostModel& cost, const std::vector<OpShape>& ops) {
    double t = 0;
    for (const auto& op : ops) t += cost.seconds(op);
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
