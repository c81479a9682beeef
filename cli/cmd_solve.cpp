// engramsim solve CONFIG --target 'METRIC OP BOUND' --vary KEY=LO..HI [--vary KEY=V1,V2 ...]:
// where the target flips as KEY varies (sim/sweep/solve.h), once per combination of the listed
// keys. Each round of the solver runs as a sweep into OUT/<combination>/round-NN/, so its points
// run in parallel (-j) and an interrupted solve finishes with --resume, reusing every point.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/solve_command.h"
#include "cli/plots.h"
#include "cli/sweep_command.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "model/files.h"
#include "sim/sweep/solve.h"
#include "sim/sweep/sweep.h"
#include "sim/timing/plan.h"

namespace engramsim::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The command line: the config, the target and the --vary texts; the rest is run_solve's.
struct SolveCli {
    std::string config, target;
    std::vector<std::string> vary;
    SolveCommandOptions opt;
};

// The folder's solve.spec.json: what this solve is; a resume of another one is refused.
void claim_folder(const std::string& dir, const json& spec, bool resume) {
    const std::string path = dir + "/solve.spec.json";
    if (fs::exists(path)) {
        if (!resume)
            throw std::runtime_error(dir + " already holds a solve; pass --resume to finish it, or "
                                     "choose another output folder");
        if (config::read_document(path) != spec)
            throw std::runtime_error(dir + " holds a different solve (its solve.spec.json differs "
                                     "from this one, or another build wrote it); choose another "
                                     "output folder");
        return;
    }
    fs::create_directories(dir);
    files::write_atomically(path, spec.dump(2) + "\n");
}

std::string round_dir(const std::string& dir, size_t combo, int round) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/combination-%03zu/round-%02d", combo, round);
    return dir + buf;
}

// The solver's evaluator for one combination: each round a sweep of KEY over the round's values.
// Points whose config was refused get NaN. Each point's summary (or error) is kept in `kept`
// by x, for solve.json.
sim::SolveEvaluator sweep_evaluator(const SolveCommandOptions& o, const json& base, const sim::SolveRange& range,
                                    const sim::SolveTarget& target, size_t combo, const std::string& label,
                                    std::shared_ptr<std::map<double, json>> kept) {
    const bool refs = target.metric.find("overhead") != std::string::npos ||
                      target.metric == "no_engram_tok_per_s" || target.metric == "table_in_hbm_tok_per_s";
    return [=, &o](const std::vector<double>& xs, int round) {
        sim::SweepSpec spec;
        spec.name = "solve";
        spec.base = base;
        spec.references = refs;
        sim::SweepAxis axis;
        axis.keys = {range.key};
        for (double x : xs) axis.values.push_back(range.config_value(x));
        spec.axes = {axis};
        sim::SweepOptions so;
        so.dir = round_dir(o.out_dir, combo, round);
        so.jobs = o.jobs;
        so.resume = o.resume;
        so.producer = producer();
        so.progress = [&](const sim::SweepProgress& p) {
            const size_t i = p.point->index;
            std::string status = p.record->contains("error")
                                     ? "refused (" + (*p.record)["error"].get<std::string>() + ")"
                                     : "no metric";
            if (!p.record->contains("error"))
                if (auto m = sim::metric_of(*p.record, target.metric))
                    status = target.metric + " " + fixed(*m, 4) + (target.holds(*m) ? " (holds)" : " (fails)");
            std::cerr << "solve" << (label.empty() ? "" : " [" + label + "]") << " round " << round
                      << ": " << range.key << "=" << range.value_text(xs[i]) << ": " << status
                      << (p.reused > 0 && p.done <= p.reused ? " (done before)" : "") << std::endl;
        };
        const auto records = sim::run_sweep(spec, so, sim::simulator_evaluator(refs, o.out_dir + "/references"));
        std::vector<double> ms;
        for (size_t i = 0; i < records.size(); ++i) {
            const json& r = records[i];
            const std::string at = range.key + "=" + range.value_text(xs[i]);
            if (r.contains("error")) {  // refused: the target fails there (the error is kept)
                (*kept)[xs[i]] = {{"error", r["error"]}};
                ms.push_back(std::nan(""));
                continue;
            }
            (*kept)[xs[i]] = {{"summary", r["summary"]}};
            const auto m = sim::metric_of(r, target.metric);
            if (!m) throw std::runtime_error("solve: " + at + ": the run reports no " + target.metric);
            ms.push_back(*m);
        }
        return ms;
    };
}

