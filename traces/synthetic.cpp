#include "traces/synthetic.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "traces/schedule.h"
#include "traces/splitmix64.h"

namespace engramsim {

namespace {

constexpr double kTopFractions[3] = {0.001, 0.01, 0.1};

// Uniform in [0, 1) from 53 random bits (no implementation-defined std distributions).
double unit(uint64_t& state) {
    state = splitmix64(state);
    return double(state >> 11) * 0x1.0p-53;
}

std::vector<uint64_t> log_checkpoints(uint64_t from, uint64_t to) {
    std::vector<uint64_t> out;
    for (double t = double(from); t < double(to); t *= 1.2) {
        const auto v = uint64_t(t);
        if (out.empty() || v != out.back()) out.push_back(v);
    }
    out.push_back(to);
    return out;
}

struct Regression {
    double slope = 0, intercept = 0, sse = 0;
};

Regression least_squares(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = double(x.size());
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < x.size(); ++i) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
    Regression r;
    const double var = sxx - sx * sx / n;
    r.slope = var > 0 ? (sxy - sx * sy / n) / var : 0;
    r.intercept = (sy - r.slope * sx) / n;
    for (size_t i = 0; i < x.size(); ++i) {
        const double e = y[i] - (r.intercept + r.slope * x[i]);
        r.sse += e * e;
    }
    return r;
}

// Share of non-new positions whose n-gram was last seen within `window` positions.
struct ReuseCounter {
    std::unordered_map<uint64_t, uint64_t> last;
    uint64_t reused = 0, short_reused = 0;
    void see(uint64_t key, uint64_t t, int window) {
        auto [it, fresh] = last.try_emplace(key, t);
        if (!fresh) {
            ++reused;
            if (t - it->second <= uint64_t(window)) ++short_reused;
            it->second = t;
        }
    }
    double share() const { return reused ? double(short_reused) / double(reused) : 0; }
};

void top_shares(const std::unordered_map<uint64_t, uint64_t>& counts, uint64_t lookups,
                std::vector<double>& out) {
    std::vector<uint64_t> c;
    c.reserve(counts.size());
    for (const auto& [k, v] : counts) c.push_back(v);
    std::sort(c.rbegin(), c.rend());
    out.clear();
    for (double f : kTopFractions) {
        const size_t top = std::max<size_t>(1, size_t(std::ceil(f * double(c.size()))));
        uint64_t hits = 0;
        for (size_t i = 0; i < std::min(top, c.size()); ++i) hits += c[i];
        out.push_back(lookups ? double(hits) / double(lookups) : 0);
    }
}

}  // namespace

// ---- Fitting ----

namespace {

struct Moments {
    double short_reuse_share = 0;
    double top1_share = 0;
};

// What the generator does over `tokens` positions (ids only, no tables).
Moments simulate_moments(const OrderModel& om, uint64_t tokens) {
    NgramIdSource draw(om, 0x5eed0000ull + uint64_t(om.order));
    ReuseCounter reuse;
    std::unordered_map<uint64_t, uint64_t> count;
    for (uint64_t t = 1; t <= tokens; ++t) {
        const uint64_t id = draw.next();
        reuse.see(id, t, om.reuse_window);
        ++count[id];
    }
    std::vector<double> shares;
    top_shares(count, tokens, shares);
    return {reuse.share(), shares[1]};
}

}  // namespace--------------------------------------------------------------------------

