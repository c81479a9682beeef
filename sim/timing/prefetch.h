// Prefetch schedules: when a step's Engram fetch is issued. Registered by name:
//   none            at the Engram layer's start (nothing overlaps)
//   layer-ahead:K   at the start of layer K of the same step (K = 0: the step start); an Engram
//                   layer at or before K issues at its own start
//   oracle          the fetch costs nothing (the lower bound)
// Causality: a decode step's lookups need the token sampled at the end of the previous step,
// and nano-vLLM admits prefills when it schedules the step, so no fetch is ever issued before
// its step starts; every schedule here issues within the step.
#pragma once

#include <string>
#include <vector>

namespace engramsim::sim {

struct PrefetchSchedule {
    enum class Kind { None, LayerAhead, Oracle };
    Kind kind = Kind::LayerAhead;
    int layer = 0;  // LayerAhead: K

    // "none", "layer-ahead" (= layer-ahead:0), "layer-ahead:K", "oracle"; throws
    // std::invalid_argument listing the names.
    static PrefetchSchedule parse(const std::string& text);
    std::string name() const;
    // The layer at whose start the fetch for Engram layer `engram_layer` is issued.
    int issue_layer(int engram_layer) const;
    bool free() const { return kind == Kind::Oracle; }
};

std::vector<std::string> prefetch_schedule_names();

}  // namespace engramsim::sim