std::string answer_sentence(const sim::SolveAnswer& a, const sim::SolveRange& r, const sim::SolveTarget& t) {
    using K = sim::SolveAnswer::Kind;
    switch (a.kind) {
        case K::HoldsEverywhere:
            return t.text() + " holds over the whole range (" + r.value_text(r.lo) + " to " + r.value_text(r.hi) + ")";
        case K::FailsEverywhere:
            return t.text() + " fails over the whole range (" + r.value_text(r.lo) + " to " + r.value_text(r.hi) + ")";
        case K::Boundary: {
            const bool up = a.holds_at->x < a.fails_at->x;
            return std::string(up ? "largest " : "smallest ") + r.key + " where " + t.text() + ": " +
                   r.value_text(a.holds_at->x) + " (" + fixed(a.holds_at->metric, 4) + "); " +
                   r.value_text(a.fails_at->x) + " fails (" + fixed(a.fails_at->metric, 4) + ")";
        }
        case K::NotMonotone: {
            std::string s = a.against ? t.metric + " is not monotone in " + r.key + " (" +
                                            r.value_text(a.against->first.x) + ": " + fixed(a.against->first.metric, 4) +
                                            ", " + r.value_text(a.against->second.x) + ": " +
                                            fixed(a.against->second.metric, 4) + ")"
                                      : "refused points lie inside the range, not at one end";
            s += "; a sweep of " + std::to_string(a.points.size()) + " points finds ";
            if (a.flips.empty()) return s + "no flip (" + (a.points.front().holds ? "holds" : "fails") + " at every point)";
            s += std::to_string(a.flips.size()) + " flip" + (a.flips.size() > 1 ? "s" : "") + ":";
            for (const auto& [p, q] : a.flips)
                s += " " + r.value_text(p.x) + (p.holds ? " holds" : " fails") + " / " + r.value_text(q.x) +
                     (q.holds ? " holds" : " fails") + ";";
            s.pop_back();
            return s;
        }
    }
    return "";
}

}  // namespace

