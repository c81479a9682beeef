// engramsim plan CONFIG -o plan.json: the run's steps as the simulator plans them, for another
// engine to serve (sim/timing/step_plan.h; the PyTorch harness in executor/torch/ reads it).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "build_info/build_info.h"
#include "cli/commands.h"
#include "sim/timing/plan.h"
#include "sim/timing/step_plan.h"

namespace engramsim::cli {

namespace {

struct PlanOptions {
    std::string config;
    std::string out;
};

void write_plan(const PlanOptions& opt) {
    const nlohmann::json cfg = sim::load_run_config(opt.config);
    nlohmann::json plan = sim::step_plan(cfg);
    plan["engramsim"] = std::string(build::version()) + " (" + build::git_commit() + ")";
    const std::filesystem::path out(opt.out);
    if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
    // Written beside, then renamed: an interrupted export leaves no half plan under the name.
    const std::filesystem::path part = out.string() + ".part";
    {
        std::ofstream f(part);
        if (!f) throw std::runtime_error("cannot write " + part.string());
        f << plan.dump() << '\n';
        if (!f.flush()) throw std::runtime_error("cannot write " + part.string());
    }
    std::filesystem::rename(part, out);
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
    cmd->callback([opt] { write_plan(*opt); });
}

}  // namespace engramsim::cli
