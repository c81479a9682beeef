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
#include "sim/timing/engine.h"
#include "sim/timing/plan_stages.h"
#include "sim/timing/prefetch.h"
#include "traces/lookups.h"
#include "traces/workload.h"

namespace engramsim::executor {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0, Clock::time_point t = Clock::now()) {
    return std::chrono::duration<double>(t - t0).count();
}

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
    // None of the table cached, or all of it (then served from DRAM, as the simulator times it):
    // no policy decides anything.
    if (!on_disk || rows == 0 || rows >= lookup_layout(engram).total_rows) return;
    const std::string policy = place.value("dram_policy", std::string("lru"));
    const auto options = place.value("dram_policy_options", std::map<std::string, std::string>{});
    bool online = false;
    try {
        online = placement::decides_online(policy, options);
    } catch (const placement::PolicyError& e) {
        throw refuse("placement.dram_policy", e.what());
    }
    if (!online)
        throw refuse(options.count("lookahead") ? "placement.dram_policy_options.lookahead"
                                                : "placement.dram_policy",
                     "the executor's cache decides online, from the past; \"" + policy +
                         "\" with these options needs the future or a profile of it");
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
    // And whatever else the simulator refuses of these choices (a layer-ahead:K past the last
    // layer, which would never issue): the engine serves what the simulator predicts.
    (void)sim::resolve_choices(cfg);
}



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

namespace {

// What a run needs, decided before anything is allocated: the servable choices, the steps'
// limits and KV cache, the memory and the disk (refused with the key and the sizes).
struct RunPlan {
    BackboneShape shape;
    EngramConfig engram;
    bool with_engram = false, on_disk = false;
    sim::PrefetchSchedule schedule;
    Workload work;
    std::vector<uint32_t> prompt_len, output_len;
    SchedulerConfig sc;
    KvShape kv;
    LookupLayout layout;
    uint64_t table_bytes = 0, cache_rows = 0;
    std::string table_file;
    double memory_bytes = 0;  // weights, KV cache and the table (or its DRAM cache)
    std::string memory_what;
};

RunPlan plan_run(const nlohmann::json& cfg, const ExecuteOptions& opt) {
    const auto& simc = cfg.at("sim");
    RunPlan p;
    p.shape = BackboneShape::from_json(cfg.at("backbone"));
    if (!cfg.contains("engram") || !cfg["engram"].is_object())
        throw refuse("engram", "missing: the executor serves an Engram run beside the same steps "
                               "without it, so the config needs an Engram section (a preset such "
                               "as \"demo-v1\", or an object)");
    p.engram = EngramConfig::from_json(cfg.at("engram"));
    p.with_engram = opt.engram && !p.engram.layer_ids.empty();
    // sim.table nvme with the whole table cached in DRAM (placement.dram_capacity "all", the
    // default): every row is gathered from DRAM, as the simulator's nvme mechanism times it, so
    // the table is held in DRAM (loaded before the run) and no file is read.
    const bool nvme = simc.at("table") == "nvme";
    const uint64_t cached = nvme ? dram_cache_rows(cfg, p.engram, true) : 0;
    p.on_disk = nvme && cached < lookup_layout(p.engram).total_rows;
    check_servable(cfg, p.shape, p.engram, p.with_engram);
    p.schedule = sim::PrefetchSchedule::parse(simc.at("schedule").get<std::string>());

    // The steps: the scheduler's, with the config's limits and KV cache.
    p.work = make_workload(cfg.at("workload"));
    request_lengths(p.work, p.prompt_len, p.output_len);
    // The engine's scheduler (sim.engine): nano-vLLM's prefill-first steps or vLLM V1's chunked
    // prefill. The loop itself is synchronous either way (the host's scheduling is timed).
    p.sc = sim::engine(simc.at("engine").get<std::string>())
               .scheduler_config(simc, kv_blocks(simc, p.prompt_len, p.output_len));
    p.kv = {.layers = p.shape.layers, .n_kv_heads = p.shape.n_kv_heads,
            .head_dim = p.shape.head_dim, .block_size = p.sc.kv_block_size,
            .num_blocks = p.sc.num_kv_blocks};

    // Memory, before anything is allocated: weights, KV cache, table (or its DRAM cache).
    p.layout = lookup_layout(p.engram);
    p.table_bytes = p.with_engram ? uint64_t(p.layout.total_rows * p.layout.row_bytes) : 0;
    const double weights = 4.0 * p.shape.params();
    p.cache_rows = p.with_engram && p.on_disk ? cached : 0;
    const double in_dram =
        p.on_disk ? double(p.cache_rows) * p.layout.row_bytes : double(p.table_bytes);
    p.memory_bytes = weights + double(p.kv.bytes()) + in_dram;
    p.memory_what = "float32 weights " + std::to_string(weights / 1e9) + " GB, KV cache " +
                    std::to_string(p.kv.bytes() / 1e9) + " GB, Engram table " +
                    (p.on_disk ? "cache " : "") + std::to_string(in_dram / 1e9) + " GB";
    p.table_file = opt.table_file.empty() ? default_table_file(p.table_bytes) : opt.table_file;
    if (p.with_engram && p.on_disk) require_disk(p.table_file, p.table_bytes);
    return p;
}

// The two runs execute_interleaved holds at once (the Engram run, or with `control` a second
// baseline, and the baseline), planned and their memory together checked.
std::pair<RunPlan, RunPlan> plan_interleaved(const nlohmann::json& cfg, ExecuteOptions& with,
                                             ExecuteOptions& without, bool control) {
    with.engram = !control, without.engram = false;
    without.progress = nullptr;  // the Engram run reports; both serve the same steps
    RunPlan a = plan_run(cfg, with), b = plan_run(cfg, without);
    resources::require_memory(a.memory_bytes + b.memory_bytes, "execute (interleaved)",
                              "Engram run: " + a.memory_what + "; baseline: " + b.memory_what);
    return {std::move(a), std::move(b)};
}

}  // namespace

