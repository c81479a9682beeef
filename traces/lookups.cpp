#include "traces/lookups.h"

#include <fstream>

#include "model/config.h"
#include "traces/ngram_hash.h"
#include "traces/synthetic.h"
#include "traces/tokens.h"

namespace engramsim {

namespace {

LookupLayout layout_of(const NgramHasher& hasher, const EngramConfig& engram) {
    LookupLayout layout;
    layout.heads_per_layer = hasher.heads_per_layer();
    layout.row_bytes = engram.row_bytes();
    for (const auto& p : hasher.layers()) {
        layout.layer_ids.push_back(p.layer_id);
        layout.layer_base.push_back(layout.total_rows);
        layout.head_offset.push_back(p.head_offsets);
        layout.layer_rows.push_back(p.table_rows);
        layout.total_rows += p.table_rows;
    }
    return layout;
}

class HashedLookups final : public LookupSource {
public:
    HashedLookups(const EngramConfig& engram, const Workload& workload,
                  const SchedulerConfig& scheduler_config)
        : map_(CompressMap::load(engram.compress_map)),
          hasher_(engram, map_.canonical_vocab_size(), map_(engram.pad_id)),
          layout_(layout_of(hasher_, engram)),
          scheduler_(scheduler_config, prompt_lengths(workload), output_lengths(workload)) {
        // Canonical ids of each request's whole sequence (prompt, then generated tokens).
        for (const Request& r : workload.requests) {
            std::vector<uint32_t> raw(r.prompt);
            raw.insert(raw.end(), r.output.begin(), r.output.end());
            sequences_.push_back(map_.compress(raw));
        }
    }

    const LookupLayout& layout() const override { return layout_; }

    bool next(StepBatch& batch) override {
        auto step = scheduler_.next();
        if (!step) return false;
        batch.step = step->index;
        batch.prefill = step->prefill;
        batch.tokens = step->tokens;
        batch.context_tokens = step->context_tokens;
        batch.finished = step->finished;
        batch.slices = std::move(step->slices);
        const size_t heads = size_t(layout_.heads_per_layer);
        const size_t history = size_t(hasher_.max_ngram_size() - 1);
        batch.rows.resize(layout_.layer_ids.size());
        for (size_t l = 0; l < layout_.layer_ids.size(); ++l) {
            auto& keys = batch.rows[l];
            keys.resize(batch.tokens * heads);
            uint64_t* dst = keys.data();
            for (const StepSlice& s : batch.slices) {
                const auto& seq = sequences_[s.request];
                const size_t h0 = s.first >= history ? s.first - history : 0;
                local_.resize(size_t(s.count) * heads);
                hasher_.hash_layer(l, {seq.data() + s.first, s.count}, local_,
                                   {seq.data() + h0, s.first - h0});
                const uint64_t base = layout_.layer_base[l];
                const auto& offsets = layout_.head_offset[l];
                for (size_t t = 0; t < s.count; ++t)
                    for (size_t h = 0; h < heads; ++h)
                        *dst++ = base + offsets[h] + local_[t * heads + h];
            }
        }
        return true;
    }

private:
    static std::vector<uint32_t> prompt_lengths(const Workload& w) {
        std::vector<uint32_t> out;
        for (const auto& r : w.requests) out.push_back(uint32_t(r.prompt.size()));
        return out;
    }
    static std::vector<uint32_t> output_lengths(const Workload& w) {
        std::vector<uint32_t> out;
        for (const auto& r : w.requests) out.push_back(uint32_t(r.output.size()));
        return out;
    }

    CompressMap map_;
    NgramHasher hasher_;
    LookupLayout layout_;
    Scheduler scheduler_;
    std::vector<std::vector<uint32_t>> sequences_;
    std::vector<uint32_t> local_;
};

}  // namespace

LookupLayout lookup_layout(const EngramConfig& engram) {
    const CompressMap map = CompressMap::load(engram.compress_map);
    return layout_of(NgramHasher(engram, map.canonical_vocab_size(), map(engram.pad_id)), engram);
}

std::unique_ptr<LookupSource> hashed_lookups(const EngramConfig& engram, const Workload& workload,
                                             const SchedulerConfig& scheduler) {
    return std::make_unique<HashedLookups>(engram, workload, scheduler);
}

std::unique_ptr<LookupSource> make_lookups(const EngramConfig& engram,
                                           const nlohmann::json& workload,
                                           const SchedulerConfig& scheduler) {
    if (workload.at("kind") != "synthetic")
        return hashed_lookups(engram, make_workload(workload), scheduler);
    const std::string path = workload.at("synthetic_model").get<std::string>();
    std::ifstream in(path);
    if (!in)
        throw config::ConfigError("workload.synthetic_model: cannot read '" + path +
                                  "' (make one with engramsim trace fit -o FILE)");
    const SyntheticModel model = synthetic_model_from_json(nlohmann::json::parse(in));
    std::vector<uint32_t> prompt_len, output_len;
    workload_lengths(workload, prompt_len, output_len);
    return synthetic_lookups(model, engram, std::move(prompt_len), std::move(output_len),
                             scheduler, workload.at("seed").get<uint64_t>());
}

}  // namespace engramsim
