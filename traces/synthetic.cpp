#include "traces/synthetic.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "model/config.h"
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

// ---- Pitman-Yor maximum likelihood ---------------------------------------------------------

namespace {

// log L(d, theta): a customer opens a table with probability (theta + d T) / (theta + n).
double py_log_likelihood(const std::vector<PyEvent>& events, double d, double theta) {
    double ll = 0;
    for (const PyEvent& e : events) {
        const double denom = std::log(theta + e.customers);
        if (e.opened > 0) ll += e.opened * (std::log(theta + d * e.tables) - denom);
        if (e.joined > 0) ll += e.joined * (std::log(e.customers - d * e.tables) - denom);
    }
    return ll;
}

}  // namespace

// A grid over d and theta (linear below 0, logarithmic above), then a finer grid around its best
// point. Deterministic; no optimizer library needed for two bounded parameters and a smooth
// likelihood.
std::pair<double, double> fit_pitman_yor(std::vector<PyEvent> events) {
    // Large fits: every k-th event (in a fixed order), weighted by k, bounds the cost.
    constexpr size_t kMaxEvents = 200000;
    if (events.size() > kMaxEvents) {
        const size_t stride = (events.size() + kMaxEvents - 1) / kMaxEvents;
        std::vector<PyEvent> kept;
        for (size_t i = 0; i < events.size(); i += stride) {
            PyEvent e = events[i];
            e.opened *= double(stride), e.joined *= double(stride);
            kept.push_back(e);
        }
        events.swap(kept);
    }
    double best_d = 0.5, best_theta = 1, best_ll = -INFINITY;
    auto consider = [&](double d, double theta) {
        if (d <= 0 || d >= 1 || theta <= -d + 1e-6) return;
        const double ll = py_log_likelihood(events, d, theta);
        if (ll > best_ll) best_ll = ll, best_d = d, best_theta = theta;
    };
    for (double d = 0.01; d < 0.995; d += 0.02) {
        for (double theta = -0.95; theta < 0.01; theta += 0.05) consider(d, theta);
        for (int k = 0; k <= 40; ++k) consider(d, 0.01 * std::exp2(0.5 * k));
    }
    const double d0 = best_d, theta0 = best_theta;
    const double theta_step = std::max(0.005, std::abs(theta0) / 16);
    for (int i = -20; i <= 20; ++i)
        for (int k = -16; k <= 16; ++k) consider(d0 + 0.001 * i, theta0 + theta_step * k);
    return {best_d, best_theta};
}

