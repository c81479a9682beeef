#include "executor/executor.h"

#include <cblas.h>

#include <algorithm>
#include <filesystem>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "executor/backbone.h"
#include "executor/engram_layer.h"
#include "executor/kv_cache.h"
#include "executor/prefetcher.h"
#include "executor/row_cache.h"
#include "kernels/cpu/host_fetch.h"
#include "model/capacity.h"
#include "model/config.h"
#include "model/units.h"
#include "model/resources.h"
#include "model/statistics.h"
#include "sim/placement/cache_policy.h"
#include "sim/placement/dense_trace.h"
#include "sim/timing/prefetch.h"
#include "traces/lookups.h"
#include "traces/workload.h"

namespace engramsim::executor {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t fnv1a(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xFF)) * 0x100000001b3ULL;
    return h;
}

// What a step feeds: its slices, the requests preempted while choosing it, and (with Engram)
// the rows of every Engram layer.
struct StepIn {
    uint64_t index = 0;
    bool prefill = false;
    uint64_t context_tokens = 0;
    std::vector<StepSlice> slices;
    std::vector<uint32_t> preempted;
    const std::vector<std::vector<uint64_t>>* rows = nullptr;
};

// The steps, from the hashed lookups (with Engram) or the scheduler alone (the baseline).
class StepSource {
public:
    StepSource(const Workload& work, const EngramConfig* engram, const SchedulerConfig& sc,
               const std::vector<uint32_t>& prompt_len, const std::vector<uint32_t>& output_len) {
        if (engram)
            lookups_ = hashed_lookups(*engram, work, sc);
        else
            scheduler_.emplace(sc, prompt_len, output_len);
    }
    bool next(StepIn& in) {
        if (lookups_) {
            if (!lookups_->next(batch_)) return false;
            in.index = batch_.step, in.prefill = batch_.prefill;
            in.context_tokens = batch_.context_tokens;
            in.slices = batch_.slices, in.preempted = batch_.preempted, in.rows = &batch_.rows;
            return true;
        }
        auto step = scheduler_->next();
        if (!step) return false;
        in.index = step->index, in.prefill = step->prefill;
        in.context_tokens = step->context_tokens;
        in.slices = std::move(step->slices), in.preempted = std::move(step->preempted);
        in.rows = nullptr;
        return true;
    }

private:
    std::unique_ptr<LookupSource> lookups_;
    StepBatch batch_;
    std::optional<Scheduler> scheduler_;
};

config::ConfigError refuse(const std::string& key, const std::string& why) {
    return config::ConfigError(key + ": " + why);
}

int64_t blocks_for(uint64_t tokens, int block) { return int64_t((tokens + block - 1) / block); }

}  // namespace

std::string default_table_file(uint64_t bytes) {
    return "/var/tmp/engramsim-table-" + std::to_string(bytes) + ".bin";
}

namespace {

// The table file fits the disk: its size, or what the file already there lacks of it.
void require_disk(const std::string& path, uint64_t bytes) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::absolute(path).parent_path();
    std::error_code ec;
    const uint64_t have = fs::exists(path, ec) ? fs::file_size(path, ec) : 0;
    const fs::space_info sp = fs::space(dir, ec);
    if (ec) throw refuse("sim.table", "cannot read the free space of " + dir.string() + ": " + ec.message());
    if (bytes > have && bytes - have > sp.available)
        throw refuse("sim.table", "the table file " + path + " needs " + std::to_string(bytes / 1e9) +
                                      " GB, more than the " + std::to_string(sp.available / 1e9) +
                                      " GB free on its disk (--table-file elsewhere)");
}

}  // namespace