json run_solve(const json& base, const std::string& target_text, const std::string& range_text,
               const std::vector<sim::SweepAxis>& lists, const SolveCommandOptions& opt, bool print) {
    const SolveCommandOptions& o = opt;
    const sim::SolveTarget target = sim::parse_target(target_text);
    const std::optional<sim::SolveRange> range = sim::parse_range(range_text, base);
    sim::SweepSpec combos;  // the listed keys, as a sweep's axes
    combos.base = base;
    combos.axes = lists;
    for (const auto& a : combos.axes)
        for (const auto& k : a.keys)
            if (k == range->key) throw std::invalid_argument("--vary " + k + ": given both as a range and as a list");
    std::vector<sim::SweepPoint> points;
    if (combos.axes.empty())
        points.push_back({0, {}, base});
    else
        points = sim::expand_sweep(combos);  // every combination resolved before anything runs
    sim::SolveOptions so;
    so.grid = o.grid, so.per_round = std::max(1, o.jobs), so.resolution = o.resolution,
    so.fallback_points = o.fallback;
    json axes_json = json::array();
    for (const auto& a : combos.axes) axes_json.push_back({{"keys", a.keys}, {"values", a.values}});
    const json spec = {{"base", base}, {"target", target.text()}, {"range", {{"key", range->key}, {"lo", range->lo}, {"hi", range->hi}}},
                       {"lists", axes_json}, {"grid", so.grid}, {"per_round", so.per_round},
                       {"resolution", so.resolution}, {"fallback_points", so.fallback_points},
                       {"producer", producer()}};
    claim_folder(o.out_dir, spec, o.resume);
    std::cerr << "engramsim solve: " << target.text() << " over " << range->key << " = "
              << range->value_text(range->lo) << " .. " << range->value_text(range->hi)
              << (range->log_scale ? " (log scale)" : "") << ", " << points.size()
              << " combination" << (points.size() > 1 ? "s" : "") << ", into " << o.out_dir << "/" << std::endl;

    json answers = json::array();
    std::string csv = "combination,";
    for (const auto& k : combos.columns()) csv += k + ",";
    csv += range->key + "," + range->key + " (base unit)," + target.metric + ",holds\n";
    TextTable table({"<combination", "answer", "runs", "resolution"});
    for (size_t c = 0; c < points.size(); ++c) {
        const std::string label = points[c].label();
        auto kept = std::make_shared<std::map<double, json>>();
        const sim::SolveAnswer a = sim::solve_boundary(
            *range, target, so, sweep_evaluator(o, points[c].config, *range, target, c, label, kept));
        json aj = sim::to_json(a, *range);
        auto attach = [&](json& p) {
            if (auto k = kept->find(p["x"].get<double>()); k != kept->end()) p.update(k->second);
        };
        for (auto& p : aj["points"]) attach(p);
        for (const char* end : {"holds_at", "fails_at"})
            if (aj.contains(end)) attach(aj[end]);
        aj["combination"] = points[c].values();
        aj["sentence"] = answer_sentence(a, *range, target);
        answers.push_back(aj);
        for (const auto& p : a.points) {
            csv += std::to_string(c) + ",";
            const json settings = points[c].values();
            for (const auto& k : combos.columns()) {
                const json& v = settings[k];
                csv += '"';
                csv += v.is_string() ? v.get<std::string>() : v.dump();
                csv += "\",";
            }
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.17g", p.x);
            csv += range->value_text(p.x) + "," + buf + ",";
            std::snprintf(buf, sizeof buf, "%.17g", p.metric);
            csv += (std::isnan(p.metric) ? std::string("refused") : std::string(buf)) + "," +
                   (p.holds ? "true" : "false") + "\n";
        }
        std::string res = "-";
        if (a.holds_at)
            res = range->integral && std::fabs(a.fails_at->x - a.holds_at->x) <= 1 ? "adjacent values"
                  : a.resolution_relative ? fixed(100 * a.resolution_reached, 2) + "%"
                                          : range->value_text(a.resolution_reached);
        table.add({label.empty() ? "(the config)" : label, aj["sentence"].get<std::string>(),
                   std::to_string(a.points.size()), res});
    }
    const json result = {{"schema_version", sim::kSolveSchemaVersion},
                         {"kind", "engramsim.solve"},
                         {"producer", producer()},
                         {"units", {{"x", "the key's base unit (rows, bytes, seconds or a number); value: as the config is written"},
                                    {"metric", target.metric}}},
                         {"target", target.text()},
                         {"key", range->key},
                         {"range", {{"lo", range->config_value(range->lo)}, {"hi", range->config_value(range->hi)},
                                    {"log_scale", range->log_scale}}},
                         {"resolution_asked", so.resolution},
                         {"answers", answers}};
    if (!(std::ofstream(o.out_dir + "/solve.json") << result.dump(1) << '\n') ||
        !(std::ofstream(o.out_dir + "/solve.csv") << csv))
        throw std::runtime_error(o.out_dir + ": cannot write the results");
    if (o.plot) write_and_plot(result, o.out_dir, "solve.json", "sim/sweep/plot_solve.py");
    if (!print) return result;
    if (o.json) {
        std::cout << result.dump(1) << '\n';
        return result;
    }
    std::cout << "engramsim solve: " << target.text() << ", " << range->key << " from "
              << range->value_text(range->lo) << " to " << range->value_text(range->hi) << "\n\n";
    table.print(std::cout, "  ");
    std::cerr << "engramsim solve: results in " << o.out_dir << "/solve.json, solve.csv"
              << (o.plot ? ", solve.png" : "") << std::endl;
    return result;
}

