// engramsim execute CONFIG: the run config served for real on this machine's CPU (executor/),
// then the same workload without Engram (the baseline of the overhead). Prints the metrics of
// `engramsim run`; -o DIR writes results.json, steps.csv, timeline.json (Perfetto) and
// resolved_config.json.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "cli/plots.h"
#include "executor/calibrate.h"
#include "executor/executor.h"
#include "executor/serving_validation.h"
#include "model/statistics.h"
#include "sim/sweep/experiment.h"

namespace engramsim::cli {

namespace {

struct ExecuteCliOptions {
    std::string config;
    std::string out_dir;
    bool json = false;
    bool no_baseline = false;
    bool quiet = false;
    bool interleaved = false;  // the baseline served step by step beside the Engram run
    bool control = false;      // with interleaved: the baseline beside itself (an A/A test)
    int threads = 1;
    int repeat = 1;
    std::string table_file;
};

// Throughput with and without Engram, run after run: the overhead's median and its band.
struct Repeats {
    std::vector<double> engram_tps, baseline_tps, overhead_pct;
    nlohmann::json json() const {
        auto band = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return nlohmann::json{{"median", percentile_sorted(v, 0.5)}, {"min", v.front()},
                                  {"max", v.back()}, {"all", v}};
        };
        return {{"runs", engram_tps.size()},
                {"throughput_tok_per_s", band(engram_tps)},
                {"no_engram_throughput_tok_per_s", band(baseline_tps)},
                {"overhead_vs_no_engram_pct", band(overhead_pct)}};
    }
};

std::string ms(double s) { return fixed(s * 1e3, 3) + " ms"; }

nlohmann::json metrics_json(const executor::ExecuteMetrics& m) {
    return {{"makespan_s", m.makespan_s},
            {"throughput_tok_per_s", m.throughput_tok_per_s},
            {"ttft_s", {{"mean", m.ttft_mean_s}, {"p50", m.ttft_p50_s}, {"p99", m.ttft_p99_s}}},
            {"tpot_s", {{"mean", m.tpot_mean_s}, {"p50", m.tpot_p50_s}, {"p99", m.tpot_p99_s}}},
            {"mean_step_s", m.mean_step_s},
            {"stall_s", m.stall_s},
            {"fetch_s", m.fetch_s},
            {"engram_compute_s", m.engram_compute_s},
            {"schedule_s", m.schedule_s},
            {"steps", m.steps},
            {"prefill_steps", m.prefill_steps},
            {"lookups", m.lookups},
            {"unique_rows", m.unique_rows},
            {"dram_cache_hits", m.cache_hits}};
}

nlohmann::json run_json(const executor::ExecuteResult& r) {
    char digest[2][17];
    std::snprintf(digest[0], 17, "%016llx", (unsigned long long)r.output_digest);
    std::snprintf(digest[1], 17, "%016llx", (unsigned long long)r.rows_digest);
    return {{"metrics", metrics_json(executor::metrics_of(r))},
            {"schedule", r.schedule},
            {"table", r.table},
            {"requests", r.requests},
            {"prompt_tokens", r.prompt_tokens},
            {"output_tokens", r.output_tokens},
            {"preemptions", r.preemptions},
            {"num_kv_blocks", r.num_kv_blocks},
            {"bytes", {{"weights", r.weight_bytes}, {"kv_cache", r.kv_cache_bytes},
                       {"engram_table", r.table_bytes}}},
            {"dram_cache_rows", r.dram_cache_rows},
            {"threads", {{"compute", r.compute_threads}, {"gather_per_engram_layer", r.gather_threads},
                         {"blas", r.blas_threads}}},
            {"setup_s", r.setup_s},
            {"warmup", {{"tokens", r.warmup_tokens}, {"sequences", r.warmup_sequences}}},
            {"output_digest", digest[0]},
            {"rows_digest", digest[1]}};
}

void write_steps_csv(const executor::ExecuteResult& r, std::ostream& f) {
    f << "step,prefill,tokens,seqs,context_tokens,start_s,end_s,schedule_s,engram_layer,lookups,"
         "unique_rows,issue_s,ready_s,dedup_s,gather_s,stall_s,engram_compute_s,dram_cache_hits\n";
    f.precision(9);
    for (const auto& s : r.steps) {
        auto head = [&] {
            f << s.index << ',' << int(s.prefill) << ',' << s.tokens << ',' << s.seqs << ','
              << s.context_tokens << ',' << s.start_s << ',' << s.end_s << ',' << s.schedule_s;
        };
        if (s.engram.empty()) head(), f << ",,,,,,,,,,\n";
        for (const auto& e : s.engram) {
            head();
            f << ',' << e.layer << ',' << e.lookups << ',' << e.unique_rows << ',' << e.issue_s
              << ',' << e.ready_s << ',' << e.dedup_s << ',' << e.gather_s << ',' << e.stall_s
              << ',' << e.compute_s << ',' << e.cache_hits << '\n';
        }
    }
}

void print(const executor::ExecuteResult& run, const executor::ExecuteResult* base,
           const nlohmann::json& cfg, double wall_s) {
    const auto m = executor::metrics_of(run);
    std::cout << "engramsim execute: " << cfg["backbone"].value("name", std::string()) << " + "
              << cfg["engram"].value("name", std::string()) << ", workload "
              << cfg["workload"].value("name", std::string()) << ", on this machine's CPU\n\n";
    TextTable t({"<metric", "value"});
    t.add({"throughput (output tok/s)", fixed(m.throughput_tok_per_s, 2)});
    if (base) {
        const auto b = executor::metrics_of(*base);
        t.add({"  without Engram (tok/s)", fixed(b.throughput_tok_per_s, 2)});
        t.add({"overhead vs no Engram",
               fixed(sim::overhead_pct(b.throughput_tok_per_s, m.throughput_tok_per_s), 2) + "%"});
    }
    t.add({"makespan", fixed(m.makespan_s, 3) + " s"});
    t.add({"steps (prefill / decode)", thousands(m.steps) + " (" + thousands(m.prefill_steps) +
                                           " / " + thousands(m.steps - m.prefill_steps) + ")"});
    t.add({"mean step", ms(m.mean_step_s)});
    t.add({"TTFT mean / p99", ms(m.ttft_mean_s) + " / " + ms(m.ttft_p99_s)});
    t.add({"TPOT mean / p99", ms(m.tpot_mean_s) + " / " + ms(m.tpot_p99_s)});
    t.add({"schedule " + run.schedule + ": stall at Engram", fixed(m.stall_s, 4) + " s"});
    t.add({"fetch (issue -> ready), summed", fixed(m.fetch_s, 4) + " s"});
    t.add({"Engram modules (compute)", fixed(m.engram_compute_s, 4) + " s"});
    t.add({"scheduling and hashing", fixed(m.schedule_s, 4) + " s"});
    t.add({"unique rows / lookups", thousands(m.unique_rows) + " / " + thousands(m.lookups)});
    if (run.dram_cache_rows > 0)
        t.add({"DRAM cache hits / unique rows",
               thousands(m.cache_hits) + " / " + thousands(m.unique_rows) + " (" +
                   fixed(m.unique_rows ? 100.0 * double(m.cache_hits) / double(m.unique_rows) : 0, 1) + "%)"});
    t.add({"KV blocks / preemptions", thousands(uint64_t(run.num_kv_blocks)) + " / " +
                                          thousands(run.preemptions)});
    if (!run.table.empty()) t.add({"Engram rows from", run.table});
    t.add({"threads: compute / gather (or reads in flight) / BLAS",
           std::to_string(run.compute_threads) + " / " + std::to_string(run.gather_threads) + " / " +
               std::to_string(run.blas_threads)});
    t.add({"table / weights / KV cache",
           fixed(run.table_bytes / 1073741824.0, 2) + " / " + fixed(run.weight_bytes / 1073741824.0, 2) +
               " / " + fixed(run.kv_cache_bytes / 1073741824.0, 2) + " GiB"});
    t.add({"wall time (setup, runs)", fixed(wall_s, 1) + " s"});
    t.print(std::cout, "  ");
}

void execute(const ExecuteCliOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    const nlohmann::json cfg = sim::load_run_config(opt.config);
    executor::ExecuteOptions eo;
    eo.compute_threads = opt.threads;
    eo.table_file = opt.table_file;
    if (!opt.quiet)
        eo.progress = [](uint64_t steps, uint64_t done, uint64_t all) {
            if (steps % 16 == 0 || done == all)
                std::cerr << "\rexecute: step " << steps << ", " << done << " / " << all
                          << " output tokens" << (done == all ? "\n" : "") << std::flush;
        };
    // With --repeat N, the Engram run and the baseline alternate N times (so a slow spell of a
    // shared machine falls on both); the first pair is the one printed and written in full.
    std::optional<executor::ExecuteResult> first, base;
    Repeats reps;
    for (int i = 0; i < opt.repeat; ++i) {
        if (!opt.quiet && opt.repeat > 1)
            std::cerr << "execute: run " << i + 1 << " of " << opt.repeat << "\n";
        eo.engram = true;
        std::optional<executor::InterleavedResult> both;
        if (opt.interleaved) {
            if (!opt.quiet) std::cerr << "execute: the Engram run and the baseline, interleaved\n";
            both = executor::execute_interleaved(cfg, eo, opt.control);
        }
        executor::ExecuteResult r = both ? std::move(both->engram) : executor::execute(cfg, eo);
        reps.engram_tps.push_back(executor::metrics_of(r).throughput_tok_per_s);
        if (!first) first = std::move(r);
        if (opt.no_baseline) continue;
        eo.engram = false;
        if (!opt.quiet && !both) std::cerr << "execute: the baseline (no Engram)\n";
        executor::ExecuteResult b = both ? std::move(both->baseline) : executor::execute(cfg, eo);
        reps.baseline_tps.push_back(executor::metrics_of(b).throughput_tok_per_s);
        reps.overhead_pct.push_back(
            sim::overhead_pct(reps.baseline_tps.back(), reps.engram_tps.back()));
        if (!base) base = std::move(b);
    }
    const executor::ExecuteResult& run = *first;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json results = {{"schema", "engramsim.execute"},
                              {"version", 1},
                              {"producer", producer()},
                              {"units", "seconds (s), tokens per second (tok_per_s), bytes"},
                              {"run", run_json(run)}};
    if (opt.repeat > 1 && base) results["repeats"] = reps.json();
    if (base) {
        results["baseline_served"] = opt.control       ? "interleaved with itself (A/A control: \"run\" has no Engram)"
                                     : opt.interleaved ? "interleaved"
                                                       : "separately";
        results["no_engram"] = run_json(*base);
        results["overhead_vs_no_engram_pct"] =
            sim::overhead_pct(executor::metrics_of(*base).throughput_tok_per_s,
                              executor::metrics_of(run).throughput_tok_per_s);
    }
    if (!opt.out_dir.empty()) {
        auto write = [&](const std::string& name, const std::function<void(std::ostream&)>& fill) {
            write_output(opt.out_dir, name, fill);
        };
        write("results.json", [&](std::ostream& f) { f << results.dump(2) << '\n'; });
        write("resolved_config.json", [&](std::ostream& f) { f << cfg.dump(2) << '\n'; });
        write("steps.csv", [&](std::ostream& f) { write_steps_csv(run, f); });
        if (base) write("no_engram_steps.csv", [&](std::ostream& f) { write_steps_csv(*base, f); });
        write("timeline.json", [&](std::ostream& f) { executor::write_timeline(run, f); });
    }
    if (opt.json)
        std::cout << results.dump(2) << '\n';
    else
        print(run, base ? &*base : nullptr, cfg, wall);
    if (!opt.json && opt.repeat > 1 && base) {
        const nlohmann::json j = reps.json()["overhead_vs_no_engram_pct"];
        std::cout << "\n  overhead vs no Engram over " << opt.repeat << " alternating pairs: median "
                  << fixed(j["median"].get<double>(), 2) << "%, band "
                  << fixed(j["min"].get<double>(), 2) << "% to " << fixed(j["max"].get<double>(), 2)
                  << "%\n";
    }
}

}  // namespace

