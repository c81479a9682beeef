#include "sim/timing/prefetch.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace engramsim::sim {

std::vector<std::string> prefetch_schedule_names() { return {"layer-ahead:K", "none", "oracle"}; }

PrefetchSchedule PrefetchSchedule::parse(const std::string& text) {
    if (text == "none") return {Kind::None, 0};
    if (text == "oracle") return {Kind::Oracle, 0};
    if (text == "layer-ahead") return {Kind::LayerAhead, 0};
    const std::string prefix = "layer-ahead:";
    if (text.rfind(prefix, 0) == 0) {
        const char* b = text.data() + prefix.size();
        const char* e = text.data() + text.size();
        int k = -1;
        auto [p, ec] = std::from_chars(b, e, k);
        if (ec == std::errc() && p == e && k >= 0) return {Kind::LayerAhead, k};
        throw std::invalid_argument("prefetch schedule '" + text +
                                    "': K must be a layer index >= 0");
    }
    throw std::invalid_argument("unknown prefetch schedule '" + text +
                                "'; known: layer-ahead:K, none, oracle");
}

std::string PrefetchSchedule::name() const {
    switch (kind) {
        case Kind::None: return "none";
        case Kind::Oracle: return "oracle";
        case Kind::LayerAhead: return "layer-ahead:" + std::to_string(layer);
    }
    return "?";
}

int PrefetchSchedule::issue_layer(int engram_layer) const {
    return kind == Kind::LayerAhead ? std::min(layer, engram_layer) : engram_layer;
}

}  // namespace engramsim::sim
