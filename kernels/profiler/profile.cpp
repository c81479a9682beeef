#include "kernels/profiler/profile.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "build_info/build_info.h"
#include "model/statistics.h"


namespace engramsim::profiler {

namespace {

template <typename T>
T need(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) throw std::runtime_error(where + ": missing \"" + key + "\"");
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(where + "." + key + ": " + e.what());
    }
}

}  // namespace

SampleStats SampleStats::of(std::vector<double> s) {
    if (s.empty()) throw std::invalid_argument("SampleStats: no samples");
    std::sort(s.begin(), s.end());
    SampleStats st;
    st.samples = int(s.size());
    st.median_s = percentile_sorted(s, 0.5);
    st.min_s = s.front();
    st.max_s = s.back();
    st.p10_s = percentile_sorted(s, 0.1);
    st.p90_s = percentile_sorted(s, 0.9);
    std::vector<double> dev;
    for (double x : s) dev.push_back(std::fabs(x - st.median_s));
    std::sort(dev.begin(), dev.end());
    st.mad_s = percentile_sorted(dev, 0.5);
    return st;
}

nlohmann::json to_json(const Provenance& p) {
    return {{"device_kind", p.device_kind},
            {"device_name", p.device_name},
            {"sm_count", p.sm_count},
            {"cpu_cores", p.cpu_cores},
            {"sm_clock_mhz", p.sm_clock_mhz},
            {"memory_clock_mhz", p.memory_clock_mhz},
            {"l2_bytes", p.l2_bytes},
            {"driver_version", p.driver_version},
            {"cuda_runtime_version", p.cuda_runtime_version},
            {"commit", p.commit},
            {"date_utc", p.date_utc},
            {"host", p.host},
            {"timing", p.timing},
            {"cache_flush", p.cache_flush},
            {"notes", p.notes}};
}

nlohmann::json to_json(const KernelProfile& p) {
    nlohmann::json points = nlohmann::json::array();
    for (const auto& pt : p.points) {
        const auto& s = pt.stats;
        nlohmann::json j = {{"dims", pt.dims},
                            {"dtype", pt.dtype},
                            {"bytes", pt.bytes},
                            {"flops", pt.flops},
                            {"samples", s.samples},
                            {"median_s", s.median_s},
                            {"min_s", s.min_s},
                            {"max_s", s.max_s},
                            {"p10_s", s.p10_s},
                            {"p90_s", s.p90_s},
                            {"mad_s", s.mad_s},
                            {"bytes_per_s", s.median_s > 0 ? pt.bytes / s.median_s : 0.0},
                            {"flop_per_s", s.median_s > 0 ? pt.flops / s.median_s : 0.0},
                            {"kernels_per_sample", pt.kernels_per_sample}};
        points.push_back(std::move(j));
    }
    return {{"schema", kProfileSchema},
            {"version", kProfileVersion},
            {"kernel", p.kernel},
            {"variant", p.variant},
            {"provenance", to_json(p.provenance)},
            {"ceilings", p.ceilings},
            {"points", points}};
}

KernelProfile profile_from_json(const nlohmann::json& j) {
    const std::string where = "profile";
    if (need<std::string>(j, "schema", where) != kProfileSchema)
        throw std::runtime_error("profile: schema is not " + std::string(kProfileSchema));
    if (need<int>(j, "version", where) != kProfileVersion)
        throw std::runtime_error("profile: unsupported version " +
                                 std::to_string(j.at("version").get<int>()) + " (this build reads " +
                                 std::to_string(kProfileVersion) + ")");
    KernelProfile p;
    p.kernel = need<std::string>(j, "kernel", where);
    p.variant = need<std::string>(j, "variant", where);
    const auto& pv = j.at("provenance");
    p.provenance.device_kind = need<std::string>(pv, "device_kind", "profile.provenance");
    p.provenance.device_name = need<std::string>(pv, "device_name", "profile.provenance");
    p.provenance.commit = pv.value("commit", "");
    p.provenance.date_utc = pv.value("date_utc", "");
    p.provenance.timing = pv.value("timing", "");
    p.provenance.driver_version = pv.value("driver_version", "");
    p.provenance.cuda_runtime_version = pv.value("cuda_runtime_version", "");
    p.provenance.sm_count = pv.value("sm_count", 0);
    if (j.contains("ceilings")) p.ceilings = j.at("ceilings").get<std::map<std::string, double>>();
    const auto& pts = j.at("points");
    for (size_t i = 0; i < pts.size(); ++i) {
        const std::string w = "profile.points[" + std::to_string(i) + "]";
        ProfilePoint pt;
        pt.dims = need<std::map<std::string, double>>(pts[i], "dims", w);
        pt.dtype = need<std::string>(pts[i], "dtype", w);
        pt.bytes = need<double>(pts[i], "bytes", w);
        pt.flops = need<double>(pts[i], "flops", w);
        pt.stats.median_s = need<double>(pts[i], "median_s", w);
        if (!(pt.stats.median_s > 0)) throw std::runtime_error(w + ".median_s: must be > 0");
        pt.stats.samples = pts[i].value("samples", 0);
        pt.stats.min_s = pts[i].value("min_s", pt.stats.median_s);
        pt.stats.max_s = pts[i].value("max_s", pt.stats.median_s);
        pt.stats.p10_s = pts[i].value("p10_s", pt.stats.median_s);
        pt.stats.p90_s = pts[i].value("p90_s", pt.stats.median_s);
        pt.stats.mad_s = pts[i].value("mad_s", 0.0);
        p.points.push_back(std::move(pt));
    }
    return p;
}

std::string write_profile(const KernelProfile& p, const std::string& dir) {
    std::filesystem::create_directories(dir);
    std::string variant = p.variant;
    std::replace(variant.begin(), variant.end(), '/', '-');
    const std::string path =
        (std::filesystem::path(dir) / (p.kernel + (variant.empty() ? "" : "." + variant) + ".json"))
            .string();
    std::ofstream out(path);
    if (!out) throw std::runtime_error("cannot write " + path);
    out << to_json(p).dump(2) << '\n';
    if (!out) throw std::runtime_error("error writing " + path);
    return path;
}

Provenance host_provenance() {
    Provenance p;
    p.commit = build::git_commit();
    const std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    p.date_utc = buf;
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) == 0) p.host = host;
    p.cpu_cores = int(std::thread::hardware_concurrency());
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
        if (line.rfind("model name", 0) == 0) {
            p.device_name = line.substr(line.find(':') + 2);
            break;
        }
    return p;
}

}  // namespace engramsim::profiler
