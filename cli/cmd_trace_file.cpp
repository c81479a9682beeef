// engramsim trace make | stats | dump: lookup trace files (.etr, traces/FORMAT.md).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/checks.h"
#include "cli/commands.h"
#include "cli/plots.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "traces/trace_make.h"
#include "traces/trace_stats.h"

namespace engramsim::cli {

namespace {

nlohmann::json section_of(const std::string& spec, const std::string& section) {
    const auto doc = config::load(spec);
    if (!doc.contains(section))
        throw config::ConfigError(spec + ": has no \"" + section + "\" section");
    return doc[section];
}

void make_command(CLI::App& trace) {
    struct Options {
        std::string engram = "demo-v1", workload = "nano-vllm-512", out;
        size_t block = 64;
        bool quiet = false;
    };
    static Options opt;
    auto* cmd = trace.add_subcommand("make", "Hash a workload into a lookup trace file (.etr)");
    cmd->add_option("--engram", opt.engram, "Engram preset or config file")->capture_default_str();
    cmd->add_option("--workload", opt.workload, "Workload preset or config file")
        ->capture_default_str();
    cmd->add_option("-o,--output", opt.out, "Trace file to write")->required();
    cmd->add_option("--block-requests", opt.block, "Requests per compressed block")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_flag("-q,--quiet", opt.quiet, "No progress on stderr");
    cmd->callback([] {
        const auto engram = section_of(opt.engram, "engram");
        const auto workload_spec = section_of(opt.workload, "workload");
        const Workload workload = make_workload(workload_spec);
        const auto start = std::chrono::steady_clock::now();
        auto last = start;
        const bool tty = isatty(STDERR_FILENO);
        auto progress = [&](const MakeProgress& p) {
            const auto now = std::chrono::steady_clock::now();
            if (opt.quiet || (now - last < std::chrono::milliseconds(500) &&
                              p.requests_done != p.requests_total))
                return;
            last = now;
            const double s = std::chrono::duration<double>(now - start).count();
            std::cerr << (tty ? "\r" : "") << "trace make: " << p.requests_done << "/"
                      << p.requests_total << " requests, " << thousands(p.lookups_done)
                      << " lookups, " << fixed(double(p.lookups_done) / std::max(s, 1e-9) / 1e6, 1)
                      << "M lookups/s" << (tty ? "   " : "\n") << std::flush;
        };
        const TraceHeader h = make_trace(opt.out, engram, workload, workload_spec, progress);
        if (!opt.quiet && tty) std::cerr << "\n";
        const auto bytes = std::filesystem::file_size(opt.out);
        std::cout << "wrote " << opt.out << ": " << thousands(h.requests) << " requests, "
                  << thousands(h.tokens) << " tokens, " << thousands(h.lookups) << " lookups, "
                  << rounded(double(bytes), units::Dim::Bytes) << " ("
                  << fixed(double(bytes) / double(std::max<uint64_t>(h.lookups, 1)), 3)
                  << " B per lookup)\n";
    });
}

void stats_command(CLI::App& trace) {
    static std::string path, plot_dir;
    static bool json = false;
    auto* cmd = trace.add_subcommand("stats", "Workload statistics of a trace: popularity, reuse, "
                                              "unique rows per decode step");
    cmd->add_option("FILE", path, "Trace file (.etr)")->required();
    cmd->add_flag("--json", json, "Print versioned JSON instead of tables");
    cmd->add_option("--plot", plot_dir, "Also write PNG figures (and the JSON) into this folder");
    cmd->callback([] {
        const TraceStats st = compute_trace_stats(path);
        const auto j = to_json(st);
        if (!plot_dir.empty())
            write_and_plot(j, plot_dir, "trace_stats.json", "traces/plot_trace_stats.py");
        if (json) {
            std::cout << j.dump(1) << '\n';
            return;
        }
        std::cout << path << ": " << thousands(st.requests) << " requests, "
                  << thousands(st.tokens) << " tokens, " << thousands(st.lookups)
                  << " lookups, rows of " << rounded(st.row_bytes, units::Dim::Bytes) << ", "
                  << fixed(double(st.file_bytes) / double(std::max<uint64_t>(st.lookups, 1)), 3)
                  << " B per lookup on disk\n\n";
        TextTable pop({"layer", "order", "lookups", "unique rows", "top 0.1%", "top 1%",
                       "top 10%", "zipf s", "fit R2"});
        for (const auto& o : st.orders)
            pop.add({std::to_string(o.layer_id), std::to_string(o.order), thousands(o.lookups),
                     thousands(o.unique_rows), fixed(100 * o.top_share[0], 1) + "%",
                     fixed(100 * o.top_share[1], 1) + "%", fixed(100 * o.top_share[2], 1) + "%",
                     fixed(o.zipf_exponent, 3), fixed(o.zipf_r2, 3)});
        std::cout << "Popularity (share of lookups served by the most read rows touched):\n";
        pop.print(std::cout, "  ");

        std::cout << "\nReuse distance (distinct rows between two reads of a row), per layer:\n";
        std::vector<std::string> head = {"<distance"};
        for (int id : st.layer_ids) head.push_back("layer " + std::to_string(id));
        TextTable reuse(head);
        size_t buckets = 0;
        for (const auto& h : st.reuse) buckets = std::max(buckets, h.size());
        for (size_t b = 0; b < buckets; ++b) {
            std::vector<std::string> row = {
                b == 0 ? "cold" : b == 1 ? "0-1" : "2^" + std::to_string(b - 1) + "-"};
            for (const auto& h : st.reuse) row.push_back(b < h.size() ? thousands(h[b]) : "0");
            reuse.add(row);
        }
        reuse.print(std::cout, "  ");

        std::cout << "\nUnique rows per decode step (B requests in lockstep), per layer:\n";
        std::vector<std::string> bh = {"batch", "steps", "lookups/step"};
        for (int id : st.layer_ids) bh.push_back("unique L" + std::to_string(id));
        bh.push_back("bytes/step L" + std::to_string(st.layer_ids.front()));
        TextTable batches(bh);
        for (const auto& b : st.batches) {
            std::vector<std::string> row = {std::to_string(b.batch), thousands(b.steps),
                                            fixed(b.lookups_per_step, 1)};
            for (double u : b.unique_rows_per_step) row.push_back(fixed(u, 1));
            row.push_back(rounded(std::round(b.unique_rows_per_step.front() * st.row_bytes),
                                  units::Dim::Bytes));
            batches.add(row);
        }
        batches.print(std::cout, "  ");
    });
}

void dump_command(CLI::App& trace) {
    static std::string path;
    static uint64_t index = 0;
    static size_t max_tokens = 16;
    auto* cmd = trace.add_subcommand("dump", "Print one request of a trace: tokens and row ids");
    cmd->add_option("FILE", path, "Trace file (.etr)")->required();
    cmd->add_option("--request", index, "Request index (file order)")
        ->capture_default_str()
        ->check(whole_number());
    cmd->add_option("--tokens", max_tokens, "Tokens to print (0: all)")
        ->capture_default_str()
        ->check(whole_number());
    cmd->callback([] {
        TraceReader reader(path);
        const TraceRequest r = reader.request(index);
        const EngramConfig& e = reader.engram();
        std::cout << path << ": request " << index << " (id " << r.id << "), prompt "
                  << r.prompt_len << " tokens, output " << r.output_len << " tokens; Engram '"
                  << e.name << "', " << e.heads_per_layer() << " rows per token per layer\n\n";
        std::vector<std::string> head = {"pos", "<part", "canonical"};
        for (int id : e.layer_ids) head.push_back("<layer " + std::to_string(id) + " row ids");
        TextTable table(head);
        const size_t n = max_tokens ? std::min(max_tokens, r.canonical.size()) : r.canonical.size();
        const size_t heads = size_t(e.heads_per_layer());
        for (size_t t = 0; t < n; ++t) {
            std::vector<std::string> row = {std::to_string(t), t < r.prompt_len ? "prompt" : "output",
                                            std::to_string(r.canonical[t])};
            for (const auto& layer : r.rows) {
                std::string ids;
                for (size_t h = 0; h < heads; ++h) {
                    if (h) ids += ' ';
                    ids += std::to_string(layer[t * heads + h]);
                }
                row.push_back(ids);
            }
            table.add(row);
        }
        table.print(std::cout);
        if (n < r.canonical.size())
            std::cout << "(" << r.canonical.size() - n << " more tokens; --tokens 0 prints all)\n";
    });
}

}  // namespace

void add_trace_file_commands(CLI::App& trace) {
    make_command(trace);
    stats_command(trace);
    dump_command(trace);
    add_trace_fit_command(trace);
}

}  // namespace engramsim::cli
