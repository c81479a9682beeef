// engramsim trace fit: fit the synthetic lookup generator to a corpus and validate it on the
// held-out rest of the corpus.
#include <cmath>
#include <fstream>
#include <iostream>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "traces/synthetic.h"

namespace engramsim::cli {

void add_trace_fit_command(CLI::App& trace) {
    struct Options {
        std::string tokens = "bundled:handbook-en-US", engram = "demo-v1", out, plot;
        double fit_fraction = 0.1;
        uint64_t seed = 1;
        bool json = false;
    };
    static Options opt;
    auto* cmd = trace.add_subcommand(
        "fit", "Fit the synthetic generator to a corpus; validate on the held-out rest");
    cmd->add_option("--tokens", opt.tokens, "Corpus token file or bundled:NAME")
        ->capture_default_str();
    cmd->add_option("--engram", opt.engram, "Engram preset or config (tables, pad, map)")
        ->capture_default_str();
    cmd->add_option("--fit-fraction", opt.fit_fraction,
                    "Leading share of the corpus fitted on; the rest is held out")
        ->capture_default_str()
        ->check(number_in(0.001, 1));
    cmd->add_option("--seed", opt.seed, "Seed of the synthetic stream")
        ->capture_default_str()
        ->check(whole_number());
    cmd->add_option("-o,--output", opt.out, "Write the fitted model (JSON) here");
    cmd->add_option("--plot", opt.plot, "Write the validation figure (PNG) and JSON here");
    cmd->add_flag("--json", opt.json, "Print the model and its validation as JSON");
    cmd->callback([] {
        const auto engram = EngramConfig::from_json(config::load(opt.engram).at("engram"));
        const auto map = CompressMap::load(engram.compress_map);
        const auto ids = map.compress(read_tokens(opt.tokens));
        const NgramHasher tables(engram, map.canonical_vocab_size(), map(engram.pad_id));
        const auto fit_tokens = uint64_t(opt.fit_fraction * double(ids.size()));
        SyntheticModel model = fit_synthetic(ids, fit_tokens, engram.max_ngram_size,
                                             map(engram.pad_id), map.canonical_vocab_size());
        model.corpus = opt.tokens;

        // Validation: unique rows (per head, layer 0) of the real text and of the stream, which
        // continues the fit slice, at checkpoints doubling from the fitted size to the corpus.
        std::vector<uint64_t> checkpoints;
        for (uint64_t c = fit_tokens; c < ids.size(); c *= 2) checkpoints.push_back(c);
        checkpoints.push_back(ids.size());
        const GrowthCurve real = corpus_growth(ids, tables, fit_tokens, checkpoints);
        const GrowthCurve synth = synthetic_growth(model, tables, opt.seed, checkpoints);

        nlohmann::json validation = {{"held_out_from_token", fit_tokens},
                                     {"checkpoints", checkpoints},
                                     {"orders", nlohmann::json::array()}};
        for (size_t o = 0; o < real.unique_rows.size(); ++o) {
            std::vector<double> err;
            for (size_t i = 0; i < checkpoints.size(); ++i)
                err.push_back(synth.unique_rows[o][i] / real.unique_rows[o][i] - 1);
            validation["orders"].push_back({{"order", int(o) + 2},
                                            {"real_unique_rows_per_head", real.unique_rows[o]},
                                            {"synthetic_unique_rows_per_head", synth.unique_rows[o]},
                                            {"relative_error", err},
                                            {"real_top_share", real.top_share[o]},
                                            {"synthetic_top_share", synth.top_share[o]}});
        }
        nlohmann::json report = to_json(model);
        report["validation"] = validation;
        report["units"] = {{"unique_rows_per_head",
                            "distinct rows, mean over the order's heads, "
                            "first Engram layer"},
                           {"top_share",
                            "fraction of the held-out lookups served by the top "
                            "0.1/1/10% rows"},
                           {"checkpoints", "tokens"}};
        if (!opt.out.empty()) std::ofstream(opt.out) << to_json(model).dump(1) << '\n';
        if (!opt.plot.empty()) {
            write_and_plot(report, opt.plot, "synthetic_fit.json", "traces/plot_synthetic_fit.py");
        }
        if (opt.json) {
            std::cout << report.dump(1) << '\n';
            return;
        }
        std::cout << "Synthetic generator fitted on the first " << thousands(fit_tokens) << " of "
                  << thousands(ids.size()) << " tokens of " << opt.tokens << "\n\n";
        std::cout << "Hierarchical Pitman-Yor law (discount d, concentration theta; an old "
                     "successor repeats the context's last\none with probability r, else is the "
                     "j-th by first use with P ~ (j + 1)^-a):\n";
        TextTable params({"process", "d", "theta", "r", "a", "distinct in the fit slice"});
        params.add({"context tokens", fixed(model.token_d, 3), fixed(model.token_theta, 3), "-",
                    "-", thousands(model.token_count.size())});
        for (const auto& o : model.orders)
            params.add({"order " + std::to_string(o.order) + " successors", fixed(o.d, 3),
                        fixed(o.theta, 3), fixed(o.repeat, 3), fixed(o.zipf, 3),
                        thousands(o.fitted_vocabulary)});
        params.print(std::cout, "  ");
        std::cout << "\nUnique rows per head, real text vs the synthetic continuation (held out "
                     "beyond token "
                  << thousands(fit_tokens) << "):\n";
        std::vector<std::string> head = {"tokens", "x fitted"};
        for (size_t o = 0; o < real.unique_rows.size(); ++o) {
            head.push_back("real o" + std::to_string(o + 2));
            head.push_back("synth o" + std::to_string(o + 2));
            head.push_back("error");
        }
        TextTable curve(head);
        for (size_t i = 0; i < checkpoints.size(); ++i) {
            std::vector<std::string> row = {thousands(checkpoints[i]),
                                            fixed(double(checkpoints[i]) / double(fit_tokens), 2)};
            for (size_t o = 0; o < real.unique_rows.size(); ++o) {
                row.push_back(fixed(real.unique_rows[o][i], 0));
                row.push_back(fixed(synth.unique_rows[o][i], 0));
                row.push_back(fixed(100 * (synth.unique_rows[o][i] / real.unique_rows[o][i] - 1),
                                    1) + "%");
            }
            curve.add(row);
        }
        curve.print(std::cout, "  ");
        std::cout << "\nShare of the held-out lookups served by the most read rows:\n";
        TextTable top({"order", "<source", "top 0.1%", "top 1%", "top 10%"});
        for (size_t o = 0; o < real.top_share.size(); ++o)
            for (const auto* g : {&real, &synth})
                top.add({std::to_string(o + 2), g == &real ? "real" : "synthetic",
                         fixed(100 * g->top_share[o][0], 1) + "%",
                         fixed(100 * g->top_share[o][1], 1) + "%",
                         fixed(100 * g->top_share[o][2], 1) + "%"});
        top.print(std::cout, "  ");
    });
}

}  // namespace engramsim::cli
