#include "sim/placement/replay.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "model/capacity.h"
#include "sim/placement/id_file.h"
#include "sim/placement/mrc.h"
#include "sim/placement/remap.h"

namespace engramsim::placement {

void TierTotals::add(const StepRecord& r) {
    lookups += r.lookups;
    requests += r.unique_rows;
    hbm_hits += r.hbm_hits;
    dram_rows += r.dram_rows;
    ssd_rows += r.ssd_rows;
    promoted_rows += r.promoted_rows;
    evicted_rows += r.evicted_rows;
    demoted_rows += r.demoted_rows;
    invalidated_rows += r.invalidated_rows;
}

double TierTotals::hbm_hit_ratio() const {
    return requests ? double(hbm_hits) / double(requests) : 0.0;
}
double TierTotals::dram_hit_ratio() const {
    const uint64_t reached = dram_rows + ssd_rows;
    return reached ? double(dram_rows) / double(reached) : 0.0;
}

namespace {

// The two tiers and the rules between them; serve() handles one request.
class Tiers {
public:
    Tiers(const DenseTrace& trace, const TierConfig& cfg, std::span<const uint32_t> next_use,
          std::span<const uint64_t> step_first, std::span<const uint64_t> profile,
          std::span<const uint64_t> ranks)
        : exclusive_(cfg.inclusion == Inclusion::Exclusive) {
        PolicyContext hbm{.capacity_rows = cfg.hbm_rows,
                          .universe = trace.universe(),
                          .keys = trace.keys,
                          .next_use = next_use,
                          .step_first = step_first,
                          .profile_counts = profile,
                          .profile_rank = ranks,
                          .options = cfg.options};
        hbm_ = make_policy(cfg.policy, hbm);
        dram_all_ = cfg.dram_rows >= trace.table_rows();
        if (!dram_all_) {
            PolicyContext dram{.capacity_rows = cfg.dram_rows,
                               .universe = trace.universe(),
                               .keys = trace.keys,
                               .profile_counts = profile,
                               .profile_rank = ranks,
                               .options = cfg.dram_options};
            if (policy_info(cfg.dram_policy).needs_next_use && cfg.dram_rows > 0)
                throw PolicyError("policy '" + cfg.dram_policy +
                                  "' cannot manage DRAM: its request sequence depends on the "
                                  "HBM cache's decisions, so next-use times are not known ahead");
            dram_ = make_policy(cfg.dram_policy, dram);
        }
    }

    // Requests [t0, t0 + ids.size()) when DRAM holds the whole table: the policy's own batch
    // loop (with prefetching), counts derived from its admissions and size.
    bool serve_all_from_dram(std::span<const uint32_t> ids, uint32_t t0, StepRecord& r) {
        if (!dram_all_) return false;
        const uint64_t a0 = hbm_->admitted(), s0 = hbm_->size();
        const uint64_t misses = hbm_->run(ids, t0);
        r.hbm_hits += ids.size() - misses;
        r.dram_rows += misses;
        const uint64_t admitted = hbm_->admitted() - a0;
        r.promoted_rows += admitted;
        r.evicted_rows += admitted - (hbm_->size() - s0);
        return true;
    }

