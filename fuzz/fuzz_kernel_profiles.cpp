// Kernel profile files (model/kernel_profiles.h): KernelProfiles::add on JSON documents (the
// parser load_dir runs on every *.json of a profile folder), then seconds() for ops of the
// profiled kernels. Contract: add accepts or throws std::runtime_error naming the key; an
// accepted profile prices an op with a positive dim as a non-negative time (not NaN) (or throws
// std::invalid_argument for an op it cannot price).
#include <cmath>

#include "fuzz/fuzz_util.h"
#include "model/kernel_profiles.h"

using namespace engramsim;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 64 * 1024) return 0;
    const uint8_t pick = data[0];
    ++data, --size;
    const json doc = json::parse(data, data + size, nullptr, false);
    if (doc.is_discarded()) return 0;
    KernelProfiles profiles;
    try {
        profiles.add(doc, "fuzz.json");
    } catch (const std::exception&) {
        return 0;
    }
    // Ops shaped like the profile's own points, scaled by a factor from the first byte (both
    // sides of every point, exact matches included), and with a dim dropped.
    static const double kScale[] = {1, 0.5, 2, 1e-3, 1e3, 0.999, 1.001, 1e6};
    for (const std::string& kernel : profiles.kernels()) {
        if (!doc.contains("points") || !doc["points"].is_array()) break;
        for (const json& point : doc["points"]) {
            OpShape op;
            op.kernel = kernel;
            try {
                op.dims = point.at("dims").get<std::map<std::string, double>>();
                op.dtype = point.at("dtype").get<std::string>();
                op.bytes = point.at("bytes").get<double>() * kScale[pick & 7];
                op.flops = point.at("flops").get<double>() * kScale[(pick >> 3) & 7];
            } catch (const std::exception&) {
                continue;
            }
            const std::string prim = KernelProfiles::primary_dim(kernel);
            op.dims[prim] *= kScale[(pick >> 6) & 3];
            if (pick & 0x20 && op.dims.size() > 1) {
                auto it = op.dims.begin();
                if (it->first == prim) ++it;
                op.dims.erase(it);
            }
            // "uva" selects the variant, it is not a shape dim: set after the drop above, which
            // once erased it and asked for a plain variant the profile does not have.
            if (std::string v = doc.value("variant", std::string()); v.find("uva") != std::string::npos)
                op.dims["uva"] = 1;
            if (!(op.dims[prim] > 0) || !std::isfinite(op.dims[prim])) continue;
            try {
                const auto t = profiles.seconds(op);
                FUZZ_CHECK(t.has_value(), "no time for a profiled kernel");
                FUZZ_CHECK(*t >= 0,  // NaN or negative; +inf only from absurd magnitudes
                           "time " + std::to_string(*t) + " for op " + json(op.dims).dump());
            } catch (const std::invalid_argument&) {
            }
        }
    }
    (void)profiles.provenance(profiles.kernels().empty() ? "" : profiles.kernels()[0]);
    return 0;
}
