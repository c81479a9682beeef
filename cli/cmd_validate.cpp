// engramsim validate host-fetch [CONFIG|PRESET]: the cpu-gather fetch's host work executed on
// this machine, fetch by fetch, next to the simulator's prediction with parameters calibrated
// by microbenchmarks (sim/validation/host_fetch.h).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/checks.h"
#include "model/config.h"
#include "model/resources.h"
#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "model/units.h"
#include "sim/sweep/experiment.h"
#include "sim/validation/host_fetch.h"
#include "sim/validation/nvme_fetch.h"
#include "sim/timing/plan.h"

namespace engramsim::cli {

namespace {

struct ValidateOptions {
    std::string config = "dense-4b";  // the paper's Table 4 run
    std::vector<int> threads{1, 2};
    std::string table = "4 GiB";
    int repeats = 3;
    int idle_us = 200;
    uint64_t steps = 0;
    std::string out_dir;
    std::string plot_dir;
    bool json = false;
};

std::string pct(double x) { return (x >= 0 ? "+" : "") + fixed(x, 1) + "%"; }

// A size option (--table, --size): a byte quantity of at least 1 MiB.
uint64_t size_option(const std::string& flag, const std::string& text) {
    double bytes = 0;
    try {
        bytes = units::parse(text, units::Dim::Bytes);
    } catch (const std::exception& e) {
        throw std::invalid_argument(flag + ": " + e.what());
    }
    if (!(bytes >= 1 << 20)) throw std::invalid_argument(flag + ": at least 1 MiB, got " + text);
    if (!(bytes < config::kTwoTo64))
        throw std::invalid_argument(flag + ": " + text + " does not fit 64-bit bytes");
    return uint64_t(bytes);
}

// A table file of `bytes` at `path` that will be written (missing or smaller) must fit the free
// space of its folder: refused before a byte is written.
void require_disk_space(const std::string& path, uint64_t bytes) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const uint64_t have = fs::is_regular_file(path, ec) ? fs::file_size(path, ec) : 0;
    if (have >= bytes) return;
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    const fs::space_info space = fs::space(dir, ec);
    if (ec) return;  // the open reports a missing folder with its own words
    if (bytes - have > space.available)
        throw std::invalid_argument(
            "--size: writing " + rounded(double(bytes), units::Dim::Bytes) + " to " + path +
            " needs " + rounded(double(bytes - have), units::Dim::Bytes) + " more, but " +
            dir.string() + " has " + rounded(double(space.available), units::Dim::Bytes) +
            " free");
}

// --plot DIR: the report without its config, one row per (run, fetch) from `row`, and the
// embedded plot script run on it.
template <class Validation, class Row>
void plot_report(const std::string& dir, nlohmann::json data, const Validation& v,
                 const std::vector<std::string>& columns, const Row& row,
                 const std::string& json_name, const std::string& script) {
    if (dir.empty()) return;
    data.erase("resolved_config");
    data["fetches"] = nlohmann::json::array();
    for (const auto& run : v.runs)
        for (const auto& f : run.fetches) data["fetches"].push_back(row(run, f));
    data["fetch_columns"] = columns;
    write_and_plot(data, dir, json_name, script);
}

// -o DIR: validation.json and fetches.csv.
template <class Validation>
void write_report(const std::string& dir, const nlohmann::json& j, const Validation& v) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/validation.json") << j.dump(2) << '\n';
    std::ofstream csv(dir + "/fetches.csv");
    v.write_csv(csv);
}

