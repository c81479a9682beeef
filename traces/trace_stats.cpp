#include "traces/trace_stats.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace engramsim {

namespace {

constexpr double kTopFractions[3] = {0.001, 0.01, 0.1};
constexpr int kMaxBatch = 512;

void fit_zipf(OrderStats& s, std::vector<uint64_t> counts) {
    std::sort(counts.rbegin(), counts.rend());
    const double n = double(s.lookups);
    for (int i = 0; i < 3; ++i) {
        const size_t top = std::max<size_t>(1, size_t(std::ceil(kTopFractions[i] * counts.size())));
        uint64_t hits = 0;
        for (size_t r = 0; r < std::min(top, counts.size()); ++r) hits += counts[r];
        s.top_share[i] = n > 0 ? double(hits) / n : 0;
    }
    // Log-spaced ranks (1-based) for the curve and the fit.
    std::vector<size_t> ranks;
    for (double r = 1; r <= double(counts.size()); r = std::max(r + 1, std::floor(r * 1.25)))
        ranks.push_back(size_t(r));
    if (!counts.empty() && ranks.back() != counts.size()) ranks.push_back(counts.size());
    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    int m = 0;
    for (size_t r : ranks) {
        s.popularity.emplace_back(r, counts[r - 1]);
        if (counts[r - 1] < 2) continue;  // the singleton tail says nothing about the slope
        const double x = std::log(double(r)), y = std::log(double(counts[r - 1]));
        sx += x, sy += y, sxx += x * x, sxy += x * y, syy += y * y;
        ++m;
    }
    if (m >= 3) {
        const double vx = sxx - sx * sx / m, vy = syy - sy * sy / m, cxy = sxy - sx * sy / m;
        if (vx > 0) {
            s.zipf_exponent = -cxy / vx;
            s.zipf_r2 = vy > 0 ? cxy * cxy / (vx * vy) : 1;
        }
    }
}

}  // namespace

std::vector<int64_t> stack_distances(const std::vector<uint64_t>& keys) {
    const size_t n = keys.size();
    std::vector<int32_t> tree(n + 1, 0);  // Fenwick over positions: 1 where a key was last read
    auto add = [&](size_t i, int32_t v) {
        for (++i; i <= n; i += i & (~i + 1)) tree[i] += v;
    };
    auto prefix = [&](size_t i) {  // sum over positions [0, i)
        int64_t s = 0;
        for (; i > 0; i -= i & (~i + 1)) s += tree[i];
        return s;
    };
    std::unordered_map<uint64_t, size_t> last;
    last.reserve(n / 4);
    std::vector<int64_t> out(n);
    for (size_t t = 0; t < n; ++t) {
        auto [it, fresh] = last.try_emplace(keys[t], t);
        if (fresh) {
            out[t] = -1;
        } else {
            const size_t prev = it->second;
            out[t] = prefix(t) - prefix(prev + 1);
            add(prev, -1);
            it->second = t;
        }
        add(t, 1);
    }
    return out;
}

