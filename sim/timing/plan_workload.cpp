// The plan's workload stages: workload_and_lookups and placement_replay (sim/timing/plan_stages.h).
// Workloads, schedules, lookup counts and replays are cached per process by the JSON of what
// decides them, so runs that differ only in timing parameters share them.
#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>

#include "model/config.h"
#include "sim/placement/dense_trace.h"
#include "sim/placement/replay.h"
#include "sim/timing/plan_stages.h"
#include "traces/splitmix64.h"

namespace engramsim::sim {

using nlohmann::json;

std::unique_ptr<LookupSource> Served::lookups(const EngramConfig& engram,
                                              const SchedulerConfig& sc) const {
    if (text) return hashed_lookups(engram, *text, sc);
    return synthetic_lookups(*synthetic, engram, prompt_len, output_len, sc, synthetic_seed);
}

namespace {

std::shared_ptr<const Served> served_of(const json& workload) {
    auto s = std::make_shared<Served>();
    if (workload.at("kind") == "synthetic") {
        workload_lengths(workload, s->prompt_len, s->output_len);
        s->synthetic = std::make_shared<const SyntheticModel>(
            load_synthetic_model(workload.at("synthetic_model").get<std::string>()));
        s->synthetic_seed = workload.at("seed").get<uint64_t>();
        return s;
    }
    auto text = std::make_shared<Workload>(make_workload(workload));
    request_lengths(*text, s->prompt_len, s->output_len);
    s->text = std::move(text);
    return s;
}

// Requests r = shard mod shards of `all`, in order. A synthetic replica streams with its own
// seed: replicas serve different users of the same text.
std::shared_ptr<const Served> shard_of(const Served& all, int shard, int shards) {
    auto s = std::make_shared<Served>();
    std::shared_ptr<Workload> text;
    if (all.text) {
        text = std::make_shared<Workload>();
        text->description = all.text->description;
        text->seed = all.text->seed;
    }
    for (size_t r = size_t(shard); r < all.prompt_len.size(); r += size_t(shards)) {
        s->prompt_len.push_back(all.prompt_len[r]);
        s->output_len.push_back(all.output_len[r]);
        if (text) text->requests.push_back(all.text->requests[r]);
    }
    s->text = std::move(text);
    s->synthetic = all.synthetic;
    s->synthetic_seed = splitmix64(all.synthetic_seed ^ (0x9e3779b97f4a7c15ull * uint64_t(shard)));
    return s;
}

// Per-process caches keyed by the JSON of what decides them.
std::mutex cache_mutex;
std::map<std::string, std::shared_ptr<const Served>> workload_cache;
std::map<std::string, std::shared_ptr<const EngineSchedule>> schedule_cache;
std::map<std::string, std::shared_ptr<const LookupCounts>> lookup_cache;
std::map<std::string, PlacementRecords> replay_cache;

json without(json j, std::initializer_list<const char*> keys) {
    for (const char* k : keys) j.erase(k);
    return j;
}

// The workload (its shard under data parallelism) and the key that names it. Holds the lock.
std::shared_ptr<const Served> served_shard(const json& workload, int shard, int shards,
                                           std::string& key) {
    key = without(workload, {"sources", "assumptions", "description"}).dump();
    auto& w = workload_cache[key];
    if (!w) w = served_of(workload);
    if (shards == 1) return w;
    // data parallelism: requests r = shard mod shards, in order
    key += "|shard " + std::to_string(shard) + "/" + std::to_string(shards);
    auto& part = workload_cache[key];
    if (!part) {
        auto p = shard_of(*w, shard, shards);
        if (p->prompt_len.empty()) {
            const std::string n = std::to_string(w->prompt_len.size());
            throw config::ConfigError("sim.data_parallel: " + std::to_string(shards) +
                                      " replicas, but replica " + std::to_string(shard) +
                                      " gets no request (the workload has " + n + ")");
        }
        part = p;
    }
    return part;
}

}  // namespace

ServedWork workload_and_lookups(const WorkloadInput& in, const Engine& engine) {
    const json& cfg = in.cfg;
    ServedWork out;
    std::lock_guard lock(cache_mutex);
    std::string wk;
    out.served = served_shard(cfg["workload"], in.shard, in.shards, wk);
    const SchedulerConfig sc = engine.scheduler_config(cfg["sim"], in.num_kv_blocks);
    out.scheduler = sc;
    const std::string sk = wk + "|" + std::to_string(sc.max_num_seqs) + "," +
                           std::to_string(sc.max_num_batched_tokens) + "," +
                           std::to_string(sc.kv_block_size) + "," +
                           std::to_string(sc.num_kv_blocks) + "," + engine.name() + "," +
                           std::to_string(sc.chunked_prefill) + "," +
                           std::to_string(sc.long_prefill_token_threshold) + "," +
                           std::to_string(sc.async_scheduling);
    auto& s = schedule_cache[sk];
    if (!s)
        s = std::make_shared<const EngineSchedule>(
            engine.schedule(sc, out.served->prompt_len, out.served->output_len));
    out.schedule = s;
    if (!in.run.has_engram) return out;
    const json ekey = without(cfg["engram"], {"sources", "assumptions", "description", "dtype",
                                              "gate", "short_conv", "name", "base"});
    out.lookup_key = sk + "|" + ekey.dump();
    auto& c = lookup_cache[out.lookup_key];
    if (!c) {
        // The source runs the same scheduler config, so its steps are the schedule's.
        auto source = out.served->lookups(in.run.engram, sc);
        auto counts = std::make_shared<const LookupCounts>(count_lookups(*source));
        if (counts->lookups.size() != s->steps.size())
            throw std::logic_error("lookup counts: step count differs from the schedule");
        c = counts;
    }
    out.counts = c;
    return out;
}

namespace {

// Placement replay after a warm-up: `warm_requests` requests of the run's workload drawn with
// `warm_seed` go through the caches first (one replay over the warm-up's steps then the run's),
// and only the run's step records are kept, renumbered from 0. The static policy then ranks rows
// by the warm-up's requests instead of the run's own (no oracle).
std::vector<placement::StepRecord> warm_replay(const EngramConfig& engram, const json& workload,
                                               uint64_t warm_requests, uint64_t warm_seed,
                                               const SchedulerConfig& sc,
                                               std::unique_ptr<LookupSource> run,
                                               placement::TierConfig tiers) {
    if (warm_seed == workload.at("seed").get<uint64_t>())
        throw config::ConfigError("placement.warmup_seed: " + std::to_string(warm_seed) +
                                  " is workload.seed: the warm-up would be the run itself");
    json warm = workload;
    warm["num_requests"] = warm_requests;
    warm["seed"] = warm_seed;
    std::unique_ptr<LookupSource> warm_source;
    try {
        warm_source = make_lookups(engram, warm, sc);
    } catch (const std::exception& e) {
        throw config::ConfigError(std::string("placement.warmup_requests: the warm-up workload: ") +
                                  e.what());
    }
    ChainedLookups chain(std::move(warm_source), std::move(run));
    const placement::DenseTrace trace = placement::densify(chain);
    const uint64_t warm_steps = chain.first_steps();
    if (tiers.policy == "static") {
        auto ranks_from = make_lookups(engram, warm, sc);
        tiers.profile_ranks = placement::profile_ranks_for(trace, *ranks_from);
    }
    std::vector<placement::StepRecord> steps = placement::replay(trace, tiers).steps;
    const auto first_run = std::find_if(steps.begin(), steps.end(),
                                        [&](const auto& r) { return r.step >= warm_steps; });
    steps.erase(steps.begin(), first_run);
    for (auto& r : steps) r.step -= warm_steps;
    return steps;
}

// The tiers a replay runs: the HBM cache and, for a table on NVMe, the DRAM cache.
placement::TierConfig tier_config(const RunChoices& run, const TablePlacement& table) {
    const json& placec = run.placement;
    placement::TierConfig tiers;
    tiers.hbm_rows = table.hbm_cache_rows;
    tiers.policy = placec["policy"].get<std::string>();
    tiers.options = placec["policy_options"].get<std::map<std::string, std::string>>();
    if (run.table == "nvme") {
        tiers.dram_rows = table.dram_cache_rows;
        tiers.dram_policy = placec["dram_policy"].get<std::string>();
        tiers.dram_options =
            placec["dram_policy_options"].get<std::map<std::string, std::string>>();
        tiers.inclusion = placec["tiers"] == "exclusive" ? placement::Inclusion::Exclusive
                                                         : placement::Inclusion::Inclusive;
    }
    tiers.profile_fraction = config::quantity(placec, "profile_fraction", units::Dim::Count);
    return tiers;
}

}  // namespace

PlacementRecords placement_replay(const ReplayInput& in) {
    const RunChoices& run = in.run;
    const TablePlacement& table = in.table;
    // Replay when a cache decides anything: an HBM cache, or a DRAM cache in front of NVMe that
    // holds some rows but not all (0 rows: every HBM miss is read from NVMe).
    const bool dram_cache = run.table == "nvme" && table.dram_cache_rows > 0 &&
                            table.dram_cache_rows < table.table_rows;
    if (!run.has_engram || run.table == "hbm" || !(table.hbm_cache_rows > 0 || dram_cache))
        return nullptr;
    const placement::TierConfig tiers = tier_config(run, table);
    const uint64_t warm_requests = run.placement["warmup_requests"].get<uint64_t>();
    const uint64_t warm_seed = run.placement["warmup_seed"].get<uint64_t>();
    const json tkey = {
        tiers.hbm_rows,    tiers.policy,       tiers.options,          tiers.dram_rows,
        tiers.dram_policy, tiers.dram_options, run.placement["tiers"], tiers.profile_fraction,
        warm_requests,     warm_seed};
    std::lock_guard lock(cache_mutex);
    auto& rr = replay_cache[in.work.lookup_key + "|" + tkey.dump()];
    if (rr) return rr;
    auto source = in.work.served->lookups(run.engram, in.work.scheduler);
    try {
        if (warm_requests == 0) {
            placement::DenseTrace trace = placement::densify(*source);
            rr = std::make_shared<const std::vector<placement::StepRecord>>(
                placement::replay(trace, tiers).steps);
        } else {
            rr = std::make_shared<const std::vector<placement::StepRecord>>(
                warm_replay(run.engram, in.workload, warm_requests, warm_seed, in.work.scheduler,
                            std::move(source), tiers));
        }
    } catch (const std::invalid_argument& e) {
        throw config::ConfigError(std::string("placement: ") + e.what());
    }
    return rr;
}

}  // namespace engramsim::sim