SyntheticModel fit_synthetic(const std::vector<uint32_t>& ids, uint64_t fit_tokens,
                             int max_ngram_size, uint32_t pad) {
    if (fit_tokens < 1000 || fit_tokens > ids.size())
        throw std::invalid_argument("fit_synthetic: need between 1,000 tokens and the corpus size");
    SyntheticModel model;
    model.fit_tokens = fit_tokens;
    std::vector<double> fitted_top1;  // corpus top-1% share per order over the fitted slice
    const auto checkpoints = log_checkpoints(100, fit_tokens);
    for (int n = 2; n <= max_ngram_size; ++n) {
        OrderModel om;
        om.order = n;
        std::unordered_map<uint64_t, uint64_t> count;
        ReuseCounter reuse;
        std::vector<double> lx, ly;
        size_t next_cp = 0;
        for (uint64_t t = 0; t < fit_tokens; ++t) {
            const uint64_t key = ngram_fingerprint(ids, size_t(t), n, pad);
            ++count[key];
            reuse.see(key, t, om.reuse_window);
            if (next_cp < checkpoints.size() && t + 1 == checkpoints[next_cp]) {
                lx.push_back(std::log(double(t + 1)));
                ly.push_back(std::log(double(count.size())));
                ++next_cp;
            }
        }
        const Regression heaps = least_squares(lx, ly);
        om.heaps_beta = heaps.slope;
        om.heaps_k = std::exp(heaps.intercept);
        om.short_reuse_share = reuse.share();
        {
            std::vector<double> shares;
            top_shares(count, fit_tokens, shares);
            fitted_top1.push_back(shares[1]);
        }

        // Zipf-Mandelbrot on the rank-frequency curve: log-spaced ranks read at least twice.
        std::vector<uint64_t> c;
        for (const auto& [k, v] : count) c.push_back(v);
        std::sort(c.rbegin(), c.rend());
        std::vector<double> rank, logc;
        for (double r = 1; r <= double(c.size()); r = std::max(r + 1, std::floor(r * 1.2))) {
            if (c[size_t(r) - 1] < 2) break;
            rank.push_back(r);
            logc.push_back(std::log(double(c[size_t(r) - 1])));
        }
        double best_sse = INFINITY;
        for (double q : {0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 35.0, 50.0, 100.0}) {
            std::vector<double> x;
            for (double r : rank) x.push_back(std::log(r + q));
            const Regression zm = least_squares(x, logc);
            if (zm.sse < best_sse) best_sse = zm.sse, om.zipf_s = -zm.slope, om.zipf_q = q;
        }
        model.orders.push_back(om);
    }

    // The rank-frequency fit and the copy share interact in the generator (copies repeat
    // popular n-grams too), so s and rho are settled by simulation: s (bisection) until the
    // generator's top-1% share at the fitted size equals the corpus's, rho until its share of
    // short reuses does; two rounds of each.
    for (size_t o = 0; o < model.orders.size(); ++o) {
        OrderModel& om = model.orders[o];
        const double want_top = fitted_top1[o];
        for (int round = 0; round < 2; ++round) {
            double lo = 0.2, hi = 3.0;
            for (int it = 0; it < 20; ++it) {
                om.zipf_s = 0.5 * (lo + hi);
                (simulate_moments(om, fit_tokens).top1_share < want_top ? lo : hi) = om.zipf_s;
            }
            om.zipf_s = 0.5 * (lo + hi);
            OrderModel no_copy = om;
            no_copy.reuse_rho = 0;
            const double f0 = simulate_moments(no_copy, fit_tokens).short_reuse_share;
            om.reuse_rho =
                f0 < 1 ? std::clamp((om.short_reuse_share - f0) / (1 - f0), 0.0, 0.99) : 0;
        }
    }
    return model;
}

nlohmann::json to_json(const SyntheticModel& m) {
    nlohmann::json orders = nlohmann::json::array();
    for (const auto& o : m.orders)
        orders.push_back({{"order", o.order},
                          {"heaps_k", o.heaps_k},
                          {"heaps_beta", o.heaps_beta},
                          {"zipf_s", o.zipf_s},
                          {"zipf_q", o.zipf_q},
                          {"reuse_rho", o.reuse_rho},
                          {"reuse_window", o.reuse_window},
                          {"short_reuse_share", o.short_reuse_share}});
    return {{"schema_version", 1},
            {"kind", "engramsim.synthetic_model"},
            {"corpus", m.corpus},
            {"fit_tokens", m.fit_tokens},
            {"orders", orders}};
}

