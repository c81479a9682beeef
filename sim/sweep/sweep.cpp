#include "sim/sweep/sweep.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "model/config.h"
#include "model/engram_config.h"
#include "model/files.h"
#include "sim/scaleout/cluster_sim.h"
#include "sim/sweep/experiment.h"
#include "sim/sweep/mpi_world.h"
#include "sim/timing/plan.h"
#include "sim/timing/results.h"

namespace engramsim::sim {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void spec_error(const std::string& origin, const std::string& path,
                             const std::string& what) {
    throw config::ConfigError(origin + ": " + path + ": " + what);
}

// Rejects keys of `obj` outside `allowed`, naming the nearest.
void check_keys(const json& obj, const std::vector<std::string>& allowed, const std::string& origin,
                const std::string& path) {
    if (!obj.is_object()) spec_error(origin, path.empty() ? "(document)" : path, "must be an object");
    for (const auto& [k, v] : obj.items()) {
        if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
        std::string msg = "unknown key";
        if (auto near = config::nearest(k, allowed)) msg += "; did you mean " + *near + "?";
        spec_error(origin, path.empty() ? k : path + "." + k, msg);
    }
}

json value_from_text(const std::string& text) {
    if (text.empty()) return text;
    try {
        json v = json::parse(text);
        if (!v.is_object()) return v;
    } catch (const json::parse_error&) {
    }
    return text;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string point_file(const std::string& dir, size_t index) {
    char name[32];
    std::snprintf(name, sizeof name, "%05zu.json", index);
    return dir + "/points/" + name;
}

using files::write_all;
using files::write_atomically;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A finished point's record from its file, or null when the file is missing, unreadable, or
// belongs to another point (then the point runs again).
json read_record(const std::string& path, const SweepPoint& p, std::string* why,
                 bool accept_error = false) {
    if (!fs::exists(path)) return nullptr;
    try {
        json r = json::parse(slurp(path));
        if (r.value("index", size_t(-1)) != p.index || r.value("axes", json()) != p.values()) {
            *why = "it holds another point";
            return nullptr;
        }
        if (r.contains("error") && !accept_error) {
            *why = "it failed before (" + r["error"].get<std::string>() + ")";
            return nullptr;
        }
        if (!r.contains("summary") && !r.contains("error")) {
            *why = "it has no results";
            return nullptr;
        }
        return r;
    } catch (const json::exception& e) {
        *why = std::string("it is not valid JSON (") + e.what() + ")";
        return nullptr;
    }
}

// One entry of "axes": {"key", "values"} or {"keys", "values": [[...], ...]}.
SweepAxis axis_from_json(const json& a, const std::string& origin, const std::string& path) {
    check_keys(a, {"key", "keys", "values"}, origin, path);
    SweepAxis axis;
    if (a.contains("key") == a.contains("keys"))
        spec_error(origin, path, "needs \"key\" (one config key) or \"keys\" (several, "
                                 "varied together), not both");
    if (a.contains("key")) {
        if (!a["key"].is_string())
            spec_error(origin, path + ".key", "must be a dotted config key such as sim.table");
        axis.keys = {a["key"].get<std::string>()};
    } else {
        if (!a["keys"].is_array() || a["keys"].size() < 2)
            spec_error(origin, path + ".keys", "must be an array of two or more config keys");
        for (const auto& k : a["keys"]) {
            if (!k.is_string())
                spec_error(origin, path + ".keys", "must be an array of dotted config keys");
            axis.keys.push_back(k);
        }
    }
    if (!a.contains("values") || !a["values"].is_array() || a["values"].empty())
        spec_error(origin, path + ".values", "must be a non-empty array");
    axis.values = a["values"].get<std::vector<json>>();
    if (axis.keys.size() > 1)
        for (size_t v = 0; v < axis.values.size(); ++v)
            if (!axis.values[v].is_array() || axis.values[v].size() != axis.keys.size())
                spec_error(origin, path + ".values[" + std::to_string(v) + "]",
                           "must be an array of " + std::to_string(axis.keys.size()) +
                               " values, one per key");
    return axis;
}

}  // namespace

std::vector<std::pair<std::string, json>> SweepAxis::settings(size_t i) const {
    if (keys.size() == 1) return {{keys[0], values[i]}};
    std::vector<std::pair<std::string, json>> out;
    for (size_t k = 0; k < keys.size(); ++k) out.emplace_back(keys[k], values[i][k]);
    return out;
}

std::string SweepAxis::name() const {
    std::string n;
    for (const auto& k : keys) n += (n.empty() ? "" : "+") + k;
    return n;
}

std::vector<std::string> SweepSpec::columns() const {
    std::vector<std::string> c;
    for (const auto& a : axes) c.insert(c.end(), a.keys.begin(), a.keys.end());
    return c;
}

json SweepSpec::to_json() const {
    json axes_j = json::array();
    for (const auto& a : axes)
        axes_j.push_back(a.keys.size() == 1 ? json{{"key", a.keys[0]}, {"values", a.values}}
                                            : json{{"keys", a.keys}, {"values", a.values}});
    return {{"schema_version", kSweepSchemaVersion},
            {"name", name},
            {"description", description},
            {"references", references},
            {"axes", axes_j},
            {"base", base}};
}

bool is_sweep_spec(const json& doc) { return doc.is_object() && doc.contains("axes"); }

SweepSpec parse_sweep_spec(const json& doc, const std::string& origin, const std::string& dir) {
    check_keys(doc, {"schema_version", "name", "description", "base", "axes", "references"}, origin,
               "");
    SweepSpec s;
    if (doc.contains("schema_version") && doc["schema_version"] != kSweepSchemaVersion)
        spec_error(origin, "schema_version", "this build reads version " +
                                                 std::to_string(kSweepSchemaVersion));
    if (doc.contains("name")) {
        if (!doc["name"].is_string()) spec_error(origin, "name", "must be a string");
        s.name = doc["name"];
    }
    if (doc.contains("description")) {
        if (!doc["description"].is_string()) spec_error(origin, "description", "must be a string");
        s.description = doc["description"];
    }
    if (doc.contains("references")) {
        if (!doc["references"].is_boolean()) spec_error(origin, "references", "must be true or false");
        s.references = doc["references"];
    }
    if (!doc.contains("base"))
        spec_error(origin, "base", "missing: a backbone preset, a run config file or an object");
    const json& base = doc["base"];
    if (base.is_string()) {
        const std::string name = base;
        const fs::path p = fs::path(name).is_absolute() ? fs::path(name) : fs::path(dir) / name;
        s.base = load_run_config(fs::exists(p) ? p.string() : name);
    } else if (base.is_object()) {
        s.base = resolve_run_config(base, origin + ": base");
    } else {
        spec_error(origin, "base", "must be a preset name, a file name or an object");
    }
    if (!doc.contains("axes") || !doc["axes"].is_array() || doc["axes"].empty())
        spec_error(origin, "axes", "must be a non-empty array of {\"key\", \"values\"}");
    std::map<std::string, size_t> axis_of;  // key -> the axis that varies it
    for (size_t i = 0; i < doc["axes"].size(); ++i) {
        const std::string path = "axes[" + std::to_string(i) + "]";
        const json& a = doc["axes"][i];
        SweepAxis axis = axis_from_json(a, origin, path);
        for (const auto& k : axis.keys) {
            if (auto [it, fresh] = axis_of.emplace(k, i); !fresh)
                spec_error(origin, path,
                           "'" + k + "' is already varied by axis " + std::to_string(it->second));
        }
        s.axes.push_back(std::move(axis));
    }
    return s;
}

SweepAxis parse_axis(const std::string& text) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
        throw config::ConfigError("--axis '" + text + "': expected KEY=V1,V2,... (e.g. "
                                  "sim.table=host-dram,nvme)");
    SweepAxis a;
    {
        std::stringstream keys(text.substr(0, eq));
        for (std::string k; std::getline(keys, k, ',');) a.keys.push_back(k);
    }
    const std::string rest = text.substr(eq + 1);
    if (a.keys.size() > 1) {  // zipped: one JSON array of arrays
        json arr;
        try {
            arr = json::parse(rest);
        } catch (const json::parse_error& e) {
            throw config::ConfigError("--axis " + a.name() + ": keys varied together take one "
                                      "JSON array of arrays, e.g. [[\"dense-4b\", 1], "
                                      "[\"moe-27b\", 4]]: " + e.what());
        }
        return axis_from_json({{"keys", a.keys}, {"values", arr}}, "--axis " + a.name(), "axis");
    }
    if (rest.front() == '[') {
        json arr;
        try {
            arr = json::parse(rest);
        } catch (const json::parse_error& e) {
            throw config::ConfigError("--axis " + a.name() + ": the values are not a JSON array: " +
                                      e.what());
        }
        if (!arr.is_array() || arr.empty())
            throw config::ConfigError("--axis " + a.name() + ": expected a non-empty JSON array");
        a.values = arr.get<std::vector<json>>();
        return a;
    }
    std::stringstream ss(rest);
    std::string v;
    while (std::getline(ss, v, ',')) a.values.push_back(value_from_text(v));
    return a;
}

