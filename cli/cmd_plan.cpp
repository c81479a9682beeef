// engramsim plan CONFIG -o plan.json: the run's steps as the simulator plans them, for another
// engine to serve (sim/timing/step_plan.h; the PyTorch harness in executor/torch/ reads it).
#include <filesystem>
#include <iostream>

#include "build_info/build_info.h"
#include "cli/commands.h"
#include "model/files.h"
#include "sim/sweep/experiment.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"
#include "sim/timing/step_plan.h"

namespace engramsim::cli {

namespace {

struct PlanOptions {
    std::string config;
    std::string out;
    bool predict = false;
};

// The simulator's prediction of the plan's run, written into it before any engine serves it:
// the metrics of `engramsim run`, the overhead against no Engram, and every step's time.
nlohmann::json prediction_of(const nlohmann::json& cfg) {
    const sim::RunOutcome run = sim::run_config(cfg);
    const sim::RunMetrics& m = run.metrics;
    nlohmann::json p = sim::serving_metrics_json(m);
    if (cfg.contains("engram")) {
        const sim::RunOutcome base = sim::run_config(sim::without_engram(cfg));
        p["no_engram_tok_per_s"] = base.metrics.throughput_tok_per_s;
        p["overhead_pct"] = sim::overhead_pct(base.metrics.throughput_tok_per_s, m.throughput_tok_per_s);
    }
    nlohmann::json steps = nlohmann::json::array();
    for (size_t i = 0; i < run.des.step_start_s.size(); ++i)
        steps.push_back(run.des.step_end_s[i] - run.des.step_start_s[i]);
    p["step_s"] = std::move(steps);
    p["units"] = {{"*_s", "seconds"}, {"throughput_tok_per_s", "output tokens/s"}, {"overhead_pct", "%"}};
    return p;
}

void write_plan(const PlanOptions& opt) {
    const nlohmann::json cfg = sim::load_run_config(opt.config);
    nlohmann::json plan = sim::step_plan(cfg);
    plan["engramsim"] = std::string(build::version()) + " (" + build::git_commit() + ")";
    if (opt.predict) plan["prediction"] = prediction_of(cfg);
    const std::filesystem::path out(opt.out);
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
    files::write_atomically(opt.out, plan.dump() + "\n");  // an interrupted export leaves none
    const auto& steps = plan["steps"];
    uint64_t prefill = 0;
    for (const auto& s : steps) prefill += s["prefill"].get<bool>();
    std::cerr << "engramsim plan: " << plan["requests"].size() << " requests, " << steps.size()
              << " steps (" << prefill << " prefill), " << plan["scheduler"]["num_kv_blocks"]
              << " KV blocks, " << plan["scheduler"]["preemptions"] << " preemptions -> "
              << out.string() << '\n';
}

}  // namespace

void add_plan_command(CLI::App& app) {
    auto opt = std::make_shared<PlanOptions>();
    auto* cmd = app.add_subcommand(
        "plan", "Write a run's steps as the simulator plans them (model shape, hash parameters, "
                "tokens, every step's slices, preemptions and rows) for another engine to "
                "serve: the PyTorch harness (docs/torch_harness.md)");
    cmd->add_option("config", opt->config, "Run config file or backbone preset")->required();
    cmd->add_option("-o,--out", opt->out, "The plan file (JSON, schema engramsim.step_plan)")
        ->required();
    cmd->add_flag("--predict", opt->predict,
                  "Also simulate the run (and without Engram) and write the prediction into the "
                  "plan: metrics, overhead, every step's time");
    cmd->callback([opt] { write_plan(*opt); });
}

}  // namespace engramsim::cli