namespace {

// The DRAM cache in front of a table file: the rows of placement.dram_capacity (with no placement
// section, "all": the whole table). 0 for a table in DRAM.
uint64_t dram_cache_rows(const nlohmann::json& cfg, const EngramConfig& engram, bool on_disk) {
    if (!on_disk) return 0;
    const std::string text = cfg.contains("placement")
                                 ? cfg["placement"].value("dram_capacity", std::string("all"))
                                 : std::string("all");
    const LookupLayout layout = lookup_layout(engram);
    return capacity::rows(capacity::parse(text), layout.row_bytes, layout.total_rows, text);
}

// The caches the executor builds: none in device memory (it has none), and in front of a table
// file a DRAM cache smaller than the table, kept by an online policy from a cold start.
void check_cache(const nlohmann::json& cfg, const EngramConfig& engram, bool on_disk) {
    const nlohmann::json place = cfg.value("placement", nlohmann::json::object());
    const std::string hbm = place.value("hbm_capacity", std::string("0"));
    if (capacity::rows(capacity::parse(hbm), lookup_layout(engram).row_bytes,
                       lookup_layout(engram).total_rows, hbm) > 0)
        throw refuse("placement.hbm_capacity", "the executor computes on the host CPU, with no "
                                               "device memory to cache rows in (0), not \"" + hbm + "\"");
    const uint64_t rows = dram_cache_rows(cfg, engram, on_disk);
    if (!on_disk || rows == 0) return;
    if (rows >= lookup_layout(engram).total_rows)
        throw refuse("placement.dram_capacity",
                     "the whole table cached in DRAM is sim.table host-dram; in front of the "
                     "table file the executor builds a cache smaller than the table (" +
                         std::to_string(lookup_layout(engram).total_rows) + " rows), not \"" +
                         place.value("dram_capacity", std::string("all")) + "\"");
    const std::string policy = place.value("dram_policy", std::string("lru"));
    const placement::PolicyInfo* info_p = nullptr;
    try {
        info_p = &placement::policy_info(policy);
    } catch (const placement::PolicyError& e) {
        throw refuse("placement.dram_policy", e.what());
    }
    const placement::PolicyInfo& info = *info_p;
    if (info.needs_next_use || policy == "static")
        throw refuse("placement.dram_policy", "the executor's cache decides online, from the "
                                              "past; \"" + policy + "\" needs the future or a "
                                              "profile of it");
    const auto options = place.value("dram_policy_options", nlohmann::json::object());
    if (options.contains("lookahead"))
        throw refuse("placement.dram_policy_options.lookahead",
                     "the executor's cache decides online, without a look ahead");
    if (place.value("warmup_requests", uint64_t(0)) > 0)
        throw refuse("placement.warmup_requests",
                     "the executor's cache starts cold (0), not warmed by another workload");
}

// What the executor cannot serve, refused before anything is allocated, naming the key.
void check_servable(const nlohmann::json& cfg, const BackboneShape& shape,
                    const EngramConfig& engram, bool with_engram) {
    const auto& simc = cfg.at("sim");
    const std::string table = simc.at("table").get<std::string>();
    const std::string mechanism = simc.at("mechanism").get<std::string>();
    const bool on_disk = table == "nvme";
    if (with_engram && table != "host-dram" && !on_disk)
        throw refuse("sim.table", "the executor serves the table from host DRAM (host-dram) or a "
                                  "file on disk (nvme), not \"" + table + "\"");
    if (with_engram && mechanism != (on_disk ? "nvme" : "cpu-gather"))
        throw refuse("sim.mechanism", std::string("the executor fetches a table in ") +
                                          (on_disk ? "a file with nvme" : "DRAM with cpu-gather") +
                                          ", not \"" + mechanism + "\"");
    if (with_engram) check_cache(cfg, engram, on_disk);
    if (sim::PrefetchSchedule::parse(simc.at("schedule").get<std::string>()).free())
        throw refuse("sim.schedule", "oracle is a bound, not something an engine can run");
    if (with_engram && engram.hc_mult != 1)
        throw refuse("engram.hc_mult", "the executor serves hc_mult 1 (no mHC), not " +
                                           std::to_string(engram.hc_mult));
    if (with_engram && engram.dtype != TableDtype::Bf16)
        throw refuse("engram.dtype", std::string("the executor serves bf16 tables, not ") +
                                         to_string(engram.dtype));
    if (shape.mla || shape.moe || shape.hc_mult != 1)
        throw refuse("backbone", "the executor serves dense GQA backbones without mHC (" +
                                     shape.name + " is not one)");
    for (int l : engram.layer_ids)
        if (l >= shape.layers)
            throw refuse("engram.layer_ids", "layer " + std::to_string(l) + " past the backbone's " +
                                                 std::to_string(shape.layers) + " layers");
}

}  // namespace