void add_execute_command(CLI::App& app) {
    auto opt = std::make_shared<ExecuteCliOptions>();
    auto* cmd = app.add_subcommand(
        "execute", "Serve a run config for real on this machine's CPU: a Transformer with Engram "
                   "layers, the project's scheduler and hashing, the table in DRAM, the config's "
                   "prefetch schedule on real threads; then the same workload without Engram.");
    cmd->add_option("config", opt->config, "Run config file (see executor/configs/)")->required();
    cmd->add_option("-o,--out", opt->out_dir,
                    "Write results.json, steps.csv (no_engram_steps.csv: the baseline's), timeline.json and resolved_config.json here");
    cmd->add_flag("--json", opt->json, "Print results.json instead of the table");
    cmd->add_flag("--no-baseline", opt->no_baseline, "Skip the run without Engram");
    cmd->add_flag("-q,--quiet", opt->quiet, "No progress on stderr");
    cmd->add_flag("--interleaved", opt->interleaved,
                  "Serve the baseline step by step beside the Engram run, alternating which goes "
                  "first, each on its own clock: both meet the same spells of a shared machine, "
                  "so the overhead between them is steadier (docs/executor.md)")
        ->excludes("--no-baseline");
    cmd->add_flag("--control", opt->control,
                  "With --interleaved: serve the baseline beside itself instead of the Engram run "
                  "(an A/A test: the overhead it reports is the measurement's own bias and noise)")
        ->needs("--interleaved");
    cmd->add_option("--table-file", opt->table_file,
                    "sim.table nvme: the table file, on a file system that allows direct I/O "
                    "(default /var/tmp/engramsim-table-BYTES.bin; written once, then reused)");
    cmd->add_option("--repeat", opt->repeat,
                    "Alternate the Engram run and the baseline N times; report the overhead's "
                    "median and band (results.json: repeats)")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--threads", opt->threads,
                    "Threads of the non-GEMM ops (default 1: see docs/executor.md); BLAS threads: "
                    "OPENBLAS_NUM_THREADS")
        ->check(CLI::PositiveNumber);
    cmd->callback([opt] { execute(*opt); });
}

