#include "sim/sweep/solve.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "model/capacity.h"
#include "model/config.h"
#include "model/units.h"
#include "sim/sweep/sweep.h"
#include "sim/timing/results.h"

namespace engramsim::sim {

using nlohmann::json;

namespace {

bool is_time_metric(const std::string& m) {
    return (m.size() > 2 && m.compare(m.size() - 2, 2, "_s") == 0) || m.find("_s.") != std::string::npos;
}

std::string trim(std::string s) {
    const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string num_text(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x);
    return buf;
}

// The JSON at a dotted path of a resolved config, or null.
const json* at_path(const json& j, const std::string& dotted) {
    const json* cur = &j;
    size_t from = 0;
    while (from <= dotted.size()) {
        const size_t dot = dotted.find('.', from);
        const std::string part = dotted.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
        if (!cur->is_object() || !cur->contains(part)) return nullptr;
        cur = &(*cur)[part];
        if (dot == std::string::npos) break;
        from = dot + 1;
    }
    return cur;
}

// "LO" of a range: a number with an optional unit.
double parse_end(const std::string& key, const std::string& text, units::Dim dim) {
    try {
        return units::parse(trim(text), dim);
    } catch (const units::UnitError& e) {
        throw config::ConfigError("--vary " + key + ": " + e.what());
    }
}

bool all_integral(const json& v) {
    if (v.is_array()) return std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_integer(); });
    return v.is_number_integer();
}

std::vector<double> spaced(const SolveRange& r, double a, double b, int n, bool ends) {
    std::vector<double> xs;
    for (int i = ends ? 0 : 1; i < (ends ? n : n + 1); ++i) {
        const double t = double(i) / double(ends ? n - 1 : n + 1);
        double x = r.log_scale ? a * std::pow(b / a, t) : a + (b - a) * t;
        if (ends && i == 0) x = a;
        if (ends && i == n - 1) x = b;
        if (r.integral) x = std::round(x);
        xs.push_back(x);
    }
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    return xs;
}

}  // namespace

// ---- target ----

bool SolveTarget::holds(double v) const {
    switch (op) {
        case Op::Less: return v < bound;
        case Op::LessEqual: return v <= bound;
        case Op::Greater: return v > bound;
        case Op::GreaterEqual: return v >= bound;
    }
    return false;
}

std::string SolveTarget::text() const {
    static const char* ops[] = {"<", "<=", ">", ">="};
    return metric + " " + ops[int(op)] + " " + num_text(bound);
}

const std::vector<std::string>& solve_metrics() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto& [k, unit] : sweep_summary_columns()) n.push_back(k);
        for (const auto& [k, unit] : sweep_cluster_columns()) n.push_back(k);
        const json leaves = metrics_json(RunMetrics{}).flatten();
        for (const auto& [path, v] : leaves.items()) {
            if (!v.is_number()) continue;
            std::string dotted = path.substr(1);
            std::replace(dotted.begin(), dotted.end(), '/', '.');
            if (std::find(n.begin(), n.end(), dotted) == n.end()) n.push_back(dotted);
        }
        return n;
    }();
    return names;
}