json SweepPoint::values() const {
    json v = json::object();
    for (const auto& [k, x] : settings) v[k] = x;
    return v;
}

std::string SweepPoint::label() const {
    std::string s;
    for (const auto& [k, v] : settings) {
        const bool named = v.is_object() && v.contains("name") && v["name"].is_string();
        s += (s.empty() ? "" : ", ") + k + "=" + (named ? v["name"].get<std::string>() : value_text(v));
    }
    return s;
}

std::vector<SweepPoint> expand_sweep(const SweepSpec& spec) {
    size_t total = 1;
    for (const auto& a : spec.axes) total *= a.values.size();
    std::vector<SweepPoint> points;
    points.reserve(total);
    std::vector<size_t> at(spec.axes.size(), 0);  // odometer, last axis fastest
    for (size_t i = 0; i < total; ++i) {
        SweepPoint p;
        p.index = i;
        p.config = spec.base;
        for (size_t a = 0; a < spec.axes.size(); ++a)
            for (auto& kv : spec.axes[a].settings(at[a])) p.settings.push_back(std::move(kv));
        const std::string where = "sweep point " + std::to_string(i) + " (" + p.label() + ")";
        try {
            p.config = with_keys(p.config, p.settings, where);
        } catch (const config::ConfigError&) {
            throw;  // names the point already
        } catch (const std::exception& e) {
            throw config::ConfigError(where + ": " + e.what());
        }
        points.push_back(std::move(p));
        for (size_t a = spec.axes.size(); a-- > 0;) {
            if (++at[a] < spec.axes[a].values.size()) break;
            at[a] = 0;
        }
    }
    return points;
}