namespace {

// sim.num_kv_blocks, or with -1 enough blocks for every request of these lengths at once.
int64_t kv_blocks(const nlohmann::json& simc, const std::vector<uint32_t>& prompt_len,
                  const std::vector<uint32_t>& output_len) {
    const int64_t n = simc.at("num_kv_blocks").get<int64_t>();
    if (n >= 0) return n;
    int64_t sum = 0;
    const int block = simc.at("kv_block_size").get<int>();
    for (size_t i = 0; i < prompt_len.size(); ++i)
        sum += blocks_for(prompt_len[i] + output_len[i], block);
    return sum;
}

}  // namespace

int64_t kv_blocks(const nlohmann::json& cfg) {
    std::vector<uint32_t> prompt_len, output_len;
    if (cfg.at("sim").at("num_kv_blocks").get<int64_t>() < 0)
        workload_lengths(cfg.at("workload"), prompt_len, output_len);
    return kv_blocks(cfg.at("sim"), prompt_len, output_len);
}

ExecuteResult execute(const nlohmann::json& cfg, const ExecuteOptions& opt) {
    const auto& simc = cfg.at("sim");
    const BackboneShape shape = BackboneShape::from_json(cfg.at("backbone"));
    const EngramConfig engram = EngramConfig::from_json(cfg.at("engram"));
    const bool with_engram = opt.engram && !engram.layer_ids.empty();
    const bool on_disk = simc.at("table") == "nvme";
    check_servable(cfg, shape, engram, with_engram);
    const sim::PrefetchSchedule schedule =
        sim::PrefetchSchedule::parse(simc.at("schedule").get<std::string>());

    // The steps: the scheduler's, with the config's limits and KV cache.
    const Workload work = make_workload(cfg.at("workload"));
    std::vector<uint32_t> prompt_len, output_len;
    request_lengths(work, prompt_len, output_len);
    SchedulerConfig sc{.max_num_seqs = simc.at("max_num_seqs").get<int>(),
                       .max_num_batched_tokens = simc.at("max_num_batched_tokens").get<int>(),
                       .kv_block_size = simc.at("kv_block_size").get<int>(),
                       .num_kv_blocks = kv_blocks(simc, prompt_len, output_len)};
    const KvShape kv{.layers = shape.layers, .n_kv_heads = shape.n_kv_heads,
                     .head_dim = shape.head_dim, .block_size = sc.kv_block_size,
                     .num_blocks = sc.num_kv_blocks};

    // Memory, before anything is allocated: weights, KV cache, table.
    const LookupLayout layout = lookup_layout(engram);
    const uint64_t table_bytes = with_engram ? uint64_t(layout.total_rows * layout.row_bytes) : 0;
    const double weights = 4.0 * shape.params();
    const uint64_t cache_rows = with_engram ? dram_cache_rows(cfg, engram, on_disk) : 0;
    const double in_dram = on_disk ? double(cache_rows) * layout.row_bytes : double(table_bytes);
    resources::require_memory(weights + double(kv.bytes()) + in_dram, "execute",
                              "float32 weights " + std::to_string(weights / 1e9) +
                                  " GB, KV cache " + std::to_string(kv.bytes() / 1e9) +
                                  " GB, Engram table " + (on_disk ? "cache " : "") +
                                  std::to_string(in_dram / 1e9) + " GB");
    const std::string table_file = opt.table_file.empty() ? default_table_file(table_bytes) : opt.table_file;
    if (with_engram && on_disk) require_disk(table_file, table_bytes);

    ExecuteResult res;
    const auto setup0 = Clock::now();
    const int threads = opt.compute_threads > 0 ? opt.compute_threads
                                                : int(std::max(1u, std::thread::hardware_concurrency()));
    kernels::ThreadTeam team(threads);
    Backbone backbone(shape, opt.seed);
    PagedKvCache cache(kv);
    std::unique_ptr<kernels::HostTable> host_table;
    std::unique_ptr<kernels::BlockFile> table_on_disk;
    std::unique_ptr<placement::DenseTrace> trace;  // the dense ids the cache's policy indexes by
    std::unique_ptr<DramRowCache> row_cache;
    std::vector<std::unique_ptr<EngramModule>> modules(shape.layers);
    std::vector<std::unique_ptr<Prefetcher>> fetchers(shape.layers);
    std::vector<int> engram_index(shape.layers, -1);
    const int gather_threads = simc.at("gather_threads").get<int>();
    const int queue_depth = simc.at("nvme_queue_depth").get<int>();
    const size_t io_bytes = size_t(config::quantity(simc, "nvme_io_size", units::Dim::Bytes));
    if (with_engram) {
        if (on_disk)
            table_on_disk = std::make_unique<kernels::BlockFile>(
                table_file, (table_bytes + io_bytes - 1) / io_bytes * io_bytes, io_bytes);
        if (cache_rows > 0) {
            auto lookups = hashed_lookups(engram, work, sc);
            trace = std::make_unique<placement::DenseTrace>(placement::densify(*lookups));
            const auto& place = cfg.at("placement");
            row_cache = std::make_unique<DramRowCache>(
                *trace, cache_rows, size_t(layout.row_bytes), place.at("dram_policy").get<std::string>(),
                place.at("dram_policy_options").get<std::map<std::string, std::string>>());
        }
        if (!on_disk)
            host_table = std::make_unique<kernels::HostTable>(table_bytes, size_t(layout.row_bytes));
        for (size_t i = 0; i < engram.layer_ids.size(); ++i) {
            const int l = engram.layer_ids[i];
            engram_index[l] = int(i);
            modules[l] = std::make_unique<EngramModule>(engram, shape.hidden, opt.seed + 7919 * (l + 1));
            fetchers[l] = on_disk ? std::make_unique<Prefetcher>(*table_on_disk, size_t(layout.row_bytes),
                                                                 queue_depth, row_cache.get())
                                  : std::make_unique<Prefetcher>(*host_table, gather_threads);
        }
    }
    res.setup_s = std::chrono::duration<double>(Clock::now() - setup0).count();
    res.num_kv_blocks = sc.num_kv_blocks;
    res.table_bytes = table_bytes;
    res.weight_bytes = backbone.weight_bytes();
    res.kv_cache_bytes = kv.bytes();
    res.compute_threads = threads;
    res.gather_threads = with_engram ? (on_disk ? queue_depth : gather_threads) : 0;
    res.table = with_engram ? (on_disk ? "file " + table_file + " (direct I/O)" : std::string("host DRAM")) : "";
    if (row_cache) {
        res.dram_cache_rows = cache_rows;
        res.table += ", a DRAM cache of " + std::to_string(cache_rows) + " rows (" +
                     cfg["placement"]["dram_policy"].get<std::string>() + ") in front";
    }
    res.blas_threads = openblas_get_num_threads();
    res.schedule = with_engram ? schedule.name() : "none (no Engram)";
    res.requests = prompt_len.size();
    for (size_t i = 0; i < prompt_len.size(); ++i)
        res.prompt_tokens += prompt_len[i], res.output_tokens += output_len[i];
    res.output_len = output_len;
    res.argmax.resize(prompt_len.size());
    res.first_token_s.assign(prompt_len.size(), 0);
    res.last_token_s.assign(prompt_len.size(), 0);
    res.output_digest = res.rows_digest = res.fetched_digest = 0xcbf29ce484222325ULL;

    const size_t H = size_t(shape.hidden);
    std::vector<float> h, e;
    std::vector<uint32_t> tokens;
    std::vector<uint32_t> generated(prompt_len.size(), 0);
    auto token_at = [&](uint32_t r, uint32_t pos) {
        const Request& q = work.requests[r];
        return pos < q.prompt.size() ? q.prompt[pos] : q.output[pos - q.prompt.size()];
    };

    // One forward pass over a step; `rec` gets the Engram layers' times (null: untimed warm-up).
    auto forward = [&](const StepIn& in, Clock::time_point t0, StepRecord* rec,
                       const std::function<uint32_t(uint32_t, uint32_t)>& token) {
        tokens.clear();
        std::vector<size_t> last;
        for (const StepSlice& s : in.slices) {
            if (cache.capacity(s.request) < s.first + s.count) cache.reserve(s.request, s.first + s.count);
            for (uint32_t p = s.first; p < s.first + s.count; ++p) tokens.push_back(token(s.request, p));
            last.push_back(tokens.size() - 1);
        }
        h.resize(tokens.size() * H);
        backbone.embed(tokens, h);
        auto since = [&](Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); };
        std::vector<EngramLayerRecord> recs(engram.layer_ids.size());
        auto issue = [&](int l) {
            const int i = engram_index[l];
            recs[i].layer = l;
            recs[i].issue_s = since(Clock::now());
            if (schedule.kind != sim::PrefetchSchedule::Kind::None)
                fetchers[l]->issue((*in.rows)[i], /*cached=*/rec != nullptr);
        };
        for (int l = 0; l < shape.layers; ++l) {
            if (with_engram && in.rows)
                for (int el : engram.layer_ids)
                    if (schedule.issue_layer(el) == l) issue(el);
            if (modules[l] && in.rows) {
                const int i = engram_index[l];
                const auto w0 = Clock::now();
                if (schedule.kind == sim::PrefetchSchedule::Kind::None)
                    fetchers[l]->fetch((*in.rows)[i], /*cached=*/rec != nullptr);
                else
                    fetchers[l]->wait();
                const auto w1 = Clock::now();
                const Prefetcher& f = *fetchers[l];
                recs[i].ready_s = since(f.ready());
                recs[i].stall_s = std::chrono::duration<double>(w1 - w0).count();
                recs[i].lookups = f.times().lookups, recs[i].unique_rows = f.times().unique_rows;
                recs[i].dedup_s = f.times().dedup_s, recs[i].gather_s = f.times().gather_s;
                recs[i].cache_hits = f.times().cache_hits;
                if (opt.digest_fetched_rows && rec)
                    for (uint32_t at : f.inverse())
                        for (size_t b = 0; b < size_t(layout.row_bytes); ++b)
                            res.fetched_digest =
                                (res.fetched_digest ^ f.staging()[at * size_t(layout.row_bytes) + b]) *
                                0x100000001b3ULL;
                e.resize(tokens.size() * size_t(modules[l]->d_mem()));
                widen_lookups(f.staging(), f.inverse(), modules[l]->heads(), modules[l]->row_dim(), e, team);
                modules[l]->forward(in.slices, e, h, team);
                recs[i].compute_s = std::chrono::duration<double>(Clock::now() - w1).count();
            }
            backbone.layer(l, in.slices, h, cache, team);
        }
        const std::vector<uint32_t> next = backbone.head(h, last, team);
        if (rec) {
            rec->engram = std::move(recs);
            for (size_t i = 0; i < next.size(); ++i) {
                res.output_digest = fnv1a(res.output_digest, next[i]);
                res.argmax[in.slices[i].request].push_back(next[i]);
            }
        }
    };

    // Warm-up: one untimed prefill of a request the workload does not have, then forgotten.
    if (opt.warmup_tokens > 0) {
        const uint32_t ghost = uint32_t(prompt_len.size());
        StepIn w;
        w.prefill = true;
        const int64_t room = sc.num_kv_blocks * sc.kv_block_size;
        w.slices = {{ghost, 0, uint32_t(std::min<int64_t>({opt.warmup_tokens, sc.max_num_batched_tokens, room}))}};
        std::vector<std::vector<uint64_t>> rows(engram.layer_ids.size());
        for (size_t i = 0; i < rows.size(); ++i)
            for (uint64_t k = 0; k < w.slices[0].count * uint64_t(layout.heads_per_layer); ++k)
                rows[i].push_back(layout.layer_base[i] + (k * 2654435761ULL) % layout.layer_rows[i]);
        w.rows = with_engram ? &rows : nullptr;
        forward(w, Clock::now(), nullptr, [](uint32_t, uint32_t p) { return p; });
        cache.release(ghost);
        for (auto& m : modules)
            if (m) m->release(ghost);
    }

    StepSource source(work, with_engram ? &engram : nullptr, sc, prompt_len, output_len);
    StepIn in;
    uint64_t done_tokens = 0;
    const auto t0 = Clock::now();
    for (;;) {
        const auto s0 = Clock::now();
        if (!source.next(in)) break;
        StepRecord rec;
        rec.index = in.index, rec.prefill = in.prefill, rec.context_tokens = in.context_tokens;
        rec.seqs = in.slices.size();
        for (const StepSlice& s : in.slices) rec.tokens += s.count;
        for (uint32_t r : in.preempted) {
            cache.release(r);
            for (auto& m : modules)
                if (m) m->release(r);
            ++res.preemptions;
        }
        if (in.rows)
            for (const auto& layer_rows : *in.rows)
                for (uint64_t k : layer_rows) res.rows_digest = fnv1a(res.rows_digest, k);
        rec.start_s = std::chrono::duration<double>(s0 - t0).count();
        rec.schedule_s = std::chrono::duration<double>(Clock::now() - s0).count();
        forward(in, t0, &rec, token_at);
        rec.end_s = std::chrono::duration<double>(Clock::now() - t0).count();
        for (const StepSlice& s : in.slices) {  // each sequence produced one token
            const uint32_t r = s.request;
            if (generated[r]++ == 0) res.first_token_s[r] = rec.end_s;
            ++done_tokens;
            if (generated[r] == output_len[r]) {
                res.last_token_s[r] = rec.end_s;
                cache.release(r);
                for (auto& m : modules)
                    if (m) m->release(r);
            }
        }
        res.steps.push_back(std::move(rec));
        if (opt.progress) opt.progress(res.steps.size(), done_tokens, res.output_tokens);
    }
    return res;
}