void check_config(const nlohmann::json& config, const ExecuteOptions& options) {
    ExecuteOptions with = options, without = options;
    (void)plan_interleaved(config, with, without, /*control=*/false);
}

uint64_t dram_gather_bytes(const nlohmann::json& config) {
    if (!config.contains("engram") || !config["engram"].is_object()) return 0;
    const EngramConfig engram = EngramConfig::from_json(config["engram"]);
    const LookupLayout layout = lookup_layout(engram);
    const bool nvme = config.at("sim").at("table") == "nvme";
    const uint64_t rows = nvme ? dram_cache_rows(config, engram, true) : uint64_t(layout.total_rows);
    return rows * uint64_t(layout.row_bytes);
}

namespace {

using TokenAt = std::function<uint32_t(uint32_t, uint32_t)>;

// One run of the engine: the model, the KV cache and the Engram tables built, then the steps
// served one by one.
class ServingRun {
public:
    ServingRun(const nlohmann::json& cfg, const ExecuteOptions& opt, RunPlan plan)
        : cfg_(cfg), opt_(opt), p_(std::move(plan)),
          team_(opt.compute_threads > 0 ? opt.compute_threads
                                        : int(std::max(1u, std::thread::hardware_concurrency()))),
          backbone_(p_.shape, opt.seed), cache_(p_.kv), modules_(size_t(p_.shape.layers)),
          fetchers_(size_t(p_.shape.layers)), engram_index_(size_t(p_.shape.layers), -1) {
        const auto setup0 = Clock::now();
        if (p_.with_engram) build_engram();
        res_.setup_s = since(setup0);
        describe();
    }

    ExecuteResult run() {
        begin();
        while (step()) {
        }
        return finish();
    }