SyntheticModel synthetic_model_from_json(const nlohmann::json& j) {
    if (j.value("kind", "") != "engramsim.synthetic_model" || j.value("schema_version", 0) != 1)
        throw std::invalid_argument("not an engramsim synthetic model (schema_version 1)");
    SyntheticModel m;
    m.corpus = j.at("corpus").get<std::string>();
    m.fit_tokens = j.at("fit_tokens").get<uint64_t>();
    for (const auto& o : j.at("orders")) {
        OrderModel om;
        om.order = o.at("order").get<int>();
        om.heaps_k = o.at("heaps_k").get<double>();
        om.heaps_beta = o.at("heaps_beta").get<double>();
        om.zipf_s = o.at("zipf_s").get<double>();
        om.zipf_q = o.at("zipf_q").get<double>();
        om.reuse_rho = o.at("reuse_rho").get<double>();
        om.reuse_window = o.at("reuse_window").get<int>();
        om.short_reuse_share = o.at("short_reuse_share").get<double>();
        m.orders.push_back(om);
    }
    return m;
}

// ---- Streaming ----------------------------------------------------------------------------

NgramIdSource::NgramIdSource(const OrderModel& model, uint64_t seed)
    : model_(model), rng_state_(seed), window_(size_t(std::max(1, model.reuse_window))) {}

uint64_t NgramIdSource::next() {
    const OrderModel& m = model_;
    const double t = double(t_ + 1);
    const double p_new = m.heaps_k * (std::pow(t, m.heaps_beta) - std::pow(t - 1, m.heaps_beta));
    uint64_t id;
    if (vocabulary_ == 0 || unit(rng_state_) < p_new) {
        id = vocabulary_++;
    } else if (unit(rng_state_) < m.reuse_rho) {
        const uint64_t filled = std::min<uint64_t>(t_, window_.size());
        const auto back = uint64_t(unit(rng_state_) * double(filled));
        id = window_[(t_ - 1 - back) % window_.size()];
    } else {
        // Zipf-Mandelbrot rank in [1, V] by inverting the continuous CDF of (r + q)^-s.
        const double u = unit(rng_state_);
        const double v = double(vocabulary_);
        const double e = 1 - m.zipf_s;
        double x;
        if (std::abs(e) < 1e-9) {
            const double lo = std::log(1 + m.zipf_q), hi = std::log(v + 1 + m.zipf_q);
            x = std::exp(lo + u * (hi - lo)) - m.zipf_q;
        } else {
            const double lo = std::pow(1 + m.zipf_q, e), hi = std::pow(v + 1 + m.zipf_q, e);
            x = std::pow(lo + u * (hi - lo), 1 / e) - m.zipf_q;
        }
        id = std::min<uint64_t>(vocabulary_, std::max<uint64_t>(1, uint64_t(x))) - 1;
    }
    window_[t_ % window_.size()] = id;
    ++t_;
    return id;
}

SyntheticStream::SyntheticStream(const SyntheticModel& model, const NgramHasher& tables,
                                 uint64_t seed)
    : tables_(tables), seed_(seed) {
    if (int(model.orders.size()) != tables.max_ngram_size() - 1)
        throw std::invalid_argument("synthetic model has " + std::to_string(model.orders.size()) +
                                    " orders; the Engram config needs " +
                                    std::to_string(tables.max_ngram_size() - 1));
    for (const auto& om : model.orders)
        orders_.emplace_back(om, splitmix64(seed ^ (0x6a09e667f3bcc909ull * uint64_t(om.order))));
}

void SyntheticStream::next(size_t tokens, std::vector<std::vector<uint32_t>>& out) {
    const auto& layers = tables_.layers();
    const size_t heads = size_t(tables_.heads_per_layer());
    const size_t k_heads = heads / orders_.size();
    out.resize(layers.size());
    for (auto& o : out) o.resize(tokens * heads);
    std::vector<uint64_t> ids(orders_.size());
    for (size_t i = 0; i < tokens; ++i, ++t_) {
        for (size_t o = 0; o < orders_.size(); ++o) ids[o] = orders_[o].next();
        for (size_t l = 0; l < layers.size(); ++l)
            for (size_t o = 0; o < orders_.size(); ++o)
                for (size_t k = 0; k < k_heads; ++k) {
                    const size_t h = o * k_heads + k;
                    const uint64_t mix =
                        splitmix64(seed_ ^ splitmix64((uint64_t(l) << 32) | h) ^ (ids[o] << 3));
                    out[l][i * heads + h] = uint32_t(layers[l].mods[h].mod(mix >> 1));
                }
    }
}

// ---- Validation curves --------------------------------------------------------------------

