// Measured kernel times, looked up by operator shape: the first thing the cost model
// (model/cost_model.h) asks, before falling back to its roofline estimate.
//
// A profile folder (profiles/<device>/) holds one JSON per kernel and variant, written by
// `engramsim profile` (format: kernels/profiler/profile.h, schema "engramsim.kernel_profile"
// version 1), plus optionally a roofline-only marker (schema "engramsim.roofline_only") for a
// GPU that was never measured. Lookup for an OpShape:
//
//  1. Candidates: the points of profiles whose kernel equals op.kernel. Variants whose name
//     contains "uva" (tables read from host memory) are used only when op.dims["uva"] > 0, and
//     only they then. Points whose dtype equals op.dtype are preferred when there are any.
//  2. Points are grouped by their dims other than the kernel's primary dim (tokens; m for gemm;
//     elements for elementwise; seqs for attention_decode).
//  3. In the group whose other dims equal the op's (relative 1e-9), the time is interpolated
//     along the primary dim x: piecewise linear between measured shapes; beyond the largest,
//     at the largest shape's throughput (t = t_n x / x_n); below the smallest, the first
//     segment's line (fixed cost + x / throughput), never below t_0 x / x_0.
//  4. With no such group, the nearest group (distance: sum of |log ratio| of the other dims)
//     is interpolated at x and scaled by the op's work over that group's work at x: FLOPs for
//     gemm, moe_grouped_gemm and attention kernels, bytes otherwise (the ratio of the other
//     dims' products when a side has no bytes).
//
// seconds() returns nullopt when no profile covers op.kernel.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/op_shape.h"

namespace engramsim {

class KernelProfiles {
public:
    KernelProfiles() = default;

    // Every *.json in `dir` (not recursive). Throws std::runtime_error for a missing folder or
    // a malformed file (naming the file and the key); a folder with only a roofline-only
    // marker loads as empty.
    static KernelProfiles load_dir(const std::string& dir);

    // Adds one profile document; `source` names it in errors and provenance.
    void add(const nlohmann::json& profile, const std::string& source);

    // Interpolated kernel time in seconds, nullopt when no profile covers that kernel.
    std::optional<double> seconds(const OpShape& op) const;

    // Where the times for `kernel` come from: variant, device, SMs, driver / CUDA versions,
    // commit, date, timing method and file, one line per variant; "" when not covered.
    std::string provenance(const std::string& kernel) const;

    // Kernels with at least one measured point, sorted.
    std::vector<std::string> kernels() const;
    // Notes of roofline-only markers found by load_dir (e.g. "h200: never measured ...").
    const std::vector<std::string>& roofline_only() const { return roofline_only_; }

    // The primary (interpolated) dim of a kernel family: "tokens" unless listed above.
    static std::string primary_dim(const std::string& kernel);

private:
    struct Point {
        std::map<std::string, double> dims;
        std::string dtype;
        double bytes = 0, flops = 0, seconds = 0;
    };
    struct Profile {
        std::string kernel, variant, source, provenance;
        std::vector<Point> points;
    };
    std::vector<Profile> profiles_;
    std::vector<std::string> roofline_only_;
};

}  // namespace engramsim