void add_calibrate_command(CLI::App& app) {
    struct Opt {
        std::string config, out_dir, table_file;
        bool quick = false;
    };
    auto opt = std::make_shared<Opt>();
    auto* cmd = app.add_subcommand(
        "calibrate", "Measure this machine at a run config's shapes with the executor's own code "
                     "(GEMMs, attention, the Engram gather, the gather model): kernel profiles, a "
                     "hardware section (the CPU as the accelerator) and sim keys that the "
                     "simulator reads (engramsim validate serving uses them)");
    cmd->add_option("config", opt->config, "Run config file")->required();
    cmd->add_option("-o,--out", opt->out_dir,
                    "Write profiles/, hardware.json, sim.json and calibration.json here")
        ->required();
    cmd->add_flag("--quick", opt->quick, "Fewer shapes and repeats");
    cmd->add_option("--table-file", opt->table_file,
                    "sim.table nvme: the table file the drive is measured on (as execute)");
    cmd->callback([opt] {
        const nlohmann::json cfg = sim::load_run_config(opt->config);
        executor::CalibrateOptions co;
        co.quick = opt->quick;
        co.table_file = opt->table_file;
        co.say = [](const std::string& s) { std::cerr << "calibrate: " << s << "\n"; };
        // What the executor cannot serve here is refused before anything is measured: the
        // calibration allocates the table the executor gathers from.
        executor::ExecuteOptions check;
        check.table_file = opt->table_file;
        executor::check_config(cfg, check);
        const nlohmann::json cal = executor::calibrate(cfg, opt->out_dir, co);
        const auto& m = cal["measured"];
        TextTable t({"<measured", "value"});
        t.add({"GEMM, best rate", fixed(m["gemm_best_flop_per_s"].get<double>() / 1e9, 1) + " GFLOP/s"});
        t.add({"elementwise (one thread)", fixed(m["elementwise_bytes_per_s"].get<double>() / 1e9, 2) + " GB/s"});
        t.add({"one small op", fixed(m["op_floor_s"].get<double>() * 1e6, 2) + " us"});
        t.add({"random row latency", fixed(m["row_latency_s"].get<double>() * 1e9, 1) + " ns"});
        t.add({"gather: per row / fixed",
               fixed(m["gather_line"]["per_row_s"].get<double>() * 1e9, 2) + " ns / " +
                   fixed(m["gather_line"]["fixed_s"].get<double>() * 1e6, 1) + " us"});
        t.add({"dedup", fixed(m["dedup_keys_per_s"].get<double>() / 1e6, 1) + " M keys/s"});
        std::cout << "engramsim calibrate: " << opt->out_dir << "\n\n";
        t.print(std::cout, "  ");
    });
}