void print(const sim::HostValidation& v) {
    const auto& c = v.calibration;
    std::cout << "Host fetch (cpu-gather) on this machine vs the simulator's model\n"
              << "table: " << rounded(double(v.table_bytes), units::Dim::Bytes) << " in "
              << thousands(c.table_rows) << " rows of " << fixed(c.row_bytes, 0)
              << " B (huge pages); each fetch the median of " << v.repeats << " passes, "
              << v.idle_us << " us idle before each\n\n"
              << "calibration (microbenchmarks, not the run):\n"
              << "  row latency             " << fixed(c.row_latency_s * 1e9, 1)
              << " ns (pointer chase)\n"
              << "  one-thread gather rate  " << fixed(c.gather_rows_per_s / 1e6, 2)
              << " M rows/s -> " << fixed(c.outstanding_per_thread, 2)
              << " rows in flight per thread\n"
              << "  " << c.all_threads << "-thread gather (DRAM) " << fixed(c.all_threads_rows_per_s / 1e6, 2)
              << " M rows/s = " << fixed(c.dram_bytes_per_s / 1e9, 1) << " GB/s of traffic ("
              << fixed(100 * c.dram_bytes_per_s / c.memcpy_bytes_per_s, 0) << "% of memcpy's "
              << fixed(c.memcpy_bytes_per_s / 1e9, 1) << " GB/s)\n"
              << "  dedup                   " << fixed(c.dedup_rate_per_thread / 1e6, 1)
              << " M keys/s per thread\n";
    for (const auto& l : c.lines)
        std::cout << "  gather line, " << l.threads << " thread" << (l.threads > 1 ? "s" : " ")
                  << "  " << fixed(l.fixed_s * 1e6, 1) << " us + " << fixed(l.per_row_s * 1e9, 2)
                  << " ns per row (" << l.sizes.size() << " sizes up to "
                  << thousands(l.sizes.back()) << " rows, after " << v.idle_us << " us idle)\n";
    std::cout << "\n";
    TextTable t({"threads", "<phase", "fetches", "unique rows", "gather meas/pred", "error",
                 "dedup meas/pred", "error", "host error", "|err| p50/p90"});
    auto ms = [](double s) { return fixed(s * 1e3, 1); };
    for (const auto& run : v.runs)
        for (const char* phase : {"all", "prefill", "decode"}) {
            const auto s = sim::summarize(run, phase);
            if (s.fetches == 0) continue;
            t.add({std::to_string(run.threads), phase, thousands(s.fetches),
                   thousands(s.unique_rows), ms(s.measured_s) + " / " + ms(s.predicted_s) + " ms",
                   pct(s.error_pct), ms(s.dedup_s) + " / " + ms(s.predicted_dedup_s) + " ms",
                   pct(s.dedup_error_pct), pct(s.host_error_pct),
                   fixed(s.abs_error_p50_pct, 0) + "% / " + fixed(s.abs_error_p90_pct, 0) + "%"});
        }
    t.print(std::cout, "  ");
    std::cout << "\nerror = (predicted - measured) / measured, summed over the fetches; host = "
                 "dedup + gather; |err|: host work per fetch.\n"
                 "To simulate this machine's host: sim.row_access_latency \""
              << fixed(c.row_latency_s * 1e9, 1) << " ns\", sim.outstanding_per_thread "
              << fixed(c.outstanding_per_thread, 2) << ", sim.dedup_rate_per_thread "
              << fixed(c.dedup_rate_per_thread / 1e6, 1) << "M, hardware host.dram_bandwidth \""
              << fixed(c.dram_bytes_per_s / 1e9, 1) << " GB/s\"";
    for (const auto& l : c.lines)
        std::cout << ", sim.gather_dispatch \"" << fixed(l.fixed_s * 1e6, 1) << " us\" ("
                  << l.threads << " thread" << (l.threads > 1 ? "s" : "") << ")";
    std::cout << ".\n";
}