    // The run served step by step (run(), or two runs interleaved): begin() warms up and starts
    // the clock, step() serves one step (false when none is left), finish() hands the result.
    void begin() {
        if (opt_.warmup_tokens != 0) warm_up();
        source_ = std::make_unique<StepSource>(p_.work, p_.with_engram ? &p_.engram : nullptr,
                                               p_.sc, p_.prompt_len, p_.output_len);
        t0_ = Clock::now();
    }

    // The run's clock stops between pause() and resume(): what another run does then is not this
    // run's time.
    void pause() { paused_at_ = Clock::now(); }
    void resume() { t0_ += Clock::now() - paused_at_; }

    bool step() {
        const auto s0 = Clock::now();
        if (!source_->next(in_)) return false;
        const StepIn& in = in_;
        StepRecord rec;
        rec.index = in.index, rec.prefill = in.prefill, rec.context_tokens = in.context_tokens;
        rec.seqs = in.slices.size();
        for (const StepSlice& s : in.slices) rec.tokens += s.count;
        for (uint32_t r : in.preempted) release(r), ++res_.preemptions;
        if (in.rows)
            for (const auto& layer_rows : *in.rows)
                for (uint64_t k : layer_rows) res_.rows_digest = fnv1a(res_.rows_digest, k);
        rec.start_s = since(t0_, s0);
        rec.schedule_s = since(s0);
        forward(in, t0_, &rec, [&](uint32_t r, uint32_t pos) {
            const Request& q = p_.work.requests[r];
            return pos < q.prompt.size() ? q.prompt[pos] : q.output[pos - q.prompt.size()];
        });
        rec.end_s = since(t0_);
        for (const StepSlice& s : in.slices) {  // each sampling slice produced one token
            if (!s.sample) continue;             // a prefill chunk short of its prompt's end
            const uint32_t r = s.request;
            if (generated_[r]++ == 0) res_.first_token_s[r] = rec.end_s;
            ++done_tokens_;
            if (generated_[r] == p_.output_len[r]) {
                res_.last_token_s[r] = rec.end_s;
                release(r);
            }
        }
        res_.steps.push_back(std::move(rec));
        if (opt_.progress) opt_.progress(res_.steps.size(), done_tokens_, res_.output_tokens);
        return true;
    }

    ExecuteResult finish() { return std::move(res_); }

private:
    // The table (in DRAM, or a file with its DRAM cache), and each Engram layer's module and
    // prefetcher.
    void build_engram() {
        const auto& simc = cfg_.at("sim");
        const size_t row_bytes = size_t(p_.layout.row_bytes);
        const size_t io_bytes = size_t(config::quantity(simc, "nvme_io_size", units::Dim::Bytes));
        if (p_.on_disk)
            table_on_disk_ = std::make_unique<kernels::BlockFile>(
                p_.table_file, (p_.table_bytes + io_bytes - 1) / io_bytes * io_bytes, io_bytes);
        else
            host_table_ = std::make_unique<kernels::HostTable>(p_.table_bytes, row_bytes);
        if (p_.cache_rows > 0) {
            auto lookups = hashed_lookups(p_.engram, p_.work, p_.sc);
            trace_ = std::make_unique<placement::DenseTrace>(placement::densify(*lookups));
            const auto& place = cfg_.at("placement");
            row_cache_ = std::make_unique<DramRowCache>(
                *trace_, p_.cache_rows, row_bytes, place.at("dram_policy").get<std::string>(),
                place.at("dram_policy_options").get<std::map<std::string, std::string>>());
        }
        for (size_t i = 0; i < p_.engram.layer_ids.size(); ++i) {
            const int l = p_.engram.layer_ids[i];
            engram_index_[size_t(l)] = int(i);
            modules_[size_t(l)] = std::make_unique<EngramModule>(p_.engram, p_.shape.hidden,
                                                                 opt_.seed + 7919 * (l + 1));
            fetchers_[size_t(l)] =
                p_.on_disk ? std::make_unique<Prefetcher>(*table_on_disk_, row_bytes,
                                                          simc.at("nvme_queue_depth").get<int>(),
                                                          row_cache_.get())
                           : std::make_unique<Prefetcher>(
                                 *host_table_, simc.at("gather_threads").get<int>(),
                                 /*background=*/p_.schedule.kind != sim::PrefetchSchedule::Kind::None);
        }
    }

