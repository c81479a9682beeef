// engramsim trace hash: canonical ids -> row ids for every Engram layer, as JSON shaped like the
// golden files, or a readable summary.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <unordered_set>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "model/engram_config.h"
#include "model/units.h"
#include "traces/ngram_hash.h"
#include "traces/tokens.h"

namespace engramsim::cli {

namespace {

struct HashOptions {
    std::string engram = "demo-v1";
    std::string tokens = "bundled:handbook-en-US";
    bool json = false;
};

struct HashRun {
    EngramConfig config;
    std::vector<uint32_t> raw;
    std::vector<uint32_t> ids;  // canonical
    uint32_t canonical_vocab = 0;
    uint32_t canonical_pad = 0;
    std::vector<LayerHashParams> layers;
    std::vector<std::vector<uint32_t>> rows;  // per layer: tokens x heads
    double seconds = 0;                       // hashing time, all layers
};

HashRun hash_tokens(const HashOptions& opt) {
    const auto doc = config::load(opt.engram);
    if (!doc.contains("engram"))
        throw config::ConfigError(opt.engram + ": has no \"engram\" section");
    HashRun run{.config = EngramConfig::from_json(doc["engram"])};
    const CompressMap map = CompressMap::load(run.config.compress_map);
    if (run.config.pad_id >= map.raw_vocab_size())
        throw config::ConfigError("engram.pad_id: " + std::to_string(run.config.pad_id) +
                                  " is outside the compression map");
    run.raw = read_tokens(opt.tokens);
    run.ids = map.compress(run.raw);
    run.canonical_vocab = map.canonical_vocab_size();
    run.canonical_pad = map(run.config.pad_id);

    const NgramHasher hasher(run.config, run.canonical_vocab, run.canonical_pad);
    run.layers = hasher.layers();
    for (size_t l = 0; l < run.layers.size(); ++l)
        run.rows.emplace_back(run.ids.size() * size_t(hasher.heads_per_layer()));
    const auto start = std::chrono::steady_clock::now();
    for (size_t l = 0; l < run.layers.size(); ++l) hasher.hash_layer(l, run.ids, run.rows[l]);
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return run;
}

// Streams the golden-file layout; row_ids can be tens of millions of numbers, so no DOM.
void write_json(const HashRun& run, std::ostream& out) {
    auto list = [&](const auto& v) {
        out << '[';
        for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
        out << ']';
    };
    const auto& c = run.config;
    out << "{\"config\": {\"compress_map\": \"" << c.compress_map << "\", \"engram_vocab_size\": ";
    list(c.engram_vocab_size);
    out << ", \"max_ngram_size\": " << c.max_ngram_size
        << ", \"n_head_per_ngram\": " << c.n_head_per_ngram << ", \"layer_ids\": ";
    list(c.layer_ids);
    out << ", \"pad_id\": " << c.pad_id << ", \"seed\": " << c.seed << ", \"token_ids\": ";
    list(run.raw);
    out << "}, \"compressed_vocab_size\": " << run.canonical_vocab
        << ", \"compressed_pad_id\": " << run.canonical_pad << ", \"compressed_ids\": ";
    list(run.ids);
    out << ", \"layers\": {";
    const size_t heads = size_t(c.heads_per_layer());
    for (size_t l = 0; l < run.layers.size(); ++l) {
        const auto& p = run.layers[l];
        out << (l ? ", " : "") << '"' << p.layer_id << "\": {\"multipliers\": ";
        list(p.multipliers);
        out << ", \"primes\": [";
        for (size_t o = 0; o < p.primes.size(); ++o) {
            out << (o ? ", " : "");
            list(p.primes[o]);
        }
        out << "], \"row_ids\": [";
        for (size_t t = 0; t < run.ids.size(); ++t) {
            out << (t ? ", " : "") << '[';
            for (size_t h = 0; h < heads; ++h)
                out << (h ? ", " : "") << run.rows[l][t * heads + h];
            out << ']';
        }
        out << "]}";
    }
    out << "}}\n";
}

void print_summary(const HashOptions& opt, const HashRun& run) {
    const auto& c = run.config;
    const size_t heads = size_t(c.heads_per_layer());
    const size_t n = run.ids.size();
    std::unordered_set<uint32_t> distinct(run.ids.begin(), run.ids.end());

    uint64_t rows_all = 0;
    for (const auto& p : run.layers) rows_all += p.table_rows;
    const double params = double(rows_all) * c.row_dim();

    std::cout << "engramsim trace hash: " << (c.name.empty() ? opt.engram : c.name) << " over "
              << opt.tokens << "\n\n";
    TextTable facts({"<what", "<value"});
    facts.add({"tokens", thousands(n) + " (" + thousands(distinct.size()) + " distinct of " +
                             thousands(run.canonical_vocab) + " canonical ids)"});
    std::string layer_list;
    for (int id : c.layer_ids) layer_list += (layer_list.empty() ? "" : ", ") + std::to_string(id);
    facts.add({"Engram layers", std::to_string(c.layer_ids.size()) + " (0-based: " + layer_list +
                                    ")"});
    facts.add({"rows per token", std::to_string(heads) + " per layer (orders 2.." +
                                     std::to_string(c.max_ngram_size) + " x " +
                                     std::to_string(c.n_head_per_ngram) + " heads)"});
    facts.add({"row", std::to_string(c.row_dim()) + " values, " + to_string(c.dtype) + ", " +
                          units::format(c.row_bytes(), units::Dim::Bytes)});
    facts.add({"table", thousands(rows_all) + " rows, " + rounded(params, units::Dim::Count) +
                            " parameters, " +
                            rounded(double(rows_all) * c.row_bytes(), units::Dim::Bytes)});
    const double ids_out = double(n) * double(heads) * double(run.layers.size());
    facts.add({"hashing", thousands(uint64_t(ids_out)) + " row ids in " +
                              fixed(run.seconds * 1e3, 1) + " ms (" +
                              fixed(ids_out / std::max(run.seconds, 1e-9) / 1e6, 0) +
                              "M row ids/s, one core)"});
    facts.print(std::cout, "  ");

    // Per layer and order: how many distinct rows the text touches, and how often distinct
    // N-grams share a row (hash collisions within this text).
    std::cout << "\n";
    TextTable table({"layer", "order", "lookups", "distinct n-grams", "unique rows/head",
                     "collided %", "top-1% rows share %"});
    for (size_t l = 0; l < run.layers.size(); ++l) {
        for (int order = 2; order <= c.max_ngram_size; ++order) {
            std::unordered_set<uint64_t> ngrams;
            for (size_t t = 0; t < n; ++t) {
                ngrams.insert(ngram_fingerprint(run.ids, t, order, run.canonical_pad));
            }
            double unique_sum = 0, top_share_sum = 0;
            for (int h = 0; h < c.n_head_per_ngram; ++h) {
                const size_t col = size_t(order - 2) * size_t(c.n_head_per_ngram) + size_t(h);
                std::unordered_map<uint32_t, uint64_t> counts;
                for (size_t t = 0; t < n; ++t) ++counts[run.rows[l][t * heads + col]];
                unique_sum += double(counts.size());
                std::vector<uint64_t> freq;
                for (const auto& [row, cnt] : counts) freq.push_back(cnt);
                std::sort(freq.rbegin(), freq.rend());
                size_t top = std::max<size_t>(1, freq.size() / 100);
                uint64_t top_hits = 0;
                for (size_t i = 0; i < top; ++i) top_hits += freq[i];
                top_share_sum += double(top_hits) / double(n);
            }
            const double unique_mean = unique_sum / c.n_head_per_ngram;
            table.add({std::to_string(run.layers[l].layer_id), std::to_string(order),
                       thousands(n * size_t(c.n_head_per_ngram)), thousands(ngrams.size()),
                       fixed(unique_mean, 1),
                       fixed(100.0 * (1.0 - unique_mean / double(ngrams.size())), 3),
                       fixed(100.0 * top_share_sum / c.n_head_per_ngram, 1)});
        }
    }
    table.print(std::cout, "  ");
    std::cout << "\n  distinct n-grams counted by a 64-bit fingerprint of the canonical ids; "
                 "collided % = share of distinct n-grams that share a row with another, per head"
                 "\n  JSON (golden-file layout): engramsim trace hash --engram "
              << opt.engram << " --tokens " << opt.tokens << " --json\n";
}

}  // namespace

void add_trace_command(CLI::App& app) {
    auto* trace = app.add_subcommand("trace", "Lookup traces: hash tokens, make, inspect and summarise trace files");
    trace->require_subcommand(1);
    add_trace_file_commands(*trace);
    add_trace_export(*trace);
    auto* hash = trace->add_subcommand(
        "hash", "Row ids of every Engram layer for a token file (bit-exact with the demo)");
    static HashOptions opt;
    hash->add_option("--engram", opt.engram, "Engram preset name or config JSON file")
        ->capture_default_str();
    hash->add_option("--tokens", opt.tokens,
                     "Token ids: *.u32.bin, *.u16.bin (little-endian), *.bin (nanoGPT uint16 or an "
                     "llm.c shard), a JSON array (*.json), JSON "
                     "Lines (*.jsonl, hashed as its lines end to end), or bundled:NAME "
                     "(handbook-en-US, handbook-zh-CN)")
        ->capture_default_str();
    hash->add_flag("--json", opt.json,
                   "Print one JSON object shaped like tests/golden/data/*.json instead of the "
                   "summary");
    hash->callback([] {
        const HashRun run = hash_tokens(opt);
        if (opt.json)
            write_json(run, std::cout);
        else
            print_summary(opt, run);
    });
}

}  // namespace engramsim::cli
