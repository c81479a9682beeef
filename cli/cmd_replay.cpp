// engramsim replay: placement replay of a lookup trace over HBM cache / DRAM / SSD tiers
// (sim/placement), with hit ratios per tier and layer, miss-ratio curves, per-step records.
// engramsim trace export: a trace's request sequence in libCacheSim's formats (oracleGeneral,
// csv) or as plain little-endian uint64 ids, for exact comparison with other cache simulators.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "model/capacity.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "sim/placement/mrc.h"
#include "sim/placement/replay.h"
#include "traces/etr.h"
#include "traces/lookups.h"
#include "build_info/build_info.h"
#include "traces/workload.h"

namespace engramsim::cli {

namespace {

using namespace engramsim::placement;
using nlohmann::json;

// Where the lookups come from: a trace file, a workload hashed on the fly, or a plain id file.
struct InputOptions {
    std::string trace, engram, workload, ids;
    double row_bytes = 0;  // --ids only
    int max_num_seqs = SchedulerConfig{}.max_num_seqs;
    int max_num_batched_tokens = SchedulerConfig{}.max_num_batched_tokens;

    void declare(CLI::App& cmd, bool with_ids) {
        cmd.add_option("--trace", trace, "Lookup trace file (.etr, from `engramsim trace make`)");
        cmd.add_option("--engram", engram,
                       "Engram preset or config file: with --workload, hash lookups on the fly");
        cmd.add_option("--workload", workload, "Workload preset or config file (with --engram)");
        if (with_ids) {
            cmd.add_option("--ids", ids,
                           "Plain sequence of little-endian uint64 row ids: one lookup each, no "
                           "steps, capacities in rows (for comparison with other cache "
                           "simulators)");
            cmd.add_option("--row-bytes", row_bytes, "Row size for byte counts with --ids")
                ->check(number_in(0, 1 << 30, true));
        }
        cmd.add_option("--max-num-seqs", max_num_seqs, "Scheduler: sequences per step")
            ->capture_default_str()
            ->check(CLI::Range(1, 1 << 20));
        cmd.add_option("--max-num-batched-tokens", max_num_batched_tokens,
                       "Scheduler: prefill tokens per step")
            ->capture_default_str()
            ->check(CLI::Range(1, 1 << 30));
    }

    std::string describe() const {
        if (!trace.empty()) return trace;
        if (!ids.empty()) return ids;
        return engram + " x " + workload;
    }

    SchedulerConfig scheduler() const {
        SchedulerConfig s;
        s.max_num_seqs = max_num_seqs;
        s.max_num_batched_tokens = max_num_batched_tokens;
        return s;
    }

    std::unique_ptr<LookupSource> source(const std::string& path) const {
        return trace_lookups(path, scheduler());
    }