void add_validate_serving(CLI::App& validate) {
    struct Opt {
        std::vector<std::string> configs;
        std::string out_dir, plot_dir, calibration, table_file;
        bool quick = false, json = false;
        int repeat = 0, interleaved = -1, controls = 0;
    };
    auto opt = std::make_shared<Opt>();
    auto* cmd = validate.add_subcommand(
        "serving", "Predict each config's serving run with the simulator from a calibration of "
                   "this machine, then execute it (engramsim execute) and compare: tok/s, mean "
                   "step, TTFT, TPOT, stall and overhead against no Engram, and step by step");
    cmd->add_option("configs", opt->configs,
                    "Run configs (default: executor/configs/serving/*.json; --quick: its quick-* "
                    "ones)");
    cmd->add_flag("--quick", opt->quick, "The quick subset, a quick calibration, one pair each");
    cmd->add_option("--repeat", opt->repeat,
                    "Engram / baseline pairs executed per config (default 2; --quick 1)")
        ->check(CLI::Range(1, 100));
    cmd->add_option("--interleaved", opt->interleaved,
                    "Interleaved executions per config (the Engram run and its baseline step by "
                    "step, alternating; execute_interleaved): the measured overhead is their "
                    "median. 0: the separate pairs' overhead (default 2; --quick 1)")
        ->check(CLI::Range(0, 100));
    cmd->add_option("--control", opt->controls,
                    "A/A controls per config: the baseline interleaved with itself; the "
                    "\"overhead\" between them is the interleaved measurement's own bias and "
                    "noise (default 0)")
        ->check(CLI::Range(0, 100));
    cmd->add_option("--calibration", opt->calibration,
                    "Calibration folder: reused where it holds one, else written there "
                    "(default: OUT/calibration, or build/calibration without -o)");
    cmd->add_option("--table-file", opt->table_file,
                    "sim.table nvme: the table file (as execute)");
    cmd->add_option("-o,--out", opt->out_dir,
                    "Write validation.json, steps.csv and timelines/ (each config's predicted "
                    "and measured Perfetto timelines) here");
    cmd->add_option("--plot", opt->plot_dir, "Write serving_validation.png here");
    cmd->add_flag("--json", opt->json, "Print validation.json instead of the table");
    cmd->callback([opt] {
        std::vector<std::string> paths = opt->configs;
        if (paths.empty()) paths = executor::default_serving_configs(opt->quick);
        if (paths.empty()) throw std::runtime_error("validate serving: no configs");
        std::vector<executor::ServingCase> cases;
        executor::ExecuteOptions check;
        check.table_file = opt->table_file;
        for (const auto& p : paths) {  // every config resolved (and refused) before anything runs
            cases.push_back({std::filesystem::path(p).stem().string(), p, sim::load_run_config(p)});
            try {
                executor::check_config(cases.back().config, check);
            } catch (const std::exception& e) {
                throw std::runtime_error(p + ": " + e.what());
            }
        }
        executor::ServingOptions so;
        so.quick = opt->quick;
        so.table_file = opt->table_file;
        if (!opt->out_dir.empty()) so.timeline_dir = opt->out_dir + "/timelines";
        so.repeat = opt->repeat > 0 ? opt->repeat : (opt->quick ? 1 : 2);
        so.interleaved = opt->interleaved >= 0 ? opt->interleaved : (opt->quick ? 1 : 2);
        so.controls = opt->controls;
        so.calibration_dir = !opt->calibration.empty() ? opt->calibration
                             : !opt->out_dir.empty()   ? opt->out_dir + "/calibration"
                                                       : "build/calibration";
        so.say = [](const std::string& s) { std::cerr << "validate serving: " << s << "\n"; };
        auto save = [opt](const executor::ServingSummary& s, const nlohmann::json& j) {
            if (opt->out_dir.empty()) return;
            write_output(opt->out_dir, "validation.json", [&](std::ostream& f) { f << j.dump(2) << '\n'; });
            write_output(opt->out_dir, "steps.csv", [&](std::ostream& f) { executor::write_steps_csv(s, f); });
        };
        // After each round the comparison so far ("complete": false), so a stop loses no round.
        so.on_round = [&](const executor::ServingSummary& s) {
            save(s, executor::to_json(s, producer()));
            if (!opt->out_dir.empty())
                std::cerr << "validate serving: round " << s.rounds_done << " of " << s.rounds
                          << " done, written to " << opt->out_dir << "/validation.json\n";
        };
        const executor::ServingSummary s = executor::validate_serving(cases, so);
        const nlohmann::json j = executor::to_json(s, producer());
        save(s, j);
        if (!opt->plot_dir.empty())
            write_and_plot(j, opt->plot_dir, "serving_validation.json",
                           "executor/plot_serving_validation.py");
        if (opt->json) {
            std::cout << j.dump(2) << '\n';
            return;
        }
        auto pe = [](const executor::Versus& v, int digits) {
            return fixed(v.predicted, digits) + " / " + fixed(v.measured, digits) + " (" +
                   (v.error_pct() >= 0 ? "+" : "") + fixed(v.error_pct(), 1) + "%)";
        };
        std::vector<std::string> head = {"<config", "tok/s pred / meas (err)",
                                         "mean step ms pred / meas (err)", "overhead % pred / meas",
                                         "meas: separate runs"};
        if (so.controls > 0) head.push_back("A/A control");
        head.push_back("step |err| p50 / p90");
        TextTable t(head);
        auto span = [](const std::vector<double>& v) {
            if (v.empty()) return std::string("-");
            const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
            return v.size() == 1 ? fixed(*lo, 2) : fixed(*lo, 2) + " to " + fixed(*hi, 2);
        };
        for (const auto& o : s.outcomes) {
            executor::Versus ms{o.mean_step_s.predicted * 1e3, o.mean_step_s.measured * 1e3};
            std::vector<std::string> row = {
                o.name, pe(o.tok_per_s, 1), pe(ms, 2),
                fixed(o.overhead_pct.predicted, 2) + " / " + fixed(o.overhead_pct.measured, 2) +
                    (o.measured_overhead_interleaved.size() > 1
                         ? " (" + span(o.measured_overhead_interleaved) + ")"
                         : ""),
                span(o.measured_overhead_runs)};
            if (so.controls > 0) row.push_back(span(o.control_overhead));
            row.push_back(fixed(o.step_error_p50_pct, 1) + "% / " + fixed(o.step_error_p90_pct, 1) + "%");
            t.add(row);
        }
        std::cout << "engramsim validate serving: the simulator (from a calibration alone) vs "
                     "the executor, on this machine\n\n";
        t.print(std::cout, "  ");
        std::cout << "\n  tok/s |error|: median " << fixed(s.tok_error_median_pct, 1) << "%, worst "
                  << fixed(s.tok_error_worst_pct, 1) << "% (targets 10%, 20%)\n"
                  << "  mean step |error|: median " << fixed(s.step_error_median_pct, 1)
                  << "%, worst " << fixed(s.step_error_worst_pct, 1) << "%\n"
                  << "  overhead within max(1 point, 20%): " << s.overhead_within_target << " of "
                  << s.outcomes.size() << " (measured "
                  << (so.interleaved > 0 ? "interleaved" : "in separate runs")
                  << "); same ranking: " << (s.same_overhead_rank ? "yes" : "no")
                  << " (Kendall's tau " << fixed(s.overhead_rank_tau, 2) << ")";
        if (s.band_cases > 0)
            std::cout << "\n  overhead predicted outside its interleaved runs' band (a "
                      << fixed(100 * s.band_confidence, 0) << "% interval of the median): "
                      << s.overhead_outside_band << " of " << s.band_cases;
        std::cout << "\n  rows (distinct rows fetched, DRAM-cache hits) exactly as planned: "
                  << s.rows_exact << " of " << s.outcomes.size() << "\n";
        for (const auto& o : s.outcomes)
            if (o.cache_hits_measured > 0 || o.cache_hits_predicted > 0 || !o.rows_exact())
                std::cout << "    " << o.name << ": DRAM-cache hits " << thousands(o.cache_hits_predicted)
                          << " predicted / " << thousands(o.cache_hits_measured) << " measured of "
                          << thousands(o.unique_rows_measured) << " distinct rows\n";
        // Where the Engram's cost goes, summed over each run: which part a missed overhead is.
        TextTable path({"<config", "Engram modules ms pred / meas (err)",
                        "fetch issue->ready ms pred / meas (err)", "stall ms pred / meas"});
        auto in_ms = [](const executor::Versus& v) {
            return executor::Versus{v.predicted * 1e3, v.measured * 1e3};
        };
        for (const auto& o : s.outcomes)
            path.add({o.name, pe(in_ms(o.engram_module_s), 1), pe(in_ms(o.fetch_s), 2),
                      fixed(o.stall_s.predicted * 1e3, 2) + " / " + fixed(o.stall_s.measured * 1e3, 2)});
        std::cout << "\n  the Engram path, summed over the run (the first separate run):\n\n";
        path.print(std::cout, "  ");
        // Where the overhead lies: prefill or decode steps (a miss's phase).
        TextTable phase({"<config", "steps with prompt tokens", "Engram - baseline ms pred / meas",
                         "decode-only steps", "Engram - baseline ms pred / meas "});
        for (const auto& o : s.outcomes)
            phase.add({o.name, std::to_string(o.prefill_steps),
                       fixed(o.overhead_prefill_steps_s.predicted * 1e3, 1) + " / " +
                           fixed(o.overhead_prefill_steps_s.measured * 1e3, 1),
                       std::to_string(o.steps - o.prefill_steps),
                       fixed(o.overhead_decode_steps_s.predicted * 1e3, 1) + " / " +
                           fixed(o.overhead_decode_steps_s.measured * 1e3, 1)});
        std::cout << "\n  where the overhead lies, by phase (measured: the interleaved run at the "
                     "median overhead):\n\n";
        phase.print(std::cout, "  ");
    });
}

}  // namespace engramsim::cli