void run(const ValidateOptions& opt) {
    sim::HostValidationOptions o;
    o.threads = opt.threads;
    o.repeats = opt.repeats;
    o.max_steps = opt.steps;
    o.idle_us = opt.idle_us;
    o.table_bytes = size_option("--table", opt.table);
    resources::require_memory(double(o.table_bytes), "--table",
                              "the host table, allocated and filled in this machine's DRAM");
    o.progress = [](const std::string& s) {
        std::cerr << "validate host-fetch: " << s << std::endl;
    };
    const nlohmann::json cfg = sim::load_run_config(opt.config);
    const sim::HostValidation v = sim::validate_host_fetch(cfg, o);
    const nlohmann::json j = v.to_json(producer());
    write_report(opt.out_dir, j, v);
    plot_report(opt.plot_dir, j, v,
                {"threads", "prefill", "unique_rows", "measured_host_s", "predicted_host_s"},
                [](const sim::HostValidationRun& run, const sim::HostFetchSample& f) {
                    return nlohmann::json{run.threads, f.prefill ? 1 : 0, f.unique_rows,
                                          f.gather_s + f.dedup_s,
                                          f.predicted_s + f.predicted_dedup_s};
                },
                "host_fetch_validation.json", "sim/validation/plot_host_validation.py");
    if (opt.json)
        std::cout << j.dump(2) << '\n';
    else
        print(v);
}

// ---- validate nvme-fetch ----

struct NvmeOptions {
    std::string config;  // empty: the paper's run with its table on NVMe, nothing cached
    std::string file;
    std::string size = "2 GiB";
    std::vector<int> depths{4, 32};
    int saturation = 64;
    std::vector<int> curve;
    uint64_t steps = 24;
    int repeats = 1;
    std::string out_dir;
    std::string plot_dir;
    bool json = false;
};

void print(const sim::NvmeValidation& v) {
    const auto& c = v.calibration;
    std::cout << "NVMe fetch on this machine's disk vs the simulator's nvme model\n"
              << "file: " << c.file << ", " << rounded(double(c.file_bytes), units::Dim::Bytes)
              << " in blocks of " << fixed(c.io_bytes, 0) << " B (direct I/O), one read per unique "
              << fixed(c.row_bytes, 0) << "-B row; fetches of every " << v.step_stride
              << "th step, each the median of " << v.repeats << " pass(es)\n\n"
              << "calibration (microbenchmarks, not the run):\n"
              << "  read latency           " << fixed(c.read_latency_s * 1e6, 1)
              << " us (one read at a time, mean)\n"
              << "  random read IOPS       " << fixed(c.random_read_iops / 1e3, 1) << "k (at depth "
              << c.saturation_depth << ")\n"
              << "  sequential read        " << fixed(c.read_bytes_per_s / 1e9, 2) << " GB/s\n"
              << "  dedup                  " << fixed(c.dedup_rate_per_thread / 1e6, 1)
              << " M keys/s per thread\n"
              << "  IOPS curve             ";
    for (size_t i = 0; i < c.curve.size(); ++i)
        std::cout << (i ? ", " : "") << fixed(c.curve[i].second / 1e3, 1) << "k at "
                  << c.curve[i].first;
    std::cout << " (the measured law interpolates it)\n";
    using Law = sim::FetchParams::NvmeQueueing;
    for (const auto& [d, r] : c.iops_at_depth) {
        std::string in_run;  // the rate the run's reads achieved at this depth: the drive's drift
        for (const auto& run : v.runs)
            if (run.queue_depth == d) {
                const auto s = sim::summarize(run, "all");
                if (s.read_s > 0)
                    in_run =
                        ", in the run " + fixed(double(s.unique_rows) / s.read_s / 1e3, 1) + "k";
            }
        std::cout << "  IOPS at depth " << d << (d < 10 ? "        " : "       ")
                  << fixed(r / 1e3, 1) << "k measured" << in_run << "; modeled: knee "
                  << fixed(sim::nvme_read_rate(c.params(d)) / 1e3, 1) << "k, linear "
                  << fixed(sim::nvme_read_rate(c.params(d, Law::Linear)) / 1e3, 1) << "k, curve "
                  << fixed(sim::nvme_read_rate(c.params(d, Law::Measured)) / 1e3, 1) << "k"
                  << (c.on_curve(d) ? " (a curve depth: calibrated, not predicted)" : "") << "\n";
    }
    std::cout << "\n";
    TextTable t({"depth", "<phase", "fetches", "reads", "read meas/knee", "error", "linear",
                 "error", "curve", "error", "dedup meas/pred", "host error", "|err| p50/p90"});
    auto ms = [](double s) { return fixed(s * 1e3, 1); };
    for (const auto& run : v.runs)
        for (const char* phase : {"all", "prefill", "decode"}) {
            const auto s = sim::summarize(run, phase);
            if (s.fetches == 0) continue;
            t.add({std::to_string(run.queue_depth), phase, thousands(s.fetches),
                   thousands(s.unique_rows), ms(s.read_s) + " / " + ms(s.predicted_read_s) + " ms",
                   pct(s.read_error_pct), ms(s.predicted_read_linear_s) + " ms",
                   pct(s.read_error_linear_pct), ms(s.predicted_read_measured_s) + " ms",
                   pct(s.read_error_measured_pct),
                   ms(s.dedup_s) + " / " + ms(s.predicted_dedup_s) + " ms", pct(s.host_error_pct),
                   fixed(s.abs_error_p50_pct, 0) + "% / " + fixed(s.abs_error_p90_pct, 0) + "%"});
        }
    t.print(std::cout, "  ");
    std::cout << "\nerror = (predicted - measured) / measured, summed over the fetches; host = "
                 "dedup + read (knee); |err|: per fetch (knee); curve: sim.nvme_queueing "
                 "measured on the IOPS curve.\nTo simulate this drive, "
                 "\"hardware\": {\"nvme\": "
              << c.hardware_nvme().dump()
              << "} with sim.nvme_queue_depth as deep as the engine reads and sim.nvme_queueing "
                 "the law that fits, or measured (these rates, interpolated).\n";
}