    DenseTrace load(IdOrder order = IdOrder::FirstSight) const {
        const int given = !trace.empty() + !ids.empty() + (!engram.empty() || !workload.empty());
        if (given != 1)
            throw std::invalid_argument(
                "give exactly one input: --trace FILE.etr, --ids FILE.u64, "
                "or --engram CFG --workload CFG");
        if (row_bytes > 0 && ids.empty())
            throw std::invalid_argument(
                "--row-bytes is for --ids only: a trace or a workload carries its row size");
        if (!ids.empty()) return densify_id_file(ids, row_bytes > 0 ? row_bytes : 1, order);
        if (!trace.empty()) return densify(*source(trace));
        if (engram.empty() || workload.empty())
            throw std::invalid_argument("--engram and --workload go together");
        const auto e = config::load(engram);
        const auto w = config::load(workload);
        if (!e.contains("engram"))
            throw config::ConfigError(engram + ": has no \"engram\" section");
        if (!w.contains("workload"))
            throw config::ConfigError(workload + ": has no \"workload\" section");
        auto src = make_lookups(EngramConfig::from_json(e["engram"]), w["workload"], scheduler());
        return densify(*src);
    }
};

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

// A default curve's sizes: `points` sizes spread evenly up to the distinct rows.
std::vector<uint64_t> mrc_default_sizes(uint64_t distinct, int points) {
    std::vector<uint64_t> sizes;
    for (int k = 1; k <= points; ++k)
        sizes.push_back(uint64_t(std::llround(double(distinct) * k / points)));
    return sizes;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

json totals_json(const TierTotals& t, double row_bytes) {
    const double req_bytes = double(t.requests) * row_bytes;
    return {{"lookups", t.lookups},
            {"requests", t.requests},
            {"hbm_hits", t.hbm_hits},
            {"dram_rows", t.dram_rows},
            {"ssd_rows", t.ssd_rows},
            {"promoted_rows", t.promoted_rows},
            {"evicted_rows", t.evicted_rows},
            {"demoted_rows", t.demoted_rows},
            {"invalidated_rows", t.invalidated_rows},
            {"hbm_object_hit_ratio", t.hbm_hit_ratio()},
            {"hbm_byte_hit_ratio", req_bytes > 0 ? double(t.hbm_hits) * row_bytes / req_bytes : 0},
            {"dram_object_hit_ratio", t.dram_hit_ratio()},
            {"host_to_gpu_bytes", double(t.dram_rows + t.ssd_rows) * row_bytes},
            {"ssd_to_host_bytes", double(t.ssd_rows) * row_bytes},
            {"gpu_to_host_bytes", double(t.demoted_rows) * row_bytes}};
}

// A byte count in full digits ("1622912", not ostream's "1.62291e+06"): the shortest fixed
// notation that reads back to the same double.
std::string csv_number(double x) {
    char buf[400];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed).ptr);
}

void write_steps_csv(const std::string& path, const std::vector<ReplayResult>& results,
                     const std::vector<std::string>& labels) {
    std::ofstream out(path);
    if (!out) throw std::runtime_error(path + ": cannot create");
    out << "hbm_capacity,step,layer,lookups,unique_rows,hbm_hits,dram_rows,ssd_rows,"
           "promoted_rows,evicted_rows,demoted_rows,invalidated_rows,host_to_gpu_bytes,"
           "ssd_to_host_bytes,gpu_to_host_bytes\n";
    for (size_t i = 0; i < results.size(); ++i)
        for (const StepRecord& r : results[i].steps)
            out << labels[i] << ',' << r.step << ',' << r.layer << ',' << r.lookups << ','
                << r.unique_rows << ',' << r.hbm_hits << ',' << r.dram_rows << ',' << r.ssd_rows
                << ',' << r.promoted_rows << ',' << r.evicted_rows << ',' << r.demoted_rows << ','
                << r.invalidated_rows << ',' << csv_number(r.host_to_gpu_bytes) << ','
                << csv_number(r.ssd_to_host_bytes) << ',' << csv_number(r.gpu_to_host_bytes)
                << '\n';
    if (!out) throw std::runtime_error(path + ": write failed");
}

// One line per curve point, units in the header.
void write_mrc_csv(const std::string& path, const json& mrc) {
    std::ofstream out(path);
    out << "policy,capacity_rows,capacity_bytes_B,requests,misses,miss_ratio\n";
    for (const auto& p : mrc["points"])
        out << mrc["policy"].get<std::string>() << ',' << p["capacity_rows"].get<uint64_t>() << ','
            << p["capacity_bytes"].dump() << ',' << mrc["requests"].get<uint64_t>() << ','
            << p["misses"].get<uint64_t>() << ',' << p["miss_ratio"].dump() << '\n';
    if (!out) throw std::runtime_error(path + ": write failed");
}

// The placement a replay runs with, as a config's placement section (the keys only).
template <class Options>
json placement_json(const Options& o) {
    return {{"hbm_capacity", o.capacity},
            {"policy", o.policy},
            {"policy_options", parse_policy_options(o.policy_options)},
            {"dram_capacity", o.dram},
            {"dram_policy", o.dram_policy},
            {"dram_policy_options", parse_policy_options(o.dram_policy_options)},
            {"tiers", o.inclusion},
            {"profile_fraction", o.profile_fraction}};
}

// "k=v,k=v" from a config's options object (values are strings: the schema checks them).
std::string options_text(const json& options) {
    std::string text;
    for (const auto& [k, v] : options.items())
        text += (text.empty() ? "" : ",") + k + "=" + v.get<std::string>();
    return text;
}

// --config FILE: its placement section sets every placement option not given on the command
// line; options given explicitly win.
template <class Options>
void resolve_placement(const std::string& path,
                       const std::vector<std::pair<std::string, CLI::Option*>>& flags,
                       Options& o) {
    if (path.empty()) return;
    const json doc = config::load(path);
    if (!doc.contains("placement"))
        throw config::ConfigError(path + ": has no \"placement\" section (engramsim config "
                                         "help placement)");
    const json& p = doc["placement"];
    auto given = [&](const std::string& key) {
        for (const auto& [k, option] : flags)
            if (k == key) return option->count() > 0;
        return false;
    };
    if (p["warmup_requests"].get<uint64_t>() > 0)
        throw config::ConfigError(path + ": placement.warmup_requests is read by engramsim run "
                                         "(which draws the warm-up from the run's workload); a "
                                         "replay of a trace warms the static policy with "
                                         "--warmup-trace");
    if (!given("hbm_capacity")) o.capacity = p["hbm_capacity"].get<std::string>();
    if (!given("policy")) o.policy = p["policy"].get<std::string>();
    if (!given("policy_options")) o.policy_options = options_text(p["policy_options"]);
    if (!given("dram_capacity")) o.dram = p["dram_capacity"].get<std::string>();
    if (!given("dram_policy")) o.dram_policy = p["dram_policy"].get<std::string>();
    if (!given("dram_policy_options"))
        o.dram_policy_options = options_text(p["dram_policy_options"]);
    if (!given("tiers")) o.inclusion = p["tiers"].get<std::string>();
    if (!given("profile_fraction")) {
        o.profile_fraction = config::quantity(p, "profile_fraction", units::Dim::Count);
        if (!(o.profile_fraction > 0 && o.profile_fraction <= 1))
            throw config::ConfigError(path + ": placement.profile_fraction: " +
                                      std::to_string(o.profile_fraction) +
                                      " is out of range; expected (0, 1]");
    }
}

// An option that would do nothing with the others given is an error, not a silent no-op.
template <class Options>
void refuse_idle_options(const CLI::App& cmd, const Options& o) {
    auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
    auto refuse = [](const std::string& flag, const std::string& why) {
        throw std::invalid_argument(flag + " does nothing here: " + why);
    };
    for (const char* f : {"--mrc-points", "--threads"})
        if (given(f) && !o.mrc) refuse(f, "it shapes the miss-ratio curve, and --mrc is not given");
    if (given("--mrc-points") && o.capacity.find(',') != std::string::npos)
        refuse("--mrc-points", "the curve's sizes are the several --capacity values given");
    const bool static_policy = o.policy == "static" || o.dram_policy == "static";
    for (const char* f : {"--warmup-trace", "--profile-fraction"})
        if (given(f) && !static_policy)
            refuse(f, "it ranks rows for the static policy, and the policies are " + o.policy +
                          " (HBM) and " + o.dram_policy + " (DRAM)");
    std::string dram = o.dram;
    dram.erase(0, dram.find_first_not_of(" \t"));
    dram.erase(dram.find_last_not_of(" \t") + 1);
    for (const char* f : {"--dram-policy", "--dram-policy-options", "--tiers"})
        if (given(f) && dram == "all")
            refuse(f, "it configures a DRAM cache, and --dram all holds the whole table; give "
                      "--dram a capacity below the table's");
    for (const char* f : {"--max-num-seqs", "--max-num-batched-tokens"})
        if (given(f) && !o.input.ids.empty())
            refuse(f, "--ids is a plain id sequence with no steps to schedule");
}

void replay_command(CLI::App& app) {
    struct Options {
        InputOptions input;
        std::string policy = "lru", policy_options, capacity = "1%";
        std::string dram = "all", dram_policy = "lru", dram_policy_options;
        std::string inclusion = "inclusive";
        double profile_fraction = 1.0;
        std::string warmup_trace;
        std::string steps_csv, plot;
        std::string config;
        bool json = false, mrc = false;
        int mrc_points = 100;
        unsigned threads = 0;
        // The options that set a placement key, by key: given explicitly, they override --config.
        std::vector<std::pair<std::string, CLI::Option*>> placement_flags;
    };
    static Options opt;
    auto* cmd = app.add_subcommand(
        "replay", "Placement replay: serve a lookup trace from an HBM cache, host DRAM and NVMe");
    opt.input.declare(*cmd, true);
    cmd->add_option("--config", opt.config,
                    "JSON file with a placement section (a run config, or just "
                    "{\"placement\": {...}}): capacities, policies, tiers; the flags below "
                    "override its keys when given (engramsim config help placement)");
    auto& flags = opt.placement_flags;
    flags.emplace_back(
        "policy",
        cmd->add_option("--policy", opt.policy, "HBM cache policy (an unknown name lists them)")
            ->capture_default_str());
    flags.emplace_back("policy_options",
                       cmd->add_option("--policy-options", opt.policy_options,
                                       "Policy options key=value,... (e.g. ways=16, "
                                       "admission=always)"));
    flags.emplace_back(
        "hbm_capacity",
        cmd->add_option("--capacity", opt.capacity,
                        "HBM cache capacities, comma-separated: N% of the table, bytes (10GiB), "
                        "rows (1000000, 2.5M rows) or all; one replay each (--config: its "
                        "placement.hbm_capacity, default 0)")
            ->capture_default_str());
    flags.emplace_back(
        "dram_capacity",
        cmd->add_option("--dram", opt.dram,
                        "Host DRAM capacity (same forms); below the table's size DRAM is a cache "
                        "and the rest is read from NVMe")
            ->capture_default_str());
    flags.emplace_back("dram_policy", cmd->add_option("--dram-policy", opt.dram_policy,
                                                      "DRAM cache policy")
                                          ->capture_default_str());
    flags.emplace_back("dram_policy_options",
                       cmd->add_option("--dram-policy-options", opt.dram_policy_options,
                                       "DRAM policy options"));
    flags.emplace_back(
        "tiers", cmd->add_option("--tiers", opt.inclusion,
                                 "inclusive or exclusive (HBM and DRAM caches)")
                     ->capture_default_str()
                     ->check(CLI::IsMember({"inclusive", "exclusive"})));
    flags.emplace_back(
        "profile_fraction",
        cmd->add_option("--profile-fraction", opt.profile_fraction,
                        "static: rank rows by their requests in this leading fraction of the "
                        "trace")
            ->capture_default_str()
            ->check(number_in(0, 1, true)));
    cmd->add_option("--warmup-trace", opt.warmup_trace,
                    "static: rank rows by a separate warm-up trace (.etr) instead");
    cmd->add_option("--steps-csv", opt.steps_csv,
                    "Write every (step, layer) record to this CSV file");
    cmd->add_flag("--json", opt.json, "Print versioned JSON results instead of tables");
    cmd->add_option("--plot", opt.plot,
                    "Also write replay.json, mrc.csv (with --mrc) and PNG figures (miss-ratio "
                    "curve, HBM hit ratio per layer) into this folder");
    cmd->add_flag("--mrc", opt.mrc,
                  "Miss-ratio curve of the HBM cache alone: lru in one pass (stack distances), "
                  "other policies one replay per size on a thread pool; sizes from --capacity "
                  "if several are given, else --mrc-points up to every distinct row");
    cmd->add_option("--mrc-points", opt.mrc_points, "Sizes of a default curve")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--threads", opt.threads, "MRC threads (0: all cores)")->capture_default_str();
    cmd->callback([cmd] {
        resolve_placement(opt.config, opt.placement_flags, opt);
        refuse_idle_options(*cmd, opt);
        // Capacity texts are checked before the trace is read: a typo costs no load.
        for (const auto& c : split(opt.capacity, ',')) capacity::parse(c);
        capacity::parse(opt.dram);
        // One run of an id file at a capacity given in rows or bytes (not a share of rows still
        // to be counted), DRAM holding the table, no curve: the file is replayed in one pass as
        // its keys are numbered (placement::replay_id_file), the same bytes out.
        auto overlappable = [&]() -> std::optional<TierConfig> {
            const std::vector<std::string> caps_text = split(opt.capacity, ',');
            if (opt.input.ids.empty() || caps_text.size() != 1 || opt.mrc ||
                !opt.warmup_trace.empty() || !opt.steps_csv.empty() ||
                capacity::parse(opt.dram).kind != capacity::Kind::All)
                return std::nullopt;
            const capacity::Capacity c = capacity::parse(caps_text[0]);
            if (c.kind != capacity::Kind::Rows && c.kind != capacity::Kind::Bytes)
                return std::nullopt;
            const double rb = opt.input.row_bytes > 0 ? opt.input.row_bytes : 1;
            TierConfig cfg{.hbm_rows = capacity::rows(c, rb, UINT64_MAX, caps_text[0]),
                           .policy = opt.policy,
                           .options = parse_policy_options(opt.policy_options),
                           .profile_fraction = opt.profile_fraction,
                           .step_records = false};
            if (!replays_in_one_pass(cfg)) return std::nullopt;
            return cfg;
        };
        const auto t0 = std::chrono::steady_clock::now();
        // One run of an id file at a capacity in rows: replayed in one pass, the trace never
        // built (`tr` stays empty; `in` describes the input either way).
        std::optional<ReplayResult> overlapped;
        double overlapped_s = 0;
        DenseTrace tr;
        InputFacts in;
        // An id file's LRU curve with one run beside it (LRU, no options, DRAM holding the
        // table): the curve, at its sizes and the run's capacity, in one pass as the keys are
        // numbered (placement::lru_curve_of_id_file); the run is read off it.
        std::optional<std::vector<MrcPoint>> id_file_curve;
        const bool curve_in_one_pass =
            !opt.input.ids.empty() && opt.mrc && opt.policy == "lru" && opt.policy_options.empty() &&
            split(opt.capacity, ',').size() == 1 && opt.warmup_trace.empty() &&
            opt.steps_csv.empty() && capacity::parse(opt.dram).kind == capacity::Kind::All;
        if (curve_in_one_pass) {
            const double rb = opt.input.row_bytes > 0 ? opt.input.row_bytes : 1;
            id_file_curve = lru_curve_of_id_file(opt.input.ids, rb, [&](uint64_t distinct) {
                std::vector<uint64_t> sizes = mrc_default_sizes(distinct, opt.mrc_points);
                sizes.push_back(parse_capacity_rows(opt.capacity, rb, distinct));
                return sizes;
            }, in);
        } else if (const auto cfg = overlappable()) {
            overlapped = replay_id_file(opt.input.ids, opt.input.row_bytes > 0 ? opt.input.row_bytes : 1, *cfg, in);
            overlapped_s = seconds_since(t0);
        } else {
            // Where the numbering of rows cannot change the replay (a policy deciding from the
            // order of requests alone, DRAM holding the table, no warm-up ranks), an id file's
            // ids are grouped, not numbered in order of first sight: no random reads.
            const bool any_order =
                opt.warmup_trace.empty() &&
                replays_in_one_pass({.policy = opt.policy,
                                     .options = parse_policy_options(opt.policy_options),
                                     .dram_rows = capacity::parse(opt.dram).kind == capacity::Kind::All
                                                      ? kAllRows
                                                      : 0});
            tr = opt.input.load(any_order ? IdOrder::Grouped : IdOrder::FirstSight);
            in = facts_of(tr);
        }
        const double load_s = seconds_since(t0);
        const double rb = in.row_bytes;
        policy_info(opt.policy);  // fail early on unknown names
        policy_info(opt.dram_policy);

        std::vector<std::string> cap_texts = split(opt.capacity, ',');
        if (cap_texts.empty()) throw std::invalid_argument("--capacity: no capacity given");
        std::vector<uint64_t> caps;
        for (const auto& c : cap_texts) caps.push_back(parse_capacity_rows(c, rb, in.table_rows));
        if (overlapped && overlapped->hbm_capacity_rows != caps[0])
            throw std::logic_error("replay: the one-pass capacity differs from the parsed one");

        TierConfig base{
            .policy = opt.policy,
            .options = parse_policy_options(opt.policy_options),
            .dram_rows = parse_capacity_rows(opt.dram, rb, in.table_rows),
            .dram_policy = opt.dram_policy,
            .dram_options = parse_policy_options(opt.dram_policy_options),
            .inclusion = opt.inclusion == "exclusive" ? Inclusion::Exclusive : Inclusion::Inclusive,
            .profile_fraction = opt.profile_fraction,
            .step_records = !opt.steps_csv.empty()};
        if (!opt.warmup_trace.empty()) {
            auto warm = opt.input.source(opt.warmup_trace);
            base.profile_ranks = profile_ranks_for(tr, *warm);
        }

        json out = {
            {"schema_version", 1},
            {"tool", "engramsim replay"},
            {"engramsim", std::string(build::version()) + " (" + build::git_commit() + ")"},
            {"units", {{"bytes", "B"}, {"time", "s"}, {"rate", "1/s"}, {"capacity", "rows"}}},
            {"input",
             {{"source", opt.input.describe()},
              {"lookups", in.lookups},
              {"requests", in.requests},
              {"steps", in.steps},
              {"distinct_rows", in.distinct_rows},
              {"table_rows", in.table_rows},
              {"row_bytes", rb},
              {"layer_ids", in.layer_ids}}},
            {"tiers",
             {{"policy", opt.policy},
              {"policy_options", base.options},
              {"dram_rows", base.dram_rows >= in.table_rows ? json("all") : json(base.dram_rows)},
              {"dram_policy", opt.dram_policy},
              {"dram_policy_options", base.dram_options},
              {"inclusion", opt.inclusion}}},
            {"placement", placement_json(opt)}};

        // The curve's sizes: the capacities given, or a default spread over the distinct rows.
        std::vector<uint64_t> sizes = caps;
        if (opt.mrc && caps.size() == 1) sizes = mrc_default_sizes(in.distinct_rows, opt.mrc_points);
        // The one-pass LRU curve runs on a thread of its own beside the runs (it reads the trace
        // only): the whole command costs the longer of the two, not their sum. Where the run is
        // a plain LRU over a plain sequence (DRAM holding the table), the curve gives the run
        // too, at its capacity (placement::lru_result_from_curve: LRU's stack property), and no
        // second pass is made.
        const bool one_pass_curve = opt.mrc && opt.policy == "lru" && base.options.empty();
        const bool run_from_curve = one_pass_curve && caps.size() == 1 && in.per_lookup &&
                                    base.dram_rows >= in.table_rows;
        double mrc_seconds = 0;
        std::vector<uint64_t> curve_sizes = sizes;
        if (run_from_curve) curve_sizes.push_back(caps[0]);
        std::future<std::vector<MrcPoint>> lru_curve;
        if (id_file_curve)
            mrc_seconds = load_s;  // the curve was the load
        else if (one_pass_curve)
            lru_curve = std::async(run_from_curve ? std::launch::deferred : std::launch::async, [&] {
                const auto start = std::chrono::steady_clock::now();
                std::vector<MrcPoint> c = lru_mrc(tr.requests, tr.universe(), curve_sizes);
                mrc_seconds = seconds_since(start);
                return c;
            });
        std::vector<MrcPoint> lru_points;
        if (run_from_curve) lru_points = id_file_curve ? *id_file_curve : lru_curve.get();

        // Wall-clock times go to the terminal only: results files stay byte-identical.
        std::vector<ReplayResult> results;
        std::vector<double> run_seconds;
        json runs = json::array();
        for (size_t i = 0; i < caps.size() && !(opt.mrc && caps.size() > 1); ++i) {
            TierConfig cfg = base;
            cfg.hbm_rows = caps[i];
            const auto start = std::chrono::steady_clock::now();
            results.push_back(i == 0 && overlapped ? *overlapped
                              : run_from_curve
                                  ? lru_result_from_curve(lru_points.back(), in.table_rows, rb, cfg)
                                  : replay(tr, cfg));
            run_seconds.push_back(i == 0 && overlapped ? overlapped_s
                                  : run_from_curve   ? mrc_seconds
                                                     : seconds_since(start));
            const ReplayResult& r = results.back();
            json layers = json::array();
            for (size_t l = 0; l < r.layers.size(); ++l) {
                json lj = totals_json(r.layers[l], rb);
                lj["layer_id"] = l < in.layer_ids.size() ? json(in.layer_ids[l]) : json(nullptr);
                layers.push_back(lj);
            }
            runs.push_back({{"hbm_capacity", cap_texts[i]},
                            {"hbm_capacity_rows", caps[i]},
                            {"hbm_capacity_bytes", double(caps[i]) * rb},
                            {"total", totals_json(r.total, rb)},
                            {"layers", layers}});
        }
        out["runs"] = runs;
        if (!opt.steps_csv.empty()) write_steps_csv(opt.steps_csv, results, cap_texts);

        if (opt.mrc) {
            std::vector<MrcPoint> curve;
            std::string method;
            if (one_pass_curve) {
                curve = run_from_curve ? std::vector<MrcPoint>(lru_points.begin(), lru_points.end() - 1)
                                       : lru_curve.get();
                method = "one pass (LRU stack distances)";
            } else {
                const auto start = std::chrono::steady_clock::now();
                std::vector<uint32_t> next;
                if (policy_info(opt.policy).needs_next_use || base.options.count("lookahead"))
                    next = next_uses(tr.requests, tr.universe());
                const std::vector<uint64_t> step_first = step_starts(tr);
                std::vector<uint64_t> profile;
                if (opt.policy == "static" && base.profile_ranks.empty())
                    profile =
                        request_counts(std::span(tr.requests)
                                           .first(size_t(std::floor(opt.profile_fraction *
                                                                    double(tr.requests.size())))),
                                       tr.universe());
                PolicyContext ctx{.universe = tr.universe(),
                                  .keys = tr.keys,
                                  .next_use = next,
                                  .step_first = step_first,
                                  .profile_counts = profile,
                                  .profile_rank = base.profile_ranks,
                                  .options = base.options};
                curve = policy_mrc(opt.policy, ctx, tr.requests, sizes, opt.threads);
                method = "one replay per size, thread pool";
                mrc_seconds = seconds_since(start);
            }
            json pts = json::array();
            for (const auto& p : curve)
                pts.push_back({{"capacity_rows", p.capacity_rows},
                               {"capacity_bytes", double(p.capacity_rows) * rb},
                               {"misses", p.misses},
                               {"miss_ratio", p.miss_ratio()}});
            out["mrc"] = {{"policy", opt.policy},
                          {"method", method},
                          {"requests", in.requests},
                          {"points", pts}};
        }

        if (!opt.plot.empty()) {
            write_and_plot(out, opt.plot, "replay.json", "sim/placement/plot_replay.py");
            if (out.contains("mrc")) write_mrc_csv(opt.plot + "/mrc.csv", out["mrc"]);
        }
        if (opt.json) {
            std::cout << out.dump(1) << '\n';
            return;
        }
        std::cout << "engramsim replay: " << opt.input.describe() << "\n\n";
        TextTable facts({"<what", "<value"});
        facts.add({"lookups", thousands(in.lookups) + " in " + thousands(in.steps) + " steps"});
        facts.add({"cache requests",
                   thousands(in.requests) +
                       (in.per_lookup ? " (one per lookup)" : " (unique rows per step and layer)")});
        facts.add({"distinct rows", thousands(in.distinct_rows) + " of " +
                                        thousands(in.table_rows) + " in the table"});
        facts.add({"row", rounded(rb, units::Dim::Bytes)});
        facts.add({"tiers", "HBM " + opt.policy + ", DRAM " +
                                (base.dram_rows >= in.table_rows
                                     ? std::string("holds the whole table")
                                     : thousands(base.dram_rows) + " rows " + opt.dram_policy +
                                           " (" + opt.inclusion + "), rest on NVMe")});
        facts.add({"load", fixed(load_s, 2) + " s" +
                               (overlapped ? " (numbered and replayed in one pass: the first "
                                             "run's time is the same)"
                                : id_file_curve ? " (numbered and the LRU curve taken in one pass; "
                                                  "the run is read off the curve)"
                                                : "")});
        facts.print(std::cout, "  ");
        for (size_t i = 0; i < results.size(); ++i) {
            const ReplayResult& r = results[i];
            std::cout << "\nHBM cache " << cap_texts[i] << " = " << thousands(caps[i]) << " rows, "
                      << rounded(double(caps[i]) * rb, units::Dim::Bytes) << " ("
                      << fixed(run_seconds[i], 3) << " s, "
                      << fixed(double(in.lookups) / std::max(run_seconds[i], 1e-9) / 1e6, 1)
                      << "M lookups/s)\n";
            TextTable t({"layer", "lookups", "requests", "HBM hit %", "HBM byte hit %",
                         "DRAM hit %", "SSD rows", "host->GPU", "SSD->host", "GPU->host"});
            auto row = [&](const std::string& name, const TierTotals& x) {
                t.add({name, thousands(x.lookups), thousands(x.requests),
                       fixed(100 * x.hbm_hit_ratio(), 2), fixed(100 * x.hbm_hit_ratio(), 2),
                       fixed(100 * x.dram_hit_ratio(), 2), thousands(x.ssd_rows),
                       rounded(double(x.dram_rows + x.ssd_rows) * rb, units::Dim::Bytes),
                       rounded(double(x.ssd_rows) * rb, units::Dim::Bytes),
                       rounded(double(x.demoted_rows) * rb, units::Dim::Bytes)});
            };
            for (size_t l = 0; l < r.layers.size() && !in.layer_ids.empty(); ++l)
                row(std::to_string(in.layer_ids[l]), r.layers[l]);
            row("all", r.total);
            t.print(std::cout, "  ");
        }
        if (out.contains("mrc")) {
            const auto& m = out["mrc"];
            std::cout << "\nMiss-ratio curve, " << opt.policy << ", "
                      << m["method"].get<std::string>() << ", "
                      << fixed(mrc_seconds, 3) << " s\n";
            TextTable t({"capacity rows", "capacity", "misses", "miss %"});
            for (const auto& p : m["points"])
                t.add({thousands(p["capacity_rows"].get<uint64_t>()),
                       rounded(p["capacity_bytes"].get<double>(), units::Dim::Bytes),
                       thousands(p["misses"].get<uint64_t>()),
                       fixed(100 * p["miss_ratio"].get<double>(), 3)});
            t.print(std::cout, "  ");
        }
        std::cout << "\n  requests are unique rows per (step, layer); object and byte hit ratios "
                     "agree because every row has the same size\n";
    });
}

}  // namespace