    void serve(uint32_t id, uint32_t t, StepRecord& r) {
        if (hbm_->access(id, t)) {
            ++r.hbm_hits;
            return;
        }
        const bool admitted = hbm_->contains(id);
        r.promoted_rows += admitted;
        const uint32_t victim = hbm_->victim();
        if (victim != kNoRow) ++r.evicted_rows;
        if (dram_all_) {
            ++r.dram_rows;
            return;
        }
        if (dram_t_ > UINT32_MAX - 3)  // DRAM positions are uint32, up to two per request
            throw std::length_error("more than 4,294,967,292 DRAM cache requests in one replay");
        if (!exclusive_) {
            if (dram_->access(id, dram_t_++))
                ++r.dram_rows;
            else
                ++r.ssd_rows;
            const uint32_t dv = dram_->victim();
            if (dv != kNoRow && dv != id && hbm_->erase(dv)) ++r.invalidated_rows;
            return;
        }
        if (dram_->contains(id)) {
            ++r.dram_rows;
            if (admitted)
                dram_->erase(id);
            else
                dram_->access(id, dram_t_++);
        } else {
            ++r.ssd_rows;
            if (!admitted) dram_->access(id, dram_t_++);
        }
        if (victim != kNoRow) {
            dram_->access(victim, dram_t_++);
            ++r.demoted_rows;
        }
    }

private:
    bool exclusive_;
    bool dram_all_ = true;
    uint32_t dram_t_ = 0;
    std::unique_ptr<CachePolicy> hbm_, dram_;
};

}  // namespace

namespace {

// The result of replaying a plain id sequence, from its one record (no steps: the totals are it).
ReplayResult plain_result(uint64_t table_rows, double rb, const TierConfig& cfg, StepRecord r) {
    ReplayResult out;
    out.hbm_capacity_rows = cfg.hbm_rows;
    out.dram_capacity_rows = cfg.dram_rows >= table_rows ? kAllRows : cfg.dram_rows;
    out.row_bytes = rb;
    out.layers.resize(1);
    r.host_to_gpu_bytes = double(r.dram_rows + r.ssd_rows) * rb;
    r.ssd_to_host_bytes = double(r.ssd_rows) * rb;
    r.gpu_to_host_bytes = double(r.demoted_rows) * rb;
    out.total.add(r);
    out.layers[0].add(r);
    return out;
}

}  // namespace

ReplayResult replay(const DenseTrace& trace, const TierConfig& cfg) {
    const PolicyInfo& info = policy_info(cfg.policy);
    std::vector<uint32_t> next_use;
    if (info.needs_next_use || cfg.options.count("lookahead"))
        next_use = next_uses(trace.requests, trace.universe());
    const std::vector<uint64_t> step_first = step_starts(trace);
    std::vector<uint64_t> profile;
    const bool wants_profile = cfg.policy == "static" || cfg.dram_policy == "static";
    if (wants_profile && cfg.profile_ranks.empty()) {
        if (!(cfg.profile_fraction > 0 && cfg.profile_fraction <= 1))
            throw std::invalid_argument("profile fraction must be in (0, 1]");
        const auto end = size_t(std::floor(cfg.profile_fraction * double(trace.requests.size())));
        profile = request_counts(std::span(trace.requests).first(end), trace.universe());
    }
    if (!cfg.profile_ranks.empty() && cfg.profile_ranks.size() != trace.universe())
        throw std::invalid_argument("profile ranks cover " +
                                    std::to_string(cfg.profile_ranks.size()) +
                                    " rows, the trace touches " + std::to_string(trace.universe()));

    Tiers tiers(trace, cfg, next_use, step_first, profile, cfg.profile_ranks);
    ReplayResult out;
    out.hbm_capacity_rows = cfg.hbm_rows;
    out.dram_capacity_rows = cfg.dram_rows >= trace.table_rows() ? kAllRows : cfg.dram_rows;
    out.row_bytes = trace.row_bytes();
    out.layers.resize(std::max<size_t>(1, trace.layout.layer_ids.size()));

    const double rb = trace.row_bytes();
    auto finish = [&](StepRecord& r, bool keep) {
        r.host_to_gpu_bytes = double(r.dram_rows + r.ssd_rows) * rb;
        r.ssd_to_host_bytes = double(r.ssd_rows) * rb;
        r.gpu_to_host_bytes = double(r.demoted_rows) * rb;
        out.total.add(r);
        out.layers[r.layer].add(r);
        if (keep) out.steps.push_back(r);
    };
    const uint32_t* req = trace.requests.data();
    if (trace.groups.empty()) {  // a plain id sequence: one record for all of it
        StepRecord r{.lookups = trace.lookups, .unique_rows = trace.requests.size()};
        if (!tiers.serve_all_from_dram(trace.requests, 0, r))
            for (uint32_t t = 0; t < trace.requests.size(); ++t) tiers.serve(req[t], t, r);
        return plain_result(trace.table_rows(), trace.row_bytes(), cfg, r);
    }
    if (cfg.step_records) out.steps.reserve(trace.groups.size());
    for (const RequestGroup& g : trace.groups) {
        StepRecord r{
            .step = g.step, .layer = g.layer, .lookups = g.lookups, .unique_rows = g.count};
        const uint32_t end = uint32_t(g.first + g.count);
        if (!tiers.serve_all_from_dram(std::span(req + g.first, g.count), uint32_t(g.first), r))
            for (uint32_t t = uint32_t(g.first); t < end; ++t) tiers.serve(req[t], t, r);
        finish(r, cfg.step_records);
    }
    return out;
}

InputFacts facts_of(const DenseTrace& trace) {
    return {.lookups = trace.lookups,
            .requests = trace.requests.size(),
            .steps = trace.steps,
            .distinct_rows = trace.universe(),
            .table_rows = trace.table_rows(),
            .row_bytes = trace.row_bytes(),
            .layer_ids = trace.layout.layer_ids,
            .per_lookup = trace.groups.empty()};
}

namespace {

// A plain id sequence's facts from its numbering: one request per lookup, its distinct rows the
// table's.
InputFacts plain_facts(const NumberedKeys& numbered, double row_bytes) {
    const uint64_t distinct = numbered.total_distinct();
    return {.lookups = numbered.requests,
            .requests = numbered.requests,
            .distinct_rows = distinct,
            .table_rows = distinct,
            .row_bytes = row_bytes};
}

}  // namespace

bool replays_in_one_pass(const TierConfig& tiers) {
    // Set-associative policies hash every key into its set when they are made: all keys first.
    return tiers.dram_rows == kAllRows && decides_online(tiers.policy, tiers.options) &&
           tiers.policy.rfind("sa-", 0) != 0 && tiers.profile_ranks.empty();
}

ReplayResult replay_id_file(const std::string& path, double row_bytes, const TierConfig& tiers,
                            InputFacts& facts) {
    if (!replays_in_one_pass(tiers)) {
        const DenseTrace trace = densify_id_file(path, row_bytes);
        facts = facts_of(trace);
        return replay(trace, tiers);
    }
    policy_info(tiers.policy);  // an unknown name fails before the file is read
    const IdFile file(path);
    const NumberedKeys numbered = number_keys(file.ids());
    const uint64_t distinct = numbered.total_distinct();
    facts = plain_facts(numbered, row_bytes);
    // The policy sees ids below numbered_universe(), a few of them unused: its capacity is the
    // one it would use for the distinct rows alone, so that nothing it decides changes.
    std::unique_ptr<CachePolicy> policy;
    auto make = [&] {
        policy = make_policy(tiers.policy,
                             {.capacity_rows = std::min(tiers.hbm_rows, distinct),
                              .universe = uint32_t(numbered.numbered_universe()),
                              .options = tiers.options});
    };
    uint64_t misses = 0;
    each_numbered_id(numbered, [&](std::span<const uint32_t> ids, uint64_t first) {
        if (!policy) make();  // here, while the reader thread fills the next slices
        misses += policy->run(ids, uint32_t(first));
    });
    if (!policy) make();
    StepRecord r{.lookups = numbered.requests, .unique_rows = numbered.requests};
    r.hbm_hits = numbered.requests - misses;
    r.dram_rows = misses;
    r.promoted_rows = policy->admitted();
    r.evicted_rows = policy->admitted() - policy->size();
    return plain_result(facts.table_rows, row_bytes, tiers, r);
}

std::vector<MrcPoint> lru_curve_of_id_file(
    const std::string& path, double row_bytes,
    const std::function<std::vector<uint64_t>(uint64_t)>& sizes_for, InputFacts& facts) {
    const IdFile file(path);
    const NumberedKeys numbered = number_keys(file.ids());
    const uint64_t distinct = numbered.total_distinct();
    facts = plain_facts(numbered, row_bytes);
    const std::vector<uint64_t> sizes = sizes_for(distinct);
    // Sizes above the distinct rows hit what the distinct rows do: the curve is sized for the
    // numbered ids (a few unused), each size capped at the rows.
    std::vector<uint64_t> capped(sizes);
    for (uint64_t& c : capped) c = std::min(c, distinct);
    LruCurve curve(uint32_t(numbered.numbered_universe()), capped);
    each_numbered_id(numbered, [&](std::span<const uint32_t> ids, uint64_t) { curve.add(ids); });
    std::vector<MrcPoint> points = curve.points();
    for (size_t i = 0; i < points.size(); ++i) points[i].capacity_rows = sizes[i];
    return points;
}

ReplayResult lru_result_from_curve(const MrcPoint& at_capacity, uint64_t table_rows,
                                   double row_bytes, const TierConfig& tiers) {
    if (tiers.policy != "lru" || !tiers.options.empty() || tiers.dram_rows < table_rows ||
        at_capacity.capacity_rows != tiers.hbm_rows)
        throw std::logic_error("lru_result_from_curve: not a plain LRU run at the curve's point");
    const uint64_t cache = std::min(tiers.hbm_rows, table_rows);
    StepRecord r{.lookups = at_capacity.requests, .unique_rows = at_capacity.requests};
    r.hbm_hits = at_capacity.requests - at_capacity.misses;
    r.dram_rows = at_capacity.misses;
    r.promoted_rows = cache > 0 ? at_capacity.misses : 0;
    r.evicted_rows = cache > 0 ? at_capacity.misses - cache : 0;  // every row misses once at least
    return plain_result(table_rows, row_bytes, tiers, r);
}

uint64_t parse_capacity_rows(const std::string& raw, double row_bytes, uint64_t table_rows) {
    return capacity::rows(capacity::parse(raw), row_bytes, table_rows, raw);
}

std::vector<uint64_t> profile_ranks_for(const DenseTrace& trace, LookupSource& warmup) {
    const DenseTrace warm = densify(warmup);
    const std::vector<uint64_t> counts = request_counts(warm.requests, warm.universe());
    std::vector<uint32_t> order(warm.universe());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return counts[a] != counts[b] ? counts[a] > counts[b] : warm.keys[a] < warm.keys[b];
    });
    std::vector<uint64_t> ranks(trace.universe(), UINT64_MAX);
    const KeyIndex index = index_of_keys(trace.keys);
    for (uint64_t r = 0; r < order.size(); ++r) {
        const uint32_t id = index.find(warm.keys[order[r]]);
        if (id != UINT32_MAX) ranks[id] = r;
    }
    return ranks;
}

}  // namespace engramsim::placement