const std::vector<std::pair<std::string, std::string>>& sweep_summary_columns() {
    static const std::vector<std::pair<std::string, std::string>> cols = {
        {"throughput_tok_per_s", "output tokens/s"},
        {"table_in_hbm_tok_per_s", "output tokens/s"},
        {"no_engram_tok_per_s", "output tokens/s"},
        {"overhead_vs_table_in_hbm_pct", "%"},
        {"overhead_vs_no_engram_pct", "%"},
        {"makespan_s", "s"},
        {"ttft_mean_s", "s"},
        {"tpot_mean_s", "s"},
        {"compute_s", "s"},
        {"stall_s", "s"},
        {"hidden_fetch_s", "s"},
        {"lookups", "lookups"},
        {"unique_rows", "rows"},
        {"rows_from_hbm", "rows"},
        {"rows_from_host_dram", "rows"},
        {"rows_from_nvme", "rows"},
        {"h2d_utilization", "fraction"},
        {"weight_bytes", "B per GPU"},
        {"kv_cache_bytes", "B per GPU"},
        {"num_kv_blocks", "blocks"},
        {"preemptions", "preemptions"},
        {"table_bytes", "B"},
    };
    return cols;
}

const std::vector<std::pair<std::string, std::string>>& sweep_cluster_columns() {
    static const std::vector<std::pair<std::string, std::string>> cols = {
        {"gpus", "GPUs"},
        {"per_gpu_tok_per_s", "output tokens/s per GPU"},
        {"table_in_hbm_per_gpu_tok_per_s", "output tokens/s per GPU"},
        {"mean_decode_step_s", "s"},
        {"decode_tok_per_s_per_gpu", "output tokens/s per GPU in decode steps"},
        {"engram_network_share", "fraction of GPU 0's fabric bytes"},
        {"table_bytes_per_node", "B of host DRAM"},
        {"all_to_all_share", "fraction"},
        {"engram_stall_share", "fraction"},
    };
    return cols;
}