SolveTarget parse_target(const std::string& text) {
    const size_t at = text.find_first_of("<>");
    const size_t width = at != std::string::npos && at + 1 < text.size() && text[at + 1] == '=' ? 2 : 1;
    const std::string name_text = at == std::string::npos ? "" : trim(text.substr(0, at));
    const std::string op = at == std::string::npos ? "" : text.substr(at, width);
    const std::string bound_text = at == std::string::npos ? "" : trim(text.substr(at + width));
    if (name_text.empty() || bound_text.empty() || bound_text.find_first_of("<>=") != std::string::npos)
        throw std::invalid_argument("--target '" + text + "': write METRIC OP BOUND, OP one of < <= > >=, e.g. 'overhead < 1%'");
    SolveTarget t;
    std::string name = name_text;
    static const std::vector<std::pair<std::string, std::string>> aliases = {
        {"overhead", "overhead_vs_no_engram_pct"},
        {"overhead_vs_no_engram", "overhead_vs_no_engram_pct"},
        {"overhead_vs_hbm", "overhead_vs_table_in_hbm_pct"},
        {"overhead_vs_table_in_hbm", "overhead_vs_table_in_hbm_pct"},
        {"throughput", "throughput_tok_per_s"},
        {"tok/s", "throughput_tok_per_s"},
        {"ttft", "ttft_mean_s"}, {"ttft_mean", "ttft_mean_s"},
        {"ttft_p50", "ttft_s.p50"}, {"ttft_p99", "ttft_s.p99"},
        {"tpot", "tpot_mean_s"}, {"tpot_mean", "tpot_mean_s"},
        {"tpot_p50", "tpot_s.p50"}, {"tpot_p99", "tpot_s.p99"},
        {"stall", "stall_s"}, {"makespan", "makespan_s"},
    };
    for (const auto& [alias, canonical] : aliases)
        if (name == alias) name = canonical;
    const auto& known = solve_metrics();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
        std::vector<std::string> candidates = known;
        for (const auto& [alias, c] : aliases) candidates.push_back(alias);
        std::string msg = "--target: no metric '" + name + "'";
        if (auto near = config::nearest(name, candidates)) msg += "; did you mean " + *near + "?";
        msg += " (the metrics: a sweep point's summary columns, e.g. overhead_vs_no_engram_pct, "
               "throughput_tok_per_s, stall_s, or a metrics leaf, e.g. tpot_s.p99)";
        throw std::invalid_argument(msg);
    }
    t.metric = name;
    t.op = op == "<"    ? SolveTarget::Op::Less
           : op == "<=" ? SolveTarget::Op::LessEqual
           : op == ">"  ? SolveTarget::Op::Greater
                        : SolveTarget::Op::GreaterEqual;
    std::string bound = bound_text;
    const bool pct = name.size() > 4 && name.compare(name.size() - 4, 4, "_pct") == 0;
    try {
        if (pct && !bound.empty() && bound.back() == '%') bound = trim(bound.substr(0, bound.size() - 1));
        const bool has_unit = bound.find_first_of("abcdefghijklmnopqrstuvwxyzµ") != std::string::npos;
        t.bound = is_time_metric(name) && has_unit ? units::parse(bound, units::Dim::Time)
                                                   : units::parse(bound, units::Dim::Count);
    } catch (const units::UnitError& e) {
        throw std::invalid_argument("--target '" + text + "': bound '" + bound_text + "': " + e.what());
    }
    return t;
}

std::optional<double> metric_of(const json& record, const std::string& metric) {
    if (record.contains("summary") && record["summary"].contains(metric) &&
        record["summary"][metric].is_number())
        return record["summary"][metric].get<double>();
    if (!record.contains("metrics")) return std::nullopt;
    const json* v = at_path(record["metrics"], metric);
    if (v && v->is_number()) return v->get<double>();
    return std::nullopt;
}

// ---- range ----

bool is_range_text(const std::string& text) {
    const auto eq = text.find('=');
    return eq != std::string::npos && text.find("..", eq) != std::string::npos &&
           text.find('[', eq) == std::string::npos;
}

json SolveRange::config_value(double x) const {
    json v;
    if (form == "number")
        v = integral ? json(int64_t(std::llround(x))) : json(x);
    else if (form == "percent")
        v = num_text(x) + "%";
    else
        v = units::format(x, dim);
    if (list_entries == 0) return v;
    return json(std::vector<json>(size_t(list_entries), v));
}

std::string SolveRange::value_text(double x) const {
    if (form == "number") return integral ? std::to_string(std::llround(x)) : num_text(x);
    const json v = config_value(x);
    return (v.is_array() ? v[0] : v).get<std::string>();
}

