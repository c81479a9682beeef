#include "sim/timing/step_plan.h"

#include <algorithm>
#include <vector>

#include "model/config.h"
#include "model/engram_config.h"
#include "model/step_model.h"
#include "sim/timing/engine.h"
#include "sim/timing/plan.h"
#include "traces/lookups.h"
#include "traces/ngram_hash.h"
#include "traces/schedule.h"
#include "traces/splitmix64.h"
#include "traces/tokens.h"
#include "traces/workload.h"

namespace engramsim::sim {

using nlohmann::json;

uint64_t rows_digest(std::span<const uint64_t> distinct_rows) {
    uint64_t sum = 0;
    for (uint64_t r : distinct_rows) sum += splitmix64(r);
    return sum;
}

namespace {

json slice_json(const StepSlice& s) {
    return json::array({s.request, s.first, s.count, s.decode ? 1 : 0, s.sample ? 1 : 0});
}

json model_json(const BackboneShape& b, const json& backbone) {
    return {{"hidden", b.hidden},
            {"layers", b.layers},
            {"n_heads", b.n_heads},
            {"n_kv_heads", b.n_kv_heads},
            {"head_dim", b.head_dim},
            {"intermediate", b.intermediate},
            {"vocab", b.vocab},
            {"dtype", backbone.value("dtype", std::string("bf16"))},
            {"tied_embeddings", b.tied_embeddings}};
}

// The hash's parameters, so another implementation reproduces every global row id: the canonical
// map, the pad, each layer's multipliers, primes and offsets (traces/ngram_hash.h).
json engram_json(const EngramConfig& e) {
    const CompressMap map = CompressMap::load(e.compress_map);
    const NgramHasher hasher(e, map.canonical_vocab_size(), map(e.pad_id));
    const LookupLayout layout = lookup_layout(e);
    json layers = json::array();
    for (size_t l = 0; l < hasher.layers().size(); ++l) {
        const LayerHashParams& p = hasher.layers()[l];
        layers.push_back({{"layer_id", p.layer_id},
                          {"multipliers", p.multipliers},
                          {"primes", p.primes},
                          {"head_offsets", p.head_offsets},
                          {"base", layout.layer_base[l]},
                          {"rows", layout.layer_rows[l]}});
    }
    return {{"layer_ids", e.layer_ids},
            {"max_ngram_size", e.max_ngram_size},
            {"n_head_per_ngram", e.n_head_per_ngram},
            {"heads_per_layer", e.heads_per_layer()},
            {"row_dim", e.row_dim()},
            {"d_mem", e.row_dim() * e.heads_per_layer()},
            {"dtype", to_string(e.dtype)},
            {"row_bytes", e.row_bytes()},
            {"kernel_size", e.kernel_size},
            {"dilation", e.max_ngram_size},
            {"signed_sqrt_gate", e.signed_sqrt_gate},
            {"short_conv", e.short_conv},
            {"hc_mult", e.hc_mult},
            {"pad_canonical", hasher.pad_id()},
            {"canonical_vocab", map.canonical_vocab_size()},
            {"compress_map", map.table()},
            {"total_rows", layout.total_rows},
            {"layers", layers}};
}

}  // namespace

json step_plan(const json& resolved) {
    const json& simc = resolved.at("sim");
    if (resolved.contains("cluster"))
        throw config::ConfigError("cluster: a step plan is one engine on one GPU; drop the "
                                  "cluster section");
    if (const int tp = simc.value("tensor_parallel", 1); tp != 1)
        throw config::ConfigError("sim.tensor_parallel: " + std::to_string(tp) +
                                  "; a step plan is one engine on one GPU (set it to 1)");
    if (const int dp = simc.value("data_parallel", 1); dp != 1)
        throw config::ConfigError("sim.data_parallel: " + std::to_string(dp) +
                                  "; a step plan is one engine on one GPU (set it to 1)");

    // The simulator's own plan decides the KV cache (its engine's warm-up sizing, or
    // sim.num_kv_blocks) and so the scheduler's steps.
    const Plan plan = make_plan(resolved);
    const SchedulerConfig sc = plan.engine->scheduler_config(simc, plan.num_kv_blocks);
    const Workload work = make_workload(resolved.at("workload"));  // refuses a synthetic one

    json requests = json::array();
    for (const Request& r : work.requests)
        requests.push_back({{"prompt", r.prompt}, {"output", r.output}});

    json steps = json::array();
    uint64_t preemptions = 0;
    auto add_step = [&](uint64_t index, bool prefill, const std::vector<StepSlice>& slices,
                        const std::vector<uint32_t>& preempted, uint64_t context, json rows) {
        json s = {{"index", index}, {"prefill", prefill}, {"context_tokens", context}};
        json sl = json::array();
        for (const StepSlice& x : slices) sl.push_back(slice_json(x));
        s["slices"] = std::move(sl);
        s["preempted"] = preempted;
        if (!rows.is_null()) s["rows"] = std::move(rows);
        preemptions += preempted.size();
        steps.push_back(std::move(s));
    };
    if (plan.has_engram) {
        auto source = hashed_lookups(plan.engram, work, sc);
        StepBatch batch;
        std::vector<uint64_t> distinct;
        while (source->next(batch)) {
            json rows = json::array();
            for (const auto& keys : batch.rows) {
                distinct.assign(keys.begin(), keys.end());
                std::sort(distinct.begin(), distinct.end());
                distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
                rows.push_back({{"lookups", keys.size()},
                                {"distinct", distinct.size()},
                                {"digest", rows_digest(distinct)}});
            }
            add_step(batch.step, batch.prefill, batch.slices, batch.preempted,
                     batch.context_tokens, std::move(rows));
        }
    } else {
        std::vector<uint32_t> prompt_len, output_len;
        request_lengths(work, prompt_len, output_len);
        const EngineSchedule schedule = plan.engine->schedule(sc, prompt_len, output_len);
        for (const Step& s : schedule.steps)
            add_step(s.index, s.prefill, s.slices, s.preempted, s.context_tokens, json());
    }

    return {{"schema", "engramsim.step_plan"},
            {"version", 1},
            {"config", resolved},
            {"model", model_json(plan.backbone, resolved.at("backbone"))},
            {"engram", plan.has_engram ? engram_json(plan.engram) : json()},
            {"scheduler",
             {{"engine", plan.engine->name()},
              {"max_num_seqs", sc.max_num_seqs},
              {"max_num_batched_tokens", sc.max_num_batched_tokens},
              {"kv_block_size", sc.kv_block_size},
              {"num_kv_blocks", sc.num_kv_blocks},
              {"preemptions", preemptions}}},
            {"requests", std::move(requests)},
            {"steps", std::move(steps)}};
}

}  // namespace engramsim::sim
