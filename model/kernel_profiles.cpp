#include "model/kernel_profiles.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>
#include <stdexcept>

namespace engramsim {

namespace {

constexpr const char* kProfileSchema = "engramsim.kernel_profile";
constexpr const char* kRooflineSchema = "engramsim.roofline_only";
constexpr int kVersion = 1;

bool same(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

bool compute_bound_family(const std::string& kernel) {
    return kernel == "gemm" || kernel == "moe_grouped_gemm" || kernel.rfind("attention", 0) == 0;
}

template <typename T>
T need(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.is_object() || !j.contains(key))
        throw std::runtime_error(where + ": missing \"" + key + "\"");
    if constexpr (std::is_integral_v<T>) {
        // nlohmann converts a float (7.8e54) or a wider integer to T without a check: undefined
        // or wrapped (found by fuzz_kernel_profiles).
        const auto& v = j.at(key);
        const bool fits =
            v.is_number_integer() &&
            (v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                    : v.get<int64_t>() >= int64_t(std::numeric_limits<T>::min()) &&
                                          v.get<int64_t>() <= int64_t(std::numeric_limits<T>::max()));
        if (!fits)
            throw std::runtime_error(where + "." + key + ": expected an integer in [" +
                                     std::to_string(std::numeric_limits<T>::min()) + ", " +
                                     std::to_string(std::numeric_limits<T>::max()) + "], got " +
                                     v.dump().substr(0, 40));
        return v.get<T>();
    }
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(where + "." + key + ": wrong type (" + e.what() + ")");
    }
}

// Value at x of the piecewise-linear curve through (xs, ys), xs sorted ascending and distinct;
// extrapolated as described in the header (proportional above, affine-but-at-least-
// proportional below).
double along(const std::vector<double>& xs, const std::vector<double>& ys, double x) {
    const size_t n = xs.size();
    if (n == 1) return ys[0] * x / xs[0];
    if (x >= xs[n - 1]) return ys[n - 1] * x / xs[n - 1];
    if (x <= xs[0]) {
        const double slope = (ys[1] - ys[0]) / (xs[1] - xs[0]);
        return std::max(ys[0] + slope * (x - xs[0]), ys[0] * x / xs[0]);
    }
    const size_t hi = size_t(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin());
    const size_t lo = hi - 1;
    const double f = (x - xs[lo]) / (xs[hi] - xs[lo]);
    return ys[lo] + f * (ys[hi] - ys[lo]);
}

}  // namespace

std::string KernelProfiles::primary_dim(const std::string& kernel) {
    if (kernel == "gemm") return "m";
    if (kernel == "elementwise") return "elements";
    if (kernel == "attention_decode") return "seqs";
    return "tokens";
}

void KernelProfiles::add(const nlohmann::json& j, const std::string& source) {
    const std::string schema = need<std::string>(j, "schema", source);
    if (schema == kRooflineSchema) {
        roofline_only_.push_back(j.value("hardware", std::string("?")) + ": " +
                                 j.value("note", std::string("roofline only")));
        return;
    }
    if (schema != kProfileSchema)
        throw std::runtime_error(source + ": schema \"" + schema + "\" is neither " +
                                 kProfileSchema + " nor " + kRooflineSchema);
    const int version = need<int>(j, "version", source);
    if (version != kVersion)
        throw std::runtime_error(source + ": profile version " + std::to_string(version) +
                                 " (this build reads " + std::to_string(kVersion) + ")");
    Profile p;
    p.kernel = need<std::string>(j, "kernel", source);
    p.variant = need<std::string>(j, "variant", source);
    p.source = source;
    const auto pv = need<nlohmann::json>(j, "provenance", source);
    std::ostringstream prov;
    prov << p.kernel << " [" << p.variant << "] on " << need<std::string>(pv, "device_name", source + ".provenance")
         << " (" << pv.value("device_kind", std::string("?"));
    const int sms = pv.contains("sm_count") ? need<int>(pv, "sm_count", source + ".provenance") : 0;
    if (sms > 0) prov << ", " << sms << " SMs";
    if (!pv.value("driver_version", std::string()).empty()) prov << ", " << pv.value("driver_version", std::string());
    if (!pv.value("cuda_runtime_version", std::string()).empty())
        prov << ", CUDA runtime " << pv.value("cuda_runtime_version", std::string());
    prov << "), commit " << pv.value("commit", std::string("?")) << ", " << pv.value("date_utc", std::string("?"))
         << ", " << pv.value("timing", std::string("?")) << ", from " << source;
    p.provenance = prov.str();
    const auto points = need<nlohmann::json>(j, "points", source);
    if (!points.is_array() || points.empty()) throw std::runtime_error(source + ".points: no points");
    for (size_t i = 0; i < points.size(); ++i) {
        const std::string w = source + ".points[" + std::to_string(i) + "]";
        Point pt;
        pt.dims = need<std::map<std::string, double>>(points[i], "dims", w);
        pt.dtype = need<std::string>(points[i], "dtype", w);
        pt.bytes = need<double>(points[i], "bytes", w);
        pt.flops = need<double>(points[i], "flops", w);
        pt.seconds = need<double>(points[i], "median_s", w);
        if (!(pt.seconds > 0) || !std::isfinite(pt.seconds))
            throw std::runtime_error(w + ".median_s: must be a positive time");
        const std::string prim = primary_dim(p.kernel);
        if (!pt.dims.count(prim) || !(pt.dims.at(prim) > 0))
            throw std::runtime_error(w + ".dims: needs a positive \"" + prim + "\"");
        p.points.push_back(std::move(pt));
    }
    profiles_.push_back(std::move(p));
}