namespace {

// A reference run's throughput, kept in `cache_dir` (one file per resolved config, named by its
// FNV-1a hash and holding the config, checked on read) so that the points of a sweep that
// share a reference (most of them: the no-Engram run rarely varies) simulate it once.
double reference_tps(const json& cfg, const std::string& cache_dir) {
    if (cache_dir.empty()) return run_config(cfg).metrics.throughput_tok_per_s;
    const std::string text = cfg.dump();
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001b3ull;
    char name[24];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
    const std::string path = cache_dir + "/" + name + ".json";
    if (fs::exists(path)) {
        try {
            const json j = json::parse(slurp(path));
            if (j.at("config") == cfg) return j.at("throughput_tok_per_s").get<double>();
        } catch (const json::exception&) {  // unreadable: simulate it again
        }
    }
    const double tps = run_config(cfg).metrics.throughput_tok_per_s;
    fs::create_directories(cache_dir);
    write_atomically(path, json{{"config", cfg}, {"throughput_tok_per_s", tps}}.dump() + "\n");
    return tps;
}

}  // namespace

namespace {

// A cluster point (sim/scaleout): the cluster and, with references, the same cluster with the
// table in HBM.
json cluster_point(const json& resolved, bool references) {
    const scaleout::ClusterRun run = scaleout::run_cluster(resolved, references);
    const scaleout::ClusterPlan& plan = run.plan;
    const scaleout::ClusterMetrics& m = run.metrics;
    json summary = {{"throughput_tok_per_s", m.throughput_tok_per_s},
                    {"per_gpu_tok_per_s", m.per_gpu_tok_per_s},
                    {"gpus", plan.layout.world},
                    {"makespan_s", m.makespan_s},
                    {"mean_decode_step_s", m.mean_decode_step_s},
                    {"decode_tok_per_s_per_gpu", m.decode_tok_per_s_per_gpu},
                    {"engram_network_share", m.engram_network_share},
                    {"table_bytes_per_node", m.table_bytes_per_node},
                    {"tpot_mean_s", m.mean_decode_step_s},
                    {"all_to_all_share", m.a2a_share},
                    {"engram_stall_share", m.stall_share},
                    {"unique_rows", m.unique_rows_per_gpu},
                    {"weight_bytes", plan.weight_bytes_per_gpu},
                    {"num_kv_blocks", plan.num_kv_blocks},
                    {"preemptions", plan.preemptions},
                    {"table_bytes", double(plan.table_rows) * plan.row_bytes}};
    if (run.table_in_hbm) {
        summary["table_in_hbm_tok_per_s"] = run.table_in_hbm->throughput_tok_per_s;
        summary["table_in_hbm_per_gpu_tok_per_s"] = run.table_in_hbm->per_gpu_tok_per_s;
        summary["overhead_vs_table_in_hbm_pct"] = run.overhead_vs_table_in_hbm_pct();
    }
    return json{{"summary", summary}, {"metrics", scaleout::cluster_results_json(run)}};
}

}  // namespace

