// engramsim study run paper-table4: the Engram paper's Table 4 on the timing simulator, with
// the calibration, the assumptions and the sensitivity to each.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/solve_command.h"
#include "cli/sweep_command.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "model/embedded.h"
#include "sim/sweep/experiment.h"
#include "sim/sweep/mpi_world.h"

namespace engramsim::cli {

namespace {

// The studies: paper-table4 (its own code) and every studies/<name>/study.json, a sweep file
// embedded in the binary.
std::vector<std::string> study_names() {
    std::vector<std::string> names = {"paper-table4"};
    for (std::string_view f : embedded::names("studies/")) {
        const std::string path(f);
        const size_t slash = path.find('/', 8);
        if (slash != std::string::npos && path.substr(slash) == "/study.json")
            names.push_back(path.substr(8, slash - 8));
    }
    return names;
}

// A study file: a sweep file, or a solve study (a sweep file's base and axes plus "solve":
// {"targets": [...], "vary": "KEY=LO..HI", "grid", "resolution"}).
nlohmann::json study_doc(const std::string& name) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 && std::filesystem::exists(name)) {
        if (auto doc = config::read_document(name)) return *doc;  // a study file of one's own
        throw config::ConfigError(name + ": cannot read it");
    }
    const auto text = embedded::find("studies/" + name + "/study.json");
    if (!text) {
        std::string msg = "unknown study '" + name + "'";
        if (auto near = config::nearest(name, study_names())) msg += "; did you mean " + *near + "?";
        std::string known;
        for (const auto& n : study_names()) known += (known.empty() ? "" : ", ") + n;
        msg += " (known: " + known + ")";
        throw config::ConfigError(msg);
    }
    return nlohmann::json::parse(*text);
}

// The study's sweep: the file itself, or a solve study's base and listed axes.
sim::SweepSpec study_spec(const std::string& name) {
    nlohmann::json doc = study_doc(name);
    doc.erase("solve");
    if (!doc.contains("axes")) doc["axes"] = nlohmann::json::array();
    return sim::parse_sweep_spec(doc, "study " + name);
}

