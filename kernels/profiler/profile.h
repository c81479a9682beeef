// Kernel profiles: measured times of one kernel at several shapes, with the machine they came
// from. One JSON file per kernel under profiles/<device>/, written by `engramsim profile` and read
// by model/kernel_profiles.h. Format (schema "engramsim.kernel_profile", version 1):
//
//   { "schema": "engramsim.kernel_profile", "version": 1,
//     "kernel": "engram_gather",            // an OpShape kernel family (model/op_shape.h)
//     "variant": "cuda/bf16",               // implementation and storage type
//     "provenance": { "device_kind": "cuda" | "cpu", "device_name", "sm_count", "cpu_cores",
//                     "sm_clock_mhz", "memory_clock_mhz", "l2_bytes", "driver_version",
//                     "cuda_runtime_version", "commit", "date_utc", "host",
//                     "timing": "cupti_kernel_activity" | "cuda_events" | "cpu_steady_clock",
//                     "cache_flush": "...", "notes": [...] },
//     "ceilings": { "copy_bytes_per_s": ..., "gemm_flop_per_s": ... },   // same run
//     "points": [ { "dims": {"tokens": 4096, "heads": 16, "row_bytes": 160}, "dtype": "bf16",
//                   "bytes": ..., "flops": ..., "samples": 30,
//                   "median_s", "min_s", "max_s", "p10_s", "p90_s", "mad_s",
//                   "bytes_per_s", "flop_per_s", "kernels_per_sample" } ] }
//
// Times are seconds; bytes and FLOPs are the compulsory work of one call, as in OpShape.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace engramsim::profiler {

inline constexpr const char* kProfileSchema = "engramsim.kernel_profile";
inline constexpr int kProfileVersion = 1;

struct Provenance {
    std::string device_kind;  // "cpu" or "cuda"
    std::string device_name;
    int sm_count = 0;
    int cpu_cores = 0;
    double sm_clock_mhz = 0;
    double memory_clock_mhz = 0;
    double l2_bytes = 0;
    std::string driver_version;
    std::string cuda_runtime_version;
    std::string commit;
    std::string date_utc;
    std::string host;
    std::string timing;       // how a sample was timed
    std::string cache_flush;  // what was done between samples
    std::vector<std::string> notes;
};

// Order statistics of repeated timings of one call, seconds.
struct SampleStats {
    int samples = 0;
    double median_s = 0, min_s = 0, max_s = 0, p10_s = 0, p90_s = 0;
    double mad_s = 0;  // median absolute deviation from the median: the spread
    // Throws std::invalid_argument on an empty list.
    static SampleStats of(std::vector<double> seconds);
};

struct ProfilePoint {
    std::map<std::string, double> dims;
    std::string dtype = "f32";
    double bytes = 0;
    double flops = 0;
    SampleStats stats;
    double kernels_per_sample = 0;  // GPU: kernel records per call (CUPTI), else 0
};

struct KernelProfile {
    std::string kernel;
    std::string variant;
    Provenance provenance;
    std::map<std::string, double> ceilings;
    std::vector<ProfilePoint> points;
};

nlohmann::json to_json(const Provenance& p);
nlohmann::json to_json(const KernelProfile& p);
// Strict: missing keys, a wrong schema or version throw std::runtime_error naming them.
KernelProfile profile_from_json(const nlohmann::json& j);

// Writes <dir>/<kernel>[.<variant with '/' as '-'>].json, creating dir; returns the path.
std::string write_profile(const KernelProfile& p, const std::string& dir);

// Provenance fields this host can fill: commit (build), date, host name, CPU model and cores.
Provenance host_provenance();

}  // namespace engramsim::profiler