    // The result's description of the run, before it starts.
    void describe() {
        const auto& simc = cfg_.at("sim");
        res_.num_kv_blocks = p_.sc.num_kv_blocks;
        res_.table_bytes = p_.table_bytes;
        res_.weight_bytes = backbone_.weight_bytes();
        res_.kv_cache_bytes = p_.kv.bytes();
        res_.compute_threads = team_.threads();
        res_.gather_threads = !p_.with_engram ? 0
                              : p_.on_disk    ? simc.at("nvme_queue_depth").get<int>()
                                              : simc.at("gather_threads").get<int>();
        const bool all_cached = cfg_.at("sim").at("table") == "nvme";  // and not on disk
        res_.table = !p_.with_engram ? ""
                     : p_.on_disk    ? "file " + p_.table_file + " (direct I/O)"
                     : all_cached    ? std::string("host DRAM (sim.table nvme with every row cached: "
                                                   "placement.dram_capacity)")
                                     : std::string("host DRAM");
        if (row_cache_) {
            res_.dram_cache_rows = p_.cache_rows;
            res_.table += ", a DRAM cache of " + std::to_string(p_.cache_rows) + " rows (" +
                          cfg_["placement"]["dram_policy"].get<std::string>() + ") in front";
        }
        res_.blas_threads = openblas_get_num_threads();
        res_.schedule = p_.with_engram ? p_.schedule.name() : "none (no Engram)";
        res_.requests = p_.prompt_len.size();
        for (size_t i = 0; i < p_.prompt_len.size(); ++i)
            res_.prompt_tokens += p_.prompt_len[i], res_.output_tokens += p_.output_len[i];
        res_.output_len = p_.output_len;
        res_.argmax.resize(p_.prompt_len.size());
        res_.first_token_s.assign(p_.prompt_len.size(), 0);
        res_.last_token_s.assign(p_.prompt_len.size(), 0);
        res_.output_digest = res_.rows_digest = res_.fetched_digest = 0xcbf29ce484222325ULL;
        generated_.assign(p_.prompt_len.size(), 0);
    }

    // A request's KV cache and convolution histories, freed.
    void release(uint32_t r) {
        cache_.release(r);
        for (auto& m : modules_)
            if (m) m->release(r);
    }

    // One untimed prefill of requests the workload does not have (their rows bypass the DRAM
    // cache, which the simulator's replay never shows them), then forgotten. By default it has
    // the shape of the run's largest step (ExecuteOptions::warmup_tokens): without it the first
    // large prefill paid for first touching the step's buffers (a 4,005-token prefill of
    // cpu-small: its Engram module 60-72 ms against 42 ms warm, its fetch 17 ms against 3 ms),
    // a cost of starting up that the simulator rightly does not model.
    void warm_up() {
        const uint32_t ghost = uint32_t(p_.prompt_len.size());
        const int64_t room = p_.sc.num_kv_blocks * p_.sc.kv_block_size;
        std::vector<uint32_t> lengths;
        if (opt_.warmup_tokens < 0) {
            Scheduler sched(p_.sc, p_.prompt_len, p_.output_len);  // the steps, no hashing
            uint64_t most = 0;
            while (auto st = sched.next()) {
                uint64_t tokens = 0;
                for (const StepSlice& s : st->slices) tokens += s.count;
                if (tokens <= most) continue;
                most = tokens, lengths.clear();
                for (const StepSlice& s : st->slices) lengths.push_back(s.count);
            }
        } else {
            lengths = {uint32_t(std::min<int64_t>(
                {opt_.warmup_tokens, p_.sc.max_num_batched_tokens, room}))};
        }
        StepIn w;
        w.prefill = true;
        for (size_t j = 0; j < lengths.size(); ++j)
            w.slices.push_back({ghost + uint32_t(j), 0, lengths[j]});
        uint64_t tokens = 0;
        for (uint32_t n : lengths) tokens += n;
        if (tokens == 0) return;
        res_.warmup_tokens = tokens, res_.warmup_sequences = lengths.size();
        std::vector<std::vector<uint64_t>> rows(p_.engram.layer_ids.size());
        for (size_t i = 0; i < rows.size(); ++i)
            for (uint64_t k = 0; k < tokens * uint64_t(p_.layout.heads_per_layer); ++k)
                rows[i].push_back(p_.layout.layer_base[i] +
                                  (k * 2654435761ULL) % p_.layout.layer_rows[i]);
        w.rows = p_.with_engram ? &rows : nullptr;
        forward(w, Clock::now(), nullptr, [](uint32_t, uint32_t p) { return p; });
        for (size_t j = 0; j < lengths.size(); ++j) release(ghost + uint32_t(j));
    }