// A solve study: one solve per target over the same combinations, into DIR/target-N/, then one
// table: each combination's answer under every target.
void run_solve_study(const std::string& name, const SweepCommandOptions& sweep_opt) {
    const nlohmann::json doc = study_doc(name);
    const nlohmann::json& solve = doc["solve"];
    const sim::SweepSpec spec = study_spec(name);
    std::vector<std::string> targets;
    for (const auto& t : solve.at("targets")) targets.push_back(t.get<std::string>());
    const std::string vary = solve.at("vary").get<std::string>();
    const std::string dir = sweep_opt.out_dir.empty()
                                ? "study-" + std::filesystem::path(name).stem().string()
                                : sweep_opt.out_dir;
    SolveCommandOptions opt;
    opt.jobs = sweep_opt.jobs, opt.resume = sweep_opt.resume, opt.plot = sweep_opt.plot;
    opt.grid = solve.value("grid", 9);
    opt.resolution = solve.value("resolution", 0.01);
    std::vector<nlohmann::json> results;
    for (size_t i = 0; i < targets.size(); ++i) {
        opt.out_dir = dir + "/target-" + std::to_string(i + 1);
        std::cerr << "engramsim study " << name << ": target " << i + 1 << " of " << targets.size()
                  << ": " << targets[i] << std::endl;
        results.push_back(run_solve(spec.base, targets[i], vary, spec.axes, opt, false));
    }
    // One row per combination, one column per target: the last value where it holds.
    std::vector<std::string> head = {"<combination"};
    for (const auto& t : targets) head.push_back(t);
    TextTable table(head);
    nlohmann::json rows = nlohmann::json::array();
    const size_t combos = results.empty() ? 0 : results[0]["answers"].size();
    for (size_t c = 0; c < combos; ++c) {
        std::string label;
        for (const auto& [k, v] : results[0]["answers"][c]["combination"].items())
            label += (label.empty() ? "" : ", ") + k.substr(k.rfind('.') + 1) + "=" +
                     (v.is_string() ? v.get<std::string>() : v.dump());
        std::vector<std::string> row = {label.empty() ? "(the config)" : label};
        nlohmann::json r = {{"combination", results[0]["answers"][c]["combination"]}, {"answers", nlohmann::json::array()}};
        for (size_t t = 0; t < targets.size(); ++t) {
            const nlohmann::json& a = results[t]["answers"][c];
            // A point's value as the range states it (a list key: its first entry).
            auto value_text = [](const nlohmann::json& p) {
                const nlohmann::json& v = p["value"].is_array() ? p["value"][0] : p["value"];
                return v.is_string() ? v.get<std::string>() : v.dump();
            };
            std::string cell = a["answer"].get<std::string>();
            if (a.contains("holds_at")) {
                const nlohmann::json& h = a["holds_at"];
                cell = value_text(h);
                if (h.contains("summary") && h["summary"].contains("table_bytes"))
                    cell += " (" + fixed(h["summary"]["table_bytes"].get<double>() / 1e9, 1) + " GB)";
            } else if (a["answer"] == "holds over the whole range") {
                cell = "all (holds to the range's end)";
            } else if (a["answer"] == "fails over the whole range") {
                cell = "none";
            } else {  // not monotone: the sweep's last point where it holds
                const nlohmann::json* last = nullptr;
                for (const auto& p : a["points"])
                    if (p["holds"].get<bool>()) last = &p;
                cell = last ? value_text(*last) + " (not monotone: swept)"
                            : "none (not monotone: swept)";
            }
            row.push_back(cell);
            r["answers"].push_back({{"target", targets[t]}, {"answer", a}});
        }
        table.add(row);
        rows.push_back(r);
    }
    const nlohmann::json summary = {{"schema_version", 1}, {"kind", "engramsim.solve_study"},
                                    {"study", name}, {"producer", producer()},
                                    {"vary", vary}, {"targets", targets}, {"rows", rows}};
    if (!(std::ofstream(dir + "/results.json") << summary.dump(1) << '\n'))
        throw std::runtime_error(dir + "/results.json: cannot write");
    if (sweep_opt.plot) write_and_plot(summary, dir, "results.json", "sim/sweep/plot_solve_study.py");
    if (sweep_opt.json) {
        std::cout << summary.dump(1) << '\n';
        return;
    }
    std::cout << "engramsim study " << name << ": " << doc.value("description", std::string()) << "\n"
              << "the last " << vary.substr(0, vary.find('=')) << " where each target holds (the table's size)\n\n";
    table.print(std::cout, "  ");
    std::cerr << "engramsim study " << name << ": results in " << dir << "/results.json and each target's solve.json" << std::endl;
}

void print_table4(const sim::Table4& t) {
    std::cout << "Engram paper, Table 4: nano-vLLM on one H800, 512 sequences, one 100B Engram "
                 "layer (block 2) in host DRAM\n\n";
    TextTable main({"<backbone", "baseline tok/s", "paper", "+ Engram tok/s", "paper",
                    "overhead", "band +-" + std::to_string(sim::kKvBand) + " KV blocks", "paper",
                    "error (points)"});
    for (const auto& r : t.rows)
        main.add({r.backbone, fixed(r.baseline_tps, 2), fixed(r.paper_baseline_tps, 2),
                  fixed(r.engram_tps, 2), fixed(r.paper_engram_tps, 2),
                  fixed(r.overhead_pct, 2) + "%", pct_band(r.kv_band_overhead_pct),
                  fixed(r.paper_overhead_pct, 2) + "%",
                  fixed(r.overhead_pct - r.paper_overhead_pct, 2)});
    main.print(std::cout, "  ");
    std::cout << "\nCalibration: one factor per backbone multiplies every backbone op time so the "
                 "no-Engram run\nmatches the paper's baseline; the Engram path is predicted, "
                 "never fitted.\n\n";
    TextTable cal({"<backbone", "roofline tok/s", "time scale", "table in HBM tok/s",
                   "vs HBM", "oracle tok/s", "stall s", "hidden fetch s", "rows fetched"});
    for (const auto& r : t.rows)
        cal.add({r.backbone, fixed(r.uncalibrated_baseline_tps, 1),
                 fixed(r.backbone_time_scale, 4), fixed(r.table_in_hbm_tps, 2),
                 fixed(r.overhead_vs_hbm_pct, 3) + "%", fixed(r.oracle_tps, 2),
                 fixed(r.engram_metrics.stall_s, 4), fixed(r.engram_metrics.hidden_fetch_s, 4),
                 thousands(r.engram_metrics.unique_rows)});
    cal.print(std::cout, "  ");
    if (!t.sensitivity.empty()) {
        std::cout << "\nSensitivity: overhead (%) with one assumption changed\n\n";
        std::vector<std::string> head = {"<assumption", "<value"};
        for (const auto& r : t.rows) head.push_back(r.backbone);
        TextTable s(head);
        for (const auto& row : t.sensitivity) {
            std::vector<std::string> cells = {row.assumption, row.value};
            for (double x : row.overhead_pct) cells.push_back(fixed(x, 2));
            s.add(cells);
        }
        s.print(std::cout, "  ");
    }
    std::cout << "\nAssumptions (the paper leaves these open):\n";
    for (const auto& [k, v] : t.assumptions.items())
        std::cout << "  " << k << ": " << v.get<std::string>() << '\n';
}

}  // namespace