PointEvaluator simulator_evaluator(bool references, const std::string& reference_cache_dir) {
    return [references, reference_cache_dir](const json& resolved) {
        if (resolved.contains("cluster")) return cluster_point(resolved, references);
        // The references of run_compared, their throughputs cached across the sweep's points.
        // The placement section cannot change either reference (no table, or all of it in
        // HBM), so it is reset to its defaults: points that differ only in placement share them.
        Compared c{run_config(resolved), std::nullopt, std::nullopt};
        if (references && c.run.plan.has_engram) {
            const json ref = with_key(resolved, "placement", json::object());
            if (c.run.plan.table != "hbm") {
                c.table_in_hbm = RunMetrics{};
                c.table_in_hbm->throughput_tok_per_s =
                    reference_tps(with_key(ref, "sim.table", "hbm"), reference_cache_dir);
            }
            c.no_engram = RunMetrics{};
            c.no_engram->throughput_tok_per_s =
                reference_tps(without_engram(ref), reference_cache_dir);
        }
        const RunMetrics& m = c.run.metrics;
        json cmp = c.comparison_json();
        json summary = {{"throughput_tok_per_s", m.throughput_tok_per_s},
                        {"makespan_s", m.makespan_s},
                        {"ttft_mean_s", m.ttft_mean_s},
                        {"tpot_mean_s", m.tpot_mean_s},
                        {"compute_s", m.compute_s},
                        {"stall_s", m.stall_s},
                        {"hidden_fetch_s", m.hidden_fetch_s},
                        {"lookups", m.lookups},
                        {"unique_rows", m.unique_rows},
                        {"rows_from_hbm", m.rows_from_hbm},
                        {"rows_from_host_dram", m.rows_from_host_dram},
                        {"rows_from_nvme", m.rows_from_nvme},
                        {"h2d_utilization", m.h2d_utilization}};
        // Memory: what the backbone and its KV cache take of each GPU's HBM, and the table.
        const Plan& plan = c.run.plan;
        const double block = double(resolved["sim"]["kv_block_size"].get<int>());
        summary["weight_bytes"] = plan.weight_bytes;
        summary["kv_cache_bytes"] = double(plan.num_kv_blocks) * block * plan.kv_bytes_per_token;
        summary["num_kv_blocks"] = plan.num_kv_blocks;
        summary["preemptions"] = plan.preemptions;
        summary["table_bytes"] =
            plan.has_engram ? double(plan.table_rows) *
                                  EngramConfig::from_json(resolved["engram"]).row_bytes()
                            : 0.0;
        for (const char* k : {"table_in_hbm_tok_per_s", "no_engram_tok_per_s",
                              "overhead_vs_table_in_hbm_pct", "overhead_vs_no_engram_pct"})
            if (cmp.contains(k)) summary[k] = cmp[k];
        return json{{"summary", summary}, {"metrics", metrics_json(m)}};
    };
}

