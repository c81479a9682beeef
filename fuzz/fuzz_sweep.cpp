// Sweep specs: parse_axis on "--axis" text (first byte even) and is_sweep_spec /
// parse_sweep_spec / expand_sweep on JSON documents (first byte odd). Contract: a spec or a
// ConfigError (any std::exception); a parsed spec written with to_json parses back to the same.
#include "fuzz/fuzz_util.h"
#include "sim/sweep/sweep.h"

using namespace engramsim;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 32 * 1024) return 0;
    const bool document = data[0] & 1;
    ++data, --size;
    if (!document) {
        const std::string text(reinterpret_cast<const char*>(data), size);
        try {
            const sim::SweepAxis a = sim::parse_axis(text);
            FUZZ_CHECK(!a.keys.empty() && !a.values.empty(), "an axis without keys or values");
            for (size_t i = 0; i < a.values.size(); ++i)
                FUZZ_CHECK(a.settings(i).size() == a.keys.size(), "settings of value " + std::to_string(i));
        } catch (const std::exception&) {
        }
        return 0;
    }
    const json doc = json::parse(data, data + size, nullptr, false);
    if (doc.is_discarded()) return 0;
    const bool sweep = sim::is_sweep_spec(doc);
    sim::SweepSpec spec;
    try {
        spec = sim::parse_sweep_spec(doc, "fuzz", "/nonexistent-engramsim-fuzz-dir");
    } catch (const std::exception&) {
        return 0;
    }
    FUZZ_CHECK(sweep, "parse_sweep_spec accepted a document that is_sweep_spec refuses");
    FUZZ_CHECK(!spec.axes.empty(), "a spec without axes");
    size_t points = 1;
    for (const auto& a : spec.axes) {
        FUZZ_CHECK(!a.values.empty(), "an axis without values");
        points = a.values.size() > 16 / points ? 17 : points * a.values.size();
    }
    sim::SweepSpec again;
    try {
        again = sim::parse_sweep_spec(spec.to_json(), "fuzz (to_json)");
    } catch (const std::exception& e) {
        fuzz::fail(std::string("to_json of a parsed spec does not parse: ") + e.what());
    }
    FUZZ_CHECK(again.to_json() == spec.to_json(), "to_json round trip differs");
    if (points <= 16) {
        try {
            const auto expanded = sim::expand_sweep(spec);
            FUZZ_CHECK(expanded.size() == points, "expand_sweep point count");
        } catch (const std::exception&) {
        }
    }
    return 0;
}