namespace {

// engramsim solve CONFIG ...: the --vary texts split into the range and the listed keys.
void solve_command(const SolveCli& cli) {
    const json base = sim::load_run_config(cli.config);
    std::string range_text;
    std::vector<sim::SweepAxis> lists;
    for (const auto& v : cli.vary) {
        if (sim::is_range_text(v)) {
            if (!range_text.empty())
                throw std::invalid_argument("--vary " + v + ": one key varies over a range (" +
                                            range_text.substr(0, range_text.find('=')) +
                                            " does); list the others' values (KEY=V1,V2)");
            range_text = v;
        } else {
            lists.push_back(sim::parse_axis(v));
        }
    }
    if (range_text.empty()) throw std::invalid_argument("solve: give the key to solve for as --vary KEY=LO..HI");
    SolveCommandOptions opt = cli.opt;
    if (opt.out_dir.empty()) opt.out_dir = "solve-" + fs::path(cli.config).stem().string();
    run_solve(base, cli.target, range_text, lists, opt, true);
}

}  // namespace

void add_solve_command(CLI::App& app) {
    auto o = std::make_shared<SolveCli>();
    auto* cmd = app.add_subcommand(
        "solve", "Find where a target flips as one config key varies over a range (bisection "
                 "where the metric is monotone, checked; a sweep where it is not), once per "
                 "combination of listed keys: e.g. the largest table under 1% overhead");
    cmd->add_option("config", o->config, "Run config file or preset")->required();
    cmd->add_option("-t,--target", o->target,
                    "METRIC OP BOUND, OP one of < <= > >=: 'overhead < 1%', 'tpot_p99 <= 50 ms', "
                    "'throughput >= 2000' (metrics: a sweep's summary columns, e.g. "
                    "overhead_vs_table_in_hbm_pct, stall_s; or a metrics leaf, e.g. ttft_s.p99)")
        ->required();
    cmd->add_option("--vary", o->vary,
                    "KEY=LO..HI: the key solved for (one), with units where it has them "
                    "(engram.engram_vocab_size=1M..1B, placement.dram_capacity=1GiB..256GiB, "
                    "placement.hbm_capacity=0%..50%); KEY=V1,V2,...: a listed key, one answer per "
                    "combination (repeatable)")
        ->required();
    cmd->add_option("-o,--out", o->opt.out_dir, "Folder for solve.json, solve.csv and each round's sweep (default: solve-NAME)");
    cmd->add_option("-j,--jobs", o->opt.jobs,
                    "Points simulated at a time; each round then splits the bracket j + 1 ways")
        ->check(CLI::Range(1, 256));
    cmd->add_option("--resolution", o->opt.resolution,
                    "Stop when the bracket is this narrow: upper / lower - 1 on a log-scale range "
                    "(one spanning 16x or more), else this fraction of the range; whole-valued "
                    "keys stop at adjacent values (default 0.01)")
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--grid", o->opt.grid, "Points of the first round, both ends included (default 9)")
        ->check(CLI::Range(2, 1000));
    cmd->add_option("--sweep-points", o->opt.fallback,
                    "Points of the sweep when the metric is not monotone (default 33)")
        ->check(CLI::Range(2, 10000));
    cmd->add_flag("--resume", o->opt.resume, "Finish an interrupted solve in the same folder, reusing every finished point");
    cmd->add_flag("--json", o->opt.json, "Print solve.json instead of the table");
    cmd->add_flag("--plot", o->opt.plot, "Also write solve.png (needs python3-matplotlib)");
    cmd->callback([o] { solve_command(*o); });
}

}  // namespace engramsim::cli
