// Sweeps: one run config varied along named axes (dotted config keys, each with a list of
// values), every combination simulated with its references, for capacity-planning studies.
//
// A sweep writes into its folder as it goes, so a crash or a kill loses no finished point:
//   spec.json           the sweep: its base config (resolved), axes and options
//   points/NNNNN.json   one file per finished point, written whole (temporary file, then rename)
//   references/         the reference runs' throughputs, shared by the points
//   results.json        all points in index order, versioned, with units   (at the end)
//   results.csv         one row per point, units in the column names       (at the end)
// `--resume` runs only the points whose file is missing, unreadable or records an error; the
// folder must hold the same sweep (spec.json equal), else it is refused. Points run in forked
// workers (`jobs` at a time); results do not depend on `jobs`: the same spec gives the same
// bytes. Under mpirun, the points are spread over the ranks with the same files and bytes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace engramsim::sim {

inline constexpr int kSweepSchemaVersion = 1;

// One axis: a dotted config path and its values, or several paths varied together (zipped):
// then each value is an array with one entry per path, e.g. keys {"backbone", "engram.hc_mult"}
// with values [["dense-4b", 1], ["moe-27b", 4]].
struct SweepAxis {
    std::vector<std::string> keys;  // e.g. {"placement.hbm_capacity"}
    std::vector<nlohmann::json> values;
    // The (key, value) pairs of value i.
    std::vector<std::pair<std::string, nlohmann::json>> settings(size_t i) const;
    std::string name() const;  // the keys joined by "+"
};

struct SweepSpec {
    std::string name = "sweep", description;
    nlohmann::json base;  // resolved run config
    std::vector<SweepAxis> axes;
    bool references = true;  // also simulate the table in HBM and no Engram for every point
    nlohmann::json to_json() const;
    std::vector<std::string> columns() const;  // every axis key, in axis order
};

// A sweep file: {"name", "description", "base": PRESET | FILE | {config}, "axes": [{"key",
// "values": [...]} or {"keys": [...], "values": [[...], ...]}, ...], "references": true}. Keys are strict: an unknown one is named with
// its JSON path and the nearest valid key. A relative FILE is read from `dir`.
SweepSpec parse_sweep_spec(const nlohmann::json& doc, const std::string& origin,
                           const std::string& dir = ".");
// Is this document a sweep file (rather than a run config)? It has "axes".
bool is_sweep_spec(const nlohmann::json& doc);
// "--axis KEY=V1,V2,...": values split on commas, each read as JSON when it is JSON (numbers,
// true/false, quoted strings) and as a plain string otherwise; "KEY=[...]" is one JSON array
// of values (for values holding commas, such as arrays); "KEY1,KEY2=[[v1, v2], ...]" zips keys.
SweepAxis parse_axis(const std::string& text);

struct SweepPoint {
    size_t index = 0;
    std::vector<std::pair<std::string, nlohmann::json>> settings;  // axis key, value; axis order
    nlohmann::json config;                                          // resolved
    nlohmann::json values() const;  // {key: value}
    std::string label() const;      // "key=value, key=value"
};
// Every combination, the last axis varying fastest; each config is resolved here, so a bad key
// or value fails (naming the point) before anything runs.
std::vector<SweepPoint> expand_sweep(const SweepSpec& spec);

// What one point yields: {"comparison": {...}, "summary": {flat numbers}, "metrics": {...}}.
using PointEvaluator = std::function<nlohmann::json(const nlohmann::json& resolved)>;
// The timing simulator: run_config, and with `references` the table-in-HBM and no-Engram runs
// of run_compared, whose throughputs are kept in `reference_cache_dir` (when not empty) and
// reused by every point with the same reference config.
PointEvaluator simulator_evaluator(bool references, const std::string& reference_cache_dir = "");

struct SweepProgress {
    size_t done = 0, total = 0;  // points finished so far (reused ones included), all points
    size_t reused = 0;           // finished in an earlier run (--resume)
    const SweepPoint* point = nullptr;
    const nlohmann::json* record = nullptr;  // the point's file contents
    double wall_s = 0;                       // this point's wall time
};

struct SweepOptions {
    std::string dir;
    int jobs = 1;
    bool resume = false;
    std::function<void(const SweepProgress&)> progress;
    // What wrote the folder ("engramsim 0.1.0 (abc1234)"), kept in spec.json: a resume by
    // another build is refused, so one sweep's points never mix two builds' results.
    std::string producer;
    // Called once (rank 0) when the folder is ready and before any point runs: total points and
    // those a resume reuses (done = reused; no point yet).
    std::function<void(const SweepProgress&)> started;
};

// Runs the points that are not finished in `opt.dir` and returns every point's record in index
// order: {"index", "axes", ...evaluation} or {"index", "axes", "error"} when the point failed
// (its config was refused at run time, or its worker died: then nothing is written and a resume
// runs it again). In a multi-rank MPI world (sim/sweep/mpi_world.h) rank 0 does the above and hands
// the points to ranks 1..N-1, which simulate them one at a time and return {} (every rank
// calls run_sweep with the same spec; `jobs` must be 1).
std::vector<nlohmann::json> run_sweep(const SweepSpec& spec, const SweepOptions& opt,
                                      const PointEvaluator& evaluate);

// results.json and results.csv from the records.
nlohmann::json sweep_results_json(const SweepSpec& spec, const std::vector<nlohmann::json>& records,
                                  const std::string& producer = "");
std::string sweep_csv(const SweepSpec& spec, const std::vector<nlohmann::json>& records);
// The columns of "summary", with their units, in CSV order.
const std::vector<std::pair<std::string, std::string>>& sweep_summary_columns();
// A cluster point's further columns (a config with a cluster section), after those.
const std::vector<std::pair<std::string, std::string>>& sweep_cluster_columns();
// Whether a point of `records` is a cluster (a config with a cluster section).
bool has_cluster_points(const std::vector<nlohmann::json>& records);
// The columns `records` have: the summary's, and the cluster's when a point is a cluster.
std::vector<std::pair<std::string, std::string>> summary_columns(
    const std::vector<nlohmann::json>& records);

}  // namespace engramsim::sim
