// engramsim sweep SPEC|CONFIG|PRESET [--axis KEY=V1,V2 ...]: a run config varied along axes,
// every point simulated with its references, written point by point into a folder (sim/sweep/sweep.h)
// and summarised as results.json, results.csv, a terminal table and optionally a figure.
// Also the engine of the spec-file studies (studies/<name>/study.json, embedded in the binary).
#include "cli/sweep_command.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "build_info/build_info.h"
#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "model/embedded.h"
#include "sim/sweep/mpi_world.h"
#include "sim/timing/plan.h"

namespace engramsim::cli {

namespace {

// An axis value: a string as it is, an inline section by its name, anything else as JSON.
std::string value_cell(const nlohmann::json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("name") && v["name"].is_string()) return v["name"];
    return v.dump();
}

std::string num_cell(const nlohmann::json& s, const char* key, int digits, const char* suffix = "") {
    return s.contains(key) ? fixed(s[key].get<double>(), digits) + suffix : "-";
}

void print_sweep(const sim::SweepSpec& spec, const std::vector<nlohmann::json>& records) {
    std::cout << "engramsim sweep " << spec.name << ": " << records.size() << " points";
    if (!spec.description.empty()) std::cout << "\n" << spec.description;
    std::cout << "\n\n";
    // A sweep of clusters (configs with a cluster section) shows per-GPU numbers instead.
    const bool cluster = sim::has_cluster_points(records);
    std::vector<std::string> head;
    for (const auto& k : spec.columns()) head.push_back("<" + k);
    if (cluster)
        for (const char* h : {"GPUs", "tok/s per GPU", "in HBM", "vs in HBM", "all-to-all",
                              "Engram stall", "decode step ms", "decode tok/s per GPU",
                              "Engram net share", "table GB per node"})
            head.push_back(h);
    else
        for (const char* h : {"tok/s", "vs no Engram", "vs in HBM", "stall s", "rows HBM",
                              "rows DRAM", "rows NVMe"})
            head.push_back(h);
    TextTable t(head);
    std::vector<std::string> errors;
    for (const auto& r : records) {
        std::vector<std::string> row;
        for (const auto& k : spec.columns()) row.push_back(value_cell(r["axes"][k]));
        if (r.contains("error")) {
            errors.push_back("point " + std::to_string(r["index"].get<size_t>()) + ": " +
                             r["error"].get<std::string>());
            row.push_back("error " + std::to_string(errors.size()));
            while (row.size() < head.size()) row.push_back("");
        } else {
            const auto& s = r["summary"];
            if (cluster) {
                auto share = [&](const char* k) {
                    return s.contains(k) ? fixed(s[k].get<double>() * 100, 2) + "%" : "-";
                };
                row.push_back(s.contains("gpus") ? std::to_string(s["gpus"].get<int>()) : "-");
                row.push_back(num_cell(s, "per_gpu_tok_per_s", 1));
                row.push_back(num_cell(s, "table_in_hbm_per_gpu_tok_per_s", 1));
                row.push_back(num_cell(s, "overhead_vs_table_in_hbm_pct", 3, "%"));
                row.push_back(share("all_to_all_share"));
                row.push_back(share("engram_stall_share"));
                row.push_back(s.contains("mean_decode_step_s")
                                  ? fixed(s["mean_decode_step_s"].get<double>() * 1e3, 3)
                                  : "-");
                row.push_back(num_cell(s, "decode_tok_per_s_per_gpu", 1));
                row.push_back(share("engram_network_share"));
                row.push_back(s.contains("table_bytes_per_node")
                                  ? fixed(s["table_bytes_per_node"].get<double>() / 1e9, 1)
                                  : "-");
                t.add(row);
                continue;
            }
            row.push_back(num_cell(s, "throughput_tok_per_s", 2));
            row.push_back(num_cell(s, "overhead_vs_no_engram_pct", 2, "%"));
            row.push_back(num_cell(s, "overhead_vs_table_in_hbm_pct", 2, "%"));
            row.push_back(num_cell(s, "stall_s", 4));
            for (const char* k : {"rows_from_hbm", "rows_from_host_dram", "rows_from_nvme"})
                row.push_back(thousands(s.value(k, uint64_t(0))));
        }
        t.add(row);
    }
    t.print(std::cout, "  ");
    if (!errors.empty()) std::cout << "\nErrors:\n";
    for (size_t i = 0; i < errors.size(); ++i)
        std::cout << "  " << i + 1 << ". " << errors[i] << '\n';
}

void progress_line(const sim::SweepProgress& p, int jobs) {
    static double total_wall = 0;
    static size_t ran = 0;
    total_wall += p.wall_s;
    ++ran;
    const size_t left = p.total - p.done;
    std::string status;
    if (p.record->contains("error")) {
        status = "error: " + (*p.record)["error"].get<std::string>();
    } else {
        const auto& s = (*p.record)["summary"];
        status = fixed(s["throughput_tok_per_s"].get<double>(), 2) + " tok/s";
        if (s.contains("overhead_vs_table_in_hbm_pct") && s.contains("per_gpu_tok_per_s"))
            status += ", " + fixed(s["overhead_vs_table_in_hbm_pct"].get<double>(), 3) +
                      "% vs the table in HBM";
        if (s.contains("overhead_vs_no_engram_pct"))
            status += ", " + fixed(s["overhead_vs_no_engram_pct"].get<double>(), 2) +
                      "% vs no Engram";
    }
    std::cerr << "[" << p.done << "/" << p.total << "] " << p.point->label() << ": " << status
              << " (" << fixed(p.wall_s, 1) << " s";
    if (left > 0)
        std::cerr << ", about " << fixed(total_wall / double(ran) * double(left) / jobs, 0)
                  << " s left";
    std::cerr << ")" << std::endl;
}

}  // namespace