    // One forward pass over a step; `rec` gets the Engram layers' times (null: untimed warm-up).
    void forward(const StepIn& in, Clock::time_point t0, StepRecord* rec, const TokenAt& token) {
        tokens_.clear();
        std::vector<size_t> last;
        for (const StepSlice& s : in.slices) {
            if (cache_.capacity(s.request) < s.first + s.count)
                cache_.reserve(s.request, s.first + s.count);
            for (uint32_t p = s.first; p < s.first + s.count; ++p)
                tokens_.push_back(token(s.request, p));
            last.push_back(tokens_.size() - 1);
        }
        h_.resize(tokens_.size() * size_t(p_.shape.hidden));
        backbone_.embed(tokens_, h_);
        std::vector<EngramLayerRecord> recs(p_.with_engram ? p_.engram.layer_ids.size() : 0);
        const bool timed = rec != nullptr;
        for (int l = 0; l < p_.shape.layers; ++l) {
            if (p_.with_engram && in.rows)
                for (int el : p_.engram.layer_ids)
                    if (p_.schedule.issue_layer(el) == l) issue(el, in, t0, timed, recs);
            if (modules_[size_t(l)] && in.rows) engram_layer(l, in, t0, timed, recs);
            backbone_.layer(l, in.slices, h_, cache_, team_);
        }
        const std::vector<uint32_t> next = backbone_.head(h_, last, team_);
        if (!rec) return;
        rec->engram = std::move(recs);
        for (size_t i = 0; i < next.size(); ++i) {
            if (!in.slices[i].sample) continue;  // a prefill chunk's token is discarded, as vLLM does
            res_.output_digest = fnv1a(res_.output_digest, next[i]);
            res_.argmax[in.slices[i].request].push_back(next[i]);
        }
    }

    // Engram layer l's fetch handed to its prefetcher (layer-ahead schedules).
    void issue(int l, const StepIn& in, Clock::time_point t0, bool timed,
               std::vector<EngramLayerRecord>& recs) {
        const int i = engram_index_[size_t(l)];
        recs[size_t(i)].layer = l;
        recs[size_t(i)].issue_s = since(t0);
        if (p_.schedule.kind != sim::PrefetchSchedule::Kind::None)
            fetchers_[size_t(l)]->issue((*in.rows)[size_t(i)], /*cached=*/timed);
    }