namespace {

// Makes (or checks) the sweep's folder; returns the records already finished there.
std::vector<json> prepare_dir(const SweepSpec& spec, const SweepOptions& opt,
                              const std::vector<SweepPoint>& points) {
    const std::string spec_path = opt.dir + "/spec.json";
    json spec_json = spec.to_json();
    if (!opt.producer.empty()) spec_json["producer"] = opt.producer;
    const std::string spec_text = spec_json.dump(2) + "\n";
    std::vector<json> done(points.size());
    if (fs::exists(spec_path)) {
        if (!opt.resume)
            throw std::runtime_error(opt.dir + " already holds a sweep; pass --resume to finish it, "
                                     "or choose another output folder");
        const std::string old_text = slurp(spec_path);
        if (old_text != spec_text) {
            json old;
            try {
                old = json::parse(old_text);
            } catch (const json::exception&) {
            }
            if (old.is_object()) {
                const std::string was = old.value("producer", std::string("an unnamed build"));
                old.erase("producer");
                if (old == spec.to_json() && was != opt.producer)
                    throw std::runtime_error(
                        opt.dir + " was written by " + was + ", not by this build (" +
                        (opt.producer.empty() ? "unnamed" : opt.producer) +
                        "): finishing it here would mix two builds' results; choose another "
                        "output folder");
            }
            throw std::runtime_error(opt.dir + " holds a different sweep (its spec.json differs "
                                     "from this one); choose another output folder");
        }
        for (const auto& p : points) {
            std::string why;
            done[p.index] = read_record(point_file(opt.dir, p.index), p, &why);
            if (!why.empty())
                std::fprintf(stderr, "engramsim: %s: %s; running that point again\n",
                             point_file(opt.dir, p.index).c_str(), why.c_str());
        }
    } else {
        fs::create_directories(opt.dir + "/points");
        write_atomically(spec_path, spec_text);
    }
    fs::create_directories(opt.dir + "/points");
    return done;
}

// One point evaluated: its record as the point file holds it. An error thrown by the
// evaluator (a config refused at run time) is part of the record.
std::string point_record_text(const SweepPoint& p, const PointEvaluator& evaluate) {
    json rec = {{"index", p.index}, {"axes", p.values()}};
    try {
        json r = evaluate(p.config);
        for (auto& [k, v] : r.items()) rec[k] = v;
    } catch (const std::exception& e) {
        rec["error"] = e.what();
    }
    return rec.dump(1) + "\n";
}

// Runs `body` in a forked child that exits with status 0, or 2 after printing what it threw.
pid_t fork_child(const std::function<void()>& body, size_t index) {
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("sweep: fork failed");
    if (pid > 0) return pid;
    int code = 0;
    try {
        body();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "engramsim: sweep point %zu: %s\n", index, e.what());
        code = 2;
    }
    std::fflush(stderr);
    _exit(code);
}

// One point in a forked worker: evaluate, write its file, exit. The parent reads the file.
pid_t start_worker(const SweepPoint& p, const std::string& path, const PointEvaluator& evaluate) {
    return fork_child([&] { write_atomically(path, point_record_text(p, evaluate)); }, p.index);
}

std::string died_text(int status) {
    return WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status))
                               : "exited with status " + std::to_string(WEXITSTATUS(status));
}

// What a sweep's processes tell each other under MPI. A worker announces itself with READY
// (its build and spec, which must be rank 0's), then gets POINT (an index) or STOP; it answers
// each POINT with RECORD: 'W' and the point file's text, or 'D' and an error record when the
// point's process died (then no file is written, and a resume runs the point again).
enum Tag : int { kReady = 1, kPoint = 2, kStop = 3, kRecord = 4 };

std::string identity(const SweepSpec& spec, const SweepOptions& opt) {
    return opt.producer + "\n" + spec.to_json().dump();
}

// A worker rank: evaluates the points rank 0 hands it, one at a time, each in a forked child
// (a crash loses that point only), and sends back the records.
void serve_points(const SweepSpec& spec, const SweepOptions& opt, const PointEvaluator& evaluate) {
    const std::vector<SweepPoint> points = expand_sweep(spec);
    const std::string where = "rank " + std::to_string(mpi::rank()) + " (" + mpi::processor_name() + ")";
    mpi::send(0, kReady, identity(spec, opt));
    for (;;) {
        int tag = 0;
        const std::string msg = mpi::receive(0, nullptr, &tag);
        if (tag == kStop) return;
        size_t index = points.size();
        if (tag == kPoint && !msg.empty() && msg.find_first_not_of("0123456789") == std::string::npos)
            index = std::stoul(msg);
        if (index >= points.size())
            throw std::runtime_error("sweep: " + where + " got an unexpected message");
        const SweepPoint& p = points[index];
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("sweep: pipe failed");
        const pid_t pid = fork_child(
            [&] {
                ::close(fds[0]);
                if (!write_all(fds[1], point_record_text(p, evaluate)))
                    throw std::runtime_error("cannot send the record to its rank");
                ::close(fds[1]);
            },
            index);
        ::close(fds[1]);
        std::string text;
        char buf[65536];
        for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            text.append(buf, size_t(n));
        }
        ::close(fds[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            text.insert(text.begin(), 'W');
            mpi::send(0, kRecord, text);
        } else {
            const json rec = {{"index", index},
                              {"axes", p.values()},
                              {"error", "its worker on " + where + " " + died_text(status)}};
            mpi::send(0, kRecord, std::string(1, 'D') += rec.dump());
        }
    }
}