std::string producer() {
    return std::string("engramsim ") + build::version() + " (" + build::git_commit() + ")";
}

int run_sweep_and_report(const sim::SweepSpec& spec, const SweepCommandOptions& opt) {
    const bool root = sim::mpi::rank() == 0;
    if (opt.list) {
        // --list prints the points and runs nothing: an option for the run would do nothing.
        for (const auto& [given, flag] : {std::pair{opt.jobs != 1, "-j"}, {opt.resume, "--resume"},
                                          {opt.plot, "--plot"}, {opt.json, "--json"},
                                          {!opt.out_dir.empty(), "-o"}})
            if (given)
                throw std::invalid_argument(std::string(flag) +
                                            " does nothing with --list, which prints the points "
                                            "and runs nothing");
        if (!root) return 0;
        const auto points = sim::expand_sweep(spec);
        std::cout << spec.name << ": " << points.size() << " points\n";
        for (const auto& p : points) std::cout << "  " << p.index << "  " << p.label() << '\n';
        return 0;
    }
    const std::string dir = opt.out_dir.empty() ? "sweep-" + spec.name : opt.out_dir;
    sim::SweepOptions so;
    so.dir = dir;
    so.jobs = opt.jobs;
    so.resume = opt.resume;
    so.producer = producer();
    const int ranks = sim::mpi::size();
    const int parallel = ranks > 1 ? ranks - 1 : std::max(1, opt.jobs);
    so.progress = [&](const sim::SweepProgress& p) { progress_line(p, parallel); };
    // Once the folder is ready (a refused folder or spec is reported before any banner).
    so.started = [&](const sim::SweepProgress& p) {
        std::cerr << "engramsim sweep " << spec.name << ": " << p.total << " points into " << dir
                  << "/"
                  << (p.reused ? " (" + std::to_string(p.reused) + " done before, kept)" : "")
                  << (ranks > 1      ? ", on " + std::to_string(ranks - 1) + " MPI worker ranks"
                      : opt.jobs > 1 ? ", " + std::to_string(opt.jobs) + " at a time"
                                     : "")
                  << std::endl;
    };
    const auto records = sim::run_sweep(spec, so, sim::simulator_evaluator(spec.references, dir + "/references"));
    if (!root) return 0;  // an MPI worker rank: rank 0 writes and prints the results
    const nlohmann::json results = sim::sweep_results_json(spec, records, so.producer);
    if (!(std::ofstream(dir + "/results.json") << results.dump(1) << '\n') ||
        !(std::ofstream(dir + "/results.csv") << sim::sweep_csv(spec, records)))
        throw std::runtime_error(dir + ": cannot write the results");
    if (opt.plot) write_and_plot(results, dir, "results.json", "sim/sweep/plot_sweep.py");
    if (opt.json)
        std::cout << results.dump(1) << '\n';
    else
        print_sweep(spec, records);
    size_t failed = 0;
    for (const auto& r : records) failed += r.contains("error");
    std::cerr << "engramsim sweep " << spec.name << ": results in " << dir
              << "/results.json, results.csv" << (opt.plot ? ", sweep.png" : "") << std::endl;
    if (failed) {
        std::cerr << "engramsim: " << failed << " of " << records.size()
                  << " points failed (their errors are in the table and in results.json)"
                  << std::endl;
        return 1;
    }
    return 0;
}

