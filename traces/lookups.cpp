#include "traces/lookups.h"

#include <fstream>
#include <stdexcept>

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

class HashedLookups final : public ScheduledLookups {
public:
    HashedLookups(const EngramConfig& engram, const Workload& workload,
                  const SchedulerConfig& scheduler, const CompressMap& map,
                  const NgramHasher& hasher)
        : ScheduledLookups(layout_of(hasher, engram), scheduler, prompt_lengths(workload),
                           output_lengths(workload)),
          map_(map),
          hasher_(hasher),
          workload_(workload) {}

private:
    RequestRows load(uint32_t index) override {
        const Request& r = workload_.requests[index];
        std::vector<uint32_t> raw(r.prompt);
        raw.insert(raw.end(), r.output.begin(), r.output.end());
        const std::vector<uint32_t> ids = map_.compress(raw);
        RequestRows rows(hasher_.layers().size());
        for (size_t l = 0; l < rows.size(); ++l) {
            rows[l].resize(ids.size() * size_t(hasher_.heads_per_layer()));
            hasher_.hash_layer(l, ids, rows[l]);
        }
        return rows;
    }

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
    Workload workload_;
};

}  // namespace

LookupLayout lookup_layout(const EngramConfig& engram) {
    const CompressMap map = CompressMap::load(engram.compress_map);
    return layout_of(NgramHasher(engram, map.canonical_vocab_size(), map(engram.pad_id)), engram);
}

std::unique_ptr<LookupSource> hashed_lookups(const EngramConfig& engram, const Workload& workload,
                                             const SchedulerConfig& scheduler) {
    const CompressMap map = CompressMap::load(engram.compress_map);
    const NgramHasher hasher(engram, map.canonical_vocab_size(), map(engram.pad_id));
    return std::make_unique<HashedLookups>(engram, workload, scheduler, map, hasher);
}

ScheduledLookups::ScheduledLookups(LookupLayout layout, const SchedulerConfig& scheduler,
                                   std::vector<uint32_t> prompt_len,
                                   std::vector<uint32_t> output_len)
    : layout_(std::move(layout)),
      prompt_len_(prompt_len),
      output_len_(output_len),
      scheduler_(scheduler, std::move(prompt_len), std::move(output_len)) {}

bool ScheduledLookups::next(StepBatch& batch) {
    auto step = scheduler_.next();
    if (!step) return false;
    batch.step = step->index;
    batch.prefill = step->prefill;
    batch.tokens = step->tokens;
    batch.context_tokens = step->context_tokens;
    batch.finished = step->finished;
    batch.slices = std::move(step->slices);
    batch.preempted = std::move(step->preempted);
    const size_t heads = size_t(layout_.heads_per_layer);
    batch.rows.resize(layout_.layer_ids.size());
    for (auto& keys : batch.rows) keys.resize(batch.tokens * heads);
    std::vector<uint64_t*> dst;
    for (auto& keys : batch.rows) dst.push_back(keys.data());
    for (const StepSlice& s : batch.slices) {
        while (!live_.contains(s.request)) {
            const uint32_t index = next_to_load_++;
            live_.emplace(index, load(index));
        }
        const RequestRows& rows = live_.at(s.request);
        for (size_t l = 0; l < dst.size(); ++l) {
            const uint64_t base = layout_.layer_base[l];
            const auto& offsets = layout_.head_offset[l];
            const uint32_t* local = rows[l].data() + size_t(s.first) * heads;
            for (size_t t = 0; t < s.count; ++t)
                for (size_t h = 0; h < heads; ++h) *dst[l]++ = base + offsets[h] + *local++;
        }
        // Done once its last fed token (position prompt + output - 2) went through.
        if (s.first + s.count + 1 >= prompt_len_[s.request] + output_len_[s.request])
            live_.erase(s.request);
    }
    return true;
}

std::unique_ptr<LookupSource> make_lookups(const EngramConfig& engram,
                                           const nlohmann::json& workload,
                                           const SchedulerConfig& scheduler) {
    if (workload.at("kind") != "synthetic")
        return hashed_lookups(engram, make_workload(workload), scheduler);
    const SyntheticModel model =
        load_synthetic_model(workload.at("synthetic_model").get<std::string>());
    std::vector<uint32_t> prompt_len, output_len;
    workload_lengths(workload, prompt_len, output_len);
    return synthetic_lookups(model, engram, std::move(prompt_len), std::move(output_len),
                             scheduler, workload.at("seed").get<uint64_t>());
}

ChainedLookups::ChainedLookups(std::unique_ptr<LookupSource> first,
                               std::unique_ptr<LookupSource> second)
    : first_(std::move(first)), second_(std::move(second)) {
    const LookupLayout &a = first_->layout(), &b = second_->layout();
    if (a.layer_base != b.layer_base || a.head_offset != b.head_offset ||
        a.layer_rows != b.layer_rows || a.row_bytes != b.row_bytes)
        throw std::invalid_argument("chained lookups: the two sources read different tables");
}

bool ChainedLookups::next(StepBatch& batch) {
    if (in_first_) {
        if (first_->next(batch)) {
            first_steps_ = batch.step + 1;
            return true;
        }
        in_first_ = false;
    }
    if (!second_->next(batch)) return false;
    batch.step += first_steps_;
    return true;
}

}  // namespace engramsim