struct Finished {
    size_t index;
    json record;
    double wall_s;
};

// Rank 0 of a multi-rank world: hands the unfinished points to ranks 1..N-1 in index order as
// they ask, writes each record as it arrives (so a crash of the job loses no finished point)
// and calls `done` for it.
void hand_out_points(const SweepSpec& spec, const SweepOptions& opt,
                     const std::vector<SweepPoint>& points, const std::vector<json>& records,
                     const std::function<void(const Finished&)>& done) {
    using clock = std::chrono::steady_clock;
    std::vector<size_t> pending;
    for (const auto& p : points)
        if (records[p.index].is_null()) pending.push_back(p.index);
    size_t next = 0;
    std::map<int, std::pair<size_t, clock::time_point>> busy;  // rank: point, when sent
    const std::string me = identity(spec, opt);
    for (int stopped = 0; stopped < mpi::size() - 1;) {
        int from = 0, tag = 0;
        const std::string msg = mpi::receive(-1, &from, &tag);
        if (tag == kReady && msg != me)
            throw std::runtime_error(
                "sweep: rank " + std::to_string(from) +
                " runs another build or another sweep than rank 0 (" + opt.producer +
                "): every rank must run the same engramsim with the same sweep and options");
        if (tag == kRecord) {
            const auto it = busy.find(from);
            if (it == busy.end() || msg.empty())
                throw std::runtime_error("sweep: unexpected record from rank " + std::to_string(from));
            const auto [index, sent] = it->second;
            busy.erase(it);
            const std::string text = msg.substr(1);
            json rec = json::parse(text);
            if (rec.value("index", size_t(-1)) != index)
                throw std::runtime_error("sweep: rank " + std::to_string(from) +
                                         " answered another point");
            if (msg[0] == 'W') write_atomically(point_file(opt.dir, index), text);
            done({index, std::move(rec),
                  std::chrono::duration<double>(clock::now() - sent).count()});
        } else if (tag != kReady) {
            throw std::runtime_error("sweep: unexpected message from rank " + std::to_string(from));
        }
        if (next < pending.size()) {
            busy[from] = {pending[next], clock::now()};
            mpi::send(from, kPoint, std::to_string(pending[next++]));
        } else {
            mpi::send(from, kStop, "");
            ++stopped;
        }
    }
}

}  // namespace