namespace {

// Bisection on a parameter that raises the top-1% share, until `top1_at` (the share a trial
// stream shows) equals `want`.
template <typename Apply>
double match_top1(double lo, double hi, double want, Apply top1_at) {
    for (int it = 0; it < 20; ++it) {
        const double mid = 0.5 * (lo + hi);
        (top1_at(mid) < want ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

// One pass over the fit slice: each real n-gram gets the id the generator would give it (the
// j-th successor of its context's id), and every context's reads and successors are counted,
// with the new/old events the Pitman-Yor fits need.
struct SliceState {
    std::vector<std::vector<PyEvent>> successor_events;  // [order - 2], grouped below
    std::vector<PyEvent> token_events;
    std::vector<double> top1_share;  // [order - 2]
};

SliceState read_fit_slice(const std::vector<uint32_t>& ids, uint64_t fit_tokens, uint32_t pad,
                          SyntheticModel& m) {
    const int orders = int(m.orders.size());
    SliceState out;
    std::unordered_map<uint32_t, uint32_t> token_index;  // canonical id -> first-use number
    // Per order: real n-gram fingerprint -> generator id; reads per n-gram; grouped events.
    struct Known {
        uint64_t id = 0;
        uint32_t j = 0;
    };
    std::vector<std::unordered_map<uint64_t, Known>> id_of{size_t(orders)};
    std::vector<uint64_t> old_events(size_t(orders), 0), repeats(size_t(orders), 0);
    std::vector<std::unordered_map<uint64_t, uint64_t>> reads{size_t(orders)};
    std::vector<std::map<std::pair<uint32_t, uint32_t>, PyEvent>> events{size_t(orders)};
    // Orders >= 3: context id -> index into the order's context arrays.
    std::vector<std::unordered_map<uint64_t, uint32_t>> context_index{size_t(orders)};
    std::vector<uint64_t> previous(size_t(orders), 0), current(size_t(orders), 0);

    auto record = [&](int o, uint32_t& count, uint32_t& successors, uint32_t& last, uint64_t parent,
                      uint64_t fingerprint) {
        const auto [it, fresh] = id_of[size_t(o)].try_emplace(fingerprint);
        if (count > 0) {
            PyEvent& e = events[size_t(o)][{count, successors}];
            e.customers = count, e.tables = successors;
            (fresh ? e.opened : e.joined) += 1;
            if (!fresh) ++old_events[size_t(o)], repeats[size_t(o)] += it->second.j == last;
        }
        if (fresh) it->second = {successor_id(parent, successors), successors}, ++successors;
        last = it->second.j;
        ++count;
        ++reads[size_t(o)][fingerprint];
        current[size_t(o)] = it->second.id;
    };

    for (uint64_t t = 0; t < fit_tokens; ++t) {
        const uint32_t token = t > 0 ? ids[t - 1] : pad;
        if (token >= m.vocabulary)
            throw std::invalid_argument("fit_synthetic: canonical id " + std::to_string(token) +
                                        " beyond the vocabulary of " +
                                        std::to_string(m.vocabulary));
        const auto seen = uint32_t(token_index.size());
        const auto [tok, fresh] = token_index.try_emplace(token, seen);
        if (t > 0)
            out.token_events.push_back(
                {double(t), double(seen), fresh ? 1.0 : 0.0, fresh ? 0.0 : 1.0});
        if (fresh)
            m.token_count.push_back(0), m.token_successors.push_back(0), m.token_last.push_back(0);
        const uint32_t c = tok->second;
        record(0, m.token_count[c], m.token_successors[c], m.token_last[c], c,
               ngram_fingerprint(ids, size_t(t), 2, pad));
        // Order n at t extends the (n-1)-gram at t - 1; the first n - 2 positions have none.
        for (int o = 1; o < orders; ++o) {
            if (t < uint64_t(o)) continue;
            OrderLaw& law = m.orders[size_t(o)];
            const uint64_t parent = previous[size_t(o) - 1];
            const auto [ctx, new_context] =
                context_index[size_t(o)].try_emplace(parent, uint32_t(law.context_id.size()));
            if (new_context) {
                law.context_id.push_back(parent);
                law.context_count.push_back(0);
                law.context_successors.push_back(0);
                law.context_last.push_back(0);
            }
            record(o, law.context_count[ctx->second], law.context_successors[ctx->second],
                   law.context_last[ctx->second], parent,
                   ngram_fingerprint(ids, size_t(t), o + 2, pad));
        }
        previous.swap(current);
    }
    for (int o = 0; o < orders; ++o) {
        m.orders[size_t(o)].fitted_vocabulary = id_of[size_t(o)].size();
        m.orders[size_t(o)].repeat =
            old_events[size_t(o)] ? double(repeats[size_t(o)]) / double(old_events[size_t(o)]) : 0;
        std::vector<PyEvent> grouped;
        for (const auto& [key, e] : events[size_t(o)]) grouped.push_back(e);
        out.successor_events.push_back(std::move(grouped));
        uint64_t total = 0;
        for (const auto& [k, v] : reads[size_t(o)]) total += v;
        std::vector<double> shares;
        top_shares(reads[size_t(o)], total, shares);
        out.top1_share.push_back(shares[1]);
    }
    return out;
}

}  // namespace

// ---- Fitting ------------------------------------------------------------------------------

SyntheticModel fit_synthetic(const std::vector<uint32_t>& ids, uint64_t fit_tokens,
                             int max_ngram_size, uint32_t pad, uint32_t vocabulary) {
    if (fit_tokens < 1000 || fit_tokens > ids.size())
        throw std::invalid_argument("fit_synthetic: need between 1,000 tokens and the corpus size");
    if (max_ngram_size < 2) throw std::invalid_argument("fit_synthetic: max_ngram_size < 2");
    SyntheticModel m;
    m.fit_tokens = fit_tokens;
    m.vocabulary = vocabulary;
    for (int n = 2; n <= max_ngram_size; ++n) m.orders.push_back(OrderLaw{.order = n});
    SliceState slice = read_fit_slice(ids, fit_tokens, pad, m);
    std::tie(m.token_d, m.token_theta) = fit_pitman_yor(std::move(slice.token_events));
    for (size_t o = 0; o < m.orders.size(); ++o) {
        OrderLaw& law = m.orders[o];
        std::tie(law.d, law.theta) = fit_pitman_yor(std::move(slice.successor_events[o]));
        law.top1_share = slice.top1_share[o];
    }
    // Which old successor is read sets the popularity, and an order's contexts are the n-grams
    // of the order below: a_n by bisection, order after order, until the continuation of the
    // fit slice shows the slice's top-1% share. A share depends on the length it is taken over,
    // for text and stream alike (handbook-en, order 2: 19.5% over the fit slice, 28.7% over
    // the nine times longer held-out rest), and the stream's rises faster: matched over the
    // slice's own length, the held-out shares come out 4-7 points high on the four handbooks;
    // matched over twice its length, within 3 points (docs/traces.md has the numbers).
    const uint64_t horizon = 2 * fit_tokens;
    for (size_t o = 0; o < m.orders.size(); ++o) {
        m.orders[o].zipf = match_top1(0.0, 4.0, m.orders[o].top1_share, [&](double a) {
            SyntheticModel trial = m;
            trial.orders[o].zipf = a;
            NgramChain chain(trial, 0x5eed0002ull);
            std::vector<uint64_t> position;
            std::unordered_map<uint64_t, uint64_t> reads;
            for (uint64_t t = 0; t < horizon; ++t) {
                chain.next(position);
                ++reads[position[o]];
            }
            std::vector<double> shares;
            top_shares(reads, horizon, shares);
            return shares[1];
        });
    }
    return m;
}

nlohmann::json to_json(const SyntheticModel& m) {
    nlohmann::json orders = nlohmann::json::array();
    for (const auto& o : m.orders)
        orders.push_back({{"order", o.order},
                          {"d", o.d},
                          {"theta", o.theta},
                          {"repeat", o.repeat},
                          {"zipf", o.zipf},
                          {"top1_share", o.top1_share},
                          {"fitted_vocabulary", o.fitted_vocabulary},
                          {"context_id", o.context_id},
                          {"context_count", o.context_count},
                          {"context_successors", o.context_successors},
                          {"context_last", o.context_last}});
    return {{"schema_version", 2},
            {"kind", "engramsim.synthetic_model"},
            {"law", "hierarchical Pitman-Yor"},
            {"corpus", m.corpus},
            {"fit_tokens", m.fit_tokens},
            {"vocabulary", m.vocabulary},
            {"token_d", m.token_d},
            {"token_theta", m.token_theta},
            {"token_count", m.token_count},
            {"token_successors", m.token_successors},
            {"token_last", m.token_last},
            {"orders", orders}};
}

namespace {

// Fields read with their type and range checked: nlohmann's get<uint32_t>() converts a float
// (undefined behaviour past the type's range: 1.5e30) or a larger integer (silently wrapped).
template <typename T>
T whole_value(const nlohmann::json& v, const std::string& name) {
    constexpr auto lo = std::numeric_limits<T>::min();
    constexpr auto hi = std::numeric_limits<T>::max();
    const bool fits = v.is_number_unsigned()  ? v.get<uint64_t>() <= uint64_t(hi)
                      : v.is_number_integer() ? v.get<int64_t>() >= int64_t(lo) &&
                                                    (v.get<int64_t>() < 0 || uint64_t(v.get<int64_t>()) <= uint64_t(hi))
                                              : false;
    if (!fits)
        throw std::invalid_argument("synthetic model: " + name + ": " + v.dump().substr(0, 40) +
                                    " is not an integer in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "]");
    return v.is_number_unsigned() ? T(v.get<uint64_t>()) : T(v.get<int64_t>());
}

template <typename T>
T whole(const nlohmann::json& j, const char* key, const std::string& at) {
    return whole_value<T>(j.at(key), at + key);
}

template <typename T>
std::vector<T> whole_list(const nlohmann::json& j, const char* key, const std::string& at) {
    const nlohmann::json& v = j.at(key);
    if (!v.is_array()) throw std::invalid_argument("synthetic model: " + at + key + ": must be an array");
    std::vector<T> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        out.push_back(whole_value<T>(v[i], at + key + "[" + std::to_string(i) + "]"));
    return out;
}

double real(const nlohmann::json& j, const char* key, const std::string& at) {
    const nlohmann::json& v = j.at(key);
    if (!v.is_number()) throw std::invalid_argument("synthetic model: " + at + key + ": must be a number");
    return v.get<double>();
}

// A Pitman-Yor law: discount d in [0, 1), concentration theta > -d.
void check_law(double d, double theta, const std::string& d_name, const std::string& theta_name) {
    if (!(d >= 0 && d < 1))
        throw std::invalid_argument("synthetic model: " + d_name + ": a discount, in [0, 1)");
    if (!(theta > -d) || !std::isfinite(theta))
        throw std::invalid_argument("synthetic model: " + theta_name + ": must be finite and > -" +
                                    d_name);
}

}  // namespace

SyntheticModel synthetic_model_from_json(const nlohmann::json& j) {
    if (!j.is_object() || j.value("kind", "") != "engramsim.synthetic_model")
        throw std::invalid_argument("not an engramsim synthetic model (no \"kind\": "
                                    "\"engramsim.synthetic_model\"; make one with engramsim "
                                    "trace fit -o FILE)");
    if (!j.contains("schema_version") || j["schema_version"] != 2)
        throw std::invalid_argument(
            "synthetic model schema_version " + j.value("schema_version", nlohmann::json()).dump() +
            " is not 2; refit it with `engramsim trace fit` (version 2 continues the fit slice)");
    SyntheticModel m;
    m.corpus = j.at("corpus").get<std::string>();
    m.fit_tokens = whole<uint64_t>(j, "fit_tokens", "");
    m.vocabulary = whole<uint32_t>(j, "vocabulary", "");
    if (m.vocabulary == 0) throw std::invalid_argument("synthetic model: vocabulary: must be >= 1");
    m.token_d = real(j, "token_d", "");
    m.token_theta = real(j, "token_theta", "");
    check_law(m.token_d, m.token_theta, "token_d", "token_theta");
    m.token_count = whole_list<uint32_t>(j, "token_count", "");
    m.token_successors = whole_list<uint32_t>(j, "token_successors", "");
    m.token_last = whole_list<uint32_t>(j, "token_last", "");
    if (m.token_count.size() != m.token_successors.size() ||
        m.token_last.size() != m.token_count.size() || m.token_count.size() > m.vocabulary)
        throw std::invalid_argument(
            "synthetic model: token_count and token_successors differ in "
            "length or exceed the vocabulary");
    if (!j.at("orders").is_array()) throw std::invalid_argument("synthetic model: orders: must be an array");
    for (const auto& o : j.at("orders")) {
        const std::string at = "orders[" + std::to_string(m.orders.size()) + "].";
        if (!o.is_object()) throw std::invalid_argument("synthetic model: " + at + ": must be an object");
        OrderLaw law;
        law.order = whole<int>(o, "order", at);
        law.d = real(o, "d", at);
        law.theta = real(o, "theta", at);
        check_law(law.d, law.theta, at + "d", at + "theta");
        law.repeat = real(o, "repeat", at);
        if (!(law.repeat >= 0 && law.repeat <= 1))
            throw std::invalid_argument("synthetic model: " + at + "repeat: a probability, in [0, 1]");
        law.zipf = real(o, "zipf", at);
        law.top1_share = real(o, "top1_share", at);
        law.fitted_vocabulary = whole<uint64_t>(o, "fitted_vocabulary", at);
        law.context_id = whole_list<uint64_t>(o, "context_id", at);
        law.context_count = whole_list<uint32_t>(o, "context_count", at);
        law.context_successors = whole_list<uint32_t>(o, "context_successors", at);
        law.context_last = whole_list<uint32_t>(o, "context_last", at);
        if (law.order != int(m.orders.size()) + 2 ||
            law.context_count.size() != law.context_id.size() ||
            law.context_successors.size() != law.context_id.size() ||
            law.context_last.size() != law.context_id.size())
            throw std::invalid_argument("synthetic model: orders[" +
                                        std::to_string(m.orders.size()) +
                                        "] is out of order or its context arrays differ in length");
        m.orders.push_back(std::move(law));
    }
    if (m.orders.empty()) throw std::invalid_argument("synthetic model: no orders");
    return m;
}

SyntheticModel load_synthetic_model(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw config::ConfigError("workload.synthetic_model: cannot read '" + path +
                                  "' (make one with engramsim trace fit -o FILE)");
    try {
        return synthetic_model_from_json(nlohmann::json::parse(in));
    } catch (const nlohmann::json::parse_error& e) {
        throw config::ConfigError("workload.synthetic_model: '" + path +
                                  "': not valid JSON, so not a synthetic model: " +
                                  config::json_error_text(e.what()));
    } catch (const nlohmann::json::exception& e) {
        throw config::ConfigError("workload.synthetic_model: '" + path +
                                  "': not a valid synthetic model (a field is missing or of the "
                                  "wrong type: " + config::json_error_text(e.what()) + ")");
    } catch (const std::exception& e) {
        throw config::ConfigError("workload.synthetic_model: '" + path + "': " + e.what());
    }
}

// ---- Streaming ----------------------------------------------------------------------------

NgramChain::NgramChain(const SyntheticModel& model, uint64_t seed)
    : vocabulary_(model.vocabulary),
      token_d_(model.token_d),
      token_theta_(model.token_theta),
      rng_state_(seed),
      new_salt_(splitmix64(seed ^ 0x243f6a8885a308d3ull)) {
    const uint32_t v = vocabulary_;
    if (v == 0 || model.token_count.size() > v ||
        model.token_count.size() != model.token_successors.size() || model.orders.empty())
        throw std::invalid_argument("NgramChain: inconsistent synthetic model");
    token_count_.assign(v, 0);
    token_successors_.assign(v, 0);
    token_last_.assign(v, 0);
    token_fitted_.assign(v, 0);
    tree_.assign(size_t(v) + 1, Node{});
    // The fit slice's tokens, one table each (the fit counts a type per table).
    for (size_t c = 0; c < model.token_count.size(); ++c) {
        token_successors_[c] = model.token_successors[c];
        token_last_[c] = model.token_last[c];
        token_fitted_[c] = model.token_successors[c];
        add_token(uint32_t(c), model.token_count[c], model.token_count[c] > 0 ? 1 : 0);
    }
    tokens_ = uint32_t(model.token_count.size());
    for (const OrderLaw& law : model.orders) {
        OrderLaw bare = law;
        bare.context_id = {}, bare.context_count = {}, bare.context_successors = {};
        bare.context_last = {};
        laws_.push_back(bare);
        if (law.order < 3) continue;
        auto& map = contexts_.emplace_back();
        map.reserve(law.context_id.size());
        for (size_t i = 0; i < law.context_id.size(); ++i)
            map[law.context_id[i]] = {law.context_count[i], law.context_successors[i],
                                      law.context_last[i], law.context_successors[i]};
    }
}

void NgramChain::add_token(uint32_t token, int64_t count, int64_t tables) {
    token_count_[token] += uint64_t(count);
    positions_ += uint64_t(count);
    tables_ += uint64_t(tables);
    for (size_t i = size_t(token) + 1; i < tree_.size(); i += i & (~i + 1)) {
        tree_[i].count += count;
        tree_[i].tables += tables;
    }
}

uint32_t NgramChain::draw_token() {
    const double d = token_d_, theta = token_theta_;
    if (positions_ == 0 ||
        unit(rng_state_) < (theta + d * double(tables_)) / (theta + double(positions_))) {
        // A new table; its token is uniform over the vocabulary (labels follow first use, so a
        // draw below tokens_ is a token seen before).
        const uint32_t k = std::min(vocabulary_ - 1, uint32_t(unit(rng_state_) * vocabulary_));
        const uint32_t c = k < tokens_ ? k : tokens_++;
        add_token(c, 0, 1);
        return c;
    }
    // An existing table: token c with weight count_c - d tables_c (Fenwick descent).
    double target = unit(rng_state_) * (double(positions_) - d * double(tables_));
    size_t pos = 0;
    size_t step = 1;
    while (step * 2 < tree_.size()) step *= 2;
    for (; step > 0; step /= 2) {
        if (pos + step >= tree_.size()) continue;
        const Node& node = tree_[pos + step];
        const double w = double(node.count) - d * double(node.tables);
        if (w < target) target -= w, pos += step;
    }
    return std::min(uint32_t(pos), tokens_ - 1);
}

uint32_t NgramChain::successor(uint64_t count, uint32_t& successors, uint32_t& last,
                               const OrderLaw& law) {
    uint32_t j;
    if (count == 0 || successors == 0 ||
        (successors < vocabulary_ && unit(rng_state_) < (law.theta + law.d * double(successors)) /
                                                            (law.theta + double(count)))) {
        j = successors++;
    } else if (unit(rng_state_) < law.repeat) {
        j = last;
    } else {
        // The j-th successor by first use, P(j) ~ (j + 1)^-a: invert the continuous CDF of
        // x^-a on [1, s + 1).
        const double u = unit(rng_state_), e = 1 - law.zipf, top = double(successors) + 1;
        const double x =
            std::abs(e) < 1e-9 ? std::pow(top, u) : std::pow(1 + u * (std::pow(top, e) - 1), 1 / e);
        j = std::min(successors - 1, uint32_t(std::max(1.0, x)) - 1);
    }
    last = j;
    return j;
}

void NgramChain::next(std::vector<uint64_t>& ids) {
    ids.resize(laws_.size());
    const uint32_t c = draw_token();
    ids[0] = child_id(c, successor(token_count_[c], token_successors_[c], token_last_[c], laws_[0]),
                      token_fitted_[c]);
    add_token(c, 1, 0);
    for (size_t o = 1; o < laws_.size(); ++o) {
        Context& ctx = contexts_[o - 1][ids[o - 1]];
        ids[o] = child_id(ids[o - 1], successor(ctx.count, ctx.successors, ctx.last, laws_[o]),
                          ctx.fitted);
        ++ctx.count;
    }
}

std::vector<uint64_t> NgramChain::fitted_ids(const SyntheticModel& model, int order) {
    std::vector<uint64_t> ids;
    if (order == 2) {
        for (size_t c = 0; c < model.token_successors.size(); ++c)
            for (uint32_t j = 0; j < model.token_successors[c]; ++j)
                ids.push_back(successor_id(c, j));
        return ids;
    }
    const OrderLaw& law = model.orders.at(size_t(order) - 2);
    for (size_t i = 0; i < law.context_id.size(); ++i)
        for (uint32_t j = 0; j < law.context_successors[i]; ++j)
            ids.push_back(successor_id(law.context_id[i], j));
    return ids;
}

SyntheticStream::SyntheticStream(const SyntheticModel& model, const NgramHasher& tables,
                                 uint64_t seed)
    : model_(model),
      tables_(tables),
      chain_(model.max_ngram_size() == tables.max_ngram_size()
                 ? model
                 : throw std::invalid_argument(
                       "synthetic model has orders 2.." + std::to_string(model.max_ngram_size()) +
                       "; the Engram config needs 2.." + std::to_string(tables.max_ngram_size())),
             splitmix64(seed ^ 0x6a09e667f3bcc909ull)) {
    for (size_t l = 0; l < tables.layers().size(); ++l) {
        auto& salts = salt_.emplace_back();
        for (size_t h = 0; h < size_t(tables.heads_per_layer()); ++h)
            salts.push_back(splitmix64((uint64_t(l) << 32) | h));
    }
}

uint32_t SyntheticStream::row(size_t layer, size_t head, uint64_t id) const {
    const uint64_t mix = splitmix64(salt_[layer][head] ^ (id << 3));
    return uint32_t(tables_.layers()[layer].mods[head].mod(mix >> 1));
}

void SyntheticStream::next(size_t tokens, std::vector<std::vector<uint32_t>>& out) {
    const size_t layers = tables_.layers().size();
    const size_t heads = size_t(tables_.heads_per_layer());
    const size_t k_heads = heads / model_.orders.size();
    out.resize(layers);
    for (auto& o : out) o.resize(tokens * heads);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < tokens; ++i, ++t_) {
        chain_.next(ids);
        for (size_t l = 0; l < layers; ++l)
            for (size_t h = 0; h < heads; ++h) out[l][i * heads + h] = row(l, h, ids[h / k_heads]);
    }
}

std::vector<uint64_t> SyntheticStream::fitted_row_keys(size_t layer) const {
    const size_t heads = size_t(tables_.heads_per_layer());
    const size_t k_heads = heads / model_.orders.size();
    std::vector<uint64_t> keys;
    for (size_t o = 0; o < model_.orders.size(); ++o)
        for (uint64_t id : NgramChain::fitted_ids(model_, int(o) + 2))
            for (size_t k = 0; k < k_heads; ++k) {
                const size_t h = o * k_heads + k;
                keys.push_back((uint64_t(h) << 40) | row(layer, h, id));
            }
    return keys;
}

// ---- Validation curves --------------------------------------------------------------------

namespace {

// Unique rows of the fit slice (`fitted_keys`, (head << 40) | row) and of the positions beyond
// it, at each checkpoint; top shares of the positions beyond it.
template <typename RowsOf>
GrowthCurve growth(const NgramHasher& tables, uint64_t fit_tokens,
                   const std::vector<uint64_t>& checkpoints,
                   const std::vector<uint64_t>& fitted_keys, RowsOf rows_of) {
    if (checkpoints.empty() || checkpoints.front() < fit_tokens ||
        !std::is_sorted(checkpoints.begin(), checkpoints.end()))
        throw std::invalid_argument(
            "growth: checkpoints must be sorted and at or beyond the "
            "fitted size");
    const size_t heads = size_t(tables.heads_per_layer());
    const size_t orders = size_t(tables.max_ngram_size() - 1);
    const size_t k_heads = heads / orders;
    GrowthCurve g;
    g.tokens = checkpoints;
    g.unique_rows.assign(orders, {});
    std::vector<std::unordered_set<uint64_t>> seen(orders);
    for (uint64_t key : fitted_keys) seen[size_t(key >> 40) / k_heads].insert(key);
    std::vector<std::unordered_map<uint64_t, uint64_t>> count(orders);
    std::vector<uint64_t> lookups(orders, 0);
    std::vector<uint32_t> rows;
    uint64_t t = fit_tokens;
    for (uint64_t cp : checkpoints) {
        const uint64_t n = cp - t;
        rows_of(t, n, rows);
        for (uint64_t i = 0; i < n; ++i)
            for (size_t h = 0; h < heads; ++h) {
                const uint64_t key = (uint64_t(h) << 40) | rows[i * heads + h];
                seen[h / k_heads].insert(key);
                ++count[h / k_heads][key];
                ++lookups[h / k_heads];
            }
        t = cp;
        for (size_t o = 0; o < orders; ++o)
            g.unique_rows[o].push_back(double(seen[o].size()) / double(k_heads));
    }
    g.top_share.assign(orders, {});
    for (size_t o = 0; o < orders; ++o) top_shares(count[o], lookups[o], g.top_share[o]);
    return g;
}

}  // namespace

GrowthCurve corpus_growth(const std::vector<uint32_t>& ids, const NgramHasher& tables,
                          uint64_t fit_tokens, const std::vector<uint64_t>& checkpoints) {
    if (checkpoints.empty() || checkpoints.back() > ids.size())
        throw std::invalid_argument("corpus_growth: checkpoints beyond the corpus");
    const size_t heads = size_t(tables.heads_per_layer());
    std::vector<uint32_t> all(checkpoints.back() * heads);
    tables.hash_layer(0, {ids.data(), size_t(checkpoints.back())}, all);
    std::vector<uint64_t> fitted;
    for (uint64_t i = 0; i < fit_tokens; ++i)
        for (size_t h = 0; h < heads; ++h)
            fitted.push_back((uint64_t(h) << 40) | all[i * heads + h]);
    return growth(tables, fit_tokens, checkpoints, fitted,
                  [&](uint64_t from, uint64_t n, std::vector<uint32_t>& out) {
                      out.assign(all.begin() + long(from * heads),
                                 all.begin() + long((from + n) * heads));
                  });
}

GrowthCurve synthetic_growth(const SyntheticModel& model, const NgramHasher& tables,
                             uint64_t seed, const std::vector<uint64_t>& checkpoints) {
    SyntheticStream stream(model, tables, seed);
    std::vector<std::vector<uint32_t>> layers;
    return growth(tables, model.fit_tokens, checkpoints, stream.fitted_row_keys(0),
                  [&](uint64_t, uint64_t n, std::vector<uint32_t>& out) {
                      stream.next(size_t(n), layers);
                      out.swap(layers[0]);
                  });
}

// ---- Serving-order lookups ----------------------------------------------------------------

namespace {

uint32_t checked_vocabulary(const SyntheticModel& model, const CompressMap& map) {
    if (model.vocabulary != map.canonical_vocab_size())
        throw std::invalid_argument(
            "synthetic model was fitted over " + std::to_string(model.vocabulary) +
            " canonical ids; this Engram config's tokenizer map has " +
            std::to_string(map.canonical_vocab_size()) + " (refit with its --engram)");
    return map.canonical_vocab_size();
}

class SyntheticLookups final : public ScheduledLookups {
public:
    SyntheticLookups(const SyntheticModel& model, const EngramConfig& engram,
                     std::vector<uint32_t> prompt_len, std::vector<uint32_t> output_len,
                     const SchedulerConfig& scheduler, uint64_t seed)
        : ScheduledLookups(lookup_layout(engram), scheduler, prompt_len, output_len),
          map_(CompressMap::load(engram.compress_map)),
          tables_(engram, checked_vocabulary(model, map_), map_(engram.pad_id)),
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