KernelProfiles KernelProfiles::load_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw std::runtime_error("profiles: no folder " + dir);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());  // same order, same result, every run
    KernelProfiles out;
    for (const auto& f : files) {
        std::ifstream in(f);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::parse_error& e) {
            throw std::runtime_error(f.string() + ": not JSON (" + e.what() + ")");
        }
        out.add(j, f.string());
    }
    return out;
}

std::optional<double> KernelProfiles::seconds(const OpShape& op) const {
    const bool want_uva = op.dims.count("uva") && op.dims.at("uva") > 0;
    std::vector<const Point*> cands;
    for (const auto& p : profiles_) {
        if (p.kernel != op.kernel) continue;
        if ((p.variant.find("uva") != std::string::npos) != want_uva) continue;
        for (const auto& pt : p.points) cands.push_back(&pt);
    }
    if (cands.empty()) return std::nullopt;
    if (std::any_of(cands.begin(), cands.end(), [&](const Point* p) { return p->dtype == op.dtype; }))
        std::erase_if(cands, [&](const Point* p) { return p->dtype != op.dtype; });

    const std::string prim = primary_dim(op.kernel);
    const auto it = op.dims.find(prim);
    if (it == op.dims.end() || !(it->second > 0))
        throw std::invalid_argument("KernelProfiles: op " + op.kernel + " needs a positive dim \"" +
                                    prim + "\"");
    const double x = it->second;

    // Groups: the points' dims other than the primary one.
    std::map<std::map<std::string, double>, std::vector<const Point*>> groups;
    for (const Point* p : cands) {
        auto key = p->dims;
        key.erase(prim);
        groups[key].push_back(p);
    }
    auto eval = [&](const std::vector<const Point*>& g, auto field) {
        std::map<double, double> curve;  // distinct x, the latest point wins on duplicates
        for (const Point* p : g) curve[p->dims.at(prim)] = field(*p);
        std::vector<double> xs, ys;
        for (const auto& [a, b] : curve) {
            xs.push_back(a);
            ys.push_back(b);
        }
        return along(xs, ys, x);
    };
    auto time_of = [](const Point& p) { return p.seconds; };

    const std::map<std::string, double>* best = nullptr;
    double best_dist = std::numeric_limits<double>::infinity();
    for (const auto& [key, g] : groups) {
        double dist = 0;
        bool exact = true;
        for (const auto& [k, v] : key) {
            const auto o = op.dims.find(k);
            if (o == op.dims.end() || !(o->second > 0) || !(v > 0)) {
                exact = false;
                dist += 50;  // a dim the op does not state: far, but still usable
                continue;
            }
            if (!same(o->second, v)) exact = false;
            dist += std::fabs(std::log(o->second / v));
        }
        if (exact) return eval(g, time_of);
        if (dist < best_dist) {
            best_dist = dist;
            best = &key;
        }
    }
    const auto& g = groups.at(*best);
    const double t = eval(g, time_of);
    const bool by_flops = compute_bound_family(op.kernel);
    const double op_work = by_flops ? op.flops : op.bytes;
    const double g_work = eval(g, [&](const Point& p) { return by_flops ? p.flops : p.bytes; });
    if (op_work > 0 && g_work > 0) return t * op_work / g_work;
    // No work stated on one side: scale by the product of the other dims.
    double ratio = 1;
    for (const auto& [k, v] : *best) {
        const auto o = op.dims.find(k);
        if (o != op.dims.end() && o->second > 0 && v > 0) ratio *= o->second / v;
    }
    return t * ratio;
}

std::string KernelProfiles::provenance(const std::string& kernel) const {
    std::string out;
    for (const auto& p : profiles_)
        if (p.kernel == kernel) out += (out.empty() ? "" : "\n") + p.provenance;
    return out;
}

std::vector<std::string> KernelProfiles::kernels() const {
    std::set<std::string> s;
    for (const auto& p : profiles_) s.insert(p.kernel);
    return {s.begin(), s.end()};
}

}  // namespace engramsim