SolveRange parse_range(const std::string& text, const json& base) {
    const auto eq = text.find('=');
    const auto dots = eq == std::string::npos ? std::string::npos : text.find("..", eq);
    if (dots == std::string::npos)
        throw config::ConfigError("--vary '" + text + "': write KEY=LO..HI (or KEY=V1,V2,... for a list)");
    SolveRange r;
    r.key = trim(text.substr(0, eq));
    const std::string lo = text.substr(eq + 1, dots - eq - 1), hi = text.substr(dots + 2);
    const config::Key* k = config::find_key(r.key);
    if (!k || k->type == config::Type::Section) {
        std::string msg = "--vary " + r.key + ": no such config key";
        if (auto near = config::nearest(r.key, config::declared_paths(false)))
            msg += "; did you mean " + *near + "?";
        throw config::ConfigError(msg);
    }
    const json* current = at_path(base, r.key);
    using config::Type;
    switch (k->type) {
        case Type::Integer:
        case Type::IntegerList:
            r.integral = true;
            r.lo = parse_end(r.key, lo, units::Dim::Count), r.hi = parse_end(r.key, hi, units::Dim::Count);
            break;
        case Type::Quantity:
        case Type::QuantityList:
            r.lo = parse_end(r.key, lo, k->dim), r.hi = parse_end(r.key, hi, k->dim);
            if (k->dim == units::Dim::Count)
                r.integral = current && all_integral(*current);
            else
                r.form = "quantity", r.dim = k->dim, r.integral = k->dim == units::Dim::Bytes;
            break;
        case Type::Capacity: {  // the capacity parser's forms: percent, bytes or rows
            auto end = [&](const std::string& text) {
                try {
                    return capacity::parse(text);
                } catch (const std::invalid_argument& e) {
                    throw config::ConfigError("--vary " + r.key + ": " + e.what());
                }
            };
            const capacity::Capacity l = end(lo), h = end(hi);
            if (l.kind != h.kind || l.kind == capacity::Kind::All)
                throw config::ConfigError("--vary " + text + ": both ends must be percentages, "
                                          "bytes or rows (\"all\" is not a number)");
            if (l.kind == capacity::Kind::Percent)
                r.form = "percent", r.lo = l.percent, r.hi = h.percent;
            else if (l.kind == capacity::Kind::Bytes)
                r.form = "quantity", r.dim = units::Dim::Bytes, r.integral = true, r.lo = l.bytes, r.hi = h.bytes;
            else
                r.integral = true, r.lo = double(l.rows), r.hi = double(h.rows);
            break;
        }
        default:
            throw config::ConfigError("--vary " + r.key + ": " + config::describe_type(*k) +
                                      " has no range; give its values as a list (--vary " + r.key + "=V1,V2)");
    }
    if (k->type == Type::IntegerList || k->type == Type::QuantityList) {
        r.list_entries = current && current->is_array() ? int(current->size()) : 1;
        if (r.list_entries == 0) r.list_entries = 1;
    }
    if (!(r.lo < r.hi))
        throw config::ConfigError("--vary " + text + ": the range must go from a lower to a higher value");
    r.log_scale = r.lo > 0 && r.hi / r.lo >= 16;
    return r;
}

// ---- the solver ----

std::string SolveAnswer::kind_name() const {
    switch (kind) {
        case Kind::Boundary: return "boundary";
        case Kind::HoldsEverywhere: return "holds over the whole range";
        case Kind::FailsEverywhere: return "fails over the whole range";
        case Kind::NotMonotone: return "not monotone: swept";
    }
    return "";
}

namespace {

class Solver {
public:
    Solver(const SolveRange& r, const SolveTarget& t, const SolveOptions& o, const SolveEvaluator& e)
        : r_(r), t_(t), o_(o), e_(e) {}

    SolveAnswer run() {
        evaluate(spaced(r_, r_.lo, r_.hi, std::max(2, o_.grid), true));
        while (check_monotone()) {
            const auto flip = first_flip();
            if (!flip) {
                a_.kind = a_.points.front().holds ? SolveAnswer::Kind::HoldsEverywhere
                                                  : SolveAnswer::Kind::FailsEverywhere;
                return finish();
            }
            const auto& [p, q] = *flip;
            if (resolved(p.x, q.x) || a_.rounds >= o_.max_rounds) return boundary(p, q);
            std::vector<double> inside;
            for (double x : spaced(r_, p.x, q.x, std::max(1, o_.per_round), false))
                if (x > p.x && x < q.x) inside.push_back(x);
            if (inside.empty()) return boundary(p, q);  // whole values, adjacent
            evaluate(inside);
        }
        // Not monotone: a sweep of the whole range, every flip reported.
        std::vector<double> more;
        for (double x : spaced(r_, r_.lo, r_.hi, std::max(2, o_.fallback_points), true))
            if (!seen(x)) more.push_back(x);
        if (!more.empty()) evaluate(more);
        a_.kind = SolveAnswer::Kind::NotMonotone;
        for (size_t i = 1; i < a_.points.size(); ++i)
            if (a_.points[i - 1].holds != a_.points[i].holds) a_.flips.push_back({a_.points[i - 1], a_.points[i]});
        return finish();
    }

private:
    void evaluate(const std::vector<double>& xs) {
        const std::vector<double> ms = e_(xs, a_.rounds++);
        if (ms.size() != xs.size()) throw std::logic_error("solve: the evaluator returned the wrong number of values");
        // NaN: the point's config was refused (the table does not fit, ...): the target fails.
        for (size_t i = 0; i < xs.size(); ++i)
            a_.points.push_back({xs[i], ms[i], !std::isnan(ms[i]) && t_.holds(ms[i])});
        std::sort(a_.points.begin(), a_.points.end(), [](const SolvePoint& a, const SolvePoint& b) { return a.x < b.x; });
    }

    bool seen(double x) const {
        return std::any_of(a_.points.begin(), a_.points.end(), [x](const SolvePoint& p) { return p.x == x; });
    }