TraceStats compute_trace_stats(const std::string& path) {
    TraceReader reader(path);
    const TraceHeader& header = reader.header();
    const EngramConfig& engram = reader.engram();
    const LookupLayout layout = lookup_layout(engram);
    const size_t layers = layout.layer_ids.size();
    const size_t heads = size_t(layout.heads_per_layer);
    const size_t k_heads = size_t(engram.n_head_per_ngram);

    TraceStats st;
    st.path = path;
    st.requests = header.requests;
    st.tokens = header.tokens;
    st.lookups = header.lookups;
    st.row_bytes = engram.row_bytes();
    st.layer_ids = layout.layer_ids;
    {
        std::FILE* f = std::fopen(path.c_str(), "rb");
        std::fseek(f, 0, SEEK_END);
        st.file_bytes = uint64_t(std::ftell(f));
        std::fclose(f);
    }

    // One pass over the requests: global keys in file order per layer, and the decode streams.
    std::vector<std::vector<uint64_t>> keys(layers);
    std::vector<TraceRequest> requests;  // rows of decode tokens only, for the batch statistic
    TraceRequest r;
    while (reader.next(r)) {
        for (size_t l = 0; l < layers; ++l)
            for (size_t i = 0; i < r.rows[l].size(); ++i)
                keys[l].push_back(layout.layer_base[l] + layout.head_offset[l][i % heads] +
                                  r.rows[l][i]);
        // Decode feeds generated tokens 0 .. output_len - 2 (positions prompt_len .. end - 2).
        TraceRequest d;
        d.prompt_len = r.prompt_len;
        d.output_len = r.output_len;
        for (size_t l = 0; l < layers; ++l)
            d.rows.emplace_back(r.rows[l].begin() + long(size_t(r.prompt_len) * heads),
                                r.rows[l].end() - long(heads));
        requests.push_back(std::move(d));
    }

    for (size_t l = 0; l < layers; ++l) {
        // Popularity per order.
        for (int order = 2; order <= engram.max_ngram_size; ++order) {
            OrderStats os;
            os.layer_id = layout.layer_ids[l];
            os.order = order;
            std::unordered_map<uint64_t, uint64_t> count;
            const size_t h0 = size_t(order - 2) * k_heads;
            for (size_t i = 0; i < keys[l].size(); ++i) {
                const size_t h = i % heads;
                if (h < h0 || h >= h0 + k_heads) continue;
                ++count[keys[l][i]];
                ++os.lookups;
            }
            os.unique_rows = count.size();
            std::vector<uint64_t> counts;
            counts.reserve(count.size());
            for (const auto& [k, c] : count) counts.push_back(c);
            fit_zipf(os, std::move(counts));
            st.orders.push_back(std::move(os));
        }
        // Reuse distances.
        std::vector<uint64_t> hist(2, 0);
        for (int64_t d : stack_distances(keys[l])) {
            size_t bucket = d < 0 ? 0 : 1 + (d <= 1 ? 0 : size_t(63 - __builtin_clzll(uint64_t(d))));
            if (bucket >= hist.size()) hist.resize(bucket + 1, 0);
            ++hist[bucket];
        }
        st.reuse.push_back(std::move(hist));
        keys[l] = {};
    }

    // Unique rows per decode step, B requests in lockstep.
    std::vector<uint64_t> step_keys;
    for (int batch = 1; batch <= kMaxBatch && size_t(batch) <= requests.size(); batch *= 2) {
        BatchUniqueStats b;
        b.batch = batch;
        b.unique_rows_per_step.assign(layers, 0);
        uint64_t lookups = 0;
        for (size_t g = 0; g + size_t(batch) <= requests.size(); g += size_t(batch)) {
            size_t longest = 0;
            for (size_t i = g; i < g + size_t(batch); ++i)
                longest = std::max(longest, requests[i].rows[0].size() / heads);
            for (size_t s = 0; s < longest; ++s) {
                for (size_t l = 0; l < layers; ++l) {
                    step_keys.clear();
                    for (size_t i = g; i < g + size_t(batch); ++i) {
                        const auto& rows = requests[i].rows[l];
                        if ((s + 1) * heads > rows.size()) continue;
                        for (size_t h = 0; h < heads; ++h)
                            step_keys.push_back(layout.head_offset[l][h] + rows[s * heads + h]);
                    }
                    if (l == 0) lookups += step_keys.size();
                    std::sort(step_keys.begin(), step_keys.end());
                    b.unique_rows_per_step[l] += double(
                        std::unique(step_keys.begin(), step_keys.end()) - step_keys.begin());
                }
                ++b.steps;
            }
        }
        if (b.steps == 0) continue;
        b.lookups_per_step = double(lookups) / double(b.steps);
        for (auto& u : b.unique_rows_per_step) u /= double(b.steps);
        st.batches.push_back(std::move(b));
    }
    return st;
}

nlohmann::json to_json(const TraceStats& st) {
    using nlohmann::json;
    json orders = json::array();
    for (const auto& o : st.orders) {
        json curve = json::array();
        for (const auto& [rank, count] : o.popularity) curve.push_back({rank, count});
        orders.push_back({{"layer_id", o.layer_id},
                          {"order", o.order},
                          {"lookups", o.lookups},
                          {"unique_rows", o.unique_rows},
                          {"top_share", {{"0.1%", o.top_share[0]}, {"1%", o.top_share[1]},
                                         {"10%", o.top_share[2]}}},
                          {"zipf_exponent", o.zipf_exponent},
                          {"zipf_r2", o.zipf_r2},
                          {"popularity", curve}});
    }
    json reuse = json::array();
    for (size_t l = 0; l < st.reuse.size(); ++l)
        reuse.push_back({{"layer_id", st.layer_ids[l]}, {"histogram", st.reuse[l]}});
    json batches = json::array();
    for (const auto& b : st.batches)
        batches.push_back({{"batch", b.batch},
                           {"decode_steps", b.steps},
                           {"lookups_per_step_per_layer", b.lookups_per_step},
                           {"unique_rows_per_step", b.unique_rows_per_step}});
    return {{"schema_version", 1},
            {"kind", "engramsim.trace_stats"},
            {"trace", st.path},
            {"units", {{"lookups", "rows read (one per token per head per layer)"},
                       {"unique_rows", "distinct rows"},
                       {"top_share", "fraction of lookups"},
                       {"row_bytes", "B"},
                       {"file_bytes", "B"},
                       {"bytes_per_lookup", "B"},
                       {"reuse_histogram",
                        "counts; [0] cold reads, [1 + k] LRU stack distance in [2^k, 2^(k+1)), "
                        "[1] also holds distance 0"},
                       {"popularity", "[rank, lookups] of the rank-th most read row"}}},
            {"requests", st.requests},
            {"tokens", st.tokens},
            {"lookups", st.lookups},
            {"row_bytes", st.row_bytes},
            {"file_bytes", st.file_bytes},
            {"bytes_per_lookup", st.lookups ? double(st.file_bytes) / double(st.lookups) : 0},
            {"orders", orders},
            {"reuse", reuse},
            {"decode_batches", batches}};
}

}  // namespace engramsim