namespace {

template <typename RowsOf>
GrowthCurve growth(const NgramHasher& tables, const std::vector<uint64_t>& checkpoints,
                   RowsOf rows_of) {
    const size_t heads = size_t(tables.heads_per_layer());
    const size_t orders = size_t(tables.max_ngram_size() - 1);
    const size_t k_heads = heads / orders;
    GrowthCurve g;
    g.tokens = checkpoints;
    g.unique_rows.assign(orders, {});
    std::vector<std::unordered_map<uint64_t, uint64_t>> count(orders);
    std::vector<uint64_t> lookups(orders, 0);
    std::vector<uint32_t> rows;
    uint64_t t = 0;
    for (uint64_t cp : checkpoints) {
        const uint64_t n = cp - t;
        rows_of(t, n, rows);
        for (uint64_t i = 0; i < n; ++i)
            for (size_t h = 0; h < heads; ++h) {
                ++count[h / k_heads][(uint64_t(h) << 40) | rows[i * heads + h]];
                ++lookups[h / k_heads];
            }
        t = cp;
        for (size_t o = 0; o < orders; ++o)
            g.unique_rows[o].push_back(double(count[o].size()) / double(k_heads));
    }
    g.top_share.assign(orders, {});
    for (size_t o = 0; o < orders; ++o) top_shares(count[o], lookups[o], g.top_share[o]);
    return g;
}

}  // namespace

GrowthCurve corpus_growth(const std::vector<uint32_t>& ids, const NgramHasher& tables,
                          const std::vector<uint64_t>& checkpoints) {
    if (checkpoints.empty() || checkpoints.back() > ids.size())
        throw std::invalid_argument("corpus_growth: checkpoints beyond the corpus");
    std::vector<uint32_t> all(checkpoints.back() * size_t(tables.heads_per_layer()));
    tables.hash_layer(0, {ids.data(), size_t(checkpoints.back())}, all);
    const size_t heads = size_t(tables.heads_per_layer());
    return growth(tables, checkpoints, [&](uint64_t from, uint64_t n, std::vector<uint32_t>& out) {
        out.assign(all.begin() + long(from * heads), all.begin() + long((from + n) * heads));
    });
}

GrowthCurve synthetic_growth(const SyntheticModel& model, const NgramHasher& tables,
                             uint64_t seed, const std::vector<uint64_t>& checkpoints) {
    SyntheticStream stream(model, tables, seed);
    std::vector<std::vector<uint32_t>> layers;
    return growth(tables, checkpoints, [&](uint64_t, uint64_t n, std::vector<uint32_t>& out) {
        stream.next(size_t(n), layers);
        out.swap(layers[0]);
    });
}

// ---- Serving-order lookups ----------------------------------------------------------------

namespace {

class SyntheticLookups final : public ScheduledLookups {
public:
    SyntheticLookups(const SyntheticModel& model, const EngramConfig& engram,
                     std::vector<uint32_t> prompt_len, std::vector<uint32_t> output_len,
                     const SchedulerConfig& scheduler, uint64_t seed)
        : ScheduledLookups(lookup_layout(engram), scheduler, prompt_len, output_len),
          map_(CompressMap::load(engram.compress_map)),
          tables_(engram, map_.canonical_vocab_size(), map_(engram.pad_id)),
          stream_(model, tables_, seed),
          tokens_(prompt_len) {
        for (size_t i = 0; i < tokens_.size(); ++i) tokens_[i] += output_len[i];
    }

private:
    // Each request takes the next slice of the stream, in the order requests are first scheduled.
    RequestRows load(uint32_t index) override {
        RequestRows rows;
        stream_.next(tokens_[index], rows);
        return rows;
    }

    CompressMap map_;
    NgramHasher tables_;
    SyntheticStream stream_;
    std::vector<uint32_t> tokens_;  // prompt + output of each request
};

}  // namespace

std::unique_ptr<LookupSource> synthetic_lookups(const SyntheticModel& model,
                                                const EngramConfig& engram,
                                                std::vector<uint32_t> prompt_len,
                                                std::vector<uint32_t> output_len,
                                                const SchedulerConfig& scheduler, uint64_t seed) {
    return std::make_unique<SyntheticLookups>(model, engram, std::move(prompt_len),
                                              std::move(output_len), scheduler, seed);
}

}  // namespace engramsim
