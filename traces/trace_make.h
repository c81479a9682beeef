// Making traces: a workload's requests hashed for every Engram layer and written to a .etr file.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

#include "model/engram_config.h"
#include "traces/etr.h"
#include "traces/workload.h"

namespace engramsim {

// Every token of a request (prompt, then output) hashed for every layer of `engram`.
class RequestHasher {
public:
    explicit RequestHasher(const EngramConfig& engram);
    TraceRequest operator()(const Request& request) const;

private:
    CompressMap map_;
    NgramHasher hasher_;
};

struct MakeProgress {
    uint64_t requests_done = 0, requests_total = 0;
    uint64_t lookups_done = 0, bytes_written = 0;
};

// Writes `workload` hashed with the resolved `engram_section` to `path`. `progress` (optional)
// is called after each request.
TraceHeader make_trace(const std::string& path, const nlohmann::json& engram_section,
                       const Workload& workload, const nlohmann::json& workload_section,
                       const std::function<void(const MakeProgress&)>& progress = {});

}  // namespace engramsim