    // Monotone in the direction the ends set, up to 0.01% of the metric's magnitude: a
    // simulation's last digits wiggle where the metric is flat (a table's size moves its row
    // collisions a little), while what the check is for, a jagged metric such as throughput in
    // KV blocks, moves by 0.1% and more. Refused points (NaN) are not part of the check; they
    // must lie at one end of the range, as a limit does (the table outgrows the memory), else
    // the target's pattern is not one flip.
    bool check_monotone() {
        std::vector<SolvePoint> pts;
        for (const auto& p : a_.points)
            if (!std::isnan(p.metric)) pts.push_back(p);
        size_t runs = 0;  // refused stretches
        for (size_t i = 0; i < a_.points.size(); ++i)
            runs += std::isnan(a_.points[i].metric) && (i == 0 || !std::isnan(a_.points[i - 1].metric));
        const bool refused_at_an_end = runs == 0 || (runs == 1 && (std::isnan(a_.points.front().metric) ||
                                                                  std::isnan(a_.points.back().metric)));
        if (!refused_at_an_end) {
            a_.monotone = false;
            return false;
        }
        if (pts.size() < 2) return true;
        double magnitude = 0;
        for (const auto& p : pts) magnitude = std::max(magnitude, std::fabs(p.metric));
        const double tol = 1e-4 * magnitude;
        const double dir = pts.back().metric - pts.front().metric;
        for (size_t i = 1; i < pts.size(); ++i) {
            const double step = pts[i].metric - pts[i - 1].metric;
            const bool bad = std::fabs(dir) <= tol ? std::fabs(step) > tol
                                                   : (dir > 0 ? step < -tol : step > tol);
            if (bad) {
                a_.monotone = false;
                a_.against = {pts[i - 1], pts[i]};
                return false;
            }
        }
        return true;
    }

    std::optional<std::pair<SolvePoint, SolvePoint>> first_flip() const {
        for (size_t i = 1; i < a_.points.size(); ++i)
            if (a_.points[i - 1].holds != a_.points[i].holds) return std::pair{a_.points[i - 1], a_.points[i]};
        return std::nullopt;
    }

    bool resolved(double a, double b) const {
        if (r_.integral && b - a <= 1) return true;
        return r_.log_scale ? b / a - 1 <= o_.resolution : b - a <= o_.resolution * (r_.hi - r_.lo);
    }

    SolveAnswer boundary(const SolvePoint& p, const SolvePoint& q) {
        a_.kind = SolveAnswer::Kind::Boundary;
        a_.holds_at = p.holds ? p : q;
        a_.fails_at = p.holds ? q : p;
        a_.resolution_relative = r_.log_scale;
        a_.resolution_reached = r_.log_scale ? q.x / p.x - 1 : q.x - p.x;
        return finish();
    }

    SolveAnswer finish() { return std::move(a_); }

    const SolveRange& r_;
    const SolveTarget& t_;
    const SolveOptions& o_;
    const SolveEvaluator& e_;
    SolveAnswer a_;
};

json point_json(const SolvePoint& p, const SolveRange& r) {
    json j = {{"x", p.x}, {"value", r.config_value(p.x)}, {"holds", p.holds}};
    if (std::isnan(p.metric))
        j["refused"] = true, j["metric"] = nullptr;
    else
        j["metric"] = p.metric;
    return j;
}

}  // namespace

SolveAnswer solve_boundary(const SolveRange& range, const SolveTarget& target,
                           const SolveOptions& options, const SolveEvaluator& evaluate) {
    return Solver(range, target, options, evaluate).run();
}

json to_json(const SolveAnswer& a, const SolveRange& r) {
    json pts = json::array(), flips = json::array();
    for (const auto& p : a.points) pts.push_back(point_json(p, r));
    for (const auto& [p, q] : a.flips) flips.push_back({point_json(p, r), point_json(q, r)});
    json j = {{"answer", a.kind_name()},
              {"rounds", a.rounds},
              {"runs", a.points.size()},
              {"monotone", a.monotone},
              {"points", pts}};
    if (a.holds_at) {
        j["holds_at"] = point_json(*a.holds_at, r);
        j["fails_at"] = point_json(*a.fails_at, r);
        j["resolution_reached"] = a.resolution_reached;
        j["resolution_kind"] = a.resolution_relative ? "relative (fails_at / holds_at - 1, absolute value)"
                                                     : "absolute (in the key's base unit)";
    }
    if (a.against) j["against_direction"] = {point_json(a.against->first, r), point_json(a.against->second, r)};
    if (a.kind == SolveAnswer::Kind::NotMonotone) j["flips"] = flips;
    return j;
}

}  // namespace engramsim::sim