void run_nvme(const NvmeOptions& opt) {
    sim::NvmeValidationOptions o;
    o.file = opt.file;
    o.queue_depths = opt.depths;
    o.saturation_depth = opt.saturation;
    o.curve_depths = opt.curve;
    o.steps = opt.steps;
    o.repeats = opt.repeats;
    o.file_bytes = size_option("--size", opt.size);
    require_disk_space(opt.file, o.file_bytes);
    o.progress = [](const std::string& s) { std::cerr << "validate nvme-fetch: " << s << std::endl; };
    nlohmann::json cfg;
    if (opt.config.empty()) {
        cfg = sim::load_run_config("dense-4b");
        cfg = sim::with_key(cfg, "sim.table", "nvme");
        cfg = sim::with_key(cfg, "sim.mechanism", "nvme");
        cfg = sim::with_key(cfg, "placement.dram_capacity", "0");
    } else {
        cfg = sim::load_run_config(opt.config);
    }
    const sim::NvmeValidation v = sim::validate_nvme_fetch(cfg, o);
    const nlohmann::json j = v.to_json(producer());
    write_report(opt.out_dir, j, v);
    plot_report(
        opt.plot_dir, j, v,
        {"queue_depth", "prefill", "unique_rows", "measured_read_s", "predicted_read_s",
         "predicted_read_linear_s", "predicted_read_measured_s"},
        [](const sim::NvmeValidationRun& run, const sim::NvmeFetchSample& f) {
            return nlohmann::json{run.queue_depth,
                                  f.prefill ? 1 : 0,
                                  f.unique_rows,
                                  f.read_s,
                                  f.predicted_read_s,
                                  f.predicted_read_linear_s,
                                  f.predicted_read_measured_s};
        },
        "nvme_fetch_validation.json", "sim/validation/plot_nvme_validation.py");
    if (opt.json)
        std::cout << j.dump(2) << '\n';
    else
        print(v);
}

}  // namespace