void add_replay_command(CLI::App& app) {
    replay_command(app);
}

void add_trace_export(CLI::App& trace) {
    static InputOptions input;
    static std::string format = "oracleGeneral", output;
    static bool unfolded = false;
    auto* cmd = trace.add_subcommand(
        "export", "Write a trace's cache request sequence for other cache simulators");
    input.declare(*cmd, false);
    cmd->add_option("--format", format,
                    "oracleGeneral (libCacheSim binary: u32 time, u64 id, u32 size, i64 next "
                    "access), csv (libCacheSim csv: time,obj_id,obj_size) or u64 (plain ids, for "
                    "`engramsim replay --ids`)")
        ->capture_default_str()
        ->check(CLI::IsMember({"oracleGeneral", "csv", "u64"}));
    cmd->add_option("-o,--output", output, "File to write")->required();
    cmd->add_flag("--unfolded", unfolded,
                  "One request per lookup, repeats within a step included (default: the "
                  "sequence the caches see, unique rows per step and layer)");
    cmd->callback([] {
        // The sequence: folded (what replay's caches see) or every lookup.
        std::vector<uint64_t> keys;
        std::vector<uint32_t> times;  // engine step of each request
        double rb = 0;
        if (!unfolded) {
            const DenseTrace tr = input.load();
            rb = tr.row_bytes();
            keys.reserve(tr.requests.size());
            for (uint32_t id : tr.requests) keys.push_back(tr.keys[id]);
            for (const auto& g : tr.groups) times.insert(times.end(), g.count, uint32_t(g.step));
        } else {
            const int given =
                !input.trace.empty() + (!input.engram.empty() || !input.workload.empty());
            if (given != 1) throw std::invalid_argument("give --trace or --engram with --workload");
            std::unique_ptr<LookupSource> src;
            if (!input.trace.empty()) {
                src = input.source(input.trace);
            } else {
                auto e = config::load(input.engram), w = config::load(input.workload);
                src = make_lookups(EngramConfig::from_json(e.at("engram")), w.at("workload"),
                                   input.scheduler());
            }
            rb = src->layout().row_bytes;
            StepBatch b;
            while (src->next(b))
                for (const auto& rows : b.rows) {
                    keys.insert(keys.end(), rows.begin(), rows.end());
                    times.insert(times.end(), rows.size(), uint32_t(b.step));
                }
        }
        std::ofstream out(output, std::ios::binary);
        if (!out) throw std::runtime_error(output + ": cannot create");
        const uint32_t size = uint32_t(std::ceil(rb));
        if (format == "u64") {
            out.write(reinterpret_cast<const char*>(keys.data()), std::streamsize(keys.size() * 8));
        } else if (format == "csv") {
            out << "time,obj_id,obj_size\n";
            for (size_t i = 0; i < keys.size(); ++i)
                out << times[i] << ',' << keys[i] << ',' << size << '\n';
        } else {
            // next access (virtual time) of each request, -1 when none
            KeyIndex index;
            std::vector<uint32_t> dense(keys.size());
            for (size_t i = 0; i < keys.size(); ++i) dense[i] = index.insert(keys[i]);
            const auto next = next_uses(dense, index.size());
            std::vector<char> rec(24);
            for (size_t i = 0; i < keys.size(); ++i) {
                const int64_t nv = next[i] == kNever ? -1 : int64_t(next[i]);
                std::memcpy(rec.data(), &times[i], 4);
                std::memcpy(rec.data() + 4, &keys[i], 8);
                std::memcpy(rec.data() + 12, &size, 4);
                std::memcpy(rec.data() + 16, &nv, 8);
                out.write(rec.data(), 24);
            }
        }
        if (!out) throw std::runtime_error(output + ": write failed");
        std::cout << "wrote " << output << ": " << thousands(keys.size()) << " requests (" << format
                  << (unfolded ? ", every lookup" : ", unique rows per step and layer") << ")\n";
    });
}

}  // namespace engramsim::cli