sim::SweepSpec load_sweep(const std::string& spec_or_config, const std::vector<std::string>& axes) {
    sim::SweepSpec spec;
    std::optional<nlohmann::json> doc;
    if (std::filesystem::exists(spec_or_config)) doc = config::read_document(spec_or_config);
    if (doc && sim::is_sweep_spec(*doc)) {
        const auto dir = std::filesystem::path(spec_or_config).parent_path().string();
        spec = sim::parse_sweep_spec(*doc, spec_or_config, dir.empty() ? "." : dir);
    } else {
        spec.base = sim::load_run_config(spec_or_config);
        spec.name = std::filesystem::path(spec_or_config).stem().string();
        if (axes.empty())
            throw config::ConfigError("sweep: '" + spec_or_config +
                                      "' is a run config; give at least one --axis KEY=V1,V2");
    }
    for (const auto& text : axes) {
        sim::SweepAxis a = sim::parse_axis(text);
        const auto taken = spec.columns();
        for (const auto& k : a.keys)
            if (std::find(taken.begin(), taken.end(), k) != taken.end())
                throw config::ConfigError("--axis " + a.name() + ": " + k + " is already varied");
        spec.axes.push_back(std::move(a));
    }
    return spec;
}

void add_sweep_options(CLI::App* cmd, SweepCommandOptions& opt, const std::string& prefix) {
    cmd->add_option("-o,--out", opt.out_dir,
                    "Folder for spec.json, points/, results.json, results.csv (default: " +
                        prefix + "-NAME)");
    cmd->add_option("-j,--jobs", opt.jobs, "Points simulated at a time (forked workers); under mpirun every worker rank "
                    "simulates one point at a time")
        ->check(CLI::Range(1, 256));
    cmd->add_flag("--resume", opt.resume,
                  "Finish an interrupted sweep in the same folder: run only the missing points");
    cmd->add_flag("--json", opt.json, "Print results.json instead of the table");
    cmd->add_flag("--plot", opt.plot, "Also write sweep.png (needs python3-matplotlib)");
    cmd->add_flag("--list", opt.list, "Print the points and exit (nothing runs)");
}

void add_sweep_command(CLI::App& app) {
    auto opt = std::make_shared<SweepCommandOptions>();
    auto spec = std::make_shared<std::string>();
    auto axes = std::make_shared<std::vector<std::string>>();
    auto no_refs = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "sweep", "Vary a run config along axes and simulate every point with its references "
                 "(crash-safe: each point is saved as it finishes; --resume finishes a sweep)");
    cmd->add_option("spec", *spec,
                    "Sweep file ({\"base\", \"axes\": [{\"key\", \"values\"}]}), run config "
                    "file or backbone preset")
        ->required();
    cmd->add_option("--axis", *axes,
                    "KEY=V1,V2,...: one axis (repeatable), e.g. placement.hbm_capacity=0,1%,10%; "
                    "KEY=[...] for JSON values")
        ->allow_extra_args(false);
    cmd->add_flag("--no-references", *no_refs,
                  "Skip the table-in-HBM and no-Engram runs of every point");
    add_sweep_options(cmd, *opt, "sweep");
    cmd->callback([opt, spec, axes, no_refs] {
        sim::SweepSpec s = load_sweep(*spec, *axes);
        if (*no_refs) s.references = false;
        if (const int rc = run_sweep_and_report(s, *opt); rc != 0) std::exit(rc);
    });
}

}  // namespace engramsim::cli