// Chrome trace events (ui.perfetto.dev): the compute thread's steps and Engram stalls and
// modules, and each Engram layer's fetch on its prefetcher's track.
void write_timeline(const ExecuteResult& r, std::ostream& f) {
    nlohmann::json ev = nlohmann::json::array();
    auto slice = [&](const std::string& name, int tid, double b, double e, nlohmann::json args) {
        ev.push_back({{"name", name}, {"ph", "X"}, {"pid", 1}, {"tid", tid}, {"ts", b * 1e6},
                      {"dur", (e - b) * 1e6}, {"args", std::move(args)}});
    };
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 1},
                  {"args", {{"name", "compute (executor)"}}}});
    for (const auto& s : r.steps) {
        slice(std::string(s.prefill ? "prefill" : "decode") + " step " + std::to_string(s.index), 1,
              s.start_s, s.end_s, {{"tokens", s.tokens}, {"seqs", s.seqs}});
        for (const auto& e : s.engram) {
            const int tid = 10 + e.layer;
            slice("fetch layer " + std::to_string(e.layer), tid, e.issue_s, e.ready_s,
                  {{"lookups", e.lookups}, {"unique_rows", e.unique_rows}});
        }
    }
    f << nlohmann::json{{"traceEvents", ev}, {"displayTimeUnit", "ms"}}.dump() << '\n';
}