void add_validate_command(CLI::App& app) {
    auto* validate = app.add_subcommand(
        "validate", "Predictions next to measurements on this machine");
    validate->require_subcommand(1);
    auto opt = std::make_shared<ValidateOptions>();
    auto* cmd = validate->add_subcommand(
        "host-fetch",
        "Execute every fetch's host work of a run for real (deduplicate, gather the unique rows "
        "into staging with T threads from a table in this machine's DRAM) and compare it, fetch "
        "by fetch, with the simulator's cpu-gather model calibrated by microbenchmarks");
    cmd->add_option("config", opt->config,
                    "Run config or backbone preset (Engram in host DRAM via cpu-gather)")
        ->capture_default_str();
    cmd->add_option("--threads", opt->threads, "Gather thread counts to validate")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--table", opt->table,
                    "Host table size (this machine's memory; the row size is the config's)")
        ->capture_default_str();
    cmd->add_option("--repeats", opt->repeats, "Passes over the run; each fetch takes the median")
        ->check(CLI::Range(1, 101))
        ->capture_default_str();
    cmd->add_option("--idle-us", opt->idle_us,
                    "Sleep before each fetch and each dispatch calibration run (us): the gather "
                    "threads idle between an engine's steps")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    cmd->add_option("--steps", opt->steps, "Validate the first N steps only (0: all)")
        ->check(whole_number());
    cmd->add_option("-o,--out", opt->out_dir, "Write validation.json and fetches.csv here");
    cmd->add_option("--plot", opt->plot_dir,
                    "Write host_fetch_validation.png (measured vs predicted per fetch) here");
    cmd->add_flag("--json", opt->json, "Print validation.json instead of the table");
    cmd->callback([opt] { run(*opt); });

    auto nv = std::make_shared<NvmeOptions>();
    auto* ncmd = validate->add_subcommand(
        "nvme-fetch",
        "Read the unique rows of fetches spread over a run from a table file on a drive (one "
        "direct I/O per row, Q in flight) and compare each fetch with the simulator's nvme model "
        "calibrated by microbenchmarks of the same drive");
    ncmd->add_option("config", nv->config,
                     "Run config (sim.table nvme, nothing cached); default: the paper's run "
                     "(dense-4b) with its table on NVMe");
    ncmd->add_option("--file", nv->file,
                     "Table file on the drive to test: written once (--size bytes of a pattern) "
                     "when missing or smaller, then reused")
        ->required();
    ncmd->add_option("--size", nv->size, "Table file size")->capture_default_str();
    ncmd->add_option("--queue-depth", nv->depths, "Reads in flight to validate (one thread each)")
        ->delimiter(',')
        ->capture_default_str();
    ncmd->add_option("--saturation-depth", nv->saturation,
                     "Reads in flight when calibrating the drive's IOPS")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    ncmd->add_option("--curve-depths", nv->curve,
                     "Depths of the IOPS curve besides 1 and the saturation depth (the measured "
                     "queueing law interpolates it); default: the powers of 2 below the "
                     "saturation depth that are not validated")
        ->delimiter(',')
        ->check(CLI::Range(1, 1024));
    ncmd->add_option("--steps", nv->steps, "Fetches of this many steps, spread evenly over the run")
        ->check(CLI::Range(uint64_t(1), uint64_t(1) << 40))
        ->capture_default_str();
    ncmd->add_option("--repeats", nv->repeats, "Passes; each fetch takes the median")
        ->check(CLI::Range(1, 101))
        ->capture_default_str();
    ncmd->add_option("-o,--out", nv->out_dir, "Write validation.json and fetches.csv here");
    ncmd->add_option("--plot", nv->plot_dir,
                     "Write nvme_fetch_validation.png (measured vs predicted per fetch, the "
                     "drive's rate against depth) here");
    ncmd->add_flag("--json", nv->json, "Print validation.json instead of the table");
    ncmd->callback([nv] { run_nvme(*nv); });
    add_validate_serving(*validate);
}

}  // namespace engramsim::cli