std::vector<json> run_sweep(const SweepSpec& spec, const SweepOptions& opt,
                            const PointEvaluator& evaluate) {
    if (opt.dir.empty()) throw std::invalid_argument("sweep: no output folder");
    if (mpi::size() > 1 && opt.jobs > 1)
        throw std::invalid_argument("sweep: under MPI every rank simulates one point at a time; "
                                    "start more ranks (mpirun -n) instead of -j " +
                                    std::to_string(opt.jobs));
    if (mpi::size() > 1 && mpi::rank() != 0) {
        serve_points(spec, opt, evaluate);
        return {};
    }
    const std::vector<SweepPoint> points = expand_sweep(spec);
    std::vector<json> records = prepare_dir(spec, opt, points);
    SweepProgress prog;
    prog.total = points.size();
    for (const auto& r : records)
        if (!r.is_null()) ++prog.reused;
    prog.done = prog.reused;
    if (opt.started) opt.started(prog);
    auto finished = [&](const Finished& f) {
        records[f.index] = f.record;
        ++prog.done;
        prog.point = &points[f.index];
        prog.record = &records[f.index];
        prog.wall_s = f.wall_s;
        if (opt.progress) opt.progress(prog);
    };
    if (mpi::size() > 1) {
        hand_out_points(spec, opt, points, records, finished);
        return records;
    }

    using clock = std::chrono::steady_clock;
    std::map<pid_t, std::pair<size_t, clock::time_point>> running;
    size_t next = 0;
    const size_t jobs = size_t(std::max(1, opt.jobs));
    auto launch = [&] {
        while (running.size() < jobs && next < points.size()) {
            const SweepPoint& p = points[next++];
            if (!records[p.index].is_null()) continue;
            running[start_worker(p, point_file(opt.dir, p.index), evaluate)] = {p.index,
                                                                                clock::now()};
        }
    };
    launch();
    while (!running.empty()) {
        int status = 0;
        const pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) throw std::runtime_error("sweep: waitpid failed");
        auto it = running.find(pid);
        if (it == running.end()) continue;
        const auto [index, started] = it->second;
        running.erase(it);
        const SweepPoint& p = points[index];
        std::string why;
        json rec = read_record(point_file(opt.dir, index), p, &why, /*accept_error=*/true);
        if (rec.is_null())  // the worker died: nothing written; a resume runs it again
            rec = {{"index", index}, {"axes", p.values()}, {"error", "its worker " + died_text(status)}};
        finished({index, std::move(rec), std::chrono::duration<double>(clock::now() - started).count()});
        launch();
    }
    return records;
}

json sweep_results_json(const SweepSpec& spec, const std::vector<json>& records,
                        const std::string& producer) {
    json units = {{"time", "s"}, {"throughput", "output tokens/s"}, {"overhead", "%"},
                  {"bytes", "B"}, {"utilization", "fraction of raw link bandwidth"}};
    json cols = json::object();
    for (const auto& [k, u] : summary_columns(records)) cols[k] = u;
    units["summary"] = cols;
    return {{"schema_version", kSweepSchemaVersion},
            {"producer", producer},
            {"units", units},
            {"machine", machine_json()},
            {"sweep", spec.to_json()},
            {"points", records}};
}

bool has_cluster_points(const std::vector<json>& records) {
    return std::any_of(records.begin(), records.end(), [](const json& r) {
        return r.contains("summary") && r["summary"].contains("per_gpu_tok_per_s");
    });
}

std::vector<std::pair<std::string, std::string>> summary_columns(const std::vector<json>& records) {
    auto cols = sweep_summary_columns();
    if (has_cluster_points(records))
        cols.insert(cols.end(), sweep_cluster_columns().begin(), sweep_cluster_columns().end());
    return cols;
}

std::string sweep_csv(const SweepSpec& spec, const std::vector<json>& records) {
    auto quote = [](const std::string& s) {
        if (s.find_first_of(",\"\n") == std::string::npos) return s;
        std::string q = "\"";
        for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    };
    std::ostringstream out;
    out << "index";
    for (const auto& k : spec.columns()) out << ',' << quote(k);
    const auto columns = summary_columns(records);
    for (const auto& [k, u] : columns) out << ',' << quote(k + " [" + u + "]");
    out << ",error\n";
    for (const auto& r : records) {
        out << r.value("index", size_t(0));
        for (const auto& k : spec.columns()) out << ',' << quote(value_text(r["axes"][k]));
        const json& s = r.contains("summary") ? r["summary"] : json::object();
        for (const auto& [k, u] : columns) {
            out << ',';
            if (s.contains(k)) out << s[k].dump();
        }
        out << ',' << quote(r.value("error", std::string())) << '\n';
    }
    return out.str();
}

}  // namespace engramsim::sim