ExecuteMetrics metrics_of(const ExecuteResult& r) {
    ExecuteMetrics m;
    m.makespan_s = r.makespan_s();
    m.throughput_tok_per_s = m.makespan_s > 0 ? double(r.output_tokens) / m.makespan_s : 0;
    std::vector<double> ttft, tpot;  // every request arrives at t = 0 (offline benchmark)
    for (size_t i = 0; i < r.first_token_s.size(); ++i) {
        ttft.push_back(r.first_token_s[i]);
        if (r.output_len[i] > 1)
            tpot.push_back((r.last_token_s[i] - r.first_token_s[i]) / (r.output_len[i] - 1));
    }
    // The definitions of `engramsim run` (sim/timing/results.cpp): mean, and nearest-rank p50 / p99.
    m.ttft_mean_s = mean(ttft), m.ttft_p50_s = nearest_rank_quantile(ttft, 0.5);
    m.ttft_p99_s = nearest_rank_quantile(ttft, 0.99);
    m.tpot_mean_s = mean(tpot), m.tpot_p50_s = nearest_rank_quantile(tpot, 0.5);
    m.tpot_p99_s = nearest_rank_quantile(tpot, 0.99);
    m.steps = r.steps.size();
    double step_sum = 0;
    for (const StepRecord& s : r.steps) {
        m.prefill_steps += s.prefill;
        m.schedule_s += s.schedule_s;
        step_sum += s.end_s - s.start_s;
        for (const EngramLayerRecord& e : s.engram) {
            m.stall_s += e.stall_s;
            m.fetch_s += e.ready_s - e.issue_s;
            m.engram_compute_s += e.compute_s;
            m.lookups += e.lookups, m.unique_rows += e.unique_rows;
            m.cache_hits += e.cache_hits;
        }
    }
    m.mean_step_s = m.steps ? step_sum / double(m.steps) : 0;
    return m;
}

}  // namespace engramsim::executor