    // Engram layer l: its rows (fetched now, or waited for), widened into memory vectors, and
    // its module added into the hidden states.
    void engram_layer(int l, const StepIn& in, Clock::time_point t0, bool timed,
                      std::vector<EngramLayerRecord>& recs) {
        const int i = engram_index_[size_t(l)];
        EngramLayerRecord& r = recs[size_t(i)];
        Prefetcher& f = *fetchers_[size_t(l)];
        const auto w0 = Clock::now();
        if (p_.schedule.kind == sim::PrefetchSchedule::Kind::None)
            f.fetch((*in.rows)[size_t(i)], /*cached=*/timed);
        else
            f.wait();
        const auto w1 = Clock::now();
        r.ready_s = since(t0, f.ready());
        r.stall_s = since(w0, w1);
        r.lookups = f.times().lookups, r.unique_rows = f.times().unique_rows;
        r.dedup_s = f.times().dedup_s, r.gather_s = f.times().gather_s;
        r.cache_hits = f.times().cache_hits;
        if (opt_.digest_fetched_rows && timed) digest_fetched(f);
        EngramModule& m = *modules_[size_t(l)];
        e_.resize(tokens_.size() * size_t(m.d_mem()));
        widen_lookups(f.staging(), f.inverse(), m.heads(), m.row_dim(), e_, team_);
        m.forward(in.slices, e_, h_, team_);
        r.compute_s = since(w1);
    }

    // Every looked-up row's bytes, in lookup order, into the result's digest.
    void digest_fetched(const Prefetcher& f) {
        const size_t rb = size_t(p_.layout.row_bytes);
        for (uint32_t at : f.inverse())
            for (size_t b = 0; b < rb; ++b)
                res_.fetched_digest =
                    (res_.fetched_digest ^ f.staging()[at * rb + b]) * 0x100000001b3ULL;
    }

    const nlohmann::json& cfg_;
    const ExecuteOptions& opt_;
    RunPlan p_;
    kernels::ThreadTeam team_;
    Backbone backbone_;
    PagedKvCache cache_;
    std::unique_ptr<kernels::HostTable> host_table_;
    std::unique_ptr<kernels::BlockFile> table_on_disk_;
    std::unique_ptr<placement::DenseTrace> trace_;  // the dense ids the cache's policy indexes by
    std::unique_ptr<DramRowCache> row_cache_;
    std::vector<std::unique_ptr<EngramModule>> modules_;  // per layer (null: no Engram there)
    std::vector<std::unique_ptr<Prefetcher>> fetchers_;
    std::vector<int> engram_index_;  // per layer: its index among the Engram layers, or -1
    ExecuteResult res_;
    std::vector<float> h_, e_;
    std::vector<uint32_t> tokens_;
    std::vector<uint32_t> generated_;
    std::unique_ptr<StepSource> source_;
    StepIn in_;
    Clock::time_point t0_, paused_at_;
    uint64_t done_tokens_ = 0;
};

}  // namespace

ExecuteResult execute(const nlohmann::json& cfg, const ExecuteOptions& opt) {
    RunPlan plan = plan_run(cfg, opt);
    resources::require_memory(plan.memory_bytes, "execute", plan.memory_what);
    ServingRun run(cfg, opt, std::move(plan));
    return run.run();
}

InterleavedResult execute_interleaved(const nlohmann::json& cfg, const ExecuteOptions& opt,
                                      bool control) {
    ExecuteOptions with = opt, without = opt;
    auto [a, b] = plan_interleaved(cfg, with, without, control);
    ServingRun engram(cfg, with, std::move(a));
    ServingRun baseline(cfg, without, std::move(b));
    engram.begin(), engram.pause();
    baseline.begin(), baseline.pause();
    // One step of each per round, the first of the round alternating (A B, B A, ...), each
    // run's clock stopped while the other serves.
    auto step = [](ServingRun& r) {
        r.resume();
        const bool more = r.step();
        r.pause();
        return more;
    };
    bool more_a = true, more_b = true;
    for (uint64_t round = 0; more_a || more_b; ++round) {
        ServingRun& first = round % 2 == 0 ? engram : baseline;
        ServingRun& second = round % 2 == 0 ? baseline : engram;
        bool& more_first = round % 2 == 0 ? more_a : more_b;
        bool& more_second = round % 2 == 0 ? more_b : more_a;
        if (more_first) more_first = step(first);
        if (more_second) more_second = step(second);
    }
    return {engram.finish(), baseline.finish()};
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