void run_paper_table4(bool json, bool sensitivity) { write_paper_table4(json, sensitivity, ""); }

void write_paper_table4(bool json, bool sensitivity, const std::string& out_dir) {
    if (!out_dir.empty()) std::filesystem::create_directories(out_dir);
    const sim::Table4 t = sim::paper_table4(sensitivity);
    const std::string doc = t.to_json().dump(2) + "\n";
    if (!out_dir.empty()) {
        const std::string path = out_dir + "/results.json";
        std::ofstream out(path);
        out << doc;
        if (!out.flush()) throw std::runtime_error(path + ": write failed");
    }
    if (json)
        std::cout << doc;
    else
        print_table4(t);
    if (!out_dir.empty() && !json) std::cout << "\nresults.json written to " << out_dir << "\n";
}

void add_study_command(CLI::App& app) {
    auto* study = app.add_subcommand("study", "Studies: questions answered by many runs.");
    study->require_subcommand(1);
    auto* run = study->add_subcommand("run", "Run a study and print its table (or JSON).");
    auto name = std::make_shared<std::string>();
    auto opt = std::make_shared<SweepCommandOptions>();
    auto no_sens = std::make_shared<bool>(false);
    run->add_option("name", *name,
                    "Study (engramsim study list), or a study file of one's own: a sweep file, or "
                    "a solve study (a sweep file's base and axes plus \"solve\": {\"targets\", "
                    "\"vary\", \"grid\", \"resolution\"})")
        ->required();
    add_sweep_options(run, *opt, "study");
    run->add_flag("--no-sensitivity", *no_sens, "paper-table4: skip the sensitivity rows");
    run->footer("paper-table4 is not a sweep: it takes --json, --no-sensitivity and -o DIR "
                "(results.json there); the other studies take every option but "
                "--no-sensitivity.");
    run->callback([run, name, opt, no_sens] {
        // An option that would do nothing here is refused, never ignored.
        auto refuse = [&](const std::vector<std::string>& flags, const std::string& why) {
            for (const auto& f : flags)
                if (run->count(f) > 0)
                    throw std::invalid_argument("study run " + *name + ": " + f + " " + why);
        };
        if (*name == "paper-table4") {
            if (sim::mpi::size() > 1)
                throw std::invalid_argument("study paper-table4 is not a sweep: it runs in one "
                                         "process; run it without mpirun");
            refuse({"--jobs", "--resume", "--plot", "--list"},
                   "does nothing here: paper-table4 is not a sweep (it takes --json, "
                   "--no-sensitivity and -o DIR)");
            write_paper_table4(opt->json, !*no_sens, opt->out_dir);
            return;
        }
        refuse({"--no-sensitivity"}, "is for paper-table4 only");
        if (study_doc(*name).contains("solve")) {
            refuse({"--list"}, "does nothing here: a solve study chooses its points as it runs");
            run_solve_study(*name, *opt);
            return;
        }
        SweepCommandOptions o = *opt;
        if (o.out_dir.empty() && !o.list) o.out_dir = "study-" + std::filesystem::path(*name).stem().string();
        if (const int rc = run_sweep_and_report(study_spec(*name), o); rc != 0) std::exit(rc);
    });
    study->add_subcommand("list", "List the studies.")->callback([] {
        if (sim::mpi::rank() != 0) return;
        TextTable t({"<study", "<question"});
        t.add({"paper-table4", "the Engram paper's Table 4: a 100B table in host DRAM, predicted"});
        for (const auto& n : study_names())
            if (n != "paper-table4") t.add({n, study_doc(n).value("description", std::string())});
        t.print(std::cout);
    });
}

}  // namespace engramsim::cli
