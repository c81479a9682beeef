#include "traces/trace_make.h"

namespace engramsim {

RequestHasher::RequestHasher(const EngramConfig& engram)
    : map_(CompressMap::load(engram.compress_map)),
      hasher_(engram, map_.canonical_vocab_size(), map_(engram.pad_id)) {}

TraceRequest RequestHasher::operator()(const Request& request) const {
    TraceRequest r;
    r.id = request.id;
    r.prompt_len = uint32_t(request.prompt.size());
    r.output_len = uint32_t(request.output.size());
    std::vector<uint32_t> raw(request.prompt);
    raw.insert(raw.end(), request.output.begin(), request.output.end());
    r.canonical = map_.compress(raw);
    for (size_t l = 0; l < hasher_.layers().size(); ++l) {
        r.rows.emplace_back(r.canonical.size() * size_t(hasher_.heads_per_layer()));
        hasher_.hash_layer(l, r.canonical, r.rows.back());
    }
    return r;
}

TraceHeader make_trace(const std::string& path, const nlohmann::json& engram_section,
                       const Workload& workload, const nlohmann::json& workload_section,
                       const std::function<void(const MakeProgress&)>& progress) {
    const EngramConfig engram = EngramConfig::from_json(engram_section);
    const RequestHasher hash(engram);
    nlohmann::json description = {{"description", workload.description},
                                  {"seed", workload.seed},
                                  {"config", workload_section}};
    TraceWriter writer(path, engram_section, description);
    MakeProgress p;
    p.requests_total = workload.requests.size();
    for (const Request& request : workload.requests) {
        const TraceRequest r = hash(request);
        writer.add(r);
        p.requests_done += 1;
        p.lookups_done += r.canonical.size() * size_t(engram.heads_per_layer()) * r.rows.size();
        p.bytes_written = writer.bytes_written();
        if (progress) progress(p);
    }
    writer.finish();
    return TraceReader(path).header();
}

}  // namespace engramsim
